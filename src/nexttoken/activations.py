"""GPT-2's tanh GELU, computed faster on CPUs than PyTorch's own kernel.

GPT-2's activation ("gelu_new") is ``0.5 h (1 + tanh(u))`` with ``u = sqrt(2/pi) (h + 0.044715 h^3)``.
Since ``0.5 (1 + tanh(u)) = sigmoid(2u)`` it is also ``h * sigmoid(2u)``: the same function,
and the form this module computes. PyTorch's CPU kernel for the tanh form spends its time in a
vectorised ``tanh`` (twice the cost of the erf GELU's); four elementwise passes of the sigmoid
form take less than half of it from about 20 rows of a width-128 model's MLP on (measured on a
2-core AVX2 CPU: 4096 x 512 values 1.5 ms against 3.7 ms, 400 x 512 164 against 361 us, 20 x 512
19 against 37 us; one row of 512, 7 against 3.5 us, where each operation's fixed cost shows).

For training, :class:`_GeluTanh` computes the derivative in the same forward passes, from the
sigmoid it already has, and keeps only that for the backward pass (the built-in keeps the input:
the same memory): forward and backward together 3.3 against 7.6 ms at 4096 x 512 when the data
sit in the caches. Inside a training step they don't (each pass then streams from memory), so
inputs over :data:`CHUNK` elements are computed a chunk at a time: the small GPT-2 train step of
``benchmarks/train.py`` went from 1.01x to 1.05x the reference with the passes whole and to
1.07-1.08x in chunks. Where the activation is tens of megabytes (GPT-2 124M's 4 x 1024 x 3072
values) both forms stream from memory and take the same time (74 against 77 ms forward and
backward).

Results agree with the built-in kernel to float32 rounding (both within ~5e-7 of the float64
value; tested); gradients to ~1e-6 relative. The sigmoid form is used for float32 and float64
tensors on the CPU; elsewhere (GPUs, where the built-in is one memory-bound kernel, and bf16 or
fp16, which would round at every pass) the built-in kernel runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gelu_tanh"]

_C = math.sqrt(2.0 / math.pi)
_A = 0.044715
_TWO_C: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _two_c(h: torch.Tensor) -> torch.Tensor:
    """``2 sqrt(2/pi)`` as a 0-dim tensor of ``h``'s dtype and device (``addcmul`` adds a tensor)."""
    key = (h.dtype, h.device)
    t = _TWO_C.get(key)
    if t is None:
        # a normal tensor even when first made under inference_mode, so that a later training
        # step may use it
        with torch.inference_mode(False):
            t = _TWO_C[key] = torch.tensor(2.0 * _C, dtype=h.dtype, device=h.device)
    return t


def _sigmoid_of_2u(h: torch.Tensor) -> torch.Tensor:
    """``sigmoid(2u)``, a new tensor: ``(2c + 2ca h^2) h``, then the sigmoid, in place."""
    return torch.addcmul(_two_c(h), h, h, value=2.0 * _C * _A).mul_(h).sigmoid_()


#: Elements per chunk: a large activation is computed a chunk at a time, so that each chunk's
#: temporaries stay in the CPU's caches between the passes (1 MiB of float32; chosen on the
#: training benchmark's 4096 x 512 MLP, where 64, 128, 256 and 512 Ki elements gave train steps
#: 1.057x, 1.070x, 1.077x and 1.070x the reference's speed, median of 10 alternations each).
CHUNK = 1 << 18


def _gelu(h: torch.Tensor, dydh: torch.Tensor | None = None) -> torch.Tensor:
    """``h * sigmoid(2u)``; with ``dydh`` (``h``'s shape) also writes the derivative there."""
    if dydh is None and h.numel() <= CHUNK:
        return _sigmoid_of_2u(h).mul_(h)
    flat = h.contiguous().view(-1)
    y = torch.empty_like(flat)
    d = dydh.view(-1) if dydh is not None else None
    for i in range(0, flat.numel(), CHUNK):
        hc = flat[i : i + CHUNK]
        s = _sigmoid_of_2u(hc)
        yc = torch.mul(s, hc, out=y[i : i + CHUNK])
        if d is not None:
            # dy/dh = s + h s (1 - s) dz/dh with z = 2u, dz/dh = 2c (1 + 3a h^2); h s = y
            dz = torch.addcmul(_two_c(hc), hc, hc, value=6.0 * _C * _A)
            t = torch.addcmul(yc, yc, s, value=-1.0)  # y (1 - s)
            torch.addcmul(s, t, dz, out=d[i : i + CHUNK])
    return y.view(h.shape)


class _GeluTanh(torch.autograd.Function):
    """``h * sigmoid(2u)`` whose forward also computes ``dy/dh`` and saves only that."""

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        if not ctx.needs_input_grad[0]:
            return _gelu(h)
        dydh = torch.empty(h.shape, dtype=h.dtype, device=h.device)
        y = _gelu(h, dydh)
        ctx.save_for_backward(dydh)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (dydh,) = ctx.saved_tensors
        return grad * dydh


def gelu_tanh(h: torch.Tensor) -> torch.Tensor:
    """GPT-2's tanh-approximate GELU of ``h`` (``F.gelu(h, approximate="tanh")``'s function)."""
    if h.device.type != "cpu" or h.dtype not in (torch.float32, torch.float64):
        return F.gelu(h, approximate="tanh")
    if h.requires_grad and torch.is_grad_enabled():
        return _GeluTanh.apply(h)
    return _gelu(h)
