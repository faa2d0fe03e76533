"""Time helpers: known answers for naive UTC and epoch microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.time import (
    MICROS_PER_DAY,
    micros,
    naive_utc,
    naive_utc_column,
    point_micros,
)
from shelfwise.errors import ConfigError, DataError

PLUS_TWO = timezone(timedelta(hours=2))


def test_naive_utc_converts_aware_and_keeps_naive() -> None:
    assert naive_utc(datetime(2024, 3, 1, 12, tzinfo=PLUS_TWO)) == pd.Timestamp("2024-03-01 10:00")
    assert naive_utc("2024-03-01T12:00:00+02:00") == pd.Timestamp("2024-03-01 10:00")
    assert naive_utc("2024-03-01 12:00") == pd.Timestamp("2024-03-01 12:00")
    assert naive_utc(datetime(2024, 3, 1, 12, tzinfo=UTC)).tzinfo is None


def test_point_micros_known_values_and_errors() -> None:
    assert point_micros("1970-01-02", "cutoff") == MICROS_PER_DAY == 86_400_000_000
    assert point_micros("1970-01-01T01:00:00+01:00", "cutoff") == 0
    with pytest.raises(ConfigError, match="cutoff 'soon' is not a timestamp"):
        point_micros("soon", "cutoff")
    with pytest.raises(ConfigError, match="now is missing"):
        point_micros(pd.NaT, "now")


def test_micros_of_a_column_naive_or_aware() -> None:
    naive = pd.Series(pd.to_datetime(["1970-01-01 00:00:01", "1970-01-02 00:00:00"]))
    assert micros(naive).tolist() == [1_000_000, MICROS_PER_DAY]
    aware = naive.dt.tz_localize("UTC").dt.tz_convert(PLUS_TWO)
    assert micros(aware).tolist() == [1_000_000, MICROS_PER_DAY]
    assert micros(pd.Series(["1970-01-01T00:00:00.000002"])).dtype == np.int64


def test_micros_names_missing_rows_and_the_fix() -> None:
    column = pd.Series([pd.Timestamp("2024-01-01"), pd.NaT, pd.NaT])
    with pytest.raises(DataError, match="2 rows have no timestamp; time decay needs one"):
        micros(column, fix="time decay needs one")


def test_naive_utc_column() -> None:
    column = pd.Series(["2024-03-01T12:00:00+02:00", "2024-03-01T12:00:00+00:00", None])
    out = naive_utc_column(column)
    assert out.dtype == "datetime64[us]"
    assert out.iloc[:2].tolist() == [
        pd.Timestamp("2024-03-01 10:00"),
        pd.Timestamp("2024-03-01 12:00"),
    ]
    assert pd.isna(out.iloc[2])
