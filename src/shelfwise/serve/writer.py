"""Group commit for `POST /v1/events`: one writer thread, one transaction per group.

The thread and its grouping are `shelfwise.batching.BatchWriter`'s (shared with the
impression log).

Each request hands its validated events to `EventWriter.submit` and waits on a future that
is resolved only after the transaction holding them committed, so an acknowledged event is
durable. While one transaction runs, the requests that arrive queue up; the writer takes
all of them (up to `max_events`) into the next transaction, so under load many requests
share one commit and its fsync instead of taking turns for the store's lock.

A group is written with `Store.append_event_records` (one report per request). If that
fails, each request of the group is retried alone, so a request whose events the store
refuses gets the error and the others still go through; nothing is half applied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from shelfwise.batching import BatchWriter
from shelfwise.data.schemas import Event
from shelfwise.errors import StoreError
from shelfwise.store import IngestReport, Store

log = logging.getLogger(__name__)


@dataclass
class _Request:
    events: Sequence[Event]
    done: Future[IngestReport]


class EventWriter:
    """A thread that group-commits submitted events into `store` (see the module doc)."""

    def __init__(self, store: Store, max_events: int = 5000) -> None:
        self.store = store
        self.max_events = max(int(max_events), 1)
        self._batches: BatchWriter[_Request] = BatchWriter(
            self._write, "shelfwise-events", self.max_events, size=lambda r: len(r.events)
        )

    def submit(self, events: Sequence[Event]) -> Future[IngestReport]:
        """Queue events for the next transaction; the future holds their `IngestReport`
        once committed, or the error that rolled them back."""
        done: Future[IngestReport] = Future()
        if not self._batches.put(_Request(list(events), done)):
            done.set_exception(StoreError("the event writer is shut down"))
        return done

    def write(self, events: Sequence[Event], timeout: float | None = None) -> IngestReport:
        """`submit` and wait for the commit."""
        return self.submit(events).result(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (idempotent)."""
        self._batches.close(timeout)

    # -- the writer thread ----------------------------------------------------------------
    def _write(self, group: list[_Request]) -> None:
        live = [r for r in group if r.done.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            reports = self._append(live)
        except Exception as exc:
            if len(live) == 1:
                live[0].done.set_exception(exc)
                return
            log.debug(
                "a group of %d event requests failed (%s); writing each alone", len(live), exc
            )
            for request in live:
                try:
                    request.done.set_result(self._append([request])[0])
                except Exception as one:
                    request.done.set_exception(one)
            return
        for request, report in zip(live, reports, strict=True):
            request.done.set_result(report)

    def _append(self, group: list[_Request]) -> list[IngestReport]:
        events = [e for r in group for e in r.events]
        return self.store.append_event_records(events, [len(r.events) for r in group])
