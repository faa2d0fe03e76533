"""The event replica: every user's latest events in memory, following the store's log,
and the user's history and sequence read from them as the bundle's models see them."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.artifacts.bundle import weighted_events
from shelfwise.data.matrix import InteractionWeights
from shelfwise.data.schemas import EVENT_TYPES
from shelfwise.data.vocab import Vocabulary
from shelfwise.store import Store

log = logging.getLogger(__name__)

#: Events kept per user (the engine's `EngineConfig.history_limit` overrides it).
HISTORY_LIMIT = 200

#: The layout of a saved replica (`EventLog.save`); another one is not read.
SNAPSHOT_FORMAT = 1


class EventLog:
    """An in-memory replica of the latest events of every user, following the store's log.

    Serving reads a user's events on every request; a point query per request costs a
    column store like DuckDB a scan (tens of milliseconds on a million events), so the engine
    keeps the latest `limit` events per user in numpy arrays (loaded once, one sorted read)
    plus a per-user delta of newer events, and follows the log with `Store.tail_events`:
    before answering, it fetches the events above its watermark (a primary-key range query;
    at most every `tail_seconds`, and at once after a write through this process). Sequence
    numbers grow in commit order, so nothing is missed, whichever process wrote the event.

    Erasure in this process drops the user at once (under the tail lock, so no tail in
    flight can bring the erased events back); `reload()` rebuilds the replica, which the
    engine does when another process erased someone.

    Reading the whole log is most of a server's start-up on a large store (seconds at a
    million events), so a server saves the replica (`save`: the arrays, the watermark and
    the store's erasure count) and the next start reads it back from `snapshot` and tails
    only the events above its watermark. A snapshot is used only if it is of this store,
    was taken with the same `limit`, no user was erased since (the erased events could
    still be in it) and the store has reached its watermark; otherwise the log is read
    from the store as without one (`from_snapshot` says which it was).
    """

    def __init__(
        self,
        store: Store,
        limit: int = HISTORY_LIMIT,
        tail_seconds: float = 0.0,
        snapshot: Path | None = None,
    ) -> None:
        self.store = store
        self.limit = limit
        self.tail_seconds = tail_seconds
        self._lock = threading.RLock()
        self.tail_lock = threading.Lock()
        self._dirty = False
        self._last_tail = 0.0
        #: The store's erasure count the replica is consistent with (-1: unknown).
        self.erasures = -1
        self.from_snapshot = snapshot is not None and self._load(Path(snapshot))
        if not self.from_snapshot:
            self.reload()

    def reload(self) -> None:
        """Read the latest `limit` events of every user from the store."""
        with self.tail_lock:
            erasures = self.store.erasure_count()
            watermark = self.store.last_seq()
            frame = self.store.tail_events(0)
            if len(frame):
                watermark = max(watermark, int(frame["seq"].max()))
            base = _LogBase.build(frame, self.limit)
            with self._lock:
                self._base = base
                self._delta: dict[str, list[tuple[Any, ...]]] = {}
                self._watermark = watermark
                self._last_tail = time.monotonic()
                self.erasures = erasures

    # -- snapshots ----------------------------------------------------------------------------
    def save(self, path: Path) -> bool:
        """Write the replica (base and delta merged) to `path` atomically; False (nothing
        written) when it is not known to be consistent with the store's erasures."""
        with self.tail_lock:
            if self.erasures < 0 or self.erasures != self.store.erasure_count():
                return False
            with self._lock:
                base, delta, watermark = self._base, dict(self._delta), self._watermark
            if delta:
                base = base.merged(delta, self.limit)
            arrays = base.state()
            arrays["meta"] = np.array(
                [SNAPSHOT_FORMAT, watermark, self.erasures, self.limit], dtype=np.int64
            )
            arrays["store"] = np.array([_store_id(self.store)])
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_name(f".{path.name}.{os.getpid()}.part")
            with part.open("wb") as sink:
                np.savez(sink, **arrays)  # type: ignore[arg-type]
            os.replace(part, path)
            return True

    def _load(self, path: Path) -> bool:
        """Read a snapshot written by `save` if it may be used (class doc); True if read."""
        if not path.is_file():
            return False
        with self.tail_lock:
            try:
                with np.load(path, allow_pickle=False) as data:
                    fmt, watermark, erasures, limit = (int(v) for v in data["meta"])
                    usable = (
                        fmt == SNAPSHOT_FORMAT
                        and limit == self.limit
                        and str(data["store"][0]) == _store_id(self.store)
                        and erasures == self.store.erasure_count()
                        and watermark <= self.store.last_seq()
                    )
                    if not usable:
                        log.info(
                            "the event replica snapshot %s does not fit; reading the log", path
                        )
                        return False
                    base = _LogBase.from_state({k: data[k] for k in data.files})
            except Exception as exc:  # truncated (BadZipFile, EOFError), garbled, foreign:
                # the snapshot only speeds the start up, the log it came from is in the store
                log.warning(
                    "unreadable event replica snapshot %s (%s: %s); reading the log",
                    path,
                    type(exc).__name__,
                    exc,
                )
                return False
            with self._lock:
                self._base = base
                self._delta = {}
                self._watermark = watermark
                self._last_tail = 0.0
                self.erasures = erasures
        self.tail(force=True)  # what arrived since the snapshot
        return True

    def mark_dirty(self) -> None:
        """This process wrote events: the next read tails the log whatever the interval."""
        self._dirty = True

    def reads_store(self) -> bool:
        """Whether the next `events()` would read the store (new events to fetch, or the
        store's last sequence number to ask), rather than answer from memory alone."""
        if self._dirty:
            return True
        if time.monotonic() - self._last_tail < self.tail_seconds:
            return False
        return not self.store.last_seq_cached()

    def tail(self, force: bool = False) -> int:
        """Fetch events above the watermark; returns how many arrived."""
        now = time.monotonic()
        if not force and not self._dirty and now - self._last_tail < self.tail_seconds:
            return 0
        with self.tail_lock:
            self._dirty = False
            self._last_tail = time.monotonic()
            if self.store.last_seq() <= self._watermark:  # a tiny read: nothing new
                return 0
            new = self.store.tail_events(self._watermark)
            if new.empty:
                return 0
            micros = new["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
            rows = zip(
                new["user_id"].tolist(),
                new["item_id"].tolist(),
                new["type"].tolist(),
                new["value"].tolist(),
                micros.tolist(),
                new["session_id"].tolist(),
                new["seq"].tolist(),
                strict=True,
            )
            with self._lock:
                for user, *row in rows:
                    bucket = self._delta.setdefault(str(user), [])
                    bucket.append(tuple(row))
                    if len(bucket) > 2 * self.limit:
                        del bucket[: len(bucket) - self.limit]
                self._watermark = max(self._watermark, int(new["seq"].max()))
            return len(new)

    def events(self, user_id: str) -> pd.DataFrame:
        """The user's latest `limit` events, newest first (RECENT_EVENT_COLUMNS)."""
        return pd.DataFrame(self.columns(user_id), copy=False)

    def columns(self, user_id: str) -> dict[str, np.ndarray]:
        """`events(user_id)` as numpy columns (timestamps datetime64[us]): what serving
        reads on every request, without building a DataFrame (which converts every text
        column to Arrow strings and back)."""
        self.tail()
        with self._lock:
            base = self._base.rows(user_id)
            delta = list(self._delta.get(user_id, ()))
        if delta:
            item, kind, value, micros, session, seq = (list(c) for c in zip(*delta, strict=True))
            extra = {
                "item_id": np.array(item, dtype=object),
                "type": np.array(kind, dtype=object),
                "value": np.array(value, dtype=np.float64),
                "timestamp": np.array(micros, dtype=np.int64),
                "session_id": np.array(session, dtype=object),
                "seq": np.array(seq, dtype=np.int64),
            }
            base = {k: np.concatenate([base[k], extra[k]]) for k in base}
        order = np.lexsort((base["seq"], base["timestamp"]))[::-1][: self.limit]
        columns = {k: v[order] for k, v in base.items()}
        columns["timestamp"] = columns["timestamp"].astype(np.int64).view("datetime64[us]")
        return columns

    def drop(self, user_id: str, erasures_before: int | None = None) -> None:
        """Forget a user (hold `tail_lock` around the store's erasure and this call).
        `erasures_before` is the store's erasure count before this erasure: when the
        replica was consistent with it, it is now consistent with the count after."""
        with self._lock:
            self._delta.pop(user_id, None)
            self._base = self._base.without(user_id)
            if erasures_before is None or erasures_before != self.erasures:
                self.erasures = -1  # an erasure elsewhere may be missing: no snapshot
            else:
                self.erasures = self.store.erasure_count()


def _store_id(store: Store) -> str:
    """The store's identity: its fingerprint without the revision."""
    return store.fingerprint().rsplit("-", 1)[0]


@dataclass(frozen=True)
class _LogBase:
    """The loaded events, sorted by (user, timestamp, seq), the latest `limit` per user.

    Text columns are held as int32 codes into a table of distinct values (the last entry
    None), so a million events cost a few tens of megabytes, not one Python string each.
    """

    spans: dict[str, tuple[int, int]]
    codes: dict[str, np.ndarray]  # item_id, type, session_id -> int32 codes (-1: None)
    values: dict[str, np.ndarray]  # the distinct values per text column, None appended
    value: np.ndarray
    timestamp: np.ndarray  # int64 microseconds
    seq: np.ndarray

    TEXT = ("item_id", "type", "session_id")

    @classmethod
    def build(cls, frame: pd.DataFrame, limit: int) -> _LogBase:
        users, names = pd.factorize(frame["user_id"].astype(str))
        micros = frame["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        seq = frame["seq"].to_numpy(dtype=np.int64)
        order = np.lexsort((seq, micros, users))
        users = users[order]
        sizes = np.bincount(users, minlength=len(names))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        position = np.arange(len(users)) - starts[users]
        keep = position >= sizes[users] - limit
        order, users = order[keep], users[keep]
        kept = np.minimum(sizes, limit)
        kept_starts = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(np.int64)
        spans = {
            str(name): (int(a), int(a + n))
            for name, a, n in zip(names, kept_starts, kept, strict=True)
            if n
        }
        codes, values = {}, {}
        for name in cls.TEXT:
            column = frame[name].to_numpy(dtype=object)[order]
            code, distinct = pd.factorize(column, use_na_sentinel=True)
            codes[name] = code.astype(np.int32)
            values[name] = np.array([*list(distinct), None], dtype=object)
        return cls(
            spans=spans,
            codes=codes,
            values=values,
            value=pd.to_numeric(frame["value"]).to_numpy(dtype=np.float64)[order],
            timestamp=micros[order],
            seq=seq[order],
        )

    def rows(self, user_id: str) -> dict[str, np.ndarray]:
        """The user's loaded events as columns (oldest first)."""
        a, b = self.spans.get(user_id, (0, 0))
        out = {name: self.values[name][self.codes[name][a:b]] for name in self.TEXT}
        out.update(value=self.value[a:b], timestamp=self.timestamp[a:b], seq=self.seq[a:b])
        return out

    def state(self) -> dict[str, np.ndarray]:
        """The base as plain arrays (no pickle): `from_state` reads them back."""
        names = list(self.spans)
        bounds = np.array([self.spans[n] for n in names], dtype=np.int64).reshape(-1, 2)
        out: dict[str, np.ndarray] = {
            "users": np.array(names, dtype=str),
            "bounds": bounds,
            "value": self.value,
            "timestamp": self.timestamp,
            "seq": self.seq,
        }
        for name in self.TEXT:
            out[f"codes_{name}"] = self.codes[name]
            out[f"values_{name}"] = np.array([str(v) for v in self.values[name][:-1]], dtype=str)
        return out

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray]) -> _LogBase:
        """A base from what `state` wrote."""
        names = arrays["users"].tolist()
        bounds = arrays["bounds"].tolist()
        spans = {str(n): (int(a), int(b)) for n, (a, b) in zip(names, bounds, strict=True)}
        codes = {n: np.array(arrays[f"codes_{n}"], dtype=np.int32) for n in cls.TEXT}
        values = {
            n: np.array([*arrays[f"values_{n}"].tolist(), None], dtype=object) for n in cls.TEXT
        }
        return cls(
            spans=spans,
            codes=codes,
            values=values,
            value=np.array(arrays["value"], dtype=np.float64),
            timestamp=np.array(arrays["timestamp"], dtype=np.int64),
            seq=np.array(arrays["seq"], dtype=np.int64),
        )

    def merged(self, delta: dict[str, list[tuple[Any, ...]]], limit: int) -> _LogBase:
        """The base with the delta's events added (the latest `limit` per user kept)."""
        users = np.empty(len(self.seq), dtype=object)
        for user, (a, b) in self.spans.items():
            users[a:b] = user
        keep = self.seq >= 0  # rows of erased users are overwritten with seq -1
        base_frame = pd.DataFrame(
            {
                "user_id": users[keep],
                **{n: self.values[n][self.codes[n]][keep] for n in self.TEXT},
                "value": self.value[keep],
                "timestamp": self.timestamp[keep].view("datetime64[us]"),
                "seq": self.seq[keep],
            }
        )
        rows = [(user, *row) for user, bucket in delta.items() for row in bucket]
        extra = pd.DataFrame(
            rows, columns=["user_id", "item_id", "type", "value", "timestamp", "session_id", "seq"]
        )
        extra["timestamp"] = extra["timestamp"].to_numpy(dtype=np.int64).view("datetime64[us]")
        frame = pd.concat([base_frame, extra], ignore_index=True)
        return _LogBase.build(frame, limit)

    def without(self, user_id: str) -> _LogBase:
        """The same base without one user's events: their rows are overwritten in place
        (no event of theirs stays in memory) and their span dropped."""
        if user_id not in self.spans:
            return self
        a, b = self.spans[user_id]
        for name in self.TEXT:
            self.codes[name][a:b] = -1
        self.value[a:b] = np.nan
        self.timestamp[a:b] = 0
        self.seq[a:b] = -1
        spans = dict(self.spans)
        del spans[user_id]
        return _LogBase(spans, self.codes, self.values, self.value, self.timestamp, self.seq)


#: A user's events as the replica hands them out: a DataFrame, or its columns as arrays.
Events = pd.DataFrame | Mapping[str, np.ndarray]


def event_column(events: Events, name: str) -> np.ndarray:
    """One column of `events` as a numpy array (text as objects, timestamps as
    datetime64[us])."""
    if isinstance(events, pd.DataFrame):
        if name == "timestamp":
            return events[name].to_numpy(dtype="datetime64[us]")
        if name == "value":
            return events[name].to_numpy(dtype=np.float64)
        if name == "seq":
            return events[name].to_numpy(dtype=np.int64)
        return events[name].to_numpy(dtype=object)
    return np.asarray(events[name])


def weighted_history(
    events: Events,
    vocab: Vocabulary,
    weights: InteractionWeights,
    half_life_days: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(item indices in `vocab`, summed weights) of a user's events, weighted like
    `build_interactions` with `weights` (type weights, values, `min_value`, decay from the
    newest event, `binary`), in plain numpy: this runs on every request. `half_life_days`
    (the engine's `history_half_life_days`) is the serving-time decay from the user's
    newest event; None: the decay of `weights` (the models' training weighting)."""
    empty = np.empty(0, np.int64), np.empty(0, np.float32)
    item = event_column(events, "item_id")
    present = ~pd.isna(item)
    if not present.any():
        return empty
    idx = np.asarray(vocab.encode(item[present], unknown="minus_one"), dtype=np.int64)
    types = event_column(events, "type")[present]
    table = {t: weights.weight_of(t) for t in EVENT_TYPES}
    w = np.fromiter((table.get(t, 1.0) for t in types), dtype=np.float64, count=len(types))
    if weights.use_value:
        valued = np.isin(types, list(weights.use_value))
        if valued.any():
            values = np.asarray(event_column(events, "value"), dtype=np.float64)[present]
            values = np.where(np.isnan(values), 1.0, values)
            w = np.where(valued, w * values, w)
            if weights.min_value is not None:
                w = np.where(valued & (values < weights.min_value), np.nan, w)
    half_life = half_life_days if half_life_days is not None else weights.half_life_days
    if half_life is not None:
        micros = event_column(events, "timestamp")[present].astype(np.int64)
        age_days = (micros.max() - micros) / 86_400e6
        w = w * np.exp2(-age_days / half_life)
    keep = (idx >= 0) & ~np.isnan(w) & (w != 0)
    if not keep.any():
        return empty
    items, inverse = np.unique(idx[keep], return_inverse=True)
    sums = np.bincount(inverse, weights=w[keep]).astype(np.float32)
    nonzero = sums != 0
    if weights.binary:
        sums[:] = 1.0
    return items[nonzero], sums[nonzero]


def event_sequence(events: Events, vocab: Vocabulary, weights: InteractionWeights) -> np.ndarray:
    """A user's item events (given newest first) as indices in `vocab`, oldest -> newest,
    repeats kept, types weighing 0 and unknown items left out: what a sequential model
    reads."""
    if not isinstance(events, pd.DataFrame):
        events = pd.DataFrame(dict(events), copy=False)
    events = weighted_events(events, weights)
    if events.empty:
        return np.empty(0, np.int64)
    idx = vocab.encode(events["item_id"], unknown="minus_one")
    idx = idx[::-1]  # the store gave newest first
    return np.asarray(idx[idx >= 0], dtype=np.int64)
