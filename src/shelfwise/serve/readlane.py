"""The fast lane of the hottest GET routes: search, autocomplete, recommendations, similar.

A storefront asks for these on every page view, and for one answer that the engine finds
in a millisecond or two FastAPI's routing (a regular expression per route until one
matches), dependency solving (services, the two security schemes, the key check), query
validation and response handling cost about as much CPU again (`benchmarks/asgi_profile.py`).
`ReadFastLane` sits in front of the app like the events fast lane (`serve.fastlane`) and
answers in plain ASGI a `GET` of

- `/v1/search` with no parameters but `q` (at most 500 characters), `k`, `per_page`, `page`;
- `/v1/autocomplete` with `q` (1 to 100 characters) and `k`;
- `/v1/users/{user_id}/recommendations` and `/v1/items/{item_id}/similar` with `k`, for an
  id of 1 to 256 visible ASCII characters,

each parameter at most once and every number a plain decimal within the route's bounds,
from a caller that `authorize` admits. It calls the route's own work (`search_body`,
`autocomplete_body`, `recommendations_body`, `related_body`, on the event loop or in a
worker thread as `answer` decides), so the same impression is logged under the same kind
of request id, and renders the route's response model as FastAPI does (pydantic-core's
JSON with `Content-Length` and `Content-Type: application/json`): the bytes are the
route's. A library error is answered as the app's handler answers it (`{"detail": ...}`
with `error_status`; 422 with `safe_errors` for a pydantic `ValidationError`).

Anything else - other parameters (filters, facets, a user, a mode), values that are not
plain, a missing, unknown or under-scoped key, a rate limit hit, a service still starting
- goes to the FastAPI route unchanged, which answers with the errors the API promises
(401, 403, 422 naming the parameter, 429, 503). The checks with no side effect run first
and a refused key takes no token here (`RateLimiter.acquire` takes one only when it grants
it), so a refused request takes a rate-limit token at most once, in the route.
`serve.fast_reads = false` sends every request through FastAPI.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from shelfwise.errors import ShelfwiseError
from shelfwise.search.filters import Filters
from shelfwise.serve.deps import Services, answer
from shelfwise.serve.fastlane import admit, json_bytes, send_library_error, send_payload
from shelfwise.serve.middleware import ASGIApp, Receive, Scope, Send
from shelfwise.serve.routers import recommendations as rec_routes
from shelfwise.serve.routers import search as search_routes
from shelfwise.serving import RecContext

#: An id the fast lane takes: visible ASCII, no space (a subset of `schemas.ID_PATTERN`,
#: which any other id is left to check); `/` never reaches here (a path segment).
_ID = re.compile(r"[!-~]{1,256}")
#: A number the fast lane takes: plain decimal digits, no sign, space, point or zeros first.
_NUMBER = re.compile(r"[1-9][0-9]{0,3}")
_USERS, _RECS = "/v1/users/", "/recommendations"
_ITEMS, _SIMILAR = "/v1/items/", "/similar"


def _route(endpoint: Callable[..., Any]) -> Any:
    """The route object of `endpoint`, for the metrics' route label (its path template)."""
    routers = (search_routes.router, rec_routes.router)
    return next(r for rt in routers for r in rt.routes if getattr(r, "endpoint", None) is endpoint)


_SEARCH = _route(search_routes.search)
_AUTOCOMPLETE = _route(search_routes.autocomplete)
_RECOMMENDATIONS = _route(rec_routes.recommendations)
_SIMILAR_ROUTE = _route(rec_routes.similar)


def _params(scope: Scope, allowed: frozenset[str]) -> dict[str, str] | None:
    """The query parameters as Starlette parses them (`parse_qsl` of the Latin-1 query
    string, blanks kept), or None when one is not in `allowed` or comes twice."""
    raw = scope.get("query_string", b"")
    if not raw:
        return {}
    out: dict[str, str] = {}
    for name, value in parse_qsl(bytes(raw).decode("latin-1"), keep_blank_values=True):
        if name not in allowed or name in out:
            return None
        out[name] = value
    return out


def _number(params: dict[str, str], name: str, default: int, low: int, high: int) -> int | None:
    """`params[name]` as an int within [low, high] (`default` when absent); None when the
    value is anything else, which the route's validation is left to answer."""
    text = params.get(name)
    if text is None:
        return default
    if not _NUMBER.fullmatch(text):
        return None
    value = int(text)
    return value if low <= value <= high else None


