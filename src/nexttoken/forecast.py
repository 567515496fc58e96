"""Probabilistic forecasts from a signal GPT: sample paths -> values, median, mean, quantiles."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .generate import generate
from .tokenizers import SignalTokenizer

if TYPE_CHECKING:
    from .lm import LanguageModel

__all__ = ["Forecast", "forecast", "prepare_context", "DEFAULT_QUANTILES"]

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


def prepare_context(context: Any) -> list[np.ndarray]:
    """A series ``(T,)``, a batch ``(series, T)`` or a list of 1-D series -> list of float arrays.

    Leading missing values are dropped (there is nothing before them to condition on).
    """
    if isinstance(context, torch.Tensor):
        context = context.detach().cpu().numpy()
    if isinstance(context, np.ndarray) and context.ndim in (1, 2):
        rows = [context] if context.ndim == 1 else list(context)
    elif isinstance(context, np.ndarray):
        raise ValueError(
            f"context must be 1-D (time) or 2-D (series, time); got shape {context.shape}"
        )
    elif isinstance(context, Sequence) and len(context) and np.ndim(context[0]) == 0:
        rows = [np.asarray(context)]
    else:
        rows = [np.asarray(c) for c in context]
    if not rows:
        raise ValueError("context is empty; give at least one series")
    out = []
    for i, row in enumerate(rows):
        try:
            row = np.asarray(row, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"series {i} is not numeric") from None
        if np.isinf(row).any():
            raise ValueError(
                f"series {i} contains inf; give finite numbers (NaN marks a missing value)"
            )
        observed = np.flatnonzero(~np.isnan(row))
        if observed.size == 0:
            raise ValueError(
                f"series {i} is empty or all missing; give at least one observed value"
            )
        out.append(row[observed[0] :])
    return out


@torch.no_grad()
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
    context : one series ``(T,)``, several of equal length ``(series, T)``, or a list of series
        of any lengths; NaN marks a missing value.
    horizon : steps to forecast; longer than the context window works (the window slides).
    num_samples : sample paths per series (``greedy`` makes them all the argmax path).
    seed : makes the sample paths repeatable (``None``: a fresh draw each call).
    max_batch_rows : at most this many sample paths are decoded as one batch.

    Returns
    -------
    :class:`Forecast` with ``samples`` shaped ``(series, num_samples, horizon)``.
    """
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
    series = prepare_context(context)
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
    by_length: dict[int, list[int]] = {}
    for i, v in enumerate(series):
        by_length.setdefault(len(v), []).append(i)
    per_batch = max(1, max_batch_rows // num_samples)
    for members in by_length.values():
        for b in range(0, len(members), per_batch):
            group = members[b : b + per_batch]
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
        names=list(names) if names is not None else [f"series_{i}" for i in range(len(series))],
    )
