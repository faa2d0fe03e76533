"""The Store contract: one suite every backend must pass, on a fresh, empty store per test.

Needs pytest (a dev dependency, not a runtime one): the contract is a pytest test class.

How to run it on your own backend (a plugin author's path)::

    import pytest
    from shelfwise.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture()
        def store_url(self, tmp_path) -> str:
            return f"mystore:///{tmp_path / 'shop'}"  # a fresh, empty location per test

        @pytest.fixture()  # only when `shelfwise.store.open_store` does not know the URL
        def store_opener(self) -> Callable[[str], Store]:
            return MyStore.open

`store_url` names a location that can be opened, closed and reopened; `store_opener`
(default: `shelfwise.store.open_store`) opens it. The contract's `store` fixture opens it
for each test and closes it afterwards. Every test asserts known answers; `item`, `user`,
`event` and the `*_frame` helpers build the rows (times count in minutes from `T0`).
tests/store/test_store_contract.py runs the contract against DuckDB and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, records_to_frame
from shelfwise.data.schemas import Event, Item, User
from shelfwise.errors import DataError, StoreError
from shelfwise.store import IngestReport, Store, open_store
from shelfwise.testing.measure import MeasureContract

__all__ = [
    "T0",
    "StoreContract",
    "at",
    "event",
    "events_frame",
    "item",
    "items_frame",
    "parsed",
    "user",
    "users_frame",
]

T0 = datetime(2026, 1, 1, 12, 0, 0)
"""The contract's reference time (naive UTC); `minutes` in the helpers count from it."""


def item(item_id: str, **fields: Any) -> Item:
    """An item with a default title and `created_at = T0`."""
    fields.setdefault("title", f"Item {item_id}")
    fields.setdefault("created_at", T0)
    return Item(item_id=item_id, **fields)


def user(user_id: str, **fields: Any) -> User:
    """A user created at T0."""
    fields.setdefault("created_at", T0)
    return User(user_id=user_id, **fields)


def event(
    user_id: str,
    item_id: str | None = None,
    kind: str = "view",
    minutes: float = 0,
    event_id: str | None = None,
    **fields: Any,
) -> Event:
    """An event of `kind` at `T0 + minutes` (`kind` is validated as an event type)."""
    return Event.model_validate(
        {
            "event_id": event_id,
            "user_id": user_id,
            "item_id": item_id,
            "type": kind,
            "timestamp": T0 + timedelta(minutes=minutes),
            **fields,
        }
    )


def items_frame(*records: Item) -> pd.DataFrame:
    """Items as a frame in the canonical layout."""
    return records_to_frame("items", records)


def users_frame(*records: User) -> pd.DataFrame:
    """Users as a frame in the canonical layout."""
    return records_to_frame("users", records)


def events_frame(*records: Event) -> pd.DataFrame:
    """Events as a frame in the canonical layout."""
    return records_to_frame("events", records)


def erased(counts: dict[str, int]) -> dict[str, int]:
    """The events and users entries of `erase_user`'s counts (stores may count more tables,
    impressions for one)."""
    return {k: v for k, v in counts.items() if k in ("events", "users")}


def parsed(attributes: object) -> Any:
    """A stored attributes value parsed from its JSON text (a non-text value fails)."""
    assert isinstance(attributes, str), f"attributes must come back as JSON text: {attributes!r}"
    return json.loads(attributes)


def at(minutes: float) -> pd.Timestamp:
    """`T0 + minutes` as the pandas timestamp a store returns."""
    return pd.Timestamp(T0 + timedelta(minutes=minutes))


