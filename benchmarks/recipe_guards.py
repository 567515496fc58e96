"""Choose a recipe on real-dev: candidate models against the shipped one, with the guards.

    python benchmarks/recipe_guards.py runs/candidate [more ...] [--against signals-small]

Prints, for each model, what issue 22 decides a new recipe on, and only that:

- real-dev (never real-test): relative WQL and MASE (geometric means of ratios to seasonal
  naive over the datasets) and how many datasets are worse than 1.5x seasonal naive in MASE,
  then relative WQL per frequency;
- the guards on the synthetic suites: oscillators and levels relative CRPS, the median NMSE of
  sines with a random offset, and the solar-like series' median NMSE (shapes suite).

Every model forecasts the same windows with the same samples and seed as ``nexttoken
evaluate`` (20 paths, seed 0, trend ``auto``). real-test is not touched: it reports a chosen
recipe, it does not choose one.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from nexttoken.baselines import ModelForecaster, SeasonalNaive
from nexttoken.evaluate import FAIL_RATIO, run, suite_tasks
from nexttoken.lm import load

REF = "seasonal naive"


def _median_nmse(result, dataset: str, model: str) -> float:
    return float(np.median(result.metrics[(dataset, model)]["nmse"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="candidate checkpoints or shipped names")
    ap.add_argument(
        "--against", default="signals-small", help="the shipped model (default %(default)s)"
    )
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--suites", default="real-dev,oscillators,levels,shapes")
    args = ap.parse_args()

    names = [args.against, *args.models]
    forecasters = [SeasonalNaive()] + [
        ModelForecaster(load(n), name=n.rstrip("/").split("/")[-1], trend="auto") for n in names
    ]
    labels = [f.name for f in forecasters[1:]]
    rows: dict[str, dict[str, str]] = {m: {} for m in labels}
    groups: dict[str, dict[str, float]] = {m: {} for m in labels}
    for suite in args.suites.split(","):
        t0 = time.perf_counter()
        result = run(forecasters, suite_tasks(suite), num_samples=args.samples, seed=0)
        print(f"{suite}: {time.perf_counter() - t0:.0f} s", flush=True)
        for m in labels:
            r = rows[m]
            if suite.startswith("real"):
                worse = result.ratios(suite, m, "mase", REF) > FAIL_RATIO
                r[f"{suite} rel. WQL"] = f"{result.relative(suite, m, 'wql', REF):.3f}"
                r[f"{suite} rel. MASE"] = f"{result.relative(suite, m, 'mase', REF):.3f}"
                r[f"> {FAIL_RATIO:g}x"] = f"{int(worse.sum())}/{worse.size}"
                for g in sorted({t.group for t in result.tasks}):
                    groups[m][g] = result.relative(suite, m, "wql", REF, group=g)
            else:
                r[f"{suite} rel. CRPS"] = f"{result.relative(suite, m, 'crps', REF):.3f}"
            datasets = {t.dataset for t in result.tasks}
            if "sine + offset" in datasets:
                r["offset sines NMSE"] = f"{_median_nmse(result, 'sine + offset', m):.4f}"
            solar = [d for d in datasets if d.startswith("solar-like")]  # shapes' generated one
            if solar:
                r["solar-like NMSE"] = f"{_median_nmse(result, solar[0], m):.3f}"
    head = ["model", *rows[labels[0]]]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for m in labels:
        print("| " + " | ".join([m, *rows[m].values()]) + " |")
    if any(groups[m] for m in labels):
        freq = list(groups[labels[0]])
        print("\nreal-dev relative WQL per frequency\n\n| model | " + " | ".join(freq) + " |")
        print("|" + "---|" * (len(freq) + 1))
        for m in labels:
            print(f"| {m} | " + " | ".join(f"{groups[m][g]:.3f}" for g in freq) + " |")


if __name__ == "__main__":
    main()
