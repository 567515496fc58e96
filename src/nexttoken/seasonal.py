"""Generators for seasons of any shape and length, and the breaks real series have.

Where :mod:`nexttoken.synthetic` draws smooth, nearly sinusoidal seasons, these draw what real
series show and a model must learn to repeat: a daily load curve with a sharp morning ramp,
zero output every night, a spike at the same hour each day, a weekday pattern on top of a
daily one, a season that drifts as it is carried on, a level that jumps. Each generator takes
``(n, length, seed)``, is vectorised over rows, and returns float64 ``(n, length)``; the same
seed gives the same array. With ``info=True`` it returns ``(array, info)``, ``info`` a dict of
what each row was given (``period``, ``phase``, ``kind``...), for tests and plots.

- :func:`sharp_seasons`: one season of a calendar period (2..365 steps) whose shape is a
  random Fourier series with many harmonics, a periodic Gaussian process with a short length
  scale, a piecewise-linear wave or a pulse; with a level, a trend and noise.
- :func:`spiky_seasons`: spikes and dips at the same phase of every period (most periods,
  not all), on a season, plus rare spikes anywhere.
- :func:`floored_seasons`: a season clipped at a random quantile, so that its low part is a
  flat zero (night-time solar output, closed hours), and intermittent demand (counts that are
  mostly zero).
- :func:`seasonal_walks`: seasonal integration, ``y[t] = y[t - m] + drift + e[t]``: last
  season's shape carried on and slowly changed, as in a seasonal ARIMA with a seasonal
  difference.
- :func:`two_seasons`: a day within a week: a daily shape at 24, 48, 96, 144 or 288 steps a
  day, scaled and reshaped on the weekend days.
- :func:`weather_demand`: a day within a week whose daily swing follows a temperature that
  persists from day to day, and extra load in the afternoons of hot days (the weather-driven
  electricity demand that repeating yesterday forecasts well).
- :func:`changing_weeks`: a day within a week that changes with the time of year: the daily
  shape moves between two shapes, its peaks move with daylight, weekday factors wander and
  some weekdays are holidays (what a profile read from many weeks smears).
- :func:`regimes`: level shifts, Markov switches between two regimes of mean and volatility,
  random walks with drift, and count series (Poisson draws of a seasonal intensity).

The design follows what synthetic-only forecasters found useful: periodic kernels with short
length scales, period-aligned spikes, clipping, steps and regime switches (TempoPFN,
Mamba4Cast, CauKer), mixed in equal shares rather than picked one by one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .synthetic import CALENDAR_PERIODS

__all__ = [
    "SHAPES",
    "season_shapes",
    "sharp_seasons",
    "spiky_seasons",
    "floored_seasons",
    "seasonal_walks",
    "two_seasons",
    "weather_demand",
    "changing_weeks",
    "regimes",
    "STEPS_PER_DAY",
]

Array = np.ndarray

#: Shapes of one period: many harmonics, a periodic GP with a short length scale, straight
#: pieces, a pulse (on for part of the period).
SHAPES = ("fourier", "periodic-gp", "piecewise", "pulse")
#: Steps a day of sub-daily data: hourly, half-hourly, 15-minute, 10-minute, 5-minute.
STEPS_PER_DAY = (24, 48, 96, 144, 288)


def _check(n: int, length: int) -> None:
    if n < 0 or length < 4:
        raise ValueError(f"need n >= 0 and length >= 4 (got n={n}, length={length})")


def _periods(rng: np.random.Generator, n: int, length: int, repeats: float = 2.0) -> Array:
    """A calendar period per row that fits ``repeats`` times into ``length`` (long ones too)."""
    usable = [p for p in CALENDAR_PERIODS if repeats * p <= length] or [max(2, length // 2)]
    return rng.choice(np.array(usable), size=n)


def season_shapes(
    rng: np.random.Generator, periods: Array, kinds: Array | None = None
) -> tuple[Array, Array]:
    """One period of a season per row: ``(n, max(periods))``, zero mean and unit std over each
    row's own period (entries past it are unused), and the kind of each row (index in
    :data:`SHAPES`).

    - fourier: ``K`` harmonics (3 up to half the period), amplitudes falling as ``k^-a`` with
      ``a`` in 0.3..1.5, random phases: many harmonics carry real weight.
    - periodic-gp: a draw of a Gaussian process with the periodic kernel
      ``exp(-2 sin^2(pi d / p) / l^2)``, ``l`` in 0.1..0.5 (sharp; at ``l = 1`` almost all the
      variance is in two harmonics), drawn exactly through the kernel's spectrum.
    - piecewise: straight lines between 3..10 random knots.
    - pulse: on (1) for 10-60% of the period with ramps of a few steps, off (0) otherwise.
    """
    periods = np.asarray(periods, dtype=np.int64)
    n = len(periods)
    top = int(periods.max()) if n else 1
    if kinds is None:
        kinds = rng.integers(len(SHAPES), size=n)
    out = np.zeros((n, top))
    for i in range(n):
        p = int(periods[i])
        j = np.arange(p)
        kind = SHAPES[int(kinds[i])]
        if kind in ("fourier", "periodic-gp"):
            k = np.arange(1, p // 2 + 1)
            if kind == "fourier":
                top_k = int(rng.integers(3, max(4, p // 2 + 1)))
                amp = k.astype(float) ** -rng.uniform(0.3, 1.5) * (k <= top_k)
            else:
                ell = rng.uniform(0.1, 0.5)
                row = np.exp(-2 * np.sin(math.pi * j / p) ** 2 / ell**2)  # circulant covariance
                spectrum = np.maximum(np.fft.rfft(row).real, 0.0)
                amp = np.sqrt(spectrum[1 : len(k) + 1])
            a = amp * rng.standard_normal(len(k))
            b = amp * rng.standard_normal(len(k))
            angle = 2 * math.pi * np.outer(j, k) / p
            shape = np.cos(angle) @ a + np.sin(angle) @ b
        elif kind == "piecewise":
            m = int(rng.integers(3, 11))
            knots = np.sort(rng.uniform(0, p, size=m))
            values = rng.standard_normal(m)
            shape = np.interp(j, knots, values, period=p)
        else:  # pulse
            width = max(1, int(round(rng.uniform(0.1, 0.6) * p)))
            start = int(rng.integers(p))
            on = ((j - start) % p < width).astype(float)
            ramp = int(rng.integers(0, max(1, width // 3) + 1))
            if ramp:
                kernel = np.ones(ramp + 1) / (ramp + 1)
                on = np.convolve(np.concatenate([on[-ramp:], on, on[:ramp]]), kernel, "same")
                on = on[ramp : ramp + p]
            shape = on
        shape = shape - shape.mean()
        if shape.std() < 1e-9:  # a degenerate draw (a pulse on the whole period): a cosine
            shape = np.cos(2 * math.pi * j / p)
        out[i, :p] = shape / shape.std()
    return out, np.asarray(kinds)


def _tile(shapes: Array, periods: Array, length: int, phase: Array) -> Array:
    """Each row's period-long shape repeated over ``length`` steps from ``phase``."""
    t = np.arange(length)[None, :] + phase[:, None]
    return shapes[np.arange(len(periods))[:, None], t % periods[:, None]]


