"""Pure functions from logits ``(..., vocab)`` to filtered logits, probabilities and token ids.

Filters return logits with ``-inf`` where a token is removed, so they compose:
``temperature -> top_k -> top_p -> min_p``, the order Hugging Face ``generate`` applies them.
Each filter keeps at least one token.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = [
    "apply_temperature",
    "top_k_filter",
    "top_p_filter",
    "min_p_filter",
    "apply_repetition_penalty",
    "process_logits",
    "logits_to_probs",
    "sample",
    "greedy",
    "check_sampling_args",
]


def check_sampling_args(
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
) -> None:
    """Raise a ``ValueError`` that says what to change for out-of-range sampling settings."""
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0 (got {temperature}); 0 means greedy")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (got {top_k}); leave it unset to keep every token")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (got {top_p})")
    if min_p is not None and not 0 <= min_p <= 1:
        raise ValueError(f"min_p must be in [0, 1] (got {min_p})")
    if repetition_penalty is not None and not 1e-3 <= repetition_penalty <= 1e3:
        raise ValueError(
            f"repetition_penalty must be between 0.001 and 1000 (got {repetition_penalty}); "
            "1 means none, 1.1-1.5 is usual"
        )


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Divide by ``temperature`` (> 0): below 1 sharpens the distribution, above 1 flattens it.

    Below :data:`_SHIFT_BELOW` the largest logit is subtracted first (softmax does not change):
    divided by a tiny temperature, logits overflow to infinity, and the softmax of several
    infinities is NaN; shifted, the top stays 0 and the rest go to minus infinity (a
    temperature of 1e-300 samples the argmax, as it should)."""
    if temperature == 1.0:
        return logits
    if temperature < _SHIFT_BELOW:
        logits = logits - logits.amax(-1, keepdim=True)
        # a temperature below the dtype's smallest normal number would round to 0 (0/0 = NaN)
        temperature = max(temperature, torch.finfo(logits.dtype).tiny)
    return logits / temperature


#: Temperatures below this shift the logits before dividing (see :func:`apply_temperature`).
_SHIFT_BELOW = 1e-3


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits (and any tied with the k-th)."""
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filter: keep the most probable tokens until their total probability reaches ``p``.

    A token is kept when the probability of the tokens ranked above it is below ``p``, so the
    most probable token is always kept.
    """
    if p >= 1.0:
        return logits
    # Stable, so among tied tokens the first is ranked first, the one argmax (greedy) picks.
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # mass of the tokens ranked above each one
    remove_sorted = before >= p
    remove_sorted[..., 0] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep tokens whose probability is at least ``min_p`` times that of the most probable one."""
    probs = logits.softmax(-1)
    threshold = min_p * probs.max(dim=-1, keepdim=True).values
    return logits.masked_fill(probs < threshold, float("-inf"))


def apply_repetition_penalty(
    logits: torch.Tensor, previous: torch.Tensor, penalty: float
) -> torch.Tensor:
    """CTRL's penalty on tokens already in ``previous`` ``(B, T)``: positive logits are divided
    by ``penalty``, negative ones multiplied (``logits`` ``(B, V)``)."""
    if penalty == 1.0:
        return logits
    picked = logits.gather(-1, previous)
    picked = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits.scatter(-1, previous, picked)


def process_logits(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
) -> torch.Tensor:
    """Temperature, then top-k, top-p and min-p, as logits with ``-inf`` for removed tokens."""
    logits = apply_temperature(logits, temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    if min_p is not None and min_p > 0:
        logits = min_p_filter(logits, min_p)
    return logits


def logits_to_probs(logits: torch.Tensor, **kwargs: float | int | None) -> torch.Tensor:
    """Softmax of the processed logits (same keywords as :func:`process_logits`)."""
    return process_logits(logits.float(), **kwargs).softmax(-1)  # type: ignore[arg-type]


def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most probable token: argmax of the logits (softmax is monotonic, so the same as of the probabilities)."""
    return logits.argmax(-1)


def race_noise(
    shape: tuple[int, ...], generator: torch.Generator | None = None, device: Any = None
) -> torch.Tensor:
    """log U, U uniform on [tiny, 1): the random part of :func:`sample`'s race (negative).

    The last dimension is the vocabulary; drawing ``(steps, B, V)`` at once gives on a CPU the
    same numbers as ``steps`` draws of ``(B, V)``.
    """
    u = torch.rand(shape, generator=generator, device=device)
    # U = 0 would give log U = -inf and a score of -0, the score of a filtered token
    return u.clamp_(min=torch.finfo(u.dtype).tiny).log_()


def gumbel_noise(
    shape: tuple[int, ...], generator: torch.Generator | None = None, device: Any = None
) -> torch.Tensor:
    """-log(-log U), U uniform on [tiny, 1): Gumbel noise for :func:`sample`'s ``gumbel``.

    The same uniforms as :func:`race_noise` (same generator state, same shape), so that
    ``argmax(logits + gumbel)`` picks the token ``argmin(softmax(logits) / log U)`` picks:
    ``log p - log(-log U)`` is ``logits - log(-log U)`` less the log-sum-exp, the same for
    every token, and the log is increasing. Computed once for many steps, it spares each step
    the softmax and the division."""
    return race_noise(shape, generator, device).neg_().log_().neg_()


def sample(
    logits: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    generator: torch.Generator | None = None,
    log_u: torch.Tensor | None = None,
    gumbel: torch.Tensor | None = None,
) -> torch.Tensor:
    """Draw one token per row of ``logits`` ``(..., V)`` -> ids ``(...)``; ``temperature=0`` is greedy.

    Draws with the exponential-race trick (argmax of p / E with E ~ Exp(1)), which samples
    from p exactly without a host synchronisation. E is drawn as -log U with U uniform, several
    times faster on a CPU than ``Tensor.exponential_``: the token is the argmin of p / log U.
    ``log_u`` (shaped like ``logits``, from :func:`race_noise`) supplies the random numbers;
    without it they are drawn from ``generator``. ``gumbel`` (from :func:`gumbel_noise`) is the
    same race written as the Gumbel-max trick: ``argmax(processed logits + gumbel)``, the same
    token for the same uniforms, with no softmax.
    """
    if temperature == 0:
        return greedy(logits)
    if gumbel is not None:
        processed = process_logits(
            logits.float(), temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p
        )
        return (processed + gumbel).argmax(-1)
    probs = logits_to_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p)
    if log_u is None:
        log_u = race_noise(tuple(probs.shape), generator, probs.device)
    return (probs / log_u).argmin(-1)
