"""POST /v1/events (scope: write): one event or a batch.

The answer is sent only after the store committed the events, so an acknowledged event
survives a crash; the next recommendation for the user reads it (no retraining).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from shelfwise.data.frames import records_to_frame
from shelfwise.serve.deps import ServicesDep, WriteDep
from shelfwise.serve.schemas import EventBatch, EventsAck, EventsBody, refuse_bad_times

router = APIRouter(prefix="/v1", tags=["events"])


@router.post("/events", response_model=EventsAck)
def post_events(
    services: ServicesDep,
    _: WriteDep,
    body: Annotated[
        EventsBody,
        Body(description='one event, or {"events": [...]} with up to 1000'),
    ],
) -> EventsAck:
    """Store events durably; events whose event_id is already stored count as duplicates.
    A batch with one bad row is refused whole (422 naming the row and the field)."""
    events = body.events if isinstance(body, EventBatch) else [body]
    refuse_bad_times(events, services.settings.ingest.time_bounds(), isinstance(body, EventBatch))
    report = services.store.ingest(events=records_to_frame("events", events))
    services.engine.log.mark_dirty()
    services.search.record_queries([e.query for e in events if e.type == "search" and e.query])
    return EventsAck(accepted=report.events, duplicates=report.duplicate_events)
