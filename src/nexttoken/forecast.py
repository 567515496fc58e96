"""Probabilistic forecasts from a signal GPT: sample paths -> values, median, mean, quantiles."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .frames import SeriesSet, future_times, read_series
from .generate import generate
from .tokenizers import SignalTokenizer

if TYPE_CHECKING:
    from .lm import LanguageModel

__all__ = [
    "Forecast",
    "forecast",
    "prepare_context",
    "path_distributions",
    "time_text",
    "DEFAULT_QUANTILES",
    "TRENDS",
]

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: How :func:`forecast` treats a trend: ``auto`` removes a series' straight line where a backtest
#: on its own context says that forecasts better, ``linear`` always, ``none`` never.
TRENDS: tuple[str, ...] = ("auto", "linear", "none")


@dataclass
class Forecast:
    """Sample paths of a forecast and their summaries.

    Attributes
    ----------
    samples : ``(series, num_samples, horizon)`` values.
    quantile_levels : the levels of ``quantiles``.
    ids : ``(series, num_samples, horizon)`` the sampled token ids.
    scale, loc : ``(series,)`` each context was tokenized as ``(x - loc) / scale``.
    trend : ``(series, horizon)`` the straight line added back to each series' paths (a
        least-squares line of its context, continued), or None when no series had one removed;
        a row is all zeros for a series the model forecast as it was (see ``trend_removed``).
    """

    samples: np.ndarray
    quantile_levels: tuple[float, ...] = DEFAULT_QUANTILES
    ids: np.ndarray | None = None
    scale: np.ndarray | None = None
    loc: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    times: list[Any] = field(default_factory=list)
    """Per series, the ``horizon`` time stamps forecast (continuing the context's dates or
    ``ds`` at their own frequency), or None when the context had none."""
    trend: np.ndarray | None = None
    seasonal: np.ndarray | None = None
    """``(series, horizon)`` the seasonal profile added back to each series' paths (the average
    shape of its known seasons over its context, continued), or None when no series had one
    removed; a row is all zeros for a series forecast with its season in place."""
    seen: np.ndarray | None = None
    """``(series,)`` how many of each context's last steps the model conditioned on: its window,
    or :data:`SHORT_VIEW` where ``trend="auto"`` chose the shorter view; fewer for a shorter
    context."""

    @property
    def trend_removed(self) -> np.ndarray:
        """``(series,)`` bool: whether the model forecast the series with its line removed."""
        if self.trend is None:
            return np.zeros(self.samples.shape[0], dtype=bool)
        return np.any(self.trend != 0, axis=1)

    @property
    def season_removed(self) -> np.ndarray:
        """``(series,)`` bool: whether the model forecast the series with its seasonal profile
        removed."""
        if self.seasonal is None:
            return np.zeros(self.samples.shape[0], dtype=bool)
        return np.any(self.seasonal != 0, axis=1)

    @property
    def median(self) -> np.ndarray:
        """``(series, horizon)``."""
        return np.median(self.samples, axis=1)

    @property
    def mean(self) -> np.ndarray:
        """``(series, horizon)``."""
        return self.samples.mean(axis=1)

    @property
    def quantiles(self) -> np.ndarray:
        """``(series, len(quantile_levels), horizon)``."""
        return np.moveaxis(np.quantile(self.samples, self.quantile_levels, axis=1), 0, 1)

    def to_pandas(self) -> Any:
        """Long format: ``unique_id, ds, mean, median, q0.1, ..., q0.9``, a row per series and step.

        ``ds`` continues the context's time stamps at their frequency where it had some, else
        counts steps 1..horizon. Ready for utilsforecast's ``evaluate`` after a merge with
        the truth on ``unique_id, ds``. Needs pandas.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Forecast.to_pandas needs pandas: pip install pandas") from None
        n, _, horizon = self.samples.shape
        names = self.names or [f"series_{i}" for i in range(n)]
        times = self.times or [None] * n
        quantiles, median, mean = self.quantiles, self.median, self.mean
        frames = []
        for i in range(n):
            ds = times[i] if times[i] is not None else np.arange(1, horizon + 1)
            cols: dict[str, Any] = {
                "unique_id": names[i],
                "ds": ds,
                "mean": mean[i],
                "median": median[i],
            }
            for j, q in enumerate(self.quantile_levels):
                cols[f"q{q:g}"] = quantiles[i, j]
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)

    def rows(self, times: Sequence[Any] | None = None) -> tuple[list[str], list[list[Any]]]:
        """The long table of ``nexttoken forecast``'s OUT.csv: a header and a row per series and
        step, ``series, step[, ds], mean, median, q0.1..q0.9``.

        ``ds`` (present when some series has time stamps: ``times``, default :attr:`times`)
        holds ISO dates (``2024-01-31``, or with a time of day when it has one), numbers as
        they are, and None for a series without stamps."""
        n, _, horizon = self.samples.shape
        names = self.names or [f"series_{i}" for i in range(n)]
        future = list(times) if times is not None else (self.times or [None] * n)
        dated = any(t is not None for t in future)
        header = ["series", "step"] + (["ds"] if dated else [])
        header += ["mean", "median"] + [f"q{q:g}" for q in self.quantile_levels]
        q, med, mean = self.quantiles, self.median, self.mean
        out = []
        for i, name in enumerate(names):
            for h in range(horizon):
                row: list[Any] = [name, h + 1]
                if dated:
                    row.append(None if future[i] is None else time_text(future[i][h]))
                row += [float(mean[i, h]), float(med[i, h]), *(float(v) for v in q[i, :, h])]
                out.append(row)
        return header, out


