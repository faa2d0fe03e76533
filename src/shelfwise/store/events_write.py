"""The event write path of the SQL stores: appends with de-duplication by `event_id`.

`EventWriteSql` is a mixin of `SqlStore` (which supplies the connection, transactions and
dialect hooks). Two ways in:

- `ingest(events=frame)` of a file or a bulk load (`_append_events` of a conformed frame;
  above `_ARRAY_ROWS_MAX` rows through staging tables);
- `append_event_records` / `append_event_batches`, the HTTP writer's group commits: plain
  column lists, no pandas. Per transaction: one query finds the stored event ids, the
  known users and `next_seq` (on PostgreSQL sent with the revision update that takes the
  row lock ordering the writers of several processes; on DuckDB, one writer process, the
  revision moves with the sequence numbers in one statement), one `INSERT` of the new
  rows, users only when new, and the commit.

New rows get consecutive sequence numbers in commit order (no gaps), which is what readers
tailing the log rely on (`tail_events`). Each statement costs DuckDB about 1 ms of CPU
whatever it does (benchmarks/events_profile.py), so the request path keeps their number
down; an `INSERT ... ON CONFLICT DO NOTHING RETURNING` instead of the lookup was measured
slower on DuckDB 2.0 (4.2 against 2.7 ms) and takes two NULL ids in one statement for a
conflict.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from threading import RLock
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from shelfwise.errors import StoreError
from shelfwise.store.base import IngestReport
from shelfwise.store.rows import (
    BIGINT,
    DOUBLE,
    EVENT_TYPES,
    TEXT,
    TIMESTAMP,
    Columns,
    event_columns,
    frame_event_columns,
    prepare_event_rows,
    quote,
    refuse_bad_text,
)

if TYPE_CHECKING:
    from shelfwise.data.schemas import Event

T = TypeVar("T")

REVISION_SQL = (
    "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = 'revision'"
)


class EventWriteSql:
    """Event appends over a `SqlStore` (see the module doc)."""

    placeholder: ClassVar[str]
    double_type: ClassVar[str]
    _lock: RLock  # the store's (`SqlStore`)
    _REVISION_SQL: ClassVar[str] = REVISION_SQL

    # -- what the store supplies ----------------------------------------------------------
    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    @abstractmethod
    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _stage(self, name: str, frame: pd.DataFrame, types: Mapping[str, str]) -> None: ...

    @abstractmethod
    def _unstage(self, name: str) -> None: ...

    @abstractmethod
    def _batched(self) -> AbstractContextManager[None]: ...

    @abstractmethod
    def _writing(
        self, what: str, work: Callable[[], tuple[T, bool]], bump_revision: bool = True
    ) -> T: ...

    @abstractmethod
    def _set_meta(self, key: str, value: str) -> None: ...

    @abstractmethod
    def _json(self, expr: str) -> str: ...

    # Above this many event ids, the dedupe lookup joins a staged id table instead of
    # passing the ids as one array parameter.
    _ID_LOOKUP_LIST_MAX: ClassVar[int] = 2000
    # Up to this many ids, a lookup lists them as `IN (?, ...)`: cheaper than an array
    # parameter for the few ids of a request (DuckDB plans the array as a join, a scan of
    # the whole column: DuckDB sets it to `_ID_LOOKUP_LIST_MAX`).
    _ID_LOOKUP_IN_MAX: ClassVar[int] = 16

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

    #: The errors a unique-index violation raises, where a group commit inserts its events
    #: without looking their ids up first (DuckDB: a conflict can only be a stored
    #: `event_id` there, `seq` being assigned by the one writer). Empty: look the ids up
    #: first (PostgreSQL, where the lookup travels with the revision update in one round
    #: trip).
    _id_conflicts: ClassVar[tuple[type[Exception], ...]] = ()

    def _known_users(self) -> set[str] | None:
        """User ids known to have a `users` row, which a group commit need not look up;
        None: look every user up. Where a store keeps one (DuckDB: one writer process, so
        only its own `erase_user` removes a row, and drops the id), the group commit adds
        the users of every group it committed."""
        return None

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
        self, cols: Columns, revision: str = "done", trust_ids: bool = False
    ) -> tuple[np.ndarray, list[str]]:
        """`_append_events` for `Columns` (EVENT_COLUMNS, no repeated event_id): the few
        rows of the request path, without pandas. Returns the same (mask, users created).

        One query finds the stored event ids, the known users and `next_seq`. `revision`:
        "done" (the caller's transaction moved it already), "first" (moved here, first:
        the row lock that orders the writers of several processes) or "with_seqs" (moved
        with the sequence numbers, one statement; see `_single_writer`). Where the driver
        batches statements (`_batched`: PostgreSQL's pipeline), the revision update and the
        lookup travel together, and so do the inserts: two round trips before the commit.

        `trust_ids`: the event ids are not looked up; the unique `event_id` index refuses
        a stored one in the INSERT (`_id_conflicts`), and the caller writes the group again
        with the lookup (`_append_batches`)."""
        ids = cols["event_id"]
        users = list(dict.fromkeys(cols["user_id"]))
        cached = self._known_users()
        if cached is not None:  # only the users not seen yet are looked up
            users = [u for u in users if u not in cached]
        present = [] if trust_ids else [i for i in ids if i is not None]
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
        unknown = set(users) - known  # (the cached users are known)
        for user_id, ts in zip(cols["user_id"], cols["timestamp"], strict=True):
            if user_id in unknown and (user_id not in first_time or ts < first_time[user_id]):
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

        def work(trust_ids: bool = False) -> tuple[list[IngestReport], bool]:
            revision = "with_seqs" if self._single_writer else "first"
            new, created = self._append_event_columns(cols, revision, trust_ids)
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

        trust = bool(self._id_conflicts) and any(i is not None for i in cols["event_id"])
        with self._lock:  # (reentrant) the cached users move with the commit
            return self._append_committed(work, first_batch, trust)

    def _append_committed(
        self,
        work: Callable[[bool], tuple[list[IngestReport], bool]],
        first_batch: Mapping[str, int],
        trust_ids: bool,
    ) -> list[IngestReport]:
        """`work` in one transaction (trusting the ids first where `_id_conflicts`), then
        the group's users into `_known_users`."""
        reports: list[IngestReport] | None = None
        if trust_ids:
            # Most ids are new: insert without looking them up; a stored one makes the
            # unique index refuse the INSERT, which rolls back, and the group is written
            # again with the lookup (a group with a duplicate costs two transactions, one
            # without a query less: see `_id_conflicts`).
            try:
                reports = self._writing(
                    "append_event_batches", lambda: work(True), bump_revision=False
                )
            except StoreError as exc:
                if not isinstance(exc.__cause__, self._id_conflicts):
                    raise
        if reports is None:
            reports = self._writing(
                "append_event_batches", lambda: work(False), bump_revision=False
            )
        cached = self._known_users()
        if cached is not None:  # committed: every user of the group has its row now
            cached.update(first_batch)
        return reports
