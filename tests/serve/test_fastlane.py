"""The fast lane of POST /v1/events (`shelfwise.serve.fastlane`): well-formed requests are
stored and acknowledged exactly as the route does, and every other request still gets the
route's answer (auth, rate limits, 422s naming the field), with one rate-limit token each."""

from __future__ import annotations

import pytest

from shelfwise.serve.fastlane import presented_key
from shelfwise.serve.security import create_key
from shelfwise.store import Store

from .conftest import AppFactory


def view(event_id: str, user: str = "fl-u1", item: str = "K1") -> dict[str, str]:
    return {"event_id": event_id, "user_id": user, "item_id": item, "type": "view"}


def test_every_body_form_is_stored_once_and_acknowledged(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client()
    before = store.counts()["events"]
    r = client.post("/v1/events", json=view("fl-1"))
    assert (r.status_code, r.json()) == (200, {"accepted": 1, "duplicates": 0})
    assert r.headers["content-type"] == "application/json"
    r = client.post("/v1/events", json=[view("fl-2"), view("fl-1")])  # array, one repeat
    assert r.json() == {"accepted": 1, "duplicates": 1}
    r = client.post("/v1/events", json={"events": [view("fl-3"), view("fl-3")]})
    assert r.json() == {"accepted": 1, "duplicates": 1}
    assert store.counts()["events"] == before + 3
    stored = store.events(user_id="fl-u1")
    assert sorted(stored["event_id"]) == ["fl-1", "fl-2", "fl-3"]


def test_refused_requests_get_the_routes_answers(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client(auth=True)
    writer, _ = create_key(store, "write")
    reader, _ = create_key(store, "read")
    ok = {"X-API-Key": writer}
    assert client.post("/v1/events", json=view("r-1")).status_code == 401
    r = client.post("/v1/events", json=view("r-2"), headers={"X-API-Key": reader})
    assert r.status_code == 403 and "'write'" in r.json()["detail"]
    r = client.post("/v1/events", json=view("r-3"), headers={"Authorization": f"Bearer {writer}"})
    assert r.json() == {"accepted": 1, "duplicates": 0}
    r = client.post(
        "/v1/events", json={**view("r-4"), "user_id": 5}, headers=ok
    )  # an id that is not a string
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "event", "user_id"]
    r = client.post(
        "/v1/events",
        json={"events": [view("r-5"), {**view("r-6"), "timestamp": "9999-12-31T23:59:59Z"}]},
        headers=ok,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "batch", "events", 1, "timestamp"]
    r = client.post(
        "/v1/events",
        content=b'{"user_id": "u", "item_id": "K1", "type": "view", "value": NaN}',
        headers={**ok, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "event", "value"]
    assert {e for e in store.events()["event_id"] if str(e).startswith("r-")} == {"r-3"}


def test_a_refused_request_takes_one_rate_limit_token(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client(auth=True, rate_limit=0.01, rate_burst=3)
    key, _ = create_key(store, "write")
    headers = {"X-API-Key": key}
    codes = [
        client.post("/v1/events", json=view("t-1"), headers=headers).status_code,
        client.post(
            "/v1/events", json={**view("t-2"), "type": "nope"}, headers=headers
        ).status_code,
        client.post("/v1/events", json=view("t-3"), headers=headers).status_code,
        client.post("/v1/events", json=view("t-4"), headers=headers).status_code,
    ]
    assert codes == [200, 422, 200, 429]
    r = client.post("/v1/events", json=view("t-5"), headers=headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_metrics_count_the_fast_lane_under_the_route(make_client: AppFactory) -> None:
    client = make_client()
    for i in range(3):
        assert client.post("/v1/events", json=view(f"m-{i}")).status_code == 200
    text = client.get("/metrics").text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("shelfwise_http_requests_total")
        and 'route="/v1/events"' in x
        and 'status="200"' in x
    )
    assert float(line.rsplit(" ", 1)[1]) == 3.0


@pytest.mark.parametrize(
    ("headers", "key"),
    [
        ([(b"x-api-key", b"swk_a")], "swk_a"),
        ([(b"authorization", b"Bearer swk_b")], "swk_b"),
        ([(b"authorization", b"bearer  swk_c ")], "swk_c"),
        ([(b"authorization", b"Basic abc")], None),
        ([(b"authorization", b"Bearer ")], None),
        ([(b"x-api-key", b"swk_d"), (b"authorization", b"Bearer swk_e")], "swk_d"),
        ([], None),
    ],
)
def test_presented_key_reads_what_the_route_reads(
    headers: list[tuple[bytes, bytes]], key: str | None
) -> None:
    assert presented_key({"headers": headers}) == key


def test_store_is_not_touched_by_a_refused_batch(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store: Store = shop[0]
    client = make_client()
    before = store.counts()["events"]
    bad = [view("b-1"), {**view("b-2"), "item_id": "K\u0000"}]
    r = client.post("/v1/events", json=bad)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "array", 1]
    assert store.counts()["events"] == before
