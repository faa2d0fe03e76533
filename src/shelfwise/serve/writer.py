"""Group commit for `POST /v1/events`: one writer thread, one transaction per group.

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
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

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
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closed = False
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="shelfwise-events", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> Future[IngestReport]:
        """Queue events for the next transaction; the future holds their `IngestReport`
        once committed, or the error that rolled them back."""
        done: Future[IngestReport] = Future()
        with self._guard:
            if self._closed:
                done.set_exception(StoreError("the event writer is shut down"))
                return done
            self._queue.put(_Request(list(events), done))
        return done

    def write(self, events: Sequence[Event], timeout: float | None = None) -> IngestReport:
        """`submit` and wait for the commit."""
        return self.submit(events).result(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (idempotent)."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    # -- the writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            group, size = [first], len(first.events)
            while size < self.max_events:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += len(nxt.events)
            self._write(group)

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
