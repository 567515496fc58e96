"""Classical forecasters behind the same interface as our models, so one harness runs them all.

Every forecaster has a ``name`` and ``forecast(context, horizon, num_samples, seed=...)`` that
returns a :class:`~nexttoken.forecast.Forecast` with ``samples`` ``(series, num_samples,
horizon)``, exactly as ``nexttoken.forecast`` does for a model:

- :class:`LastValue`: the last observed value, with a random walk's widening band.
- :class:`SeasonalNaive`: the last season repeated, its season found from the context.
- :class:`LinearAR`: a linear autoregression fitted on the context by least squares (order
  by AIC), sample paths simulated with its residual noise. It continues a clean sinusoid
  almost exactly: an AR(2) is a sinusoid's recurrence.
- :class:`AutoETS`, :class:`AutoARIMA`, :class:`AutoTheta`, :class:`MSTL`: ``statsforecast``'s
  automatic models (the ``baselines`` extra: ``pip install 'nexttoken[baselines]'``), with
  Gaussian sample paths from their prediction intervals. AutoETS and AutoARIMA fit a season of
  at most :data:`MAX_SEASON` steps (ETS has no model for longer ones, and seasonal ARIMA at
  m = 48..336 takes CPU-minutes a series): past it they fit without one and say so in
  ``capped``. MSTL takes several seasons at once (day and week of hourly data) and is the
  baseline for long seasons.
- :class:`ModelForecaster`: a nexttoken model (``nexttoken.load``) under the same interface.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .forecast import DEFAULT_QUANTILES, Forecast, prepare_context
from .metrics import seasonal_period

if TYPE_CHECKING:
    from .lm import LanguageModel

__all__ = [
    "Forecaster",
    "LastValue",
    "SeasonalNaive",
    "LinearAR",
    "AutoETS",
    "AutoARIMA",
    "AutoTheta",
    "MSTL",
    "MAX_SEASON",
    "ModelForecaster",
    "baseline",
    "BASELINES",
]

_Z80 = 1.2815515655446004  # standard normal quantile of 0.9
#: The longest season AutoETS and AutoARIMA fit (as R's forecast::ets; longer ones fit none).
MAX_SEASON = 24


class Forecaster(Protocol):
    name: str

    def forecast(
        self,
        context: Any,
        horizon: int,
        num_samples: int = 20,
        *,
        seed: int | None = 0,
        seasons: tuple[int, ...] = (),
    ) -> Forecast:
        """``seasons``: the series' known seasons, the main one first (the one seasonal naive
        repeats; MSTL takes them all); empty to find one from each context."""
        ...


def _filled(x: np.ndarray) -> np.ndarray:
    """Missing values linearly interpolated (ends held flat): the classical models need all steps."""
    nan = np.isnan(x)
    if not nan.any():
        return x
    t = np.arange(len(x))
    return np.interp(t, t[~nan], x[~nan])


def _gaussian(point: np.ndarray, sigma: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` paths ``point + sigma * z`` ``(n, H)``, z standard normal per step."""
    return point[None, :] + sigma[None, :] * rng.standard_normal((n, len(point)))


class _PerSeries(ABC):
    """Forecast each series on its own with ``_one(x, horizon, n, rng) -> (n, H)``."""

    name = ""

    def forecast(
        self,
        context: Any,
        horizon: int,
        num_samples: int = 20,
        *,
        seed: int | None = 0,
        seasons: tuple[int, ...] = (),
    ) -> Forecast:
        if horizon < 1 or num_samples < 1:
            raise ValueError(
                f"need horizon >= 1 and num_samples >= 1 (got {horizon}, {num_samples})"
            )
        if any(int(m) < 1 for m in seasons):
            raise ValueError(f"seasons must be >= 1 (got {tuple(seasons)})")
        series = prepare_context(context)
        rng = np.random.default_rng(seed)
        known = tuple(int(m) for m in seasons)
        samples = np.stack(
            [self._one(_filled(x), horizon, num_samples, rng, known) for x in series]
        )
        return Forecast(samples=samples, quantile_levels=DEFAULT_QUANTILES)

    @abstractmethod
    def _one(
        self, x: np.ndarray, h: int, n: int, rng: np.random.Generator, seasons: tuple[int, ...]
    ) -> np.ndarray:
        """``n`` sample paths ``(n, h)`` after the gap-free series ``x`` (known ``seasons``,
        possibly none)."""


