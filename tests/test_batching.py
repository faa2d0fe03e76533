"""`BatchWriter`: items queued while a write runs go together into the next write, groups
stop at `max_size`, a bounded queue refuses when full, and `close` writes what is queued."""

from __future__ import annotations

import threading
import time

from shelfwise.batching import BatchWriter


def test_items_queued_during_a_write_share_the_next_one() -> None:
    groups: list[list[int]] = []
    release = threading.Event()
    started = threading.Event()

    def write(group: list[int]) -> None:
        groups.append(group)
        started.set()
        release.wait(5)

    writer: BatchWriter[int] = BatchWriter(write, "test-batching", max_size=3)
    assert writer.put(0)
    assert started.wait(5)  # the first write holds the thread
    for i in range(1, 6):
        assert writer.put(i)
    release.set()
    writer.close()
    assert groups == [[0], [1, 2, 3], [4, 5]]
    assert not writer.put(6) and writer.closed


def test_size_counts_items_by_weight_and_linger_waits_for_more() -> None:
    groups: list[list[str]] = []
    writer: BatchWriter[str] = BatchWriter(
        groups.append, "test-batching", max_size=4, size=len, linger_seconds=0.3
    )
    writer.put("ab")
    time.sleep(0.05)
    writer.put("c")  # within the linger of the first: same group
    writer.put("de")  # 2 + 1 + 2 > 4 only after it joined: the group closes with it
    writer.put("f")
    writer.close()
    assert groups == [["ab", "c", "de"], ["f"]]


def test_a_bounded_queue_refuses_when_full() -> None:
    release = threading.Event()
    started = threading.Event()
    written: list[int] = []

    def write(group: list[int]) -> None:
        started.set()
        release.wait(5)
        written.extend(group)

    writer: BatchWriter[int] = BatchWriter(write, "test-batching", max_queue=2)
    writer.put(0)
    assert started.wait(5)
    assert [writer.put(i) for i in (1, 2, 3)] == [True, True, False]
    release.set()
    writer.close()
    assert written == [0, 1, 2]


def test_a_failing_write_does_not_stop_the_thread() -> None:
    written: list[int] = []

    def write(group: list[int]) -> None:
        if 0 in group:
            raise RuntimeError("boom")
        written.extend(group)

    writer: BatchWriter[int] = BatchWriter(write, "test-batching", max_size=1)
    writer.put(0)
    writer.put(1)
    writer.close()
    assert written == [1]


def test_tick_runs_on_the_thread_at_start_before_groups_and_when_idle() -> None:
    ticks: list[str] = []
    idle = threading.Event()

    def tick() -> None:
        ticks.append(threading.current_thread().name)
        if len(ticks) >= 3:
            idle.set()

    writer: BatchWriter[int] = BatchWriter(
        lambda group: None, "test-tick", tick=tick, tick_seconds=0.01
    )
    assert idle.wait(5)  # start, then again after each 0.01 s without an item
    writer.close()
    assert set(ticks) == {"test-tick"}  # never on the caller's thread

    once: list[int] = []
    quiet: BatchWriter[int] = BatchWriter(
        lambda group: None, "test-no-idle", tick=lambda: once.append(1)
    )
    quiet.close()  # without tick_seconds: only at start (and before groups)
    assert once == [1]


def _closed_loop(writer_kwargs: dict[str, float], callers: int, rounds: int) -> list[int]:
    """`callers` threads, each putting an item and waiting for its write `rounds` times,
    against a write that takes 20 ms; the sizes of the groups written."""
    sizes: list[int] = []
    written: dict[int, threading.Event] = {}
    lock = threading.Lock()

    def write(group: list[int]) -> None:
        time.sleep(0.02)
        sizes.append(len(group))
        with lock:
            for item in group:
                written.pop(item).set()

    writer: BatchWriter[int] = BatchWriter(write, "test-gather", **writer_kwargs)  # type: ignore[arg-type]

    ready = threading.Barrier(callers)

    def caller(c: int) -> None:
        ready.wait(10)
        for r in range(rounds):
            done = threading.Event()
            with lock:
                written[c * 1000 + r] = done
            assert writer.put(c * 1000 + r)
            assert done.wait(10)

    threads = [threading.Thread(target=caller, args=(c,)) for c in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    writer.close()
    return sizes


def test_gather_joins_closed_loop_callers_into_one_group_per_write() -> None:
    sizes = _closed_loop({"gather_seconds": 2.0}, callers=8, rounds=6)
    assert sum(sizes) == 48
    # the first write may take the first caller(s) alone, the second the others and
    # those callers' next items; from then on every write holds all eight, but the last
    # (the callers ahead by one round are done by then). Without gathering the writes
    # alternate between the two halves: [1, 7, 1, 7, ...], twelve writes.
    assert sizes.count(8) >= 4 and len(sizes) <= 8


def test_gather_does_not_wait_for_a_single_caller() -> None:
    started = time.monotonic()
    sizes = _closed_loop({"gather_seconds": 2.0}, callers=1, rounds=5)
    assert sizes == [1] * 5
    assert time.monotonic() - started < 1.5  # never waited the 2 s for a second item
