"""pandas in and out: the forms of series a forecaster holds, read into arrays, and dates kept.

pandas is optional: this module imports it only when it is handed a pandas object or asked
for a DataFrame. Accepted inputs (:func:`read_series`):

- one series: a 1-D array or list, or a ``pd.Series`` (its index may hold dates);
- several: a 2-D array ``(series, time)``, a list of 1-D arrays of any lengths, a *wide*
  ``pd.DataFrame`` (a column per series, rows are time steps, NaN = missing, dates in the
  index), or a *long* one with columns ``unique_id``, ``ds``, ``y`` (the convention of
  statsforecast, utilsforecast and neuralforecast).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SeriesSet", "read_series", "read_table", "is_pandas", "future_times", "LONG_COLUMNS"]

#: The columns of a long DataFrame: series id, time stamp, value.
LONG_COLUMNS = ("unique_id", "ds", "y")

ACCEPTED = (
    "a 1-D array, list or pd.Series (one series), a 2-D array (series, time), a list of 1-D "
    "arrays, a wide pd.DataFrame (a column per series) or a long one with columns "
    "unique_id, ds, y"
)


@dataclass
class SeriesSet:
    """Series as float arrays, with their names and, when known, their time stamps.

    ``times[i]`` holds series ``i``'s time stamps (dates or numbers, one per value) or is None.
    """

    values: list[np.ndarray]
    names: list[str]
    times: list[Any] = field(default_factory=list)


def is_pandas(obj: Any) -> bool:
    """True for a pandas Series or DataFrame, without importing pandas."""
    return type(obj).__module__.split(".")[0] == "pandas" and hasattr(obj, "to_numpy")


def read_series(data: Any, names: Sequence[str] | None = None) -> SeriesSet:
    """Any accepted form (see the module docstring) -> :class:`SeriesSet`."""
    if is_pandas(data):
        out = _from_pandas(data)
    else:
        rows = _rows(data)
        out = SeriesSet(
            [_numeric(r, i) for i, r in enumerate(rows)],
            [f"series_{i}" for i in range(len(rows))],
            [None] * len(rows),
        )
    if not out.values:
        raise ValueError(f"the context holds no series; give {ACCEPTED}")
    if names is not None:
        if len(names) != len(out.values):
            raise ValueError(
                f"{len(names)} names for {len(out.values)} series; give one name per series"
            )
        out.names = [str(n) for n in names]
    return out


def _rows(data: Any) -> list[Any]:
    try:
        import torch

        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if isinstance(data, np.ndarray):
        if data.ndim == 1:
            return [data]
        if data.ndim == 2:
            return list(data)
        raise ValueError(
            f"context must be 1-D (time) or 2-D (series, time); got shape {data.shape}"
        )
    if isinstance(data, (str, bytes, dict)) or not isinstance(data, Sequence):
        raise ValueError(f"cannot read a context of type {type(data).__name__}; give {ACCEPTED}")
    if len(data) and all(np.ndim(v) == 0 for v in data):
        return [np.asarray(data)]
    return list(data)


def _numeric(row: Any, i: int | str) -> np.ndarray:
    try:
        arr = np.asarray(row, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"series {i} is not numeric; give {ACCEPTED}") from None
    if arr.size == 0:
        raise ValueError(f"series {i} is empty; give at least one observed value")
    return arr


def _from_pandas(data: Any) -> SeriesSet:
    import pandas as pd

    if isinstance(data, pd.Series):
        name = str(data.name) if data.name is not None else "series_0"
        return SeriesSet([_numeric(data.to_numpy(), name)], [name], [_index_times(data.index)])
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"cannot read a {type(data).__name__}; give {ACCEPTED}")
    if set(LONG_COLUMNS) <= set(map(str, data.columns)):
        return _from_long(data)
    if {"unique_id", "y"} <= set(map(str, data.columns)):
        raise ValueError(
            "a long DataFrame needs a 'ds' column (time stamps) beside unique_id and y"
        )
    bad = [str(c) for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
    if bad:
        raise ValueError(
            f"columns {bad} of the wide DataFrame are not numeric; put dates in the index "
            f"(df.set_index('date')) or give {ACCEPTED}"
        )
    times = _index_times(data.index)
    return SeriesSet(
        [_numeric(data[c].to_numpy(), str(c)) for c in data.columns],
        [str(c) for c in data.columns],
        [times] * data.shape[1],
    )


def _from_long(data: Any) -> SeriesSet:
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(data["y"]):
        raise ValueError("column 'y' of the long DataFrame is not numeric")
    values, names, times = [], [], []
    for uid, part in data.groupby("unique_id", sort=False):
        part = part.sort_values("ds")
        if part["ds"].duplicated().any():
            raise ValueError(f"series {uid!r} has the same ds twice; give one row per time stamp")
        y = _numeric(part["y"].to_numpy(), str(uid))
        ds = part["ds"].to_numpy()
        y, ds = _regular(y, ds)
        values.append(y)
        names.append(str(uid))
        times.append(ds)
    return SeriesSet(values, names, times)


def _regular(y: np.ndarray, ds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows missing from a regular grid of time stamps come back as NaN (missing values)."""
    if len(ds) < 3:
        return y, ds
    if ds.dtype.kind == "M":
        import pandas as pd

        idx = pd.DatetimeIndex(ds)
        freq = _date_freq(idx)
        if freq is None:
            return y, ds
        grid = pd.date_range(idx[0], idx[-1], freq=freq)
        if len(grid) == len(idx) or not idx.isin(grid).all():
            return y, ds
        full = pd.Series(y, index=idx).reindex(grid)
        return full.to_numpy(dtype=np.float64), grid.to_numpy()
    if not np.issubdtype(ds.dtype, np.number):
        return y, ds
    gaps = np.diff(ds)
    step = _most_common(gaps)
    if step <= 0 or np.all(gaps == step) or np.any(gaps % step):
        return y, ds  # already regular, or no grid that every stamp sits on
    slots = ((ds - ds[0]) // step).astype(np.int64)
    full = np.full(slots[-1] + 1, np.nan)
    full[slots] = y
    return full, ds[0] + step * np.arange(slots[-1] + 1)


def _date_freq(idx: Any) -> Any:
    """pandas' frequency of dates, found on the whole index or, past a gap, on its tail."""
    import pandas as pd

    for k in (len(idx), 25, 10, 5, 3):
        if len(idx) >= k >= 3:
            freq = pd.infer_freq(idx[-k:])
            if freq is not None:
                return freq
    return None


def calendar_season(times: Any) -> int | None:
    """The season a calendar gives series stamped with ``times``, or None when it can't tell.

    Steps within a day repeat daily (48 for half-hours, 24 for hours); days repeat weekly (7,
    5 for business days); weeks yearly (52); months 12; quarters 4; years have no season (1).
    None for plain numbers, irregular stamps or steps that don't divide a day.
    """
    if times is None or len(times) < 3:
        return None
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.number):
        return None
    import pandas as pd

    idx = pd.Index(times)
    if isinstance(idx, pd.PeriodIndex):
        offset = idx.freq
    else:
        try:
            freq = _date_freq(pd.DatetimeIndex(idx))
        except (TypeError, ValueError):
            return None
        if freq is None:
            return None
        offset = pd.tseries.frequencies.to_offset(freq)
    n = int(getattr(offset, "n", 1) or 1)
    name = type(offset).__name__
    yearly = {"SemiMonth": 24, "Month": 12, "Quarter": 4, "Year": 1, "Week": 52}
    for key, per_year in yearly.items():
        if key in name:
            return per_year // n if per_year % n == 0 else None
    if "BusinessDay" in name or name == "CustomBusinessDay":
        return 5 if n == 1 else None
    nanos = getattr(offset, "nanos", None)
    if nanos is None:
        return None
    day = 86_400 * 10**9
    if nanos == day:
        return 7
    if nanos < day and day % nanos == 0:
        return int(day // nanos)
    return None


def _index_times(index: Any) -> Any:
    import pandas as pd

    if isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
        return index.to_numpy()
    return None


def future_times(times: Any, horizon: int) -> Any:
    """The ``horizon`` time stamps after ``times`` at their own regular step, or None.

    Dates: the frequency pandas infers, else the most common gap. Numbers: the most common
    difference. None when there is no regular step to continue (fewer than 2 stamps).
    """
    if times is None or len(times) < 2:
        return None
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.number):
        step = _most_common(np.diff(arr))
        return arr[-1] + step * np.arange(1, horizon + 1)
    import pandas as pd

    idx = pd.Index(times)
    if isinstance(idx, pd.PeriodIndex):
        return (idx[-1] + np.arange(1, horizon + 1)).to_numpy()
    idx = pd.DatetimeIndex(idx)
    freq = _date_freq(idx)
    if freq is not None:
        return pd.date_range(idx[-1], periods=horizon + 1, freq=freq)[1:].to_numpy()
    step = _most_common(np.diff(idx.asi8))
    return (idx[-1] + pd.to_timedelta(step * np.arange(1, horizon + 1), unit="ns")).to_numpy()


