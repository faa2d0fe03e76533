"""The embedded DuckDB store: one file (or `:memory:`), no server.

One connection per store object, guarded by a lock shared by every store object on the same
file in this process, so threads and several objects on one file take turns. DuckDB itself
allows one writing process per file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from threading import RLock
from typing import Any, ClassVar

import duckdb
import pandas as pd

from shelfwise.errors import StoreError
from shelfwise.store.rows import arrow_table
from shelfwise.store.sql import SqlStore

MEMORY = ":memory:"
_FILE_LOCKS: dict[str, RLock] = {}
#: Per file, the user ids known to have a `users` row (`EventWriteSql._known_users`).
_KNOWN_USERS: dict[str, _KnownUsers] = {}
#: The known users are read from the store at the first group commit when there are at
#: most this many, and dropped past it (they fill again as events arrive).
KNOWN_USERS_MAX = 1_000_000


@dataclass
class _KnownUsers:
    ids: set[str] = field(default_factory=set)
    loaded: bool = False  # read from the store (else: only the users seen since)


_FILE_LOCKS_GUARD = RLock()


def _file_lock(path: str) -> RLock:
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(path, RLock())


class DuckDBStore(SqlStore):
    """A store in a DuckDB database file (`path`) or in memory (`":memory:"`).

    The parent directory of the file is created if missing; the tables are created on the
    first open (an older file is migrated; see `SqlStore._create_schema`).
    """

    backend: ClassVar[str] = "duckdb"
    placeholder: ClassVar[str] = "?"
    json_type: ClassVar[str] = "JSON"
    double_type: ClassVar[str] = "DOUBLE"
    db_errors: ClassVar[tuple[type[Exception], ...]] = (duckdb.Error,)
    _single_writer: ClassVar[bool] = True  # one writer process per file; `_lock` serialises
    # Event-id and user lookups list every id as `IN (?, ...)`: DuckDB probes the unique
    # index for a list, but plans `= ANY(?)` as a join that scans the whole column (1.3M
    # stored events, 64 ids: 5.9 against 78 ms CPU; 1,000 ids: 40 against 71 ms; load ~10).
    _ID_LOOKUP_IN_MAX: ClassVar[int] = 2000
    # A group commit inserts its events without looking their ids up (`EventWriteSql`).
    _id_conflicts: ClassVar[tuple[type[Exception], ...]] = (duckdb.ConstraintException,)

    def __init__(self, path: str | Path, url: str | None = None) -> None:
        memory = str(path) == MEMORY
        self.path: Path | None = None if memory else Path(path).expanduser()
        super().__init__(url or f"duckdb:///{path}")
        if self.path is not None:
            self._lock = _file_lock(str(self.path.resolve()))
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder of {self.path}: {exc}") from exc
        # Shared by the objects on one file (an erasure through one drops the id for all);
        # emptied when one opens (the file may have been replaced since).
        self._users = _KnownUsers()
        if self.path is not None:
            with self._lock, _FILE_LOCKS_GUARD:
                self._users = _KNOWN_USERS.setdefault(str(self.path.resolve()), self._users)
                self._users.ids.clear()
                self._users.loaded = False
        try:
            self._con = duckdb.connect(MEMORY if self.path is None else str(self.path))
        except duckdb.Error as exc:
            hint = ""
            if "lock" in str(exc).lower():
                hint = (
                    " (an embedded store has one writer process: stop the other process, "
                    "e.g. a running `shelfwise serve`, or use PostgreSQL for several)"
                )
            raise StoreError(f"cannot open the DuckDB store {self.url}{hint}: {exc}") from exc
        try:
            self._create_schema()
        except BaseException:
            self._con.close()
            raise

    # -- backend hooks --------------------------------------------------------------------
    def _begin(self) -> None:
        self._con.execute("BEGIN TRANSACTION")

    def _commit(self) -> None:
        self._con.execute("COMMIT")

    def _rollback(self) -> None:
        # Suppressed: no transaction open (it failed before BEGIN or was already ended).
        with contextlib.suppress(duckdb.Error):
            self._con.execute("ROLLBACK")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._con.execute(sql, list(params))
        description = self._con.description
        if description and description[0][0] == "Count":
            row = self._con.fetchone()
            return int(row[0]) if row else 0
        return -1

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, list(params)).fetchall()

    def _fetch_frame(self, sql: str, params: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
        frame = self._con.execute(sql, list(params)).df()
        frame.columns = list(columns)
        return frame

    def _stage(self, name: str, frame: pd.DataFrame, types: Mapping[str, str]) -> None:
        self._con.register(name, arrow_table(frame, types))

    def _unstage(self, name: str) -> None:
        with contextlib.suppress(duckdb.Error):
            self._con.unregister(name)

    def _known_users(self) -> set[str] | None:
        # One writer process per file, so only `erase_user` (below) removes a user row.
        # Called with the lock held.
        known = self._users
        if not known.loaded:  # once: every user id, where that is not too many
            known.loaded = True
            count = self._fetchall("SELECT count(*) FROM users")[0][0]
            if int(count) <= KNOWN_USERS_MAX:
                known.ids.update(str(r[0]) for r in self._fetchall("SELECT user_id FROM users"))
        if len(known.ids) > KNOWN_USERS_MAX:
            known.ids.clear()
        return known.ids

    def erase_user(self, user_id: str) -> dict[str, int]:
        """Delete the user's events and profile row (see `Store`); the id leaves the
        users the event writer knows, in the same lock."""
        with self._lock:
            try:
                return super().erase_user(user_id)
            finally:
                self._users.ids.discard(user_id)

    # -- lifecycle ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent); the file keeps the data."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._con.close()
