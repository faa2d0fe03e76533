"""The server's search is the bundle's own `SearchService`, loaded with the bundle (not
rebuilt), numbered like the engine's live catalogue and kept in step with it: items the
store gained before the server started, PUTs, deletes and a hot-swapped bundle."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from shelfwise.artifacts import build_bundle, ensure_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Item
from shelfwise.serve.app import create_app
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import open_store


def _ids(body: Any) -> list[str]:
    items = body["items"] if isinstance(body, dict) else body.items
    return [i["item_id"] for i in items]


def test_served_search_is_the_bundles_service_in_catalogue_numbering(
    shop_template: Path, tmp_path: Path
) -> None:
    shutil.copyfile(shop_template / "api.duckdb", tmp_path / "api.duckdb")
    shutil.copytree(shop_template / "artifacts", tmp_path / "artifacts")
    with open_store(f"duckdb:///{tmp_path / 'api.duckdb'}") as store:
        bundle, built = ensure_bundle(store, tmp_path / "artifacts")
        assert not built
        # written to the store after the bundle was built, before the server started
        store.upsert_items(records_to_frame("items", [Item(item_id="P9", title="Pasta Maker")]))
        store.delete_item("B1")
        engine = Engine(store, bundle)
        settings = Settings(serve=ServeSettings(auth=False, rate_limit=0, refresh_seconds=0))
        with TestClient(create_app(engine, settings)) as client:
            service = client.app.state.services.search  # type: ignore[attr-defined]
            assert service is bundle.search  # loaded with the bundle, not rebuilt
            assert len(service.items) == len(engine.catalog)
            found = service.search("pasta maker")
            assert _ids(found) == ["P9"] and found.rows.tolist() == [engine.item_index("P9")]
            assert client.get("/v1/search", params={"q": "bamboo board"}).json()["total"] == 0
            # row i of the service is catalogue index i, for every item
            assert service.items["item_id"].tolist() == engine.catalog.item_id.tolist()

            # a PUT keeps the row and is searchable at once; a new item gets the next row
            revision = service.revision
            put = client.put("/v1/items/K1", json={"title": "Chef Knife Damascus", "price": 90})
            assert put.status_code == 200 and service.revision > revision
            body = client.get("/v1/search", params={"q": "damascus"}).json()
            assert _ids(body) == ["K1"] and body["items"][0]["price"] == 90.0
            assert service.search("damascus").rows.tolist() == [engine.item_index("K1")]
            client.put("/v1/items/N1", json={"title": "Nutmeg Grater"})
            assert service.search("nutmeg").rows.tolist() == [len(engine.catalog) - 1]
            assert client.delete("/v1/items/N1").status_code == 200
            assert client.get("/v1/search", params={"q": "nutmeg"}).json()["total"] == 0

            # a hot-swapped bundle brings its own service, brought up to the catalogue
            fresh = build_bundle(store, tmp_path / "artifacts", activate=False)
            engine.activate(fresh)
            swapped = client.app.state.services.search  # type: ignore[attr-defined]
            assert swapped is fresh.search and swapped is not service
            assert _ids(client.get("/v1/search", params={"q": "damascus"}).json()) == ["K1"]
            client.put("/v1/items/N2", json={"title": "Olive Oil Sprayer"})
            assert _ids(client.get("/v1/search", params={"q": "olive sprayer"}).json()) == ["N2"]
            assert len(swapped.items) == len(engine.catalog)
