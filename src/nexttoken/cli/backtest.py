"""``nexttoken backtest``: models and classical baselines on rolling windows of your own series."""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

from .common import CLIError, add_allow_pickle, positive_int, season_from_dates

NAME = "backtest"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help="rolling-origin leaderboard of models and baselines on your own series",
        description="Hold out the last --windows windows of --horizon steps (every --step steps) "
        "of each series of IN.csv (any form `forecast --input` reads), forecast them with each "
        "MODEL and the classical baselines from everything before, and print a leaderboard: "
        "relative WQL and MASE against seasonal naive (geometric means over windows; below 1 "
        "beats it), 80% band coverage, seconds. --out also writes report.md, leaderboard.csv, "
        "results.csv (every metric of every series and window) and fan charts of the last window.",
    )
    p.add_argument(
        "model", nargs="*", help="signal models: checkpoint directories or shipped names"
    )
    p.add_argument("--input", required=True, help="CSV of series (wide, wide with dates, or long)")
    p.add_argument("--horizon", type=positive_int, required=True, help="steps per window")
    p.add_argument("--windows", type=positive_int, default=3, help="windows per series (default 3)")
    p.add_argument(
        "--step", type=positive_int, default=None, help="steps between origins (default --horizon)"
    )
    p.add_argument(
        "--season",
        type=positive_int,
        default=None,
        help="the series' season in steps (12 for monthly data), for seasonal naive, MASE and "
        "every forecaster (a model with --trend auto takes a strong season's profile out "
        "before it forecasts) (default: the calendar's when the file has dates: 12 for "
        "monthly, 7 for daily, 24 for hourly, 48 for half-hourly...; else found from each "
        "context, and the models get none)",
    )
    p.add_argument(
        "--baselines",
        default="seasonal,ar,ets",
        help="comma-separated: last, seasonal, ar, ets, arima, theta, mstl (default "
        "seasonal,ar,ets; ets, arima, theta and mstl need nexttoken[baselines]; arima is slow on "
        "long seasons, mstl takes --season); 'none' for models only",
    )
    p.add_argument(
        "--trend",
        default="auto",
        help="each model's trend choice(s), comma-separated: auto, linear, none (default auto)",
    )
    p.add_argument("--samples", type=positive_int, default=20, help="sample paths (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="directory for report.md, CSVs and fan charts")
    p.add_argument("--no-plots", action="store_true", help="skip the fan charts")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..backtest import backtest
    from ..frames import read_table
    from .evaluate import build_forecasters

    table = read_table(args.input)
    if not table.values:
        raise CLIError(f"{args.input} holds no series")
    if args.season is None:
        args.season = season_from_dates(table.times)
    forecasters = build_forecasters(
        args.model, args.baselines, args.trend, args.allow_pickle, args.season, command=NAME
    )
    bar = tqdm(total=args.windows, unit="window", disable=args.no_progress, file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # contexts longer than a model's window are cropped
        try:
            bt = backtest(
                forecasters,
                table.values,
                args.horizon,
                windows=args.windows,
                step=args.step,
                season=args.season,
                num_samples=args.samples,
                seed=args.seed,
                names=table.names,
                on_window=lambda _: bar.update(1),
            )
        finally:
            bar.close()
    text = markdown(bt.table)
    n = len(table.values)
    print(
        f"{n} series x {args.windows} window(s) of {args.horizon} steps from {Path(args.input).name}\n"
    )
    print(text)
    if args.out:
        command = "nexttoken " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
        report = write(bt, Path(args.out), text, command, plots=not args.no_plots)
        print(f"\nwrote {report}, leaderboard.csv and results.csv")
    return 0


def markdown(table: Any) -> str:
    """The leaderboard as a markdown table, the best relative WQL in bold."""
    lines = [
        "| model | rel. WQL | rel. MASE | WQL | MASE | coverage80 | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in table.iterrows():
        wql = f"**{r.relative_wql:.3f}**" if i == 0 else f"{r.relative_wql:.3f}"
        lines.append(
            f"| {r.model} | {wql} | {r.relative_mase:.3f} | {r.wql:.3f} | {r.mase:.3f} | "
            f"{r.coverage80:.2f} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def write(bt: Any, out: Path, text: str, command: str, plots: bool = True) -> Path:
    from ..evaluate import write_results_csv

    out.mkdir(parents=True, exist_ok=True)
    bt.table.to_csv(out / "leaderboard.csv", index=False)
    write_results_csv(bt.result, out / "results.csv")
    s = bt.result.settings
    lines = ["# nexttoken backtest", ""]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    lines += [
        f"{len(bt.tasks[0].contexts)} series, {s['windows']} window(s) of {s['horizon']} steps, "
        f"one every {s['step']} steps, {s['num_samples']} sample paths, seed {s['seed']}. "
        "rel. = geometric mean over the windows of the score over seasonal naive's (below 1 "
        "beats it); MASE is scaled by each series' seasonal naive error on its context "
        f"(season {s['season'] or 'found from each context'}); coverage80 is the share of the "
        "truth inside the 10-90% band (0.80 is calibrated).",
        "",
        text,
        "",
    ]
    if plots:
        for title, name in _fans(bt, out):
            lines += [f"![{title}]({name})", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _fans(bt: Any, out: Path) -> list[tuple[str, str]]:
    """A fan chart per forecaster of the last window's first six series."""
    try:
        from ..plots import fan_chart, require_matplotlib

        require_matplotlib()
    except ImportError:
        return []
    last = bt.tasks[-1]
    made = []
    for model in bt.result.models:
        fc = bt.result.forecasts[(last.dataset, model)]
        k = min(6, len(last.contexts))
        slug = "".join(c if c.isalnum() else "-" for c in model.lower()).strip("-")
        name = f"fan_{slug}.png"
        fan_chart(
            out / name,
            [c[-3 * last.horizon :] for c in last.contexts[:k]],
            fc.quantiles[:k],
            fc.quantile_levels,
            fc.median[:k],
            truths=list(last.targets[:k]),
            names=[str(n) for n in bt.names[:k]],
            title=f"{model}: the last window",
        )
        made.append((f"{model}, the last window", name))
    return made
