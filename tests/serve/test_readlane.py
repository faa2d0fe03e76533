"""The fast lane of the plain read GETs (`shelfwise.serve.readlane`): it answers search,
autocomplete, recommendations and similar items with the route's bytes, logs the same
impressions, enforces the same keys, and leaves every other request to FastAPI."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote

from fastapi.testclient import TestClient

from shelfwise.serve.measure import experiments_of
from shelfwise.serve.middleware import Message, Scope
from shelfwise.serve.readlane import ReadFastLane
from shelfwise.serve.security import create_key

from .conftest import AppFactory

#: Requests the lane answers itself (plain parameters only).
FAST = [
    "/v1/search?q=knife&k=2",
    "/v1/search?q=wireless%20headphones",
    "/v1/search?q=",
    "/v1/search?q=board&per_page=1&page=2",
    "/v1/search?q=zzzzqqq",
    "/v1/search?q=kniffe&k=3",  # corrected to knife
    "/v1/autocomplete?q=kn",
    "/v1/autocomplete?q=h&k=1",
    "/v1/users/u1/recommendations?k=3",
    "/v1/users/u4/recommendations",
    "/v1/users/never-seen/recommendations?k=2",  # the fallback chain
    "/v1/items/K1/similar?k=2",
    "/v1/items/H1/similar",
    "/v1/items/NOPE/similar",  # 404, as the app's handler answers it
]
#: Requests left to the route (other parameters, values that are not plain, bad values).
ROUTED = [
    "/v1/search?q=knife&brand=Acme",
    "/v1/search?q=knife&k=02",
    "/v1/search?q=knife&k=0",
    "/v1/search?q=knife&q=board",
    "/v1/search?q=knife&facets=brand",
    "/v1/search?q=knife&user=u1",
    "/v1/autocomplete?q=",
    "/v1/autocomplete?q=kn&k=21",
    "/v1/users/u1/recommendations?k=abc",
    "/v1/users/u1/recommendations?k=3&exclude=K1",
    "/v1/users/caf%C3%A9/recommendations?k=2",  # not ASCII: the route checks the id
    "/v1/items/K1/similar?k=101",
    "/v1/items/K1/bought-together?k=2",
    "/healthz",
]
REQUEST_ID = re.compile(rb'"request_id":"[0-9a-f]{32}"')
TOOK = re.compile(rb'"took_ms":[0-9.e+-]+')


def same_bytes(body: bytes) -> bytes:
    """The body with its request id (fresh per request) and search time blanked."""
    return TOOK.sub(b'"took_ms":0', REQUEST_ID.sub(b'"request_id":"-"', body))


def test_the_lane_answers_with_the_routes_bytes(make_client: AppFactory) -> None:
    fast = make_client()
    slow = make_client(fast_reads=False)
    for path in FAST + ROUTED:
        a, b = fast.get(path), slow.get(path)
        assert a.status_code == b.status_code, path
        assert same_bytes(a.content).decode() == same_bytes(b.content).decode(), path
        assert a.headers["content-type"] == b.headers["content-type"], path
        assert a.headers["content-length"] == str(len(a.content)), path
    # known answers, whichever path served them
    search = fast.get("/v1/search?q=knife&k=2").json()
    assert [i["item_id"] for i in search["items"]] == ["K1", "K2"] and search["total"] == 2
    assert fast.get("/v1/search?q=kniffe").json()["query_info"]["corrected"] == {"kniffe": "knife"}
    suggestions = fast.get("/v1/autocomplete?q=kn").json()["suggestions"]
    assert suggestions and all("kn" in s.lower() for s in suggestions)
    recs = fast.get("/v1/users/never-seen/recommendations?k=2").json()
    assert recs["user_id"] == "never-seen" and len(recs["items"]) == 2
    similar = fast.get("/v1/items/K1/similar?k=2").json()
    assert similar["item_id"] == "K1" and "K1" not in [i["item_id"] for i in similar["items"]]
    missing = fast.get("/v1/items/NOPE/similar")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]
    assert fast.get("/v1/search?q=knife&k=0").status_code == 422  # the route's validation
    assert fast.get("/v1/search?q=knife&k=0").json()["detail"][0]["loc"] == ["query", "k"]


def test_the_lane_answers_plain_requests_itself(make_client: AppFactory) -> None:
    """Driven as ASGI in front of an app that records what reaches it: the plain requests
    never do, the others all do."""
    client = make_client()
    app = client.app
    reached: list[str] = []

    async def inner(scope: Scope, receive: Any, send: Any) -> None:
        reached.append(scope["path"] + "?" + scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    lane = ReadFastLane(inner)

    async def get(target: str) -> int:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "method": "GET",
            "path": unquote(path),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 1),
            "app": app,
        }
        status = 0

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await lane(scope, receive, send)
        return status

    async def run() -> list[int]:
        return [await get(p) for p in FAST + ROUTED]

    codes = asyncio.run(run())
    assert codes[: len(FAST)] == [200] * (len(FAST) - 1) + [404]
    assert codes[len(FAST) :] == [299] * len(ROUTED)
    assert len(reached) == len(ROUTED)


def test_keys_are_enforced(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client(auth=True)
    reader, _ = create_key(store, "read")
    writer, _ = create_key(store, "write")
    for path in ("/v1/search?q=knife", "/v1/users/u1/recommendations?k=2"):
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers={"X-API-Key": "swk_not-a-key"}).status_code == 401
        r = client.get(path, headers={"X-API-Key": writer})
        assert r.status_code == 403 and "'read'" in r.json()["detail"]
        assert client.get(path, headers={"X-API-Key": reader}).status_code == 200
        assert client.get(path, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert client.get("/v1/items/K1/similar", headers={"X-API-Key": writer}).status_code == 403
    assert client.get("/v1/autocomplete?q=kn").status_code == 401


def test_a_refused_request_takes_one_rate_limit_token(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client(auth=True, rate_limit=0.01, rate_burst=3)
    key, _ = create_key(store, "read")
    headers = {"X-API-Key": key}
    codes = [
        client.get("/v1/search?q=knife", headers=headers).status_code,
        client.get("/v1/search?q=knife&k=0", headers=headers).status_code,  # the route's 422
        client.get("/v1/users/u1/recommendations", headers=headers).status_code,
        client.get("/v1/users/u1/recommendations", headers=headers).status_code,
    ]
    assert codes == [200, 422, 200, 429]


def test_impressions_are_logged_with_the_request_id(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client: TestClient = make_client()
    search = client.get("/v1/search?q=knife&k=2").json()
    recs = client.get("/v1/users/u1/recommendations?k=3").json()
    similar = client.get("/v1/items/K1/similar?k=2").json()
    assert experiments_of(client.app.state.services).log.flush(10.0)  # type: ignore[attr-defined]
    got = store.impressions().set_index("request_id")
    for body, list_type in ((search, "search"), (recs, "recommendations"), (similar, "similar")):
        row = got.loc[body["request_id"]]
        assert row["list_type"] == list_type
        assert row["items"] == [i["item_id"] for i in body["items"]]
    assert got.loc[search["request_id"], "query"] == "knife"
    assert got.loc[search["request_id"], "n_results"] == 2
    assert got.loc[recs["request_id"], "user_id"] == "u1"
    assert got.loc[recs["request_id"], "policy"] == recs["strategy"]


def test_metrics_label_the_route_template(make_client: AppFactory) -> None:
    client = make_client()
    client.get("/v1/users/u1/recommendations?k=2")
    client.get("/v1/search?q=knife")
    text = client.get("/metrics").text
    assert 'route="/v1/users/{user_id}/recommendations",status="200"' in text
    assert 'route="/v1/search",status="200"' in text
    assert "u1" not in text
