"""The Store contract (`shelfwise.testing.StoreContract`) against DuckDB and PostgreSQL, and
what only DuckDB / PostgreSQL do (opening by URL, errors, the 200k-event bulk path).

The backends come from the `store_url` fixture of tests/conftest.py, parametrised over
DuckDB (a file in tmp_path) and PostgreSQL (a fresh schema; skipped without a server,
failing under CI=true).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import StoreError
from shelfwise.store import open_store
from shelfwise.store.duckdb_store import DuckDBStore
from shelfwise.store.postgres_store import redact
from shelfwise.testing.store import T0, StoreContract, item, items_frame


class TestStoreContract(StoreContract):
    """The contract, once per backend of the conftest `store_url` fixture."""


# -- opening by URL (DuckDB: no server needed) -----------------------------------------------


def test_duckdb_bulk_ingest_of_200k_events(tmp_path: Path) -> None:
    # speed is measured in benchmarks/ingest.py; this checks the bulk path is correct
    n = 200_000
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "user_id": [f"u{i % 5000}" for i in range(n)],
            "item_id": [f"i{i % 2000}" for i in range(n)],
            "type": "view",
            "value": np.nan,
            "query": None,
            "session_id": None,
            "timestamp": pd.Timestamp(T0) + pd.to_timedelta(np.arange(n), unit="s"),
        }
    )
    with open_store(f"duckdb:///{tmp_path / 'big.duckdb'}") as store:
        assert store.append_events(frame) == n
        assert store.counts()["users"] == 5000
        assert store.append_events(frame) == 0
        back = store.events(user_id="u7")
        assert back["item_id"].tolist() == [f"i{i % 2000}" for i in range(7, n, 5000)]


def test_open_store_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("duckdb:///rel/dir/a.duckdb") as s:  # relative; parent folders created
        assert isinstance(s, DuckDBStore) and s.url == "duckdb:///rel/dir/a.duckdb"
    assert (tmp_path / "rel" / "dir" / "a.duckdb").is_file()
    absolute = tmp_path / "abs" / "b.duckdb"
    with open_store(f"duckdb:///{absolute}") as s:  # four slashes: absolute
        s.upsert_items(items_frame(item("A1")))
    with open_store(str(absolute)) as s:  # a plain path
        assert s.counts()["items"] == 1
    with open_store("duckdb:///:memory:") as s:
        s.upsert_items(items_frame(item("A1")))
        assert s.counts()["items"] == 1
    with open_store("duckdb:///:memory:") as s:
        assert s.counts()["items"] == 0  # each in-memory store is its own
    assert not (tmp_path / ":memory:").exists()


@pytest.mark.parametrize(
    "url", ["mysql://x/db", "sqlite:///x.db", "x.sqlite", "", "duckdb://", "duckdb://host/x"]
)
def test_bad_urls_are_store_errors_naming_the_valid_forms(url: str) -> None:
    with pytest.raises(StoreError, match="duckdb:///"):
        open_store(url)


def test_unreachable_postgres_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        open_store("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")


def test_postgres_url_hides_the_password() -> None:
    assert redact("postgresql://ann:s3cret@db:5432/shop") == "postgresql://ann:***@db:5432/shop"
    assert redact("postgresql://ann@db/shop") == "postgresql://ann@db/shop"


def test_not_a_duckdb_file_is_a_store_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("this is not a database")
    with pytest.raises(StoreError, match="cannot open"):
        open_store(str(bogus))
