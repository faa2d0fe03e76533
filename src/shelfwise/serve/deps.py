"""What request handlers depend on: the services of the app, and the caller's scope.

`Services` is built once per app in the lifespan and hung on `app.state.services`;
handlers reach it through `ServicesDep`. `require(scope)` is the auth dependency: it
resolves the caller from `Authorization: Bearer <key>` or `X-API-Key: <key>`, answers 401
without a valid key and 403 without the scope, then takes a rate-limit token (429 with
Retry-After when the bucket is empty). With auth off every caller holds every scope and is
rate-limited by client address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar, cast

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from shelfwise.errors import (
    ConfigError,
    DataError,
    NotFittedError,
    ShelfwiseError,
    StoreError,
    UnknownIdError,
)
from shelfwise.profiles.profile import ProfileService
from shelfwise.serve.search import is_prepared, served_search
from shelfwise.serve.security import (
    SCOPES,
    KeyVerifier,
    Principal,
    RateLimiter,
    grants,
    retry_after_header,
)
from shelfwise.serving import Engine
from shelfwise.settings import Settings
from shelfwise.store import Store

if TYPE_CHECKING:
    from shelfwise.search.service import SearchService
    from shelfwise.serve.jobs import JobRunner
    from shelfwise.serve.models import ModelRegistry


@dataclass
class Services:
    """Everything the routers use, built by the app's lifespan."""

    settings: Settings
    store: Store
    engine: Engine
    profiles: ProfileService
    models: ModelRegistry
    jobs: JobRunner
    verifier: KeyVerifier
    limiter: RateLimiter
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def search(self) -> SearchService:
        """The active bundle's search service, in step with the live catalogue (a
        hot-swapped bundle's service is prepared on first use)."""
        settings = self.settings
        return served_search(self.engine, settings.search.mode, settings.paths.embeddings)

    def reads_store(
        self, chain: str | None = None, user: bool = False, search: bool = False
    ) -> bool:
        """Whether a request would read the store (or prepare a search service) now: the
        engine's `chain` for a user (`user`: new events to fetch) or not, the running
        experiments to re-read (requests for a user), a search service to prepare
        (`search`). Such a request answers in a worker thread, any other on the event loop
        (`answer`)."""
        engine = self.engine
        if chain is not None and engine.reads_store(chain, user):
            return True
        if user:
            if chain is None and engine.log.reads_store():
                return True
            live = self.extra.get("experiments")
            if live is None or live.stale():
                return True
        return search and not is_prepared(engine)


P = ParamSpec("P")
T = TypeVar("T")


async def answer(
    reads_store: bool, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`function(*args, **kwargs)`: on the event loop when it answers from memory
    (`reads_store` False), in a worker thread when it reads the store.

    The read routes' work is CPU-bound Python that holds the interpreter lock either way,
    so a worker thread buys no parallelism; it costs two thread hops per request and, under
    load, the event loop waiting up to the interpreter's switch interval (5 ms) for the lock
    whenever a worker holds it. A store read, though, may wait on a lock the writer holds
    for a whole transaction, and must not stall every other request meanwhile."""
    if reads_store:
        return await run_in_threadpool(function, *args, **kwargs)
    return function(*args, **kwargs)


_STATUS: dict[type[ShelfwiseError], int] = {
    UnknownIdError: 404,
    ConfigError: 400,
    DataError: 422,
    StoreError: 503,
    NotFittedError: 503,
}


def error_status(exc: ShelfwiseError) -> int:
    """The HTTP status a library error is answered with (400 for unlisted kinds)."""
    for kind, status in _STATUS.items():
        if isinstance(exc, kind):
            return status
    return 400


async def get_services(request: Request) -> Services:
    """The app's services (503 while the app is still starting). Async, like `require`:
    a plain function would run in a worker thread, two thread hops per request."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise HTTPException(status_code=503, detail="the service is starting; retry shortly")
    return cast(Services, services)


ServicesDep = Annotated[Services, Depends(get_services)]

_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer swk_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


def user_ref(user_id: str) -> str:
    """A user id as it may appear in logs: a short one-way hash, never the id itself."""
    return "u_" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:12]


async def authorize(services: Services, scope: str, key: str | None, host: str) -> Principal:
    """The caller presenting `key` (None: no key sent) from client address `host`, if it
    may use `scope` (see the module doc); `HTTPException` 401, 403 or 429 otherwise."""
    if not services.settings.serve.auth:
        principal = Principal(key_id=None, scopes=SCOPES, name=f"ip:{host}")
        identity = principal.name
    else:
        if not key:
            raise HTTPException(
                status_code=401,
                detail="an API key is required: send 'Authorization: Bearer <key>' or "
                "'X-API-Key: <key>' (create one with `shelfwise keys create`)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        verifier = services.verifier
        if verifier.answers_from_cache(key):  # the usual case: no store read
            found = verifier.verify(key)
        else:  # reads the store (which may be busy writing): off the event loop
            found = await run_in_threadpool(verifier.verify, key)
        if found is None:
            raise HTTPException(
                status_code=401,
                detail="the API key is not valid (unknown, malformed or revoked)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not grants(found.scopes, scope):
            raise HTTPException(
                status_code=403,
                detail=f"this key's scopes ({', '.join(found.scopes)}) do not include '{scope}'",
            )
        principal = found
        identity = found.rate_key
    wait = services.limiter.acquire(identity)
    if wait > 0:
        raise HTTPException(
            status_code=429,
            detail=f"rate limit of {services.limiter.rate:g} requests/s exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return principal


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting callers whose key grants `scope` (`authorize`)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(
        request: Request,
        services: ServicesDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
        header: Annotated[str | None, Security(_header)] = None,
    ) -> Principal:
        key = header or (bearer.credentials if bearer is not None else None)
        host = request.client.host if request.client else "local"
        principal = await authorize(services, scope, key, host)
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency


ReadDep = Annotated[Principal, Depends(require("read"))]
WriteDep = Annotated[Principal, Depends(require("write"))]
AdminDep = Annotated[Principal, Depends(require("admin"))]
