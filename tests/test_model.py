import math

import pytest
import torch

from nexttoken.model import GPT, GPTConfig, apply_rope, sinusoidal_positions

from .conftest import tiny_config

VARIANTS = [
    {},
    {"norm": "rmsnorm"},
    {"norm_position": "post"},
    {"positions": "sinusoidal"},
    {"positions": "rope"},
    {"positions": "none"},
    {"bias": False, "activation": "gelu"},
    {"parametrization": "mup", "mup_base_width": 8},
]


@pytest.mark.parametrize("overrides", VARIANTS)
def test_logits_for_every_position(overrides):
    model = GPT(tiny_config(**overrides))
    ids = torch.randint(0, 35, (3, 11))
    assert model(ids).shape == (3, 11, 35)


@pytest.mark.parametrize("overrides", VARIANTS)
def test_last_logits_are_the_forwards_last_position(overrides):
    torch.manual_seed(0)
    model = GPT(tiny_config(**overrides)).eval()
    ids = torch.randint(0, 35, (3, 11))
    last = model.last_logits(ids)
    assert last.shape == (3, 1, 35)
    torch.testing.assert_close(last, model(ids)[:, -1:])
    cache = model.new_cache(3) if model.config.causal else None
    if cache is not None:  # and with a cache, continuing a prompt
        model(ids[:, :6], cache=cache, pos=0)
        torch.testing.assert_close(model.last_logits(ids[:, 6:], cache=cache, pos=6), last)


@pytest.mark.parametrize("overrides", [*VARIANTS, {"objective": "mlm"}])
def test_one_position_per_row_through_the_last_block(overrides):
    """``_hidden(..., only=idx)`` gives each row's hidden state at its own position, as the
    full pass does (the server's batched next-token tables: prompts padded after their end),
    also after cached positions, and leaves every position's keys and values in the cache."""
    torch.manual_seed(1)
    model = GPT(tiny_config(**overrides)).eval()
    ids = torch.randint(0, 35, (4, 12))
    idx = torch.tensor([11, 3, 0, 7])
    rows = torch.arange(4)
    with torch.no_grad():
        full = model._hidden(ids, None, 0)
        picked = model._hidden(ids, None, 0, only=idx)
        assert picked.shape == (4, 1, full.shape[-1])
        torch.testing.assert_close(picked[:, 0], full[rows, idx])
        if not model.config.causal:
            return
        cache, ref = model.new_cache(4), model.new_cache(4)
        model(ids[:, :5], cache=cache, pos=0)
        model(ids[:, :5], cache=ref, pos=0)
        after = model._hidden(ids[:, 5:], cache, 5, only=idx.clamp(max=6))
        model._hidden(ids[:, 5:], ref, 5)
        torch.testing.assert_close(after[:, 0], full[rows, 5 + idx.clamp(max=6)])
        for kv, kv_ref in zip(cache.kv, ref.kv):
            torch.testing.assert_close(kv[:, :, :, :12], kv_ref[:, :, :, :12])


@pytest.mark.parametrize("overrides", VARIANTS)
def test_causality_changing_a_future_token_leaves_the_past_alone(overrides):
    torch.manual_seed(0)
    model = GPT(tiny_config(**overrides)).eval()
    ids = torch.randint(0, 35, (2, 20))
    changed = ids.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 35
    a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :12], b[:, :12])
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_masked_lm_sees_both_sides():
    torch.manual_seed(0)
    model = GPT(tiny_config(objective="mlm")).eval()
    ids = torch.randint(0, 35, (1, 20))
    changed = ids.clone()
    changed[:, 15] = (changed[:, 15] + 1) % 35
    assert not torch.allclose(model(ids)[:, :15], model(changed)[:, :15])


def test_cache_chunks_match_one_pass():
    torch.manual_seed(0)
    model = GPT(tiny_config(positions="rope")).eval()
    ids = torch.randint(0, 35, (2, 17))
    full = model(ids)
    cache = model.new_cache(2)
    parts = [model(ids[:, :9], cache=cache, pos=0), model(ids[:, 9:12], cache=cache, pos=9)]
    parts += [model(ids[:, t : t + 1], cache=cache, pos=t) for t in range(12, 17)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


def test_weight_tying_and_gpt2_names():
    model = GPT(tiny_config())
    assert model.lm_head.weight is model.transformer.wte.weight
    names = set(model.state_dict())
    for n in [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.ln_1.weight",
        "transformer.h.1.attn.c_attn.weight",
        "transformer.h.0.attn.c_proj.bias",
        "transformer.h.0.mlp.c_fc.weight",
        "transformer.h.0.mlp.c_proj.weight",
        "transformer.ln_f.weight",
    ]:
        assert n in names


def test_positions_beyond_the_window_are_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="exceed the context window of 32"):
        tiny_model(torch.zeros(1, 33, dtype=torch.long))


def test_sinusoidal_matches_the_formula():
    pe = sinusoidal_positions(50, 8)
    for p in (0, 7, 49):
        for i in range(4):
            angle = p / 10000 ** (2 * i / 8)
            assert math.isclose(pe[p, 2 * i], math.sin(angle), abs_tol=1e-6)
            assert math.isclose(pe[p, 2 * i + 1], math.cos(angle), abs_tol=1e-6)


def test_rope_scores_depend_only_on_relative_position():
    from nexttoken.model import _rope_tables

    cos, sin = _rope_tables(64, 8, 10000.0)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(i, j):
        qi = apply_rope(q, cos[i : i + 1], sin[i : i + 1])
        kj = apply_rope(k, cos[j : j + 1], sin[j : j + 1])
        return float((qi * kj).sum())

    assert math.isclose(score(3, 1), score(40, 38), rel_tol=1e-4, abs_tol=1e-5)
    assert math.isclose(score(10, 10), score(0, 0), rel_tol=1e-4, abs_tol=1e-5)


def test_rmsnorm_matches_formula_and_torch():
    model = GPT(tiny_config(norm="rmsnorm"))
    norm = model.transformer.h[0].ln_1
    assert isinstance(norm, torch.nn.RMSNorm)
    x = torch.randn(4, 16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    expected = x / torch.sqrt((x * x).mean(-1, keepdim=True) + norm.eps) * norm.weight
    torch.testing.assert_close(norm(x), expected)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"n_embd": 10, "n_head": 3}, "not divisible"),
        ({"norm": "batchnorm"}, "norm='batchnorm' is not one of"),
        ({"context_length": 0}, "context_length must be a positive integer"),
        ({"dropout": 1.5}, "dropout"),
    ],
)
def test_config_errors_say_what_to_change(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_config_round_trip():
    c = tiny_config(norm="rmsnorm", positions="rope")
    assert GPTConfig.from_dict(c.to_dict()) == c


def test_sinusoidal_positions_add_the_table_to_scaled_embeddings():
    torch.manual_seed(0)
    model = GPT(tiny_config(positions="sinusoidal")).eval()
    seen = {}
    model.transformer.h[0].register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    ids = torch.randint(0, 35, (1, 9))
    model(ids)
    want = model.transformer.wte(ids) * math.sqrt(16) + sinusoidal_positions(32, 16)[:9]
    torch.testing.assert_close(seen["x"], want)
