"""Experiments and measurement (scope: admin).

- `POST /v1/experiments` create and start one (201; 409 when the id is taken or a running
  experiment covers the same lists; 400 when a variant names a model the bundle lacks);
- `GET /v1/experiments`, `GET /v1/experiments/{id}`;
- `GET /v1/experiments/{id}/results`: per-variant metrics, comparisons with intervals,
  SRM, CUPED, sequential p-values, over time (`shelfwise.experiments.analysis`);
- `POST /v1/experiments/{id}/stop`;
- `GET /v1/analytics/search`: top and zero-result queries, click-through by query and
  position, per day; `GET /v1/analytics/lists`: click-through, add-to-cart and conversion
  per list type, position or variant (`shelfwise.experiments.attribution`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from shelfwise.errors import ShelfwiseError
from shelfwise.experiments.assignment import EXPERIMENT_ID_PATTERN, ExperimentSpec
from shelfwise.experiments.attribution import records, with_rates
from shelfwise.experiments.impressions import utc_now
from shelfwise.experiments.live import ConflictError
from shelfwise.experiments.search_analytics import search_analytics
from shelfwise.serve.deps import AdminDep, Services, ServicesDep
from shelfwise.serve.measure import experiments_of
from shelfwise.store import ExperimentRow

router = APIRouter(prefix="/v1", tags=["experiments"])

ExperimentId = Annotated[str, Path(pattern=EXPERIMENT_ID_PATTERN)]
Days = Annotated[int, Query(ge=1, le=366, description="how many days back")]


class ExperimentOut(BaseModel):
    """A stored experiment."""

    experiment_id: str
    status: str
    created_at: datetime
    stopped_at: datetime | None = None
    spec: dict[str, Any]


def _out(row: ExperimentRow) -> ExperimentOut:
    return ExperimentOut(
        experiment_id=row.experiment_id,
        status=row.status,
        created_at=row.created_at,
        stopped_at=row.stopped_at,
        spec=row.spec,
    )


def _check_models(services: Services, spec: ExperimentSpec) -> None:
    for i, variant in enumerate(spec.variants):
        if variant.model is None:
            continue
        try:
            services.engine.serving_model(variant.model)
        except (ShelfwiseError, KeyError, ValueError) as exc:
            raise HTTPException(
                status_code=400,
                detail=f"variants[{i}].model: '{variant.model}' is not a model of the active "
                f"bundle ({exc})",
            ) from exc


@router.post("/experiments", response_model=ExperimentOut, status_code=201)
def create(services: ServicesDep, _: AdminDep, body: ExperimentSpec) -> ExperimentOut:
    """Create and start an experiment: users are assigned from now on."""
    _check_models(services, body)
    try:
        return _out(experiments_of(services).create(body))
    except ConflictError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@router.get("/experiments", response_model=list[ExperimentOut])
def list_all(services: ServicesDep, _: AdminDep) -> list[ExperimentOut]:
    """Every experiment, oldest first."""
    return [_out(r) for r in experiments_of(services).all()]


@router.get("/experiments/{experiment_id}", response_model=ExperimentOut)
def get_one(services: ServicesDep, _: AdminDep, experiment_id: ExperimentId) -> ExperimentOut:
    """One experiment (404 if unknown)."""
    return _out(experiments_of(services).get(experiment_id))


@router.get("/experiments/{experiment_id}/results")
def results(services: ServicesDep, _: AdminDep, experiment_id: ExperimentId) -> dict[str, Any]:
    """Per-variant metrics, comparisons against the control, SRM and daily looks."""
    return experiments_of(services).results(experiment_id)


@router.post("/experiments/{experiment_id}/stop", response_model=ExperimentOut)
def stop(services: ServicesDep, _: AdminDep, experiment_id: ExperimentId) -> ExperimentOut:
    """Stop an experiment: every user gets the default again; results stay readable."""
    return _out(experiments_of(services).stop(experiment_id))


def _window(services: Services, days: int) -> tuple[Any, Any]:
    live = experiments_of(services)
    live.log.flush()
    since = utc_now() - timedelta(days=days)
    return live.store.impressions(since=since), live.store.outcome_events(since=since)


@router.get("/analytics/search")
def search(
    services: ServicesDep,
    _: AdminDep,
    days: Days = 30,
    top: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Top queries, zero-result queries, click-through by query and position, per day."""
    impressions, outcomes = _window(services, days)
    return {"days": days, **search_analytics(impressions, outcomes, top=top)}


@router.get("/analytics/lists")
def lists(
    services: ServicesDep,
    _: AdminDep,
    by: Literal["list_type", "position", "variant", "policy"] = "list_type",
    days: Days = 30,
) -> dict[str, Any]:
    """Click-through, add-to-cart and conversion rates of the served lists, per group
    (position: per shown slot, with the list type)."""
    live = experiments_of(services)
    live.log.flush()
    keys = {"position": ["list_type", "position"], "variant": ["experiment_id", "variant"]}
    group = keys.get(by, [by])
    # aggregated in the store (SQL GROUP BY), not from rows loaded here
    counts = live.store.impression_counts(group, since=utc_now() - timedelta(days=days))
    return {"days": days, "by": by, "rows": records(with_rates(counts, group))}
