"""Seeded generators of oscillator families, and series in and out of CSV files.

Every generator takes ``(n, length, seed)`` and returns a float64 array shaped ``(n, length)``.
The same seed gives the same array: each family draws from its own
``numpy.random.default_rng([seed, family_index])`` stream, so adding a family never changes
the series of another one. The nonlinear oscillators are integrated with a fixed-step RK4
(no adaptive step control), which keeps the output a pure function of the seed.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "FAMILIES",
    "generate",
    "mixture",
    "read_csv",
    "write_csv",
]

Array = np.ndarray


def _periods(rng: np.random.Generator, n: int, lo: float = 8.0, hi: float = 64.0) -> Array:
    # Log-uniform, so short and long periods are equally common.
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=(n, 1)))


def _sine(rng: np.random.Generator, n: int, length: int) -> Array:
    """Sum of 1 to 3 sines with random period (8..64 steps), phase and amplitude."""
    t = np.arange(length)[None, :]
    k = rng.integers(1, 4, size=n)
    out = np.zeros((n, length))
    for j in range(3):
        period = _periods(rng, n)
        phase = rng.uniform(0, 2 * math.pi, size=(n, 1))
        amp = rng.uniform(0.2, 1.0, size=(n, 1)) * (j < k)[:, None]
        out += amp * np.sin(2 * math.pi * t / period + phase)
    return out * rng.uniform(0.5, 5.0, size=(n, 1))


def _single_sine(rng: np.random.Generator, n: int, length: int) -> Array:
    """One sine with random period (8..64 steps), phase and amplitude (0.5..5)."""
    t = np.arange(length)[None, :]
    period = _periods(rng, n)
    phase = rng.uniform(0, 2 * math.pi, size=(n, 1))
    return rng.uniform(0.5, 5.0, size=(n, 1)) * np.sin(2 * math.pi * t / period + phase)


def _damped(rng: np.random.Generator, n: int, length: int) -> Array:
    """A sine whose amplitude decays (or grows slightly) exponentially."""
    t = np.arange(length)[None, :]
    period = _periods(rng, n)
    phase = rng.uniform(0, 2 * math.pi, size=(n, 1))
    rate = rng.uniform(-0.5, 3.0, size=(n, 1)) / length  # e-folds over the whole series
    return (
        rng.uniform(0.5, 5.0, size=(n, 1))
        * np.exp(-rate * t)
        * np.sin(2 * math.pi * t / period + phase)
    )


def _square(rng: np.random.Generator, n: int, length: int) -> Array:
    """Square wave with random period, phase, amplitude and duty cycle (0.3..0.7)."""
    t = np.arange(length)[None, :]
    period = _periods(rng, n, 12.0, 64.0)
    phase = rng.uniform(0, 1, size=(n, 1))
    duty = rng.uniform(0.3, 0.7, size=(n, 1))
    frac = (t / period + phase) % 1.0
    return rng.uniform(0.5, 5.0, size=(n, 1)) * np.where(frac < duty, 1.0, -1.0)


def _sawtooth(rng: np.random.Generator, n: int, length: int) -> Array:
    """Rising or falling sawtooth with random period, phase and amplitude."""
    t = np.arange(length)[None, :]
    period = _periods(rng, n, 12.0, 64.0)
    phase = rng.uniform(0, 1, size=(n, 1))
    sign = np.where(rng.random((n, 1)) < 0.5, 1.0, -1.0)
    frac = (t / period + phase) % 1.0
    return rng.uniform(0.5, 5.0, size=(n, 1)) * sign * (2.0 * frac - 1.0)


def _chirp(rng: np.random.Generator, n: int, length: int) -> Array:
    """Linear chirp: the period moves from one value to another over the series."""
    t = np.arange(length)[None, :]
    f0 = 1.0 / _periods(rng, n, 12.0, 64.0)
    f1 = 1.0 / _periods(rng, n, 12.0, 64.0)
    phase = rng.uniform(0, 2 * math.pi, size=(n, 1))
    inst = 2 * math.pi * (f0 * t + 0.5 * (f1 - f0) * t**2 / length)
    return rng.uniform(0.5, 5.0, size=(n, 1)) * np.sin(inst + phase)


def _am(rng: np.random.Generator, n: int, length: int) -> Array:
    """Amplitude modulation: a carrier (8..32 steps) under a slow envelope (64..256 steps)."""
    t = np.arange(length)[None, :]
    carrier = _periods(rng, n, 8.0, 32.0)
    envelope = _periods(rng, n, 64.0, 256.0)
    depth = rng.uniform(0.3, 0.9, size=(n, 1))
    p1, p2 = (rng.uniform(0, 2 * math.pi, size=(n, 1)) for _ in range(2))
    env = 1.0 + depth * np.sin(2 * math.pi * t / envelope + p1)
    return rng.uniform(0.5, 5.0, size=(n, 1)) * env * np.sin(2 * math.pi * t / carrier + p2)


def _rk4(
    f: Callable[[Array, Array], Array],
    y0: Array,
    dt: Array,
    steps: int,
    substeps: int,
    burn_in: int,
) -> Array:
    """Fixed-step RK4 for ``y' = f(t, y)`` batched over series; returns ``(n, steps, dim)``.

    ``dt`` is ``(n, 1)``, one sampling interval per series; ``burn_in`` samples are
    integrated first and dropped, so the output starts on the attractor.
    """
    h = dt / substeps
    y = y0.copy()
    t = np.zeros_like(dt)
    out = np.empty((y0.shape[0], steps, y0.shape[1]))
    for i in range(burn_in + steps):
        for _ in range(substeps):
            k1 = f(t, y)
            k2 = f(t + h / 2, y + h / 2 * k1)
            k3 = f(t + h / 2, y + h / 2 * k2)
            k4 = f(t + h, y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            t = t + h
        if i >= burn_in:
            out[:, i - burn_in] = y
    return out


def _van_der_pol(rng: np.random.Generator, n: int, length: int) -> Array:
    """Van der Pol oscillator x'' - mu (1 - x^2) x' + x = 0, mu in 0.2..4 (relaxation waves)."""
    mu = rng.uniform(0.2, 4.0, size=(n, 1))
    # The limit-cycle period is about 2*pi for small mu and (3 - 2 ln 2) mu for large mu.
    period_time = np.maximum(2 * math.pi, (3 - 2 * math.log(2)) * mu + 2 * math.pi * 0.5)
    dt = period_time / _periods(rng, n, 16.0, 64.0)
    y0 = rng.uniform(-2, 2, size=(n, 2))

    def f(t: Array, y: Array) -> Array:
        x, v = y[:, :1], y[:, 1:]
        return np.concatenate([v, mu * (1 - x**2) * v - x], axis=1)

    return _rk4(f, y0, dt, length, 8, 64)[:, :, 0] * rng.uniform(0.5, 3.0, size=(n, 1))


