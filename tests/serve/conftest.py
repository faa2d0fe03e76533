"""A tiny shop in a real DuckDB store, its bundle, and API clients over it (no mocks)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.serve import create_app
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import Store, open_store

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
ITEMS = [
    Item(
        item_id="K1", title="Chef Knife", brand="Acme", category="Home > Kitchen > Knives", price=40
    ),
    Item(
        item_id="K2",
        title="Bread Knife",
        brand="Acme",
        category="Home > Kitchen > Knives",
        price=25,
    ),
    Item(item_id="B1", title="Bamboo Cutting Board", category="Home > Kitchen > Boards", price=18),
    Item(
        item_id="H1",
        title="Wireless Headphones",
        brand="Sonix",
        category="Electronics > Audio > Headphones",
        price=99,
    ),
    Item(
        item_id="H2",
        title="Headphone Stand",
        category="Electronics > Audio > Accessories",
        price=15,
        description="holds wireless headphones",
    ),
    Item(
        item_id="S1",
        title="Bluetooth Speaker",
        brand="Sonix",
        category="Electronics > Audio > Speakers",
        price=60,
    ),
]
# kitchen users buy K1+K2+B1 together, audio users H1+H2; K1 is the most popular overall;
# S1 was only viewed, by 4 users 20 days later, so it trends in Electronics > Audio
BASKETS = {
    "u1": ["K1", "K2", "B1"],
    "u2": ["K1", "K2", "B1"],
    "u3": ["K1", "K2"],
    "u4": ["H1", "H2"],
    "u5": ["H1", "H2"],
    "u6": ["K1", "H1"],
    "u7": ["K1"],
}


def shop_events() -> list[Event]:
    """Purchases per basket (one session per user), and later views of S1."""
    events = [
        Event(
            event_id=f"{u}-{i}",
            user_id=u,
            item_id=item,
            type="purchase",
            value=10.0,
            session_id=f"s-{u}",
            timestamp=T0 + timedelta(minutes=i),
        )
        for u, items in BASKETS.items()
        for i, item in enumerate(items)
    ]
    events += [
        Event(
            event_id=f"v{i}",
            user_id=f"viewer{i}",
            item_id="S1",
            type="view",
            timestamp=T0 + timedelta(days=20, minutes=i),
        )
        for i in range(4)
    ]
    return events


def fill(store: Store) -> None:
    """Write the tiny shop into a store."""
    store.ingest(
        items=records_to_frame("items", ITEMS), events=records_to_frame("events", shop_events())
    )


@pytest.fixture(scope="session")
def shop_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The filled shop store and its bundle, built once per session (copied per test)."""
    root = tmp_path_factory.mktemp("shop")
    with open_store(f"duckdb:///{root / 'api.duckdb'}") as store:
        fill(store)
        _, built = ensure_bundle(store, root / "artifacts")
        assert built
    return root


@pytest.fixture()
def shop(shop_template: Path, tmp_path: Path) -> Iterator[tuple[Store, Engine]]:
    """A private copy of the filled DuckDB store and an engine over its bundle."""
    shutil.copyfile(shop_template / "api.duckdb", tmp_path / "api.duckdb")
    shutil.copytree(shop_template / "artifacts", tmp_path / "artifacts")
    store = open_store(f"duckdb:///{tmp_path / 'api.duckdb'}")
    bundle, built = ensure_bundle(store, tmp_path / "artifacts")
    assert not built  # the copy has the template's contents, so its bundle fits
    try:
        yield store, Engine(store, bundle)
    finally:
        store.close()


AppFactory = Callable[..., TestClient]


@pytest.fixture()
def make_client(shop: tuple[Store, Engine], tmp_path: Path) -> Iterator[AppFactory]:
    """`make_client(**settings)`: a started TestClient over the shop (auth off by default)."""
    _, engine = shop
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        fields: dict[str, Any] = {
            "auth": False,
            "rate_limit": 0,
        }
        fields.update(overrides)
        client = TestClient(create_app(engine, Settings(serve=ServeSettings(**fields))))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture()
def client(make_client: AppFactory) -> TestClient:
    """A client with auth and rate limiting off."""
    return make_client()
