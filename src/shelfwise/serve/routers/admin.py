"""Admin API (scope: admin): store summary for the admin page, and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from shelfwise.serve.deps import AdminDep, ServicesDep
from shelfwise.serve.schemas import AdminSummary, JobOut, KeyCreated, KeyCreateIn, KeyOut
from shelfwise.serve.security import create_key
from shelfwise.store import ApiKeyRecord

router = APIRouter(prefix="/v1/admin", tags=["admin"])

KeyId = Annotated[str, Path(min_length=12, max_length=12, pattern=r"^[0-9a-f]{12}$")]


def _key(record: ApiKeyRecord) -> KeyOut:
    return KeyOut(
        key_id=record.key_id,
        name=record.name,
        scopes=list(record.scopes),
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )


@router.get("/summary", response_model=AdminSummary)
def summary(services: ServicesDep, _: AdminDep) -> AdminSummary:
    """Catalogue, user and event counts, events per type, the served model, recent jobs."""
    engine = services.engine
    return AdminSummary(
        store=services.store.counts(),
        event_types=services.store.event_type_counts(),
        unknown_item_events=services.store.unknown_item_events(),
        model_version=engine.model_version,
        catalog_served=int(engine.catalog.servable.sum()),
        auth=services.settings.serve.auth,
        jobs=[JobOut(**j.as_dict()) for j in services.jobs.list()[:20]],
    )


@router.get("/keys", response_model=list[KeyOut])
def list_keys(services: ServicesDep, _: AdminDep) -> list[KeyOut]:
    """Every API key (never the key itself)."""
    return [_key(r) for r in services.store.api_keys()]


@router.post("/keys", response_model=KeyCreated, status_code=201)
def new_key(services: ServicesDep, _: AdminDep, body: KeyCreateIn) -> KeyCreated:
    """Create a key; the answer is the only time the key is shown."""
    key, record = create_key(services.store, body.scopes, body.name)
    return KeyCreated(key=key, **_key(record).model_dump())


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(services: ServicesDep, _: AdminDep, key_id: KeyId) -> KeyOut:
    """Revoke a key (at once in this process, within the key cache time elsewhere)."""
    if not services.store.revoke_api_key(key_id):
        raise HTTPException(status_code=404, detail=f"no active key '{key_id}'")
    services.verifier.forget(key_id)
    record = services.store.get_api_key(key_id)
    assert record is not None
    return _key(record)