#: A request the lane answers: (its route, `Services.reads_store`'s arguments, the route's
#: work, its arguments after `services`).
Plan = tuple[Any, dict[str, Any], Callable[..., BaseModel], tuple[Any, ...]]

_SEARCH_PARAMS = frozenset({"q", "k", "per_page", "page"})
_AUTOCOMPLETE_PARAMS = frozenset({"q", "k"})
_K = frozenset({"k"})
_NO_FILTERS = Filters()  # frozen: one for every request


def _plan(path: str, scope: Scope) -> Plan | None:
    """What the route would do for this request, if the lane can take it."""
    if path == "/v1/search":
        params = _params(scope, _SEARCH_PARAMS)
        if params is None:
            return None
        q = params.get("q", "")
        page = _number(params, "page", 1, 1, 1000)
        per_page = _number(params, "per_page", 20, 1, 100)
        k = _number(params, "k", 0, 1, 100) if "k" in params else 0
        if len(q) > 500 or page is None or per_page is None or k is None:
            return None
        # the route's arguments: no filters, relevance order, no facets, user, mode,
        # understanding left to the experiment (None), spelling correction on
        args: tuple[Any, ...] = (
            q,
            _NO_FILTERS,
            "relevance",
            page,
            k or per_page,
            [],
            None,
            None,
            None,
            True,
        )
        return _SEARCH, {"search": True}, search_routes.search_body, args
    if path == "/v1/autocomplete":
        params = _params(scope, _AUTOCOMPLETE_PARAMS)
        if params is None:
            return None
        q = params.get("q", "")
        k = _number(params, "k", 8, 1, 20)
        if not 1 <= len(q) <= 100 or k is None:
            return None
        return _AUTOCOMPLETE, {"search": True}, search_routes.autocomplete_body, (q, k)
    if path.startswith(_USERS) and path.endswith(_RECS):
        taken = _id_and_k(path[len(_USERS) : -len(_RECS)], scope)
        if taken is None:
            return None
        args = (taken[0], taken[1], RecContext(), (), None)
        reads = {"chain": "recommend", "user": True}
        return _RECOMMENDATIONS, reads, rec_routes.recommendations_body, args
    if path.startswith(_ITEMS) and path.endswith(_SIMILAR):
        taken = _id_and_k(path[len(_ITEMS) : -len(_SIMILAR)], scope)
        if taken is None:
            return None
        reads = {"chain": "similar"}
        return _SIMILAR_ROUTE, reads, rec_routes.related_body, ("similar", *taken)
    return None


def _id_and_k(id_: str, scope: Scope) -> tuple[str, int] | None:
    """(the path's id, `k`) of a recommendation route the lane takes, else None."""
    params = _params(scope, _K)
    if params is None or not _ID.fullmatch(id_):
        return None
    k = _number(params, "k", 10, 1, 100)
    return None if k is None else (id_, k)


class ReadFastLane:
    """ASGI middleware answering the plain GETs of the hottest read routes (module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope.get("root_path")
            or not await self._answer(scope, send)
        ):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> bool:
        """Answer the request as its route would; False to leave it to the route."""
        path = scope["path"]
        if not path.startswith("/v1/"):
            return False
        app = scope.get("app")
        services: Services | None = getattr(getattr(app, "state", None), "services", None)
        if services is None or not services.settings.serve.fast_reads:
            return False
        plan = _plan(path, scope)
        if plan is None:
            return False
        route, reads_args, work, args = plan
        if not await admit(services, scope, "read", route):
            return False
        try:
            result = await answer(services.reads_store(**reads_args), work, services, *args)
        except ShelfwiseError as exc:
            await send_library_error(send, exc)
            return True
        except ValidationError as exc:
            from shelfwise.serve.app import safe_errors  # the app imports this module

            errors = exc.errors(include_url=False, include_context=False, include_input=False)
            await send_payload(send, 422, json_bytes({"detail": safe_errors(errors)}))
            return True
        # what FastAPI sends for a route's response model: pydantic-core's JSON
        await send_payload(send, 200, result.__pydantic_serializer__.to_json(result, by_alias=True))
        return True
