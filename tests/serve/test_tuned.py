"""Serving a tuned model-store version: its own item order is mapped onto the catalogue."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle
from shelfwise.artifacts.registry import Registry
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.data.matrix import build_interactions
from shelfwise.recommenders import create
from shelfwise.serve import create_app
from shelfwise.serving import Engine
from shelfwise.settings import PathSettings, ServeSettings, Settings
from shelfwise.store import open_store

from .conftest import AppFactory


def test_activate_tuned_version_maps_item_ids(
    make_client: AppFactory, shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store, engine = shop
    # trained on the purchases only, with the item vocabulary in its own (first-seen) order,
    # which differs from the bundle's catalogue order
    data = build_interactions(store.interactions(types=["purchase"]))
    assert list(data.items) != list(engine.catalog.item_id[: len(data.items)])
    model = create("itemknn", neighbors=10, shrink=0.0).fit(data)
    version = Registry(tmp_path / "artifacts").save_model(
        model, {"validation": {"ndcg@10": 0.5}}, dataset="shop", items=data.items
    )
    client = make_client()
    listed = {v["version"]: v for v in client.get("/v1/models").json()["versions"]}
    assert listed[version]["metrics"] == {"validation": {"ndcg@10": 0.5}}
    assert not listed[version]["active"]
    r = client.post(f"/v1/models/{version}/activate")
    assert r.status_code == 200 and r.json()["active"]
    assert engine.serving_label == f"itemknn@{version}"
    body = client.get("/v1/users/u3/recommendations", params={"k": 1}).json()
    assert body["strategy"] == "personalised" and body["items"][0]["item_id"] == "B1"
    assert body["model"] == f"itemknn@{version}"
    body = client.get("/v1/users/u4/recommendations", params={"k": 1}).json()
    assert body["items"][0]["item_id"] == "K1"  # u6 bought K1 with H1
    metrics = client.get("/metrics").text
    assert f'serving="itemknn@{version}"' in metrics
    assert Registry(tmp_path / "artifacts").champion().version == version  # type: ignore[union-attr]


def _finished(client: TestClient, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    state = job
    while time.monotonic() < deadline and state["status"] in ("queued", "running"):
        time.sleep(0.5)
        state = client.get(f"/v1/jobs/{job['job_id']}").json()
    return state


def test_a_failed_tune_job_reports_the_library_error(make_client: AppFactory) -> None:
    client = make_client()
    job = client.post("/v1/jobs", json={"kind": "tune", "model": "itemknn", "trials": 2})
    state = _finished(client, job.json())
    assert state["status"] == "failed"  # the tiny shop has too few interactions to split
    assert "DataError" in state["error"] and "too small to tune" in state["error"]


def test_tune_job_runs_the_library_in_a_child_process_and_serves_the_winner(
    tmp_path: Path,
) -> None:
    demo = generate(DemoConfig(seed=5, n_items=300, n_users=200, days=30))
    with open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}") as store:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
        bundle, _ = ensure_bundle(store, tmp_path / "artifacts")
        engine = Engine(store, bundle)
        settings = Settings(
            serve=ServeSettings(auth=False), paths=PathSettings(artifacts=tmp_path / "artifacts")
        )
        with TestClient(create_app(engine, settings)) as client:
            job = client.post(
                "/v1/jobs",
                json={"kind": "tune", "model": "itemknn", "trials": 2, "activate": True},
            )
            assert job.status_code == 202
            state = _finished(client, job.json())
            assert state["status"] == "succeeded", state["error"]
            version = state["result"]["version"]
            info = Registry(tmp_path / "artifacts").get(version)
            assert info.kind == "model" and info.model == "itemknn"
            assert info.extra["n_trials"] == 2 and "ndcg@10" in info.metrics["validation"]
            assert engine.serving_label == f"itemknn@{version}"
            runs = client.get("/v1/admin/tuning").json()  # the report the admin page reads
            assert runs[0]["version"] == version and len(runs[0]["trials"]) == 2
