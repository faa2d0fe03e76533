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
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from threading import RLock
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from shelfwise.data.frames import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, conform
from shelfwise.errors import StoreError
from shelfwise.store.base import RECENT_EVENT_COLUMNS, ApiKeyRecord, IngestReport, Store
from shelfwise.store.measure import MeasureSql
from shelfwise.store.rows import (
    BIGINT,
    DOUBLE,
    EVENT_TYPES,
    ITEM_TYPES,
    TEXT,
    TIMESTAMP,
    USER_TYPES,
    Columns,
    as_text,
    canonical_json,
    event_columns,
    frame_event_columns,
    naive_utc,
    prepare_event_rows,
    prepare_events,
    prepare_upsert,
    quote,
    refuse_bad_text,
    time_window,
)

if TYPE_CHECKING:
    from shelfwise.data.schemas import Event

SCHEMA_VERSION = 1
T = TypeVar("T")


@dataclass(frozen=True)
class _TableSpec:
    name: str
    key: str
    types: dict[str, str]
    stamp_updates: bool  # has an `updated_at` column set on every insert/update


_ITEMS = _TableSpec("items", "item_id", ITEM_TYPES, stamp_updates=True)
_USERS = _TableSpec("users", "user_id", USER_TYPES, stamp_updates=False)