class LastValue(_PerSeries):
    name = "last value"

    def _one(
        self, x: np.ndarray, h: int, n: int, rng: np.random.Generator, seasons: tuple[int, ...] = ()
    ) -> np.ndarray:
        sigma = np.std(np.diff(x)) if len(x) > 2 else 0.0
        return _gaussian(np.full(h, x[-1]), sigma * np.sqrt(np.arange(1, h + 1)), n, rng)


class SeasonalNaive(_PerSeries):
    """``y[T + k] = y[T + k - m]``; ``m`` is ``period``, else the first known season, else
    found from the context."""

    name = "seasonal naive"

    def __init__(self, period: int | None = None):
        self.period = period

    def _one(
        self, x: np.ndarray, h: int, n: int, rng: np.random.Generator, seasons: tuple[int, ...] = ()
    ) -> np.ndarray:
        m = self.period or (seasons[0] if seasons else seasonal_period(x))
        m = m if m < len(x) else 1
        k = np.arange(h)
        point = x[len(x) - m + (k % m)]
        resid = x[m:] - x[:-m]
        sigma = np.std(resid) if len(resid) > 1 else 0.0
        return _gaussian(point, sigma * np.sqrt(k // m + 1), n, rng)


class LinearAR(_PerSeries):
    """AR(p) with intercept by least squares on the context; ``p`` by AIC up to ``max_order``."""

    name = "linear AR"

    def __init__(self, max_order: int = 32):
        self.max_order = max_order

    def fit(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Coefficients ``[intercept, a_1 .. a_p]`` (a_1 on the latest value) and residual std."""
        T = len(x)
        top = max(1, min(self.max_order, (T - 1) // 3))
        lagged = np.stack([x[top - j : T - j] for j in range(1, top + 1)], axis=1)
        target = x[top:]
        best: tuple[float, np.ndarray, float] | None = None
        for p in range(1, top + 1):
            X = np.column_stack([np.ones(len(target)), lagged[:, :p]])
            coef, *_ = np.linalg.lstsq(X, target, rcond=None)
            resid = target - X @ coef
            var = max(float(resid.var()), 1e-12 * max(float(x.var()), 1e-12))
            aic = len(target) * np.log(var) + 2 * (p + 1)
            if best is None or aic < best[0]:
                best = (aic, coef, float(np.sqrt(var)))
        assert best is not None
        return best[1], best[2]

    def _one(
        self, x: np.ndarray, h: int, n: int, rng: np.random.Generator, seasons: tuple[int, ...] = ()
    ) -> np.ndarray:
        if len(x) < 4:
            return LastValue()._one(x, h, n, rng)
        coef, sigma = self.fit(x)
        p = len(coef) - 1
        bound = 10 * np.abs(x).max() + 1e-9  # an unstable fit must not run off to infinity
        hist = np.tile(x[-p:][::-1], (n, 1))  # (n, p), latest first
        out = np.empty((n, h))
        for k in range(h):
            nxt = coef[0] + hist @ coef[1:] + sigma * rng.standard_normal(n)
            out[:, k] = np.clip(nxt, -bound, bound)
            hist = np.concatenate([out[:, k : k + 1], hist[:, :-1]], axis=1)
        return out


class _StatsForecast(_PerSeries):
    #: Seasons longer than this are not fitted (the series is fitted without a season).
    max_season: int | None = MAX_SEASON

    def __init__(self, season_length: int | None = None):
        self.season_length = season_length
        self.capped = 0
        """How many series had a season over ``max_season``, fitted without one."""

    @abstractmethod
    def _model(self, m: int) -> Any:
        """The statsforecast model for season length ``m``."""

    def _season(self, x: np.ndarray, seasons: tuple[int, ...]) -> int:
        m = self.season_length or (seasons[0] if seasons else seasonal_period(x))
        if self.max_season is not None and m > self.max_season:
            self.capped += 1
            return 1
        return m if 2 * m < len(x) else 1

    def _one(
        self, x: np.ndarray, h: int, n: int, rng: np.random.Generator, seasons: tuple[int, ...] = ()
    ) -> np.ndarray:
        m = self._season(x, seasons)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = self._model(m).forecast(y=x, h=h, level=[80])
            except Exception:  # a seasonal fit that fails: fall back to the non-seasonal model
                out = self._fallback().forecast(y=x, h=h, level=[80])
        mean = np.asarray(out["mean"], dtype=np.float64)
        sigma = (np.asarray(out["hi-80"], dtype=np.float64) - np.asarray(out["lo-80"])) / (2 * _Z80)
        return _gaussian(mean, np.maximum(sigma, 0.0), n, rng)

    def _fallback(self) -> Any:
        return self._model(1)


def _statsforecast_models() -> Any:
    try:
        import statsforecast.models as models
    except ImportError:
        raise ImportError(
            "AutoETS, AutoARIMA, AutoTheta and MSTL need statsforecast: "
            "pip install 'nexttoken[baselines]'"
        ) from None
    return models


class AutoETS(_StatsForecast):
    """statsforecast's AutoETS (error, trend, season chosen by AICc)."""

    name = "AutoETS"

    def _model(self, m: int) -> Any:
        return _statsforecast_models().AutoETS(season_length=m)


class AutoARIMA(_StatsForecast):
    """statsforecast's AutoARIMA (stepwise, with the approximate likelihood: seconds, not minutes)."""

    name = "AutoARIMA"

    def _model(self, m: int) -> Any:
        return _statsforecast_models().AutoARIMA(season_length=m, approximation=True)


class AutoTheta(_StatsForecast):
    """statsforecast's AutoTheta (the Theta variants chosen by in-sample fit, multiplicative
    seasonal decomposition first when the season tests significant)."""

    name = "AutoTheta"
    max_season = None  # a classical decomposition: cheap at any season

    def _model(self, m: int) -> Any:
        return _statsforecast_models().AutoTheta(season_length=m)


class MSTL(_StatsForecast):
    """statsforecast's MSTL: the series split by STL into a trend and one seasonal part per
    season (each repeated as seasonal naive does), the trend forecast by a non-seasonal AutoETS.
    Takes every known season that fits twice in the context (else the one found there)."""

    name = "MSTL"
    max_season = None

    def _model(self, m: int) -> Any:
        models = _statsforecast_models()
        return models.MSTL(season_length=m, trend_forecaster=models.AutoETS(model="ZZN"))

    def _fallback(self) -> Any:
        return _statsforecast_models().AutoETS(season_length=1, model="ZZN")

    def _one(
        self, x: np.ndarray, h: int, n: int, rng: np.random.Generator, seasons: tuple[int, ...] = ()
    ) -> np.ndarray:
        given = (self.season_length,) if self.season_length else seasons
        fit = [m for m in dict.fromkeys(given or (seasonal_period(x),)) if 1 < m and 2 * m < len(x)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if not fit:
                    raise ValueError("no season fits twice")
                out = self._model(sorted(fit)).forecast(y=x, h=h, level=[80])  # type: ignore[arg-type]
            except Exception:
                out = self._fallback().forecast(y=x, h=h, level=[80])
        mean = np.asarray(out["mean"], dtype=np.float64)
        sigma = (np.asarray(out["hi-80"], dtype=np.float64) - np.asarray(out["lo-80"])) / (2 * _Z80)
        return _gaussian(mean, np.maximum(sigma, 0.0), n, rng)


class ModelForecaster:
    """A nexttoken signal model under the baselines' interface (``nexttoken.forecast``)."""

    def __init__(self, lm: LanguageModel, name: str | None = None, **sampling: Any):
        self.lm = lm
        self.name = name or (lm.source or "model")
        self.sampling = sampling

    def forecast(
        self,
        context: Any,
        horizon: int,
        num_samples: int = 20,
        *,
        seed: int | None = 0,
        seasons: tuple[int, ...] = (),
    ) -> Forecast:
        """``seasons``: the series' known seasons, handed to :func:`nexttoken.forecast` as its
        ``season`` (with ``trend="auto"`` it may then forecast a series with its seasonal
        profile removed); none: the model reads the season from the context alone."""
        from .forecast import forecast

        series = prepare_context(context)
        sampling = dict(self.sampling)
        if seasons and "season" not in sampling:
            sampling["season"] = tuple(seasons)
        with warnings.catch_warnings():
            # the whole context is given on purpose: the model sees its window, the seasonal
            # profile and the backtest read what comes before it too
            warnings.filterwarnings("ignore", message="a context has .* more than the model's")
            return forecast(self.lm, series, horizon, num_samples, seed=seed, **sampling)


BASELINES: dict[str, type[_PerSeries]] = {
    "last": LastValue,
    "seasonal": SeasonalNaive,
    "ar": LinearAR,
    "ets": AutoETS,
    "arima": AutoARIMA,
    "theta": AutoTheta,
    "mstl": MSTL,
}


def baseline(key: str) -> _PerSeries:
    """A baseline by its short name: ``last``, ``seasonal``, ``ar``, ``ets``, ``arima``,
    ``theta`` or ``mstl``."""
    if key not in BASELINES:
        raise ValueError(f"unknown baseline {key!r}; choose from {', '.join(BASELINES)}")
    return BASELINES[key]()
