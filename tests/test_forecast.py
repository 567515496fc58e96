import warnings

import numpy as np
import pytest

from nexttoken import forecast, load
from nexttoken.analysis import step_distributions


def test_shapes_and_summaries(signal_checkpoint):
    lm = load(signal_checkpoint)
    ctx = np.sin(np.arange(40) / 3.0)[None].repeat(3, 0)
    f = forecast(lm, ctx, 10, num_samples=7, seed=0)
    assert f.samples.shape == (3, 7, 10)
    assert f.median.shape == (3, 10) and f.mean.shape == (3, 10)
    assert f.quantiles.shape == (3, 9, 10)
    assert np.isfinite(f.samples).all()
    assert (np.diff(f.quantiles, axis=1) >= 0).all()  # quantiles are ordered
    np.testing.assert_allclose(f.quantiles[:, 4], f.median)
    # Values are bin centres times the context's scale.
    centers = lm.tokenizer.centers().numpy() * f.scale[0]
    assert np.isin(np.round(f.samples[0], 9), np.round(centers, 9)).all()


def test_same_seed_same_forecast_and_horizon_beyond_the_window(signal_checkpoint):
    lm = load(signal_checkpoint)
    ctx = np.cos(np.arange(20) / 2.0)
    a = forecast(lm, ctx, 60, num_samples=4, seed=3)  # window is 24 tokens
    b = forecast(lm, ctx, 60, num_samples=4, seed=3)
    assert a.samples.shape == (1, 4, 60)
    np.testing.assert_array_equal(a.samples, b.samples)


def test_batched_series_equal_one_at_a_time(signal_checkpoint):
    lm = load(signal_checkpoint)
    ctx = [np.sin(np.arange(16) / p) for p in (2.0, 3.0)]
    both = forecast(lm, ctx, 8, num_samples=3, greedy=True)
    for i, c in enumerate(ctx):
        one = forecast(lm, c, 8, num_samples=3, greedy=True)
        np.testing.assert_array_equal(both.samples[i], one.samples[0])


def test_missing_values_and_different_lengths(signal_checkpoint):
    lm = load(signal_checkpoint)
    a = np.array([np.nan, np.nan, 1.0, 0.5, np.nan, -0.5, -1.0])
    f = forecast(lm, [a, np.arange(12.0)], 5, num_samples=2)
    assert f.samples.shape == (2, 2, 5) and np.isfinite(f.samples).all()


def test_bad_context_is_explained(signal_checkpoint):
    lm = load(signal_checkpoint)
    with pytest.raises(ValueError, match="all missing"):
        forecast(lm, [np.nan, np.nan], 3)
    with pytest.raises(ValueError, match="inf"):
        forecast(lm, [1.0, np.inf], 3)
    with pytest.raises(ValueError, match="horizon"):
        forecast(lm, [1.0, 2.0], 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forecast(lm, np.arange(100.0), 2, num_samples=1)
    assert any("more than the model's window" in str(w.message) for w in caught)


def test_step_distributions_match_one_forward_per_step(signal_checkpoint):
    import torch

    lm = load(signal_checkpoint)
    ids = torch.randint(3, lm.tokenizer.vocab_size, (40,))
    probs = step_distributions(lm.model, ids, 10)
    assert probs.shape == (30, lm.tokenizer.vocab_size)
    torch.testing.assert_close(probs.sum(-1), torch.ones(30, dtype=torch.float64))
    for t in (10, 23, 24, 39):
        start = max(0, t - 24)
        expected = lm.model(ids[start:t][None])[0, -1].double().softmax(-1)
        torch.testing.assert_close(probs[t - 10], expected, rtol=1e-4, atol=1e-6)


def _standard_lm():
    import torch

    from nexttoken import GPT, GPTConfig, SignalTokenizer
    from nexttoken.lm import LanguageModel

    tok = SignalTokenizer(n_bins=64, low=-4.0, high=4.0, scaling="standard")
    torch.manual_seed(0)
    model = GPT(
        GPTConfig(vocab_size=tok.vocab_size, context_length=32, n_layer=1, n_head=2, n_embd=16)
    )
    return LanguageModel(model.eval(), tok)


@pytest.mark.parametrize("a,b", [(3.0, 10.0), (0.01, -5.0), (1e6, 1e9)])
def test_standard_scaling_forecast_is_offset_and_scale_equivariant(a, b):
    lm = _standard_lm()
    x = np.sin(np.arange(30) / 2.3) + 0.1 * np.cos(np.arange(30) / 0.7)
    base = forecast(lm, x, 12, num_samples=6, seed=1)
    moved = forecast(lm, a * x + b, 12, num_samples=6, seed=1)
    one_bin = 8.0 / 63 * a * base.scale[0]
    np.testing.assert_allclose(moved.samples, a * base.samples + b, rtol=0, atol=one_bin)
    np.testing.assert_allclose(moved.loc, a * base.loc + b, rtol=1e-9)


def test_constant_series_forecasts_the_constant():
    lm = _standard_lm()
    for value in (0.0, 42.0, -1e9):
        f = forecast(lm, np.full(20, value), 5, num_samples=3, seed=0)
        np.testing.assert_allclose(f.samples, value, rtol=1e-9, atol=1e-9)