def time_text(value: Any) -> Any:
    """A time stamp as text: ``2024-01-31`` for midnight, else ``2024-01-31 12:00:00``;
    numbers stay numbers."""
    if isinstance(value, np.datetime64):
        text = str(np.datetime_as_string(value, unit="s"))
        return text[:10] if text.endswith("T00:00:00") else text.replace("T", " ")
    if isinstance(value, np.generic):
        return value.item()
    return value


@torch.no_grad()
def path_distributions(
    lm: LanguageModel, f: Forecast, context: Any, series: int = 0, path: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The next-value distribution the model gave at each step of one sample path of ``f``
    (teacher-forced along that path): ``probs`` ``(horizon, n_bins)`` over the value bins, and
    the bins' values ``(n_bins,)`` in the series' units. ``context`` is that series' context."""
    from .analysis import step_distributions

    tok = lm.tokenizer
    if not isinstance(tok, SignalTokenizer) or f.ids is None or f.scale is None:
        raise ValueError("path distributions need a signal model's forecast")
    if f.trend_removed[series] or f.season_removed[series]:
        raise ValueError(
            "this series was forecast with its linear trend or seasonal profile removed, so its "
            "token ids are of the residual; forecast it with trend='none' to see the model's own "
            "distributions"
        )
    loc = 0.0 if f.loc is None else float(f.loc[series])
    scale = float(f.scale[series])
    values = np.asarray(context, dtype=np.float64)[-lm.model.config.context_length :]
    prompt = tok.values_to_ids(
        torch.tensor(values)[None], torch.tensor([scale]), torch.tensor([loc])
    )[0]
    ids = torch.cat([prompt, torch.as_tensor(f.ids[series, path])])
    probs = step_distributions(lm.model, ids, len(prompt)).numpy()[:, tok.n_special :]
    return probs, tok.centers().numpy() * scale + loc


def prepare_context(context: Any) -> list[np.ndarray]:
    """Any accepted context (:func:`nexttoken.frames.read_series`) -> list of float arrays.

    Leading missing values are dropped (there is nothing before them to condition on).
    """
    return _checked(read_series(context)).values


def _checked(series: SeriesSet) -> SeriesSet:
    for i, row in enumerate(series.values):
        name = series.names[i]
        if np.isinf(row).any():
            raise ValueError(
                f"series {name!r} contains inf; give finite numbers (NaN marks a missing value)"
            )
        observed = np.flatnonzero(~np.isnan(row))
        if observed.size == 0:
            raise ValueError(
                f"series {name!r} is empty or all missing; give at least one observed value"
            )
        series.values[i] = row[observed[0] :]
    return series


@torch.no_grad()
def _signal_tokenizer(
    lm: LanguageModel, horizon: int, num_samples: int, quantile_levels: Sequence[float]
) -> SignalTokenizer:
    """The model's signal tokenizer, after checking forecast's arguments."""
    tok = lm.tokenizer
    if not isinstance(tok, SignalTokenizer):
        raise ValueError(
            "forecast needs a signal model (numbers in, numbers out); this model reads text"
        )
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 (got {horizon})")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1 (got {num_samples})")
    if any(not 0 < q < 1 for q in quantile_levels):
        raise ValueError(f"quantile levels must be between 0 and 1 (got {list(quantile_levels)})")
    return tok


def _batches(series: Sequence[np.ndarray], per_batch: int) -> Iterator[list[int]]:
    """Indices of series decoded as one batch: series of one length, at most ``per_batch``."""
    by_length: dict[int, list[int]] = {}
    for i, v in enumerate(series):
        by_length.setdefault(len(v), []).append(i)
    for members in by_length.values():
        for b in range(0, len(members), per_batch):
            yield members[b : b + per_batch]