def _level_trend(rng: np.random.Generator, n: int, length: int, scale: Array) -> Array:
    t = np.arange(length)[None, :] / length
    level = rng.normal(0.0, 3.0, size=(n, 1)) * scale * (rng.random((n, 1)) < 0.7)
    slope = rng.normal(0.0, 2.0, size=(n, 1)) * scale * (rng.random((n, 1)) < 0.5)
    return level + slope * t


def _ar_noise(rng: np.random.Generator, n: int, length: int, phi: Array) -> Array:
    """AR(1) noise with unit marginal std and per-row coefficient ``phi`` ``(n, 1)``."""
    e = rng.standard_normal((n, length))
    out = np.empty((n, length))
    out[:, 0] = e[:, 0]
    c = np.sqrt(1 - phi[:, 0] ** 2)
    for s in range(1, length):
        out[:, s] = phi[:, 0] * out[:, s - 1] + c * e[:, s]
    return out


def _steps_per_day(rng: np.random.Generator, n: int, length: int) -> Array:
    """Steps a day per row (:data:`STEPS_PER_DAY`, those whose week fits in ``length``)."""
    usable = [d for d in STEPS_PER_DAY if 7 * d <= length] or [max(2, length // 14)]
    return rng.choice(np.array(usable), size=n)


def _weekday_factors(rng: np.random.Generator, n: int) -> Array:
    """``(n, 7)`` factors of the days of a week: 1 +- 15% on weekdays, 0.2..1.2 on the weekend."""
    factors = 1 + 0.15 * rng.standard_normal((n, 7))
    factors[:, 5:] = rng.uniform(0.2, 1.2, size=(n, 2))
    return factors


def _load(rng: np.random.Generator, x: Array) -> Array:
    """A day-within-week load ``x`` ``(n, length)`` at a random size, with AR(1) noise, a level
    and a trend."""
    n, length = x.shape
    size = rng.uniform(0.3, 3.0, size=(n, 1))
    noise = rng.choice([0.02, 0.05, 0.15], size=(n, 1)) * _ar_noise(
        rng, n, length, rng.uniform(0.0, 0.9, (n, 1))
    )
    return _level_trend(rng, n, length, size) + size * (x + noise)


def sharp_seasons(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """A season of any shape (:func:`season_shapes`) and calendar period, two to many repeats,
    with a random level and trend, the season's size varying slowly for a third of the rows,
    and AR(1) noise of 0-30% of the season's size."""
    _check(n, length)
    rng = np.random.default_rng([seed, 711])
    periods = _periods(rng, n, length)
    shapes, kinds = season_shapes(rng, periods)
    season = _tile(shapes, periods, length, rng.integers(0, 1 << 20, size=n))
    size = rng.uniform(0.3, 3.0, size=(n, 1))
    t = np.arange(length)[None, :] / length
    wobble = 1 + (rng.random((n, 1)) < 0.33) * rng.uniform(0.1, 0.5, (n, 1)) * np.sin(
        2 * math.pi * (rng.uniform(0.3, 1.5, (n, 1)) * t + rng.uniform(0, 1, (n, 1)))
    )
    noise = rng.choice([0.0, 0.05, 0.15, 0.3], size=(n, 1)) * _ar_noise(
        rng, n, length, rng.uniform(0.0, 0.8, (n, 1))
    )
    x = _level_trend(rng, n, length, size) + size * (season * wobble + noise)
    return (x, {"period": periods, "shape": kinds}) if info else x


def spiky_seasons(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """Spikes (or dips) at the same phase of each period, in 60-100% of the periods, 2-8 times
    the base's std, 1-3 steps wide; the base is a sharp season (2/3 of rows) or smooth noise.
    A few unaligned outliers are added to half of the rows."""
    _check(n, length)
    rng = np.random.default_rng([seed, 722])
    periods = _periods(rng, n, length, repeats=3.0)
    shapes, _ = season_shapes(rng, periods)
    base = _tile(shapes, periods, length, np.zeros(n, dtype=np.int64))
    smooth = _ar_noise(rng, n, length, np.full((n, 1), 0.9))
    base = np.where(rng.random((n, 1)) < 2 / 3, base + 0.2 * smooth, smooth)
    t = np.arange(length)[None, :]
    phase = rng.integers(0, 1 << 20, size=(n, 1)) % periods[:, None]
    width = rng.integers(1, 4, size=(n, 1))
    cycle = t // periods[:, None]
    hit_rate = rng.uniform(0.6, 1.0, size=(n, 1))
    period_hit = rng.random((n, int(length // periods.min()) + 2)) < hit_rate
    hits = period_hit[np.arange(n)[:, None], cycle]
    at = ((t - phase) % periods[:, None]) < width
    height = rng.uniform(2.0, 8.0, size=(n, 1)) * np.where(rng.random((n, 1)) < 0.75, 1.0, -1.0)
    spikes = at * hits * height * rng.uniform(0.7, 1.3, size=(n, length))
    outliers = (rng.random((n, length)) < 0.004) * (rng.random((n, 1)) < 0.5)
    spikes = spikes + outliers * rng.uniform(3.0, 6.0, size=(n, 1)) * rng.choice([-1, 1], (n, 1))
    size = rng.uniform(0.3, 3.0, size=(n, 1))
    x = _level_trend(rng, n, length, size) + size * (base + spikes)
    return (x, {"period": periods, "phase": phase[:, 0], "width": width[:, 0]}) if info else x


def floored_seasons(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """Series with a flat floor at zero for part of each period.

    Two thirds: a season (half of them a day-shaped hump, ``max(0, sin)`` raised to a power,
    as solar output) times a slowly varying size, minus its ``q``-quantile (``q`` in 0.1..0.6),
    clipped at zero. One third: intermittent demand, Poisson counts whose rate is a season
    times a low level (mostly zeros)."""
    _check(n, length)
    rng = np.random.default_rng([seed, 733])
    periods = _periods(rng, n, length)
    shapes, _ = season_shapes(rng, periods)
    phase = rng.integers(0, 1 << 20, size=n)
    season = _tile(shapes, periods, length, phase)
    t = np.arange(length)[None, :] + phase[:, None]
    day = np.sin(2 * math.pi * (t % periods[:, None]) / periods[:, None])
    hump = np.maximum(day, 0.0) ** rng.uniform(0.5, 2.0, size=(n, 1))
    hump = hump * (1 + 0.15 * rng.standard_normal((n, 1)))
    solar = rng.random((n, 1)) < 0.5
    shape = np.where(solar, hump, season)
    days = t // periods[:, None]
    days = days - days[:, :1]  # each row's periods counted from its first
    weather = 1 + 0.3 * _ar_noise(rng, n, int(days.max()) + 1, np.full((n, 1), 0.7))
    shape = shape * np.clip(weather[np.arange(n)[:, None], days], 0.1, None)
    jitter = 0.03 * rng.standard_normal((n, length)) * shape.std(axis=1, keepdims=True)
    shape = shape + np.where(solar & (shape <= 0), 0.0, jitter)  # nights stay exactly dark
    q = rng.uniform(0.1, 0.6, size=(n, 1))
    ranked = np.sort(shape, axis=1)
    floor = ranked[np.arange(n), (q[:, 0] * (length - 1)).astype(np.int64)][:, None]
    clipped = np.maximum(np.where(solar, shape, shape - floor), 0.0)
    size = rng.uniform(0.3, 30.0, size=(n, 1))
    rate = np.exp(0.8 * season) * rng.uniform(0.1, 1.0, size=(n, 1))
    counts = rng.poisson(rate).astype(np.float64)
    floored = rng.random((n, 1)) < 2 / 3
    x = np.where(floored, size * clipped, counts)
    kind = np.where(floored[:, 0], np.where(solar[:, 0], "solar", "clipped"), "counts")
    return (x, {"period": periods, "kind": kind}) if info else x


def seasonal_walks(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """Seasonal integration: ``y[t] = y[t - m] + drift + e[t]``, started from a sharp season.

    ``e`` is smooth within a period (a random mix of its first four harmonics and a constant)
    and 2-20% of the season's size, so each period is last period's shape slowly changed;
    ``drift`` moves the level."""
    _check(n, length)
    rng = np.random.default_rng([seed, 744])
    periods = _periods(rng, n, length)
    shapes, _ = season_shapes(rng, periods)
    reps = int(length // periods.min()) + 2
    harmonics = 4
    t = np.arange(length)[None, :]
    rows = np.arange(n)[:, None]
    cycle = t // periods[:, None]
    phase = 2 * math.pi * (t % periods[:, None]) / periods[:, None]  # (n, length)
    k = np.arange(1, harmonics + 1)[None, None, :]
    basis = np.concatenate(
        [np.ones((n, length, 1)), np.cos(k * phase[..., None]), np.sin(k * phase[..., None])],
        axis=2,
    )  # (n, length, 1 + 2 * harmonics)
    steps = rng.standard_normal((n, reps, basis.shape[2])) / np.sqrt(basis.shape[2])
    steps = steps * rng.uniform(0.02, 0.2, size=(n, 1, 1))
    steps[:, :, 0] += rng.normal(0, 0.05, size=(n, 1))  # drift: a level change each period
    walked = np.cumsum(steps, axis=1)[rows, cycle]  # (n, length, terms)
    x = shapes[rows, t % periods[:, None]] + np.einsum("nlk,nlk->nl", walked, basis)
    size = rng.uniform(0.3, 3.0, size=(n, 1))
    x = rng.normal(0, 3, (n, 1)) * size + size * x
    return (x, {"period": periods}) if info else x


def two_seasons(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """A day within a week: a daily shape of ``d`` steps (:data:`STEPS_PER_DAY`, those whose
    week fits in ``length``, else 24) times a weekday factor, with the two weekend days scaled
    by 0.2..1.2 and their shape partly replaced; plus a level, trend and noise."""
    _check(n, length)
    rng = np.random.default_rng([seed, 755])
    per_day = _steps_per_day(rng, n, length)
    day_shapes, _ = season_shapes(rng, per_day, kinds=rng.choice([0, 1, 3], size=n))
    alt_shapes, _ = season_shapes(rng, per_day)
    phase = rng.integers(0, 1 << 20, size=n)
    t = np.arange(length)[None, :] + phase[:, None]
    day = t // per_day[:, None]
    hour = t % per_day[:, None]
    rows = np.arange(n)[:, None]
    weekday = day % 7
    weekend = weekday >= 5
    factors = _weekday_factors(rng, n)
    mix = rng.uniform(0.0, 1.0, size=(n, 1))
    base = day_shapes[rows, hour]
    shape = np.where(weekend, (1 - mix) * base + mix * alt_shapes[rows, hour], base)
    offset = rng.uniform(1.0, 3.0, size=(n, 1))  # load above zero, so factors scale it
    x = (offset + shape) * factors[rows, weekday]
    x = _load(rng, x)
    return (x, {"steps_per_day": per_day, "weekend": factors[:, 5:]}) if info else x


#: The kinds of :func:`weather_demand`: the daily swing follows the temperature, hot days add
#: load in the afternoon, or both.
WEATHER_KINDS = ("swing", "heat", "both")


def weather_demand(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """Load that follows the weather: a day within a week (:func:`two_seasons`) and a daily
    temperature anomaly that persists from day to day (AR(1) over days, coefficient 0.5..0.9,
    unit innovations; linear between the days' middles). By kind (:data:`WEATHER_KINDS`, a
    third each): ``swing``, the day's swing around the series' mean scaled by
    ``exp(a T)``, ``a`` in 0.1..0.3; ``heat``, extra load ``b std(x) max(T, 0)^1.5`` in a
    bump of 8-15% of the day at a random hour (cooling on hot afternoons), ``b`` in 0.2..0.6;
    ``both``. ``info``: ``steps_per_day``, ``temperature`` ``(n, days)``, ``kind``, ``swing``
    (``a``, 0 where none), ``heat`` (``b``, 0 where none), ``peak`` (the bump's phase, 0..1 of
    the day) and ``base_seed`` (``two_seasons(n, length, base_seed)`` is the series without
    the weather)."""
    _check(n, length)
    rng = np.random.default_rng([seed, 777])
    base_seed = int(rng.integers(1 << 31))
    x, base_info = two_seasons(n, length, seed=base_seed, info=True)
    per_day = base_info["steps_per_day"]
    days = length // int(per_day.min()) + 2 if n else 0
    phi = rng.uniform(0.5, 0.9, size=n)
    temperature = np.zeros((n, days))
    if days:
        temperature[:, 0] = rng.standard_normal(n) / np.sqrt(1 - phi**2)  # stationary start
    for k in range(1, days):
        temperature[:, k] = phi * temperature[:, k - 1] + rng.standard_normal(n)
    kind = rng.integers(len(WEATHER_KINDS), size=n)
    swing = np.where(kind != 1, rng.uniform(0.1, 0.3, size=n), 0.0)
    heat = np.where(kind != 0, rng.uniform(0.2, 0.6, size=n), 0.0)
    peak = rng.uniform(0.0, 1.0, size=n)
    width = rng.uniform(0.08, 0.15, size=n)
    t = np.arange(length)[None, :]
    day_at = (t + 0.5) / per_day[:, None] - 0.5  # days since the first day's middle
    lo = np.clip(np.floor(day_at).astype(np.int64), 0, max(days - 2, 0))
    frac = np.clip(day_at - lo, 0.0, 1.0)
    rows = np.arange(n)[:, None]
    after = temperature[rows, np.minimum(lo + 1, days - 1)]
    temp = (1 - frac) * temperature[rows, lo] + frac * after
    mean = x.mean(axis=1, keepdims=True)
    sd = x.std(axis=1, keepdims=True)
    hour = (t % per_day[:, None]) / per_day[:, None]
    dist = (hour - peak[:, None] + 0.5) % 1.0 - 0.5  # periodic distance to the peak, in days
    bump = np.exp(-0.5 * (dist / width[:, None]) ** 2)
    out = mean + (x - mean) * np.exp(swing[:, None] * temp)
    out = out + heat[:, None] * sd * np.maximum(temp, 0.0) ** 1.5 * bump
    names = np.array(WEATHER_KINDS)[kind]
    details = {
        "steps_per_day": per_day,
        "temperature": temperature,
        "kind": names,
        "swing": swing,
        "heat": heat,
        "peak": peak,
        "base_seed": base_seed,
    }
    return (out, details) if info else out


def changing_weeks(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """A day within a week that changes as the year turns, as electricity demand does: the
    daily shape moves between two shapes (``0.5 - 0.5 cos`` of a cycle of ``cycle_days``, 56 to
    365 days, from a random point of it), its peaks move earlier and later by up to ``shift``
    of a day (0..5%, with daylight), the day's mean follows the same cycle (by up to
    ``level``, 0..30%), each weekday's factor wanders (a random walk over weeks, 0.01..0.05 a
    week in log), and a weekday is a holiday (the Sunday's shape and factor) with probability
    1/40. Steps a day as :func:`two_seasons`; with AR(1) noise, a level and a trend.

    ``info``: ``steps_per_day``, ``cycle_days``, ``shift``, ``level``, and per day from the
    first step ``(n, days)``: ``weekday`` (5 and 6 are the weekend), ``holiday`` (True on a
    holiday) and ``mix`` (the second shape's weight)."""
    _check(n, length)
    rng = np.random.default_rng([seed, 788])
    per_day = _steps_per_day(rng, n, length)
    first, _ = season_shapes(rng, per_day, kinds=rng.choice([0, 1, 3], size=n))
    second, _ = season_shapes(rng, per_day, kinds=rng.choice([0, 1, 3], size=n))
    weekend, _ = season_shapes(rng, per_day)
    days = -(-length // int(per_day.min())) + 8 if n else 0
    cycle = rng.uniform(56.0, 365.0, size=(n, 1))
    start = rng.uniform(0.0, 1.0, size=(n, 1))
    angle = 2 * math.pi * (np.arange(days)[None, :] / cycle + start)  # (n, days)
    mix = 0.5 - 0.5 * np.cos(angle)
    shift = rng.uniform(0.0, 0.05, size=(n, 1))
    level = rng.uniform(0.0, 0.3, size=(n, 1))
    start_day = rng.integers(0, 7, size=(n, 1))
    weekday = (np.arange(days)[None, :] + start_day) % 7
    holiday = (rng.random((n, days)) < 1 / 40) & (weekday < 5)
    factors = _weekday_factors(rng, n)
    weeks = days // 7 + 2
    wander = rng.uniform(0.01, 0.05, size=(n, 1, 1)) * rng.standard_normal((n, weeks, 7))
    log_factor = np.log(np.maximum(factors, 0.05))[:, None, :] + np.cumsum(wander, axis=1)
    rows = np.arange(n)[:, None]
    day_factor = np.exp(log_factor[rows, np.arange(days)[None, :] // 7, weekday])
    day_factor = np.where(
        holiday, np.exp(log_factor[rows, np.arange(days)[None, :] // 7, 6]), day_factor
    )
    t = np.arange(length)[None, :]
    d = per_day[:, None]
    day = t // d
    moved = np.rint(shift * np.sin(angle) * d).astype(np.int64)[rows, day]
    hour = (t % d + moved) % d
    w = mix[rows, day]
    shape = (1 - w) * first[rows, hour] + w * second[rows, hour]
    sunday = (weekday[rows, day] >= 5) | holiday[rows, day]
    blend = rng.uniform(0.0, 1.0, size=(n, 1))
    shape = np.where(sunday, (1 - blend) * shape + blend * weekend[rows, hour], shape)
    offset = rng.uniform(1.0, 3.0, size=(n, 1))  # load above zero, so factors scale it
    x = (offset * (1 + level * np.sin(angle))[rows, day] + shape) * day_factor[rows, day]
    x = _load(rng, x)
    details = {
        "steps_per_day": per_day,
        "cycle_days": cycle[:, 0],
        "shift": shift[:, 0],
        "level": level[:, 0],
        "weekday": weekday,
        "holiday": holiday,
        "mix": mix,
    }
    return (x, details) if info else x


def regimes(n: int, length: int, seed: int = 0, info: bool = False) -> Any:
    """Breaks and walks, a quarter each: level shifts (a step function with 1-6 jumps, plus
    noise, on a season half the time); Markov switching between two regimes of mean and
    volatility; random walks with drift; count series (Poisson draws of a seasonal rate)."""
    _check(n, length)
    rng = np.random.default_rng([seed, 766])
    kind = rng.integers(4, size=(n, 1))
    t = np.arange(length)[None, :]
    # level shifts
    jumps = np.zeros((n, length))
    count = rng.integers(1, 7, size=n)
    for i in range(n):
        at = rng.integers(1, length, size=count[i])
        jumps[i, at] = rng.normal(0, 3, size=count[i])
    periods = _periods(rng, n, length)
    shapes, _ = season_shapes(rng, periods)
    season = _tile(shapes, periods, length, np.zeros(n, dtype=np.int64))
    shifts = np.cumsum(jumps, axis=1) + 0.3 * rng.standard_normal((n, length))
    shifts = shifts + (rng.random((n, 1)) < 0.5) * season
    # Markov switching: stay with probability 0.95-0.995
    stay = rng.uniform(0.95, 0.995, size=n)
    flips = rng.random((n, length)) > stay[:, None]
    state = np.cumsum(flips, axis=1) % 2
    mean = rng.normal(0, 2, size=(n, 2))
    vol = rng.uniform(0.1, 1.5, size=(n, 2))
    rows = np.arange(n)[:, None]
    switching = mean[rows, state] + vol[rows, state] * _ar_noise(
        rng, n, length, rng.uniform(0.0, 0.9, (n, 1))
    )
    # random walks with drift
    walk = np.cumsum(rng.standard_normal((n, length)) + rng.normal(0, 0.2, (n, 1)), axis=1)
    # counts
    rate = np.exp(0.7 * season + np.log(rng.uniform(0.5, 30.0, size=(n, 1))))
    counts = rng.poisson(rate).astype(np.float64)
    out = np.select([kind == 0, kind == 1, kind == 2], [shifts, switching, walk], counts)
    size = rng.uniform(0.3, 3.0, size=(n, 1))
    x = np.where(kind == 3, out, size * out + rng.normal(0, 3, (n, 1)) * size * (t >= 0))
    names = np.array(["shifts", "switching", "walk", "counts"])[kind[:, 0]]
    return (x, {"kind": names}) if info else x
