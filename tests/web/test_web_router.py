"""The web router without a browser: pages under auth, the storefront key, tuning history."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.serve import create_app, web
from shelfwise.serve.security import create_key
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import open_store
from shelfwise.tuning.runs import tuning_runs

from .conftest import TUNING_TRIALS, write_tuning_report


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An app with API keys on, over a tiny demo store, with one tuning report."""
    tmp = tmp_path_factory.mktemp("web-auth")
    demo = generate(DemoConfig(seed=5, n_items=120, n_users=40, days=10))
    store = open_store(f"duckdb:///{tmp / 'store.duckdb'}")
    store.ingest(items=demo.items, users=demo.users, events=demo.events)
    bundle, _ = ensure_bundle(store, tmp / "artifacts")
    write_tuning_report(tmp / "artifacts")
    admin, _ = create_key(store, "admin", "test admin")
    shop, _ = create_key(store, "read,write", "storefront")
    app = create_app(Engine(store, bundle), Settings(serve=ServeSettings(auth=True)))
    with TestClient(app) as client:
        yield {"client": client, "admin": admin, "shop": shop, "models": tmp / "artifacts"}
    store.close()


def _config(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="shelfwise-config">(.*?)</script>', html)
    assert found, "the page inlines its config"
    return dict(json.loads(found.group(1)))


def test_pages_are_public_and_the_api_is_not(secured: dict[str, Any]) -> None:
    c = secured["client"]
    for path in ("/", "/search?q=mug", "/product/SKU-000001", "/admin", "/static/api.js"):
        assert c.get(path).status_code == 200, path
    assert c.get("/v1/search", params={"q": "mug"}).status_code == 401
    assert c.get("/v1/admin/tuning").status_code == 401
    shop = {"X-API-Key": secured["shop"]}
    assert c.get("/v1/search", params={"q": "mug"}, headers=shop).status_code == 200
    assert c.get("/v1/admin/tuning", headers=shop).status_code == 403


@contextmanager
def _with_web_key(c: TestClient, key: str) -> Iterator[None]:
    """Serve the pages with `key` inlined (as `SHELFWISE_SERVE__WEB_KEY` would), then not."""
    services = c.app.state.services  # type: ignore[attr-defined]
    before = services.settings
    services.settings = before.with_(serve={"web_key": key})
    try:
        yield
    finally:
        services.settings = before


def test_storefront_key_reaches_store_pages_only(secured: dict[str, Any]) -> None:
    c = secured["client"]
    assert _config(c.get("/").text)["apiKey"] is None
    with _with_web_key(c, secured["shop"]):
        store_config = _config(c.get("/").text)
        assert store_config["apiKey"] == secured["shop"] and store_config["page"] == "store"
        assert _config(c.get("/product/X").text)["apiKey"] == secured["shop"]
        admin_config = _config(c.get("/admin").text)
        assert admin_config["apiKey"] is None and admin_config["page"] == "admin"


def test_config_cannot_break_out_of_its_script_tag(secured: dict[str, Any]) -> None:
    with _with_web_key(secured["client"], "</script><script>alert(1)</script>"):
        html = secured["client"].get("/").text
    assert "<script>alert(1)" not in html
    assert _config(html)["apiKey"] == "</script><script>alert(1)</script>"


def test_tuning_history_returns_the_recorded_trials(secured: dict[str, Any]) -> None:
    c = secured["client"]
    runs = c.get("/v1/admin/tuning", headers={"X-API-Key": secured["admin"]}).json()
    assert len(runs) == 1
    run = runs[0]
    assert run["model"] == "itemknn" and run["metric"] == "ndcg@10"
    assert run["version"] == "v0001" and run["promoted"] is True
    assert [t["number"] for t in run["trials"]] == list(range(TUNING_TRIALS))
    values = [t["value"] for t in run["trials"]]
    assert run["best_value"] == pytest.approx(max(values))
    assert values.index(max(values)) == run["best_trial"]
    # the objective peaks at 0.3 (x = 0.4)
    assert all(v <= 0.3 + 1e-12 for v in values)


def test_tuning_runs_skip_broken_reports(tmp_path: Path) -> None:
    assert tuning_runs(None) == []
    assert tuning_runs(tmp_path / "nowhere") == []
    reports = tmp_path / "reports"
    (reports / "broken").mkdir(parents=True)
    (reports / "broken" / "result.json").write_text("{not json")
    (reports / "empty").mkdir()
    (reports / "only-trials").mkdir()
    (reports / "only-trials" / "trials.csv").write_text(
        "number,state,value\n0,COMPLETE,0.5\n1,PRUNED,\nx,COMPLETE,1\n2,COMPLETE,nan\n"
    )
    runs = tuning_runs(tmp_path)
    assert [r.study for r in runs] == ["only-trials"]
    assert [(t.number, t.state, t.value) for t in runs[0].trials] == [
        (0, "COMPLETE", 0.5),
        (1, "PRUNED", None),
        (2, "COMPLETE", None),
    ]
    assert runs[0].n_trials == 3 and runs[0].best_value is None


def test_static_files_are_the_shipped_ones() -> None:
    names = set(web._FILES)
    assert {"store.html", "admin.html", "api.js", "storefront.js", "admin.js"} <= names
    assert {"chart.js", "shelfwise.css", "favicon.svg"} <= names
    for name in ("store.html", "admin.html"):
        assert "<!--shelfwise-config-->" in (web.STATIC_DIR / name).read_text()
