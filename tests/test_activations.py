"""GPT-2's tanh GELU in its sigmoid form: the built-in kernel's values and gradients, its memory,
and the same value for a row whatever the batch around it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from nexttoken.activations import gelu_tanh


def _exact(h: torch.Tensor) -> torch.Tensor:
    """GPT-2's formula in float64."""
    h = h.double()
    return 0.5 * h * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (h + 0.044715 * h**3)))


@pytest.mark.parametrize("scale", [0.1, 1.0, 3.0, 30.0, 1e4])
def test_values_match_the_builtin_kernel_to_float32_rounding(scale):
    torch.manual_seed(0)
    h = torch.randn(64, 512) * scale
    ours, builtin = gelu_tanh(h), F.gelu(h, approximate="tanh")
    assert ours.dtype == torch.float32 and ours.shape == h.shape
    assert torch.allclose(ours, builtin, rtol=2e-6, atol=1e-6)
    # as close to the float64 value as the built-in kernel is (both a few units of rounding)
    ours_err = (ours.double() - _exact(h)).abs().max().item()
    builtin_err = (builtin.double() - _exact(h)).abs().max().item()
    assert ours_err <= 2 * builtin_err + 1e-7, (ours_err, builtin_err)


def test_special_values_behave_as_the_builtin():
    h = torch.tensor(
        [0.0, -0.0, 1e-30, -1e-30, 100.0, -100.0, 1e30, -1e30, math.inf, -math.inf, math.nan]
    )
    ours, builtin = gelu_tanh(h), F.gelu(h, approximate="tanh")
    assert torch.allclose(ours, builtin, equal_nan=True, atol=1e-30)
    assert torch.isnan(ours).tolist() == torch.isnan(builtin).tolist()


def test_float64_values_and_gradients_are_exact():
    torch.manual_seed(1)
    h = (torch.randn(200, 16, dtype=torch.float64) * 3).requires_grad_()
    y = gelu_tanh(h)
    assert torch.allclose(y, _exact(h.detach()), rtol=1e-13, atol=1e-14)
    (g,) = torch.autograd.grad(y.sum(), h)
    ref = h.detach().clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(F.gelu(ref, approximate="tanh").sum(), ref)
    assert torch.allclose(g, g_ref, rtol=1e-12, atol=1e-13)
    assert torch.autograd.gradcheck(gelu_tanh, (h[:10, :4].detach().clone().requires_grad_(),))


def test_float32_gradients_match_the_builtin():
    torch.manual_seed(2)
    h = (torch.randn(128, 512) * 2).requires_grad_()
    up = torch.randn(128, 512)
    (g,) = torch.autograd.grad(gelu_tanh(h), h, up)
    ref = h.detach().clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(F.gelu(ref, approximate="tanh"), ref, up)
    assert torch.allclose(g, g_ref, rtol=1e-5, atol=1e-5)
    assert (g - g_ref).abs().max() < 1e-5 * up.abs().max() * 5


def test_training_keeps_one_tensor_like_the_builtin():
    """The backward needs only dy/dh, saved in the forward: the built-in's activation memory."""

    def saved_bytes(fn, h):
        sizes: list[int] = []

        def pack(t):
            sizes.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn(h)
        return sum(sizes)

    h = torch.randn(32, 256, requires_grad=True)
    assert saved_bytes(gelu_tanh, h) == saved_bytes(lambda t: F.gelu(t, approximate="tanh"), h)


def test_inference_and_training_give_the_same_values():
    torch.manual_seed(3)
    h = torch.randn(50, 512)
    with torch.no_grad():
        plain = gelu_tanh(h)
    graded = gelu_tanh(h.clone().requires_grad_())
    assert torch.equal(plain, graded.detach())


def test_a_row_gets_the_same_value_alone_or_in_a_batch():
    """Batched decoding must give a request what it gets alone: elementwise, bit for bit."""
    torch.manual_seed(4)
    h = torch.randn(400, 512) * 2
    batch = gelu_tanh(h)
    for rows in (1, 20, 137):
        assert torch.equal(gelu_tanh(h[:rows]), batch[:rows])


def test_low_precision_uses_the_builtin_kernel():
    h = torch.randn(8, 64).to(torch.bfloat16)
    assert torch.equal(gelu_tanh(h), F.gelu(h, approximate="tanh"))


def test_large_inputs_go_in_chunks_with_the_same_results(monkeypatch):
    """Above CHUNK elements the passes run a cache-sized chunk at a time: same values, same
    gradients, a partial last chunk and non-contiguous inputs included."""
    import nexttoken.activations as act

    torch.manual_seed(5)
    h = torch.randn(3, 333, 512) * 2  # 511,488 elements: one full chunk and a partial one
    assert h.numel() > act.CHUNK and h.numel() % act.CHUNK
    up = torch.randn_like(h)
    chunked = h.clone().requires_grad_()
    y = gelu_tanh(chunked)
    (g,) = torch.autograd.grad(y, chunked, up)
    with torch.no_grad():
        plain = gelu_tanh(h)
    monkeypatch.setattr(act, "CHUNK", 1 << 30)
    whole = h.clone().requires_grad_()
    y_whole = gelu_tanh(whole)
    (g_whole,) = torch.autograd.grad(y_whole, whole, up)
    assert torch.equal(y, y_whole) and torch.equal(plain, y_whole.detach())
    assert torch.equal(g, g_whole)
    assert torch.allclose(y, F.gelu(h, approximate="tanh"), rtol=2e-6, atol=1e-6)
    monkeypatch.undo()
    t = h.transpose(1, 2)  # not contiguous
    assert torch.allclose(gelu_tanh(t), F.gelu(t, approximate="tanh"), rtol=2e-6, atol=1e-6)
    # a row alone gets the value it gets inside a chunked batch
    flat = h.view(-1, 512)
    assert torch.equal(gelu_tanh(flat[:20]), gelu_tanh(flat)[:20])


def test_training_works_after_a_first_call_under_inference_mode():
    """A forecast (inference mode) and then a compiled fine-tune in one process: the cached
    constant must not be an inference tensor (a compiled graph saves it for the backward)."""
    import nexttoken.activations as act

    act._TWO_C.clear()
    with torch.inference_mode():
        gelu_tanh(torch.randn(4, 8))
    h = torch.randn(600, 512, requires_grad=True)  # the chunked path
    gelu_tanh(h).sum().backward()
    assert h.grad is not None and torch.isfinite(h.grad).all()
    x = torch.randn(16, 32, requires_grad=True)
    torch.compile(lambda t: gelu_tanh(t) * 2)(x).sum().backward()
    ref = x.detach().clone().requires_grad_()
    (F.gelu(ref, approximate="tanh") * 2).sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, ref.grad, atol=1e-5)
