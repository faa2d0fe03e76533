"""The fast lane of `POST /v1/events`: well-formed requests answered in plain ASGI.

A storefront posts one event per view or click, so this route sees more requests than any
other, and on a single event FastAPI's routing, dependency solving and response rendering
cost more CPU than the validation and the group commit together
(`benchmarks/events_profile.py`). `EventsFastLane` sits in front of the app and takes a
`POST /v1/events` whose body is JSON that validates (`EventsBody`, parsed and checked in
one pass by pydantic-core), with no more than `max_batch` events, every time inside the
`ingest` bounds, and a caller that `authorize` admits. It stores the events with the same
`store_events` as the route and answers 200 with the same ack once they are committed.

Anything else - a bad body, a missing, unknown or under-scoped key, a rate limit hit, a
request the service cannot take yet - goes to the FastAPI route unchanged (the body it read
is replayed), which answers with the errors the API promises (401, 403, 422 naming the row
and the field, 429, 503). Checks with no side effect run first, so a refused request takes
a rate-limit token at most once. A store error after the write started is answered here
(422 or 503, as the app's handler would).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import HTTPException
from pydantic import TypeAdapter, ValidationError

from shelfwise.data.schemas import TimeBounds, utcnow
from shelfwise.errors import ShelfwiseError
from shelfwise.serve.deps import Services, authorize, error_status
from shelfwise.serve.middleware import ASGIApp, Message, Receive, Scope, Send
from shelfwise.serve.routers.events import body_events, post_events, router, store_events
from shelfwise.serve.schemas import EventsBody
from shelfwise.settings import IngestSettings

log = logging.getLogger(__name__)

PATH = "/v1/events"
_BODY: TypeAdapter[Any] = TypeAdapter(EventsBody)
#: The route's object, for the metrics and the access log (they read its path template).
_ROUTE = next(r for r in router.routes if getattr(r, "endpoint", None) is post_events)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    """The API key a request carries: `X-API-Key`, else `Authorization: Bearer <key>`
    (what the route's `require` reads)."""
    key = _header(scope, b"x-api-key")
    if key:
        return key
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None


class EventsFastLane:
    """ASGI middleware answering well-formed `POST /v1/events` itself (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if await self._answer(scope, body, send):
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _answer(self, scope: Scope, body: bytes, send: Send) -> bool:
        """Store and acknowledge the request's events; False to leave it to the route."""
        app = scope.get("app")
        services: Services | None = getattr(getattr(app, "state", None), "services", None)
        content_type = _header(scope, b"content-type") or ""
        if services is None or not content_type.lower().startswith("application/json"):
            return False
        try:
            events, _ = body_events(_BODY.validate_json(body))
        except ValidationError:
            return False
        settings = services.settings
        if len(events) > settings.serve.max_batch:
            return False
        bounds = _time_bounds(settings.ingest)
        now = utcnow()
        if any(bounds.problem(e.timestamp, now) for e in events):
            return False
        if not await admit(services, scope, "write", _ROUTE):
            return False
        try:
            ack = await store_events(services, events)
        except ShelfwiseError as exc:
            await send_library_error(send, exc)
            return True
        # the 200 ack, byte for byte what a JSONResponse renders for `EventsAck`, without
        # the model dump and `json.dumps` (the ack is two integers)
        payload = b'{"accepted":%d,"duplicates":%d}' % (ack.accepted, ack.duplicates)
        await send_payload(send, 200, payload)
        return True


async def admit(services: Services, scope: Scope, needed: str, route: Any) -> bool:
    """Whether `authorize` admits the request's key for the `needed` scope (False: leave
    the request to its route, which answers the refusal); when it does, the principal and
    the route object go into the scope for the access log and the metrics' route label."""
    client = scope.get("client")
    host = str(client[0]) if client else "local"
    try:
        principal = await authorize(services, needed, presented_key(scope), host)
    except HTTPException:
        return False
    scope.setdefault("state", {})["principal"] = principal
    scope["route"] = route
    return True


async def send_library_error(send: Send, exc: ShelfwiseError) -> None:
    """A library error as the app's handler answers it: `{"detail": ...}` with
    `error_status`, logged when it is the service's fault."""
    status = error_status(exc)
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    await send_payload(send, status, json_bytes({"detail": str(exc)}))


#: (the `ingest` settings object, its bounds): `time_bounds()` parses the floor each call.
_BOUNDS: list[tuple[IngestSettings, TimeBounds]] = []


def _time_bounds(ingest: IngestSettings) -> TimeBounds:
    """`ingest.time_bounds()`, kept for the same settings object (they are frozen)."""
    if _BOUNDS and _BOUNDS[0][0] is ingest:
        return _BOUNDS[0][1]
    bounds = ingest.time_bounds()
    _BOUNDS[:] = [(ingest, bounds)]
    return bounds


_HEADERS = [(b"content-type", b"application/json")]


def json_bytes(content: Any) -> bytes:
    """What a JSONResponse renders: compact JSON, UTF-8."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


async def send_payload(send: Send, status: int, payload: bytes) -> None:
    """A JSON response with its length and type, in the order Starlette's `Response` sends
    them."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", b"%d" % len(payload)), *_HEADERS],
        }
    )
    await send({"type": "http.response.body", "body": payload})