def _duffing(rng: np.random.Generator, n: int, length: int) -> Array:
    """Forced Duffing oscillator x'' + d x' + a x + b x^3 = g cos(w t); periodic to chaotic."""
    d = rng.uniform(0.1, 0.4, size=(n, 1))
    a = np.where(rng.random((n, 1)) < 0.5, -1.0, 1.0)
    b = rng.uniform(0.5, 1.5, size=(n, 1))
    g = rng.uniform(0.2, 0.6, size=(n, 1))
    w = rng.uniform(0.8, 1.4, size=(n, 1))
    dt = (2 * math.pi / w) / _periods(rng, n, 16.0, 48.0)
    y0 = rng.uniform(-1, 1, size=(n, 2))

    def f(t: Array, y: Array) -> Array:
        x, v = y[:, :1], y[:, 1:]
        return np.concatenate([v, g * np.cos(w * t) - d * v - a * x - b * x**3], axis=1)

    return _rk4(f, y0, dt, length, 8, 64)[:, :, 0] * rng.uniform(0.5, 3.0, size=(n, 1))


def _coupled(rng: np.random.Generator, n: int, length: int) -> Array:
    """Two masses on springs joined by a weak spring; the first mass's position (beats)."""
    k = np.ones((n, 1))
    kc = rng.uniform(0.02, 0.3, size=(n, 1))
    damping = rng.uniform(0.0, 0.01, size=(n, 1))
    dt = 2 * math.pi / _periods(rng, n, 12.0, 48.0)
    y0 = np.concatenate([rng.uniform(-1, 1, size=(n, 2)), np.zeros((n, 2))], axis=1)

    def f(t: Array, y: Array) -> Array:
        x1, x2, v1, v2 = y[:, :1], y[:, 1:2], y[:, 2:3], y[:, 3:]
        a1 = -k * x1 - kc * (x1 - x2) - damping * v1
        a2 = -k * x2 - kc * (x2 - x1) - damping * v2
        return np.concatenate([v1, v2, a1, a2], axis=1)

    return _rk4(f, y0, dt, length, 4, 0)[:, :, 0] * rng.uniform(0.5, 5.0, size=(n, 1))


