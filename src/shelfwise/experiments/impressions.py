"""Impressions: what the API showed, logged off the request path.

Every served list gets a `request_id` (`new_request_id`); the handler hands an
`Impression` to `ImpressionLog.log`, which only puts it on a queue. A writer thread takes
what has queued (up to `max_rows`, or what arrived within `flush_seconds`) and stores it
with one `Store.append_impressions` call, so a request never waits for the store. When
the store is slower than the traffic for long, the queue is capped (`max_queue`): newer
impressions are dropped and counted (`dropped`) rather than letting memory grow. The
thread is a `shelfwise.batching.BatchWriter`, as is the event writer's.

`sample_rate` < 1 logs only that share of the lists outside any experiment (at random,
counted in `sampled_out`); a list with an `experiment_id` is always logged. With
`retention_days` the writer thread deletes older impressions when it starts and then every
`PRUNE_EVERY_SECONDS` (`pruned` counts them; the `BatchWriter`'s tick).
`ImpressionLog.from_settings` takes all of these from `Settings().impressions`
(`SHELFWISE_IMPRESSIONS__...`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shelfwise.batching import BatchWriter
from shelfwise.store import Store
from shelfwise.store.measure import impressions_frame

if TYPE_CHECKING:
    from shelfwise.settings import ImpressionSettings

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
"""How often a writer with a retention deletes the impressions past it."""


def new_request_id() -> str:
    """A fresh request id: 32 hex characters (a random UUID)."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """The wall clock, naive UTC (what the store keeps)."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Impression:
    """One served list (see `shelfwise.store.measure` for the stored columns)."""

    request_id: str
    list_type: str
    items: Sequence[str]
    user_id: str | None = None
    query: str | None = None
    n_results: int | None = None
    propensities: Sequence[float] | None = None
    marginal_propensities: Sequence[float] | None = None
    policy: str | None = None
    model_version: str | None = None
    experiment_id: str | None = None
    variant: str | None = None
    exposed: bool = False
    timestamp: datetime = field(default_factory=utc_now)

    def row(self) -> dict[str, Any]:
        """The impression as a row dict for `impressions_frame`."""
        # by hand: dataclasses.asdict deep-copies, which costs more than the rest of a write
        out = {name: getattr(self, name) for name in _FIELDS}
        out["items"] = list(self.items)
        out["propensities"] = None if self.propensities is None else list(self.propensities)
        marginal = self.marginal_propensities
        out["marginal_propensities"] = None if marginal is None else list(marginal)
        return out


_FIELDS = tuple(f.name for f in fields(Impression))


class ImpressionLog:
    """A background writer of impressions into `store` (see the module doc)."""

    def __init__(
        self,
        store: Store,
        flush_seconds: float = 0.5,
        max_rows: int = 2000,
        max_queue: int = 100_000,
        sample_rate: float = 1.0,
        retention_days: float | None = None,
        seed: int | None = None,
    ) -> None:
        self.store = store
        self.flush_seconds = max(float(flush_seconds), 0.0)
        self.max_rows = max(int(max_rows), 1)
        self.sample_rate = min(max(float(sample_rate), 0.0), 1.0)
        self.retention_days = retention_days
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self.sampled_out = 0
        self.pruned = 0
        self.before_write: Callable[[int], None] | None = None
        """A hook the writer thread calls with the batch's size just before it stores the
        batch (tests use it to know the writer holds exactly that batch and nothing else)."""
        self._random = random.Random(seed)
        self._next_prune = time.monotonic()
        self._idle = threading.Condition()
        self._pending = 0
        self._batches: BatchWriter[Impression] = BatchWriter(
            self._write,
            "shelfwise-impressions",
            self.max_rows,
            linger_seconds=self.flush_seconds,
            max_queue=max(int(max_queue), 1),
            tick=self._prune if retention_days is not None else None,
            tick_seconds=PRUNE_EVERY_SECONDS,
        )

    @classmethod
    def from_settings(cls, store: Store, settings: ImpressionSettings) -> ImpressionLog:
        """A writer with the knobs of `Settings().impressions`."""
        return cls(
            store,
            flush_seconds=settings.flush_seconds,
            max_rows=settings.batch_size,
            max_queue=settings.max_queue,
            sample_rate=settings.sample_rate,
            retention_days=settings.retention_days,
        )

    def log(self, impression: Impression) -> None:
        """Queue one impression (never blocks; dropped and counted when the queue is full,
        left out by `sample_rate` when it belongs to no experiment)."""
        if self._batches.closed:
            return
        if (
            self.sample_rate < 1.0
            and impression.experiment_id is None
            and self._random.random() >= self.sample_rate
        ):
            self.sampled_out += 1
            return
        with self._idle:
            self._pending += 1
        if self._batches.put(impression):
            return
        with self._idle:
            self._pending -= 1
            if self._batches.closed:
                return
            self.dropped += 1
            self._idle.notify_all()
        if self.dropped in (1, 100, 10_000) or self.dropped % 100_000 == 0:
            log.warning("impression queue full: %d impressions dropped so far", self.dropped)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (True) or `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (idempotent)."""
        self._batches.close(timeout)

    # -- the writer thread ----------------------------------------------------------------
    def _prune(self) -> None:
        """Delete the impressions older than the retention (when one is set and due)."""
        if self.retention_days is None or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        cutoff = utc_now() - timedelta(days=self.retention_days)
        try:
            self.pruned += self.store.delete_impressions(before=cutoff)
        except Exception as exc:  # measuring must never take serving down
            log.warning("could not delete impressions before %s: %s", cutoff, exc)

    def _write(self, batch: list[Impression]) -> None:
        try:
            if self.before_write is not None:
                self.before_write(len(batch))
            self.written += self.store.append_impressions(
                impressions_frame([i.row() for i in batch])
            )
        except Exception as exc:  # measuring must never take serving down
            self.failed += len(batch)
            log.warning("could not store %d impressions: %s", len(batch), exc)
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()
