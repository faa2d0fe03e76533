"""Time helpers shared by the data layer: naive UTC, the convention of every frame and store.

Frames and stores hold timestamps as naive UTC (`datetime64[us]`). These helpers bring a
value or a column to that convention and to int64 microseconds since the Unix epoch (the
integer form splits and time decay compare): an aware time is converted to UTC and its zone
dropped, a naive time is read as UTC already.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MICROS_PER_DAY",
    "SECONDS_PER_DAY",
    "micros",
    "naive_utc",
    "naive_utc_column",
    "point_micros",
]

SECONDS_PER_DAY = 86_400
MICROS_PER_DAY = SECONDS_PER_DAY * 1_000_000


def naive_utc(value: datetime | pd.Timestamp | str | Any) -> pd.Timestamp:
    """One time (aware, naive = UTC, ISO text, ...) as a naive UTC `pd.Timestamp`."""
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def point_micros(value: datetime | pd.Timestamp | str, name: str) -> int:
    """One time as microseconds since the epoch (naive = UTC); `ConfigError` naming the
    parameter `name` when `value` is not a time."""
    import pandas as pd

    try:
        ts = naive_utc(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} {value!r} is not a timestamp (give ISO-8601 text)") from exc
    if ts is pd.NaT:
        raise ConfigError(f"{name} is missing (NaT); give a timestamp")
    return int((ts - pd.Timestamp(0)) // pd.Timedelta(1, "us"))


def naive_utc_column(values: pd.Series) -> pd.Series:
    """A timestamp column (aware, naive = UTC, text or datetimes) as naive UTC
    `datetime64[us]`; missing values stay NaT."""
    import pandas as pd

    ts = pd.to_datetime(values, utc=True)
    return ts.dt.tz_localize(None).astype("datetime64[us]")


def micros(values: pd.Series, fix: str = "drop or fix them") -> np.ndarray:
    """A timestamp column -> int64 microseconds since the epoch (naive UTC).

    A missing timestamp raises `DataError` with the row count and `fix`, what to do about it.
    """
    import pandas as pd

    ts = pd.to_datetime(values)
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    if ts.isna().any():
        raise DataError(f"{int(ts.isna().sum()):,} rows have no timestamp; {fix}")
    return np.asarray(ts.astype("datetime64[us]").to_numpy().view(np.int64))