class StoreContract(MeasureContract):
    """Tests every store backend must pass; subclasses provide the `store_url` fixture (the
    URL of a fresh, empty store location per test)."""

    @pytest.fixture()
    def store_opener(self) -> Callable[[str], Store]:
        """Opens a store by URL: `shelfwise.store.open_store` (DuckDB and PostgreSQL)."""
        return open_store

    @pytest.fixture()
    def store(self, store_url: str, store_opener: Callable[[str], Store]) -> Iterator[Store]:
        """A fresh, empty, open store at `store_url`; closed after the test."""
        opened = store_opener(store_url)
        try:
            yield opened
        finally:
            opened.close()

    # -- a fresh store ---------------------------------------------------------------------------

    def test_new_store_is_empty(self, store: Store) -> None:
        """A new store has no rows and the documented columns and dtypes."""
        assert store.counts() == {"items": 0, "users": 0, "events": 0}
        assert store.event_type_counts() == {}
        assert list(store.items().columns) == list(ITEM_COLUMNS)
        assert list(store.users().columns) == list(USER_COLUMNS)
        events = store.events()
        assert list(events.columns) == [*EVENT_COLUMNS, "seq"]
        assert len(events) == 0 and events["seq"].dtype == np.int64
        assert len(store.interactions()) == 0
        assert store.ingest() == IngestReport()

    # -- items -----------------------------------------------------------------------------------

    def test_item_upsert_is_idempotent(self, store: Store) -> None:
        """Upserting the same items twice changes nothing, not even the fingerprint."""
        frame = items_frame(item("A1", price=10.0), item("A2", brand="Acme"), item("B1"))
        assert store.upsert_items(frame) == 3
        first, fingerprint = store.items(), store.fingerprint()
        assert store.upsert_items(frame) == 3
        assert store.counts()["items"] == 3
        pd.testing.assert_frame_equal(store.items(), first)
        assert store.fingerprint() == fingerprint  # nothing changed, so the contents did not
        assert first["item_id"].tolist() == ["A1", "A2", "B1"]
        assert first.loc[1, "brand"] == "Acme" and first.loc[0, "price"] == 10.0

    def test_upsert_replaces_fields_and_last_row_in_a_batch_wins(self, store: Store) -> None:
        """An upsert replaces every field; of repeated ids in a batch the last row wins."""
        store.upsert_items(items_frame(item("A1", title="Old", price=5.0), item("B1", title="Bee")))
        batch = items_frame(
            item("A1", title="Middle", price=6.0),
            item("C1", title="Sea"),
            item("A1", title="New", price=7.0, in_stock=False, category="Home > Knives"),
        )
        report = store.ingest(items=batch)
        assert report.items == 2  # A1 once, C1
        got = store.items().set_index("item_id")
        assert got.index.tolist() == ["A1", "B1", "C1"]
        assert got.loc["A1", "title"] == "New"
        assert got.loc["A1", "price"] == 7.0
        assert not got.loc["A1", "in_stock"]
        assert got.loc["A1", "category"] == "Home > Knives"
        assert got.loc["B1", "title"] == "Bee"  # untouched
        assert got.loc["C1", "title"] == "Sea"

    def test_attributes_round_trip_nested_json(self, store: Store) -> None:
        """Nested JSON attributes come back as canonical (sorted-key) JSON text."""
        attrs = {"size": {"w": 10, "h": 2.5}, "tags": ["a", "b"], "new": True, "note": None}
        store.upsert_items(items_frame(item("A1", attributes=attrs), item("A2")))
        got = store.items()
        assert parsed(got.loc[0, "attributes"]) == attrs
        assert got.loc[0, "attributes"] == json.dumps(attrs, sort_keys=True)  # same text everywhere
        assert got.loc[1, "attributes"] == "{}"

    def test_attributes_given_as_unsorted_text_come_back_canonical(self, store: Store) -> None:
        """Attributes given as JSON text are stored canonically."""
        frame = items_frame(item("A1"))
        frame.loc[0, "attributes"] = '{"b":1,  "a":{"d":[1,2],"c":null}}'
        store.upsert_items(frame)
        assert store.items().loc[0, "attributes"] == '{"a": {"c": null, "d": [1, 2]}, "b": 1}'

    def test_bad_attributes_json_is_a_data_error(self, store: Store) -> None:
        """Invalid attribute JSON is a DataError naming the item, and nothing is written."""
        frame = items_frame(item("A1"))
        frame.loc[0, "attributes"] = "{not json"
        with pytest.raises(DataError, match="A1"):
            store.upsert_items(frame)
        assert store.counts()["items"] == 0

    def test_price_none_and_in_stock_false_round_trip(self, store: Store) -> None:
        """A missing price comes back as NaN, prices as exact doubles, in_stock as bool."""
        store.upsert_items(
            items_frame(item("A1", price=None, in_stock=False), item("A2", price=0.1))
        )
        got = store.items()
        assert np.isnan(got["price"].to_numpy()[0])
        assert not got.loc[0, "in_stock"] and got.loc[1, "in_stock"]
        assert got.loc[1, "price"] == 0.1  # exact double round trip
        assert got["price"].dtype == np.float64 and got["in_stock"].dtype == bool

    def test_items_by_id_returns_the_known_ones_in_id_order(self, store: Store) -> None:
        """`items(ids)` returns the known ids in id order; a str is one id."""
        store.upsert_items(items_frame(item("b"), item("a"), item("c")))
        assert store.items(["c", "a", "missing"])["item_id"].tolist() == ["a", "c"]
        assert store.items([]).empty
        assert store.items(["missing"]).empty
        assert store.items("c")["item_id"].tolist() == ["c"]  # a single id, not its characters

    def test_delete_item_keeps_its_events(self, store: Store) -> None:
        """Deleting an item keeps its events; a second delete reports False."""
        store.ingest(
            items=items_frame(item("A1"), item("A2")), events=events_frame(event("u1", "A1"))
        )
        assert store.delete_item("A1") is True
        assert store.items()["item_id"].tolist() == ["A2"]
        assert store.delete_item("A1") is False
        assert store.counts() == {"items": 1, "users": 1, "events": 1}

    def test_empty_and_missing_string_fields_stay_distinct(self, store: Store) -> None:
        """An empty string and a missing value stay distinct."""
        frame = items_frame(item("A1", brand=""), item("A2", brand="Acme"))
        frame.loc[1, "description"] = None
        store.upsert_items(frame)
        got = store.items()
        assert got.loc[0, "brand"] == ""
        assert got.loc[1, "description"] is None

    def test_missing_columns_are_a_data_error(self, store: Store) -> None:
        """A frame without the required columns is a DataError."""
        with pytest.raises(DataError, match="lacks columns"):
            store.ingest(items=pd.DataFrame({"item_id": ["A1"]}))

    # -- events ----------------------------------------------------------------------------------

    def test_append_events_counts_new_rows_and_skips_duplicate_ids(self, store: Store) -> None:
        """Events with a stored or repeated event_id are skipped and counted as duplicates."""
        assert store.append_events(events_frame(event("u1", "A1", event_id="e1"))) == 1
        report = store.ingest(
            events=events_frame(
                event("u1", "A1", event_id="e1", minutes=5),  # already stored
                event("u1", "A2", event_id="e2", minutes=1),
                event("u2", "A3", event_id="e2", minutes=2),  # repeated in the batch
                event("u2", "A3", event_id="e3", minutes=3),
            )
        )
        assert (report.events, report.duplicate_events) == (2, 2)
        got = store.events()
        assert got["event_id"].tolist() == ["e1", "e2", "e3"]
        e2 = got[got["event_id"] == "e2"].iloc[0]
        assert (e2["user_id"], e2["item_id"], e2["timestamp"]) == ("u1", "A2", at(1))  # first kept
        assert got.loc[0, "timestamp"] == at(0)  # the stored e1 was not replaced

    def test_append_event_batches_reports_each_batch(self, store: Store) -> None:
        """Several batches in one call: one report each, duplicates charged to the batch
        that repeats an id (stored before, or in an earlier batch), seq in batch order."""
        assert store.append_events(events_frame(event("u1", "A1", event_id="old"))) == 1
        frame = events_frame(
            event("u1", "A1", event_id="b0-1"),  # batch 0: 2 rows
            event("u2", "A2", event_id="old"),  # stored already
            event("u3", "A3", event_id="b0-1"),  # batch 1: 3 rows; repeats batch 0
            event("u3", "A3"),  # no id: always stored
            event("u3", "A4", event_id="b1-1"),
            event("u4", "A1", event_id="old"),  # batch 2: 1 row, all duplicate
        )
        reports = store.append_event_batches(frame, [2, 3, 1])
        assert [(r.events, r.duplicate_events) for r in reports] == [(1, 1), (2, 1), (0, 1)]
        assert [r.users for r in reports] == [0, 1, 0]  # u3 is new; u2, u4 had no new event
        got = store.events().sort_values("seq")
        assert got["seq"].tolist() == [1, 2, 3, 4]
        assert got["event_id"].tolist() == ["old", "b0-1", None, "b1-1"]
        assert got["user_id"].tolist() == ["u1", "u1", "u3", "u3"]
        assert store.append_event_batches(frame.iloc[:0], [0, 0]) == [IngestReport()] * 2
        with pytest.raises(ValueError, match="do not add up"):
            store.append_event_batches(frame, [2, 2])
        assert store.counts()["events"] == 4

    def test_append_event_records_matches_the_frame_path(self, store: Store) -> None:
        """Validated records in several batches (the request path): the same reports as
        `append_event_batches`, every field stored as given (times as naive UTC), on each
        insert path (a few rows, and more than fit one VALUES list)."""
        assert store.append_events(events_frame(event("u1", "A1", event_id="old"))) == 1
        cest = timezone(timedelta(hours=2))
        records = [
            event("u1", "A1", event_id="r0-1", kind="rating", value=4.5, session_id="s1"),
            event("u2", "A2", event_id="old"),  # stored already
            event("u3", None, kind="search", query="chef knife", event_id="r1-1"),
            event("u3", "A3"),  # no id: always stored
            event("u1", "A1", event_id="r0-1"),  # repeats batch 0
        ]
        local = Event.model_validate(
            {"user_id": "u5", "item_id": "A4", "type": "view", "event_id": "tz",
             "request_id": "rq-9", "timestamp": datetime(2024, 1, 1, 12, 0, tzinfo=cest)}
        )  # fmt: skip
        reports = store.append_event_records([*records, local], [2, 3, 1])
        assert [(r.events, r.duplicate_events) for r in reports] == [(1, 1), (2, 1), (1, 0)]
        assert [r.users for r in reports] == [0, 1, 1]  # u3 and u5 are new
        got = store.events().sort_values("seq").reset_index(drop=True)
        assert got["event_id"].tolist() == ["old", "r0-1", "r1-1", None, "tz"]
        assert got["seq"].tolist() == [1, 2, 3, 4, 5]
        rating = got.iloc[1]
        assert (rating["type"], rating["value"], rating["session_id"]) == ("rating", 4.5, "s1")
        assert (got.loc[2, "query"], got.loc[2, "item_id"]) == ("chef knife", None)
        assert got.loc[4, "timestamp"] == pd.Timestamp("2024-01-01 10:00:00")
        assert got.loc[4, "request_id"] == "rq-9" and got.loc[1, "request_id"] is None
        many = [event(f"m{i % 3}", f"A{i}", event_id=f"m{i}", minutes=i) for i in range(30)]
        (report,) = store.append_event_records(many, [30])
        assert (report.events, report.users) == (30, 3)
        back = store.events(user_id="m1")
        assert back["item_id"].tolist() == [f"A{i}" for i in range(1, 30, 3)]
        assert back["timestamp"].tolist() == [at(i) for i in range(1, 30, 3)]
        assert store.users().set_index("user_id").loc["m2", "created_at"] == at(2)
        assert store.append_event_records(many[:3], [3])[0].duplicate_events == 3
        with pytest.raises(ValueError, match="do not add up"):
            store.append_event_records(many, [2])

    def test_append_event_records_of_a_large_group(self, store: Store) -> None:
        """A group larger than one array insert takes (the writer groups up to 5000 events)
        goes through a staging table, with the same reports and stored rows."""
        n = 2500
        records = [
            event(f"g{i % 40}", f"A{i % 7}", event_id=f"g{i}", minutes=i, value=None)
            for i in range(n)
        ]
        records.append(event("g1", "A1", event_id="g5"))  # repeats an id of the first batch
        reports = store.append_event_records(records, [1000, n - 1000, 1])
        assert [(r.events, r.duplicate_events) for r in reports] == [
            (1000, 0),
            (n - 1000, 0),
            (0, 1),
        ]
        assert sum(r.users for r in reports) == 40
        got = store.events(user_id="g3")
        assert got["item_id"].tolist() == [f"A{i % 7}" for i in range(3, n, 40)]
        assert got["timestamp"].tolist() == [at(i) for i in range(3, n, 40)]
        assert got["value"].isna().all() and store.last_seq() == n

    def test_append_event_records_refuses_what_validation_would_have(self, store: Store) -> None:
        """Records built without validation: a NUL byte or a value that is not a number is a
        `DataError` naming the row, and nothing of the call is written."""
        good = event("u1", "A1", event_id="g")
        nul = Event.model_construct(
            event_id="n", user_id="u1", item_id="A\x001", type="view", value=None,
            query=None, session_id=None, timestamp=T0,
        )  # fmt: skip
        with pytest.raises(DataError, match=r"row 1.*item_id contains a NUL byte"):
            store.append_event_records([good, nul], [1, 1])
        words = Event.model_construct(
            event_id="w", user_id="u1", item_id="A1", type="rating", value="lots",
            query=None, session_id=None, timestamp=T0,
        )  # fmt: skip
        with pytest.raises(DataError, match="row 1: value 'lots' is not a number"):
            store.append_event_records([good, words], [2])
        assert store.counts()["events"] == 0

    def test_events_without_id_are_always_appended(self, store: Store) -> None:
        """Events without an event_id are never deduplicated."""
        frame = events_frame(event("u1", "A1"), event("u1", "A1"))
        assert store.append_events(frame) == 2
        assert store.append_events(frame) == 2
        assert store.counts()["events"] == 4
        assert store.events()["event_id"].isna().all()

    def test_events_are_ordered_by_timestamp_then_insertion(self, store: Store) -> None:
        """Events come back by timestamp, ties in insertion order (seq)."""
        store.append_events(
            events_frame(
                event("u1", "A1", minutes=10, event_id="late"),
                event("u1", "A1", minutes=0, event_id="tie-1"),
                event("u1", "A2", minutes=0, event_id="tie-2"),
            )
        )
        store.append_events(
            events_frame(
                event("u2", "A3", minutes=0, event_id="tie-3"),
                event("u2", "A3", minutes=-5, event_id="first"),
            )
        )
        got = store.events()
        assert got["event_id"].tolist() == ["first", "tie-1", "tie-2", "tie-3", "late"]
        seq = dict(zip(got["event_id"], got["seq"], strict=True))
        assert seq["late"] < seq["tie-1"] < seq["tie-2"] < seq["tie-3"] < seq["first"]
        newest = store.events(newest_first=True)["event_id"].tolist()
        assert newest == ["late", "tie-3", "tie-2", "tie-1", "first"]

    def test_event_filters(self, store: Store) -> None:
        """since (inclusive), until (exclusive), types, user_id and limit filter events."""
        store.append_events(
            events_frame(
                event("u1", "A1", "view", 0, "e0"),
                event("u1", "A1", "click", 10, "e1"),
                event("u2", None, "search", 20, "e2", query="knife"),
                event("u2", "A2", "purchase", 30, "e3", value=9.5),
                event("u1", "A2", "view", 40, "e4"),
            )
        )

        def ids(**kwargs: Any) -> list[str]:
            return store.events(**kwargs)["event_id"].tolist()

        assert ids(since=T0 + timedelta(minutes=10)) == ["e1", "e2", "e3", "e4"]  # inclusive
        assert ids(until=T0 + timedelta(minutes=30)) == ["e0", "e1", "e2"]  # exclusive
        assert ids(since=at(10), until=at(40)) == ["e1", "e2", "e3"]
        aware = datetime(2026, 1, 1, 13, 10, tzinfo=timezone(timedelta(hours=1)))  # 12:10 UTC
        assert ids(since=aware) == ["e1", "e2", "e3", "e4"]
        assert ids(types=["view", "purchase"]) == ["e0", "e3", "e4"]
        assert ids(types=[]) == []
        assert ids(user_id="u1") == ["e0", "e1", "e4"]
        assert ids(user_id="nobody") == []
        assert ids(limit=2) == ["e0", "e1"]
        assert ids(limit=0) == []
        assert ids(user_id="u1", limit=2, newest_first=True) == ["e4", "e1"]
        assert ids(types=["view"], since=at(1), user_id="u1") == ["e4"]
        search = store.events(types=["search"]).iloc[0]
        assert search["query"] == "knife" and search["item_id"] is None
        assert store.events(types=["purchase"]).iloc[0]["value"] == 9.5

    def test_interactions_exclude_item_less_searches(self, store: Store) -> None:
        """Interactions are the events that name an item."""
        store.append_events(
            events_frame(
                event("u1", "A1", "view", 0, "e0", session_id="s1"),
                event("u1", None, "search", 1, "e1", query="kettle"),
                event("u1", "B1", "search", 2, "e2", query="kettle"),  # a search that names an item
                event("u2", "A1", "rating", 3, "e3", value=4.0),
            )
        )
        inter = store.interactions()
        assert list(inter.columns) == ["user_id", "item_id", "type", "value", "timestamp", "seq"]
        assert inter["item_id"].tolist() == ["A1", "B1", "A1"]
        assert inter["type"].tolist() == ["view", "search", "rating"]
        assert inter["value"].tolist()[2] == 4.0 and np.isnan(inter["value"].tolist()[0])
        assert inter["timestamp"].tolist() == [at(0), at(2), at(3)]
        assert inter["timestamp"].dtype == "datetime64[us]" and inter["seq"].dtype == np.int64
        assert store.interactions(types=["rating"])["user_id"].tolist() == ["u2"]
        assert store.interactions(since=at(2))["item_id"].tolist() == ["B1", "A1"]

    # -- users -----------------------------------------------------------------------------------

    def test_users_are_created_from_events_at_their_first_event(self, store: Store) -> None:
        """Unknown users are created at their first event; explicit upserts override."""
        report = store.ingest(
            events=events_frame(
                event("u1", "A1", minutes=30),
                event("u1", "A1", minutes=5),
                event("u2", "A1", minutes=1),
            )
        )
        assert report.users == 2
        got = store.users()
        assert got["user_id"].tolist() == ["u1", "u2"]
        assert got["created_at"].tolist() == [at(5), at(1)]
        assert got["attributes"].tolist() == ["{}", "{}"]
        store.append_events(events_frame(event("u1", "A1", minutes=-60)))  # u1 exists already
        assert store.users()["created_at"].tolist() == [at(5), at(1)]

        store.upsert_users(users_frame(user("u1", attributes={"tier": "gold"}, created_at=at(2))))
        got = store.users().set_index("user_id")
        assert parsed(got.loc["u1", "attributes"]) == {"tier": "gold"}
        assert got.loc["u1", "created_at"] == at(2)
        assert got.loc["u2", "attributes"] == "{}"

    def test_explicit_users_in_the_same_ingest_win_over_auto_creation(self, store: Store) -> None:
        """Users given in the same ingest win over users created from events."""
        store.ingest(
            users=users_frame(user("u1", attributes={"age": 30}, created_at=at(-100))),
            events=events_frame(event("u1", "A1", minutes=5), event("u2", "A1", minutes=6)),
        )
        got = store.users().set_index("user_id")
        assert parsed(got.loc["u1", "attributes"]) == {"age": 30}
        assert got.loc["u1", "created_at"] == at(-100)
        assert got.loc["u2", "created_at"] == at(6)

    def test_user_upsert_last_row_wins(self, store: Store) -> None:
        """Of repeated user ids in a batch the last row wins."""
        n = store.upsert_users(
            users_frame(
                user("u1", attributes={"v": 1}), user("u2"), user("u1", attributes={"v": 2})
            )
        )
        assert n == 2
        got = store.users()
        assert got["user_id"].tolist() == ["u1", "u2"]
        assert parsed(got.loc[0, "attributes"]) == {"v": 2}

    def test_erase_user_removes_exactly_that_user(self, store: Store) -> None:
        """Erasing a user removes that user and their events only."""
        store.ingest(
            users=users_frame(user("u1"), user("u2")),
            events=events_frame(
                event("u1", "A1", minutes=0),
                event("u2", "A1", minutes=1, event_id="keep"),
                event("u1", "A2", minutes=2, event_id="gone"),
                event("u1", None, "search", 3, query="x"),
            ),
        )
        assert erased(store.erase_user("u1")) == {"events": 3, "users": 1}
        assert store.users()["user_id"].tolist() == ["u2"]
        assert store.events()["event_id"].tolist() == ["keep"]
        assert store.counts() == {"items": 0, "users": 1, "events": 1}
        fingerprint = store.fingerprint()
        assert erased(store.erase_user("u1")) == {"events": 0, "users": 0}
        assert erased(store.erase_user("never-seen")) == {"events": 0, "users": 0}
        assert store.fingerprint() == fingerprint
        # an erased event id can be ingested again
        assert store.append_events(events_frame(event("u1", "A2", event_id="gone"))) == 1

    # -- counts and fingerprint ------------------------------------------------------------------

    def test_counts_and_event_type_counts(self, store: Store) -> None:
        """`counts` and `event_type_counts` count rows."""
        store.ingest(
            items=items_frame(item("A1"), item("A2"), item("A3")),
            events=events_frame(
                event("u1", "A1", "view"),
                event("u1", "A1", "view", 1),
                event("u2", "A2", "purchase", 2, value=3.0),
                event("u3", None, "search", 3, query="q"),
            ),
        )
        assert store.counts() == {"items": 3, "users": 3, "events": 4}
        assert store.event_type_counts() == {"purchase": 1, "search": 1, "view": 2}

    def test_fingerprint_changes_after_every_write_and_is_stable_otherwise(
        self, store: Store
    ) -> None:
        """The fingerprint changes with every write that changes data, and only then."""
        seen = [store.fingerprint()]

        def changed() -> bool:
            now = store.fingerprint()
            fresh = now not in seen
            seen.append(now)
            return fresh

        store.items(), store.users(), store.events(), store.counts(), store.interactions()
        assert not changed()  # reads change nothing
        store.upsert_items(items_frame(item("A1")))
        assert changed()
        store.upsert_items(items_frame(item("A1", title="Renamed")))
        assert changed()
        store.upsert_users(users_frame(user("u1")))
        assert changed()
        store.append_events(events_frame(event("u1", "A1", event_id="e1")))
        assert changed()
        store.append_events(events_frame(event("u2", "A1")))
        assert changed()
        store.delete_item("A1")
        assert changed()
        store.erase_user("u2")
        assert changed()
        # writes that change nothing leave it alone
        store.upsert_users(users_frame(user("u1")))
        store.append_events(events_frame(event("u1", "A1", event_id="e1")))
        store.delete_item("A1")
        store.erase_user("u2")
        store.ingest()
        assert not changed()
        assert len(set(seen)) == 8

    def test_fingerprints_of_two_stores_differ(self, store: Store, tmp_path: Path) -> None:
        """Two stores never share a fingerprint."""
        with open_store(f"duckdb:///{tmp_path / 'other.duckdb'}") as other:
            assert other.fingerprint() != store.fingerprint()

    # -- atomicity -------------------------------------------------------------------------------

    @pytest.mark.parametrize("broken", ["type", "timestamp", "user_id"])
    def test_failed_ingest_leaves_the_store_exactly_as_before(
        self, store: Store, broken: str
    ) -> None:
        """A failing ingest rolls back every table it touched."""
        store.ingest(
            items=items_frame(item("A1", title="Original")),
            users=users_frame(user("u1", attributes={"v": 1})),
            events=events_frame(event("u1", "A1", event_id="e1")),
        )
        before = (store.counts(), store.fingerprint(), store.items(), store.users(), store.events())
        events = events_frame(
            event("u2", "A1", event_id="e2", minutes=1),
            event("u3", "A1", event_id="e3", minutes=2),
        )
        events[broken] = events[broken].astype(object)
        events.loc[1, broken] = None  # violates NOT NULL in events, the last table written
        with pytest.raises(StoreError, match="rolled back"):
            store.ingest(
                items=items_frame(item("A1", title="Changed"), item("A2")),
                users=users_frame(user("u1", attributes={"v": 2}), user("u9")),
                events=events,
            )
        after = (store.counts(), store.fingerprint(), store.items(), store.users(), store.events())
        assert after[:2] == before[:2]
        for got, expected in zip(after[2:], before[2:], strict=True):
            pd.testing.assert_frame_equal(got, expected)
        # and the store still works
        assert store.append_events(events_frame(event("u2", "A1", event_id="e2"))) == 1

    # -- values ----------------------------------------------------------------------------------

    def test_timestamps_round_trip_as_naive_utc(self, store: Store) -> None:
        """Timestamps are stored as UTC and come back naive, in microseconds."""
        plus_two = timezone(timedelta(hours=2))
        store.ingest(
            items=items_frame(item("A1", created_at=datetime(2026, 3, 1, 14, 0, tzinfo=plus_two))),
            events=events_frame(
                event("u1", "A1").model_copy(
                    update={"timestamp": datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)}
                ),
                event("u2", "A1").model_copy(
                    update={"timestamp": datetime(1999, 12, 31, 23, 59, 59, tzinfo=plus_two)}
                ),
            ),
        )
        got = store.events()
        assert got["timestamp"].dtype == "datetime64[us]"
        assert got["timestamp"].tolist() == [
            pd.Timestamp("1999-12-31 21:59:59"),
            pd.Timestamp("2026-03-01 10:00:00.123456"),
        ]
        items = store.items()
        assert items["created_at"].dtype == "datetime64[us]"
        assert items.loc[0, "created_at"] == pd.Timestamp("2026-03-01 12:00:00")
        assert store.users()["created_at"].dtype == "datetime64[us]"

    def test_unicode_text_round_trips(self, store: Store) -> None:
        """Any Unicode text round-trips in ids, text and attributes."""
        title = "不锈钢厨师刀 🔪 Küchenmesser"
        store.ingest(
            items=items_frame(
                item("刀-1", title=title, description='line1\nline2\t"quoted" \\ back', brand="😀")
            ),
            users=users_frame(user("用户", attributes={"名字": "张三", "emoji": "🎉"})),
            events=events_frame(event("用户", None, "search", query="厨师刀 🔪", event_id="事件")),
        )
        got = store.items().iloc[0]
        assert got["item_id"] == "刀-1" and got["title"] == title and got["brand"] == "😀"
        assert got["description"] == 'line1\nline2\t"quoted" \\ back'
        assert parsed(store.users().loc[0, "attributes"]) == {"名字": "张三", "emoji": "🎉"}
        ev = store.events(user_id="用户").iloc[0]
        assert (ev["query"], ev["event_id"]) == ("厨师刀 🔪", "事件")
        assert store.items(["刀-1"])["title"].tolist() == [title]

    def test_ids_and_text_order_by_code_point(self, store: Store) -> None:
        """Ids order by code point, not by locale."""
        store.upsert_items(items_frame(*(item(i) for i in ["b", "B", "a", "_x", "é", "A"])))
        assert store.items()["item_id"].tolist() == ["A", "B", "_x", "a", "b", "é"]

    # -- lifecycle -------------------------------------------------------------------------------

    def test_reopened_store_sees_the_data(
        self, store_url: str, store_opener: Callable[[str], Store]
    ) -> None:
        """A reopened store sees what was written; seq numbers continue."""
        with store_opener(store_url) as first:
            first.ingest(
                items=items_frame(item("A1", attributes={"k": [1]})),
                events=events_frame(event("u1", "A1", event_id="e1")),
            )
            fingerprint = first.fingerprint()
            items = first.items()
        with store_opener(store_url) as second:
            assert second.counts() == {"items": 1, "users": 1, "events": 1}
            assert second.fingerprint() == fingerprint
            pd.testing.assert_frame_equal(second.items(), items)
            # sequence numbers continue after reopening
            second.append_events(events_frame(event("u1", "A1", event_id="e2")))
            assert second.events()["seq"].tolist() == [1, 2]

    def test_closed_store_refuses_work(
        self, store_url: str, store_opener: Callable[[str], Store]
    ) -> None:
        """`close` is idempotent and a closed store raises StoreError."""
        opened = store_opener(store_url)
        opened.close()
        opened.close()  # idempotent
        with pytest.raises(StoreError, match="closed"):
            opened.counts()

    def test_concurrent_writers_from_threads(self, store: Store) -> None:
        """Writers in several threads lose nothing and get distinct seq numbers."""
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for k in range(5):
                    store.append_events(
                        events_frame(
                            *(
                                event(f"u{n}", "A1", minutes=k, event_id=f"{n}-{k}-{j}")
                                for j in range(3)
                            )
                        )
                    )
                    store.counts()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.counts() == {"items": 0, "users": 4, "events": 60}
        assert sorted(store.events()["seq"].tolist()) == list(range(1, 61))

    def test_bulk_ingest(self, store: Store) -> None:
        """50,000 events ingest in one call, and again as duplicates."""
        n = 50_000
        rng = np.random.default_rng(7)
        frame = pd.DataFrame(
            {
                "event_id": [f"e{i}" for i in range(n)],
                "user_id": [f"u{i % 997}" for i in range(n)],
                "item_id": [f"i{i % 313}" for i in range(n)],
                "type": "view",
                "value": np.where(np.arange(n) % 2 == 0, np.nan, 1.5),
                "query": None,
                "session_id": None,
                "timestamp": pd.Timestamp(T0)
                + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
            }
        )
        report = store.ingest(events=frame)
        assert (report.events, report.users, report.duplicate_events) == (n, 997, 0)
        again = store.ingest(events=frame)
        assert (again.events, again.duplicate_events) == (0, n)
        got = store.events()
        assert len(got) == n and sorted(got["seq"].tolist()) == list(range(1, n + 1))
        assert got["timestamp"].is_monotonic_increasing
        assert int(got["value"].notna().sum()) == n // 2
        assert store.events(user_id="u5")["event_id"].str[1:].astype(int).mod(997).eq(5).all()
