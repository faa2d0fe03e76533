"""Restart = restart: `shelfwise serve` starts on the last good bundle whatever arrived in
the store while it was down, and answers from it with the newer events and items applied
online; `/readyz` is 200 only once every route that answers from the bundle is warm."""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from shelfwise.artifacts import Registry, ensure_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.serve.warmup import WARMUP_STEPS, Readiness
from shelfwise.store import open_store

from .conftest import fill
from .test_crash import _free_port, _start


def _versions(root: Path) -> list[str]:
    return sorted(v.version for v in Registry(root).versions())


def test_restart_serves_the_last_bundle_with_what_arrived_since(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    artifacts, log = tmp_path / "artifacts", tmp_path / "server.log"
    with open_store(url) as store:
        fill(store)
        bundle, built = ensure_bundle(store, artifacts)
        assert built
    versions = _versions(artifacts)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(url, artifacts, port, log)
    try:
        before = httpx.get(f"{base}/v1/users/u7/recommendations", params={"k": 2}).json()
        assert httpx.get(f"{base}/v1/search", params={"q": "kettle"}).json()["items"] == []
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    # while the server is down: a new catalogue item, and u7 (bought a chef knife) buys
    # wireless headphones
    with open_store(url) as store:
        kettle = Item(item_id="T1", title="Steel Tea Kettle", category="Home > Kitchen > Tea")
        store.ingest(items=records_to_frame("items", [kettle]))
        bought = Event(
            event_id="late-1",
            user_id="u7",
            item_id="H1",
            type="purchase",
            timestamp=datetime.now(UTC),
        )
        store.append_events(records_to_frame("events", [bought]))
        assert store.fingerprint() != bundle.fingerprint  # `shelfwise build` would rebuild

    server = _start(url, artifacts, port, log)
    try:
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["status"] == "ready" and ready["model_version"] == bundle.version
        assert ready["items"] == 7 and ready["events"] == 20
        assert _versions(artifacts) == versions  # nothing was built
        found = httpx.get(f"{base}/v1/search", params={"q": "kettle"}).json()["items"]
        assert [i["item_id"] for i in found] == ["T1"]
        after = httpx.get(f"{base}/v1/users/u7/recommendations", params={"k": 2}).json()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert "H2" not in [i["item_id"] for i in before["items"]]
    # the headphones' neighbour (the stand) leads; the bought headphones are not offered
    assert after["items"][0]["item_id"] == "H2", after
    assert "H1" not in [i["item_id"] for i in after["items"]]
    assert "serving bundle" in log.read_text()  # the log says it served the older bundle


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM: a graceful shutdown (uvicorn re-raises the signal once it is done)."""
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) in (0, -signal.SIGTERM)


def _ids(answer: dict[str, Any]) -> list[str]:
    return [str(i["item_id"]) for i in answer["items"]]


def _answers(base: str) -> dict[str, list[str]]:
    """What the restarted server says, for the checks of the test below."""
    get = httpx.get
    return {
        "u7": _ids(get(f"{base}/v1/users/u7/recommendations", params={"k": 10}).json()),
        "u1": _ids(get(f"{base}/v1/users/u1/recommendations", params={"k": 10}).json()),
        "kettle": _ids(get(f"{base}/v1/search", params={"q": "kettle"}).json()),
        "serrated": _ids(get(f"{base}/v1/search", params={"q": "serrated"}).json()),
        "knife<=10": _ids(get(f"{base}/v1/search", params={"q": "knife", "price_max": 10}).json()),
        "board": _ids(get(f"{base}/v1/search", params={"q": "bamboo board"}).json()),
        "browse": _ids(get(f"{base}/v1/search", params={"q": "", "per_page": 100}).json()),
        "similar K1": _ids(get(f"{base}/v1/items/K1/similar", params={"k": 10}).json()),
        "bought with K1": _ids(get(f"{base}/v1/items/K1/bought-together", params={"k": 10}).json()),
    }


def _check(answers: dict[str, list[str]], search: dict[str, Any]) -> None:
    # events since the bundle: u7 bought H1 through the API (before the snapshot) and H2
    # while the server was down (after it); neither is offered again, nor K1 (bundle)
    assert not {"K1", "H1", "H2"} & set(answers["u7"]), answers["u7"]
    assert answers["u7"], "u7 gets recommendations"
    # catalogue changes while down: T1 new, K2 renamed and cheaper, B1 deleted
    assert answers["kettle"] == ["T1"]
    assert answers["serrated"] == ["K2"]
    assert answers["knife<=10"] == ["K2"]  # the filter reads the new price (5, was 25)
    hit = next(i for i in search["items"] if i["item_id"] == "K2")
    assert hit["title"] == "Serrated Bread Knife" and hit["price"] == 5.0
    assert "T1" in answers["browse"] and len(answers["browse"]) == 6
    for route, ids in answers.items():  # B1 was bought with K1 by u1 and u2: never served
        assert "B1" not in ids, (route, ids)


def test_restart_uses_the_snapshot_and_applies_what_changed_while_down(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    artifacts, log = tmp_path / "artifacts", tmp_path / "server.log"
    with open_store(url) as store:
        fill(store)
        bundle, built = ensure_bundle(store, artifacts)
        assert built
    versions = _versions(artifacts)
    snapshot = artifacts / "replica.npz"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    server = _start(url, artifacts, port, log)  # no snapshot yet: the log is read
    try:
        assert "B1" in _ids(httpx.get(f"{base}/v1/items/K1/similar").json())  # before
        ack = httpx.post(
            f"{base}/v1/events", json={"user_id": "u7", "item_id": "H1", "type": "purchase"}
        )
        assert ack.status_code == 200 and ack.json()["accepted"] == 1
        up = _ids(httpx.get(f"{base}/v1/users/u7/recommendations").json())
        assert up[0] == "H2" and "H1" not in up  # live, from the replica
    finally:
        _stop(server)
    first = log.read_text()
    assert "event replica read from the store" in first
    assert "event replica saved" in first and snapshot.is_file()  # at warm-up and shutdown

    # while the server is down: an event after the snapshot, a new, a changed and a
    # deleted item, all straight into the store
    with open_store(url) as store:
        late = Event(
            event_id="late-1", user_id="u7", item_id="H2", type="purchase",
            timestamp=datetime.now(UTC),
        )  # fmt: skip
        store.append_events(records_to_frame("events", [late]))
        changed = [
            Item(item_id="T1", title="Steel Tea Kettle", category="Home > Kitchen > Tea", price=30),
            Item(
                item_id="K2",
                title="Serrated Bread Knife",
                brand="Acme",
                category="Home > Kitchen > Knives",
                price=5,
            ),
        ]
        store.upsert_items(records_to_frame("items", changed))
        assert store.delete_item("B1")
    offset = len(first)

    server = _start(url, artifacts, port, log)
    try:
        ready = httpx.get(f"{base}/readyz").json()
        assert ready["model_version"] == bundle.version and ready["items"] == 6
        assert ready["events"] == 21  # 19 + H1 through the API + H2 while down
        search = httpx.get(f"{base}/v1/search", params={"q": "bread knife"}).json()
        answers = _answers(base)
    finally:
        _stop(server)
    second = log.read_text()[offset:]
    assert "event replica read from its snapshot" in second, second
    assert f"loaded bundle {bundle.directory}" in second and "built bundle" not in second
    assert _versions(artifacts) == versions  # nothing was trained
    _check(answers, search)

    # a damaged snapshot (cut short, as a full disk would leave it): replayed, not a crash
    data = snapshot.read_bytes()
    snapshot.write_bytes(data[: len(data) // 2])
    offset = len(log.read_text())
    server = _start(url, artifacts, port, log)
    try:
        search = httpx.get(f"{base}/v1/search", params={"q": "bread knife"}).json()
        replayed = _answers(base)
    finally:
        _stop(server)
    third = log.read_text()[offset:]
    assert "unreadable event replica snapshot" in third and "BadZipFile" in third, third
    assert "event replica read from the store" in third
    assert _versions(artifacts) == versions
    _check(replayed, search)
    assert replayed == answers  # the same answers as from the snapshot


def test_readyz_names_the_pending_start_up_steps(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    assert client.get("/readyz").status_code == 200  # the embedded app warmed up on start
    readiness = Readiness()
    client.app.state.readiness = readiness
    res = client.get("/readyz")
    assert res.status_code == 503
    assert res.json() == {"detail": "starting", "pending": ["bundle", *WARMUP_STEPS]}
    for step in ("bundle", "search"):
        readiness.done(step)
    assert client.get("/readyz").json()["pending"] == list(WARMUP_STEPS[1:])
    readiness.fail("autocomplete", RuntimeError("boom"))
    failed = client.get("/readyz").json()
    assert failed["detail"] == "failed" and failed["error"] == "autocomplete: RuntimeError: boom"
    for step in WARMUP_STEPS[1:]:
        readiness.done(step)
    assert client.get("/readyz").status_code == 503  # a failed step keeps it unready


def test_serve_warm_up_computes_every_answer(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    readiness = client.app.state.readiness
    assert readiness.ready and set(readiness.seconds) == {"bundle", *WARMUP_STEPS}


def test_a_failed_warm_up_keeps_the_server_up_and_says_why(shop) -> None:  # type: ignore[no-untyped-def]
    # the store goes away during start-up: the warm-up cannot even pick a user to ask for
    from fastapi.testclient import TestClient

    from shelfwise.serve.app import create_app
    from shelfwise.settings import ServeSettings, Settings

    store, engine = shop
    store.close()
    settings = Settings(serve=ServeSettings(auth=False, rate_limit=0))
    with TestClient(create_app(engine, settings)) as client:  # starts: nothing raised
        assert client.get("/healthz").status_code == 200
        res = client.get("/readyz")
        assert res.status_code == 503
        body = res.json()
        assert body["detail"] == "failed" and body["pending"] == list(WARMUP_STEPS)
        assert body["error"].startswith("search: StoreError:") and "closed" in body["error"]


def test_an_engine_on_an_older_bundle_applies_the_items_changed_since(shop) -> None:  # type: ignore[no-untyped-def]
    # what a start does in process: the same bundle, a store whose catalogue moved on
    from shelfwise.serve.search import served_search
    from shelfwise.serving import Engine

    store, engine = shop
    store.upsert_items(
        records_to_frame(
            "items",
            [
                Item(
                    item_id="K2",
                    title="Serrated Bread Knife",
                    brand="Acme",
                    price=5,
                    in_stock=False,
                )
            ],
        )
    )
    assert store.delete_item("H2")
    restarted = Engine(store, engine.bundle)
    cat = restarted.catalog
    k2 = cat.known_item("K2")
    assert cat.title[k2] == "Serrated Bread Knife" and cat.price[k2] == 5.0
    assert not cat.servable[k2]  # out of stock: searchable, not recommended
    assert not cat.alive[cat.index("H2")]
    found = served_search(restarted).search("serrated").items
    assert [(i["item_id"], i["price"]) for i in found] == [("K2", 5.0)]
    # u4 bought H1 + H2; neither the deleted H2 nor the out-of-stock K2 is offered
    offered = [i["item_id"] for i in restarted.recommend("u4", k=10).items]
    assert offered and not {"H2", "K2"} & set(offered)
    assert "H2" not in [i["item_id"] for i in restarted.similar("H1", k=10).items]
