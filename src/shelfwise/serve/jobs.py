"""Background jobs: train a new bundle, or tune a model, while the API keeps serving.

`JobRunner` keeps a bounded queue (`serve.max_queued_jobs` waiting; one more is refused
with `QueueFullError`, which the API answers 429) and `serve.job_workers` worker threads. Every
job's heavy work runs in a *spawned child process* (`JobContext.run_child`), so training,
Optuna and torch never starve the API's threads, a crashed child cannot take the service
down, and `cancel` can stop a running job by terminating its child (a queued job is just
dropped). A job is `queued`, `running`, then `succeeded`, `failed` or `cancelled`; its
`progress` says which phase it is in.

`train`: the worker thread snapshots the store (items, users, events) into a temporary
DuckDB file; the child builds a bundle from it (recording the live store's fingerprint),
which lands in the registry as a new version with its held-out metric; with `activate`, the
parent then hot-swaps it in only if it passes the gate (`artifacts.gate.gate`: not worse
than the served bundle's held-out metric), else it stays a version and the result's
`gate` says why. `tune`: the store's items and item events are snapshotted likewise and
the child calls the tuning library (`shelfwise.tuning.run.tune_dataset`); the tuned version
lands in the registry, and with `activate` is served when the job succeeds.

`RetrainTrigger` starts train jobs by itself: every `serve.retrain_every_seconds`, or once
`serve.retrain_after_events` events were written since the last one (the app's lifespan
runs its `check` in a loop).

Job states live in memory: they are gone after a restart (the bundles and versions a job
wrote are not).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelfwise.artifacts import Registry, build_bundle
from shelfwise.artifacts.gate import gate
from shelfwise.errors import ConfigError, ShelfwiseError
from shelfwise.serve.models import ModelRegistry
from shelfwise.serving import Engine
from shelfwise.serving.config import EngineConfig
from shelfwise.settings import TuningSettings
from shelfwise.store import Store, open_store

if TYPE_CHECKING:
    from shelfwise.serve.deps import Services

log = logging.getLogger(__name__)
MAX_KEPT = 100
FINISHED = ("succeeded", "failed", "cancelled")


class QueueFullError(ShelfwiseError):
    """The job queue holds `max_queued_jobs` jobs already."""


class JobCancelledError(Exception):
    """Raised in a job's worker thread when the job was cancelled."""


@dataclass
class Job:
    """One background job and what became of it."""

    job_id: str
    kind: str
    trigger: str = "api"
    status: str = "queued"
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The fields of the API's JobOut."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "trigger": self.trigger,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
        }


