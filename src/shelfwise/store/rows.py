"""What a write does to rows before any SQL runs, shared by both backends: the logical
column types of the staging tables, Arrow tables from frames, canonical JSON, and the checks
and normalisation of items, users and events (NUL bytes and lone surrogates refused alike on
DuckDB and PostgreSQL)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shelfwise.data.frames import EVENT_COLUMNS, conform
from shelfwise.data.schemas import poison_problem, text_problem
from shelfwise.data.time import naive_utc as to_naive_utc
from shelfwise.errors import DataError

if TYPE_CHECKING:
    from shelfwise.data.schemas import Event

# Logical column types of staging tables; each backend maps them to its own types.
TEXT, DOUBLE, BOOL, TIMESTAMP, BIGINT = "text", "double", "bool", "timestamp", "bigint"
ARROW_TYPES: dict[str, pa.DataType] = {
    TEXT: pa.string(),
    DOUBLE: pa.float64(),
    BOOL: pa.bool_(),
    TIMESTAMP: pa.timestamp("us"),
    BIGINT: pa.int64(),
}
ITEM_TYPES: dict[str, str] = {
    "item_id": TEXT,
    "title": TEXT,
    "description": TEXT,
    "category": TEXT,
    "brand": TEXT,
    "price": DOUBLE,
    "currency": TEXT,
    "in_stock": BOOL,
    "attributes": TEXT,
    "created_at": TIMESTAMP,
}
USER_TYPES: dict[str, str] = {"user_id": TEXT, "attributes": TEXT, "created_at": TIMESTAMP}
EVENT_TYPES: dict[str, str] = {
    "event_id": TEXT,
    "user_id": TEXT,
    "item_id": TEXT,
    "type": TEXT,
    "value": DOUBLE,
    "query": TEXT,
    "session_id": TEXT,
    "timestamp": TIMESTAMP,
    "request_id": TEXT,
    "seq": BIGINT,
}


def quote(column: str) -> str:
    """A column name quoted for SQL (`timestamp`, `type` and `value` are keywords)."""
    return f'"{column}"'


def naive_utc(value: datetime | pd.Timestamp | str) -> datetime:
    """A datetime (aware, naive = UTC, or ISO text) as a naive UTC `datetime`."""
    return to_naive_utc(value).to_pydatetime()


def time_window(
    placeholder: str, since: datetime | None, until: datetime | None
) -> tuple[list[str], list[Any]]:
    """WHERE clauses and their parameters for `"timestamp"` in [since, until) (either end
    None: open), with the bounds as naive UTC."""
    ts = quote("timestamp")
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append(f"{ts} >= {placeholder}")
        params.append(naive_utc(since))
    if until is not None:
        where.append(f"{ts} < {placeholder}")
        params.append(naive_utc(until))
    return where, params


def canonical_json(value: Any) -> str:
    """Attributes (JSON text, a dict or missing) as canonical JSON text (sorted keys)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "{}"
    if isinstance(value, str):
        value = json.loads(value) if value.strip() else {}
    return json.dumps(value, sort_keys=True, default=str)


def as_text(series: pd.Series) -> pd.Series:
    """Strings stay strings, missing values become None, anything else is `str()`-ed."""
    kind = pd.api.types.infer_dtype(series, skipna=True)
    values = series.astype(object)
    values = values.where(values.notna(), None)
    if kind in ("string", "empty"):
        return values
    return values.map(lambda v: v if v is None or isinstance(v, str) else str(v))


def arrow_table(frame: pd.DataFrame, types: Mapping[str, str]) -> pa.Table:
    """A frame as an Arrow table with exactly the given logical column types."""
    arrays = []
    for column, kind in types.items():
        series = frame[column]
        if kind == TEXT:
            series = as_text(series)
        arrays.append(pa.array(series, type=ARROW_TYPES[kind], from_pandas=True))
    return pa.Table.from_arrays(arrays, names=list(types))


_JSON_ESCAPES = re.compile(r"\\u(0000|d[89a-f][0-9a-f]{2})", re.IGNORECASE)


#: Columns as plain lists (one list per column, equally long): how the request path hands
#: a few events to the store without building a DataFrame.
Columns = dict[str, list[Any]]


def _column(frame: pd.DataFrame | Columns, name: str) -> list[Any]:
    return frame[name].tolist() if isinstance(frame, pd.DataFrame) else list(frame[name])


