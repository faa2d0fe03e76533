"""The impression log writes batches off the caller's thread into a real store."""

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from shelfwise.experiments.impressions import Impression, ImpressionLog, new_request_id
from shelfwise.settings import ImpressionSettings, Settings
from shelfwise.store import open_store
from shelfwise.store.measure import impressions_frame


def test_log_writes_batches_and_flushes(tmp_path: Path) -> None:
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        log = ImpressionLog(store, flush_seconds=0.05, max_rows=7)
        ids = [new_request_id() for _ in range(25)]
        for i, rid in enumerate(ids):
            log.log(Impression(rid, "search", [f"A{i}"], user_id="u", query="q"))
        assert log.flush(10.0)
        got = store.impressions()
        assert sorted(got["request_id"]) == sorted(ids)
        assert log.written == 25 and log.dropped == 0 and log.failed == 0
        log.close()
        log.log(Impression(new_request_id(), "search", []))  # after close: ignored
        assert len(store.impressions()) == 25


def _writer_holding_one(log: ImpressionLog) -> threading.Event:
    """Log one impression and wait until the writer thread has taken it (alone) and is
    about to store it: from then on the writer holds exactly 1 item, blocked on the store,
    and every later impression must go through the bounded queue."""
    taken = threading.Event()
    sizes: list[int] = []

    def hook(size: int) -> None:
        sizes.append(size)
        taken.set()

    log.before_write = hook
    log.log(Impression(new_request_id(), "similar", ["A"]))
    assert taken.wait(10.0), "the writer never took the first impression"
    assert sizes == [1]
    log.before_write = None
    return taken


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        with store._lock:  # type: ignore[attr-defined]  # hold the store: the writer blocks
            log = ImpressionLog(store, flush_seconds=0.0, max_rows=1, max_queue=3)
            _writer_holding_one(log)
            for _ in range(9):
                log.log(Impression(new_request_id(), "similar", ["A"]))
            assert log.dropped == 9 - 3  # 1 held by the writer, 3 queued, the rest dropped
        assert log.flush(10.0)
        assert len(store.impressions()) == 1 + 3
        assert log.written == 4 and log.failed == 0
        log.close()


def test_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def _settings(env: dict[str, str]) -> ImpressionSettings:
    """`Settings().impressions` as the environment `env` sets it."""
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("SHELFWISE_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        return Settings().impressions


def test_settings_sample_out_lists_outside_experiments(tmp_path: Path) -> None:
    knobs = _settings({"SHELFWISE_IMPRESSIONS__SAMPLE_RATE": "0"})
    assert knobs.sample_rate == 0.0
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        log = ImpressionLog.from_settings(store, knobs)
        for i in range(20):
            log.log(Impression(new_request_id(), "search", [f"A{i}"], query="q"))
        kept = new_request_id()
        log.log(Impression(kept, "recommendations", ["A1"], experiment_id="e", variant="b"))
        assert log.flush(10.0)
        log.close()
        assert store.impressions()["request_id"].tolist() == [kept]
        assert (log.sampled_out, log.written) == (20, 1)
    # half of them, at random
    with open_store(f"duckdb:///{tmp_path / 'half.duckdb'}") as store:
        log = ImpressionLog(store, sample_rate=0.5, seed=1)
        for _ in range(400):
            log.log(Impression(new_request_id(), "search", ["A"], query="q"))
        log.close()
        assert 150 < len(store.impressions()) < 250
        assert log.sampled_out + log.written == 400


def test_settings_batch_size_and_flush_interval_shape_the_writes(tmp_path: Path) -> None:
    knobs = _settings(
        {"SHELFWISE_IMPRESSIONS__BATCH_SIZE": "4", "SHELFWISE_IMPRESSIONS__FLUSH_SECONDS": "1"}
    )
    assert (knobs.batch_size, knobs.flush_seconds) == (4, 1.0)
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        batches: list[int] = []
        write = store.append_impressions

        def spy(frame: pd.DataFrame) -> int:  # the real write, its batch sizes noted
            batches.append(len(frame))
            return write(frame)

        store.append_impressions = spy  # type: ignore[method-assign]
        log = ImpressionLog.from_settings(store, knobs)
        for _ in range(10):
            log.log(Impression(new_request_id(), "similar", ["A"]))
        assert log.flush(10.0)  # the last 2 wait out the 1 s flush interval
        log.close()
        assert batches == [4, 4, 2] and len(store.impressions()) == 10


def test_settings_queue_bound_drops_the_overflow(tmp_path: Path) -> None:
    knobs = _settings({"SHELFWISE_IMPRESSIONS__MAX_QUEUE": "2"})
    assert knobs.max_queue == 2
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        with store._lock:  # type: ignore[attr-defined]  # hold the store: the writer blocks
            log = ImpressionLog.from_settings(store, knobs)
            _writer_holding_one(log)  # the writer lingers, then takes this one alone
            for _ in range(9):
                log.log(Impression(new_request_id(), "similar", ["A"]))
            assert log.dropped == 9 - 2  # exactly the bound of 2 was accepted
        log.close()
        assert len(store.impressions()) == 1 + 2
        assert log.written == 3


def test_settings_retention_deletes_old_impressions(tmp_path: Path) -> None:
    knobs = _settings({"SHELFWISE_IMPRESSIONS__RETENTION_DAYS": "7"})
    assert knobs.retention_days == 7.0
    now = datetime.now(UTC).replace(tzinfo=None)
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        rows = [
            {"request_id": f"old{i}", "timestamp": now - timedelta(days=8 + i),
             "list_type": "similar", "items": ["A"]}
            for i in range(3)
        ] + [{"request_id": "recent", "timestamp": now - timedelta(days=6),
              "list_type": "similar", "items": ["A"]}]  # fmt: skip
        store.append_impressions(impressions_frame(rows))
        ImpressionLog(store).close()  # no retention: nothing deleted
        assert len(store.impressions()) == 4
        log = ImpressionLog.from_settings(store, knobs)
        log.close()  # the writer prunes when it starts
        assert store.impressions()["request_id"].tolist() == ["recent"]
        assert log.pruned == 3
