"""Poisoned input is refused with a 422 that names the field (and the row of a batch), the
422 always renders, nothing is half written, and unknown items are accepted and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle
from shelfwise.serve import create_app
from shelfwise.serving import Engine
from shelfwise.settings import IngestSettings, ServeSettings, Settings
from shelfwise.store import Store, open_store

from .conftest import fill

JSON = {"Content-Type": "application/json"}


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _view(**fields: Any) -> dict[str, Any]:
    return {"user_id": "p1", "item_id": "K1", "type": "view", **fields}


def _events(store: Store) -> int:
    return store.counts()["events"]


def _loc(r: Any) -> list[Any]:
    assert r.status_code == 422, r.text
    return list(r.json()["detail"][0]["loc"])


@pytest.mark.parametrize(
    ("stamp", "words"),
    [
        ("9999-12-31T23:59:59Z", "in the future"),
        ("2200-01-01T00:00:00Z", "in the future"),
        ("1999-12-31T23:59:59Z", "before 2000-01-01"),
        (0, "before 2000-01-01"),  # unix seconds: 1970
    ],
)
def test_event_times_out_of_bounds_are_refused(
    client: TestClient, shop: tuple[Store, Any], stamp: Any, words: str
) -> None:
    store, _ = shop
    before = _events(store)
    r = client.post("/v1/events", json=_view(timestamp=stamp))
    assert _loc(r) == ["body", "event", "timestamp"]
    assert words in r.json()["detail"][0]["msg"]
    assert _events(store) == before


def test_event_time_within_the_skew_is_accepted(client: TestClient) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=120)  # inside the default 300 s
    r = client.post("/v1/events", json=_view(timestamp=_iso(soon)))
    assert r.status_code == 200 and r.json()["accepted"] == 1
    later = datetime.now(UTC) + timedelta(seconds=900)
    assert client.post("/v1/events", json=_view(timestamp=_iso(later))).status_code == 422


def test_batch_with_one_bad_row_is_refused_whole(
    client: TestClient, shop: tuple[Store, Any]
) -> None:
    store, _ = shop
    before = _events(store)
    rows = [_view(event_id=f"b{i}") for i in range(4)]
    rows[2]["timestamp"] = "9999-12-31T23:59:59Z"
    r = client.post("/v1/events", json={"events": rows})
    assert _loc(r) == ["body", "batch", "events", 2, "timestamp"]
    rows[2] = _view(event_id="b2", user_id="u\x00x")
    bad = _loc(client.post("/v1/events", json={"events": rows}))
    assert bad == ["body", "batch", "events", 2, "user_id"]
    assert _events(store) == before
    rows[2] = _view(event_id="b2")
    assert client.post("/v1/events", json={"events": rows}).json()["accepted"] == 4


def test_the_bounds_are_settings(shop: tuple[Store, Any]) -> None:
    _, engine = shop
    settings = Settings(
        serve=ServeSettings(auth=False, rate_limit=0),
        ingest=IngestSettings(max_future_seconds=0, min_timestamp="1990-01-01T00:00:00Z"),
    )
    with TestClient(create_app(engine, settings)) as client:
        old = client.post("/v1/events", json=_view(timestamp="1995-06-01T00:00:00Z"))
        assert old.status_code == 200
        soon = _iso(datetime.now(UTC) + timedelta(seconds=60))
        assert _loc(client.post("/v1/events", json=_view(timestamp=soon)))[-1] == "timestamp"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"user_id": "p1", "item_id": "K1", "type": "rating", "value": NaN}', "value"),
        ('{"user_id": "p1", "item_id": "K1", "type": "rating", "value": Infinity}', "value"),
        ('{"user_id": "p1", "item_id": "K1", "type": "rating", "value": -Infinity}', "value"),
        ('{"user_id": "p1", "item_id": "K1", "type": "rating", "value": 1e309}', "value"),
        ('{"user_id": "p1\\ud800", "item_id": "K1", "type": "view"}', "user_id"),
        ('{"user_id": "p1", "item_id": "K1\\udfff", "type": "view"}', "item_id"),
        ('{"user_id": "p1", "type": "search", "query": "kn\\u0000ife"}', "query"),
        ('{"user_id": "p1\\u0000", "item_id": "K1", "type": "view"}', "user_id"),
        (
            '{"user_id": "p1", "item_id": "K1", "type": "view", "session_id": "s\\u0000"}',
            "session_id",
        ),
        ('{"user_id": 5, "item_id": "K1", "type": "view"}', "user_id"),
        ('{"user_id": "p1", "item_id": ["a"], "type": "view"}', "item_id"),
        ('{"user_id": "p1", "item_id": 7, "type": "view"}', "item_id"),
        ('{"user_id": "p1", "item_id": "K1", "type": "view", "event_id": true}', "event_id"),
    ],
)
def test_poison_in_an_event_is_a_422_naming_the_field(
    client: TestClient, shop: tuple[Store, Any], raw: str, field: str
) -> None:
    store, _ = shop
    before = _events(store)
    r = client.post("/v1/events", content=raw.encode(), headers=JSON)
    assert _loc(r)[-1] == field
    assert "\\ud" not in r.text or "\\\\ud" in r.text  # a surrogate comes back escaped
    assert _events(store) == before


def test_the_422_always_renders(client: TestClient) -> None:
    # an unknown field named by a lone surrogate, a NaN in it, broken JSON, invalid UTF-8
    for raw in (
        b'{"user_id": "p1", "item_id": "K1", "type": "view", "\\ud800": NaN}',
        b'{"user_id": "p1", "item_id": "K1", "type": "vi\\ud800ew"}',
        b'{"user_id": "p1", "item_id": "K1", "type": "view", "value": "\\u0000"',
        b'{"events": [{"user_id": "\\udc00", "type": "view", "item_id": NaN}]}',
    ):
        r = client.post("/v1/events", content=raw, headers=JSON)
        assert r.status_code == 422, (raw, r.status_code)
        body = r.json()
        assert body["detail"] and all("input" not in e for e in body["detail"])
    bad_utf8 = client.post(
        "/v1/events",
        content=b'{"user_id": "p1\xff", "item_id": "K1", "type": "view"}',
        headers=JSON,
    )
    assert bad_utf8.status_code == 400 and bad_utf8.json()["detail"]
    unknown = client.post(
        "/v1/events",
        content=b'{"user_id": "p1", "item_id": "K1", "type": "view", "\\ud800x": 1}',
        headers=JSON,
    )
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["type"] == "string_unicode"  # pydantic cannot name it


def test_poison_in_catalogue_writes(client: TestClient, shop: tuple[Store, Any]) -> None:
    store, _ = shop
    items_before = store.counts()["items"]
    for raw, field in (
        ('{"title": "Mill\\u0000"}', "title"),
        ('{"title": "Mill\\ud800"}', "title"),
        ('{"title": "Mill", "price": NaN}', "price"),
        ('{"title": "Mill", "price": 1e309}', "price"),
        ('{"title": "Mill", "attributes": {"w": Infinity}}', "attributes"),
        ('{"title": "Mill", "attributes": {"c\\u0000": "red"}}', "attributes"),
        ('{"title": "Mill", "attributes": {"c": ["red", "\\udc00"]}}', "attributes"),
    ):
        r = client.put("/v1/items/Z1", content=raw.encode(), headers=JSON)
        assert _loc(r)[-1] == field, raw
    batch = {"items": [{"item_id": "Z1", "title": "a"}, {"item_id": 5, "title": "b"}]}
    assert _loc(client.post("/v1/items:batch", json=batch))[-2:] == [1, "item_id"]
    batch = {"items": [{"item_id": "Z1", "title": "a"}, {"item_id": "Z2", "title": "b\x00"}]}
    assert _loc(client.post("/v1/items:batch", json=batch))[-2:] == [1, "title"]
    assert store.counts()["items"] == items_before
    assert client.get("/v1/items/Z1").status_code == 404


def test_events_for_unknown_items_are_accepted_and_counted(
    client: TestClient, shop: tuple[Store, Any]
) -> None:
    store, _ = shop
    assert client.get("/v1/admin/summary").json()["unknown_item_events"] == 0
    r = client.post(
        "/v1/events", json={"events": [_view(item_id="NEW1"), _view(item_id="NEW1"), _view()]}
    )
    assert r.json()["accepted"] == 3
    assert client.get("/v1/admin/summary").json()["unknown_item_events"] == 2
    assert store.unknown_item_events() == 2
    # the item arrives: its events are no longer unknown
    assert client.put("/v1/items/NEW1", json={"title": "New Mill"}).status_code == 200
    assert client.get("/v1/admin/summary").json()["unknown_item_events"] == 0


@pytest.mark.postgres
def test_poison_on_postgres(postgres_schema: str, tmp_path: Path) -> None:
    """The same 422s on PostgreSQL, where a NUL byte used to be a 503 with COPY internals."""
    store = open_store(postgres_schema)
    try:
        fill(store)
        bundle, _ = ensure_bundle(store, tmp_path / "artifacts")
        settings = Settings(serve=ServeSettings(auth=False, rate_limit=0))
        with TestClient(create_app(Engine(store, bundle), settings)) as client:
            before = _events(store)
            r = client.post("/v1/events", json=_view(query="a\x00b", type="search"))
            assert _loc(r)[-1] == "query"
            r = client.post("/v1/events", json=_view(timestamp="9999-12-31T23:59:59Z"))
            assert _loc(r) == ["body", "event", "timestamp"]
            r = client.put("/v1/items/Z1", json={"title": "x", "brand": "\x00"})
            assert _loc(r)[-1] == "brand"
            assert _events(store) == before
            assert client.post("/v1/events", json=_view(item_id="NEW1")).status_code == 200
            assert client.get("/v1/admin/summary").json()["unknown_item_events"] == 1
    finally:
        store.close()
