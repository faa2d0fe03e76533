"""One background writer thread that hands queued items to a write function in groups.

Used by the group commit of `POST /v1/events` (`shelfwise.serve.writer.EventWriter`, every
request waits for its group's commit) and by the impression log
(`shelfwise.experiments.impressions.ImpressionLog`, fire and forget). The thread blocks for
the first item, then takes what else has queued - up to `max_size` (counted by `size`),
waiting up to `linger_seconds` for more - and calls `write(group)`: while one write runs,
new items queue up and go together into the next, so the write cost is shared by whatever
arrived meanwhile, however fast it arrives. `close` writes what is queued, then stops.

With `gather_seconds`, a group also waits (up to that long) for as much as was waiting at
the end of the previous write: the items of that write plus those queued behind it. Under
closed-loop callers (each waits for its write before sending the next) this joins the two
half groups that otherwise alternate - one written while the other queues - into one
group per write, halving the writes; with a single caller the target is one item and
nothing waits, and a target that is not met drops to what came.

With `max_queue` the queue is bounded and `put` refuses (False) instead of blocking when
it is full; otherwise it is unbounded. A `tick` is called on the thread when it starts,
before every group and, with `tick_seconds`, after that long without any item (the
impression log's retention pruning), so periodic upkeep never runs on a caller's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class BatchWriter(Generic[T]):
    """A thread that writes queued items in groups (see the module doc)."""

    def __init__(
        self,
        write: Callable[[list[T]], None],
        name: str,
        max_size: int = 5000,
        size: Callable[[T], int] | None = None,
        linger_seconds: float = 0.0,
        max_queue: int = 0,
        tick: Callable[[], None] | None = None,
        tick_seconds: float | None = None,
        gather_seconds: float = 0.0,
    ) -> None:
        self._write = write
        self._tick = tick
        self._tick_seconds = tick_seconds if tick is not None else None
        self.max_size = max(int(max_size), 1)
        self._size = size
        self.linger_seconds = max(float(linger_seconds), 0.0)
        self.gather_seconds = max(float(gather_seconds), 0.0)
        self._queued = 0  # the size of what is queued, for the gathering target
        self._target = 1
        self._queue: queue.SimpleQueue[T | None] | queue.Queue[T | None] = (
            queue.Queue(maxsize=int(max_queue)) if max_queue > 0 else queue.SimpleQueue()
        )
        self._closed = False
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._closed

    def put(self, item: T) -> bool:
        """Queue an item; False (not queued) when closed, or when a bounded queue is full."""
        with self._guard:
            if self._closed:
                return False
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                return False
            self._queued += self._size(item) if self._size else 1
        return True

    def _took(self, item: T) -> int:
        size = self._size(item) if self._size else 1
        with self._guard:
            self._queued -= size
        return size

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread (idempotent)."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
        try:
            self._queue.put(None, timeout=timeout)  # after everything queued before
        except queue.Full:
            return  # the thread is stuck in a write; it is a daemon
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            if self._tick is not None:
                try:
                    self._tick()
                except Exception:  # upkeep must not stop the writes
                    log.exception("%s upkeep failed", self._thread.name)
            try:
                first = self._queue.get(timeout=self._tick_seconds)
            except queue.Empty:
                continue
            if first is None:
                break
            group = [first]
            size = self._took(first)
            now = time.monotonic()
            deadline = now + self.linger_seconds
            gather = now + self.gather_seconds
            target = min(self._target, self.max_size)
            while size < self.max_size:
                left = max(deadline, gather if size < target else 0.0) - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                group.append(nxt)
                size += self._took(nxt)
            try:
                self._write(group)
            except Exception:  # the write function reports its own errors; keep running
                log.exception("a %s write of %d items failed", self._thread.name, len(group))
            with self._guard:  # what waited at the end of this write: the next target
                self._target = max(size + self._queued, 1)
