"""Group commit of POST /v1/events: the `EventWriter` over a real DuckDB store, and the
array body form of the endpoint."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shelfwise.data.schemas import Event
from shelfwise.errors import DataError, StoreError
from shelfwise.serve.writer import EventWriter
from shelfwise.store import Store, open_store
from shelfwise.store.sql import SqlStore

from .conftest import AppFactory


def _event(event_id: str | None, user_id: str = "w", item_id: str = "K1") -> Event:
    return Event(event_id=event_id, user_id=user_id, item_id=item_id, type="view")


def _revision(store: Store) -> int:
    return int(store.fingerprint().rsplit("-", 1)[1])


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    opened = open_store(f"duckdb:///{tmp_path / 'w.duckdb'}")
    yield opened  # type: ignore[misc]
    opened.close()


def test_requests_queued_behind_a_transaction_share_the_next_one(store: Store) -> None:
    writer = EventWriter(store)
    try:
        assert writer.write([_event("first")]).events == 1
        assert isinstance(store, SqlStore)
        before = _revision(store)
        with store._lock:  # a transaction of someone else is running: requests queue up
            blocked = writer.submit([_event("a")])  # the writer takes it, then waits
            queued = [writer.submit([_event(f"q{i}"), _event("first")]) for i in range(10)]
            queued.append(writer.submit([_event("q0"), _event(None)]))  # q0 of an earlier one
        reports = [f.result(timeout=30) for f in [blocked, *queued]]
        assert [(r.events, r.duplicate_events) for r in reports] == [
            (1, 0),
            *[(1, 1)] * 10,
            (1, 1),
        ]
        # 12 requests, one or two transactions (the writer may have taken "a" alone)
        assert _revision(store) - before in (1, 2)
        assert store.counts()["events"] == 1 + 1 + 10 + 1
        seqs = store.events().sort_values("seq")["event_id"].tolist()
        assert seqs[:3] == ["first", "a", "q0"] and seqs[-1] is None  # request order
    finally:
        writer.close()


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_refused_request_fails_alone(store: Store) -> None:
    writer = EventWriter(store)
    try:
        with store._lock:
            blocked = writer.submit([_event("x")])
            good = writer.submit([_event("g1")])
            bad = Event.model_construct(
                event_id="b1", user_id="w", item_id="K1", type="view", value="lots"
            )  # skips validation: the store refuses the value
            refused = writer.submit([_event("b0"), bad])
            good2 = writer.submit([_event("g2")])
        assert blocked.result(timeout=30).events == 1
        assert good.result(timeout=30).events == 1 and good2.result(timeout=30).events == 1
        with pytest.raises(DataError):
            refused.result(timeout=30)
        stored = set(store.events()["event_id"])
        assert stored == {"x", "g1", "g2"}  # nothing of the refused request, b0 included
    finally:
        writer.close()


def test_close_writes_what_is_queued_then_refuses(store: Store) -> None:
    writer = EventWriter(store)
    futures = []
    with store._lock:
        futures = [writer.submit([_event(f"c{i}")]) for i in range(5)]
        closer = threading.Thread(target=writer.close)
        closer.start()
    closer.join(timeout=30)
    assert [f.result(timeout=1).events for f in futures] == [1] * 5
    with pytest.raises(StoreError, match="shut down"):
        writer.write([_event("late")])
    assert store.counts()["events"] == 5


def test_array_body_and_batch_limit(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client: TestClient = make_client(max_batch=3)
    body = [
        {"event_id": "arr-1", "user_id": "w", "item_id": "K1", "type": "view"},
        {"event_id": "arr-2", "user_id": "w", "type": "search", "query": "knife"},
        {"event_id": "u1-0", "user_id": "u1", "item_id": "K1", "type": "purchase"},
    ]
    assert client.post("/v1/events", json=body).json() == {"accepted": 2, "duplicates": 1}
    assert client.post("/v1/events", json=body[:1]).json() == {"accepted": 0, "duplicates": 1}
    too_many = [{**body[0], "event_id": f"m{i}"} for i in range(4)]
    for payload in (too_many, {"events": too_many}):
        r = client.post("/v1/events", json=payload)
        assert r.status_code == 422 and "max_batch (3)" in r.json()["detail"]
    r = client.post("/v1/events", json=[])
    assert r.status_code == 422
    r = client.post("/v1/events", json=[body[0], {"user_id": "w", "type": "like"}])
    assert r.status_code == 422  # one bad event: nothing of the batch is stored
    assert set(store.events(user_id="w")["event_id"]) == {"arr-1", "arr-2"}
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    forms = post["schema"]["oneOf"]  # one event, {"events": [...]}, or an array
    assert {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}, "minItems": 1} in [
        {k: v for k, v in f.items() if k in ("type", "items", "minItems")} for f in forms
    ]


def test_requests_of_one_loop_pass_go_in_one_transaction(store: Store) -> None:
    writer = EventWriter(store)

    assert isinstance(store, SqlStore)
    lock = store._lock

    async def post_all() -> list[tuple[int, int]]:
        with lock:  # the writer takes the parcel, then waits for the store
            tasks = [
                asyncio.ensure_future(writer.write_async([_event(f"a{i}"), _event("a0")]))
                for i in range(20)
            ]
            await asyncio.sleep(0.2)
        reports = await asyncio.gather(*tasks)
        return [(r.events, r.duplicate_events) for r in reports]

    try:
        writer.write([_event("first")])
        before = _revision(store)
        # 20 requests, one loop pass: one parcel, one transaction; a0 repeats in each
        # (twice in the first)
        assert asyncio.run(post_all()) == [(1, 1)] * 20
        assert _revision(store) - before == 1
        assert writer.stats() == {"groups": 2, "requests": 21, "events": 41}
        assert store.counts()["events"] == 21
    finally:
        writer.close()


def test_write_async_raises_what_the_store_refused_and_after_close(store: Store) -> None:
    writer = EventWriter(store)
    bad = Event.model_construct(
        event_id="b1", user_id="w", item_id="K1", type="view", value="lots"
    )  # skips validation: the store refuses the value

    async def post(events: list[Event]) -> int:
        return (await writer.write_async(events)).events

    try:
        with pytest.raises(DataError):
            asyncio.run(post([bad]))
        assert asyncio.run(post([_event("ok")])) == 1
    finally:
        writer.close()
    with pytest.raises(StoreError, match="shut down"):
        asyncio.run(post([_event("late")]))
    assert set(store.events()["event_id"]) == {"ok"}


def test_the_gathering_window_follows_the_write_time_within_its_bounds(store: Store) -> None:
    writer = EventWriter(store, gather_seconds=0.25)
    try:
        assert isinstance(store, SqlStore)
        with store._lock:  # the next write waits for this "transaction": a slow write
            slow = writer.submit([_event("slow")])
            threading.Event().wait(1.2)
        assert slow.result(timeout=30).events == 1
        # 1.2 s and more, capped at GATHER_STRETCH (4) times the setting
        assert writer._batches.gather_seconds == pytest.approx(1.0)
        writer.write([_event("quick")])  # a write of a few ms: back to the setting
        assert writer._batches.gather_seconds == pytest.approx(0.25)
    finally:
        writer.close()
