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

    @property
    def trend_removed(self) -> np.ndarray:
        """``(series,)`` bool: whether the model forecast the series with its line removed."""
        if self.trend is None:
            return np.zeros(self.samples.shape[0], dtype=bool)
        return np.any(self.trend != 0, axis=1)

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
    if f.trend_removed[series]:
        raise ValueError(
            "this series was forecast with its linear trend removed, so its token ids are of the "
            "residual; forecast it with trend='none' to see the model's own distributions"
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
    given = _checked(read_series(context, names))
    series = given.values
    window = lm.model.config.context_length
    longest = max(len(v) for v in series)
    if longest > window:
        warnings.warn(
            f"a context has {longest} steps, more than the model's window of {window}; "
            f"each forecast conditions on (and is scaled by) its last {window} steps",
            stacklevel=2,
        )
    series = [v[-window:] for v in series]
    sampling = dict(
        greedy=greedy,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        min_p=min_p,
        max_batch_rows=max_batch_rows,
        generate_fn=generate_fn or generate,
    )
    lines: list[Line | None]
    if trend == "none":
        lines = [None] * len(series)
    elif trend == "linear":
        lines = [_line(v) for v in series]
    else:
        lines = _trend_lines(lm, series, horizon, num_samples, seed, sampling)
    shown = [v - _on(ln, 0, len(v)) for v, ln in zip(series, lines)]
    samples, ids_out, scales, locs = _sample(lm, shown, horizon, num_samples, seed, sampling)
    added = None
    if any(ln is not None for ln in lines):
        added = np.stack([_on(ln, len(v), len(v) + horizon) for v, ln in zip(series, lines)])
        samples += added[:, None, :]
    return Forecast(
        samples=samples,
        quantile_levels=tuple(quantile_levels),
        ids=ids_out,
        scale=scales,
        loc=locs,
        names=given.names,
        times=[future_times(t, horizon) for t in given.times],
        trend=added,
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


def _trend_lines(
    lm: LanguageModel,
    series: list[np.ndarray],
    horizon: int,
    num_samples: int,
    seed: int | None,
    sampling: dict[str, Any],
) -> list[Line | None]:
    """``trend='auto'``: for each series, hold out its last ``min(horizon, len // 4)`` steps and
    forecast them from the steps before: as they are, and with each line of
    :data:`TREND_FITS` (fit to those steps) removed and added back. The best line is kept
    (fit again to the whole context) where its median's mean absolute error is below
    :data:`TREND_MARGIN` times the model's alone; otherwise the series is forecast as it is.

    Series too short to hold steps out (fewer than :data:`MIN_TREND_CONTEXT` before them), and
    series whose line explains less than :data:`MIN_TREND_R2` of their variance, are forecast
    as they are. The backtests draw from their own random stream, so a series
    ``auto`` leaves alone gets the very paths of ``trend='none'``."""
    chosen: list[Line | None] = [None] * len(series)
    held = [min(horizon, len(v) // 4) for v in series]
    todo = [
        i
        for i, v in enumerate(series)
        if held[i] >= 1
        and len(v) - held[i] >= MIN_TREND_CONTEXT
        and not np.isnan(v[-held[i] :]).all()
        and _explained(v) >= MIN_TREND_R2
    ]
    if not todo:
        return chosen
    pasts = [series[i][: -held[i]] for i in todo]
    variants = [[_line(p, fit) for p in pasts] for fit in TREND_FITS]
    shown = pasts + [p - _on(ln, 0, len(p)) for lines in variants for p, ln in zip(pasts, lines)]
    n = min(num_samples, 20)
    bt_seed = None if seed is None else seed + 1
    paths, _, _, _ = _sample(lm, shown, max(held[i] for i in todo), n, bt_seed, sampling)
    median = np.median(paths, axis=1)
    for k, i in enumerate(todo):
        h, truth, steps = held[i], series[i][-held[i] :], len(pasts[k])
        best = np.nanmean(np.abs(median[k, :h] - truth)) * TREND_MARGIN
        for j, lines in enumerate(variants):
            path = median[(j + 1) * len(todo) + k, :h] + _on(lines[k], steps, steps + h)
            err = np.nanmean(np.abs(path - truth))
            if lines[k] is not None and err < best:
                best, chosen[i] = err, _line(series[i], TREND_FITS[j])
    return chosen
