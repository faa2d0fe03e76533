"""Both backends refuse NUL bytes and lone surrogates alike (a `DataError` naming the row
and the column, nothing written), and count events whose item is not in the catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import conform
from shelfwise.errors import DataError
from shelfwise.store import Store
from shelfwise.store.stats import store_stats

T = pd.Timestamp("2026-06-01 12:00:00")


def _events(rows: list[tuple[str, str | None, str]], query: str | None = None) -> pd.DataFrame:
    # object columns: pandas' own string columns cannot hold a lone surrogate at all
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "type"], dtype=object)
    frame["event_id"] = [f"e{i}" for i in range(len(frame))]
    frame["query"] = query
    frame["session_id"] = None
    frame["value"] = np.nan
    frame["timestamp"] = T
    return conform("events", frame)


def _items(titles: list[str]) -> pd.DataFrame:
    ids = [f"I{i}" for i in range(len(titles))]
    frame = pd.DataFrame({"item_id": ids, "title": titles}, dtype=object)
    for column, value in (("description", ""), ("category", ""), ("brand", "")):
        frame[column] = value
    frame["price"], frame["currency"], frame["in_stock"] = np.nan, "USD", True
    frame["attributes"], frame["created_at"] = "{}", T
    return conform("items", frame)


@pytest.mark.parametrize("bad", ["a\x00b", "a\ud800b"])
def test_bad_text_is_refused_alike(store: Store, bad: str) -> None:
    with pytest.raises(DataError, match=r"events: row 1 \(user_id 'u2'\): item_id contains"):
        store.ingest(events=_events([("u1", "I0", "view"), ("u2", bad, "view")]))
    with pytest.raises(DataError, match=r"items: row 2 \(item_id 'I2'\): title contains"):
        store.ingest(items=_items(["ok", "fine", bad]), events=_events([("u1", "I0", "view")]))
    frame = _items(["ok"])
    frame["attributes"] = [{"k": ["x", bad]}]  # written as JSON text with escapes
    with pytest.raises(
        DataError, match=r"row 0 \(item_id 'I0'\): attributes value k\[1\] contains"
    ):
        store.ingest(items=frame)
    assert store.counts() == {"items": 0, "users": 0, "events": 0}  # nothing half written


def test_events_for_unknown_items_are_kept_and_counted(store: Store) -> None:
    store.ingest(items=_items(["Mill", "Knife"]))  # I0, I1
    rows = [("u1", "I0", "view"), ("u1", "NEW", "view"), ("u2", "NEW", "click")]
    rows.append(("u2", None, "search"))
    store.ingest(events=_events(rows, query="mill"))
    assert store.counts()["events"] == 4
    assert store.unknown_item_events() == 2
    assert store_stats(store)["unknown_item_events"] == 2
    store.delete_item("I0")
    assert store.unknown_item_events() == 3