class JobContext:
    """What a running job's work gets: `phase` to report progress, `run_child` to run its
    heavy part in a spawned process (which `JobRunner.cancel` terminates)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.cancelled = threading.Event()
        self._child: Any = None
        self._lock = threading.Lock()

    def phase(self, name: str, **details: Any) -> None:
        """Record the phase the job is in (its `progress`); raises `JobCancelledError` once the
        job was cancelled, so work stops between phases."""
        self.job.progress = {"phase": name, **details}
        if self.cancelled.is_set():
            raise JobCancelledError()

    def run_child(self, target: Callable[..., None], *args: Any) -> dict[str, Any]:
        """Run `target(*args, out)` in a spawned child process; `out` is a file path the
        child writes `{"result": {...}}` or `{"error": "..."}` to as JSON. Returns the
        result; `RuntimeError` with the child's error (or exit code) when it failed,
        `JobCancelledError` when the job was cancelled meanwhile."""
        with tempfile.TemporaryDirectory(prefix="shelfwise-job-") as tmp:
            out = Path(tmp) / "result.json"
            context = multiprocessing.get_context("spawn")  # no fork of a threaded server
            child = context.Process(
                target=target,
                args=(*args, str(out)),
                name=f"shelfwise-{self.job.kind}-{self.job.job_id}",
                daemon=True,
            )
            with self._lock:
                if self.cancelled.is_set():
                    raise JobCancelledError()
                child.start()
                self._child = child
            try:
                child.join()
            finally:
                with self._lock:
                    self._child = None
            if self.cancelled.is_set():
                raise JobCancelledError()
            answer: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
        if child.exitcode != 0 or "result" not in answer:
            reason = answer.get("error") or f"exit code {child.exitcode}"
            raise RuntimeError(f"{self.job.kind} failed in the child process: {reason}")
        result: dict[str, Any] = answer["result"]
        return result

    def cancel(self) -> None:
        """Mark the job cancelled and terminate its child process, if one runs."""
        with self._lock:
            self.cancelled.set()
            child = self._child
        if child is not None and child.is_alive():
            child.terminate()


Work = Callable[[JobContext], dict[str, Any]]


class JobRunner:
    """A bounded queue of jobs, `workers` threads running them, the latest MAX_KEPT kept."""

    def __init__(self, workers: int = 1, max_queued: int = 8) -> None:
        self.max_queued = max_queued
        self._jobs: dict[str, Job] = {}
        self._contexts: dict[str, JobContext] = {}
        self._queue: deque[tuple[Job, Work]] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._worker, name=f"shelfwise-job-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, kind: str, work: Work, trigger: str = "api") -> Job:
        """Queue `work` (called with the job's `JobContext`; its return value becomes the
        job's result). `QueueFullError` when `max_queued` jobs wait already."""
        with self._lock:
            if self._closed:
                raise QueueFullError("the job runner is shut down")
            if len(self._queue) >= self.max_queued:
                raise QueueFullError(
                    f"the job queue is full ({len(self._queue)} jobs waiting, "
                    f"serve.max_queued_jobs={self.max_queued}): wait for one to finish, or "
                    "cancel one with POST /v1/jobs/{job_id}/cancel"
                )
            job = Job(job_id=uuid.uuid4().hex[:16], kind=kind, trigger=trigger)
            self._jobs[job.job_id] = job
            self._queue.append((job, work))
            self._forget_old()
            self._lock.notify()
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status in FINISHED]
        for job in sorted(finished, key=lambda j: j.created_at)[: len(self._jobs) - MAX_KEPT]:
            del self._jobs[job.job_id]
            self._contexts.pop(job.job_id, None)

    def _worker(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job, work = self._queue.popleft()
                context = JobContext(job)
                self._contexts[job.job_id] = context
                job.status, job.started_at = "running", datetime.now(UTC)
            self._run(job, work, context)

    def _run(self, job: Job, work: Work, context: JobContext) -> None:
        try:
            job.result = work(context)
            job.status = "succeeded"
        except JobCancelledError:
            job.status = "cancelled"
        except Exception as exc:  # the job failed; the service goes on
            if context.cancelled.is_set():
                job.status = "cancelled"
            else:
                log.exception("job %s (%s) failed", job.job_id, job.kind)
                job.error = f"{type(exc).__name__}: {exc}"
                job.status = "failed"
        finally:
            job.finished_at = datetime.now(UTC)
            with self._lock:
                self._contexts.pop(job.job_id, None)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job: a queued one is dropped, a running one's child is terminated (it
        ends `cancelled` shortly). A finished job is left as it is. None if unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status == "queued":
                self._queue = deque((j, w) for j, w in self._queue if j.job_id != job_id)
                job.status, job.finished_at = "cancelled", datetime.now(UTC)
                return job
            context = self._contexts.get(job_id)
        if context is not None:
            context.cancel()
        return job

    def get(self, job_id: str) -> Job | None:
        """A job by id."""
        with self._lock:
            return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        """All remembered jobs, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)

    def pending(self, kind: str) -> bool:
        """Whether a job of `kind` is queued or running."""
        with self._lock:
            return any(j.kind == kind and j.status not in FINISHED for j in self._jobs.values())

    def shutdown(self) -> None:
        """Stop taking jobs: queued ones are cancelled, running ones' children terminated."""
        with self._lock:
            self._closed = True
            queued = [j for j, _ in self._queue]
            self._queue.clear()
            contexts = list(self._contexts.values())
            self._lock.notify_all()
        now = datetime.now(UTC)
        for job in queued:
            job.status, job.finished_at = "cancelled", now
        for context in contexts:
            context.cancel()


# -- snapshots ---------------------------------------------------------------------------------
def snapshot_store(store: Store, path: Path, full: bool = True) -> str:
    """Copy the store into a new DuckDB file at `path` (items, and with `full` users and all
    events, else the item events only) -> its URL. A child process reads the copy, so it
    never contends with the API for the live store (an embedded DuckDB has one writer)."""
    url = f"duckdb:///{path}"
    with open_store(url) as copy:
        if full:
            copy.ingest(items=store.items(), users=store.users(), events=store.events())
        else:
            copy.ingest(items=store.items(), events=_as_events(store.interactions()))
    return url