def _most_common(diffs: np.ndarray) -> Any:
    vals, counts = np.unique(diffs, return_counts=True)
    return vals[np.argmax(counts)]


#: First-column headers that mark a column of time stamps in a wide CSV file.
TIME_HEADERS = ("ds", "date", "time", "timestamp", "datetime", "period", "month", "week", "day")


def read_table(path: Any) -> SeriesSet:
    """Series from a CSV file, in any of the forms ``nexttoken forecast --input`` takes.

    - wide: a column per series, the header names them, rows are time steps, empty = missing;
    - wide with dates: the same, with a first column of time stamps (a header such as ``ds``
      or ``date``, or values that read as dates);
    - long: columns ``unique_id``, ``ds``, ``y`` (any order, more columns ignored).

    The two forms with dates need pandas; the plain wide form does not.
    """
    import csv
    from pathlib import Path

    from .signals import read_csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        first = next(reader, [])
    if set(LONG_COLUMNS) <= set(header):
        pd = _pandas_for(path, "long format (unique_id, ds, y)")
        df = pd.read_csv(path)
        df["ds"] = _parse_times(pd, df["ds"], path)
        return _from_long(df)
    if header and first and _is_time_column(header[0], first[0]):
        pd = _pandas_for(path, f"a first column of time stamps ({header[0]!r})")
        df = pd.read_csv(path)
        times = _parse_times(pd, df.iloc[:, 0], path)
        df = df.iloc[:, 1:]
        if df.shape[1] == 0:
            raise ValueError(f"{path}: only a column of time stamps; add a column per series")
        for c in df.columns:
            if not pd.api.types.is_numeric_dtype(df[c]):
                raise ValueError(
                    f"{path}: column {c!r} is not numeric (leave a cell empty for a missing value)"
                )
        return SeriesSet(
            [df[c].to_numpy(dtype=np.float64) for c in df.columns],
            [str(c) for c in df.columns],
            [np.asarray(times)] * df.shape[1],
        )
    columns = read_csv(path)
    return SeriesSet(list(columns.values()), list(columns), [None] * len(columns))


def _is_time_column(name: str, cell: str) -> bool:
    if name.lower() in TIME_HEADERS:
        return True
    cell = cell.strip()
    try:
        float(cell)
        return False
    except ValueError:
        pass
    # 2024-01-31, 2024/01/31, 2024-01, 2024-01-31 12:00 ...
    return len(cell) >= 7 and cell[:4].isdigit() and cell[4] in "-/"


def _parse_times(pd: Any, column: Any, path: Any) -> Any:
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    try:
        return pd.to_datetime(column).to_numpy()
    except (ValueError, TypeError):
        raise ValueError(
            f"{path}: the time column {column.name!r} does not read as dates or numbers "
            "(use e.g. 2024-01-31 or 2024-01-31 12:00)"
        ) from None


def _pandas_for(path: Any, what: str) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            f"{path} has {what}: reading it needs pandas (pip install 'nexttoken[pandas]'), "
            "or drop the time column"
        ) from None
    return pd
