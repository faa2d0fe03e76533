"""Restart = restart: `shelfwise serve` starts on the last good bundle whatever arrived in
the store while it was down, and answers from it with the newer events and items applied
online; `/readyz` is 200 only once every route that answers from the bundle is warm."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

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


def test_readyz_names_the_pending_start_up_steps(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    assert client.get("/readyz").status_code == 200  # the embedded app warmed up on start
    readiness = Readiness()
    client.app.state.readiness = readiness  # type: ignore[attr-defined]
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
    readiness = client.app.state.readiness  # type: ignore[attr-defined]
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
