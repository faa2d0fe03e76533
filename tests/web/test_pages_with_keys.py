"""The pages when the API requires keys: the storefront uses its configured key, the admin
page asks for an admin key, in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shelfwise.artifacts import build_bundle, ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.serve import create_app
from shelfwise.serve.security import create_key
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import open_store

from .conftest import checked_page, serve_in_thread


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with API keys on over a tiny demo store; the storefront key in its settings."""
    tmp: Path = tmp_path_factory.mktemp("web-keys")
    demo = generate(DemoConfig(seed=9, n_items=150, n_users=60, days=15))
    store = open_store(f"duckdb:///{tmp / 'store.duckdb'}")
    store.ingest(items=demo.items, users=demo.users, events=demo.events)
    first, _ = ensure_bundle(store, tmp / "artifacts")
    bundle = build_bundle(store, tmp / "artifacts")  # a second version, served
    admin, _ = create_key(store, "admin", "admin page")
    shop, _ = create_key(store, "read,write", "storefront")
    app = create_app(Engine(store, bundle), Settings(serve=ServeSettings(auth=True, web_key=shop)))
    with serve_in_thread(app) as base_url:
        yield {
            "url": base_url,
            "admin": admin,
            "store": store,
            "versions": (first.manifest["version"], bundle.manifest["version"]),
        }
    store.close()


@pytest.fixture()
def keyed_page(browser: Any, keyed: dict[str, Any]) -> Iterator[Any]:
    with checked_page(browser, keyed["url"]) as page:
        yield page


def test_storefront_sends_its_key_and_events_are_stored(
    keyed_page: Any, keyed: dict[str, Any]
) -> None:
    page = keyed_page
    item_id = str(keyed["store"].items()["item_id"].iloc[0])
    page.goto(f"/product/{item_id}")
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 1")
    assert page.locator("#row-similar .card").count() > 0
    page.evaluate("() => window.shelfwise.flushed()")
    visitor = page.evaluate("() => window.shelfwise.visitorId()")
    views = keyed["store"].events(user_id=visitor, types=["view"])
    assert views["item_id"].tolist() == [item_id]


def test_admin_page_asks_for_an_admin_key(keyed_page: Any, keyed: dict[str, Any]) -> None:
    page = keyed_page
    page.goto("/admin")
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 1")
    form = page.locator("#key-form")
    assert form.is_visible()
    assert "requires a key" in page.inner_text("#key-note")
    assert page.locator('#counts .stat[data-key="items"]').count() == 0

    page.fill("#api-key", keyed["admin"])
    page.click("#key-form button")
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 2")
    assert not form.is_visible()
    counts = keyed["store"].counts()
    shown = page.inner_text('#counts .stat[data-key="items"] .n').replace(",", "")
    assert int(shown) == counts["items"]
    # the key stays in this tab only
    assert page.evaluate("() => sessionStorage.getItem('shelfwise.apiKey')") == keyed["admin"]
    assert page.evaluate("() => localStorage.getItem('shelfwise.apiKey')") is None

    # two bundle versions: the newer is served; activating the older one swaps them
    older, newer = keyed["versions"]
    assert page.get_attribute("#models-table tr.active", "data-version") == newer
    page.click(f'button[data-activate="{older}"]')
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 3")
    assert page.get_attribute("#models-table tr.active", "data-version") == older
    assert page.locator(f'button[data-activate="{newer}"]').count() == 1
    assert "No training or tuning jobs" in page.inner_text("#jobs")
    # roll back from the admin page: the newer one is served again
    page.click('button[data-job="rollback"]')
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 4")
    assert page.get_attribute("#models-table tr.active", "data-version") == newer
    # a gated retrain from the admin page: a train job in the table, with a cancel button
    page.click('button[data-job="retrain"]')
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 5")
    row = page.locator("#jobs-table tbody tr")
    assert row.count() == 1 and "train" in row.inner_text()
    assert row.locator("button[data-cancel]").count() == 1  # queued or running still
