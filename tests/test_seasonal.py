"""The seasonal generators do what they claim: shape, period, spikes, floors, walks, weeks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nexttoken import seasonal as G
from nexttoken.synthetic import SOURCES, corpus

GENERATORS = [
    G.sharp_seasons,
    G.spiky_seasons,
    G.floored_seasons,
    G.seasonal_walks,
    G.two_seasons,
    G.weather_demand,
    G.changing_weeks,
    G.regimes,
]


def _lag_corr(x: np.ndarray, lag: int, smooth: int) -> float:
    """Correlation with itself ``lag`` steps back, less a moving average over ``smooth``."""
    r = (x - np.convolve(x, np.ones(smooth) / smooth, mode="same"))[smooth:-smooth]
    return float(np.corrcoef(r[lag:], r[:-lag])[0, 1])


@pytest.mark.parametrize("make", GENERATORS, ids=lambda f: f.__name__)
def test_generators_are_seeded_finite_and_shaped(make):
    for length in (32, 700):
        x = make(24, length, seed=5)
        assert x.shape == (24, length) and x.dtype == np.float64
        assert np.isfinite(x).all()
        np.testing.assert_array_equal(x, make(24, length, seed=5))
        assert not np.array_equal(x, make(24, length, seed=6))
    with pytest.raises(ValueError, match="length >= 4"):
        make(2, 3)


def _harmonic_share(shape: np.ndarray) -> float:
    """Share of a period's variance beyond its first two harmonics."""
    power = np.abs(np.fft.rfft(shape))[1:] ** 2
    return float(power[2:].sum() / power.sum())


def test_season_shapes_carry_many_harmonics_unlike_a_smooth_periodic_kernel():
    rng = np.random.default_rng(0)
    periods = np.full(200, 48)
    shapes, kinds = G.season_shapes(rng, periods)
    np.testing.assert_allclose(shapes.mean(axis=1), 0, atol=1e-9)
    np.testing.assert_allclose(shapes.std(axis=1), 1, atol=1e-9)
    share = {
        G.SHAPES[k]: np.median([_harmonic_share(s) for s in shapes[kinds == k]]) for k in range(4)
    }
    # a periodic kernel with length scale 1 (KernelSynth's default) keeps ~all in 2 harmonics
    j = np.arange(48)
    row = np.exp(-2 * np.sin(math.pi * j / 48) ** 2 / 1.0**2)
    spec = np.fft.rfft(row).real[1:]
    assert spec[2:].sum() / spec.sum() < 0.05
    for kind in G.SHAPES:
        assert share[kind] > 0.1, (kind, share)


def test_sharp_seasons_repeat_at_their_period():
    x, info = G.sharp_seasons(60, 1200, seed=1, info=True)
    corr = [_lag_corr(r, int(p), int(p)) for r, p in zip(x, info["period"]) if 2 < p <= 300]
    assert np.median(corr) > 0.6


