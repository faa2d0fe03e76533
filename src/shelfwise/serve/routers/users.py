"""GET /v1/users/{user_id}/profile, GET /v1/users/{user_id}/push-plan and
DELETE /v1/users/{user_id} (scope: admin)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from shelfwise.profiles.push import plan_push
from shelfwise.serve.deps import AdminDep, ServicesDep, user_ref
from shelfwise.serve.measure import experiments_of, served
from shelfwise.serve.schemas import ID_PATTERN, Deleted, ProfileOut, PushPlanOut

router = APIRouter(prefix="/v1", tags=["users"])
log = logging.getLogger(__name__)

UserId = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN)]


@router.get("/users/{user_id}/profile", response_model=ProfileOut)
def profile(services: ServicesDep, _: AdminDep, user_id: UserId) -> ProfileOut:
    """Affinities, price band, RFM, active hours and lifecycle stage; 404 without events."""
    found = services.profiles.get(user_id)
    if found is None:
        raise HTTPException(status_code=404, detail="no events of this user")
    return found


@router.get("/users/{user_id}/push-plan", response_model=PushPlanOut)
def push_plan(services: ServicesDep, _: AdminDep, user_id: UserId) -> PushPlanOut:
    """Whether, what and when to push to this user, from profile, recommendations and
    active hours; 404 without events."""
    found = services.profiles.get(user_id)
    if found is None:
        raise HTTPException(status_code=404, detail="no events of this user")
    recs = services.engine.recommend(user_id, k=20)
    decision = experiments_of(services).decide(user_id, "push_plan")
    config = decision.variant.push if decision else None
    plan = plan_push(found, recs.items, config=config)
    request_id, _shown = served(
        services, "push_plan", plan.items, plan.items, user_id, decision,
        policy=plan.message or plan.reason, model_version=recs.model_version,
    )  # fmt: skip
    return PushPlanOut(**plan.model_dump(), request_id=request_id)


@router.delete("/users/{user_id}", response_model=Deleted)
def erase(services: ServicesDep, _: AdminDep, user_id: UserId) -> Deleted:
    """Erase the user's events and profile everywhere, caches included."""
    experiments_of(services).log.flush()  # queued impressions of the user are erased too
    counts = services.engine.erase_user(user_id)
    log.info("erased user %s: %s", user_ref(user_id), counts)
    return Deleted(deleted=counts)
