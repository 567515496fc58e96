"""Does fine-tuning on a user's own history help? Measured on real-dev (never real-test).

    python benchmarks/finetune_real.py [--model signals-small] [--split dev]
        [--freq monthly,quarterly] [--flag=--mix-synthetic=0.2 ...] [--no-season] [--json FILE]

For each frequency of the split, the series of that frequency are written to a CSV and
``nexttoken train --init MODEL --holdout 3H --season S`` fine-tunes MODEL on them (S the
frequency's seasons, whose strong profiles are taken out of the training windows as the
forecasts take them out of their contexts; ``--no-season`` trains on the series as they are; H the frequency's
horizon; the 3 rolling-origin windows of the benchmark are the last 3H steps, so training and
early stopping never see them). Then the zero-shot and the fine-tuned model forecast the same
windows as ``nexttoken evaluate --suite real-<split>`` and the script prints, per frequency and
over the split, relative WQL and MASE against seasonal naive (geometric means over series), the
change of the fine-tuned model against the zero-shot one, and the fine-tuning seconds.

``--flag`` passes extra `train` flags (e.g. ``--flag=--mix-synthetic=0.2``). Knobs chosen with
this script are chosen on real-dev; report real-test (``--split test``) only for the choice made.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nexttoken.baselines import ModelForecaster, SeasonalNaive
from nexttoken.cli import main as cli
from nexttoken.evaluate import real_tasks, run
from nexttoken.lm import load
from nexttoken.realdata import HORIZONS, ORIGINS, catalog, load_series


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> None:
    length = max(len(v) for v in columns.values())
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(columns))
        for t in range(length):
            w.writerow(
                [
                    "" if t >= len(v) or np.isnan(v[t]) else repr(float(v[t]))
                    for v in columns.values()
                ]
            )


def geo(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(np.maximum(values, 1e-12)))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="signals-small")
    ap.add_argument("--split", choices=["dev", "test"], default="dev")
    ap.add_argument("--freq", default="", help="comma-separated frequencies (default all)")
    ap.add_argument("--flag", action="append", default=[], help="an extra train flag, --x=v")
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument(
        "--no-season",
        action="store_true",
        help="fine-tune on the series as they are (default: each frequency's seasons go to "
        "`train --season`: the longest tuple its series have, the largest on a tie)",
    )
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--keep", help="keep the fine-tuned checkpoints under this directory")
    args = ap.parse_args()

    wanted = [f for f in args.freq.split(",") if f] or list(HORIZONS)
    extra: list[str] = []
    for f in args.flag:
        key, _, value = f.partition("=")
        extra += [key, value] if value else [key]
    zero_shot = load(args.model)
    tasks = real_tasks(args.split)
    root = Path(args.keep or tempfile.mkdtemp(prefix="finetune-real-"))
    rows: list[dict[str, Any]] = []
    for freq in wanted:
        entries = [e for e in catalog(args.split) if e.freq == freq]
        if not entries:
            continue
        horizon = HORIZONS[freq]
        data = root / f"{freq}.csv"
        write_csv(data, {e.name: load_series(e) for e in entries})
        out = root / f"ft-{freq}"
        seasons = max((e.seasons for e in entries), key=lambda s: (len(s), s))
        season_flag = [] if args.no_season else ["--season", ",".join(map(str, seasons))]
        t0 = time.perf_counter()
        code = cli(
            [
                "train",
                "--data",
                str(data),
                "--init",
                args.model,
                "--out",
                str(out),
                "--holdout",
                str(ORIGINS * horizon),
                "--no-progress",
                *season_flag,
                *extra,
            ]  # fmt: skip
        )
        seconds = time.perf_counter() - t0
        if code != 0:
            print(f"{freq}: fine-tuning failed (exit {code}); left out of the table", flush=True)
            continue
        config = json.loads((out / "config.json").read_text())
        tuned = load(out)
        group = [t for t in tasks if t.group == freq]
        forecasters = [
            ModelForecaster(zero_shot, name="zero-shot"),
            ModelForecaster(tuned, name="fine-tuned"),
            SeasonalNaive(),
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run(forecasters, group, num_samples=args.samples, seed=0)
        suite = f"real-{args.split}"
        row: dict[str, Any] = {"freq": freq, "series": len(group), "seconds": round(seconds, 1)}
        for name in ("zero-shot", "fine-tuned"):
            for metric in ("wql", "mase"):
                row[f"{name} {metric}"] = list(result.ratios(suite, name, metric, "seasonal naive"))
        stop = config.get("early_stopping", {})
        row["kept step"] = stop.get("best_step")
        row["stopped early"] = stop.get("stopped")
        rows.append(row)
        print(
            f"{freq}: {len(group)} series, zero-shot rel. WQL {geo(row['zero-shot wql']):.3f}, "
            f"fine-tuned {geo(row['fine-tuned wql']):.3f}, kept step {row['kept step']}, "
            f"{seconds:.0f} s",
            flush=True,
        )

    print()
    print("| frequency (series) | zero-shot rel. WQL | fine-tuned | change | zero-shot rel. MASE "
          "| fine-tuned | kept step | fine-tune s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    all_z: dict[str, list[float]] = {"wql": [], "mase": []}
    all_f: dict[str, list[float]] = {"wql": [], "mase": []}
    for r in rows:
        for m in ("wql", "mase"):
            all_z[m] += r[f"zero-shot {m}"]
            all_f[m] += r[f"fine-tuned {m}"]
        zw, fw = geo(r["zero-shot wql"]), geo(r["fine-tuned wql"])
        print(
            f"| {r['freq']} ({r['series']}) | {zw:.3f} | {fw:.3f} | {100 * (fw / zw - 1):+.1f}% "
            f"| {geo(r['zero-shot mase']):.3f} | {geo(r['fine-tuned mase']):.3f} "
            f"| {r['kept step']} | {r['seconds']:.0f} |"
        )
    if rows:
        zw, fw = geo(all_z["wql"]), geo(all_f["wql"])
        total = sum(r["seconds"] for r in rows)
        print(
            f"| all ({sum(r['series'] for r in rows)}) | {zw:.3f} | {fw:.3f} | "
            f"{100 * (fw / zw - 1):+.1f}% | {geo(all_z['mase']):.3f} | {geo(all_f['mase']):.3f} "
            f"| | {total:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(rows, indent=1, default=lambda v: None if math.isnan(v) else v)
        )


if __name__ == "__main__":
    main()
