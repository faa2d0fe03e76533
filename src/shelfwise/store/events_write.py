"""The event write path of the SQL stores: appends with de-duplication by `event_id`.

`EventWriteSql` is a mixin of `SqlStore` (which supplies the connection, transactions and
dialect hooks). Two ways in:

- `ingest(events=frame)` of a file or a bulk load: `_append_events` of a conformed frame;
  above `_ARRAY_ROWS_MAX` rows the stored ids are looked up through a staged id table and
  the new rows inserted from a staging table;
- `append_event_records` / `append_event_batches` (the HTTP writer's group commits): plain
  column lists, no pandas, and per transaction only

  1. one statement that moves the counters and reads them (`next_seq`, `revision`, the
     `erasures` count): on DuckDB (one writer process per file) it reserves the sequence
     numbers with an `UPDATE ... RETURNING`; elsewhere (PostgreSQL, several processes) the
     revision row lock is taken first, which orders the writers, and `next_seq` is read
     in the same round trip;
  2. one `INSERT ... ON CONFLICT (event_id) DO NOTHING RETURNING seq`: the unique index
     on `event_id` is the de-duplication (no lookup of stored ids first); the rows it
     returns are the new ones;
  3. users only for user ids this store object has not seen stored yet (`_known_users`, a
     bounded set that is emptied whenever the `erasures` count moves, so a user erased by
     any process is created again by their next event);
  4. the commit.

Sequence numbers are reserved per call, so a duplicate leaves a gap; `seq` still grows in
commit order, which is what readers tailing the log rely on (`tail_events`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from threading import RLock
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

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
    #: True where one process is the only writer and the store's lock serialises its
    #: writers (DuckDB): an append then moves `revision` with `next_seq` in one statement.
    #: Elsewhere (PostgreSQL, several processes) every write transaction takes the
    #: revision row lock first.
    _single_writer: ClassVar[bool] = False
    #: Most user ids remembered as stored (`_known_users`); older ones are forgotten.
    _KNOWN_USERS_MAX: ClassVar[int] = 200_000
    # Above this many event ids, the dedupe lookup of `_append_events` joins a staged id
    # table instead of passing the ids as one array parameter.
    _ID_LOOKUP_LIST_MAX: ClassVar[int] = 2000
    # Up to this many rows, new events go in as VALUES with one parameter per cell; up to
    # _ARRAY_ROWS_MAX as one array parameter per column (unnest), beyond that through a
    # staging table. Each is the cheapest at its size (benchmarks/events_load.py).
    _VALUES_ROWS_MAX: ClassVar[int] = 8
    _ARRAY_ROWS_MAX: ClassVar[int] = 2000

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
    def _json(self, expr: str) -> str: ...

    # -- users known to be stored ---------------------------------------------------------
    # `_known_users` (user ids, oldest first) holds only ids whose row was committed while
    # the `erasures` count was `_known_erasures`; `_pending_users` what the open write
    # transaction adds, applied by `_commit_known_users` once it committed.
    _known_users: dict[str, None]
    _known_erasures: int | None = None
    _pending_users: tuple[list[str], int | None] | None = None
    _lock: RLock

    def _known(self) -> dict[str, None]:
        known: dict[str, None] | None = self.__dict__.get("_known_users")
        if known is None:
            known = self._known_users = {}
        return known

    def _commit_known_users(self) -> None:
        """After a commit: remember the users the transaction stored (all forgotten first
        when the erasure count moved)."""
        pending, self._pending_users = self._pending_users, None
        if pending is None:
            return
        user_ids, erasures = pending
        with self._lock:
            known = self._known()
            if erasures != self._known_erasures:
                known.clear()
                self._known_erasures = erasures
            for user_id in user_ids:
                known[user_id] = None
            while len(known) > self._KNOWN_USERS_MAX:
                del known[next(iter(known))]

    def forget_known_users(self) -> None:
        """Forget every user id remembered as stored (after an erasure in this process)."""
        with self._lock:
            self._known().clear()
            self._known_erasures = None

    # -- the bulk path (frames) -----------------------------------------------------------
    def _lookup_ids(self, table: str, column: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are in `table.column` (a unique index on both backends): one
        query with the ids as one array parameter, a join with a staged id table for many."""
        if not ids:
            return set()
        if len(ids) > self._ID_LOOKUP_LIST_MAX:
            stage = f"sw_stage_{column}s"
            self._stage(stage, pd.DataFrame({column: list(ids)}), {column: TEXT})
            try:
                rows = self._fetchall(
                    f"SELECT s.{column} FROM {stage} s JOIN {table} t ON t.{column} = s.{column}"
                )
            finally:
                self._unstage(stage)
        else:
            rows = self._fetchall(
                f"SELECT {column} FROM {table} WHERE {column} = ANY({self.placeholder})",
                [list(ids)],
            )
        return {str(r[0]) for r in rows}

    def _take_seqs(self, n: int) -> int:
        """Reserve `n` consecutive sequence numbers; returns the first."""
        rows = self._fetchall(
            f"UPDATE meta SET value = CAST(CAST(value AS BIGINT) + {self.placeholder} AS TEXT) "
            "WHERE key = 'next_seq' RETURNING value",
            [int(n)],
        )
        return int(rows[0][0]) - int(n)

    def _append_events(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Append a conformed frame's events whose event_id is new; create unknown users.

        Returns (a bool mask over `frame`'s rows: True where the row was stored, the ids of
        the users created). The new rows get consecutive sequence numbers in frame order
        (inside the caller's write transaction, which holds the revision row lock).
        """
        if frame.empty:
            return np.zeros(0, dtype=bool), []
        if len(frame) <= self._ARRAY_ROWS_MAX:  # no staging table: plain lists
            return self._append_event_columns(frame_event_columns(frame), revision="done")
        ids = frame["event_id"]
        present = ids.notna().to_numpy()
        stored = self._lookup_ids("events", "event_id", [str(i) for i in ids[present]])
        new = ~present | ~ids.isin(stored).to_numpy()
        rows = frame[new]
        if rows.empty:
            return new, []
        first = self._take_seqs(len(rows))
        rows = rows.assign(seq=np.arange(first, first + len(rows), dtype=np.int64))
        return new, self._insert_event_stage(rows)

    def _insert_event_stage(self, rows: pd.DataFrame) -> list[str]:
        """Insert event rows (with `seq`, new event ids only) through a staging table,
        create their unknown users; returns the ids of the users created."""
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

    # -- the request path (column lists) --------------------------------------------------
    def _counters(self, n: int, revision: str) -> tuple[int, int | None]:
        """Statement 1 of an append (module doc): (the first of `n` reserved sequence
        numbers, the erasure count). `revision`: "done" (the caller's transaction moved
        it), "first" (moved here first: the row lock that orders several processes) or
        "with_seqs" (moved with the sequence numbers in one statement, one writer)."""
        p = self.placeholder
        if revision == "with_seqs":
            rows = self._fetchall(
                "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + CASE key "
                f"WHEN 'next_seq' THEN {p} WHEN 'revision' THEN 1 ELSE 0 END AS TEXT) "
                "WHERE key IN ('next_seq', 'revision', 'erasures') RETURNING key, value",
                [int(n)],
            )
            values = {str(k): int(v) for k, v in rows}
            return values["next_seq"] - int(n), values.get("erasures")
        with self._batched():  # PostgreSQL: the lock and the read in one round trip
            if revision == "first":
                self._execute(REVISION_SQL)
            rows = self._fetchall(
                "SELECT key, value FROM meta WHERE key IN ('next_seq', 'erasures')"
            )
        values = {str(k): int(v) for k, v in rows}
        return values.get("next_seq", 1), values.get("erasures")

    def _append_event_columns(self, cols: Columns, revision: str) -> tuple[np.ndarray, list[str]]:
        """Append events given as `Columns` (EVENT_COLUMNS, no event_id repeated) whose
        event_id is new; create unknown users (module doc). Returns (a bool mask over the
        rows: True where stored, the ids of the users created)."""
        n = len(cols["user_id"])
        if n == 0:
            return np.zeros(0, dtype=bool), []
        first, erasures = self._counters(n, revision)
        cols = {**cols, "seq": list(range(first, first + n))}
        moved = revision == "with_seqs"  # else the lock is held: next_seq cannot move under us
        if n > self._ARRAY_ROWS_MAX:  # a staging table (rare: bigger than a request)
            if not moved:
                self._set_next_seq(first + n)
            ids = [i for i in cols["event_id"] if i is not None]
            stored = self._lookup_ids("events", "event_id", ids)
            new = np.fromiter(
                (i is None or i not in stored for i in cols["event_id"]), dtype=bool, count=n
            )
            if not new.any():
                return new, []
            created = self._insert_event_stage(pd.DataFrame(cols)[new])
            self._pending_users = (list(dict.fromkeys(cols["user_id"])), erasures)
            return new, created
        with self._batched():  # PostgreSQL: the counter and the insert in one round trip
            if not moved:
                self._set_next_seq(first + n)
            inserted = self._insert_event_columns(cols)
        new = np.fromiter((s in inserted for s in cols["seq"]), dtype=bool, count=n)
        if not new.any():
            return new, []
        known = self._known() if erasures == self._known_erasures else {}
        first_time: dict[str, datetime] = {}  # users not known stored, with a new event
        for user_id, ts, stored in zip(cols["user_id"], cols["timestamp"], new, strict=True):
            if (
                stored
                and user_id not in known
                and (user_id not in first_time or ts < first_time[user_id])
            ):
                first_time[user_id] = ts
        created = self._create_users(list(first_time), list(first_time.values()))
        self._pending_users = (list(first_time), erasures)
        return new, created

    def _set_next_seq(self, value: int) -> None:
        self._execute(
            f"UPDATE meta SET value = {self.placeholder} WHERE key = 'next_seq'", [str(value)]
        )

    def _array_type(self, kind: str) -> str:
        names = {TEXT: "TEXT", DOUBLE: self.double_type, TIMESTAMP: "TIMESTAMP", BIGINT: "BIGINT"}
        return names[kind] + "[]"

    def _insert_event_columns(self, cols: Columns) -> set[int]:
        """Insert event rows (`Columns` with `seq`) whose event_id is not stored; returns
        the `seq` of the rows inserted. Rows without an event_id go in by a plain insert
        (DuckDB 2.0's ON CONFLICT takes two NULL ids in one statement for a conflict)."""
        with_id = [i for i, e in enumerate(cols["event_id"]) if e is not None]
        if len(with_id) == len(cols["seq"]):
            return {int(r[0]) for r in self._insert_rows(cols, dedupe=True)}
        without = [i for i, e in enumerate(cols["event_id"]) if e is None]
        inserted = {int(cols["seq"][i]) for i in without}
        self._insert_rows({k: [v[i] for i in without] for k, v in cols.items()}, dedupe=False)
        if with_id:
            part = {k: [v[i] for i in with_id] for k, v in cols.items()}
            inserted.update(int(r[0]) for r in self._insert_rows(part, dedupe=True))
        return inserted

    def _insert_rows(self, cols: Columns, dedupe: bool) -> list[tuple[Any, ...]]:
        """One INSERT of event rows: VALUES for a few, unnest for more; with `dedupe`, rows
        whose event_id is stored are skipped and the `seq` of the others returned."""
        p = self.placeholder
        columns = list(EVENT_TYPES)
        target = ", ".join(quote(c) for c in columns)
        tail = " ON CONFLICT (event_id) DO NOTHING RETURNING seq" if dedupe else ""
        n = len(cols["seq"])
        if n <= self._VALUES_ROWS_MAX:
            one = "(" + ", ".join([p] * len(columns)) + ")"
            flat = [v for row in zip(*(cols[c] for c in columns), strict=True) for v in row]
            sql = f"INSERT INTO events ({target}) VALUES " + ", ".join([one] * n) + tail
            params: list[Any] = flat
        else:
            arrays = ", ".join(
                f"unnest(CAST({p} AS {self._array_type(EVENT_TYPES[c])}))" for c in columns
            )
            sql = f"INSERT INTO events ({target}) SELECT {arrays}" + tail
            params = [cols[c] for c in columns]
        if dedupe:
            return self._fetchall(sql, params)
        self._execute(sql, params)
        return []

    def _create_users(self, user_ids: Sequence[str], created_at: Sequence[datetime]) -> list[str]:
        """Create the users among `user_ids` not stored yet, with their `created_at`;
        returns the ids created (ON CONFLICT: the others exist)."""
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

        with self._lock:
            self._pending_users = None
            reports = self._writing("append_event_batches", work, bump_revision=False)
            self._commit_known_users()
        return reports
