"""API keys: the store's key table on both backends, hashing, verification, the CLI, and
auth / rate limiting / body limits / CORS over HTTP."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from shelfwise.cli import main
from shelfwise.errors import ConfigError, StoreError
from shelfwise.serve.security import (
    KeyVerifier,
    RateLimiter,
    create_key,
    grants,
    parse_scopes,
    retry_after_header,
    split_key,
)
from shelfwise.store import ApiKeyRecord, Store, open_store

from .conftest import AppFactory


# -- the store's key table (runs on DuckDB and PostgreSQL) --------------------------------------
def test_store_keeps_key_records_without_moving_the_fingerprint(store: Store) -> None:
    fingerprint = store.fingerprint()
    created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    record = ApiKeyRecord("0123456789ab", "shop", ("read", "write"), "f" * 64, created)
    store.add_api_key(record)
    assert store.get_api_key("0123456789ab") == record
    assert store.get_api_key("nope") is None
    with pytest.raises(StoreError, match="exists already"):
        store.add_api_key(record)
    store.add_api_key(ApiKeyRecord("ba9876543210", "", ("admin",), "e" * 64, created))
    assert [r.key_id for r in store.api_keys()] == ["0123456789ab", "ba9876543210"]
    assert store.revoke_api_key("0123456789ab")
    assert not store.revoke_api_key("0123456789ab")  # already revoked
    assert not store.revoke_api_key("nope")
    revoked = store.get_api_key("0123456789ab")
    assert revoked is not None and not revoked.active and revoked.revoked_at is not None
    assert store.fingerprint() == fingerprint  # keys are not catalog data: no retraining
    assert store.counts() == {"items": 0, "users": 0, "events": 0}


# -- hashing and verification -----------------------------------------------------------------
def test_keys_are_stored_as_sha256_of_the_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_store(f"duckdb:///{tmp_path / 'k.duckdb'}") as store:
        key, record = create_key(store, "write, read", "front")
        assert record.scopes == ("read", "write") and record.name == "front"
        key_id, secret = split_key(key) or ("", "")
        assert key.startswith("swk_") and key_id == record.key_id and len(secret) >= 43
        stored = store.get_api_key(key_id)
        assert stored is not None
        assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in json.dumps([str(v) for v in stored.__dict__.values()])
        verifier = KeyVerifier(store, cache_seconds=0)
        found = verifier.verify(key)
        assert found is not None and found.scopes == ("read", "write")
        assert verifier.verify(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert verifier.verify("swk_nothing") is None and verifier.verify("") is None
        store.revoke_api_key(key_id)
        assert verifier.verify(key) is None


def test_scopes() -> None:
    assert parse_scopes("admin,read,read") == ("read", "admin")
    with pytest.raises(ConfigError, match="unknown scope 'delete'"):
        parse_scopes("read,delete")
    with pytest.raises(ConfigError, match="at least one"):
        parse_scopes(" , ")
    assert grants(("admin",), "write") and grants(("read",), "read")
    assert not grants(("read",), "write") and not grants(("write",), "read")


def test_token_bucket() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.acquire("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a", now=0.0) == pytest.approx(0.5)  # next token in 1/2 s
    assert limiter.acquire("b", now=0.0) == 0.0  # buckets are per identity
    assert limiter.acquire("a", now=0.5) == 0.0  # refilled
    assert limiter.acquire("a", now=0.5) > 0
    assert RateLimiter(rate=0, burst=1).acquire("a") == 0.0  # off
    assert retry_after_header(0.2) == "1" and retry_after_header(2.1) == "3"


# -- the CLI ------------------------------------------------------------------------------------
def test_keys_cli(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    url = f"duckdb:///{tmp_path / 'cli.duckdb'}"
    assert main(["keys", "create", "--scopes", "read,write", "--name", "shop", "--store", url]) == 0
    key = capsys.readouterr().out.splitlines()[0]
    assert split_key(key) is not None
    assert main(["keys", "list", "--json", "--store", url]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["scopes"], r["revoked_at"]) for r in rows] == [
        ("shop", "read,write", None)
    ]
    assert key not in json.dumps(rows)
    assert main(["keys", "revoke", rows[0]["key_id"], "--store", url]) == 0
    assert main(["keys", "revoke", rows[0]["key_id"], "--store", url]) == 2
    assert main(["keys", "create", "--scopes", "root", "--store", url]) == 2
    assert "unknown scope 'root'" in capsys.readouterr().err


# -- over HTTP ----------------------------------------------------------------------------------
def test_auth_401_403_and_scopes(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client(auth=True)
    read, _ = create_key(store, "read")
    write, _ = create_key(store, "write")
    admin, admin_record = create_key(store, "admin")
    r = client.get("/v1/search", params={"q": "knife"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert (
        client.get(
            "/v1/search", params={"q": "knife"}, headers={"X-API-Key": "swk_bad"}
        ).status_code
        == 401
    )

    def as_(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    event = {"user_id": "a", "item_id": "K1", "type": "view"}
    assert client.get("/v1/search", params={"q": "knife"}, headers=as_(read)).status_code == 200
    assert client.get("/v1/users/a/recommendations", headers={"X-API-Key": read}).status_code == 200
    r = client.post("/v1/events", json=event, headers=as_(read))
    assert r.status_code == 403 and "'write'" in r.json()["detail"]
    assert client.post("/v1/events", json=event, headers=as_(write)).status_code == 200
    assert client.get("/v1/search", params={"q": "knife"}, headers=as_(write)).status_code == 403
    for method, path in (("put", "/v1/items/Z9"), ("delete", "/v1/users/a"), ("get", "/v1/models")):
        kwargs = {"json": {"title": "Zed"}} if method == "put" else {}
        assert getattr(client, method)(path, headers=as_(write), **kwargs).status_code == 403
        assert getattr(client, method)(path, headers=as_(admin), **kwargs).status_code == 200
    # admin implies read and write; health and metrics need no key
    assert client.get("/v1/search", params={"q": "knife"}, headers=as_(admin)).status_code == 200
    assert client.get("/healthz").status_code == 200 and client.get("/metrics").status_code == 200
    # keys over the admin API: created, listed (never shown again), revoked at once
    made = client.post("/v1/admin/keys", json={"scopes": ["read"], "name": "x"}, headers=as_(admin))
    assert made.status_code == 201
    new_key = made.json()["key"]
    assert client.get("/v1/search", params={"q": "a"}, headers=as_(new_key)).status_code == 200
    listed = client.get("/v1/admin/keys", headers=as_(admin)).json()
    assert len(listed) == 4 and "key" not in listed[0] and new_key not in json.dumps(listed)
    revoked = client.delete(f"/v1/admin/keys/{made.json()['key_id']}", headers=as_(admin))
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/v1/search", params={"q": "a"}, headers=as_(new_key)).status_code == 401
    assert client.delete("/v1/admin/keys/000000000000", headers=as_(admin)).status_code == 404
    assert admin_record.key_id in {k["key_id"] for k in listed}


def test_rate_limit_429_with_retry_after(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    client = make_client(auth=True, rate_limit=0.5, rate_burst=2)
    first, _ = create_key(store, "read")
    second, _ = create_key(store, "read")
    headers = {"X-API-Key": first}
    codes = [
        client.get("/v1/autocomplete", params={"q": "kn"}, headers=headers).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    r = client.get("/v1/autocomplete", params={"q": "kn"}, headers=headers)
    assert r.status_code == 429 and int(r.headers["retry-after"]) in (1, 2)
    # another key has its own bucket
    assert (
        client.get(
            "/v1/autocomplete", params={"q": "kn"}, headers={"X-API-Key": second}
        ).status_code
        == 200
    )


def test_body_limit_413(make_client: AppFactory) -> None:
    client = make_client(max_body_bytes=2048)
    events = {
        "events": [{"user_id": f"user-{i}", "item_id": "K1", "type": "view"} for i in range(60)]
    }
    r = client.post("/v1/events", json=events)
    assert r.status_code == 413 and "2,048 bytes" in r.json()["detail"]

    def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: counted as it streams
        yield json.dumps(events).encode()

    r = client.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    ok = client.post("/v1/events", json={"events": events["events"][:5]})
    assert ok.status_code == 200


def test_cors_is_configurable(make_client: AppFactory) -> None:
    client = make_client(cors_origins="https://shop.example")
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type",
    }
    r = client.options("/v1/events", headers=preflight)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    r = client.options("/v1/events", headers={**preflight, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    plain = make_client()
    assert (
        "access-control-allow-origin"
        not in plain.get("/healthz", headers={"Origin": "https://shop.example"}).headers
    )
