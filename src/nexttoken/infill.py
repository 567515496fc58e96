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

from .tokenizers import SignalTokenizer

if TYPE_CHECKING:
    from .lm import LanguageModel

__all__ = ["infill"]


@torch.no_grad()
def infill(
    lm: LanguageModel,
    series: Any,
    *,
    sample: bool = False,
    temperature: float = 1.0,
    seed: int | None = 0,
    fraction_per_pass: float = 0.25,
) -> np.ndarray:
    """Return ``series`` ``(T,)`` with every NaN replaced by the model's value (argmax, or a sample).

    The scale is that of the observed values, as for a forecast context.
    """
    tok = lm.tokenizer
    model = lm.model
    if not isinstance(tok, SignalTokenizer):
        raise ValueError("infill needs a signal model; this model reads text")
    if model.config.causal:
        raise ValueError(
            "infill needs a masked-LM model (train one with --objective mlm); this one is a causal GPT"
        )
    if not 0 < fraction_per_pass <= 1:
        raise ValueError(f"fraction_per_pass must be in (0, 1] (got {fraction_per_pass})")
    values = np.asarray(series, dtype=np.float64).reshape(-1).copy()
    if np.isinf(values).any():
        raise ValueError(
            "the series contains inf; give finite numbers (leave missing values empty)"
        )
    if np.isnan(values).all():
        raise ValueError("the series has no observed values; there is nothing to condition on")
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
