"""Background jobs: train a new bundle, or tune a model, while the API keeps serving.

Jobs run in a small thread pool (one at a time by default). `train` builds a bundle from the
live store in-process. `tune` snapshots the store's items and item events into a temporary
DuckDB file and calls the tuning library (`shelfwise.tuning.run.tune_dataset`) on it in a
spawned child process (so Optuna and torch cannot starve the API's threads, and a crashed
trial cannot take the service down); the tuned version lands in the registry. With
`activate`, a job's result is served when it succeeds.

Job states live in memory: they are gone after a restart (the bundles and versions a job
wrote are not).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shelfwise.artifacts import build_bundle
from shelfwise.serve.models import ModelRegistry
from shelfwise.serving import Engine
from shelfwise.settings import TuningSettings
from shelfwise.store import open_store

log = logging.getLogger(__name__)
MAX_KEPT = 100


@dataclass
class Job:
    """One background job and what became of it."""

    job_id: str
    kind: str
    status: str = "queued"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields of the API's JobOut."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "result": self.result,
            "error": self.error,
        }


class JobRunner:
    """Runs jobs in a thread pool and remembers the latest MAX_KEPT."""

    def __init__(self, workers: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="shelfwise-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[], dict[str, Any]]) -> Job:
        """Queue `work`; its return value becomes the job's result."""
        job = Job(job_id=uuid.uuid4().hex[:16], kind=kind)
        with self._lock:
            self._jobs[job.job_id] = job
            while len(self._jobs) > MAX_KEPT:
                oldest = next(iter(self._jobs))
                if self._jobs[oldest].status in ("queued", "running"):
                    break
                del self._jobs[oldest]

        def run() -> None:
            job.status, job.started_at = "running", datetime.now(UTC)
            try:
                job.result = work()
                job.status = "succeeded"
            except Exception as exc:  # the job failed; the service goes on
                log.exception("job %s (%s) failed", job.job_id, kind)
                job.error = f"{type(exc).__name__}: {exc}"
                job.status = "failed"
            finally:
                job.finished_at = datetime.now(UTC)

        self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job | None:
        """A job by id."""
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """All remembered jobs, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def shutdown(self) -> None:
        """Stop taking jobs; running ones finish in the background."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def train_job(
    engine: Engine,
    registry: ModelRegistry,
    activate: bool,
    search_dense: bool | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Build a bundle from the live store (the search re-ranker with dense features when
    `search_dense`); serve it with `activate`."""
    bundle = build_bundle(
        engine.store,
        registry.registry,
        activate=activate,
        search_dense=search_dense,
        engine=engine.config,  # a retrain keeps the served chain and model roles
        serving_model=engine.bundle.manifest.get("serving_model"),  # and the tuned model
        cache_dir=cache_dir,
    )
    if activate:
        engine.activate(bundle)
    return {
        "version": bundle.manifest["version"],
        "activated": activate,
        "counts": bundle.manifest["counts"],
        "seconds": bundle.manifest["seconds"],
    }


def _tune_child(
    snapshot: str,
    model: str,
    trials: int,
    timeout_s: float | None,
    models_dir: str,
    out: str,
    defaults: dict[str, Any],
) -> None:
    """The child process of a tune job: tune on the snapshot (the job's model, trials and
    timeout; metric, sampler, pruner and seed from the `tuning` settings), write the result
    (or the error) as JSON to `out`."""
    from shelfwise.tuning.run import tune_dataset
    from shelfwise.tuning.tuner import TuneSettings

    try:
        settings = TuneSettings(
            model=model,
            n_trials=trials,
            timeout=timeout_s if timeout_s is not None else defaults.get("timeout"),
            metric=defaults.get("metric", "ndcg@10"),
            sampler=defaults.get("sampler", "tpe"),
            pruner=defaults.get("pruner", "median"),
            seed=defaults.get("seed", 42),
        )
        run = tune_dataset(snapshot, settings, Path(models_dir), seed=settings.seed)
        Path(out).write_text(json.dumps({"result": run.result.to_dict()}, default=str))
    except BaseException as exc:  # reported to the parent, which fails the job with it
        Path(out).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise


def tune_job(
    engine: Engine,
    registry: ModelRegistry,
    model: str | None,
    trials: int,
    timeout_s: float | None,
    activate: bool,
    defaults: TuningSettings | None = None,
) -> dict[str, Any]:
    """Snapshot the store, tune on it in a spawned child process, read the result.
    `defaults` (the `tuning` settings) give what the job does not say."""
    with tempfile.TemporaryDirectory(prefix="shelfwise-tune-") as tmp:
        snapshot = Path(tmp) / "snapshot.duckdb"
        events = engine.store.interactions()
        with open_store(f"duckdb:///{snapshot}") as copy:
            copy.ingest(items=engine.store.items(), events=_as_events(events))
        out = Path(tmp) / "result.json"
        context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        child = context.Process(
            target=_tune_child,
            args=(
                str(snapshot),
                model or "auto",
                trials,
                timeout_s,
                registry.root,
                str(out),
                (defaults or TuningSettings()).model_dump(mode="json"),
            ),
            name="shelfwise-tune",
            daemon=True,
        )
        child.start()
        child.join()
        answer: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        if child.exitcode != 0 or "result" not in answer:
            reason = answer.get("error") or f"exit code {child.exitcode}"
            raise RuntimeError(f"tuning failed in the child process: {reason}")
        result: dict[str, Any] = answer["result"]
    version = result.get("version")
    if activate and version:
        registry.activate(str(version))
        result["activated"] = True
    return result


def _as_events(interactions: Any) -> Any:
    """Interactions (user, item, type, value, timestamp) as an events frame."""
    frame = interactions.drop(columns=["seq"], errors="ignore").copy()
    frame["event_id"] = None
    frame["query"] = None
    frame["session_id"] = None
    return frame