def forecast(
    lm: LanguageModel,
    context: Any,
    horizon: int,
    num_samples: int = 20,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    greedy: bool = False,
    seed: int | None = 0,
    quantile_levels: Sequence[float] = DEFAULT_QUANTILES,
    names: Sequence[str] | None = None,
    max_batch_rows: int = 2048,
    trend: str = "auto",
    season: int | Sequence[int] | None = None,
    generate_fn: Callable[..., torch.Tensor] | None = None,
) -> Forecast:
    """Sample ``num_samples`` continuations of ``horizon`` steps for each series of ``context``.

    Parameters
    ----------
    lm : a loaded signal model (``nexttoken.load``).
    context : one series (a 1-D array, list or ``pd.Series``), several (a 2-D array
        ``(series, T)``, a list of 1-D arrays of any lengths, a wide ``pd.DataFrame`` with a
        column per series, or a long one with ``unique_id``, ``ds``, ``y``); NaN marks a
        missing value. Dates (a DatetimeIndex, or ``ds``) are kept: see :meth:`Forecast.to_pandas`.
    horizon : steps to forecast; longer than the context window works (the window slides).
    num_samples : sample paths per series (``greedy`` makes them all the argmax path).
    seed : makes the sample paths repeatable (``None``: a fresh draw each call).
    max_batch_rows : at most this many sample paths are decoded as one batch.
    trend : ``"auto"`` (default): for each series, a backtest on the end of its own context
        decides whether the model forecasts it better as it is or with a straight-line trend
        removed (the least-squares line of the whole context or of its last half, continued
        over the horizon and added back to every path); ``"linear"``: always remove the whole
        context's line; ``"none"``: the model alone. The models learn levels and seasons well
        and steady growth less so: docs/evaluation.md scores each choice. ``auto`` skips the
        backtest (and keeps the series as it is) where the whole context's line explains under
        5% of its variance; elsewhere it costs three extra forecasts of ``min(horizon, len // 4)``
        steps. :attr:`Forecast.trend` holds the lines that were added back.
    season : the series' known seasons in steps, the main one first (12 for monthly data, 24
        and 168 for hourly; ``nexttoken.frames.calendar_season`` reads one from dates). With
        ``trend="auto"``, a series whose season fits at least twice into its context and is
        strong (seasonal strength, adjusted for the profile's size, at least
        :data:`MIN_SEASON_STRENGTH`) is forecast with its seasonal profile removed: the average
        shape of each season around its moving average, as classical decomposition takes it,
        recent cycles weighing more (a half-life of :data:`PROFILE_HALF_LIFE` cycles, or the
        last cycle alone where a backtest on the series' own last cycles says its season
        changes from cycle to cycle: :data:`PROFILE_LAST_CYCLE`), read from the model's
        window, or for a season that does not fit twice into it (the week of
        half-hourly data) from up to :data:`PROFILE_LONG_CYCLES` of its cycles before the
        forecast, where the context has them; a series whose shortest season has 96 steps or
        more (a day of 5-minute counts) may have its profiles smoothed across neighbouring
        phases where the same backtest says so (:data:`PROFILE_SMOOTH_WIDTHS`). The model
        forecasts what is left (the backtest still decides on a line, and on whether the model
        sees its whole window of it or only the last :data:`SHORT_VIEW` steps:
        :attr:`Forecast.seen`), and the profile is continued and added back to every path
        (:attr:`Forecast.seasonal`). Ignored with ``trend="none"`` or ``"linear"``. Default
        None: no season is taken out. docs/evaluation.md scores the rule.
    generate_fn : what samples the paths, with :func:`nexttoken.generate`'s arguments (default:
        that function); the explorer passes its batcher, which decodes concurrent forecasts
        together.

    Returns
    -------
    :class:`Forecast` with ``samples`` shaped ``(series, num_samples, horizon)``.
    """
    _signal_tokenizer(lm, horizon, num_samples, quantile_levels)
    if trend not in TRENDS:
        raise ValueError(f"trend must be one of {', '.join(TRENDS)} (got {trend!r})")
    seasons = _seasons(season)
    given = _checked(read_series(context, names))
    full = given.values
    window = lm.model.config.context_length
    longest = max(len(v) for v in full)
    if longest > window:
        warnings.warn(
            f"a context has {longest} steps, more than the model's window of {window}; "
            f"each forecast conditions on (and is scaled by) its last {window} steps"
            + (" (seasonal profiles are read from all of them)" if seasons else ""),
            stacklevel=2,
        )
    sampling = dict(
        greedy=greedy,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        max_batch_rows=max_batch_rows,
        generate_fn=generate_fn or generate,
    )
    choices: list[Choice]
    if trend == "none":
        choices = [(None, False, None)] * len(full)
    elif trend == "linear":
        choices = [(1.0, False, None)] * len(full)
    else:
        choices = _choose(lm, full, seasons, horizon, num_samples, seed, sampling, window)
    parts = [
        _parts(v, fit, _profile(v, seasons, window) if deseason else None, window, horizon)
        for v, (fit, deseason, _) in zip(full, choices)
    ]
    shown = [
        (v[-window:] - taken)[-(view or window) :]
        for v, (taken, _, _), (_, _, view) in zip(full, parts, choices)
    ]
    samples, ids_out, scales, locs = _sample(lm, shown, horizon, num_samples, seed, sampling)
    zeros = np.zeros(horizon)
    added = seasonal = None
    if any(ln is not None for _, ln, _ in parts):
        added = np.stack([zeros if ln is None else ln for _, ln, _ in parts])
        samples += added[:, None, :]
    if any(prof is not None for _, _, prof in parts):
        seasonal = np.stack([zeros if prof is None else prof for _, _, prof in parts])
        samples += seasonal[:, None, :]
    return Forecast(
        samples=samples,
        quantile_levels=tuple(quantile_levels),
        ids=ids_out,
        scale=scales,
        loc=locs,
        names=given.names,
        times=[future_times(t, horizon) for t in given.times],
        trend=added,
        seasonal=seasonal,
        seen=np.array([len(v) for v in shown], dtype=np.int64),
    )


