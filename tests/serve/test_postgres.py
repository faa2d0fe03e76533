"""The API over a PostgreSQL store: a smoke test of the paths that write and read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle
from shelfwise.serve import create_app
from shelfwise.serve.security import create_key
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import open_store

from .conftest import fill


@pytest.mark.postgres
def test_api_on_postgres(postgres_schema: str, tmp_path: Path) -> None:
    store = open_store(postgres_schema)
    try:
        fill(store)
        bundle, _ = ensure_bundle(store, tmp_path / "artifacts")
        key, _ = create_key(store, "admin")
        settings = Settings(serve=ServeSettings(auth=True, rate_limit=0))
        with TestClient(create_app(Engine(store, bundle), settings)) as client:
            auth = {"X-API-Key": key}
            assert client.get("/v1/search", params={"q": "knife"}).status_code == 401
            found = client.get("/v1/search", params={"q": "knife"}, headers=auth).json()
            assert {i["item_id"] for i in found["items"]} == {"K1", "K2"}
            r = client.post(
                "/v1/events", json={"user_id": "pg", "item_id": "H1", "type": "view"}, headers=auth
            )
            assert r.json() == {"accepted": 1, "duplicates": 0}
            recs = client.get("/v1/users/pg/recommendations", params={"k": 1}, headers=auth)
            assert recs.json()["strategy"] == "personalised"
            assert recs.json()["items"][0]["item_id"] == "H2"
            put = client.put(
                "/v1/items/N1", json={"title": "Noise Cancelling Headphones"}, headers=auth
            )
            assert put.json()["new"] == 1
            assert "N1" in {
                i["item_id"]
                for i in client.get("/v1/search", params={"q": "noise"}, headers=auth).json()[
                    "items"
                ]
            }
            assert client.get("/v1/users/pg/profile", headers=auth).json()["events"] == 1
            assert client.delete("/v1/users/pg", headers=auth).json()["deleted"]["events"] == 1
            assert client.get("/readyz").json()["events"] == 19
    finally:
        store.close()
