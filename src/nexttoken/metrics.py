"""Forecast metrics of point and probabilistic forecasts, per series, in numpy.

Each function takes the truth ``y`` ``(..., H)`` and a forecast over the same horizon and
returns one value per series ``(...)``. Point metrics use the median of the sample paths.

- ``mae``, ``rmse``: in the units of the series.
- ``nmse``: mean squared error over the variance of the context (scale-free).
- ``mase``: MAE over the in-sample MAE of the seasonal naive forecast on the context
  (Hyndman & Koehler 2006), the season found from the context; when the context repeats
  exactly (that error is 0) the one-step naive error scales instead.
- ``smape``: symmetric MAPE in percent, 0..200.
- ``crps``: the continuous ranked probability score of the sample paths,
  E|X - y| - E|X - X'| / 2 (Gneiting & Raftery 2007), averaged over the horizon.
- ``wql``: weighted quantile loss over the levels 0.1..0.9 as the Chronos paper reports it: the
  quantile losses summed over the horizon, divided by the sum of |y|, averaged over the levels.
- ``coverage``: share of the horizon inside the central band (80%: between q0.1 and q0.9).

These are the library definitions (``properscoring.crps_ensemble``; ``utilsforecast.losses``'
``mase``, ``smape``, ``scaled_crps``); the tests check ours against them. They are written here in
numpy because those libraries would pull scipy and pandas into the core install.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "mae",
    "rmse",
    "nmse",
    "mase",
    "smape",
    "crps",
    "wql",
    "coverage",
    "quantile_loss",
    "seasonal_period",
    "WQL_LEVELS",
]

WQL_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _check(y: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, f = np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64)
    if y.shape != f.shape:
        raise ValueError(f"truth {y.shape} and forecast {f.shape} differ in shape")
    return y, f


def mae(y: np.ndarray, point: np.ndarray) -> np.ndarray:
    y, point = _check(y, point)
    return np.abs(y - point).mean(-1)


def rmse(y: np.ndarray, point: np.ndarray) -> np.ndarray:
    y, point = _check(y, point)
    return np.sqrt(((y - point) ** 2).mean(-1))


def nmse(y: np.ndarray, point: np.ndarray, context: np.ndarray) -> np.ndarray:
    """MSE over the variance of the observed context values (NaN ignored)."""
    y, point = _check(y, point)
    var = np.nanvar(np.asarray(context, dtype=np.float64), axis=-1)
    return ((y - point) ** 2).mean(-1) / np.maximum(var, 1e-12)


def seasonal_period(context: np.ndarray, max_period: int | None = None) -> int:
    """The season of a series: the lag of the highest autocorrelation peak (1 if none is clear).

    A peak counts when the autocorrelation there is above 0.3, after it has first dipped
    below zero, so a slowly drifting series gets 1 (no season).
    """
    x = np.asarray(context, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = len(x)
    if n < 8:
        return 1
    x = x - x.mean()
    denom = float((x * x).sum())
    if denom <= 0:
        return 1
    max_period = min(max_period or n // 2, n // 2)
    spec = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spec * np.conj(spec))[: max_period + 1] / denom
    below = np.flatnonzero(acf < 0)
    if len(below) == 0:
        return 1
    start = int(below[0])
    best, best_val = 1, 0.3
    for lag in range(max(start, 2), max_period):
        if acf[lag] >= acf[lag - 1] and acf[lag] >= acf[lag + 1] and acf[lag] > best_val:
            best, best_val = lag, float(acf[lag])
    return best


def mase(
    y: np.ndarray, point: np.ndarray, context: np.ndarray, period: int | Sequence[int] = 1
) -> np.ndarray:
    """MAE over the in-sample MAE of the seasonal naive forecast (lag ``period``) on ``context``."""
    y, point = _check(y, point)
    ctx = np.asarray(context, dtype=np.float64).reshape(-1, np.shape(context)[-1])
    periods = np.broadcast_to(np.asarray(period), (ctx.shape[0],))
    scales = []
    for row, m in zip(ctx, periods):
        m = int(m) if int(m) < len(row) else 1
        scale = float(np.nanmean(np.abs(row[m:] - row[:-m])))
        if m > 1 and scale <= 1e-8 * max(float(np.nanmean(np.abs(row))), 1e-12):
            # A context that repeats exactly (a clean square wave with a whole-number period)
            # has no seasonal naive error to scale by; use the one-step naive error instead.
            scale = float(np.nanmean(np.abs(row[1:] - row[:-1])))
        scales.append(scale)
    scale_arr = np.asarray(scales).reshape(np.shape(context)[:-1])
    return mae(y, point) / np.maximum(scale_arr, 1e-12)


def smape(y: np.ndarray, point: np.ndarray) -> np.ndarray:
    """200 / H * sum |y - f| / (|y| + |f|), with 0/0 counted as 0."""
    y, point = _check(y, point)
    den = np.abs(y) + np.abs(point)
    ratio = np.divide(np.abs(y - point), den, out=np.zeros_like(den), where=den > 0)
    return 200.0 * ratio.mean(-1)


def crps(y: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """CRPS of ``samples`` ``(..., S, H)`` against ``y`` ``(..., H)``, averaged over the horizon."""
    y = np.asarray(y, dtype=np.float64)
    s = np.sort(np.asarray(samples, dtype=np.float64), axis=-2)
    if s.shape[:-2] + s.shape[-1:] != y.shape:
        raise ValueError(f"samples {s.shape} do not fit the truth {y.shape}: want (..., S, H)")
    n = s.shape[-2]
    first = np.abs(s - y[..., None, :]).mean(-2)
    # E|X - X'| over all ordered pairs from the sorted samples: sum_i (2i - n - 1) x_(i) * 2 / n^2.
    weights = (2 * np.arange(1, n + 1) - n - 1).reshape((n, 1))
    spread = (weights * s).sum(-2) * 2 / n**2
    return (first - spread / 2).mean(-1)


def quantile_loss(y: np.ndarray, q_pred: np.ndarray, level: float) -> np.ndarray:
    """Pinball loss 2 * |(y - q) * (1{y <= q} - level)| per time step."""
    y, q_pred = _check(y, q_pred)
    return 2 * np.abs((y - q_pred) * ((y <= q_pred) - level))


def wql(y: np.ndarray, quantiles: np.ndarray, levels: Sequence[float] = WQL_LEVELS) -> np.ndarray:
    """Weighted quantile loss: ``quantiles`` ``(..., len(levels), H)`` against ``y`` ``(..., H)``."""
    y = np.asarray(y, dtype=np.float64)
    q = np.asarray(quantiles, dtype=np.float64)
    if q.shape[-2] != len(levels):
        raise ValueError(f"quantiles have {q.shape[-2]} levels, expected {len(levels)}")
    losses = np.stack([quantile_loss(y, q[..., i, :], lv) for i, lv in enumerate(levels)], -2)
    scale = np.maximum(np.abs(y).sum(-1), 1e-12)
    return losses.sum(-1).mean(-1) / scale


def coverage(y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Share of the horizon with ``lower <= y <= upper``."""
    y, lower = _check(y, lower)
    return ((y >= lower) & (y <= np.asarray(upper))).mean(-1)
