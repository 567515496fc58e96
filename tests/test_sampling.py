import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nexttoken.sampling import (
    apply_repetition_penalty,
    check_sampling_args,
    greedy,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-300, 300), min_size=1, max_size=50, unique=True))
def test_argmax_of_logits_is_argmax_of_softmax(values):
    # Distinct logits (0.1 apart): softmax is strictly increasing, so the argmax cannot move.
    logits = torch.tensor(values, dtype=torch.float32) / 10
    assert greedy(logits) == logits.softmax(-1).argmax()
    assert greedy(logits) == int(torch.tensor(values).argmax())


def test_top_k_one_equals_greedy():
    torch.manual_seed(0)
    logits = torch.randn(64, 100)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(sample(logits, top_k=1, generator=g), logits.argmax(-1))


def test_temperature_to_zero_equals_greedy():
    torch.manual_seed(0)
    logits = torch.randn(64, 100)
    assert torch.equal(sample(logits, temperature=0), logits.argmax(-1))
    g = torch.Generator().manual_seed(1)
    assert torch.equal(sample(logits, temperature=1e-4, generator=g), logits.argmax(-1))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=40), st.floats(0.001, 1.0)
)
def test_top_p_keeps_at_least_one_token_and_the_nucleus(values, p):
    logits = torch.tensor([values])
    kept = torch.isfinite(top_p_filter(logits, p))
    assert kept.sum() >= 1
    assert kept[0, logits.argmax()]
    probs = logits.softmax(-1)
    # The kept tokens reach p, and dropping the least probable kept one would not.
    mass = probs[kept].sum()
    assert mass >= min(p, 1.0) - 1e-5 or kept.all()
    smallest = probs[kept].min()
    assert mass - smallest < p + 1e-5 or kept.sum() == 1


def test_min_p_and_top_k_ties():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.1]]))
    assert torch.isfinite(min_p_filter(logits, 0.5)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_k_filter(logits, 3)).tolist() == [
        [True, True, True, True]
    ]  # tie at the 3rd


def test_same_seed_same_samples_and_frequencies_follow_probabilities():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).expand(20000, 4)
    a = sample(logits, generator=torch.Generator().manual_seed(3))
    b = sample(logits, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    freq = torch.bincount(a, minlength=4).float() / a.numel()
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]), atol=0.015, rtol=0)


def test_filtered_tokens_are_never_sampled():
    torch.manual_seed(0)
    logits = torch.randn(2000, 30)
    ids = sample(logits, top_k=3, generator=torch.Generator().manual_seed(0))
    top3 = logits.topk(3).indices
    assert (top3 == ids[:, None]).any(-1).all()


def test_repetition_penalty():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -1}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_p": 1.5}, "top_p"),
        ({"min_p": 2}, "min_p"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
    ],
)
def test_bad_sampling_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_sampling_args(**kwargs)


def test_top_p_on_ties_keeps_the_token_greedy_picks():
    logits = torch.zeros(1, 64)
    kept = torch.isfinite(top_p_filter(logits, 0.01))
    assert kept.sum() == 1 and kept[0, logits.argmax()]


def test_a_tiny_temperature_samples_the_argmax_instead_of_nan():
    # divided by 1e-300 the logits overflow (and 1e-300 itself rounds to 0 in float32): the
    # logits are shifted by their maximum first, so the result is the greedy token
    from nexttoken.sampling import logits_to_probs, sample

    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    logits[:, :3] = float("-inf")  # suppressed tokens stay impossible
    for t in (1e-300, 1e-40, 1e-5):
        probs = logits_to_probs(logits, temperature=t)
        assert not torch.isnan(probs).any()
        assert torch.equal(probs.argmax(-1), logits.argmax(-1))
        assert torch.equal(sample(logits, temperature=t), logits.argmax(-1))


def test_gumbel_max_picks_the_token_the_race_picks_from_the_same_uniforms():
    from nexttoken.sampling import gumbel_noise, race_noise, sample

    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3000, 64, generator=g) * 3
    for kw in (
        {},
        {"temperature": 0.7},
        {"top_k": 5},
        {"top_p": 0.8, "temperature": 1.3},
        {"min_p": 0.1},
    ):
        log_u = race_noise((3000, 64), torch.Generator().manual_seed(9))
        gumbel = gumbel_noise((3000, 64), torch.Generator().manual_seed(9))
        torch.testing.assert_close(gumbel, -torch.log(-log_u))
        assert torch.equal(sample(logits, log_u=log_u, **kw), sample(logits, gumbel=gumbel, **kw))
