"""A synthetic corpus with the structure of real series: levels, trends, seasons, noise.

Seeded, vectorised sources, mixed by :func:`corpus` (with six more from
:mod:`nexttoken.seasonal`: seasons of any shape and length, spikes, zero floors, seasonal
walks, day-within-week seasons, breaks and counts):

- :func:`kernel_synth`: KernelSynth (Ansari et al. 2024, "Chronos", sec. 4.2). Each series is
  a draw from a zero-mean Gaussian process whose kernel is a random sum or product of 1..5
  kernels from a bank: constant, linear (trends), RBF and rational quadratic (smooth
  wandering), periodic with the periods of real calendars, and white noise.
- :func:`structured_oscillators`: the oscillator families of :mod:`nexttoken.signals` given a
  random level, a linear or exponential trend and an additive or multiplicative calendar
  season, plus noise.
- :func:`tsmixup`: TSMixup (same paper, sec. 4.1): convex combinations of 1..3 series, each
  divided by its mean absolute value first, with Dirichlet weights.

Every function takes ``(n, length, seed)`` and returns float64 ``(n, length)``; the same seed
gives the same array. Nothing here reads a real series: models trained on this corpus score
zero-shot on every real data set.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .signals import FAMILIES, generate

__all__ = [
    "CALENDAR_PERIODS",
    "SOURCES",
    "kernel_synth",
    "structured_oscillators",
    "tsmixup",
    "corpus",
]

Array = np.ndarray

#: Season lengths of real calendars: quarters, days of a week, months, hours of a day,
#: half-hours, weeks of a year, quarter-hours, hours of a week, days of a year, and more.
CALENDAR_PERIODS: tuple[int, ...] = (
    2, 3, 4, 5, 6, 7, 10, 12, 14, 24, 26, 30, 48, 52, 60, 96, 144, 168, 288, 336, 365,
)  # fmt: skip

# --- KernelSynth ----------------------------------------------------------------------------

# Each kernel maps the time points' differences d = t - t' (L, L), t in [0, 1], to covariances
# (L, L). Parameters are drawn per series, in units of the whole length.
_Kernel = Callable[[np.random.Generator, Array, Array, int], Array]


def _k_constant(rng: np.random.Generator, t: Array, d: Array, length: int) -> Array:
    return np.full_like(d, rng.uniform(0.1, 1.0))


def _k_linear(rng: np.random.Generator, t: Array, d: Array, length: int) -> Array:
    # sigma^2 + (t - c)(t' - c): a random-slope trend through a random point.
    c = rng.uniform(-0.5, 1.5)
    return rng.uniform(0.0, 1.0) + np.outer(t - c, t - c)


def _k_rbf(rng: np.random.Generator, t: Array, d: Array, length: int) -> Array:
    ell = rng.choice([0.02, 0.05, 0.1, 0.3, 1.0])
    return np.exp(-(d**2) / (2 * ell**2))


def _k_rational_quadratic(rng: np.random.Generator, t: Array, d: Array, length: int) -> Array:
    ell = rng.choice([0.02, 0.05, 0.1, 0.3, 1.0])
    alpha = rng.choice([0.1, 1.0, 10.0])
    return (1 + d**2 / (2 * alpha * ell**2)) ** -alpha


def _k_periodic(rng: np.random.Generator, t: Array, d: Array, length: int) -> Array:
    # Periods from real calendars that fit at least twice into the series.
    usable = [p for p in CALENDAR_PERIODS if 2 * p <= length] or [max(2, length // 2)]
    period = rng.choice(usable) / length
    ell = rng.choice([0.5, 1.0, 2.0])
    return np.exp(-2 * np.sin(math.pi * np.abs(d) / period) ** 2 / ell**2)


def _k_white(rng: np.random.Generator, t: Array, d: Array, length: int) -> Array:
    return rng.choice([0.01, 0.05, 0.1, 0.3]) * np.eye(length)


_BANK: tuple[_Kernel, ...] = (
    _k_constant,
    _k_linear,
    _k_rbf,
    _k_rational_quadratic,
    _k_periodic,
    _k_periodic,  # seasons twice: they are what real series have most
    _k_white,
)


def kernel_synth(n: int, length: int, seed: int = 0, max_kernels: int = 5) -> Array:
    """``n`` Gaussian-process draws of ``length`` steps from random kernel compositions.

    Each series draws ``j`` in ``1..max_kernels`` kernels from the bank and joins them one by
    one with ``+`` or ``*`` (equally likely), then samples ``L z`` with ``L`` the Cholesky
    factor of the covariance (plus a small jitter) and ``z`` standard normal. About 5 ms a
    series of 512 steps on one CPU core: the cost is the ``O(length^3)`` factorisation.

    Returns
    -------
    float64 array ``(n, length)``.
    """
    if n < 0 or length < 2:
        raise ValueError(f"need n >= 0 and length >= 2 (got n={n}, length={length})")
    if max_kernels < 1:
        raise ValueError(f"max_kernels must be >= 1 (got {max_kernels})")
    rng = np.random.default_rng([seed, 101])
    out = np.empty((n, length))
    t = np.linspace(0.0, 1.0, length)
    d = t[:, None] - t[None, :]
    eye = np.eye(length)
    for i in range(n):
        cov = _BANK[rng.integers(len(_BANK))](rng, t, d, length)
        for _ in range(int(rng.integers(1, max_kernels + 1)) - 1):
            k = _BANK[rng.integers(len(_BANK))](rng, t, d, length)
            cov = cov * k if rng.random() < 0.5 else cov + k
        jitter = 1e-6 * max(1.0, float(np.trace(cov)) / length)
        try:
            chol = np.linalg.cholesky(cov + jitter * eye)
        except np.linalg.LinAlgError:  # numerically indefinite: add more jitter
            chol = np.linalg.cholesky(cov + 1e-3 * max(1.0, float(np.trace(cov)) / length) * eye)
        out[i] = chol @ rng.standard_normal(length)
    return out


# --- oscillators with a level, a trend and a season --------------------------------------------


def structured_oscillators(n: int, length: int, seed: int = 0) -> Array:
    """Oscillators (every family) with a random level, trend, calendar season and noise.

    ``y = level + trend(t) + x(t) * (1 + m * s(t)) + a * s(t) + noise``: ``x`` an oscillator,
    ``s`` a calendar season (a smooth sine or a repeating random profile), applied
    multiplicatively to the oscillation (``m``) or additively (``a``); the trend is linear or
    exponential. A quarter of the rows are instead shaped like sales or passenger counts: a
    positive level and trend multiplied by the season, ``(level + trend(t)) * (1 + m * s(t))``,
    so the season grows with the trend, plus a smaller oscillation. Levels reach several times
    the oscillation's size, so scaling must cope with them.
    """
    if n < 0 or length < 2:
        raise ValueError(f"need n >= 0 and length >= 2 (got n={n}, length={length})")
    rng = np.random.default_rng([seed, 202])
    fams = rng.integers(len(FAMILIES), size=n)
    x = np.empty((n, length))
    for i, family in enumerate(FAMILIES):
        rows = np.flatnonzero(fams == i)
        if rows.size:
            x[rows] = generate(family, rows.size, length, seed=seed * 31 + 7)
    x /= np.maximum(x.std(axis=1, keepdims=True), 1e-9)
    t = np.arange(length)[None, :] / length
    size = rng.uniform(0.2, 3.0, size=(n, 1))  # oscillation's std
    # 0: additive season, 1: season times the oscillation, 2: season times level and trend
    mode = rng.choice(3, p=[0.45, 0.3, 0.25], size=(n, 1))
    whole = mode == 2
    level = rng.normal(0.0, 3.0, size=(n, 1)) * np.where(rng.random((n, 1)) < 0.8, 1.0, 0.0)
    level = np.where(whole, np.abs(level) * size + 3 * size, level)
    slope = rng.normal(0.0, 4.0, size=(n, 1)) * size * (rng.random((n, 1)) < 0.6)
    exp_trend = rng.random((n, 1)) < np.where(whole, 0.6, 0.25)
    growth = rng.uniform(-1.5, 1.5, size=(n, 1))
    slope = np.where(whole, np.abs(slope), slope)
    trend = np.where(exp_trend, np.abs(level) * (np.exp(growth * t) - 1), slope * t)
    season = _calendar_season(rng, n, length)
    has_season = (rng.random((n, 1)) < 0.6) | whole
    amp = rng.uniform(0.2, 2.0, size=(n, 1)) * has_season
    depth = rng.uniform(0.1, 0.6, size=(n, 1)) * has_season
    body = np.where(mode == 1, size * x * (1 + depth * season), size * x + amp * season)
    sales = (level + trend) * (1 + 0.5 * depth * season) + 0.3 * size * x
    noise = rng.choice([0.0, 0.05, 0.2], size=(n, 1)) * size * rng.standard_normal((n, length))
    return np.where(whole, sales, level + trend + body) + noise


def _calendar_season(rng: np.random.Generator, n: int, length: int) -> Array:
    """A unit-size season of a calendar period per row: a sine or a random repeating profile."""
    usable = np.array([p for p in CALENDAR_PERIODS if 2 * p <= length] or [max(2, length // 2)])
    period = rng.choice(usable, size=n)
    phase = rng.integers(0, 1 << 30, size=n)
    t = np.arange(length)[None, :] + phase[:, None]
    sine = np.sin(2 * math.pi * t / period[:, None])
    # A random profile over one period, repeated (weekday effects, daily load shapes).
    profile = rng.standard_normal((n, int(usable.max())))
    profile -= profile.mean(axis=1, keepdims=True)
    reps = profile[np.arange(n)[:, None], t % period[:, None]]
    reps /= np.maximum(reps.std(axis=1, keepdims=True), 1e-9)
    return np.where(rng.random((n, 1)) < 0.5, sine, reps)


# --- TSMixup -----------------------------------------------------------------------------------


def tsmixup(pool: Array, n: int, seed: int = 0, max_parts: int = 3, alpha: float = 1.5) -> Array:
    """``n`` convex mixes of 1..``max_parts`` rows of ``pool`` ``(m, length)``.

    Each row is divided by its mean absolute value first (so no part drowns the others), then
    mixed with weights from a symmetric Dirichlet(``alpha``).
    """
    pool = np.asarray(pool, dtype=np.float64)
    if pool.ndim != 2 or pool.shape[0] == 0:
        raise ValueError(f"pool must be a non-empty 2-D array (series, time); got {pool.shape}")
    rng = np.random.default_rng([seed, 303])
    scaled = pool / np.maximum(np.abs(pool).mean(axis=1, keepdims=True), 1e-9)
    parts = rng.integers(1, max_parts + 1, size=n)
    weights = rng.dirichlet(np.full(max_parts, alpha), size=n)
    weights = np.where(np.arange(max_parts)[None] < parts[:, None], weights, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    picks = rng.integers(pool.shape[0], size=(n, max_parts))
    return np.einsum("nk,nkl->nl", weights, scaled[picks])


# --- the corpus --------------------------------------------------------------------------------

#: The parts of :func:`corpus`, with their default shares: equal, as "mix, don't pick"
#: advises. The last six are :mod:`nexttoken.seasonal`'s seasons of any shape and length.
#: (``signals-small`` was trained before those existed: its recipe in ``configs/`` names its
#: own shares of the first four.)
SOURCES: dict[str, float] = {
    "kernelsynth": 0.1,
    "structured": 0.1,
    "oscillators": 0.1,
    "mixup": 0.1,
    "sharp": 0.1,
    "spiky": 0.1,
    "floored": 0.1,
    "walks": 0.1,
    "weekly": 0.1,
    "regimes": 0.1,
}


def _seasonal_sources() -> dict[str, Callable[[int, int, int], Array]]:
    from . import seasonal

    return {
        "sharp": seasonal.sharp_seasons,
        "spiky": seasonal.spiky_seasons,
        "floored": seasonal.floored_seasons,
        "walks": seasonal.seasonal_walks,
        "weekly": seasonal.two_seasons,
        "regimes": seasonal.regimes,
    }


def corpus(
    n: int,
    length: int,
    seed: int = 0,
    shares: dict[str, float] | None = None,
    noise: float = 0.0,
) -> Array:
    """``n`` training series of ``length`` steps from every source, in ``shares`` (default :data:`SOURCES`).

    ``oscillators`` are the plain zero-mean families; ``sharp``, ``spiky``, ``floored``,
    ``walks``, ``weekly`` and ``regimes`` are :mod:`nexttoken.seasonal`'s generators; ``mixup``
    mixes rows drawn from all the other parts. Rows are shuffled (seeded), so any prefix is a fair sample of the corpus.
    """
    shares = dict(SOURCES if shares is None else shares)
    unknown = sorted(set(shares) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown corpus sources {unknown}; choose from {', '.join(SOURCES)}")
    if any(v < 0 for v in shares.values()) or sum(shares.values()) <= 0:
        raise ValueError(f"corpus shares must be >= 0 and not all zero (got {shares})")
    total = sum(shares.values())
    counts = {k: int(round(n * v / total)) for k, v in shares.items()}
    counts[max(counts, key=lambda k: shares[k])] += n - sum(counts.values())
    parts = []
    if counts.get("kernelsynth", 0):
        parts.append(kernel_synth(counts["kernelsynth"], length, seed))
    if counts.get("structured", 0):
        parts.append(structured_oscillators(counts["structured"], length, seed))
    if counts.get("oscillators", 0):
        k = counts["oscillators"]
        fams = np.random.default_rng([seed, 404]).integers(len(FAMILIES), size=k)
        osc = np.empty((k, length))
        for i, family in enumerate(FAMILIES):
            rows = np.flatnonzero(fams == i)
            if rows.size:
                osc[rows] = generate(family, rows.size, length, seed=seed * 31 + 11)
        parts.append(osc)
    for name, make in _seasonal_sources().items():
        if counts.get(name, 0):
            parts.append(make(counts[name], length, seed))
    if counts.get("mixup", 0):
        pool = (
            np.concatenate(parts)
            if parts
            else structured_oscillators(max(64, counts["mixup"]), length, seed)
        )
        parts.append(tsmixup(pool, counts["mixup"], seed))
    out = np.concatenate(parts)
    if noise > 0:
        rng = np.random.default_rng([seed, 505])
        out = out + noise * out.std(axis=1, keepdims=True) * rng.standard_normal(out.shape)
    return out[np.random.default_rng([seed, 606]).permutation(n)]
