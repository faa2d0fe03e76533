"""Models and jobs (scope: admin): list versions with metrics, activate one, start a train
or tune job in the background and poll it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from shelfwise.errors import ConfigError
from shelfwise.serve.deps import AdminDep, ServicesDep
from shelfwise.serve.jobs import QueueFullError, submit_train, submit_tune
from shelfwise.serve.schemas import JobIn, JobOut, ModelList, ModelVersion

router = APIRouter(prefix="/v1", tags=["models"])

Version = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]


@router.get("/models", response_model=ModelList)
def list_models(services: ServicesDep, _: AdminDep) -> ModelList:
    """Bundles and tuned versions with their metrics, newest first."""
    return ModelList(active=services.engine.model_version, versions=services.models.versions())


@router.post("/models/{version}/activate", response_model=ModelVersion)
def activate(services: ServicesDep, _: AdminDep, version: Version) -> ModelVersion:
    """Serve this bundle or tuned version from now on; 404 if there is none."""
    found = services.models.activate(version)
    services.extra["metrics"].set_model(
        services.engine.model_version, services.engine.serving_label
    )
    return found


@router.post("/models/rollback", response_model=ModelVersion)
def rollback(services: ServicesDep, _: AdminDep) -> ModelVersion:
    """Serve again what was served before the current version; 409 if nothing was."""
    try:
        found = services.models.rollback()
    except ConfigError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    services.extra["metrics"].set_model(
        services.engine.model_version, services.engine.serving_label
    )
    return found


@router.post(
    "/jobs",
    response_model=JobOut,
    status_code=202,
    responses={429: {"description": "the job queue is full"}},
)
def start_job(services: ServicesDep, _: AdminDep, body: JobIn) -> JobOut:
    """Queue a train or tune job (its arguments are checked first: 422 naming the field);
    poll GET /v1/jobs/{job_id}, stop it with POST /v1/jobs/{job_id}/cancel. 429 when
    `serve.max_queued_jobs` jobs wait already. A train job with `activate` is served only if
    its held-out metric is not worse than the served bundle's (the result's `gate`)."""
    try:
        if body.kind == "train":
            job = submit_train(services, body.activate)
        else:
            job = submit_tune(services, body.model, body.trials, body.timeout_s, body.activate)
    except QueueFullError as exc:
        raise HTTPException(
            status_code=429, detail=str(exc), headers={"Retry-After": "30"}
        ) from None
    return JobOut(**job.as_dict())


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(services: ServicesDep, _: AdminDep) -> list[JobOut]:
    """Recent jobs, newest first."""
    return [JobOut(**j.as_dict()) for j in services.jobs.list()]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(services: ServicesDep, _: AdminDep, job_id: JobId) -> JobOut:
    """One job's state; 404 if unknown."""
    job = services.jobs.get(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"no job '{job_id}'")
    return JobOut(**job.as_dict())


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(services: ServicesDep, _: AdminDep, job_id: JobId) -> JobOut:
    """Cancel a job: a queued one is dropped, a running one's child process is terminated
    (it reads `cancelled` once stopped); a finished job is answered as it is. 404 if
    unknown."""
    job = services.jobs.cancel(job_id)
    if job is None:
        raise HTTPException(status_code=404, detail=f"no job '{job_id}'")
    return JobOut(**job.as_dict())
