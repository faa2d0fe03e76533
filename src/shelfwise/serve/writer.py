"""Group commit for `POST /v1/events`: one writer thread, one transaction per group.

The thread and its grouping are `shelfwise.batching.BatchWriter`'s (shared with the
impression log).

Each request hands its validated events to the writer and waits until the transaction
holding them committed, so an acknowledged event is durable. While one transaction runs,
the requests that arrive queue up; the writer takes all of them (up to `max_events`, and with
`gather_seconds` waiting that long at most for as many as waited the last time) into the
next transaction, so under load many requests share one commit and its fsync instead
of taking turns for the store's lock.

Two ways in:

- `write_async` (the HTTP routes, on the event loop): requests are collected per loop
  iteration and queued together by one callback at the next iteration, so the requests
  the loop parsed in one pass reach the writer as one parcel, not one by one while the
  writer thread already started a transaction with the first (which made small groups
  under concurrency); after the commit the writer settles every waiter of a group on its
  loop with ONE `call_soon_threadsafe`, instead of one thread-safe wake-up per request.
- `submit` / `write` (threads, tests): a `concurrent.futures.Future` per request.

The gathering window adapts to the store's pace: after each write it is set to twice that
write's wall time, within `gather_seconds` and `GATHER_STRETCH` times it. On a crowded
machine a write and the event loop's answer-and-parse round both take longer, and with the
fixed window the clients answered by one group came back after the next had closed (groups
of half the clients). DuckDB, 64 closed-loop clients, load 10 to 13
(benchmarks/events_load.py): 31 events per commit with 5 ms, 58 to 64 with a fixed 20 ms,
33 to 41 with the write's own wall time, 43 to 62 with twice it. Where writes are quick,
the window stays at `gather_seconds`.

A group is written with `Store.append_event_records` (one report per request). If that
fails, each request of the group is retried alone, so a request whose events the store
refuses gets the error and the others still go through; nothing is half applied.
`stats()` counts the groups, requests and events written (exported as metrics).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from shelfwise.batching import BatchWriter
from shelfwise.data.schemas import Event
from shelfwise.errors import StoreError
from shelfwise.store import IngestReport, Store

log = logging.getLogger(__name__)

#: The gathering window grows with the writes' wall time up to this many `gather_seconds`.
GATHER_STRETCH = 4.0


@dataclass
class _Request:
    events: Sequence[Event]
    done: Future[IngestReport] | None = None  # `submit`
    waiter: asyncio.Future[IngestReport] | None = None  # `write_async`, on `loop`
    loop: asyncio.AbstractEventLoop | None = None


@dataclass
class _Parcel:
    """Requests queued together: one from `submit`, or those of one loop iteration."""

    requests: list[_Request]
    size: int = field(default=0)


def _settle(outcomes: list[tuple[asyncio.Future[IngestReport], Any, bool]]) -> None:
    """On the loop: give each waiter its report (or error); cancelled ones are skipped."""
    for waiter, value, failed in outcomes:
        if waiter.done():
            continue
        if failed:
            waiter.set_exception(value)
        else:
            waiter.set_result(value)


class EventWriter:
    """A thread that group-commits submitted events into `store` (see the module doc)."""

    def __init__(self, store: Store, max_events: int = 5000, gather_seconds: float = 0.0) -> None:
        self.store = store
        self.max_events = max(int(max_events), 1)
        self.gather_seconds = max(float(gather_seconds), 0.0)
        self._batches: BatchWriter[_Parcel] = BatchWriter(
            self._write,
            "shelfwise-events",
            self.max_events,
            size=lambda p: p.size,
            gather_seconds=gather_seconds,
        )
        self._pending: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
        self._guard = threading.Lock()
        self._groups = 0
        self._requests = 0
        self._events = 0

    def submit(self, events: Sequence[Event]) -> Future[IngestReport]:
        """Queue events for the next transaction; the future holds their `IngestReport`
        once committed, or the error that rolled them back."""
        done: Future[IngestReport] = Future()
        request = _Request(list(events), done=done)
        if not self._batches.put(_Parcel([request], len(request.events))):
            done.set_exception(StoreError("the event writer is shut down"))
        return done

    def write(self, events: Sequence[Event], timeout: float | None = None) -> IngestReport:
        """`submit` and wait for the commit."""
        return self.submit(events).result(timeout)

    async def write_async(self, events: Sequence[Event]) -> IngestReport:
        """Store `events` in the next transaction and return their `IngestReport` once it
        committed (raises the error that rolled them back). Requests of one loop iteration
        are queued together at the next (see the module doc)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[IngestReport] = loop.create_future()
        request = _Request(list(events), waiter=waiter, loop=loop)
        with self._guard:
            pending = self._pending.get(loop)
            if pending is None:
                self._pending[loop] = pending = []
                loop.call_soon(self._flush, loop)
            pending.append(request)
        return await waiter

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: queue what `write_async` collected, in parcels of `max_events`."""
        with self._guard:
            pending = self._pending.pop(loop, [])
        parcel = _Parcel([])
        parcels = [parcel]
        for request in pending:
            if parcel.requests and parcel.size + len(request.events) > self.max_events:
                parcel = _Parcel([])
                parcels.append(parcel)
            parcel.requests.append(request)
            parcel.size += len(request.events)
        for parcel in parcels:
            if parcel.requests and not self._batches.put(parcel):
                for request in parcel.requests:
                    assert request.waiter is not None
                    if not request.waiter.done():
                        request.waiter.set_exception(StoreError("the event writer is shut down"))

    def stats(self) -> dict[str, int]:
        """Transactions (groups), requests and events written so far."""
        return {"groups": self._groups, "requests": self._requests, "events": self._events}

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (idempotent)."""
        self._batches.close(timeout)

    # -- the writer thread ----------------------------------------------------------------
    def _write(self, parcels: list[_Parcel]) -> None:
        started = time.perf_counter()
        try:
            self._write_group(parcels)
        finally:  # the next group gathers about as long as this one took (module doc)
            took = time.perf_counter() - started
            base = self.gather_seconds
            self._batches.gather_seconds = min(max(2 * took, base), base * GATHER_STRETCH)

    def _write_group(self, parcels: list[_Parcel]) -> None:
        live = [
            r
            for p in parcels
            for r in p.requests
            if r.done is None or r.done.set_running_or_notify_cancel()
        ]
        if not live:
            return
        outcomes: list[tuple[_Request, Any, bool]]
        try:
            reports = self._append(live)
            outcomes = [(r, report, False) for r, report in zip(live, reports, strict=True)]
        except Exception as exc:
            if len(live) == 1:
                outcomes = [(live[0], exc, True)]
            else:
                log.debug(
                    "a group of %d event requests failed (%s); writing each alone",
                    len(live),
                    exc,
                )
                outcomes = []
                for request in live:
                    try:
                        outcomes.append((request, self._append([request])[0], False))
                    except Exception as one:
                        outcomes.append((request, one, True))
        self._settle(outcomes)

    def _append(self, group: list[_Request]) -> list[IngestReport]:
        events = [e for r in group for e in r.events]
        reports = self.store.append_event_records(events, [len(r.events) for r in group])
        self._groups += 1
        self._requests += len(group)
        self._events += len(events)
        return reports

    @staticmethod
    def _settle(outcomes: list[tuple[_Request, Any, bool]]) -> None:
        """Resolve every request: futures here, loop waiters with one callback per loop."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for request, value, failed in outcomes:
            if request.done is not None:
                if failed:
                    request.done.set_exception(value)
                else:
                    request.done.set_result(value)
            elif request.waiter is not None and request.loop is not None:
                by_loop.setdefault(request.loop, []).append((request.waiter, value, failed))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop closed meanwhile: nobody waits any more
                log.debug("an event loop closed before %d acks", len(settled))
