"""Canonical column layouts for bulk data: what loaders produce and stores consume.

Records are validated one at a time with the pydantic models in `schemas`; bulk data moves
as pandas DataFrames in exactly these layouts. Timestamps in frames are naive UTC
(`datetime64[us]`), attributes are JSON text, missing numbers are NaN, missing strings None.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.data.time import naive_utc_column

if TYPE_CHECKING:
    import pandas as pd

    from shelfwise.data.schemas import Event, Item, User

ITEM_COLUMNS: tuple[str, ...] = (
    "item_id",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "in_stock",
    "attributes",
    "created_at",
)
USER_COLUMNS: tuple[str, ...] = ("user_id", "attributes", "created_at")
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "user_id",
    "item_id",
    "type",
    "value",
    "query",
    "session_id",
    "timestamp",
    "request_id",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ITEM_COLUMNS,
    "users": USER_COLUMNS,
    "events": EVENT_COLUMNS,
}
_TIME_COLUMNS = {"created_at", "timestamp"}
#: Columns a frame may lack: they are added empty (None) by `conform`, so loaders and
#: frames written before the column existed keep working.
_OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {"events": ("request_id",)}


def _row(record: Item | User | Event) -> dict[str, Any]:
    row = record.model_dump()
    if "attributes" in row:
        row["attributes"] = json.dumps(row["attributes"], sort_keys=True, default=str)
    return row


def records_to_frame(kind: str, records: Iterable[Item | User | Event]) -> pd.DataFrame:
    """Validated records -> a frame in the canonical layout of `kind`."""
    import pandas as pd

    columns = COLUMNS[kind]
    frame = pd.DataFrame([_row(r) for r in records], columns=list(columns))
    return conform(kind, frame)


def conform(kind: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Cast a frame with the canonical columns to the canonical dtypes (a copy)."""
    import pandas as pd

    columns = COLUMNS[kind]
    absent = [c for c in _OPTIONAL_COLUMNS.get(kind, ()) if c not in frame.columns]
    if absent:
        frame = frame.assign(**dict.fromkeys(absent, None))
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{kind} frame lacks columns {missing}")
    out = frame.loc[:, list(columns)].copy()
    for col in columns:
        if col in _TIME_COLUMNS:
            out[col] = naive_utc_column(out[col])
        elif col in ("price", "value"):
            out[col] = pd.to_numeric(out[col], errors="raise").astype("float64")
        elif col == "in_stock":
            out[col] = out[col].astype(bool)
        else:
            series = out[col].astype(object)
            out[col] = series.where(series.notna(), None)
    return out.reset_index(drop=True)


def empty_frame(kind: str) -> pd.DataFrame:
    """A frame with no rows in the canonical layout of `kind`."""
    import pandas as pd

    frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in COLUMNS[kind]})
    return conform(kind, frame)


def parse_attributes(value: Any) -> dict[str, Any]:
    """Attributes as stored (JSON text, a dict from PostgreSQL, or None) -> a dict."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return {}
    if isinstance(value, dict):
        return value
    parsed = json.loads(value)
    return parsed if isinstance(parsed, dict) else {}
