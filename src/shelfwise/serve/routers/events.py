"""POST /v1/events (scope: write): one event or a batch.

The answer is sent only after the store committed the events, so an acknowledged event
survives a crash; the next recommendation for the user reads it (no retraining). Requests
are group-committed by the app's `EventWriter` (shelfwise.serve.writer): concurrent
requests share one transaction, each still waiting for its commit.

A well-formed request is answered by the fast lane (`shelfwise.serve.fastlane`) before it
reaches this route; the route answers everything else, with the errors the API promises
(401, 403, 422 naming the row and the field, 429), and documents the endpoint. Both store
with `store_events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException

from shelfwise.data.schemas import Event
from shelfwise.serve.deps import Services, ServicesDep, WriteDep
from shelfwise.serve.schemas import EventBatch, EventsAck, EventsBody, refuse_bad_times
from shelfwise.serve.writer import EventWriter

router = APIRouter(prefix="/v1", tags=["events"])

BODY_DESCRIPTION = (
    'One event, `{"events": [...]}`, or a JSON array of events `[{...}, {...}]` (for '
    "clients that buffer). A batch holds at most `max_batch` events (setting "
    "`SHELFWISE_MAX_BATCH`, default 1000) and is stored atomically: all of it or none."
)


def body_events(body: EventBatch | Sequence[Event] | Event) -> tuple[list[Event], str]:
    """The events of a validated body and its form: "event", "batch" or "array"."""
    if isinstance(body, EventBatch):
        return list(body.events), "batch"
    if isinstance(body, Event):
        return [body], "event"
    return list(body), "array"


async def store_events(services: Services, events: Sequence[Event]) -> EventsAck:
    """Group-commit `events` (checked) and wait for the commit; then the replica is told
    to read them and search queries count into autocomplete."""
    writer: EventWriter = services.extra["event_writer"]
    report = await writer.write_async(events)
    services.engine.log.mark_dirty()
    queries = [e.query for e in events if e.type == "search" and e.query]
    if queries:
        services.search.record_queries(queries)
    return EventsAck(accepted=report.events, duplicates=report.duplicate_events)


@router.post("/events", response_model=EventsAck)
async def post_events(
    services: ServicesDep,
    _: WriteDep,
    body: Annotated[EventsBody, Body(description=BODY_DESCRIPTION)],
) -> EventsAck:
    """Store events durably; events whose event_id is already stored count as duplicates.
    A batch with one bad row is refused whole (422 naming the row and the field)."""
    events, kind = body_events(body)
    limit = services.settings.serve.max_batch
    if len(events) > limit:
        raise HTTPException(
            status_code=422,
            detail=f"body: {len(events)} events in one request, more than max_batch ({limit});"
            " split the batch",
        )
    refuse_bad_times(events, services.settings.ingest.time_bounds(), kind)
    return await store_events(services, events)