def refuse_bad_text(kind: str, frame: pd.DataFrame | Columns, types: Mapping[str, str]) -> None:
    """`DataError` naming the row and the column of the first text with a NUL byte or a
    lone surrogate: PostgreSQL cannot store them (its COPY fails deep inside) and DuckDB
    would, so both backends refuse them alike, before anything is written. `frame` is a
    DataFrame or `Columns`."""
    if isinstance(frame, pd.DataFrame):
        if frame.empty:
            return
    elif not frame or not next(iter(frame.values())):
        return
    for column, kind_of in types.items():
        if kind_of != TEXT or column not in frame:
            continue
        cells = _column(frame, column)
        values = [v for v in cells if isinstance(v, str)]
        joined = "\x01".join(values)
        escaped = column == "attributes" and _JSON_ESCAPES.search(joined) is not None
        if not values or (text_problem(joined) is None and not escaped):
            continue  # the common case: one scan of the whole column
        for row, value in enumerate(cells):
            problem = text_problem(value) if isinstance(value, str) else None
            if problem is None and column == "attributes" and isinstance(value, str):
                # JSON text carries them as escapes, which PostgreSQL's jsonb refuses
                problem = poison_problem(json.loads(value)) if _JSON_ESCAPES.search(value) else None
                problem = f"value {problem}" if problem else None
            if problem:
                key = "item_id" if kind == "items" else "user_id"
                who = f" ({key} {_column(frame, key)[row]!a})" if key in frame else ""
                raise DataError(f"{kind}: row {row}{who}: {column} {problem}; nothing was written")


def _text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _naive(value: Any) -> datetime:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"{value!r} is not a datetime")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def event_columns(records: Sequence[Event]) -> Columns:
    """Validated events as `Columns` (EVENT_COLUMNS: text or None, value a float or None,
    timestamp a naive UTC datetime), without pandas: the request path converts a few events
    per call, where a DataFrame costs more than the database. `DataError` naming the row
    for what the store cannot hold (a record built without validation)."""
    cols: Columns = {c: [] for c in EVENT_COLUMNS}
    text = ("event_id", "user_id", "item_id", "type", "query", "session_id", "request_id")
    for row, event in enumerate(records):
        for name in text:
            cols[name].append(_text_or_none(getattr(event, name)))
        if cols["user_id"][-1] is None:
            raise DataError(f"events: row {row}: user_id is required; nothing was written")
        value = event.value
        try:
            number = None if value is None else float(value)
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"events: row {row}: value {value!r} is not a number; nothing was written"
            ) from exc
        if number is not None and not np.isfinite(number):
            raise DataError(f"events: row {row}: value must be finite; nothing was written")
        cols["value"].append(number)
        try:
            cols["timestamp"].append(_naive(event.timestamp))
        except TypeError as exc:
            raise DataError(f"events: row {row}: timestamp {exc}; nothing was written") from exc
    return cols


def frame_event_columns(frame: pd.DataFrame) -> Columns:
    """A conformed events frame (`prepare_event_rows`; with or without `seq`) as `Columns`."""
    cols: Columns = {}
    for name in (*EVENT_COLUMNS, "seq"):
        if name not in frame.columns:
            continue
        kind = EVENT_TYPES[name]
        series = frame[name]
        if kind == TIMESTAMP:
            cols[name] = [None if pd.isna(v) else _naive(v) for v in series]
        elif kind == DOUBLE:
            cols[name] = [None if np.isnan(v) else float(v) for v in series]
        elif kind == BIGINT:
            cols[name] = [int(v) for v in series]
        else:
            cols[name] = as_text(series).tolist()
    return cols


def prepare_upsert(kind: str, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Conform, keep the last row per id, canonicalise attributes."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    try:
        out = conform(kind, frame)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{kind}: {exc}") from exc
    key = "item_id" if kind == "items" else "user_id"
    out[key] = as_text(out[key])
    out = out.drop_duplicates(subset=[key], keep="last").reset_index(drop=True)
    attributes = []
    for ident, value in zip(out[key], out["attributes"], strict=True):
        try:
            attributes.append(canonical_json(value))
        except (ValueError, TypeError) as exc:
            raise DataError(f"{kind}: attributes of {key} '{ident}' are not JSON: {exc}") from exc
    out["attributes"] = attributes
    return out


def prepare_event_rows(
    frame: pd.DataFrame | None, drop_repeats: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """Conform and (with `drop_repeats`) drop repeated event_ids within the batch (keep
    first).

    Returns (frame, bool mask over the input rows: True for the rows kept).
    """
    if frame is None or frame.empty:
        return pd.DataFrame(), np.zeros(0, dtype=bool)
    try:
        out = conform("events", frame)
    except (ValueError, TypeError) as exc:
        raise DataError(f"events: {exc}") from exc
    out["event_id"] = as_text(out["event_id"])
    repeated = (out["event_id"].notna() & out["event_id"].duplicated(keep="first")).to_numpy()
    if not drop_repeats:
        repeated = np.zeros(len(out), dtype=bool)
    elif repeated.any():
        out = out[~repeated].reset_index(drop=True)
    return out, ~repeated


def prepare_events(frame: pd.DataFrame | None) -> tuple[pd.DataFrame, int]:
    """Conform, drop repeated event_ids within the batch (keep first).

    Returns (frame, number of rows dropped).
    """
    out, kept = prepare_event_rows(frame)
    return out, int(len(kept) - kept.sum())
