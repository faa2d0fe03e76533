"""The one Store interface, opened by URL.

`duckdb:///path/to/shelfwise.duckdb` (embedded default, `duckdb:///:memory:` for tests) and
`postgresql://user@host:port/db`. Bulk data crosses this boundary as DataFrames in the
canonical layouts of `shelfwise.data.frames`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shelfwise.errors import DataError

if TYPE_CHECKING:
    from shelfwise.data.schemas import Event


@dataclass(frozen=True)
class IngestReport:
    """What one `ingest` call wrote."""

    items: int = 0
    users: int = 0
    events: int = 0
    duplicate_events: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


RECENT_EVENT_COLUMNS = ("item_id", "type", "value", "timestamp", "session_id", "seq")


@dataclass(frozen=True)
class ApiKeyRecord:
    """One stored API key: never the key itself, only its hash (see `shelfwise.serve.security`)."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """False once revoked."""
        return self.revoked_at is None


@dataclass(frozen=True)
class ExperimentRow:
    """One stored experiment: its spec (JSON-ready dict, see `shelfwise.experiments.
    assignment.ExperimentSpec`), `running` or `stopped`, and when (naive UTC)."""

    experiment_id: str
    spec: dict[str, Any]
    status: str
    created_at: datetime
    stopped_at: datetime | None = None


class Store(ABC):
    """Catalog, users and events of one store.

    Every write method is atomic: it either applies completely or raises and leaves the
    store exactly as it was.
    """

    url: str

    # -- writes ---------------------------------------------------------------------------
    @abstractmethod
    def ingest(
        self,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        events: pd.DataFrame | None = None,
    ) -> IngestReport:
        """Upsert items and users, append events, all in ONE transaction.

        Items and users are upserted by id (idempotent: the last row for an id wins, and
        ingesting the same rows twice changes nothing). Events with an `event_id` that is
        already stored (or repeated within the batch) are skipped and counted as duplicates;
        events without one are always appended. Users that events mention but that do not
        exist yet are created with `created_at` = their first event's timestamp.
        """

    def upsert_items(self, items: pd.DataFrame) -> int:
        """Insert or replace items by `item_id`; returns the number of rows written."""
        return self.ingest(items=items).items

    def upsert_users(self, users: pd.DataFrame) -> int:
        """Insert or replace users by `user_id`; returns the number of rows written."""
        return self.ingest(users=users).users

    def append_events(self, events: pd.DataFrame) -> int:
        """Append events; returns how many were new (duplicate event_ids are ignored)."""
        return self.ingest(events=events).events

    def append_event_batches(
        self, events: pd.DataFrame, sizes: Sequence[int]
    ) -> list[IngestReport]:
        """Append several batches of events (one per client request, say) in ONE
        transaction, with one report per batch, in order.

        `events` holds the batches one after another: the first `sizes[0]` rows are batch
        0, the next `sizes[1]` batch 1, and so on. The combined effect is that of ingesting
        the batches one after another: an `event_id` stored already, or met earlier in
        this call, counts as a duplicate of the batch that repeats it. Atomic like every
        write: all batches are stored, or none. This default ingests them one by one (each
        atomic on its own); the SQL stores use one transaction.
        """
        if sum(sizes) != len(events) or any(n < 0 for n in sizes):
            raise ValueError(f"sizes {list(sizes)} do not add up to the {len(events)} events")
        bounds = np.cumsum([0, *sizes])
        return [self.ingest(events=events.iloc[int(a) : int(b)]) for a, b in pairwise(bounds)]

    def append_event_records(
        self, records: Sequence[Event], sizes: Sequence[int]
    ) -> list[IngestReport]:
        """`append_event_batches` for validated `Event` records (what `POST /v1/events`
        holds): the same batches, reports and atomicity. The SQL stores convert the records
        to plain column lists, without a DataFrame (the request path's few events cost less
        in the database than in pandas); this default goes through a frame."""
        from shelfwise.data.frames import records_to_frame

        if sum(sizes) != len(records) or any(n < 0 for n in sizes):
            raise ValueError(f"sizes {list(sizes)} do not add up to the {len(records)} events")
        try:
            frame = records_to_frame("events", records)
        except (ValueError, TypeError) as exc:
            raise DataError(f"events: {exc}") from exc
        return self.append_event_batches(frame, sizes)

    @abstractmethod
    def delete_item(self, item_id: str) -> bool:
        """Remove an item from the catalog (its events stay); False if it did not exist."""

    @abstractmethod
    def erase_user(self, user_id: str) -> dict[str, int]:
        """Right to be forgotten: delete the user's events and profile rows.

        Returns counts per table, e.g. `{"events": 12, "users": 1}`.
        """

    # -- reads ----------------------------------------------------------------------------
    @abstractmethod
    def items(self, item_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Catalog rows (canonical item layout), ordered by item_id."""

    @abstractmethod
    def users(self) -> pd.DataFrame:
        """All users (canonical user layout), ordered by user_id."""

    @abstractmethod
    def events(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        types: Sequence[str] | None = None,
        user_id: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> pd.DataFrame:
        """Events in the canonical layout plus an int64 `seq` column (insertion order).

        Ordered by (timestamp, seq), or the reverse with `newest_first`. `since` is
        inclusive, `until` exclusive.
        """

    def recent_events(
        self, user_id: str, limit: int = 200, after_seq: int | None = None
    ) -> pd.DataFrame:
        """A user's latest events, newest first: columns item_id, type, value, timestamp
        (naive UTC), session_id, seq; with `after_seq`, only events with a larger `seq`.
        The serving hot path: backends answer it with one light query."""
        events = self.events(user_id=user_id, limit=None, newest_first=True)
        if after_seq is not None:
            events = events[events["seq"] > after_seq]
        return events.loc[:, list(RECENT_EVENT_COLUMNS)].head(limit).reset_index(drop=True)

    def tail_events(self, after_seq: int = 0, limit: int | None = None) -> pd.DataFrame:
        """Events with `seq > after_seq`, in `seq` order: user_id, item_id, type, value,
        timestamp (naive UTC), session_id, seq. For in-memory replicas that follow the log
        (sequence numbers grow in commit order, so a replica that has seen everything up to
        a `seq` misses nothing by asking for what is above it)."""
        events = self.events()
        events = events[events["seq"] > after_seq].sort_values("seq")
        columns = ["user_id", *RECENT_EVENT_COLUMNS]
        out = events.loc[:, columns].reset_index(drop=True)
        return out if limit is None else out.head(limit)

    def erasure_count(self) -> int:
        """How many `erase_user` calls erased something: a process holding per-user caches
        drops them when this moves (another process erased someone). 0 if not counted."""
        return 0

    def items_written_since(
        self, since: datetime | None = None
    ) -> tuple[pd.DataFrame, datetime | None]:
        """(items inserted or changed at or after `since`, the newest write time). Without
        write times, every item and None, which a caller treats as "look at everything"."""
        return self.items(), None

    def item_ids(self) -> list[str]:
        """Every item id in the catalog."""
        return [str(i) for i in self.items()["item_id"]]

    def catalog_stamp(self) -> str:
        """A string that changes with every catalog write (upsert or delete of items)."""
        items = self.items()
        return f"{len(items)}:{pd.util.hash_pandas_object(items, index=False).sum()}"

    def last_seq(self) -> int:
        """The largest event `seq` so far (0 for none). Sequence numbers grow in commit
        order, so an event committed later always has a larger one."""
        events = self.events(limit=1, newest_first=True)
        return int(events["seq"].max()) if len(events) else 0

    def last_seq_cached(self) -> bool:
        """Whether `last_seq()` would answer from memory, without reading the store."""
        return False

    def interactions(
        self, since: datetime | None = None, types: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Events that name an item: columns user_id, item_id, type, value, timestamp, seq."""
        ev = self.events(since=since, types=types)
        ev = ev[ev["item_id"].notna()]
        return ev.loc[:, ["user_id", "item_id", "type", "value", "timestamp", "seq"]].reset_index(
            drop=True
        )

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """`{"items": n, "users": n, "events": n}`."""

    def unknown_item_events(self) -> int:
        """How many events name an item that is not in the catalogue (now). Such events are
        accepted and kept (a storefront racing a catalogue update loses nothing; they count
        once the item arrives) and counted here for `stats`."""
        known = set(self.item_ids())
        inter = self.interactions()
        return int((~inter["item_id"].astype(str).isin(known)).sum()) if len(inter) else 0

    @abstractmethod
    def event_type_counts(self) -> dict[str, int]:
        """Number of events per type."""

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the store's contents change."""

    # -- API keys (hashed; written without moving the fingerprint) ------------------------
    def add_api_key(self, record: ApiKeyRecord) -> None:
        """Store a new API key record; `StoreError` if its `key_id` exists."""
        raise NotImplementedError(f"{type(self).__name__} does not store API keys")

    def api_keys(self) -> list[ApiKeyRecord]:
        """All API key records, revoked ones included, ordered by creation time."""
        raise NotImplementedError(f"{type(self).__name__} does not store API keys")

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """One API key record by id, or None."""
        raise NotImplementedError(f"{type(self).__name__} does not store API keys")

    def revoke_api_key(self, key_id: str) -> bool:
        """Mark a key revoked; False if there is no active key with that id."""
        raise NotImplementedError(f"{type(self).__name__} does not store API keys")

    # -- impressions and experiments (measurements; they never move the fingerprint) ------
    def append_impressions(self, frame: pd.DataFrame) -> int:
        """Store served lists (a frame from `shelfwise.store.measure.impressions_frame`);
        a `request_id` stored already is skipped. Returns how many rows were new."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions")

    def delete_impressions(self, before: datetime) -> int:
        """Delete the served lists older than `before` (retention); returns how many."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions")

    def impressions(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        list_types: Sequence[str] | None = None,
        experiment_id: str | None = None,
    ) -> pd.DataFrame:
        """Served lists, oldest first (columns of `shelfwise.store.measure.IMPRESSION_COLUMNS`,
        `items` and `propensities` as lists)."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions")

    def impression_counts(
        self,
        by: Sequence[str] = ("list_type",),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        """Impressions and attributed clicks, add-to-carts, purchases and revenue per group
        of `by` (see `shelfwise.store.measure.MeasureSql.impression_counts`)."""
        raise NotImplementedError(f"{type(self).__name__} does not store impressions")

    def outcome_events(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Events that carry a `request_id`: request_id, user_id, item_id, type, value,
        timestamp."""
        ev = self.events(since=since, until=until)
        ev = ev[ev["request_id"].notna()]
        columns = ["request_id", "user_id", "item_id", "type", "value", "timestamp"]
        return ev.loc[:, columns].reset_index(drop=True)

    def add_experiment(self, row: ExperimentRow) -> None:
        """Store a new experiment; `StoreError` if its id exists."""
        raise NotImplementedError(f"{type(self).__name__} does not store experiments")

    def experiments(self) -> list[ExperimentRow]:
        """Every experiment, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} does not store experiments")

    def get_experiment(self, experiment_id: str) -> ExperimentRow | None:
        """One experiment by id, or None."""
        raise NotImplementedError(f"{type(self).__name__} does not store experiments")

    def stop_experiment(self, experiment_id: str, at: datetime) -> bool:
        """Mark a running experiment stopped; False if none runs by that id."""
        raise NotImplementedError(f"{type(self).__name__} does not store experiments")

    # -- lifecycle ------------------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