def _sample(
    lm: LanguageModel,
    series: list[np.ndarray],
    horizon: int,
    num_samples: int,
    seed: int | None,
    sampling: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample paths of every series: values and ids ``(series, num_samples, horizon)``, and
    each series' ``scale`` and ``loc``. Series of one length run as one batch."""
    tok = lm.tokenizer
    assert isinstance(tok, SignalTokenizer)
    device = next(lm.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    per_batch = max(1, sampling["max_batch_rows"] // num_samples)
    samples = np.empty((len(series), num_samples, horizon))
    ids_out = np.empty((len(series), num_samples, horizon), dtype=np.int64)
    scales = np.empty(len(series))
    locs = np.empty(len(series))
    for group in _batches(series, per_batch):
        ids, loc, scale = tok.input_transform(np.stack([series[i] for i in group]))
        paths = sampling["generate_fn"](
            lm.model,
            ids.repeat_interleave(num_samples, dim=0).to(device),
            horizon,
            greedy=sampling["greedy"],
            temperature=sampling["temperature"],
            top_k=sampling["top_k"],
            top_p=sampling["top_p"],
            min_p=sampling["min_p"],
            generator=generator,
            suppress_ids=tok.special_ids,
        )[:, -horizon:].cpu()
        values = tok.ids_to_values(
            paths, scale.repeat_interleave(num_samples), loc.repeat_interleave(num_samples)
        )
        samples[group] = values.numpy().reshape(len(group), num_samples, horizon)
        ids_out[group] = paths.numpy().reshape(len(group), num_samples, horizon)
        scales[group] = scale.numpy()
        locs[group] = loc.numpy()
    return samples, ids_out, scales, locs


#: ``auto`` backtests a series only when its context has this many steps before the held-out ones.
MIN_TREND_CONTEXT = 24
#: ``auto`` removes a line only when that cuts the backtest's error to below this share of the
#: model's error alone: a clear gain, not a coin flip on a series without a trend.
TREND_MARGIN = 0.9
#: ``auto`` tries lines only on a series whose whole-context line explains at least this share
#: of its variance (R^2): below it there is no trend worth a backtest's coin flip.
MIN_TREND_R2 = 0.05
#: The lines ``auto`` tries: least-squares lines of the whole context and of its last half.
TREND_FITS: tuple[float, ...] = (1.0, 0.5)

Line = tuple[float, float]


def _line(x: np.ndarray, fit: float = 1.0) -> Line | None:
    """The least-squares line ``(intercept, slope)`` through the observed steps of the last
    ``fit`` share of ``x`` (step 0 is its first value), or None with fewer than 3 observed
    steps there or a flat series.

    Growth is often curved (a few % a year compounds): the line of the recent half then has
    the slope at the end, which is what a forecast continues; for a straight trend under an
    oscillation the whole context's line is the steadier estimate."""
    start = len(x) - max(3, int(round(fit * len(x))))
    t = start + np.flatnonzero(~np.isnan(x[start:]))
    if t.size < 3:
        return None
    y = x[t]
    tc = t - t.mean()
    slope = float(tc @ (y - y.mean())) / float(tc @ tc)
    if slope == 0 or not np.isfinite(slope):
        return None
    return float(y.mean() - slope * t.mean()), slope


def _on(line: Line | None, start: int, stop: int) -> np.ndarray:
    """The line's values at steps ``start..stop-1`` (zeros for no line)."""
    if line is None:
        return np.zeros(stop - start)
    return line[0] + line[1] * np.arange(start, stop)


def _explained(x: np.ndarray) -> float:
    """The share of the variance of ``x``'s observed steps that its whole-context line explains
    (0 without a line)."""
    line = _line(x)
    if line is None:
        return 0.0
    left = x - _on(line, 0, len(x))
    return 1.0 - float(np.nanvar(left)) / max(float(np.nanvar(x)), 1e-300)


#: ``auto`` removes a seasonal profile only from a series whose season is at least this strong:
#: ``1 - var(remainder) / var(season + remainder)`` around the season's moving average (the
#: seasonal strength of Wang, Smith and Hyndman, 2006; 0 for noise, 1 for a clean season),
#: adjusted for the values the profile fits as adjusted R^2 is (so noise scores about 0).
MIN_SEASON_STRENGTH = 0.3
#: A season's profile weighs each value by ``2 ** (-age / (PROFILE_HALF_LIFE x season))``, its
#: age in steps from the context's end: a value two cycles older than another weighs half as
#: much, so that a season may change (as Holt-Winters lets it), over the steps it is read from.
PROFILE_HALF_LIFE = 2.0
#: Each season's profile is read from the model's window, or, for a season that does not fit
#: twice into the window (the week of half-hourly data), from the last ``PROFILE_LONG_CYCLES``
#: cycles of the context, where it has them (older ones would weigh under 0.4%).
PROFILE_LONG_CYCLES = 16
#: The other half-life each series' seasons may take, in cycles: in effect the last cycle alone
#: (the one before it weighs ``2 ** -20``), for a season that changes from cycle to cycle (a
#: week of demand as the year turns, a holiday). A backtest on the series' own detrended values
#: decides (:func:`_half_life`): each of its last ``PROFILE_BACKTEST_CYCLES`` cycles is
#: predicted by the profile of the steps before it, with either half-life.
PROFILE_LAST_CYCLE = 0.05
PROFILE_BACKTEST_CYCLES = 3
#: A season read from the window takes the last cycle alone only where that cuts the backtest's
#: squared error below this share of :data:`PROFILE_HALF_LIFE`'s (a short season's day-to-day
#: changes are mostly weather that does not repeat); a long season takes the lower error.
PROFILE_SWITCH_MARGIN = 0.8

#: A series' seasonal profiles may be smoothed across neighbouring phases (a circular moving
#: average over one of these widths, in steps), for a smooth shape read from noisy values (calls
#: counted every 5 minutes): the width is chosen once per series, on its shortest season, by the
#: backtest that chooses the half-life (:func:`_smoothing`), and every longer season is smoothed
#: over the same width. Only widths up to ``1/PROFILE_SMOOTH_SHARE`` of the shortest season are
#: tried, so a series whose shortest season has under 96 steps (hourly and half-hourly days,
#: weeks of daily data) is never smoothed; a width over 1 is taken only where it cuts the
#: squared error below ``PROFILE_SMOOTH_MARGIN`` times the raw profile's.
PROFILE_SMOOTH_WIDTHS: tuple[int, ...] = (1, 3, 5, 9, 17)
PROFILE_SMOOTH_SHARE = 32
PROFILE_SMOOTH_MARGIN = 0.9

#: ``auto`` also backtests each series whose seasonal profile it removes with the model seeing
#: only the last ``SHORT_VIEW`` steps of what is left (where its window holds more): a level that
#: wanders from day to day is followed more closely from the last few days than from the whole
#: window, which the model's forecast leans back towards. The backtest decides, as for a line.
SHORT_VIEW = 256

#: What ``auto`` chose for a series: the share of the context its line is fitted to (None: no
#: line; see :data:`TREND_FITS`), whether its seasonal profile is removed, and how many of the
#: last steps the model sees (None: its whole window; see :data:`SHORT_VIEW`).
Choice = tuple[float | None, bool, int | None]
#: One season's profile: ``(season, values)``, the value at step ``t`` being ``values[t % season]``.
Profile = list[tuple[int, np.ndarray]]


def _seasons(season: int | Sequence[int] | None) -> tuple[int, ...]:
    if season is None:
        return ()
    given = tuple(season) if isinstance(season, (list, tuple, np.ndarray)) else (season,)
    out = []
    for m in given:
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(
                f"season must be a whole number of steps >= 1, or a list of them (got {season!r})"
            )
        out.append(int(m))
    return tuple(out)


def _moving_average(x: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """The centred moving average of length ``m`` (2 x m for even ``m``, as classical
    decomposition takes it) over the observed steps, and the step its first value belongs to.
    Steps whose window is less than half observed are NaN. Running sums: linear in ``len(x)``
    whatever ``m``."""
    seen = ~np.isnan(x)
    value = np.concatenate([[0.0], np.cumsum(np.where(seen, x, 0.0))])
    count = np.concatenate([[0.0], np.cumsum(seen)])
    width = m + 1 if m % 2 == 0 else m  # points under the window
    n = len(x) - width + 1
    if n < 1:
        return np.empty(0), (width - 1) // 2
    num = value[width : width + n] - value[:n]
    den = count[width : width + n] - count[:n]
    if m % 2 == 0:  # the two end points weigh a half
        ends = np.where(seen, x, 0.0)
        num = num - 0.5 * (ends[:n] + ends[width - 1 : width - 1 + n])
        den = den - 0.5 * (seen[:n].astype(np.float64) + seen[width - 1 : width - 1 + n])
    with np.errstate(invalid="ignore", divide="ignore"):
        ma = np.where(den >= 0.5 * m, num / np.maximum(den, 1e-300), np.nan)
    return ma, (width - 1) // 2


def _profile(x: np.ndarray, seasons: Sequence[int], window: int = 0) -> Profile | None:
    """The seasonal profile of ``x``: for each known season (shortest first) that fits at least
    twice into ``x``, the weighted mean by phase (:data:`PROFILE_HALF_LIFE`, or the last cycle
    alone: :func:`_half_life`) of what is left around that season's moving average (after the
    shorter seasons' profiles are taken out), centred on zero, and smoothed across phases where
    the shortest season's backtest says so (:func:`_smoothing`). None when no season fits or the
    seasons together are weaker than :data:`MIN_SEASON_STRENGTH`."""
    rest = np.asarray(x, dtype=np.float64).copy()
    out: Profile = []
    first: tuple[np.ndarray, int] | None = None  # the first season's detrended steps, and start
    width: int | None = None  # one smoothing width per series, chosen on its shortest season
    for m in sorted({m for m in seasons if m >= 2}):
        # each season is read from the window, a long one from up to PROFILE_LONG_CYCLES cycles
        span = window if 2 * m <= window else PROFILE_LONG_CYCLES * m
        start = max(0, len(rest) - span) if window else 0
        seg = rest[start:]
        if len(seg) < 2 * m:
            continue
        ma, c = _moving_average(seg, m)
        c += start
        d = rest[c : c + len(ma)] - ma
        at = c + np.arange(len(d))
        ok = ~np.isnan(d)
        # recent cycles weigh more: a half-life of PROFILE_HALF_LIFE cycles, or of the last
        # cycle alone where the series' own backtest says its season changes
        margin = PROFILE_SWITCH_MARGIN if not window or 2 * m <= window else 1.0
        half = _half_life(d[ok], at[ok], m, margin)
        values = _phase_means(d[ok], at[ok], m, len(rest), half)
        if values is None:
            continue
        if width is None:
            width = _smoothing(d[ok], at[ok], m, half)
        values = _smoothed(values, width)
        if first is None:
            first = (d, c)
        rest -= values[np.arange(len(rest)) % m]
        out.append((m, values))
    if first is None:
        return None
    # strength over the first season's window: remainder against season + remainder, the
    # profiles as read (a season read from its last cycle that the older cycles of the window
    # do not follow is weak there, and is left to the model, which sees those cycles)
    d, c = first
    remainder = d - _continued(out, c, len(d))
    total = float(np.nanvar(d))
    if not np.isfinite(total) or total <= 0:
        return None
    # adjusted for the m - 1 values the profile fits (as adjusted R^2 is): a profile read from
    # one or two cycles fits noise too
    seen = int(np.count_nonzero(~np.isnan(remainder)))
    if seen <= out[0][0]:
        return None
    strength = 1.0 - float(np.nanvar(remainder)) * (seen - 1) / (seen - out[0][0]) / total
    return out if strength >= MIN_SEASON_STRENGTH else None


def _phase_means(
    d: np.ndarray, at: np.ndarray, m: int, until: int, half: float
) -> np.ndarray | None:
    """The mean by phase (``at % m``) of the values ``d`` at steps ``at`` before ``until``, each
    weighing ``2 ** (-age / (half x m))`` (its age counted from ``until - 1``), centred on zero;
    None where a phase has no value."""
    before = at < until
    at, d = at[before], d[before]
    phase = at % m
    weight = np.exp2(np.maximum(-(until - 1 - at) / (half * m), -600.0))
    total = np.bincount(phase, weights=weight, minlength=m)
    if (total == 0).any():
        return None
    values = np.bincount(phase, weights=weight * d, minlength=m) / total
    return values - values.mean()


def _backtest_cycles(
    d: np.ndarray, at: np.ndarray, m: int, half: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each of the last :data:`PROFILE_BACKTEST_CYCLES` cycles of ``d`` (observed, at steps
    ``at``) that has a whole cycle before it, newest first: the cycle's steps (a mask over
    ``at``) and the profile of the steps before it (half-life ``half``)."""
    if len(at) == 0:
        return
    end = int(at[-1]) + 1
    for k in range(1, PROFILE_BACKTEST_CYCLES + 1):
        origin = end - k * m
        if origin - int(at[0]) < m:
            return
        values = _phase_means(d, at, m, origin, half)
        if values is None:
            return
        yield (at >= origin) & (at < origin + m), values


def _half_life(d: np.ndarray, at: np.ndarray, m: int, margin: float) -> float:
    """The half-life (in cycles) of a season's profile: :data:`PROFILE_HALF_LIFE`, or
    :data:`PROFILE_LAST_CYCLE` where the series' detrended values ``d`` (observed, at steps
    ``at``) say its season changes from cycle to cycle: each of the last
    :data:`PROFILE_BACKTEST_CYCLES` cycles of ``d`` that has a whole cycle before it is
    predicted by the profile of the steps before it, and the last cycle alone is taken where
    its squared error is below ``margin`` times the other's."""
    errors = []
    for half in (PROFILE_HALF_LIFE, PROFILE_LAST_CYCLE):
        total, count = 0.0, 0
        for held, values in _backtest_cycles(d, at, m, half):
            total += float(np.sum((d[held] - values[at[held] % m]) ** 2))
            count += int(held.sum())
        if count == 0:
            return PROFILE_HALF_LIFE
        errors.append(total / count)
    return PROFILE_LAST_CYCLE if errors[1] < margin * errors[0] else PROFILE_HALF_LIFE


def _smoothed(values: np.ndarray, width: int) -> np.ndarray:
    """The circular moving average of a profile over ``width`` phases (odd; 1: as it is)."""
    if width <= 1:
        return values
    half = width // 2
    wrapped = np.concatenate([values[-half:], values, values[:half]])
    return np.convolve(wrapped, np.full(width, 1.0 / width), mode="valid")


def _smoothing(d: np.ndarray, at: np.ndarray, m: int, half: float) -> int:
    """The width a series' profiles are smoothed over (:data:`PROFILE_SMOOTH_WIDTHS`), from its
    shortest season ``m``: each of the last :data:`PROFILE_BACKTEST_CYCLES` cycles of ``d``
    (observed, at steps ``at``) that has a whole cycle before it is predicted by the profile of
    the steps before it (half-life ``half``), smoothed over each width up to
    ``m // PROFILE_SMOOTH_SHARE``; the best width is taken where its squared error is below
    :data:`PROFILE_SMOOTH_MARGIN` times the raw profile's, else 1 (also where no cycle can be
    backtested)."""
    widths = [w for w in PROFILE_SMOOTH_WIDTHS if w == 1 or w <= m // PROFILE_SMOOTH_SHARE]
    if len(widths) == 1:
        return 1
    errors = np.zeros(len(widths))
    count = 0
    for held, values in _backtest_cycles(d, at, m, half):
        for j, w in enumerate(widths):
            errors[j] += float(np.sum((d[held] - _smoothed(values, w)[at[held] % m]) ** 2))
        count += int(held.sum())
    if count == 0:
        return 1
    best = int(np.argmin(errors))
    return widths[best] if errors[best] < PROFILE_SMOOTH_MARGIN * errors[0] else 1


def _continued(profile: Profile, start: int, length: int) -> np.ndarray:
    """The profile's values at steps ``start..start+length-1``."""
    t = np.arange(start, start + length)
    return sum((values[t % m] for m, values in profile), np.zeros(length))


def _parts(
    x: np.ndarray, fit: float | None, prof: Profile | None, window: int, horizon: int
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """What a choice takes out of the context ``x``: its values over the last ``window`` steps
    (what the model sees), and the line and the seasonal profile ``prof`` (of ``x``, or None)
    continued over ``horizon`` (None for no line, no profile). The line is fit to the window
    after the profile is taken out."""
    seen = x[-window:]
    start = len(x) - len(seen)
    season_seen = _continued(prof, start, len(seen)) if prof else np.zeros(len(seen))
    line = _line(seen - season_seen, fit) if fit is not None else None
    taken = _on(line, 0, len(seen)) + season_seen
    future_line = None if line is None else _on(line, len(seen), len(seen) + horizon)
    future_season = _continued(prof, len(x), horizon) if prof else None
    return taken, future_line, future_season


def _choose(
    lm: LanguageModel,
    series: list[np.ndarray],
    seasons: tuple[int, ...],
    horizon: int,
    num_samples: int,
    seed: int | None,
    sampling: dict[str, Any],
    window: int,
) -> list[Choice]:
    """``trend='auto'``: what to take out of each series before the model forecasts it.

    A series with a known season that fits at least twice into its context and is strong enough
    (:func:`_profile`) has its seasonal profile removed. Then its last ``min(horizon, len // 4)``
    steps (``len`` counted up to the window) are held out and forecast from the steps before
    (the model seeing the window's steps before them): as they are (after the profile), and
    with each line of :data:`TREND_FITS` (fit to those steps) removed and added back; a series
    whose profile is removed is tried each way again with the model seeing only the last
    :data:`SHORT_VIEW` of those steps, where it has more. The best candidate is kept (its line fit
    again to the whole window) where its median's mean absolute error is below
    :data:`TREND_MARGIN` times the error of the first (no line, the whole window); otherwise
    the first.

    Series too short to hold steps out (fewer than :data:`MIN_TREND_CONTEXT` before them) are
    forecast as they are; lines are tried only where the window's line explains at least
    :data:`MIN_TREND_R2` of its variance or a profile was removed. The backtests draw from their
    own random stream, so a series ``auto`` leaves alone gets the very paths of
    ``trend='none'``."""
    chosen: list[Choice] = [(None, False, None)] * len(series)
    held = [min(horizon, min(len(v), window) // 4) for v in series]  # the window's last quarter
    usable = [
        i
        for i, v in enumerate(series)
        if held[i] >= 1
        and len(v) - held[i] >= MIN_TREND_CONTEXT
        and not np.isnan(v[-held[i] :]).all()
    ]
    # the candidates: (series, fit, deseason, view); each series' baseline first, the line
    # variants of the series without a profile next, then those with one, then the shorter views
    # (without seasons, the order, and so the backtest's random draws, are what they were before
    # seasons were read)
    Candidate = tuple[int, float | None, bool, int | None]
    plain: list[Candidate] = []
    lined: list[Candidate] = []
    seasonal: list[Candidate] = []
    short: list[Candidate] = []
    profiles: dict[int, Profile] = {}  # of the steps before the held-out ones
    for i in usable:
        prof = _profile(series[i][: -held[i]], seasons, window) if seasons else None
        if prof is not None:
            profiles[i] = prof
        has_season = prof is not None
        if not has_season and _explained(series[i][-window:]) < MIN_TREND_R2:
            continue  # no season to remove and no line worth a backtest
        if has_season:  # the profile goes; the backtest decides on a line and a view after it
            chosen[i] = (None, True, None)
            plain.append((i, None, True, None))
            seasonal += [(i, fit, True, None) for fit in TREND_FITS]
            if min(len(series[i]) - held[i], window - held[i]) > SHORT_VIEW:
                short += [(i, fit, True, SHORT_VIEW) for fit in (None, *TREND_FITS)]
            continue
        plain.append((i, None, False, None))
        lined += [(i, fit, False, None) for fit in TREND_FITS]
    if not plain:
        return chosen
    lined.sort(key=lambda c: TREND_FITS.index(c[1] or 0.0))
    candidates = plain + lined + seasonal + short
    shown, continued = [], []
    for i, fit, deseason, view in candidates:
        # the model sees the window's steps before the held-out ones (or the last SHORT_VIEW of
        # them); a profile is read from everything before them
        past, seen = series[i][: -held[i]], window - held[i]
        taken, line, cycle = _parts(past, fit, profiles[i] if deseason else None, seen, held[i])
        shown.append((past[-seen:] - taken)[-(view or seen) :])
        continued.append((0.0 if line is None else line) + (0.0 if cycle is None else cycle))
    n = min(num_samples, 20)
    bt_seed = None if seed is None else seed + 1
    longest = max(held[i] for i, *_ in candidates)
    paths, _, _, _ = _sample(lm, shown, longest, n, bt_seed, sampling)
    median = np.median(paths, axis=1)
    best: dict[int, float] = {}
    for k, (i, fit, deseason, view) in enumerate(candidates):
        h, truth = held[i], series[i][-held[i] :]
        err = float(np.nanmean(np.abs(median[k, :h] + continued[k] - truth)))
        if i not in best:  # the series' first candidate: its baseline
            best[i] = err * TREND_MARGIN
        elif err < best[i]:
            best[i], chosen[i] = err, (fit, deseason, view)
    return chosen