def test_spikes_sit_at_the_same_phase_of_each_period():
    x, info = G.spiky_seasons(60, 600, seed=2, info=True)
    aligned = []
    for r, p, ph, w in zip(x, info["period"], info["phase"], info["width"]):
        dev = np.abs(r - np.median(r))
        top = np.argsort(dev)[-max(3, len(r) // 100) :]  # the 1% largest departures
        aligned.append(np.mean((top - ph) % p < w))
    assert np.median(aligned) > 0.7


def test_floored_series_have_zero_floors_and_intermittent_counts():
    x, info = G.floored_seasons(90, 480, seed=3, info=True)
    zeros = (x == 0).mean(axis=1)
    for kind in ("solar", "clipped", "counts"):
        assert (info["kind"] == kind).sum() > 5
    assert 0.3 < np.median(zeros[info["kind"] == "solar"]) < 0.7  # nights: about half of a day
    assert 0.05 < np.median(zeros[info["kind"] == "clipped"]) < 0.7
    counts = x[info["kind"] == "counts"]
    assert np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    assert np.median((counts == 0).mean(axis=1)) > 0.2
    assert (x >= 0).all()


def test_seasonal_walks_carry_last_season_on_and_change_it_slowly():
    x, info = G.seasonal_walks(60, 600, seed=4, info=True)
    ratios, changes = [], []
    for r, p in zip(x, info["period"]):
        d = r[p:] - r[:-p]
        ratios.append(d.std() / r.std())
        changes.append(np.abs(d - d.mean()).max())
    assert np.median(ratios) < 0.5  # each period is close to the one before
    assert min(changes) > 0  # and not an exact copy


def test_two_seasons_show_the_day_and_the_week():
    x, info = G.two_seasons(60, 2048, seed=5, info=True)
    day_corr, week_corr = [], []
    for r, d in zip(x, info["steps_per_day"]):
        if d > 144:  # two weeks must fit with room to spare
            continue
        day_corr.append(_lag_corr(r, int(d), int(d)))
        week_corr.append(_lag_corr(r, int(7 * d), int(d)))
    assert np.median(day_corr) > 0.3
    assert np.median(week_corr) > np.median(day_corr)  # weekends differ from weekdays
    assert set(info["steps_per_day"]) <= set(G.STEPS_PER_DAY)


def _daily(x: np.ndarray, d: int) -> np.ndarray:
    """``(days, d)``: the whole days of ``x``."""
    return x[: len(x) // d * d].reshape(-1, d)


def test_weather_demand_swings_with_a_persistent_temperature_and_heats_afternoons():
    x, info = G.weather_demand(90, 2048, seed=3, info=True)
    base = G.two_seasons(90, 2048, seed=info["base_seed"])
    temperature = info["temperature"]
    # the temperature persists from day to day (AR(1), coefficient 0.5..0.9)
    lag1 = [np.corrcoef(t[1:], t[:-1])[0, 1] for t in temperature]
    assert 0.45 < np.median(lag1) < 0.9
    swing_corr, heat_checked = [], 0
    for i, kind in enumerate(info["kind"]):
        d = int(info["steps_per_day"][i])
        if kind == "swing":  # the day's swing around the mean grows with that day's warmth
            mean = base[i].mean()
            ratio = np.log(
                _daily(x[i] - mean, d).std(axis=1) / _daily(base[i] - mean, d).std(axis=1)
            )
            swing_corr.append(np.corrcoef(ratio, temperature[i, : len(ratio)])[0, 1])
        elif kind == "heat":  # extra load only, most of it at the peak's hour of warm days
            extra = _daily(x[i] - base[i], d)
            assert (extra >= -1e-9).all()
            warm = temperature[i, : len(extra)] > 1.0
            if warm.sum() < 3:
                continue
            peak_hour = int(info["peak"][i] * d) % d
            far_hour = (peak_hour + d // 2) % d
            assert extra[warm, peak_hour].mean() > 5 * extra[warm, far_hour].mean() + 1e-9
            heat_checked += 1
    assert len(swing_corr) >= 20 and np.median(swing_corr) > 0.9
    assert heat_checked >= 15
    assert set(info["kind"]) == set(G.WEATHER_KINDS)
    assert G.weather_demand(0, 64).shape == (0, 64)


def _unit(v: np.ndarray) -> np.ndarray:
    v = v - v.mean()
    return v / max(float(np.linalg.norm(v)), 1e-12)


def test_changing_weeks_change_their_daily_shape_and_have_holidays():
    x, info = G.changing_weeks(150, 4096, seed=4, info=True)
    mix, weekday, holiday = info["mix"], info["weekday"], info["holiday"]
    near, far = [], []
    sunday_closer = []
    for i in range(len(x)):
        d = int(info["steps_per_day"][i])
        days = _daily(x[i], d)
        n = len(days)
        working = (weekday[i, :n] < 5) & ~holiday[i, :n]
        # the weekday shape of each week (mean over its working days)
        weeks = [np.flatnonzero(working[k : k + 7]) + k for k in range(0, n - 6, 7)]
        shapes = [_unit(days[w].mean(axis=0)) for w in weeks if len(w) >= 3]
        w_mix = [mix[i, w].mean() for w in weeks if len(w) >= 3]
        if len(shapes) < 3:
            continue
        # a shape that moved far in its mix against the nearest week
        k = int(np.argmax(np.abs(np.array(w_mix) - w_mix[0])))
        if abs(w_mix[k] - w_mix[0]) > 0.5 and info["shift"][i] < 0.02:
            near.append(float(shapes[0] @ shapes[1]))
            far.append(float(shapes[0] @ shapes[k]))
        # a holiday looks like the week's Sunday more than like its working days
        for h in np.flatnonzero(holiday[i, :n]):
            k0 = h - h % 7
            sundays = [j for j in range(max(0, k0 - 7), min(n, k0 + 14)) if weekday[i, j] == 6]
            works = [j for j in range(max(0, h - 7), min(n, h + 8)) if working[j]]
            if sundays and works:
                to_sunday = np.abs(days[h].mean() - days[sundays].mean())
                to_work = np.abs(days[h].mean() - days[works].mean())
                sunday_closer.append(to_sunday < to_work)
    assert len(far) >= 8 and np.median(far) < np.median(near) - 0.2  # the daily shape changes
    assert np.median(near) > 0.8  # and from one week to the next it is nearly the same
    share = holiday[:, :40][weekday[:, :40] < 5].mean()
    assert 0.01 < share < 0.05  # about 1 weekday in 40
    assert len(sunday_closer) >= 30 and np.mean(sunday_closer) > 0.7
    assert not holiday[weekday >= 5].any()


def test_regimes_have_breaks_walks_and_counts():
    x, info = G.regimes(80, 512, seed=6, info=True)
    kinds = info["kind"]
    counts = x[kinds == "counts"]
    assert len(counts) and np.array_equal(counts, np.round(counts)) and counts.min() >= 0
    jumpy = []
    for r in x[kinds == "shifts"]:
        d = np.abs(np.diff(r))
        jumpy.append(d.max() / np.median(d))
    assert np.median(jumpy) > 5
    walks = x[kinds == "walk"]
    first, last = walks[:, :64].std(axis=1), walks.std(axis=1)
    assert np.median(last / first) > 1.5  # a walk wanders further the longer it runs


def test_corpus_mixes_every_source_equally_by_default():
    assert len(SOURCES) == 10 and len(set(SOURCES.values())) == 1
    x = corpus(100, 128, seed=0)
    assert x.shape == (100, 128) and np.isfinite(x).all()
    only = corpus(20, 128, seed=0, shares={"floored": 1})
    assert (only >= 0).all() and (only == 0).mean() > 0.05


def test_train_takes_a_context_of_512_on_the_new_corpus(tmp_path):
    from nexttoken.cli import main
    from nexttoken.lm import load

    out = tmp_path / "long"
    code = main(
        [
            "train",
            "--data",
            "synthetic",
            "--context",
            "512",
            "--series-length",
            "600",
            "--n-series",
            "20",
            "--n-layer",
            "1",
            "--n-embd",
            "16",
            "--n-head",
            "2",
            "--bins",
            "32",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--eval-batches",
            "1",
            "--no-progress",
            "--out",
            str(out),
        ]  # fmt: skip
    )
    assert code == 0
    lm = load(out)
    assert lm.model.config.context_length == 512
    config = json.loads((out / "config.json").read_text())
    assert "floored=1" in config["data"]["settings"]["sources"]  # the equal mix by default


def test_the_shapes_suite_and_its_solar_like_series():
    from nexttoken.evaluate import shape_tasks, solar_like

    ctx, truth = solar_like(8, per_day=48, days=10)
    assert ctx.shape == (8, 480) and truth.shape == (8, 48)
    nights = (ctx == 0).mean()
    assert 0.3 < nights < 0.7 and (ctx >= 0).all()
    # seasonal naive repeats yesterday: close, not exact (the weather changes the height)
    err = ((truth - ctx[:, -48:]) ** 2).mean() / ctx.var()
    assert 0 < err < 0.2
    tasks = shape_tasks(n_series=4)
    assert len(tasks) == 6 and all(t.suite == "shapes" for t in tasks)
    assert all(t.targets.shape == (4, 64) for t in tasks[1:])
