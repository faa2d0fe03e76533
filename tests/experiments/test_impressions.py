"""The impression log writes batches off the caller's thread into a real store."""

from pathlib import Path

from shelfwise.experiments.impressions import Impression, ImpressionLog, new_request_id
from shelfwise.store import open_store


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


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        with store._lock:  # type: ignore[attr-defined]  # hold the store: the writer blocks
            log = ImpressionLog(store, flush_seconds=0.0, max_rows=1, max_queue=3)
            for _ in range(10):
                log.log(Impression(new_request_id(), "similar", ["A"]))
            assert log.dropped >= 10 - 3 - 1  # 3 queued, at most 1 taken by the writer
        assert log.flush(10.0)
        assert len(store.impressions()) == 10 - log.dropped
        log.close()


def test_request_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