# -- train -------------------------------------------------------------------------------------
def _train_child(
    snapshot: str,
    registry_root: str,
    source: tuple[str, str],
    engine: dict[str, Any],
    serving_model: str | None,
    search_dense: bool | None,
    cache_dir: str | None,
    models: dict[str, Any] | None,
    out: str,
) -> None:
    """The child process of a train job: build a bundle (not activated) from the snapshot,
    write its version, counts, seconds and metrics (or the error) as JSON to `out`."""
    try:
        with open_store(snapshot) as store:
            bundle = build_bundle(
                store,
                Registry(registry_root),
                activate=False,
                search_dense=search_dense,
                engine=EngineConfig.model_validate(engine),
                serving_model=serving_model,
                cache_dir=Path(cache_dir) if cache_dir else None,
                source=(source[0], source[1]),
                models=models,
            )
        manifest = bundle.manifest
        result = {
            "version": manifest["version"],
            "counts": manifest["counts"],
            "seconds": manifest["seconds"],
            "metrics": manifest.get("metrics", {}),
        }
        Path(out).write_text(json.dumps({"result": result}, default=str))
    except BaseException as exc:  # reported to the parent, which fails the job with it
        Path(out).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise


def train_job(
    context: JobContext,
    engine: Engine,
    registry: ModelRegistry,
    activate: bool,
    search_dense: bool | None = None,
    cache_dir: Path | None = None,
    on_swap: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Snapshot the store, build a bundle from it in a child process (the search re-ranker
    with dense features when `search_dense`), gate it against the served bundle; with
    `activate` and a passed gate, hot-swap it in (then call `on_swap`)."""
    context.phase("snapshot")
    with tempfile.TemporaryDirectory(prefix="shelfwise-train-") as tmp:
        source = (engine.store.fingerprint(), engine.store.url)  # before the copy: if writes
        # land meanwhile, the bundle looks stale at a restart and is rebuilt (never the reverse)
        snapshot = snapshot_store(engine.store, Path(tmp) / "snapshot.duckdb")
        context.phase("build")
        served = engine.bundle
        built = context.run_child(
            _train_child,
            snapshot,
            registry.root,
            source,
            served.engine.model_dump(mode="json"),  # a retrain keeps the chain and model roles
            served.manifest.get("serving_model"),  # and the tuned model
            search_dense,
            str(cache_dir) if cache_dir is not None else None,
            served.manifest.get("models"),  # and the model configurations (a tuned one too)
        )
    context.phase("gate")
    decision = gate(built.get("metrics"), served.manifest.get("metrics"))
    activated = False
    if activate and decision.passed:
        context.phase("activate")
        if engine.model_version == served.version:  # nobody swapped meanwhile
            registry.activate(str(built["version"]))
            activated = True
            if on_swap is not None:
                on_swap()
    elif activate:
        log.info("train job kept %s without serving it: %s", built["version"], decision.reason)
    return {
        "version": built["version"],
        "activated": activated,
        "gate": decision.as_dict(),
        "champion": served.version,
        "counts": built["counts"],
        "seconds": built["seconds"],
        "metrics": built.get("metrics", {}),
    }


def _tune_child(
    snapshot: str,
    model: str,
    trials: int,
    timeout_s: float | None,
    models_dir: str,
    defaults: dict[str, Any],
    out: str,
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
        path = snapshot.removeprefix("duckdb:///")
        run = tune_dataset(path, settings, Path(models_dir), seed=settings.seed)
        Path(out).write_text(json.dumps({"result": run.result.to_dict()}, default=str))
    except BaseException as exc:  # reported to the parent, which fails the job with it
        Path(out).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise


def tune_job(
    context: JobContext,
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
    context.phase("snapshot")
    with tempfile.TemporaryDirectory(prefix="shelfwise-tune-") as tmp:
        snapshot = snapshot_store(engine.store, Path(tmp) / "snapshot.duckdb", full=False)
        context.phase("tune", trials=trials)
        result = context.run_child(
            _tune_child,
            snapshot,
            model or "auto",
            trials,
            timeout_s,
            registry.root,
            (defaults or TuningSettings()).model_dump(mode="json"),
        )
    version = result.get("version")
    if activate and version:
        context.phase("activate")
        registry.activate(str(version))
        result["activated"] = True
    return result


def check_tune_model(model: str | None) -> None:
    """`ConfigError` naming the field unless `model` is None, `auto` or a registered model
    that declares a search space (checked before a tune job is queued)."""
    if model is None or model == "auto":
        return
    from shelfwise.recommenders.base import available, model_class

    names = available()
    tunable = [n for n in names if callable(getattr(model_class(n).Config, "search_space", None))]
    if model not in tunable:
        what = "declares no search space" if model in names else "is not a registered model"
        raise ConfigError(
            f"model: {model!r} {what}; use auto or one of {', '.join(sorted(tunable))}"
        )


# -- submitting ------------------------------------------------------------------------------
def submit_train(services: Services, activate: bool, trigger: str = "api") -> Job:
    """Queue a train job over the app's services (the API's and the triggers' way in); with
    `activate` it is served if it passes the gate. `QueueFullError` when the queue is full."""
    engine, registry, settings = services.engine, services.models, services.settings
    metrics = services.extra.get("metrics")

    def swapped() -> None:
        if metrics is not None:
            metrics.set_model(engine.model_version, engine.serving_label)

    return services.jobs.submit(
        "train",
        lambda context: train_job(
            context,
            engine,
            registry,
            activate,
            search_dense=settings.search.dense,
            cache_dir=settings.paths.embeddings,
            on_swap=swapped,
        ),
        trigger=trigger,
    )


def submit_tune(
    services: Services,
    model: str | None,
    trials: int,
    timeout_s: float | None,
    activate: bool,
) -> Job:
    """Queue a tune job (arguments checked by the caller, e.g. the API's `JobIn`)."""
    check_tune_model(model)
    engine, registry, settings = services.engine, services.models, services.settings
    return services.jobs.submit(
        "tune",
        lambda context: tune_job(
            context, engine, registry, model, trials, timeout_s, activate, settings.tuning
        ),
    )


# -- triggers ----------------------------------------------------------------------------------
class RetrainTrigger:
    """Decides when to start a train job by itself: `every_seconds` after the last one
    (0: never by time), or once `after_events` events were written since the last one
    (0: never by count). `check(now, events)` is one round of the app's loop: it starts
    `start(reason)` when a condition is met and no train job is queued or running, and
    returns the reason (None when it started nothing). Both baselines restart with every
    job it starts; the first `check` only sets them."""

    def __init__(
        self,
        every_seconds: float,
        after_events: int,
        start: Callable[[str], Any],
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.every_seconds = every_seconds
        self.after_events = after_events
        self._start = start
        self._busy = busy
        self._since: float | None = None
        self._events: int | None = None

    @property
    def enabled(self) -> bool:
        """Whether either condition is switched on."""
        return self.every_seconds > 0 or self.after_events > 0

    def due(self, now: float, events: int) -> str | None:
        """Why a train job is due at `now` (seconds, monotonic) with `events` in the store,
        or None."""
        if self._since is None or self._events is None:
            return None
        if self.every_seconds > 0 and now - self._since >= self.every_seconds:
            return f"schedule: {now - self._since:.0f} s since the last train job"
        new = events - self._events
        if self.after_events > 0 and new >= self.after_events:
            return f"events: {new} new events since the last train job"
        return None

    def check(self, now: float, events: int) -> str | None:
        """One round: start a job if one is due (see the class doc)."""
        if self._since is None or self._events is None:
            self._since, self._events = now, events
            return None
        self._events = min(self._events, events)  # erasures lower the count
        reason = self.due(now, events)
        if reason is None or self._busy():
            return None
        self._start(reason)
        self._since, self._events = now, events
        return reason


def trigger_loop(
    trigger: RetrainTrigger,
    events: Callable[[], int],
    stop: threading.Event,
    poll_seconds: float = 5.0,
) -> None:
    """Run `trigger.check(monotonic time, events())` every `poll_seconds` until `stop`."""
    while True:
        try:
            trigger.check(time.monotonic(), events())
        except Exception as exc:  # a failed round is retried at the next one
            log.warning("retrain trigger: %s", exc)
        if stop.wait(poll_seconds):
            return


def _as_events(interactions: Any) -> Any:
    """Interactions (user, item, type, value, timestamp) as an events frame."""
    frame = interactions.drop(columns=["seq"], errors="ignore").copy()
    frame["event_id"] = None
    frame["query"] = None
    frame["session_id"] = None
    return frame
