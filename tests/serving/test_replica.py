"""The event replica over a real DuckDB store, and the history / sequence read from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import records_to_frame
from shelfwise.data.matrix import InteractionWeights
from shelfwise.data.schemas import Event
from shelfwise.data.vocab import Vocabulary
from shelfwise.serving import EventLog, event_sequence, weighted_history
from shelfwise.store import Store, open_store

from .conftest import B1, ITEMS, K1, K2, events

T0 = datetime(2026, 5, 1, 8)
VOCAB = Vocabulary(ITEMS["item_id"])


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    """An empty DuckDB store."""
    with open_store(f"duckdb:///{tmp_path / 'replica.duckdb'}") as opened:
        yield opened


def _append(store: Store, *specs: tuple[str, str, float]) -> None:
    store.append_events(
        records_to_frame(
            "events",
            [
                Event(user_id=u, item_id=i, type="view", timestamp=T0 + timedelta(minutes=m))
                for u, i, m in specs
            ],
        )
    )


def test_the_replica_follows_the_log_at_its_interval(store: Store) -> None:
    _append(store, ("a", "K1", 0), ("a", "K2", 1), ("a", "B1", 2), ("b", "H1", 0))
    log = EventLog(store, limit=2, tail_seconds=3600)
    assert log.events("a")["item_id"].tolist() == ["B1", "K2"]  # newest first, 2 kept
    assert set(log.events("a").columns) == {
        "item_id",
        "type",
        "value",
        "timestamp",
        "session_id",
        "seq",
    }
    _append(store, ("a", "H2", 3))
    assert log.events("a")["item_id"].tolist() == ["B1", "K2"]  # not due for a tail yet
    log.mark_dirty()  # this process wrote: the next read tails at once
    assert log.events("a")["item_id"].tolist() == ["H2", "B1"]
    _append(store, ("b", "H2", 5), ("b", "K1", 4))
    assert log.tail(force=True) == 2 and log.tail(force=True) == 0
    assert log.events("b")["item_id"].tolist() == ["H2", "K1"]  # by time, not arrival


def test_reload_and_drop(store: Store) -> None:
    _append(store, ("a", "K1", 0), ("b", "K2", 0))
    log = EventLog(store)
    with log.tail_lock:
        store.erase_user("a")
        log.drop("a")
    assert log.events("a").empty and log.events("b")["item_id"].tolist() == ["K2"]
    log.reload()
    assert log.events("a").empty and len(log.events("b")) == 1


def test_weighted_history_weighs_like_the_bundle() -> None:
    ev = events(
        ("K1", "purchase", None, 60),
        ("K1", "view", None, 50),
        ("K2", "view", None, 0),
        ("ZZ", "view", None, 0),  # not in the catalogue
        ("B1", "search", None, 0),  # search weighs 0
    )
    items, weights = weighted_history(ev, VOCAB, InteractionWeights())
    assert items.tolist() == [K1, K2] and weights.tolist() == [6.0, 1.0]  # 5 + 1, 1
    _, binary = weighted_history(ev, VOCAB, InteractionWeights(binary=True))
    assert binary.tolist() == [1.0, 1.0]
    _, decayed = weighted_history(ev, VOCAB, InteractionWeights(half_life_days=1 / 24))
    np.testing.assert_allclose(decayed, [5 + 2 ** (-10 / 60), 0.5], rtol=1e-6)
    empty = weighted_history(ev.iloc[0:0], VOCAB, InteractionWeights())
    assert empty[0].size == 0 and empty[1].size == 0


def test_weighted_history_reads_rating_values() -> None:
    ev = events(("K1", "rating", None, 1), ("K2", "rating", None, 0))
    ev["value"] = [4.0, 2.0]
    items, weights = weighted_history(ev, VOCAB, InteractionWeights())
    assert items.tolist() == [K1, K2] and weights.tolist() == [4.0, 2.0]
    items, _ = weighted_history(ev, VOCAB, InteractionWeights(min_value=3))
    assert items.tolist() == [K1]


def test_event_sequence_is_oldest_first_without_zero_weight_types() -> None:
    ev = events(
        ("K2", "view", None, 3),
        ("B1", "search", None, 2),
        ("K1", "view", None, 1),
        ("K2", "view", None, 0),
    )
    assert event_sequence(ev, VOCAB, InteractionWeights()).tolist() == [K2, K1, K2]
    assert event_sequence(ev, VOCAB, InteractionWeights(search=1.0)).tolist() == [K2, K1, B1, K2]
    assert event_sequence(pd.DataFrame(ev.iloc[0:0]), VOCAB, InteractionWeights()).size == 0


def test_a_snapshot_is_read_back_with_what_arrived_since(store: Store, tmp_path: Path) -> None:
    _append(store, ("a", "K1", 0), ("a", "K2", 1), ("b", "H1", 0))
    path = tmp_path / "replica.npz"
    first = EventLog(store, limit=2, snapshot=path)
    assert not first.from_snapshot  # nothing saved yet: read from the store
    _append(store, ("b", "H2", 5))
    assert first.events("b")["item_id"].tolist() == ["H2", "H1"]  # in the delta
    assert first.save(path)
    _append(store, ("a", "B1", 9))  # arrives after the snapshot
    second = EventLog(store, limit=2, snapshot=path)
    assert second.from_snapshot
    assert second.events("a")["item_id"].tolist() == ["B1", "K2"]
    assert second.events("b")["item_id"].tolist() == ["H2", "H1"]
    assert not EventLog(store, limit=3, snapshot=path).from_snapshot  # another limit


def test_a_snapshot_taken_before_an_erasure_is_not_used(store: Store, tmp_path: Path) -> None:
    _append(store, ("a", "K1", 0), ("b", "K2", 0))
    path = tmp_path / "replica.npz"
    assert EventLog(store, snapshot=path).save(path)
    store.erase_user("a")  # by another process: the snapshot still holds a's events
    log = EventLog(store, snapshot=path)
    assert not log.from_snapshot and log.events("a").empty
    with log.tail_lock:  # an erasure through this replica keeps it consistent
        before = store.erasure_count()
        store.erase_user("b")
        log.drop("b", before)
    assert log.save(path) and EventLog(store, snapshot=path).from_snapshot


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_snapshot_is_replaced_by_the_log(
    store: Store, tmp_path: Path, damage: str
) -> None:
    _append(store, ("a", "K1", 0), ("a", "K2", 1))
    path = tmp_path / "replica.npz"
    assert EventLog(store, snapshot=path).save(path)
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "empty": b"", "garbage": b"\x00not npz"}[damage]
    )
    _append(store, ("a", "B1", 9))
    log = EventLog(store, limit=2, snapshot=path)  # no crash: read from the store instead
    assert not log.from_snapshot
    assert log.events("a")["item_id"].tolist() == ["B1", "K2"]
