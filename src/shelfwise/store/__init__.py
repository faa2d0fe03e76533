"""Stores: the one `Store` interface and `open_store(url)`, which picks the backend.

Store URLs:

- `duckdb:///relative/path.duckdb` - a DuckDB file relative to the current directory
  (SQLAlchemy convention: three slashes, then the path as given);
- `duckdb:////absolute/path.duckdb` - an absolute path (four slashes);
- `duckdb:///:memory:` - an in-memory DuckDB database (gone when closed);
- a plain filesystem path ending in `.duckdb` - that DuckDB file;
- `postgresql://user:password@host:port/dbname` (or `postgres://...`) - a PostgreSQL
  database; the URL goes to psycopg/libpq as given, query parameters included.

The parent folder of a DuckDB file is created if missing, and the tables on first open.
"""

from __future__ import annotations

from shelfwise.errors import StoreError
from shelfwise.store.base import ApiKeyRecord, ExperimentRow, IngestReport, Store

__all__ = [
    "STORE_URL_FORMS",
    "ApiKeyRecord",
    "ExperimentRow",
    "IngestReport",
    "Store",
    "open_store",
]

STORE_URL_FORMS = (
    "duckdb:///relative/path.duckdb",
    "duckdb:////absolute/path.duckdb",
    "duckdb:///:memory:",
    "path/to/file.duckdb",
    "postgresql://user@host:port/dbname",
)
_DUCKDB_PREFIX = "duckdb://"
_POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def open_store(url: str) -> Store:
    """Open (and create if needed) the store at `url`; see the module docstring for forms.

    Raises `StoreError` for an unknown scheme or a store that cannot be opened.
    """
    text = str(url).strip()
    lowered = text.lower()
    if lowered.startswith(_DUCKDB_PREFIX):
        from shelfwise.store.duckdb_store import DuckDBStore

        rest = text[len(_DUCKDB_PREFIX) :]
        if not rest.startswith("/") or len(rest) == 1:
            raise StoreError(
                f"bad DuckDB store URL '{text}': use duckdb:///relative/path.duckdb, "
                "duckdb:////absolute/path.duckdb or duckdb:///:memory:"
            )
        return DuckDBStore(rest[1:], url=text)
    if lowered.startswith(_POSTGRES_PREFIXES):
        from shelfwise.store.postgres_store import PostgresStore

        return PostgresStore(text)
    if "://" not in text and lowered.endswith(".duckdb"):
        from shelfwise.store.duckdb_store import DuckDBStore

        return DuckDBStore(text)
    raise StoreError(f"unknown store URL '{text}': use one of {', '.join(STORE_URL_FORMS)}")
