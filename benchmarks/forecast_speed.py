"""Forecasting speed: 100 series x 20 sample paths x 48 steps, a model against AutoETS.

    python benchmarks/forecast_speed.py [--models signals-small] [--series 100] [--samples 20]
        [--horizon 48] [--contexts 200,512] [--repeats 3] [--season 24]

Each model forecasts the same series (seasonal, with a level, a trend and noise; a context of
each length given) through ``nexttoken.forecast`` with its defaults (``trend="auto"``), and
statsforecast's AutoETS (season 24, its own prediction intervals) forecasts the same contexts
in the same run as the reference a practitioner would otherwise reach for. Best of
``--repeats``; the ratio is AutoETS's seconds over the model's (above 1: the model is faster).

``--season 24`` hands the model the series' season too, as AutoETS has it: ``auto`` then takes
the seasonal profile out, and where the window holds more than ``forecast.SHORT_VIEW`` steps
backtests the model's view as well. The same forecasts are then also timed without that second
backtest (``SHORT_VIEW`` set past every window), and the last column gives its cost as a ratio.
"""

from __future__ import annotations

import argparse
import importlib
import time
from functools import partial

import numpy as np

from nexttoken import forecast, load


def _series(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    level = rng.uniform(-5, 20, (n, 1))
    slope = rng.normal(0, 0.02, (n, 1))
    amp = rng.uniform(0.5, 3, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    return (
        level
        + slope * t
        + amp * np.sin(2 * np.pi * t / 24 + phase)
        + rng.normal(0, 0.3, (n, length))
    )


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="signals-small")
    ap.add_argument("--series", type=int, default=100)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--horizon", type=int, default=48)
    ap.add_argument("--contexts", default="200,512")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--season",
        type=int,
        default=None,
        help="hand the model the season too (default: none, as before 2026-11-29's runs)",
    )
    args = ap.parse_args()
    # the module, for SHORT_VIEW (the package's `forecast` is the function)
    module = importlib.import_module("nexttoken.forecast")

    try:
        from nexttoken.baselines import baseline

        ets = baseline("ets")
        import statsforecast  # noqa: F401
    except ImportError:
        ets = None
    print(
        f"{args.series} series x {args.samples} paths x {args.horizon} steps, best of "
        f"{args.repeats}"
        + (f", the model given season {args.season}" if args.season else "")
        + "\n\n| model | context | seconds | series/s | AutoETS seconds | AutoETS / model |"
        + (" seconds without the view's backtest | with / without |" if args.season else "")
        + "\n|---|---|---|---|---|---|"
        + ("---|---|" if args.season else "")
    )
    for name in args.models.split(","):
        lm = load(name)
        for length in (int(c) for c in args.contexts.split(",")):
            ctx = list(_series(args.series, length))
            run = partial(
                forecast,
                lm,
                ctx,
                args.horizon,
                num_samples=args.samples,
                seed=0,
                season=args.season,
            )
            secs = _best(run, args.repeats)
            if ets is not None:
                ref = _best(
                    partial(ets.forecast, ctx, args.horizon, args.samples, seed=0, seasons=(24,)), 1
                )
                tail = f"{ref:.1f} | {ref / secs:.2f}x"
            else:
                tail = "not installed | "
            if args.season:
                shipped = module.SHORT_VIEW
                module.SHORT_VIEW = 1 << 30  # past every window: no second backtest
                try:
                    plain = _best(run, args.repeats)
                finally:
                    module.SHORT_VIEW = shipped
                tail += f" | {plain:.1f} | {secs / plain:.2f}x"
            print(
                f"| {name} | {length} | {secs:.1f} | {args.series / secs:.1f} | {tail} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
