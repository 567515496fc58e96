"""``nexttoken forecast``: probabilistic forecasts of the series in a CSV file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .common import (
    CLIError,
    add_allow_pickle,
    csv_cell,
    positive_int,
    season_from_dates,
    seasons_arg,
)

NAME = "forecast"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "forecast",
        help="probabilistic forecast of the series in a CSV file",
        description="Forecast every column of IN.csv (header = series names, rows = time steps, "
        "empty cell = missing). IN.csv may start with a column of dates (header ds, date, ... or "
        "values such as 2024-01-31), or be long format with columns unique_id,ds,y. OUT.csv is long "
        "format: series,step,mean,median,q0.1,...,q0.9, with a ds column after step (the dates "
        "that follow the context, at its frequency) when IN.csv had dates.",
    )
    p.add_argument("model", help="checkpoint directory or a shipped model's name")
    p.add_argument(
        "--input", required=True, help="CSV of context series: wide, wide with dates, or long"
    )
    p.add_argument("--horizon", required=True, type=positive_int, help="steps to forecast")
    p.add_argument(
        "--samples", type=positive_int, default=20, help="sample paths per series (default 20)"
    )
    p.add_argument("--output", help="write the forecast CSV here (default: print it)")
    p.add_argument("--plot", help="write a fan chart PNG here")
    p.add_argument("--truth", help="CSV with the true continuation, drawn on the fan chart")
    p.add_argument(
        "--heatmap",
        help="write a PNG of the next-token distribution at each step of the first series' first sample path",
    )
    p.add_argument(
        "--trend",
        choices=["auto", "linear", "none"],
        default="auto",
        help="auto (default): per series, a backtest on the end of its context decides whether "
        "the model forecasts it better with its straight-line trend removed (then continued and "
        "added back), and, for a series whose season is taken out (--season), whether it sees "
        "its whole window of what is left or only the last 256 steps; linear: always remove the "
        "line; none: the model alone",
    )
    p.add_argument(
        "--season",
        type=seasons_arg,
        default=None,
        help="the series' season in steps, or several comma-separated, the main one first (12 "
        "for monthly data; 24,168 for hourly): with --trend auto a series whose season is strong "
        "and fits twice into its context has its average seasonal profile taken out before the "
        "model forecasts, and added back (default: the calendar's season when IN.csv has "
        "dates, e.g. 12 for monthly, 24 for hourly; else none)",
    )
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=positive_int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    add_allow_pickle(p)
    return p


def run(args: argparse.Namespace) -> int:
    from ..forecast import SHORT_VIEW, forecast
    from ..frames import read_table
    from ..lm import load
    from ..signals import read_csv

    lm = load(args.model, allow_pickle=args.allow_pickle)
    table = read_table(args.input)
    if not table.values:
        raise CLIError(f"{args.input} has no series columns")
    names = table.names
    contexts, times = [], []
    for name, v, t in zip(names, table.values, table.times):
        observed = np.flatnonzero(~np.isnan(v))
        if observed.size == 0:
            raise CLIError(
                f"{args.input}: series {name!r} has no observed values; fill it or drop the column"
            )
        end = observed[-1] + 1  # drop trailing blanks: the forecast starts after the last value
        contexts.append(v[:end])
        times.append(None if t is None else t[:end])
    season = args.season
    if season is None and args.trend == "auto":
        found = season_from_dates(times)
        season = (found,) if found and found > 1 else None
    f = forecast(
        lm,
        contexts,
        args.horizon,
        num_samples=args.samples,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        names=names,
        trend=args.trend,
        season=season,
    )
    if f.season_removed.any():
        kept = len(names) - int(f.season_removed.sum())
        print(
            f"nexttoken: note: {int(f.season_removed.sum())} of {len(names)} series forecast "
            f"with their seasonal profile (season {', '.join(map(str, season or ()))}) removed "
            "and added back"
            + (f"; {kept} kept theirs (too weak, or too long for the context)" if kept else ""),
            file=sys.stderr,
        )
        window = lm.model.config.context_length
        assert f.seen is not None
        shorter = sum(int(n < min(len(c), window)) for n, c in zip(f.seen, contexts))
        if shorter:
            print(
                f"nexttoken: note: the backtest showed the model only the last {SHORT_VIEW} "
                f"steps of what is left for {shorter} of them (a level that wanders)",
                file=sys.stderr,
            )
    text = _forecast_csv(f, times, args.horizon)
    if args.output:
        from ..checkpoint import atomic_write

        atomic_write(Path(args.output), lambda p: p.write_text(text))
        print(f"wrote {len(names)} series x {args.horizon} steps to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        from ..plots import fan_chart

        truths = None
        if args.truth:
            t = read_csv(args.truth)
            truths = [t.get(n) for n in names]
        fan_chart(
            args.plot,
            contexts,
            f.quantiles,
            f.quantile_levels,
            f.median,
            truths=truths,
            names=names,
            title=f"{lm.source}: {args.samples} sample paths",
        )
        print(f"wrote fan chart to {args.plot}", file=sys.stderr)
    if args.heatmap:
        shown = f
        if f.trend_removed[0] or f.season_removed[0]:
            print(
                f"note: {names[0]!r} was forecast with its trend or season removed; the heat map "
                "shows the model on the series as it is (--trend none)",
                file=sys.stderr,
            )
            shown = forecast(
                lm,
                [contexts[0]],
                args.horizon,
                num_samples=1,
                temperature=args.temperature,
                top_k=args.top_k,
                top_p=args.top_p,
                seed=args.seed,
                trend="none",
            )
        _forecast_heatmap(lm, shown, contexts[0], args.heatmap, names[0])
    return 0


def _forecast_csv(f: Any, times: list[Any], horizon: int) -> str:
    """Long CSV: series, step[, ds], mean, median, q0.1..q0.9 (ds when the input had dates)."""
    from ..frames import future_times

    header, rows = f.rows([future_times(t, horizon) for t in times])
    lines = [",".join(header)]
    for row in rows:
        lead = [csv_cell(row[0]), str(row[1])]
        if header[2] == "ds":
            lead.append("" if row[2] is None else str(row[2]))
        lines.append(",".join(lead + [f"{c:.6g}" for c in row[len(lead) :]]))
    return "\n".join(lines) + "\n"


def _forecast_heatmap(lm: Any, f: Any, context: np.ndarray, path: str, name: str) -> None:
    from ..forecast import path_distributions
    from ..plots import distribution_heatmap

    probs, values = path_distributions(lm, f, context)
    distribution_heatmap(
        path,
        probs,
        values,
        path_values=f.samples[0, 0],
        title=f"{name}: next-token distribution at each step of one sampled path",
    )
    print(f"wrote heat map to {path}", file=sys.stderr)
