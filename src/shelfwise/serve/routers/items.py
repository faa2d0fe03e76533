"""The catalogue: GET /v1/items/{item_id} (read); PUT /v1/items/{item_id},
POST /v1/items:batch and DELETE /v1/items/{item_id} (admin).

A write goes to the store first (durable), then into the live catalog: the item is
searchable and recommendable content-based at once, without retraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path

from shelfwise.data.frames import parse_attributes, records_to_frame
from shelfwise.data.schemas import Item
from shelfwise.serve.deps import AdminDep, ReadDep, Services, ServicesDep
from shelfwise.serve.schemas import ID_PATTERN, Deleted, ItemBatch, ItemIn, ItemRecord, ItemsAck

router = APIRouter(prefix="/v1", tags=["catalogue"])

ItemId = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN)]


def _write(services: Services, items: Sequence[Item]) -> ItemsAck:
    frame = records_to_frame("items", items)
    services.store.upsert_items(frame)
    stored = services.store.items([i.item_id for i in items])
    new = services.engine.apply_items(stored)
    return ItemsAck(upserted=len(stored), new=len(new), item_ids=stored["item_id"].tolist())


@router.get("/items/{item_id}", response_model=ItemRecord)
def get_item(services: ServicesDep, _: ReadDep, item_id: ItemId) -> ItemRecord:
    """One catalogue item as stored; 404 if there is none."""
    rows = services.store.items([item_id])
    if rows.empty:
        raise HTTPException(status_code=404, detail=f"no item with item_id '{item_id}'")
    row: dict[str, Any] = {str(k): v for k, v in rows.iloc[0].to_dict().items()}
    for key, value in list(row.items()):
        if value is not None and value != value:  # NaN
            row[key] = None
    row["attributes"] = parse_attributes(row.get("attributes"))
    return ItemRecord(**row)


@router.put("/items/{item_id}", response_model=ItemsAck)
def put_item(services: ServicesDep, _: AdminDep, item_id: ItemId, body: ItemIn) -> ItemsAck:
    """Create or replace one item."""
    fields = body.model_dump(exclude_none=True)
    return _write(services, [Item(item_id=item_id, **fields)])


@router.post("/items:batch", response_model=ItemsAck)
def put_items(services: ServicesDep, _: AdminDep, body: ItemBatch) -> ItemsAck:
    """Create or replace many items in one transaction."""
    return _write(services, body.items)


@router.delete("/items/{item_id}", response_model=Deleted)
def delete_item(services: ServicesDep, _: AdminDep, item_id: ItemId) -> Deleted:
    """Remove an item from the catalogue (its events stay); 404 if there is none."""
    removed = services.store.delete_item(item_id)
    served = services.engine.remove_item(item_id)
    if not (removed or served):
        raise HTTPException(status_code=404, detail=f"no item with item_id '{item_id}'")
    return Deleted(deleted={"items": int(removed)})
