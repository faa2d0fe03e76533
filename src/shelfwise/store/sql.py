"""SQL logic shared by the DuckDB and PostgreSQL stores.

`SqlStore` holds every query; a backend supplies the connection, its transaction calls,
the placeholder style, its type names and how a DataFrame becomes a staging table that the
queries can select from (`_stage`). Bulk writes go frame -> staging table -> one
`INSERT ... SELECT` per table, so nothing is written row by row.

Bookkeeping lives in the `meta` key/value table: `schema_version`, a random `store_id`, the
`revision` counter bumped by every write transaction that changes something (a write that
changes nothing is rolled back, so the fingerprint only moves when the contents do) and
`next_seq`, the next event sequence number. Every write transaction starts by bumping
`revision`, which also takes a row lock that serialises writers across connections; only
DuckDB's event appends move it later, with `next_seq` (one writer process per file, whose
threads the store's lock serialises: `_single_writer`).
What a write does to rows before any SQL runs (types, checks, normalisation) is in
`shelfwise.store.rows`.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import RLock
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from shelfwise.data.frames import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, conform
from shelfwise.errors import StoreError
from shelfwise.store.base import RECENT_EVENT_COLUMNS, ApiKeyRecord, IngestReport, Store
from shelfwise.store.events_write import EventWriteSql
from shelfwise.store.measure import MeasureSql
from shelfwise.store.rows import (
    EVENT_TYPES,
    ITEM_TYPES,
    USER_TYPES,
    as_text,
    canonical_json,
    naive_utc,
    prepare_events,
    prepare_upsert,
    quote,
    refuse_bad_text,
    time_window,
)

#: The layout `_create_schema` makes. Bump it with every change to the statements there
#: (and in `MeasureSql._measure_schema`): a store at this version opens without running
#: them, an older one runs them (they are idempotent migrations) and is stamped with it.
#: 2: events.request_id, impressions (with marginal_propensities) and experiments, which
#: version-1 files may lack.
SCHEMA_VERSION = 2
T = TypeVar("T")


@dataclass(frozen=True)
class _TableSpec:
    name: str
    key: str
    types: dict[str, str]
    stamp_updates: bool  # has an `updated_at` column set on every insert/update


_ITEMS = _TableSpec("items", "item_id", ITEM_TYPES, stamp_updates=True)
_USERS = _TableSpec("users", "user_id", USER_TYPES, stamp_updates=False)


class SqlStore(MeasureSql, EventWriteSql, Store):
    """A `Store` over a SQL database; subclasses supply the connection and dialect.
    Event appends: `shelfwise.store.events_write`; impressions and experiments:
    `shelfwise.store.measure`."""

    #: Name of the backend, e.g. "duckdb".
    backend: ClassVar[str]
    #: Parameter placeholder of the driver: "?" or "%s".
    placeholder: ClassVar[str]
    #: Type names of the backend.
    json_type: ClassVar[str]
    double_type: ClassVar[str]
    #: The driver's exception base classes; they are re-raised as `StoreError`.
    db_errors: ClassVar[tuple[type[Exception], ...]]

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = RLock()
        self._closed = False
        self._writes = 0  # write transactions of this process, ended (committed or not)
        self._seq_seen: tuple[int, int] | None = None  # (self._writes, last_seq) then

    # -- backend hooks --------------------------------------------------------------------
    @abstractmethod
    def _begin(self) -> None:
        """Start a transaction."""

    @abstractmethod
    def _commit(self) -> None:
        """Commit the open transaction."""

    @abstractmethod
    def _rollback(self) -> None:
        """Roll the open transaction back (must not raise)."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; returns the number of rows it changed (or -1 if unknown)."""

    @abstractmethod
    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return its rows."""

    def _fetch_frame(self, sql: str, params: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
        """Run a query and return its rows as a frame with the given column names."""
        return pd.DataFrame(self._fetchall(sql, params), columns=list(columns))

    @abstractmethod
    def _stage(self, name: str, frame: pd.DataFrame, types: Mapping[str, str]) -> None:
        """Make `frame` selectable as table `name` inside the open transaction."""

    @abstractmethod
    def _unstage(self, name: str) -> None:
        """Drop a staging table made by `_stage` (must not raise)."""

    def _json(self, expr: str) -> str:
        """SQL converting JSON text to the attributes column type."""
        return f"CAST({expr} AS {self.json_type})"

    def _order_text(self, expr: str) -> str:
        """SQL ordering text by code point (binary), whatever the database collation."""
        return expr

    def _schema_lock(self) -> None:
        """Serialise concurrent schema creation (PostgreSQL); nothing by default."""

    # -- transactions ---------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.url} is closed")

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """A read-only transaction: one consistent snapshot for several queries."""
        with self._lock:
            self._check_open()
            self._begin()
            try:
                yield
            except self.db_errors as exc:
                self._rollback()
                raise StoreError(f"reading from {self.url} failed: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
            self._rollback()

    @contextmanager
    def _reading_one(self) -> Iterator[None]:
        """A read of ONE statement (the serving hot path). DuckDB runs a lone statement in
        its own transaction (autocommit), so the explicit BEGIN/ROLLBACK pair, which costs
        more than a small query, is skipped there; other backends use `_reading`."""
        if self.backend != "duckdb":
            with self._reading():
                yield
            return
        with self._lock:
            self._check_open()
            try:
                yield
            except self.db_errors as exc:
                raise StoreError(f"reading from {self.url} failed: {exc}") from exc

    @contextmanager
    def _batched(self) -> Iterator[None]:
        """Statements inside may be sent together, their results read at the first fetch
        or at the end (PostgreSQL's pipeline mode: one round trip for several). Nothing
        here; never around a staging table (COPY)."""
        yield

    def _writing(
        self, what: str, work: Callable[[], tuple[T, bool]], bump_revision: bool = True
    ) -> T:
        """Run `work` in one write transaction: commit if it changed something, else roll back.

        `work` returns (result, changed). Any error rolls everything back. Writes outside
        the catalog/users/events (API keys) pass `bump_revision=False`, so they do not move
        the fingerprint and trigger no retraining.
        """
        with self._lock:
            self._check_open()
            self._begin()
            try:
                if bump_revision:
                    self._execute(self._REVISION_SQL)
                result, changed = work()
                if changed:
                    self._commit()
                else:
                    self._rollback()
                return result
            except self.db_errors as exc:
                self._rollback()
                raise StoreError(f"{what} failed and was rolled back: {exc}") from exc
            except BaseException:
                self._rollback()
                raise
            finally:
                self._writes += 1

    def _meta(self, key: str) -> str | None:
        rows = self._fetchall(f"SELECT value FROM meta WHERE key = {self.placeholder}", [key])
        return str(rows[0][0]) if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        self._execute(
            f"UPDATE meta SET value = {self.placeholder} WHERE key = {self.placeholder}",
            [value, key],
        )

    # -- schema ---------------------------------------------------------------------------
    def _stored_schema_version(self) -> int | None:
        """The store's `schema_version` row (0 when the row is missing), or None when there
        is no `meta` table yet (a new store); read in a transaction of its own, which a
        failed read leaves rolled back (PostgreSQL aborts a transaction on any error)."""
        self._begin()
        try:
            rows = self._fetchall("SELECT value FROM meta WHERE key = 'schema_version'")
        except self.db_errors:
            return None
        finally:
            self._rollback()
        return int(rows[0][0]) if rows else 0

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.url} has schema version {version}, newer than this Shelfwise "
                f"understands ({SCHEMA_VERSION}); upgrade Shelfwise"
            )

    def _create_schema(self) -> None:
        """Create the tables if missing and bring an older store up to `SCHEMA_VERSION`.

        A store already at `SCHEMA_VERSION` opens on one read of its version row: none of
        the statements run (every CLI command opens the store, and they took a tenth of a
        second). A newer store is refused before anything is written to it."""
        with self._lock:
            try:
                version = self._stored_schema_version()
            except self.db_errors as exc:
                raise StoreError(f"cannot read the schema version of {self.url}: {exc}") from exc
            if version is not None:
                self._refuse_newer(version)
                if version == SCHEMA_VERSION:
                    return
        j, d, ts = self.json_type, self.double_type, quote("timestamp")
        statements = [
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS items ("
            "item_id TEXT PRIMARY KEY, title TEXT, description TEXT, category TEXT, "
            f"brand TEXT, price {d}, currency TEXT, in_stock BOOLEAN NOT NULL DEFAULT TRUE, "
            f"attributes {j} NOT NULL, created_at TIMESTAMP, updated_at TIMESTAMP NOT NULL)",
            "CREATE TABLE IF NOT EXISTS users ("
            f"user_id TEXT PRIMARY KEY, attributes {j} NOT NULL, created_at TIMESTAMP)",
            "CREATE TABLE IF NOT EXISTS events ("
            "seq BIGINT PRIMARY KEY, event_id TEXT UNIQUE, user_id TEXT NOT NULL, "
            f'item_id TEXT, "type" TEXT NOT NULL, "value" {d}, query TEXT, session_id TEXT, '
            f"{ts} TIMESTAMP NOT NULL)",
            "CREATE INDEX IF NOT EXISTS events_user_id_idx ON events (user_id)",
            "CREATE TABLE IF NOT EXISTS api_keys ("
            "key_id TEXT PRIMARY KEY, name TEXT NOT NULL, scopes TEXT NOT NULL, "
            "key_hash TEXT NOT NULL, created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP)",
            f"CREATE INDEX IF NOT EXISTS events_timestamp_idx ON events ({ts})",
            *self._measure_schema(),  # adds events.request_id to stores made before it
        ]
        p = self.placeholder
        with self._lock:
            self._begin()
            try:
                self._schema_lock()
                for sql in statements:
                    self._execute(sql)
                defaults = {
                    "schema_version": str(SCHEMA_VERSION),
                    "store_id": uuid.uuid4().hex,
                    "revision": "0",
                    "next_seq": "1",
                    "erasures": "0",
                }
                for key, value in defaults.items():
                    self._execute(
                        f"INSERT INTO meta (key, value) VALUES ({p}, {p}) "
                        "ON CONFLICT (key) DO NOTHING",
                        [key, value],
                    )
                version = int(self._meta("schema_version") or 0)
                self._refuse_newer(version)  # (another process may have moved it on)
                if version < SCHEMA_VERSION:  # the statements above migrated it
                    self._set_meta("schema_version", str(SCHEMA_VERSION))
                self._commit()
            except self.db_errors as exc:
                self._rollback()
                raise StoreError(f"cannot create the tables of {self.url}: {exc}") from exc
            except BaseException:
                self._rollback()
                raise

    # -- writes ---------------------------------------------------------------------------
    def ingest(
        self,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
    ) -> IngestReport:
        """Upsert items and users, append events, all in one transaction (see `Store`)."""
        item_frame = prepare_upsert("items", items)
        user_frame = prepare_upsert("users", users)
        event_frame, batch_duplicates = prepare_events(events)
        refuse_bad_text("items", item_frame, ITEM_TYPES)
        refuse_bad_text("users", user_frame, USER_TYPES)
        refuse_bad_text("events", event_frame, EVENT_TYPES)
        n_events_in = 0 if events is None else len(events)
        if not (len(item_frame) or len(user_frame) or len(event_frame)):
            return IngestReport(duplicate_events=batch_duplicates)

        def work() -> tuple[IngestReport, bool]:
            items_changed = self._upsert(_ITEMS, item_frame)
            users_changed = self._upsert(_USERS, user_frame)
            stored, created = self._append_events(event_frame)
            new_events, users_created = int(stored.sum()), len(created)
            report = IngestReport(
                items=len(item_frame),
                users=len(user_frame) + users_created,
                events=new_events,
                duplicate_events=n_events_in - new_events,
                extra={
                    "items_changed": items_changed,
                    "users_changed": users_changed,
                    "users_created_from_events": users_created,
                },
            )
            changed = bool(items_changed or users_changed or new_events or users_created)
            return report, changed

        return self._writing("ingest", work)

    def _upsert(self, spec: _TableSpec, frame: pd.DataFrame) -> int:
        """Insert or replace rows by key; only rows that differ are written. Returns that number."""
        if frame.empty:
            return 0
        stage = f"sw_stage_{spec.name}"
        self._stage(stage, frame, spec.types)
        try:
            columns = list(spec.types)
            exprs = {
                c: self._json(f"s.{c}") if c == "attributes" else f"s.{quote(c)}" for c in columns
            }
            differs = " OR ".join(
                f"{exprs[c]} IS DISTINCT FROM t.{quote(c)}" for c in columns if c != spec.key
            )
            target = [quote(c) for c in columns]
            values = [exprs[c] for c in columns]
            updates = [f"{quote(c)} = excluded.{quote(c)}" for c in columns if c != spec.key]
            params: list[Any] = []
            if spec.stamp_updates:
                target.append("updated_at")
                values.append(self.placeholder)
                updates.append("updated_at = excluded.updated_at")
                params.append(datetime.now(UTC).replace(tzinfo=None))
            sql = (
                f"INSERT INTO {spec.name} ({', '.join(target)}) "
                f"SELECT {', '.join(values)} FROM {stage} s "
                f"LEFT JOIN {spec.name} t ON t.{spec.key} = s.{spec.key} "
                f"WHERE t.{spec.key} IS NULL OR {differs} "
                f"ON CONFLICT ({spec.key}) DO UPDATE SET {', '.join(updates)}"
            )
            return max(self._execute(sql, params), 0)
        finally:
            self._unstage(stage)

    def delete_item(self, item_id: str) -> bool:
        """Remove an item from the catalog (its events stay); False if it did not exist."""

        def work() -> tuple[bool, bool]:
            n = self._execute(f"DELETE FROM items WHERE item_id = {self.placeholder}", [item_id])
            return n > 0, n > 0

        return self._writing("delete_item", work)

    def erase_user(self, user_id: str) -> dict[str, int]:
        """Delete the user's events and profile row; returns `{"events": n, "users": n}`."""

        def work() -> tuple[dict[str, int], bool]:
            p = self.placeholder
            n_events = max(self._execute(f"DELETE FROM events WHERE user_id = {p}", [user_id]), 0)
            n_users = max(self._execute(f"DELETE FROM users WHERE user_id = {p}", [user_id]), 0)
            n_shown = self._erase_measure(user_id)
            if n_events or n_users:  # tells other processes to drop their per-user caches
                self._execute(
                    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
                    "WHERE key = 'erasures'"
                )
            counts = {"events": n_events, "users": n_users, "impressions": n_shown}
            return counts, bool(n_events or n_users or n_shown)

        return self._writing("erase_user", work)

    # -- API keys -------------------------------------------------------------------------
    _KEY_COLUMNS = "key_id, name, scopes, key_hash, created_at, revoked_at"

    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new API key record; `StoreError` if its `key_id` exists."""
        p = self.placeholder

        def work() -> tuple[None, bool]:
            if self._fetchall(f"SELECT 1 FROM api_keys WHERE key_id = {p}", [record.key_id]):
                raise StoreError(f"an API key with key_id '{record.key_id}' exists already")
            self._execute(
                f"INSERT INTO api_keys ({self._KEY_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                [
                    record.key_id,
                    record.name,
                    ",".join(record.scopes),
                    record.key_hash,
                    naive_utc(record.created_at),
                    None if record.revoked_at is None else naive_utc(record.revoked_at),
                ],
            )
            return None, True

        self._writing("add_api_key", work, bump_revision=False)

    @staticmethod
    def _key_record(row: Sequence[Any]) -> ApiKeyRecord:
        def aware(value: Any) -> datetime | None:
            return None if value is None else pd.Timestamp(value).tz_localize(UTC).to_pydatetime()

        created = aware(row[4])
        assert created is not None  # NOT NULL column
        return ApiKeyRecord(
            key_id=str(row[0]),
            name=str(row[1]),
            scopes=tuple(s for s in str(row[2]).split(",") if s),
            key_hash=str(row[3]),
            created_at=created,
            revoked_at=aware(row[5]),
        )

    def api_keys(self) -> list[ApiKeyRecord]:
        """All API key records, revoked ones included, ordered by creation time."""
        sql = f"SELECT {self._KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id"
        with self._reading():
            rows = self._fetchall(sql)
        return [self._key_record(r) for r in rows]

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """One API key record by id, or None."""
        sql = f"SELECT {self._KEY_COLUMNS} FROM api_keys WHERE key_id = {self.placeholder}"
        with self._reading():
            rows = self._fetchall(sql, [key_id])
        return self._key_record(rows[0]) if rows else None

    def revoke_api_key(self, key_id: str) -> bool:
        """Mark a key revoked; False if there is no active key with that id."""
        p = self.placeholder

        def work() -> tuple[bool, bool]:
            n = self._execute(
                f"UPDATE api_keys SET revoked_at = {p} WHERE key_id = {p} AND revoked_at IS NULL",
                [datetime.now(UTC).replace(tzinfo=None), key_id],
            )
            return n > 0, n > 0

        return self._writing("revoke_api_key", work, bump_revision=False)

    # -- reads ----------------------------------------------------------------------------
    def _attributes_text(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Attributes as canonical JSON text, whatever the driver returned."""
        if len(frame):
            frame["attributes"] = [
                v if isinstance(v, str) else canonical_json(v) for v in frame["attributes"]
            ]
        return frame

    def items(self, item_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Catalog rows (canonical item layout), ordered by item_id."""
        columns = list(ITEM_COLUMNS)
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM items"
        params: list[Any] = []
        if isinstance(item_ids, str):  # one id, not a sequence of characters
            item_ids = [item_ids]
        if item_ids is not None:
            sql += f" WHERE item_id = ANY({self.placeholder})"
            params.append([str(i) for i in item_ids])
        sql += f" ORDER BY {self._order_text('item_id')}"
        with self._reading():
            frame = self._fetch_frame(sql, params, columns)
        return conform("items", self._attributes_text(frame))

    def items_written_since(
        self, since: datetime | None = None
    ) -> tuple[pd.DataFrame, datetime | None]:
        """(items inserted or changed at or after `since` - all with None - in the canonical
        layout, the newest `updated_at` in the catalog)."""
        columns = list(ITEM_COLUMNS)
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM items"
        params: list[Any] = []
        if since is not None:
            sql += f" WHERE updated_at >= {self.placeholder}"
            params.append(naive_utc(since))
        with self._reading():
            frame = self._fetch_frame(sql, params, columns)
            newest = self._fetchall("SELECT max(updated_at) FROM items")[0][0]
        items = conform("items", self._attributes_text(frame))
        return items, None if newest is None else naive_utc(newest)

    def item_ids(self) -> list[str]:
        """Every item id in the catalog."""
        with self._reading_one():
            return [str(r[0]) for r in self._fetchall("SELECT item_id FROM items")]

    def users(self) -> pd.DataFrame:
        """All users (canonical user layout), ordered by user_id."""
        columns = list(USER_COLUMNS)
        sql = f"SELECT {', '.join(columns)} FROM users ORDER BY {self._order_text('user_id')}"
        with self._reading():
            frame = self._fetch_frame(sql, [], columns)
        return conform("users", self._attributes_text(frame))

    def _select_events(
        self,
        columns: Sequence[str],
        since: datetime | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
        user_id: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        with_item: bool = False,
    ) -> pd.DataFrame:
        p, ts = self.placeholder, quote("timestamp")
        where, params = time_window(p, since, until)
        if types is not None:
            where.append(f'"type" = ANY({p})')
            params.append([str(t) for t in types])
        if user_id is not None:
            where.append(f"user_id = {p}")
            params.append(user_id)
        if with_item:
            where.append("item_id IS NOT NULL")
        direction = "DESC" if newest_first else "ASC"
        sql = f"SELECT {', '.join(quote(c) for c in columns)} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {ts} {direction}, seq {direction}"
        if limit is not None:
            if int(limit) < 0:
                raise ValueError(f"limit must be >= 0, got {limit}")
            sql += f" LIMIT {int(limit)}"
        with self._reading():
            return self._fetch_frame(sql, params, columns)

    def events(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
        user_id: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> pd.DataFrame:
        """Events in the canonical layout plus int64 `seq`, ordered by (timestamp, seq)."""
        raw = self._select_events(
            [*EVENT_COLUMNS, "seq"], since, until, types, user_id, limit, newest_first
        )
        out = conform("events", raw)
        out["seq"] = raw["seq"].to_numpy(dtype=np.int64)
        return out

    def recent_events(
        self, user_id: str, limit: int = 200, after_seq: int | None = None
    ) -> pd.DataFrame:
        """A user's latest events, newest first (see `Store.recent_events`): one query, and
        a frame built straight from the rows. `seq > after_seq` comes first in the filter:
        seq grows with insertion, so the scan skips all older data blocks."""
        if int(limit) < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        p, ts = self.placeholder, quote("timestamp")
        where = f"user_id = {p}"
        params: list[Any] = [user_id]
        if after_seq is not None:
            where, params = f"seq > {p} AND {where}", [int(after_seq), user_id]
        sql = (
            f'SELECT item_id, "type", "value", {ts}, session_id, seq FROM events '
            f"WHERE {where} ORDER BY {ts} DESC, seq DESC LIMIT {int(limit)}"
        )
        with self._reading_one():
            rows = self._fetchall(sql, params)
        frame = pd.DataFrame(rows, columns=list(RECENT_EVENT_COLUMNS))
        frame["value"] = pd.to_numeric(frame["value"]).astype("float64")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
        frame["seq"] = frame["seq"].astype(np.int64)
        return frame

    def tail_events(self, after_seq: int = 0, limit: int | None = None) -> pd.DataFrame:
        """Events with `seq > after_seq` in `seq` order (see `Store.tail_events`): one query
        on the primary key."""
        ts = quote("timestamp")
        columns = ["user_id", *RECENT_EVENT_COLUMNS]
        sql = (
            f'SELECT user_id, item_id, "type", "value", {ts}, session_id, seq FROM events '
            f"WHERE seq > {self.placeholder} ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._reading_one():
            if after_seq <= 0:  # the whole log: the driver's bulk frame path
                frame = self._fetch_frame(sql, [int(after_seq)], columns)
            else:  # a few new rows: plain tuples are quicker than a driver frame
                frame = pd.DataFrame(self._fetchall(sql, [int(after_seq)]), columns=columns)
        frame["value"] = pd.to_numeric(frame["value"]).astype("float64")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
        frame["seq"] = frame["seq"].astype(np.int64)
        return frame

    def last_seq(self) -> int:
        """The largest event `seq` so far (0 for none), from the `next_seq` counter.

        Serving asks before every request. An embedded DuckDB file is written by this
        process only (DuckDB locks it), so there the answer is kept until this process's
        next write transaction ends, instead of one query per request; other backends
        (several processes) always read it."""
        seen = self._seq_seen
        if self.backend == "duckdb" and seen is not None and seen[0] == self._writes:
            return seen[1]
        with self._reading_one():
            writes = self._writes
            value = int(self._meta("next_seq") or 1) - 1
            if self.backend == "duckdb":
                self._seq_seen = (writes, value)
            return value

    def last_seq_cached(self) -> bool:
        """Whether `last_seq()` answers from memory (see there)."""
        return self.backend == "duckdb" and (self._seq_seen or (-1,))[0] == self._writes

    def erasure_count(self) -> int:
        """How many `erase_user` calls erased something, ever (from the `meta` table)."""
        with self._reading_one():
            return int(self._meta("erasures") or 0)

    def catalog_stamp(self) -> str:
        """Item count and newest `updated_at`: changes with every catalog write."""
        with self._reading_one():
            count, newest = self._fetchall("SELECT count(*), max(updated_at) FROM items")[0]
        return f"{int(count)}:{newest}"

    def interactions(
        self, since: datetime | None = None, types: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Events that name an item: columns user_id, item_id, type, value, timestamp, seq."""
        columns = ["user_id", "item_id", "type", "value", "timestamp", "seq"]
        raw = self._select_events(columns, since=since, types=types, with_item=True)
        out = pd.DataFrame(
            {
                "user_id": as_text(raw["user_id"]),
                "item_id": as_text(raw["item_id"]),
                "type": as_text(raw["type"]),
                "value": pd.to_numeric(raw["value"]).astype("float64"),
                "timestamp": pd.to_datetime(raw["timestamp"]).astype("datetime64[us]"),
                "seq": raw["seq"].to_numpy(dtype=np.int64),
            }
        )
        return out.reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """`{"items": n, "users": n, "events": n}`."""
        with self._reading():
            row = self._fetchall(
                "SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM users), "
                "(SELECT count(*) FROM events)"
            )[0]
        return {"items": int(row[0]), "users": int(row[1]), "events": int(row[2])}

    def unknown_item_events(self) -> int:
        """Events naming an item that is not in the catalogue (see `Store`)."""
        with self._reading():
            row = self._fetchall(
                "SELECT count(*) FROM events e WHERE e.item_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM items i WHERE i.item_id = e.item_id)"
            )[0]
        return int(row[0])

    def event_type_counts(self) -> dict[str, int]:
        """Number of events per type."""
        with self._reading():
            rows = self._fetchall('SELECT "type", count(*) FROM events GROUP BY "type"')
        return {str(t): int(n) for t, n in sorted(rows)}

    def fingerprint(self) -> str:
        """`<store_id>-<revision>`: changes with every write that changes the contents."""
        with self._reading():
            store_id = self._meta("store_id")
            revision = self._meta("revision")
        return f"{store_id}-{revision}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
