"""Probabilistic forecasts from a signal GPT: sample paths -> values, median, mean, quantiles."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
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
]

DEFAULT_QUANTILES: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class Forecast:
    """Sample paths of a forecast and their summaries.

    Attributes
    ----------
    samples : ``(series, num_samples, horizon)`` values.
    quantile_levels : the levels of ``quantiles``.
    ids : ``(series, num_samples, horizon)`` the sampled token ids.
    scale, loc : ``(series,)`` each context was tokenized as ``(x - loc) / scale``.
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

    Returns
    -------
    :class:`Forecast` with ``samples`` shaped ``(series, num_samples, horizon)``.
    """
    tok = _signal_tokenizer(lm, horizon, num_samples, quantile_levels)
    given = _checked(read_series(context, names))
    series = given.values
    window = lm.model.config.context_length
    device = next(lm.model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    longest = max(len(v) for v in series)
    if longest > window:
        warnings.warn(
            f"a context has {longest} steps, more than the model's window of {window}; "
            f"each forecast conditions on (and is scaled by) its last {window} steps",
            stacklevel=2,
        )
    # Series of the same length run as one batch of len(group) * num_samples rows.
    series = [v[-window:] for v in series]
    samples = np.empty((len(series), num_samples, horizon))
    ids_out = np.empty((len(series), num_samples, horizon), dtype=np.int64)
    scales = np.empty(len(series))
    locs = np.empty(len(series))
    for group in _batches(series, max(1, max_batch_rows // num_samples)):
        ids, loc, scale = tok.input_transform(np.stack([series[i] for i in group]))
        paths = generate(
            lm.model,
            ids.repeat_interleave(num_samples, dim=0).to(device),
            horizon,
            greedy=greedy,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            min_p=min_p,
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
    return Forecast(
        samples=samples,
        quantile_levels=tuple(quantile_levels),
        ids=ids_out,
        scale=scales,
        loc=locs,
        names=given.names,
        times=[future_times(t, horizon) for t in given.times],
    )
