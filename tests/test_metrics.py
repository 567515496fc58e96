"""Forecast metrics: hand-computed values on tiny arrays, and the libraries' own functions."""

from __future__ import annotations

import numpy as np
import pytest

from nexttoken import metrics as M


def test_point_metrics_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    f = np.array([1.0, 3.0, 1.0, 4.0])  # errors 0, 1, -2, 0
    assert M.mae(y, f) == pytest.approx(0.75)
    assert M.rmse(y, f) == pytest.approx(np.sqrt(5 / 4))
    context = np.array([0.0, 2.0, 0.0, 2.0])  # variance 1; lag-1 naive MAE 2; lag-2 MAE 0
    assert M.nmse(y, f, context) == pytest.approx(5 / 4)
    assert M.mase(y, f, context, period=1) == pytest.approx(0.75 / 2)
    # period 2 repeats the context exactly (scale 0): the one-step naive error scales instead
    assert M.mase(y, f, context, period=2) == pytest.approx(0.75 / 2)
    # |2-3|/(2+3) = 0.2 at step 2, |3-1|/(3+1) = 0.5 at step 3: 200 * 0.7 / 4
    assert M.smape(y, f) == pytest.approx(35.0)
    assert M.smape(np.zeros(2), np.zeros(2)) == 0.0  # 0/0 counts as a perfect step


def test_probabilistic_metrics_by_hand():
    y = np.array([0.0])
    # Two samples at -1 and 1: E|X - y| = 1, E|X - X'| = (0 + 2 + 2 + 0) / 4 = 1 -> CRPS 0.5.
    assert M.crps(y, np.array([[-1.0], [1.0]])) == pytest.approx(0.5)
    # One sample: CRPS is the absolute error.
    assert M.crps(np.array([2.0, 0.0]), np.array([[3.0, 0.0]])) == pytest.approx(0.5)
    # Pinball: y above the q0.9 by 1 -> 2 * 0.9; below the q0.1 by 1 -> 2 * 0.9.
    assert M.quantile_loss(np.array([1.0]), np.array([0.0]), 0.9) == pytest.approx([1.8])
    assert M.quantile_loss(np.array([-1.0]), np.array([0.0]), 0.1) == pytest.approx([1.8])
    y2 = np.array([1.0, -1.0])
    q = np.array([[0.0, 0.0], [1.0, -1.0]])  # levels 0.5 (off by 1 each step) and 0.9 (exact)
    # level 0.5: 2 * 0.5 * (1 + 1) = 2; level 0.9: 0 -> mean 1, over sum |y| = 2
    assert M.wql(y2, q, levels=(0.5, 0.9)) == pytest.approx(0.5)
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    assert M.coverage(np.array([0.5, 2.0, 1.0]), lo, hi) == pytest.approx(2 / 3)


def test_metrics_keep_the_series_axis_and_check_shapes():
    rng = np.random.default_rng(0)
    y, s = rng.normal(size=(3, 4, 6)), rng.normal(size=(3, 4, 10, 6))
    assert M.crps(y, s).shape == (3, 4)
    assert M.mae(y, s[..., 0, :]).shape == (3, 4)
    with pytest.raises(ValueError, match="differ in shape"):
        M.mae(y, s[..., :5])
    with pytest.raises(ValueError, match="want"):
        M.crps(y, s[..., :5])


@pytest.mark.parametrize("period", [7, 12, 25])
def test_seasonal_period_of_a_noisy_sine(period):
    t = np.arange(200)
    x = np.sin(2 * np.pi * t / period) + 0.2 * np.random.default_rng(1).normal(size=200)
    assert M.seasonal_period(x) == period
    assert M.seasonal_period(np.cumsum(np.ones(100))) == 1  # a trend has no season


def test_crps_matches_properscoring():
    properscoring = pytest.importorskip("properscoring")
    rng = np.random.default_rng(0)
    y, s = rng.normal(size=(5, 8)), rng.normal(size=(5, 13, 8))
    ref = properscoring.crps_ensemble(y, np.moveaxis(s, -2, -1)).mean(-1)
    np.testing.assert_allclose(M.crps(y, s), ref, rtol=1e-12)


def test_mase_smape_and_wql_match_utilsforecast():
    pd = pytest.importorskip("pandas")
    losses = pytest.importorskip("utilsforecast.losses")
    rng = np.random.default_rng(0)
    n, T, H, m = 3, 30, 6, 4
    ctx = rng.normal(size=(n, T)) + 5
    y = rng.normal(size=(n, H)) + 5
    point = y + rng.normal(size=(n, H))
    levels = np.array(M.WQL_LEVELS)
    q = np.sort(point[:, None, :] + rng.normal(size=(n, len(levels), H)), axis=1)
    ids = np.repeat(np.arange(n), H)
    df = pd.DataFrame(
        {
            "unique_id": ids,
            "ds": np.tile(np.arange(T, T + H), n),
            "y": y.ravel(),
            "m": point.ravel(),
        }
    )
    for i, lv in enumerate(levels):
        df[f"m-q-{lv}"] = q[:, i, :].ravel()
    train = pd.DataFrame(
        {"unique_id": np.repeat(np.arange(n), T), "ds": np.tile(np.arange(T), n), "y": ctx.ravel()}
    )
    ref_mase = losses.mase(df, ["m"], seasonality=m, train_df=train)["m"].to_numpy()
    np.testing.assert_allclose(M.mase(y, point, ctx, period=m), ref_mase, rtol=1e-10)
    ref_smape = losses.smape(df, ["m"])["m"].to_numpy()
    np.testing.assert_allclose(M.smape(y, point), 200 * ref_smape, rtol=1e-10)
    models = {"m": [f"m-q-{lv}" for lv in levels]}
    ref_wql = losses.scaled_crps(df, models, levels)["m"].to_numpy()
    np.testing.assert_allclose(M.wql(y, q), ref_wql, rtol=1e-10)
