import numpy as np
import pytest

from nexttoken import synthetic as S


def test_shapes_determinism_and_finiteness():
    for fn in (S.kernel_synth, S.structured_oscillators):
        a = fn(12, 200, seed=3)
        assert a.shape == (12, 200) and np.isfinite(a).all()
        np.testing.assert_array_equal(a, fn(12, 200, seed=3))
        assert not np.array_equal(a, fn(12, 200, seed=4))
    c = S.corpus(40, 128, seed=1)
    assert c.shape == (40, 128) and np.isfinite(c).all()
    np.testing.assert_array_equal(c, S.corpus(40, 128, seed=1))


def _trend_share(x: np.ndarray) -> np.ndarray:
    """Share of each row's variance explained by a straight line."""
    t = np.arange(x.shape[1])
    out = []
    for row in x:
        fit = np.polyval(np.polyfit(t, row, 1), t)
        out.append(1 - (row - fit).var() / max(row.var(), 1e-12))
    return np.array(out)


def _season_strength(x: np.ndarray, periods=S.CALENDAR_PERIODS) -> np.ndarray:
    """Best autocorrelation at a calendar period (after removing a linear trend)."""
    t = np.arange(x.shape[1])
    out = []
    for row in x:
        r = row - np.polyval(np.polyfit(t, row, 1), t)
        r = (r - r.mean()) / max(r.std(), 1e-12)
        best = max(float(np.mean(r[p:] * r[:-p])) for p in periods if 2 * p <= len(r))
        out.append(best)
    return np.array(out)


def test_kernel_synth_has_trends_and_seasons():
    x = S.kernel_synth(200, 256, seed=0)
    # Some series are mostly a trend, some strongly seasonal, and levels differ from zero.
    assert (_trend_share(x) > 0.8).mean() > 0.05
    assert (_season_strength(x) > 0.7).mean() > 0.15
    assert (np.abs(x.mean(axis=1)) > 0.5 * x.std(axis=1)).mean() > 0.1


def test_structured_oscillators_have_levels_trends_and_seasons():
    x = S.structured_oscillators(300, 256, seed=0)
    level = np.abs(x.mean(axis=1)) / x.std(axis=1)
    assert (level > 1).mean() > 0.3  # far from zero, in units of their own spread
    assert (_trend_share(x) > 0.5).mean() > 0.1
    assert np.median(_season_strength(x)) > 0.3


def test_structured_oscillators_have_seasons_that_grow_with_the_level():
    # Sales-like rows: (level + trend) * (1 + m * season). Among rows whose level at least
    # doubles, the season's swing (what a 25-step moving average leaves) must often grow with
    # it; without such rows the share is ~2% (measured), with them ~30%.
    x = S.structured_oscillators(600, 256, seed=0)
    q, k = 64, np.ones(25) / 25
    swing = np.array([(r - np.convolve(r, k, mode="same"))[12:-12] for r in x])
    first, last = x[:, :q].mean(axis=1), x[:, -q:].mean(axis=1)
    growing = (first > 0) & (last > 2 * first)
    grew = swing[:, -q:].std(axis=1) / np.maximum(swing[:, :q].std(axis=1), 1e-12) > 1.5
    assert growing.sum() > 30
    assert grew[growing].mean() > 0.15


def test_tsmixup_is_a_convex_mix_of_scaled_rows():
    pool = np.stack([np.full(10, 2.0), np.full(10, -4.0)])
    mixed = S.tsmixup(pool, 50, seed=0, max_parts=2)
    # each row is w*1 + (1-w)*(-1) for scaled rows +1 and -1: inside [-1, 1], constant in time
    assert np.all(mixed <= 1 + 1e-12) and np.all(mixed >= -1 - 1e-12)
    np.testing.assert_allclose(mixed.std(axis=1), 0, atol=1e-12)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown corpus sources"):
        S.corpus(4, 64, shares={"kernelsynth": 1, "real": 1})
    with pytest.raises(ValueError, match="not all zero"):
        S.corpus(4, 64, shares={"kernelsynth": 0})
    with pytest.raises(ValueError, match="length >= 2"):
        S.kernel_synth(4, 1)
