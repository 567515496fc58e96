import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nexttoken.tokenizers import CharTokenizer, SignalTokenizer, parse_numbers, tokenizer_from_json


def test_bin_centres_round_trip_exactly():
    tok = SignalTokenizer(n_bins=64, low=-2.0, high=2.0)
    centers = tok.centers()[None]
    ids = tok.values_to_ids(centers, torch.ones(1))
    assert ids.tolist()[0] == list(range(tok.n_special, tok.vocab_size))
    assert torch.equal(tok.ids_to_values(ids, 1.0), centers)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=1, max_size=40), st.floats(0.1, 10))
def test_decode_is_within_half_a_bin_inside_the_limits(values, scale):
    tok = SignalTokenizer(n_bins=101, low=-5.0, high=5.0)
    x = torch.tensor([values], dtype=torch.float64)
    ids = tok.values_to_ids(x, torch.tensor([scale]))
    back = tok.ids_to_values(ids, torch.tensor([scale]))
    half_bin = 0.5 * (10.0 / 100) * scale
    inside = (x / scale).abs() <= 5.0
    assert ((back - x).abs()[inside] <= half_bin + 1e-9).all()
    # Outside the limits values clamp to the end bins.
    torch.testing.assert_close(back[~inside].abs(), torch.full_like(back[~inside], 5.0 * scale))


def test_clamping_and_nan_to_pad():
    tok = SignalTokenizer(n_bins=16, low=-1.0, high=1.0)
    ids = tok.values_to_ids(torch.tensor([[-100.0, 100.0, math.nan]]), torch.ones(1))
    assert ids.tolist() == [[tok.n_special, tok.vocab_size - 1, tok.PAD]]
    values = tok.ids_to_values(ids, 2.0)
    assert values[0, 0] == -2.0 and values[0, 1] == 2.0 and math.isnan(values[0, 2])


def test_scale_is_mean_absolute_value_with_fallbacks():
    tok = SignalTokenizer()
    ctx = torch.tensor([[1.0, -3.0, math.nan], [0.0, 0.0, 0.0], [math.nan, math.nan, math.nan]])
    assert tok.scale_of(ctx).tolist() == [2.0, 1.0, 1.0]


def test_input_transform_rejects_inf():
    with pytest.raises(ValueError, match="inf"):
        SignalTokenizer().input_transform(np.array([1.0, np.inf]))


def test_parse_numbers():
    np.testing.assert_array_equal(parse_numbers("1, 2.5,,-3"), [1.0, 2.5, np.nan, -3.0])
    with pytest.raises(ValueError, match="'x' is not a number"):
        parse_numbers("1,x")


def test_char_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer.from_text("hello world")
    assert tok.decode(tok.encode("low hell")) == "low hell"
    with pytest.raises(ValueError, match="not in this model's vocabulary"):
        tok.encode("xyz")


@pytest.mark.parametrize("tok", [SignalTokenizer(n_bins=10, low=-1, high=2), CharTokenizer("abc")])
def test_json_round_trip(tok):
    back = tokenizer_from_json(tok.to_json())
    assert type(back) is type(tok) and back.vocab_size == tok.vocab_size
    assert back.to_json() == tok.to_json()


def test_foreign_tokenizer_json_is_refused():
    with pytest.raises(ValueError, match="not valid JSON"):
        tokenizer_from_json("{trunc")
    with pytest.raises(ValueError, match="not a nexttoken"):
        tokenizer_from_json('{"kind": "mystery"}')
