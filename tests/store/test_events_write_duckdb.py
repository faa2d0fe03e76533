"""The DuckDB group commit's shortcuts: event ids inserted without a lookup (a stored one
sends the group through the lookup path), and the users the writer knows (an erasure drops
the id, through any store object on the file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shelfwise.data.schemas import Event
from shelfwise.store import open_store
from shelfwise.store.duckdb_store import DuckDBStore

T0 = datetime.now(UTC) - timedelta(hours=1)


def _event(event_id: str | None, user_id: str, minutes: int = 0) -> Event:
    return Event(
        event_id=event_id,
        user_id=user_id,
        item_id="K1",
        type="view",
        timestamp=T0 + timedelta(minutes=minutes),
    )


@pytest.fixture()
def url(tmp_path: Path) -> str:
    return f"duckdb:///{tmp_path / 'e.duckdb'}"


def test_a_stored_event_id_in_a_trusted_group_is_a_duplicate_and_the_rest_is_stored(
    url: str,
) -> None:
    with open_store(url) as store:
        assert isinstance(store, DuckDBStore)
        first = store.append_event_records([_event("a", "u1"), _event("b", "u2")], [2])
        assert [(r.events, r.duplicate_events, r.users) for r in first] == [(2, 0, 2)]
        # "a" is stored: the INSERT without the lookup is refused, the group goes again
        reports = store.append_event_records(
            [_event("c", "u3"), _event("a", "u1"), _event(None, "u4"), _event("d", "u1")],
            [1, 1, 2],
        )
        assert [(r.events, r.duplicate_events, r.users) for r in reports] == [
            (1, 0, 1),
            (0, 1, 0),
            (2, 0, 1),
        ]
        events = store.events().sort_values("seq")
        assert events["event_id"].tolist()[:5] == ["a", "b", "c", None, "d"]
        assert events["seq"].tolist() == list(range(1, 6))  # no gap from the refused INSERT
        assert store.counts()["users"] == 4


def test_known_users_are_not_created_twice_and_an_erased_one_comes_back(url: str) -> None:
    with open_store(url) as writer, open_store(url) as other:
        report = writer.append_event_records([_event("e1", "u1", 5), _event("e2", "u1", 1)], [2])
        assert report[0].users == 1
        assert writer.append_event_records([_event("e3", "u1")], [1])[0].users == 0
        # erased through the other object on the same file: the writer forgets the user
        assert other.erase_user("u1")["users"] == 1
        again = writer.append_event_records([_event("e4", "u1", 7)], [1])
        assert [(r.events, r.users) for r in again] == [(1, 1)]
        users = writer.users()
        assert users["user_id"].tolist() == ["u1"]
        created = users["created_at"].iloc[0]
        assert created.replace(tzinfo=None) == (T0 + timedelta(minutes=7)).replace(tzinfo=None)


def test_users_stored_before_the_store_opened_are_known(url: str) -> None:
    with open_store(url) as store:
        store.append_event_records([_event("x1", "old")], [1])
    with open_store(url) as store:  # a fresh object reads the stored users once
        assert store.append_event_records([_event("x2", "old")], [1])[0].users == 0
        assert store.counts()["users"] == 1
