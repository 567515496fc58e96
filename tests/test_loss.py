"""The loss computed in chunks (never every logit at once) against plain cross-entropy."""

import pytest
import torch
import torch.nn.functional as F

from nexttoken import GPT
from nexttoken import model as model_module
from nexttoken.loss import linear_cross_entropy
from nexttoken.train import lm_loss

from .conftest import tiny_config


def _plain(h, w, t, vocab, scale):
    logits = (h @ w[:vocab].t()) * scale
    return F.cross_entropy(logits.to(torch.promote_types(logits.dtype, torch.float32)), t)


@pytest.mark.parametrize("pad, scale", [(0, 1.0), (13, 1.0), (0, 0.25), (29, 0.5)])
def test_chunked_loss_and_gradients_equal_plain_cross_entropy(pad, scale):
    torch.manual_seed(0)
    N, C, V = 300, 24, 77
    h = torch.randn(N, C, dtype=torch.float64, requires_grad=True)
    w = torch.randn(V, C, dtype=torch.float64)
    # padding rows are zeros in the model; any values must be ignored all the same
    w = torch.cat([w, torch.randn(pad, C, dtype=torch.float64)]).requires_grad_()
    t = torch.randint(V, (N,))
    t[::7] = -100  # positions without a target
    ours = linear_cross_entropy(h, w, t, vocab=V, scale=scale, chunk_elements=64 * (V + pad))
    ref = _plain(h, w, t, V, scale)
    torch.testing.assert_close(ours.double(), ref.double(), rtol=1e-6, atol=1e-9)
    g_ours = torch.autograd.grad(ours * 3.0, (h, w))
    g_ref = torch.autograd.grad(ref * 3.0, (h, w))
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    assert not g_ours[1][V:].any()  # the padding learns nothing


def test_every_target_ignored_is_a_zero_loss_not_nan():
    h = torch.randn(5, 4, requires_grad=True)
    w = torch.randn(6, 4)
    loss = linear_cross_entropy(h, w, torch.full((5,), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert h.grad.abs().max() == 0


@pytest.mark.parametrize("fused_from", [1 << 30, 0])
def test_gpt_computes_its_loss_as_lm_loss_does(monkeypatch, fused_from):
    monkeypatch.setattr(model_module, "FUSED_LOSS_ELEMENTS", fused_from)
    torch.manual_seed(0)
    model = GPT(tiny_config(vocab_size=50)).double()
    x = torch.randint(50, (3, 16))
    y = torch.randint(50, (3, 16))
    y[0, :5] = -100
    ours = model(x, y)
    g_ours = torch.autograd.grad(ours, list(model.parameters()))
    ref = lm_loss(model(x), y)
    g_ref = torch.autograd.grad(ref, list(model.parameters()))
    torch.testing.assert_close(ours.double(), ref.double(), rtol=1e-6, atol=1e-9)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_a_padded_head_keeps_the_true_vocabulary(monkeypatch):
    """The GPU's padded head (zero rows up to a multiple of 64): same logits, same loss."""
    torch.manual_seed(0)
    model = GPT(tiny_config(vocab_size=70)).double()
    x, y = torch.randint(70, (2, 12)), torch.randint(70, (2, 12))
    plain_logits, plain_loss = model(x), model(x, y)
    w = model.lm_head.weight
    monkeypatch.setattr(model, "_head_weight", lambda: F.pad(w, (0, 0, 0, 58)))
    padded = model(x)
    assert padded.shape == plain_logits.shape == (2, 12, 70)
    torch.testing.assert_close(padded, plain_logits)
    torch.testing.assert_close(model(x, y), plain_loss)
    monkeypatch.setattr(model_module, "FUSED_LOSS_ELEMENTS", 0)
    torch.testing.assert_close(model(x, y), plain_loss)


def test_bf16_autocast_loss_is_close_to_fp32():
    torch.manual_seed(0)
    h = torch.randn(128, 32, requires_grad=True)
    w = torch.randn(100, 32, requires_grad=True)
    t = torch.randint(100, (128,))
    with torch.autocast("cpu", torch.bfloat16):
        ours = linear_cross_entropy(h, w, t, chunk_elements=64 * 100)
    ours.backward()
    assert w.grad.dtype == torch.float32 and h.grad.dtype == torch.float32
    torch.testing.assert_close(ours.float(), _plain(h, w, t, 100, 1.0), rtol=2e-2, atol=2e-2)
