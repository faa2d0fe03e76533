"""The schema version row: a store already at `SCHEMA_VERSION` opens without running its
schema statements, an older one is migrated by them and stamped, a newer one is refused
untouched."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.errors import StoreError
from shelfwise.store import open_store
from shelfwise.store.sql import SCHEMA_VERSION


def _indexes(path: Path) -> set[str]:
    with duckdb.connect(str(path)) as con:
        rows = con.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
    return {str(r[0]) for r in rows}


def _columns(path: Path, table: str) -> set[str]:
    with duckdb.connect(str(path)) as con:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    return {str(r[0]) for r in rows}


def _version(path: Path) -> str:
    with duckdb.connect(str(path)) as con:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row is not None
    return str(row[0])


def _filled(path: Path) -> str:
    url = f"duckdb:///{path}"
    with open_store(url) as store:
        store.ingest(
            items=records_to_frame("items", [Item(item_id="A", title="Anvil", price=3)]),
            events=records_to_frame(
                "events", [Event(event_id="e1", user_id="u1", item_id="A", type="view")]
            ),
        )
    return url


def test_a_current_store_opens_without_running_its_schema_statements(tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    url = _filled(path)
    assert _version(path) == str(SCHEMA_VERSION)
    assert "events_timestamp_idx" in _indexes(path)
    with duckdb.connect(str(path)) as con:  # an index the schema statements would recreate
        con.execute("DROP INDEX events_timestamp_idx")
    with open_store(url) as store:
        fingerprint = store.fingerprint()
        assert store.counts() == {"items": 1, "users": 1, "events": 1}
        assert store.items()["title"].tolist() == ["Anvil"]
    # not recreated: the second open ran no CREATE INDEX IF NOT EXISTS (nor anything else)
    assert "events_timestamp_idx" not in _indexes(path)
    assert "events_user_id_idx" in _indexes(path)  # the other indices are untouched
    with open_store(url) as store:
        assert store.fingerprint() == fingerprint  # and nothing was written


#: A version-1 file, as stores were made before events.request_id, impressions and
#: experiments (with one item and one event).
VERSION_1 = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT INTO meta VALUES ('schema_version', '1'), ('store_id', 'old'), ('revision', '3'), "
    "('next_seq', '2'), ('erasures', '0')",
    "CREATE TABLE items (item_id TEXT PRIMARY KEY, title TEXT, description TEXT, "
    "category TEXT, brand TEXT, price DOUBLE, currency TEXT, "
    "in_stock BOOLEAN NOT NULL DEFAULT TRUE, attributes JSON NOT NULL, "
    "created_at TIMESTAMP, updated_at TIMESTAMP NOT NULL)",
    "INSERT INTO items (item_id, title, attributes, updated_at) "
    "VALUES ('A', 'Anvil', '{}', TIMESTAMP '2026-01-01')",
    "CREATE TABLE users (user_id TEXT PRIMARY KEY, attributes JSON NOT NULL, created_at TIMESTAMP)",
    "CREATE TABLE events (seq BIGINT PRIMARY KEY, event_id TEXT UNIQUE, "
    'user_id TEXT NOT NULL, item_id TEXT, "type" TEXT NOT NULL, "value" DOUBLE, '
    'query TEXT, session_id TEXT, "timestamp" TIMESTAMP NOT NULL)',
    "INSERT INTO events (seq, event_id, user_id, item_id, type, timestamp) "
    "VALUES (1, 'e1', 'u1', 'A', 'view', TIMESTAMP '2026-01-02')",
    "CREATE TABLE api_keys (key_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "scopes TEXT NOT NULL, key_hash TEXT NOT NULL, created_at TIMESTAMP NOT NULL, "
    "revoked_at TIMESTAMP)",
]


def test_an_older_store_is_migrated_and_stamped(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:
        for sql in VERSION_1:
            con.execute(sql)
    assert "request_id" not in _columns(path, "events") and not _indexes(path)
    with open_store(f"duckdb:///{path}") as store:
        assert store.fingerprint() == "old-3"  # the data came through the migration
        assert store.events()["event_id"].tolist() == ["e1"]
        assert store.items()["title"].tolist() == ["Anvil"]
    assert "request_id" in _columns(path, "events")
    assert "marginal_propensities" in _columns(path, "impressions")
    assert _columns(path, "experiments")
    assert {"events_user_id_idx", "events_timestamp_idx", "events_request_id_idx"} <= _indexes(path)
    assert _version(path) == str(SCHEMA_VERSION)


def test_a_newer_store_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    url = _filled(path)
    with duckdb.connect(str(path)) as con:
        con.execute(f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
        con.execute("DROP INDEX events_timestamp_idx")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        open_store(url)
    assert "events_timestamp_idx" not in _indexes(path)  # nothing ran before the refusal


def test_a_new_store_gets_the_tables_and_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.duckdb"
    with open_store(f"duckdb:///{path}") as store:
        assert store.counts() == {"items": 0, "users": 0, "events": 0}
    assert _version(path) == str(SCHEMA_VERSION)
    assert {"events_user_id_idx", "events_timestamp_idx", "events_request_id_idx"} <= _indexes(path)


@pytest.mark.postgres
def test_postgres_skips_the_statements_at_the_current_version(postgres_schema: str) -> None:
    import psycopg

    def indexes() -> set[str]:
        with psycopg.connect(postgres_schema) as con:
            rows = con.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            ).fetchall()
        return {str(r[0]) for r in rows}

    with open_store(postgres_schema) as store:  # a new schema: no meta table to read yet
        store.ingest(items=records_to_frame("items", [Item(item_id="A", title="Anvil")]))
    with psycopg.connect(postgres_schema, autocommit=True) as con:
        con.execute("DROP INDEX events_timestamp_idx")
    with open_store(postgres_schema) as store:
        assert store.items()["title"].tolist() == ["Anvil"]
    assert "events_timestamp_idx" not in indexes()  # no statement ran
    with psycopg.connect(postgres_schema, autocommit=True) as con:
        con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with open_store(postgres_schema) as store:  # an older schema: migrated and stamped
        assert store.counts()["items"] == 1
    assert "events_timestamp_idx" in indexes()
    with psycopg.connect(postgres_schema) as con:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    assert row == (str(SCHEMA_VERSION),)
