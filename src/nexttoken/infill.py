"""Filling missing values with a masked language model (``objective="mlm"``).

Missing values become MASK tokens; the model sees both sides of every gap. Long gaps are
filled iteratively: each pass commits the most confident quarter of the still-masked
positions of one window, so later choices condition on earlier ones. Given values are
never changed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .frames import LONG_COLUMNS, SeriesSet, is_pandas, read_series
from .tokenizers import SignalTokenizer

if TYPE_CHECKING:
    from .lm import LanguageModel

__all__ = ["infill"]


def infill(
    lm: LanguageModel,
    series: Any,
    *,
    sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = 0,
    fraction_per_pass: float = 0.25,
) -> Any:
    """Fill every NaN of ``series`` with the model's value (argmax, or a sample).

    ``series`` takes the forms :func:`nexttoken.forecast` takes (one series as a 1-D array,
    list or ``pd.Series``; several as a 2-D array, a list of 1-D arrays, a wide or a long
    ``pd.DataFrame``) and the result has the same form: a 1-D array for a 1-D array or list, a
    list of arrays for a list of arrays, a pandas object with the same index and columns for
    a pandas one (a long frame comes back on its regular grid, the rows missing from it
    added and filled). Given values are never changed; each series is scaled by its own
    observed values, as a forecast context is.
    """
    tok = lm.tokenizer
    if not isinstance(tok, SignalTokenizer):
        raise ValueError("infill needs a signal model; this model reads text")
    if lm.model.config.causal:
        raise ValueError(
            "infill needs a masked-LM model (train one with --objective mlm); this one is a causal GPT"
        )
    if not 0 < fraction_per_pass <= 1:
        raise ValueError(f"fraction_per_pass must be in (0, 1] (got {fraction_per_pass})")
    given = read_series(series)
    filled = [
        _infill_one(lm, tok, v, name, sample, temperature, seed, fraction_per_pass)
        for v, name in zip(given.values, given.names, strict=True)
    ]
    return _same_form(series, given, filled)


def _same_form(series: Any, given: SeriesSet, filled: list[np.ndarray]) -> Any:
    """``filled`` in the form ``series`` came in."""
    if is_pandas(series):
        import pandas as pd

        if isinstance(series, pd.Series):
            return pd.Series(filled[0], index=series.index, name=series.name)
        if set(LONG_COLUMNS) <= set(map(str, series.columns)):
            return pd.DataFrame(
                {
                    "unique_id": np.repeat(series["unique_id"].unique(), [len(v) for v in filled]),
                    "ds": np.concatenate([np.asarray(t) for t in given.times]),
                    "y": np.concatenate(filled),
                }
            )
        out = series.copy()
        for column, values in zip(series.columns, filled, strict=True):
            out[column] = values
        return out
    if isinstance(series, np.ndarray) or torch.is_tensor(series):
        return np.stack(filled) if np.ndim(series) == 2 else filled[0]
    if len(given.values) == 1 and all(np.ndim(v) == 0 for v in series):
        return filled[0]  # a list of numbers: one series
    return filled


@torch.no_grad()
def _infill_one(
    lm: LanguageModel,
    tok: SignalTokenizer,
    series: np.ndarray,
    name: str,
    sample: bool,
    temperature: float,
    seed: int | None,
    fraction_per_pass: float,
) -> np.ndarray:
    model = lm.model
    values = series.copy()
    if np.isinf(values).any():
        raise ValueError(
            f"series {name} contains inf; give finite numbers (leave missing values empty)"
        )
    if np.isnan(values).all():
        raise ValueError(f"series {name} has no observed values; there is nothing to condition on")
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    loc, scale = tok.loc_scale(torch.from_numpy(values)[None])
    ids = tok.values_to_ids(torch.from_numpy(values)[None], scale, loc)[0]
    missing = torch.from_numpy(np.isnan(values))
    ids[missing] = tok.MASK
    window = model.config.context_length
    T = len(values)
    while missing.any():
        first = int(missing.nonzero()[0])
        start = max(0, min(first - window // 2, T - window))
        end = min(T, start + window)
        logits = model(ids[None, start:end].to(device))[0].float().cpu()  # (W, vocab)
        logits[:, : tok.n_special] = float("-inf")  # only values may fill a gap
        probs = (logits / max(temperature, 1e-6)).softmax(-1)
        todo = missing[start:end].nonzero()[:, 0]
        confidence = probs[todo].max(-1).values
        k = max(1, math.ceil(fraction_per_pass * len(todo)))
        commit = todo[confidence.argsort(descending=True)[:k]]
        if sample:
            choice = torch.multinomial(probs[commit], 1, generator=gen)[:, 0]
        else:
            choice = probs[commit].argmax(-1)
        ids[start + commit] = choice
        missing[start + commit] = False
    filled = tok.ids_to_values(ids, scale[0], loc[0]).numpy()
    out = values.copy()
    gaps = np.isnan(values)
    out[gaps] = filled[gaps]
    return out
