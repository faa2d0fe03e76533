"""The PostgreSQL store (psycopg 3).

One connection per store object (autocommit off, explicit transactions), guarded by a lock so
threads take turns; a broken connection is replaced on the next call. Bulk loads go through
`COPY` (CSV written by Arrow) into a temporary table, then `INSERT ... ON CONFLICT`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
import psycopg
import pyarrow.csv as pacsv

from shelfwise.errors import StoreError
from shelfwise.store.rows import BIGINT, BOOL, DOUBLE, TEXT, TIMESTAMP, arrow_table
from shelfwise.store.sql import SqlStore

_PG_TYPES = {
    TEXT: "TEXT",
    DOUBLE: "DOUBLE PRECISION",
    BOOL: "BOOLEAN",
    TIMESTAMP: "TIMESTAMP",
    BIGINT: "BIGINT",
}
# Arbitrary constant for pg_advisory_xact_lock while creating the tables.
_SCHEMA_LOCK_KEY = 0x5E1F_0157


def redact(url: str) -> str:
    """The URL with its password replaced by `***` (for messages and `Store.url`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***@"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=userinfo + host))


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database, opened from a `postgresql://` URL.

    `url` is passed to psycopg as given; `self.url` shows it with the password hidden.
    The tables are created on open if missing.
    """

    backend: ClassVar[str] = "postgresql"
    placeholder: ClassVar[str] = "%s"
    json_type: ClassVar[str] = "JSONB"
    double_type: ClassVar[str] = "DOUBLE PRECISION"
    db_errors: ClassVar[tuple[type[Exception], ...]] = (psycopg.Error,)

    def __init__(self, url: str, connect_timeout: int = 10) -> None:
        super().__init__(redact(url))
        self._dsn = url
        self._connect_timeout = connect_timeout
        self._conn = self._connect()
        try:
            self._create_schema()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        kwargs: dict[str, Any] = {"autocommit": False}
        if "connect_timeout" not in self._dsn:
            kwargs["connect_timeout"] = self._connect_timeout
        try:
            conn = psycopg.connect(self._dsn, **kwargs)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to the PostgreSQL store {self.url}: {exc}") from exc
        try:
            # Bulk statements misjudge staging-table sizes and pay for JIT compilation.
            conn.execute("SET jit = off")
            conn.commit()
        except psycopg.Error:
            conn.rollback()
        return conn

    # -- backend hooks --------------------------------------------------------------------
    def _begin(self) -> None:
        if self._conn.closed or self._conn.broken:
            self._conn = self._connect()
        # psycopg opens the transaction with the first statement; make sure none is left over.
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._conn.rollback()

    def _commit(self) -> None:
        self._conn.commit()

    def _rollback(self) -> None:
        # Suppressed: a broken connection is replaced by the next _begin.
        with contextlib.suppress(psycopg.Error):
            self._conn.rollback()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._conn.cursor() as cur:
            cur.execute(sql, list(params) or None)
            return cur.rowcount

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql, list(params) or None)
            return cur.fetchall()

    def _stage(self, name: str, frame: pd.DataFrame, types: Mapping[str, str]) -> None:
        columns = ", ".join(f'"{c}" {_PG_TYPES[t]}' for c, t in types.items())
        buffer = io.BytesIO()
        # "all_valid" quotes every value and leaves NULLs as bare empty fields, which is how
        # COPY's CSV format tells an empty string from NULL.
        pacsv.write_csv(
            arrow_table(frame, types),
            buffer,
            pacsv.WriteOptions(include_header=False, quoting_style="all_valid"),
        )
        with self._conn.cursor() as cur:
            cur.execute(f"CREATE TEMPORARY TABLE {name} ({columns}) ON COMMIT DROP")
            with cur.copy(f"COPY {name} FROM STDIN (FORMAT csv)") as copy:
                copy.write(buffer.getbuffer())
            cur.execute(f"ANALYZE {name}")

    def _unstage(self, name: str) -> None:
        # Suppressed: the transaction failed, and rolling it back drops the table.
        with contextlib.suppress(psycopg.Error), self._conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {name}")

    @contextlib.contextmanager
    def _batched(self) -> Iterator[None]:
        """Pipeline mode: the statements inside go out together (one round trip)."""
        with self._conn.pipeline():
            yield

    def _order_text(self, expr: str) -> str:
        return f'{expr} COLLATE "C"'

    def _schema_lock(self) -> None:
        self._execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEMA_LOCK_KEY])

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
