"""Background jobs: the bounded queue, cancel, arguments checked before the 202, the gate on
a train job's hot swap, and the retrain triggers (no mocks: real child processes)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts.registry import Registry
from shelfwise.serve.jobs import JobContext, JobRunner, QueueFullError, RetrainTrigger

from .conftest import AppFactory


def _sleep_child(seconds: float, out: str) -> None:
    """A child process that sleeps, then reports `{"slept": seconds}`."""
    import json

    time.sleep(seconds)
    Path(out).write_text(json.dumps({"result": {"slept": seconds}}))


def _wait(runner_or_client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        if isinstance(runner_or_client, JobRunner):
            job = runner_or_client.get(job_id)
            assert job is not None
            state = job.as_dict()
        else:
            state = runner_or_client.get(f"/v1/jobs/{job_id}").json()
        if state["status"] in ("succeeded", "failed", "cancelled"):
            return state
        assert time.monotonic() < deadline, state
        time.sleep(0.05)


# -- the runner --------------------------------------------------------------------------------
def test_the_queue_is_bounded_and_a_queued_job_is_dropped_on_cancel() -> None:
    runner = JobRunner(workers=1, max_queued=2)
    release, ran = threading.Event(), []
    try:
        blocker = runner.submit("train", lambda ctx: {"done": release.wait(30)})
        while runner.get(blocker.job_id).status != "running":  # type: ignore[union-attr]
            time.sleep(0.01)
        second = runner.submit("train", lambda ctx: {"ran": ran.append("second") or 2})
        third = runner.submit("train", lambda ctx: {"ran": ran.append("third") or 3})
        with pytest.raises(QueueFullError, match=r"2 jobs waiting, serve\.max_queued_jobs=2"):
            runner.submit("train", lambda ctx: {})
        assert runner.cancel(second.job_id).status == "cancelled"  # type: ignore[union-attr]
        runner.submit("tune", lambda ctx: {"ran": ran.append("fourth") or 4})  # room again
        release.set()
        assert _wait(runner, third.job_id)["result"] == {"ran": 3}
        assert runner.get(second.job_id).status == "cancelled"  # type: ignore[union-attr]
        assert runner.get(blocker.job_id).result == {"done": True}  # type: ignore[union-attr]
        while len(ran) < 2:
            time.sleep(0.01)
        assert ran == ["third", "fourth"]  # the cancelled job never ran
        assert runner.cancel("nope") is None
    finally:
        release.set()
        runner.shutdown()


def test_a_running_job_runs_in_a_child_that_cancel_terminates() -> None:
    runner = JobRunner(workers=1, max_queued=4)
    try:
        quick = runner.submit("train", lambda ctx: ctx.run_child(_sleep_child, 0.0))
        assert _wait(runner, quick.job_id)["result"] == {"slept": 0.0}

        def slow(ctx: JobContext) -> dict[str, Any]:
            ctx.phase("sleeping")
            return ctx.run_child(_sleep_child, 120.0)

        job = runner.submit("train", slow)
        while runner.get(job.job_id).progress is None:  # type: ignore[union-attr]
            time.sleep(0.01)
        time.sleep(0.5)  # the child is started
        started = time.monotonic()
        runner.cancel(job.job_id)
        state = _wait(runner, job.job_id, timeout=30)
        assert state["status"] == "cancelled" and state["result"] is None
        assert state["progress"] == {"phase": "sleeping"}
        assert time.monotonic() - started < 30  # terminated, not slept out
    finally:
        runner.shutdown()


def test_a_crashed_child_fails_the_job_with_its_exit_code() -> None:
    runner = JobRunner()
    try:
        job = runner.submit("train", lambda ctx: ctx.run_child(_sleep_child, "not seconds"))
        state = _wait(runner, job.job_id)
        assert state["status"] == "failed"
        assert "train failed in the child process: exit code 1" in state["error"]
    finally:
        runner.shutdown()


# -- triggers ----------------------------------------------------------------------------------
def _trigger(
    every: float, after: int, busy: list[bool] | None = None
) -> tuple[RetrainTrigger, list[str]]:
    started: list[str] = []
    flag = busy if busy is not None else [False]
    return RetrainTrigger(every, after, started.append, busy=lambda: flag[0]), started


def test_the_schedule_fires_exactly_every_so_many_seconds() -> None:
    trigger, started = _trigger(every=60.0, after=0)
    assert trigger.enabled
    assert trigger.check(1000.0, 5) is None  # the first round sets the baseline
    assert trigger.check(1059.9, 500) is None  # events do not count with after=0
    assert started == []
    assert trigger.check(1060.0, 500) == "schedule: 60 s since the last train job"
    assert trigger.check(1061.0, 500) is None and trigger.check(1119.9, 500) is None
    assert trigger.check(1120.0, 500) is not None
    assert len(started) == 2 and started[0].startswith("schedule")


def test_new_events_fire_exactly_at_the_count() -> None:
    trigger, started = _trigger(every=0.0, after=10)
    trigger.check(0.0, 100)
    assert trigger.check(1e6, 109) is None  # time does not count with every=0
    assert trigger.check(1e6 + 1, 110) == "events: 10 new events since the last train job"
    assert trigger.check(1e6 + 2, 119) is None
    assert trigger.check(1e6 + 3, 120) is not None
    assert started == [
        "events: 10 new events since the last train job",
        "events: 10 new events since the last train job",
    ]


def test_erasures_lower_the_baseline_and_a_busy_runner_defers() -> None:
    busy = [True]
    trigger, started = _trigger(every=0.0, after=10, busy=busy)
    trigger.check(0.0, 100)
    trigger.check(1.0, 50)  # 50 events erased: new events count from 50
    assert trigger.check(2.0, 59) is None
    assert trigger.check(3.0, 60) is None and started == []  # due, but a train job runs
    busy[0] = False
    assert trigger.check(4.0, 61) == "events: 11 new events since the last train job"
    assert trigger.check(5.0, 61) is None and len(started) == 1


def test_both_off_never_fires() -> None:
    trigger, started = _trigger(every=0.0, after=0)
    assert not trigger.enabled
    for n in range(5):
        trigger.check(n * 1e6, n * 1000)
    assert started == []


# -- the API -----------------------------------------------------------------------------------
def test_arguments_are_checked_before_the_202(client: TestClient) -> None:
    def field_of(body: dict[str, Any]) -> tuple[Any, str]:
        r = client.post("/v1/jobs", json=body)
        assert r.status_code == 422, r.text
        error = r.json()["detail"][0]
        return error["loc"][-1], error["msg"]

    loc, msg = field_of({"kind": "tune", "model": "nosuchmodel"})
    assert loc == "model" and "'nosuchmodel' is not a registered model" in msg
    assert "itemknn" in msg and "auto" in msg
    loc, msg = field_of({"kind": "tune", "model": "popularity"})
    assert loc == "model" and "declares no search space" in msg
    assert field_of({"kind": "tune", "trials": 0})[0] == "trials"
    assert field_of({"kind": "tune", "trials": 5000})[0] == "trials"
    assert "only tune jobs take these fields" in field_of({"kind": "train", "trials": 3})[1]
    assert client.get("/v1/jobs").json() == []  # nothing was queued


def test_a_full_queue_is_429_and_cancel_drops_or_stops(make_client: AppFactory) -> None:
    client = make_client(job_workers=1, max_queued_jobs=1)
    running = client.post("/v1/jobs", json={"kind": "train"}).json()
    while client.get(f"/v1/jobs/{running['job_id']}").json()["status"] == "queued":
        time.sleep(0.01)  # taken off the queue by the one worker
    queued = client.post("/v1/jobs", json={"kind": "train"}).json()
    full = client.post("/v1/jobs", json={"kind": "train"})
    assert full.status_code == 429 and "the job queue is full" in full.json()["detail"]
    assert "POST /v1/jobs/{job_id}/cancel" in full.json()["detail"]
    assert full.headers["retry-after"] == "30"
    dropped = client.post(f"/v1/jobs/{queued['job_id']}/cancel").json()
    assert dropped["status"] == "cancelled" and dropped["started_at"] is None
    client.post(f"/v1/jobs/{running['job_id']}/cancel")
    assert _wait(client, running["job_id"], timeout=60)["status"] == "cancelled"
    assert client.post("/v1/jobs/nope/cancel").status_code == 404


def test_a_train_job_hot_swaps_only_past_the_gate_and_rolls_back(
    make_client: AppFactory, shop, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, engine = shop
    client = make_client()
    first = engine.model_version
    recorded = engine.bundle.manifest["metrics"]["holdout"]
    assert recorded["ndcg@10"] > 0 and recorded["model"] == "itemknn"
    # the same store rebuilt scores the same: not worse, so it is served
    job = client.post("/v1/jobs", json={"kind": "train", "activate": True}).json()
    state = _wait(client, job["job_id"])
    assert state["status"] == "succeeded", state
    second = state["result"]["version"]
    assert state["result"]["activated"] and state["result"]["gate"]["passed"]
    assert state["result"]["gate"]["candidate"] == state["result"]["gate"]["champion"]
    assert engine.model_version == second and state["progress"] == {"phase": "activate"}
    # a champion that recorded a better score keeps being served; the new bundle is kept
    registry = Registry(tmp_path / "artifacts")
    better = registry.derive(second, metrics={"holdout": {**recorded, "ndcg@10": 1.0}})
    assert client.post(f"/v1/models/{better}/activate").status_code == 200
    job = client.post("/v1/jobs", json={"kind": "train", "activate": True}).json()
    state = _wait(client, job["job_id"])
    assert state["status"] == "succeeded", state
    kept = state["result"]["version"]
    gate = state["result"]["gate"]
    assert not state["result"]["activated"] and not gate["passed"]
    assert "is worse than the champion's 1.0000" in gate["reason"]
    assert engine.model_version == better and registry.active().version == better  # type: ignore[union-attr]
    assert registry.get(kept).metrics["holdout"]["ndcg@10"] == recorded["ndcg@10"]
    # roll back: what was served before the better champion
    back = client.post("/v1/models/rollback")
    assert back.status_code == 200 and back.json()["version"] == second
    assert engine.model_version == second and first != second
