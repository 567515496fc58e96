"""Real sub-daily series at many forecast origins: does the forecast beat repeating yesterday?

    python benchmarks/realsubdaily.py [--split dev] [--origins 30] [--model signals-small]
        [--baselines mstl] [--samples 20]

The real suites score each series at its last 3 origins, one horizon (48 steps) apart: for a
5-minute, half-hourly or hourly series that is its last 3 or 6 days, and one odd day moves a
series' score a long way (real-dev's San Francisco temperature is 2.16x seasonal naive in WQL
at 3 origins and 0.70x at 30). This benchmark scores the sub-daily series of one split
(``nexttoken.realdata``) at ``--origins`` rolling origins instead, each forecast exactly as the
real suites forecast it (up to 2,048 steps of history, the series' own seasons given, 20 paths).

It prints, per series, WQL and MASE relative to seasonal naive (the mean over origins of each,
divided by seasonal naive's mean), and their geometric means over the split. Rules are chosen
on ``--split dev``; ``--split test`` is reported and never used to choose anything.
Needs ``nexttoken[realdata]``; MSTL needs ``nexttoken[baselines]``.
"""

from __future__ import annotations

import argparse
import time

from subdaily import against_seasonal_naive

from nexttoken.evaluate import Task
from nexttoken.realdata import catalog, load_series, windows

SUBDAILY = ("5min", "30min", "hourly")


def tasks(split: str, origins: int) -> list[Task]:
    """One task per sub-daily series of ``split``, with up to ``origins`` rolling origins."""
    out = []
    for entry in catalog(split):
        if entry.freq not in SUBDAILY:
            continue
        contexts, targets = windows(load_series(entry), entry.horizon, entry.season, origins)
        seasons = [entry.season] * len(contexts)
        out.append(Task("sweep", entry.name, contexts, targets, seasons, entry.seasons, entry.freq))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev", choices=("dev", "test"))
    ap.add_argument("--origins", type=int, default=30, help="rolling origins per series")
    ap.add_argument("--model", default="signals-small")
    ap.add_argument("--baselines", default="mstl", help="comma-separated, or 'none'")
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    if args.origins < 1:
        ap.error(f"--origins must be at least 1 (got {args.origins})")

    all_tasks = tasks(args.split, args.origins)
    start = time.perf_counter()
    result, names = against_seasonal_naive(all_tasks, args.model, args.baselines, args.samples)
    ref = "seasonal naive"
    print(
        f"# real-{args.split}: {len(all_tasks)} sub-daily series, up to {args.origins} origins "
        f"each (one horizon, 48 steps, apart), {args.samples} paths; WQL / MASE relative to "
        "seasonal naive"
    )
    print("| series | frequency | origins | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    ratios = {
        (name, metric): result.ratios("sweep", name, metric, ref)
        for name in names
        for metric in ("wql", "mase")
    }
    for k, t in enumerate(all_tasks):
        cells = [f"{ratios[n, 'wql'][k]:.3f} / {ratios[n, 'mase'][k]:.3f}" for n in names]
        print(f"| {t.dataset} | {t.group} | {len(t.contexts)} | " + " | ".join(cells) + " |")
    cells = []
    for name in names:
        wql = result.relative("sweep", name, "wql", ref)
        mase = result.relative("sweep", name, "mase", ref)
        worse = int((ratios[name, "mase"] > 1).sum())
        cells.append(f"{wql:.3f} / {mase:.3f} ({worse} worse)")
    print("| geometric mean | | | " + " | ".join(cells) + " |")
    seconds = ", ".join(f"{n} {result.seconds[n]:.0f} s" for n in names)
    print(f"\nforecasting time: {seconds}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
