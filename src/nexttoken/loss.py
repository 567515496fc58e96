"""The training loss computed from the last hidden states, without holding every logit.

A GPT's loss is ``cross_entropy(h @ W.T, targets)`` over ``N = batch x context`` positions and
``V`` tokens. Computed the plain way, autograd keeps the ``(N, V)`` logits (fp32, and a bf16
copy under autocast) until the backward pass: with GPT-2's 50,257 tokens and a 16 x 1024
batch that is 3.3 GB, more than all of a 124M model's other activations. :func:`linear_cross_entropy`
walks the positions in chunks instead: for each chunk it computes the logits, the loss and,
straight away, the gradients of ``h`` and ``W`` (``softmax - onehot`` times ``W`` and its
transpose times ``h``), and keeps only those (``N x C`` and ``V x C``). The matrix products are
the same three the plain way does; the logits of one chunk at a time are all that exists.

The head's weight may carry padding rows beyond ``vocab`` (a width that is a multiple of 64
runs faster on GPUs); their logits are masked to -inf, so the loss is that of ``vocab`` tokens.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["linear_cross_entropy", "IGNORE_INDEX", "CHUNK_ELEMENTS"]

IGNORE_INDEX = -100
#: Logits per chunk (rows x padded vocabulary): 2^24 fp32 numbers = 64 MiB.
CHUNK_ELEMENTS = 1 << 24


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        h: torch.Tensor,
        weight: torch.Tensor,
        targets: torch.Tensor,
        vocab: int,
        scale: float,
        rows: int,
    ) -> torch.Tensor:
        n = h.shape[0]
        valid = targets != IGNORE_INDEX
        count = valid.sum().clamp_min(1)
        grad_h = torch.empty_like(h)
        # at least fp32 for the logits and the sums (fp64 stays fp64)
        acc = torch.promote_types(torch.promote_types(h.dtype, weight.dtype), torch.float32)
        grad_w = torch.zeros(weight.shape, dtype=acc, device=weight.device)
        total = torch.zeros((), dtype=acc, device=h.device)
        for s in range(0, n, rows):
            hc, t, v = h[s : s + rows], targets[s : s + rows], valid[s : s + rows]
            logits = torch.matmul(hc, weight.t()).to(acc)
            if scale != 1.0:
                logits = logits * scale
            if weight.shape[0] > vocab:
                logits[:, vocab:] = float("-inf")
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(1, t.clamp_min(0)[:, None])[:, 0]
            total += ((lse - picked) * v).sum()
            # d loss_sum / d logits = softmax - onehot, on valid rows; times d logits / d (hW^T)
            g = torch.exp(logits.sub_(lse[:, None]))
            g[torch.arange(g.shape[0], device=g.device), t.clamp_min(0)] -= 1.0
            g.mul_(v[:, None] * scale)
            g_mm = g.to(torch.promote_types(hc.dtype, weight.dtype))
            grad_h[s : s + rows] = torch.matmul(g_mm, weight.to(g_mm.dtype)).to(h.dtype)
            grad_w += torch.matmul(g_mm.t(), hc.to(g_mm.dtype)).to(acc)
        ctx.save_for_backward(grad_h, grad_w, count)
        return total / count

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        grad_h, grad_w, count = ctx.saved_tensors
        s = grad_out / count
        return (grad_h * s.to(grad_h.dtype), grad_w * s, None, None, None, None)


def linear_cross_entropy(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    vocab: int | None = None,
    scale: float = 1.0,
    chunk_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """Mean cross-entropy of the logits ``scale * h @ weight[:vocab].T`` at ``targets``.

    ``h`` ``(..., C)``, ``weight`` ``(V_padded, C)``, ``targets`` ``(...)`` with
    :data:`IGNORE_INDEX` where a position has no target. Equal to
    ``F.cross_entropy(scale * h @ weight[:vocab].T, targets, ignore_index=-100)`` without
    holding the logits (see the module docstring); the weight's gradient comes back in its dtype.
    """
    vocab = weight.shape[0] if vocab is None else vocab
    h2 = h.reshape(-1, h.shape[-1])
    t = targets.reshape(-1)
    if h2.shape[0] != t.shape[0]:
        raise ValueError(f"{h2.shape[0]} positions but {t.shape[0]} targets")
    rows = max(64, chunk_elements // weight.shape[0] // 64 * 64)
    loss = _LinearCrossEntropy.apply(h2, weight, t, vocab, float(scale), rows)
    return loss