_GENERATORS: dict[str, Callable[[np.random.Generator, int, int], Array]] = {
    "single_sine": _single_sine,
    "sine": _sine,
    "damped": _damped,
    "square": _square,
    "sawtooth": _sawtooth,
    "chirp": _chirp,
    "am": _am,
    "van_der_pol": _van_der_pol,
    "duffing": _duffing,
    "coupled": _coupled,
}

#: The oscillator families, in a fixed order (the order seeds each family's stream).
FAMILIES: tuple[str, ...] = tuple(_GENERATORS)


def generate(family: str, n: int, length: int, seed: int = 0, noise: float = 0.0) -> Array:
    """Draw ``n`` series of one oscillator family.

    Parameters
    ----------
    family : one of :data:`FAMILIES`.
    n, length : number of series and time steps.
    seed : the same seed gives the same series.
    noise : standard deviation of added Gaussian noise, relative to each series' own std.

    Returns
    -------
    float64 array shaped ``(n, length)``.
    """
    if family not in _GENERATORS:
        raise ValueError(
            f"unknown oscillator family {family!r}; choose one of {', '.join(FAMILIES)}"
        )
    if n < 0 or length < 1:
        raise ValueError(f"need n >= 0 and length >= 1 (got n={n}, length={length})")
    if noise < 0:
        raise ValueError(f"noise must be >= 0 (got {noise})")
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    x = _GENERATORS[family](rng, n, length)
    if noise > 0:
        x = x + noise * x.std(axis=1, keepdims=True) * rng.standard_normal(x.shape)
    return x


def mixture(
    families: Sequence[str],
    n: int,
    length: int,
    seed: int = 0,
    noise: float = 0.0,
    weights: Sequence[float] | None = None,
) -> tuple[Array, list[str]]:
    """``n`` series spread over ``families`` (evenly, or in proportion to ``weights``); returns
    the array and each row's family."""
    if not families:
        raise ValueError("families is empty; name at least one of " + ", ".join(FAMILIES))
    if weights is None:
        counts = [n // len(families) + (i < n % len(families)) for i in range(len(families))]
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(families),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be {len(families)} non-negative numbers, one per family, not all 0 "
                f"(got {list(weights)})"
            )
        exact = n * w / w.sum()
        counts = np.floor(exact).astype(int)
        # the rows left over go to the largest remainders, so the counts add up to n
        for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
            counts[i] += 1
        counts = counts.tolist()
    parts = [generate(f, c, length, seed, noise) for f, c in zip(families, counts)]
    labels = [f for f, c in zip(families, counts) for _ in range(c)]
    return np.concatenate(parts, axis=0), labels


def read_csv(path: str | Path) -> dict[str, Array]:
    """Read series from a CSV file: one column per series, the header row names them.

    Rows are time steps; an empty cell (or ``nan``/``NA``) is a missing value and becomes NaN.
    Returns ``{name: float64 array (rows,)}`` in column order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise ValueError(
            f"{path} is empty; expected a header row naming the series, then one row per time step"
        )
    header = [h.strip() for h in rows[0]]
    for j, name in enumerate(header):
        if not name:
            raise ValueError(
                f"{path}: column {j + 1} has no name in the header row; give every series a name"
            )
    if len(set(header)) != len(header):
        raise ValueError(f"{path}: duplicate column names in the header: {header}")
    data = np.full((len(rows) - 1, len(header)), np.nan)
    for i, row in enumerate(rows[1:]):
        if len(row) > len(header):
            raise ValueError(
                f"{path}: row {i + 2} has {len(row)} cells but the header names {len(header)} series"
            )
        for j, cell in enumerate(row):
            cell = cell.strip()
            if cell == "" or cell.lower() in ("nan", "na", "null"):
                continue
            try:
                data[i, j] = float(cell)
            except ValueError:
                raise ValueError(
                    f"{path}: row {i + 2}, column {header[j]!r}: {cell!r} is not a number "
                    "(leave the cell empty for a missing value)"
                ) from None
    if not np.all(np.isfinite(data) | np.isnan(data)):
        raise ValueError(
            f"{path} contains inf; replace infinite values with numbers or empty cells"
        )
    return {name: data[:, j] for j, name in enumerate(header)}


def write_csv(path: str | Path, series: dict[str, Array]) -> None:
    """Write ``{name: values}`` as CSV (one column per series, NaN as an empty cell).

    Columns of different lengths are padded with empty cells at the end.
    """
    path = Path(path)
    names = list(series)
    length = max((len(v) for v in series.values()), default=0)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(length):
            w.writerow(
                [
                    ""
                    if i >= len(series[k]) or np.isnan(series[k][i])
                    else repr(float(series[k][i]))
                    for k in names
                ]
            )
    tmp.replace(path)
