"""muP: equal to the standard model at the base width, per-layer learning rates, coordinate check."""

from __future__ import annotations

import math

import pytest
import torch

from nexttoken import GPT, SignalTokenizer
from nexttoken.checkpoint import load_checkpoint, save_checkpoint
from nexttoken.hf import save_hf_gpt2
from nexttoken.mup import coordinate_check
from nexttoken.train import TrainConfig, _optimizer, set_lr

from .conftest import tiny_config


def test_mup_at_the_base_width_is_the_standard_model():
    ids = torch.randint(0, 35, (2, 12))
    torch.manual_seed(0)
    standard = GPT(tiny_config(n_embd=32)).eval()
    torch.manual_seed(0)
    mup = GPT(tiny_config(n_embd=32, parametrization="mup", mup_base_width=32)).eval()
    torch.testing.assert_close(mup(ids), standard(ids))
    assert [g["lr_mult"] for g in mup.optim_groups(0.1)] == [1.0, 1.0]


def test_mup_scales_init_output_attention_and_learning_rates_with_width():
    config = tiny_config(n_embd=64, n_head=2, parametrization="mup", mup_base_width=16)
    assert config.width_mult == 4.0
    hs = 32
    # 1/d attention: sqrt(base head size) / head size, against 1/sqrt(head size) for standard.
    assert config.attn_scale == pytest.approx(math.sqrt(8) / hs)
    assert tiny_config(n_embd=64).attn_scale == pytest.approx(1 / math.sqrt(hs))
    torch.manual_seed(0)
    model = GPT(config)
    assert model.output_mult == 0.25
    c_fc = model.transformer.h[0].mlp.c_fc.weight
    assert float(c_fc.detach().std()) == pytest.approx(0.02 / 2, rel=0.1)  # 0.02 / sqrt(width mult)
    assert float(model.transformer.wte.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
    opt = _optimizer(model, TrainConfig(lr=1e-2, weight_decay=0.1))
    set_lr(opt, 1e-2)
    hidden = {id(model.transformer.h[i].attn.c_attn.weight) for i in range(2)}
    for group in opt.param_groups:
        ids = {id(p) for p in group["params"]}
        if ids & hidden:
            assert group["lr"] == pytest.approx(1e-2 / 4) and ids <= {
                id(p) for n, p in model.named_parameters() if n.endswith("weight") and p.dim() == 2
            }
        if id(model.transformer.wte.weight) in ids:
            assert group["lr"] == pytest.approx(1e-2)
            assert group["weight_decay"] == 0.1
    n_grouped = sum(len(g["params"]) for g in opt.param_groups)
    assert n_grouped == len(list(model.parameters()))


def _blocks(cc, step):
    return [cc.growth(p, step) for p in cc.probes if p.startswith("block")]


def test_coordinate_check_flat_under_mup_and_growing_under_standard():
    base = dict(vocab_size=64, context_length=32, n_layer=2, n_head=4, n_embd=32)
    widths = [32, 128]
    mup = coordinate_check(
        tiny_config(**base, parametrization="mup", mup_base_width=32), widths, steps=3
    )
    standard = coordinate_check(tiny_config(**base), widths, steps=3)
    # muP: every hidden activation keeps its size (within 2x) at init and after 3 Adam steps,
    # while the width grows 4x; the logits too, once training has moved them.
    for step in (0, 3):
        assert all(0.5 < g < 2.0 for g in _blocks(mup, step)), mup.sizes
    assert 0.5 < mup.growth("logits", 3) < 2.0
    # standard: the hidden activations blow up with width after a few steps.
    assert min(_blocks(standard, 3)) > 3.0, standard.sizes


def test_mup_checkpoint_round_trip_and_gpt2_export_refused(tmp_path):
    tok = SignalTokenizer(n_bins=29, low=-2, high=2)
    config = tiny_config(vocab_size=tok.vocab_size, parametrization="mup", mup_base_width=8)
    torch.manual_seed(0)
    model = GPT(config).eval()
    save_checkpoint(tmp_path / "m", model, tok)
    loaded, _, _ = load_checkpoint(tmp_path / "m")
    ids = torch.randint(0, tok.vocab_size, (1, 10))
    assert loaded.config.parametrization == "mup" and loaded.config.mup_base_width == 8
    torch.testing.assert_close(loaded(ids), model(ids))
    with pytest.raises(ValueError, match="parametrization='mup'"):
        save_hf_gpt2(model, tok, tmp_path / "hf")


def test_bad_mup_settings_are_refused():
    with pytest.raises(ValueError, match="parametrization='mu' is not one of standard, mup"):
        tiny_config(parametrization="mu")
    with pytest.raises(ValueError, match="mup_base_width must be a positive integer"):
        tiny_config(parametrization="mup", mup_base_width=0)
