"""GET /v1/users/{user_id}/profile, GET /v1/users/{user_id}/push-plan and
DELETE /v1/users/{user_id} (scope: admin)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from shelfwise.profiles.push import PushPlan, plan_push
from shelfwise.serve.deps import AdminDep, ServicesDep, user_ref
from shelfwise.serve.schemas import ID_PATTERN, Deleted, ProfileOut

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


@router.get("/users/{user_id}/push-plan", response_model=PushPlan)
def push_plan(services: ServicesDep, _: AdminDep, user_id: UserId) -> PushPlan:
    """Whether, what and when to push to this user, from profile, recommendations and
    active hours; 404 without events."""
    found = services.profiles.get(user_id)
    if found is None:
        raise HTTPException(status_code=404, detail="no events of this user")
    recs = services.engine.recommend(user_id, k=20)
    return plan_push(found, recs.items)


@router.delete("/users/{user_id}", response_model=Deleted)
def erase(services: ServicesDep, _: AdminDep, user_id: UserId) -> Deleted:
    """Erase the user's events and profile everywhere, caches included."""
    counts = services.engine.erase_user(user_id)
    log.info("erased user %s: %s", user_ref(user_id), counts)
    return Deleted(deleted=counts)
