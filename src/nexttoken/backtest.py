"""Backtest on your own series: rolling origins over the end of each series, models and
classical baselines forecast the same windows, and a leaderboard scored as ``evaluate`` scores.

Window ``k`` of ``K`` (1 = the earliest) holds out ``horizon`` steps ending ``(K - k) * step``
steps before the end of each series; everything before them is the context. Every forecaster
sees the same contexts, sample count and seed. Scores are ``nexttoken.evaluate``'s (each window
is a dataset of the suite ``backtest``): relative WQL and MASE are geometric means over the
windows of the score over seasonal naive's, MASE scaled by each series' own season (found from
its context, or ``season``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .evaluate import EvaluationResult, Task, run

__all__ = ["MIN_CONTEXT", "backtest_tasks", "backtest", "Backtest", "leaderboard"]

#: A series needs at least this many observed steps before its earliest held-out window.
MIN_CONTEXT = 8


def backtest_tasks(
    series: Sequence[np.ndarray],
    names: Sequence[str],
    horizon: int,
    windows: int = 3,
    step: int | None = None,
    season: int | None = None,
) -> list[Task]:
    """The windows of a backtest, earliest first, as tasks of the suite ``backtest``.

    Raises a ``ValueError`` naming every series too short for the windows asked (none is
    skipped), and any whose held-out steps have missing values."""
    if horizon < 1 or windows < 1:
        raise ValueError(f"horizon and windows must be >= 1 (got {horizon}, {windows})")
    step = horizon if step is None else step
    if step < 1:
        raise ValueError(f"step must be >= 1 (got {step})")
    if season is not None and season < 1:
        raise ValueError(f"season must be >= 1 (got {season})")
    held = (windows - 1) * step + horizon
    problems = []
    trimmed = []
    for name, x in zip(names, series, strict=True):
        x = np.asarray(x, dtype=np.float64)
        observed = np.flatnonzero(~np.isnan(x))
        x = x[: observed[-1] + 1] if observed.size else x[:0]  # ends at its last value
        before = int((~np.isnan(x[: max(0, len(x) - held)])).sum())
        if before < MIN_CONTEXT:
            problems.append(
                f"{name!r} has {observed.size} observed steps; {windows} window(s) of {horizon} "
                f"every {step} hold out its last {held} and need {MIN_CONTEXT} before them"
            )
        elif np.isnan(x[-held:]).any():
            problems.append(
                f"{name!r} has missing values in its last {held} steps, which the backtest holds "
                "out; fill them or ask for fewer --windows"
            )
        trimmed.append(x)
    if problems:
        raise ValueError(
            "series too short or with gaps for this backtest: "
            + "; ".join(problems)
            + ". Shorten --horizon, ask for fewer --windows or a smaller --step, or leave them out"
        )
    tasks = []
    for k in range(windows):
        back = (windows - 1 - k) * step  # steps after the window's end
        contexts = [x[: len(x) - back - horizon] for x in trimmed]
        targets = np.stack([x[len(x) - back - horizon : len(x) - back] for x in trimmed])
        period = [season] * len(contexts) if season else []
        label = f"window {k + 1}" + (
            f" (ends {back} steps before the last)" if back else " (the last)"
        )
        known = (season,) if season else ()  # every forecaster gets the season given
        tasks.append(Task("backtest", label, contexts, targets, period, known))
    return tasks


@dataclass
class Backtest:
    """A backtest's scores: ``table`` (the leaderboard, a ``pandas.DataFrame``), the
    evaluation behind it (per-series metrics and forecasts) and the windows."""

    table: Any
    result: EvaluationResult
    tasks: list[Task]
    names: list[str]


def leaderboard(result: EvaluationResult, reference: str = "seasonal naive") -> Any:
    """One row per forecaster, best relative WQL first: ``model``, ``relative_wql``,
    ``relative_mase`` (geometric means over windows of the score over ``reference``'s), ``wql``,
    ``mase``, ``coverage80`` (mean share of the truth in the 10-90% band) and ``seconds``."""
    import pandas as pd

    rows = []
    for model in result.models:
        rows.append(
            {
                "model": model,
                "relative_wql": result.relative("backtest", model, "wql", reference),
                "relative_mase": result.relative("backtest", model, "mase", reference),
                "wql": result.suite_mean("backtest", model, "wql"),
                "mase": result.suite_mean("backtest", model, "mase"),
                "coverage80": result.suite_mean("backtest", model, "coverage80"),
                "seconds": result.seconds[model],
            }
        )
    table = pd.DataFrame(rows).sort_values("relative_wql", kind="stable").reset_index(drop=True)
    return table


def backtest(
    forecasters: Sequence[Any],
    data: Any,
    horizon: int,
    *,
    windows: int = 3,
    step: int | None = None,
    season: int | None = None,
    num_samples: int = 20,
    seed: int = 0,
    names: Sequence[str] | None = None,
    on_window: Callable[[str], None] | None = None,
) -> Backtest:
    """Score ``forecasters`` (``nexttoken.baselines.ModelForecaster`` or a baseline; seasonal
    naive is added as the reference when missing) on rolling windows of ``data`` (any form
    ``nexttoken.forecast`` takes: arrays, lists, a wide or long ``DataFrame``; ``names`` name
    the series of arrays and lists). ``on_window`` is called after each window."""
    from .baselines import SeasonalNaive
    from .frames import read_series

    given = read_series(data, names)
    forecasters = list(forecasters)
    if not any(f.name == "seasonal naive" for f in forecasters):
        forecasters.insert(0, SeasonalNaive(period=season))
    tasks = backtest_tasks(given.values, given.names, horizon, windows, step, season)
    t0 = time.perf_counter()
    result = run(forecasters, tasks, num_samples=num_samples, seed=seed, on_progress=on_window)
    result.settings.update(
        {"windows": windows, "step": step or horizon, "horizon": horizon, "season": season}
    )
    result.settings["seconds_total"] = time.perf_counter() - t0
    return Backtest(leaderboard(result), result, tasks, list(given.names))