class SqlStore(MeasureSql, Store):
    """A `Store` over a SQL database; subclasses supply the connection and dialect.
    Impressions and experiments: `shelfwise.store.measure`."""

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

    _REVISION_SQL = (
        "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = 'revision'"
    )

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
    def _create_schema(self) -> None:
        """Create the tables if missing (idempotent) and check the schema version."""
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
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.url} has schema version {version}, newer than this Shelfwise "
                        f"understands ({SCHEMA_VERSION}); upgrade Shelfwise"
                    )
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

    # Above this many event ids, the dedupe lookup joins a staged id table instead of
    # passing the ids as one array parameter.
    _ID_LOOKUP_LIST_MAX = 2000
    # Up to this many ids, a lookup lists them as `IN (?, ...)`: cheaper than an array
    # parameter for the few ids of a request (DuckDB plans the array as a join).
    _ID_LOOKUP_IN_MAX = 16

    def _lookup_ids(self, table: str, column: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are in `table.column` (a unique index on both backends)."""
        return self._lookup_many([(table, column, ids)])[0][0]

    def _lookup_many(
        self, lookups: Sequence[tuple[str, str, Sequence[str]]], meta_key: str | None = None
    ) -> tuple[list[set[str]], str | None]:
        """`_lookup_ids` for several (table, column, ids) at once, and the `meta` value of
        `meta_key`: ONE query (UNION ALL) while each holds at most `_ID_LOOKUP_LIST_MAX`
        ids, a few listed as `IN (?, ...)` (cheaper than an array parameter, which DuckDB
        plans as a join), more as one array parameter; a join with a staged id table for
        many. Returns (the ids found per lookup, the meta value or None)."""
        found: list[set[str]] = [set() for _ in lookups]
        p = self.placeholder
        parts: list[str] = []
        params: list[Any] = []
        values: list[Any]
        for k, (table, column, ids) in enumerate(lookups):
            if not ids:
                continue
            if len(ids) > self._ID_LOOKUP_LIST_MAX:
                found[k] = self._lookup_staged(table, column, ids)
                continue
            if len(ids) <= self._ID_LOOKUP_IN_MAX:
                where, values = f"IN ({', '.join([p] * len(ids))})", list(ids)
            else:
                where, values = f"= ANY({p})", [list(ids)]
            parts.append(f"SELECT {k}, {column} FROM {table} WHERE {column} {where}")
            params += values
        meta: str | None = None
        if meta_key is not None:
            parts.append(f"SELECT {len(lookups)}, value FROM meta WHERE key = {p}")
            params.append(meta_key)
        if parts:
            for k, value in self._fetchall(" UNION ALL ".join(parts), params):
                if int(k) == len(lookups):
                    meta = str(value)
                else:
                    found[int(k)].add(str(value))
        return found, meta

    def _lookup_staged(self, table: str, column: str, ids: Sequence[str]) -> set[str]:
        stage = f"sw_stage_{column}s"
        self._stage(stage, pd.DataFrame({column: list(ids)}), {column: TEXT})
        try:
            rows = self._fetchall(
                f"SELECT s.{column} FROM {stage} s JOIN {table} t ON t.{column} = s.{column}"
            )
            return {str(r[0]) for r in rows}
        finally:
            self._unstage(stage)

    def _stored_event_ids(self, ids: list[str]) -> set[str]:
        """Which of `ids` are stored already. PostgreSQL answers from the unique `event_id`
        index; DuckDB (2.0) from its index for a list of a few, else by scanning the one
        `event_id` column (a few ms at 1.3M events), once per group commit rather than once
        per request. Either is far cheaper than an anti-join against the whole table."""
        return self._lookup_ids("events", "event_id", ids)

    #: True where one process is the only writer and the store's lock serialises its
    #: writers (DuckDB): an event append then reads before it bumps `revision`, and bumps it
    #: with `next_seq` in one statement. Elsewhere (PostgreSQL, several processes) every
    #: write transaction takes the revision row lock first.
    _single_writer: ClassVar[bool] = False

    def _take_seqs(self, n: int, bump_revision: bool = False) -> int:
        """Reserve `n` consecutive sequence numbers (and with `bump_revision` move the
        revision too) in one statement; returns the first."""
        p = self.placeholder
        if not bump_revision:
            rows = self._fetchall(
                f"UPDATE meta SET value = CAST(CAST(value AS BIGINT) + {p} AS TEXT) "
                "WHERE key = 'next_seq' RETURNING value",
                [int(n)],
            )
            return int(rows[0][0]) - int(n)
        rows = self._fetchall(
            "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + "
            f"CASE WHEN key = 'next_seq' THEN {p} ELSE 1 END AS TEXT) "
            "WHERE key IN ('next_seq', 'revision') RETURNING key, value",
            [int(n)],
        )
        return int(dict(rows)["next_seq"]) - int(n)

    def _append_events(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Append events whose event_id is new; create unknown users.

        Returns (a bool mask over `frame`'s rows: True where the row was stored, the ids of
        the users created). The new rows get consecutive sequence numbers from `next_seq`
        in frame order, so `seq` has no gaps and grows in commit order (writers are
        serialised by the revision row lock, or on DuckDB by the store's lock).
        """
        if frame.empty:
            return np.zeros(0, dtype=bool), []
        if len(frame) <= self._ARRAY_ROWS_MAX:  # no staging table: plain lists
            return self._append_event_columns(frame_event_columns(frame))
        ids = frame["event_id"]
        present = ids.notna().to_numpy()
        stored = self._stored_event_ids([str(i) for i in ids[present]])
        new = ~present | ~ids.isin(stored).to_numpy()
        rows = frame[new]
        if rows.empty:
            return new, []
        first = self._take_seqs(len(rows))
        rows = rows.assign(seq=np.arange(first, first + len(rows), dtype=np.int64))
        return new, self._insert_event_stage(rows)

    def _append_event_columns(
        self, cols: Columns, revision: str = "done"
    ) -> tuple[np.ndarray, list[str]]:
        """`_append_events` for `Columns` (EVENT_COLUMNS, no repeated event_id): the few
        rows of the request path, without pandas. Returns the same (mask, users created).

        One query finds the stored event ids, the known users and `next_seq`. `revision`:
        "done" (the caller's transaction moved it already), "first" (moved here, first:
        the row lock that orders the writers of several processes) or "with_seqs" (moved
        with the sequence numbers, one statement; see `_single_writer`). Where the driver
        batches statements (`_batched`: PostgreSQL's pipeline), the revision update and the
        lookup travel together, and so do the inserts: two round trips before the commit."""
        ids = cols["event_id"]
        users = list(dict.fromkeys(cols["user_id"]))
        present = [i for i in ids if i is not None]
        few = max(len(present), len(users)) <= self._ID_LOOKUP_LIST_MAX  # no staging (COPY)
        with self._batched() if few else nullcontext():
            if revision == "first":
                self._execute(self._REVISION_SQL)
            (stored, known), next_seq = self._lookup_many(
                [("events", "event_id", present), ("users", "user_id", users)],
                meta_key=None if revision == "with_seqs" else "next_seq",
            )
        new = np.fromiter((i is None or i not in stored for i in ids), dtype=bool, count=len(ids))
        if not new.any():
            return new, []
        if not new.all():
            keep = np.flatnonzero(new).tolist()
            cols = {name: [values[i] for i in keep] for name, values in cols.items()}
        n = len(cols["user_id"])
        if revision == "with_seqs":
            first = self._take_seqs(n, bump_revision=True)
        else:  # the revision row lock is held: next_seq cannot move under us
            first = int(next_seq or 1)
        cols = {**cols, "seq": list(range(first, first + n))}
        if n > self._ARRAY_ROWS_MAX:
            if revision != "with_seqs":
                self._set_meta("next_seq", str(first + n))
            return new, self._insert_event_stage(pd.DataFrame(cols))
        first_time: dict[str, datetime] = {}  # of the users with a stored event, in order
        for user_id, ts in zip(cols["user_id"], cols["timestamp"], strict=True):
            if user_id not in known and (user_id not in first_time or ts < first_time[user_id]):
                first_time[user_id] = ts
        with self._batched():
            if revision != "with_seqs":
                self._set_meta("next_seq", str(first + n))
            self._insert_event_columns(cols)
            return new, self._create_users(list(first_time), list(first_time.values()))

    # Up to this many rows, new events go in as VALUES with one parameter per cell; up to
    # _ARRAY_ROWS_MAX as one array parameter per column (unnest), beyond that through a
    # staging table. Each is the cheapest at its size (benchmarks/events_load.py).
    _VALUES_ROWS_MAX = 8
    _ARRAY_ROWS_MAX = 2000

    def _array_type(self, kind: str) -> str:
        names = {TEXT: "TEXT", DOUBLE: self.double_type, TIMESTAMP: "TIMESTAMP", BIGINT: "BIGINT"}
        return names[kind] + "[]"

    def _insert_event_columns(self, cols: Columns) -> None:
        """Insert event rows (`Columns` with `seq`): VALUES for a few, unnest for more."""
        p = self.placeholder
        columns = list(EVENT_TYPES)
        target = ", ".join(quote(c) for c in columns)
        n = len(cols["seq"])
        if n <= self._VALUES_ROWS_MAX:
            one = "(" + ", ".join([p] * len(columns)) + ")"
            flat = [v for row in zip(*(cols[c] for c in columns), strict=True) for v in row]
            sql = f"INSERT INTO events ({target}) VALUES " + ", ".join([one] * n)
            self._execute(sql, flat)
            return
        arrays = ", ".join(
            f"unnest(CAST({p} AS {self._array_type(EVENT_TYPES[c])}))" for c in columns
        )
        self._execute(f"INSERT INTO events ({target}) SELECT {arrays}", [cols[c] for c in columns])

    def _create_users(self, user_ids: Sequence[str], created_at: Sequence[datetime]) -> list[str]:
        """Create users (not known yet) with their `created_at`; returns the ids created
        (another process may have created one meanwhile: ON CONFLICT)."""
        if not user_ids:
            return []
        p = self.placeholder
        created = self._fetchall(
            "INSERT INTO users (user_id, attributes, created_at) "
            f"SELECT unnest(CAST({p} AS TEXT[])), {self._json(p)}, "
            f"unnest(CAST({p} AS TIMESTAMP[])) "
            "ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
            [list(user_ids), "{}", list(created_at)],
        )
        return [str(r[0]) for r in created]

    def _insert_event_stage(self, rows: pd.DataFrame) -> list[str]:
        """Insert event rows (with `seq`) through a staging table, create their unknown
        users; returns the ids of the users created."""
        p, ts = self.placeholder, quote("timestamp")
        stage = "sw_stage_events"
        self._stage(stage, rows, EVENT_TYPES)
        try:
            columns = ", ".join(quote(c) for c in EVENT_TYPES)
            self._execute(f"INSERT INTO events ({columns}) SELECT {columns} FROM {stage}")
            created = self._fetchall(
                f"INSERT INTO users (user_id, attributes, created_at) "
                f"SELECT s.user_id, {self._json(p)}, min(s.{ts}) FROM {stage} s "
                "WHERE s.user_id IS NOT NULL GROUP BY s.user_id "
                "ON CONFLICT (user_id) DO NOTHING RETURNING user_id",
                ["{}"],
            )
            return [str(r[0]) for r in created]
        finally:
            self._unstage(stage)

    def append_event_batches(
        self, events: pd.DataFrame, sizes: Sequence[int]
    ) -> list[IngestReport]:
        """Append several batches of events in ONE transaction (see `Store`)."""
        sizes = [int(n) for n in sizes]
        if sum(sizes) != len(events) or any(n < 0 for n in sizes):
            raise ValueError(f"sizes {sizes} do not add up to the {len(events)} events")
        if not len(events):
            return [IngestReport() for _ in sizes]
        event_frame, _ = prepare_event_rows(events, drop_repeats=False)
        return self._append_batches(frame_event_columns(event_frame), sizes)

    def append_event_records(
        self, records: Sequence[Event], sizes: Sequence[int]
    ) -> list[IngestReport]:
        """`append_event_batches` for validated records (see `Store`): no DataFrame."""
        sizes = [int(n) for n in sizes]
        if sum(sizes) != len(records) or any(n < 0 for n in sizes):
            raise ValueError(f"sizes {sizes} do not add up to the {len(records)} events")
        if not records:
            return [IngestReport() for _ in sizes]
        return self._append_batches(event_columns(records), sizes)

    def _append_batches(self, cols: Columns, sizes: list[int]) -> list[IngestReport]:
        """Batches one after another in `cols`: one transaction, one report per batch."""
        refuse_bad_text("events", cols, EVENT_TYPES)
        batch_of = np.repeat(np.arange(len(sizes)), sizes)
        seen: set[str] = set()
        kept: list[int] = []
        for row, event_id in enumerate(cols["event_id"]):
            if event_id is not None:
                if event_id in seen:
                    continue  # repeated within the call: a duplicate of the batch repeating it
                seen.add(event_id)
            kept.append(row)
        if len(kept) < len(batch_of):
            cols = {name: [values[i] for i in kept] for name, values in cols.items()}
            batch_of = batch_of[kept]
        first_batch: dict[str, int] = {}
        for user_id, batch in zip(cols["user_id"], batch_of.tolist(), strict=True):
            first_batch.setdefault(user_id, batch)

        def work() -> tuple[list[IngestReport], bool]:
            revision = "with_seqs" if self._single_writer else "first"
            new, created = self._append_event_columns(cols, revision)
            stored = np.bincount(batch_of[new], minlength=len(sizes))
            users = np.zeros(len(sizes), dtype=np.int64)
            for user_id in created:  # a created user counts for the batch of its first event
                users[first_batch[user_id]] += 1
            reports = [
                IngestReport(
                    users=int(users[i]),
                    events=int(stored[i]),
                    duplicate_events=sizes[i] - int(stored[i]),
                    extra={"users_created_from_events": int(users[i])},
                )
                for i in range(len(sizes))
            ]
            return reports, bool(new.any())

        return self._writing("append_event_batches", work, bump_revision=False)

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
