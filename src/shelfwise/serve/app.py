"""The FastAPI application: `create_app()` factory with a lifespan, one router per resource.

`create_app(engine=None, settings=None)`:

- with an `Engine` (tests, embedding): serves it; the engine's store stays the caller's;
- without: the lifespan opens the store named by the settings (`SHELFWISE_STORE`), loads
  the registry's active bundle under `SHELFWISE_ARTIFACTS_DIR` whatever arrived in the
  store since it was built (newer events and catalogue changes are applied online; a
  bundle is built only when there is none usable, or with `serve.rebuild`), and closes the
  store on shutdown.

Either way the app then warms up (`serve.warmup`: the search service brought up to the
live catalogue, one search, autocomplete, recommendation, similar-items and bought-together
answer): with an engine given, inside the lifespan's start-up; without, in a background
thread once the server listens, `/readyz` answering 503 with the pending steps until it
is done. This is also the uvicorn factory for several worker processes
(`uvicorn shelfwise.serve.app:create_app --factory`), which need PostgreSQL.

Everything is versioned under /v1 and documented at /docs (OpenAPI at /openapi.json).
Errors are JSON `{"detail": ...}`: 400 bad parameters, 401/403 auth, 404 unknown item or
version, 413 body too large, 422 validation (naming the field), 429 rate limit (with
Retry-After), 503 store unavailable. Unknown users are never an error: they get the
fallback chain.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError

from shelfwise import __version__
from shelfwise.artifacts import ensure_bundle
from shelfwise.errors import (
    ConfigError,
    ShelfwiseError,
)
from shelfwise.experiments.live import LiveExperiments
from shelfwise.profiles.profile import ItemLookup, ProfileService
from shelfwise.search.trees import scoring_without_lightgbm
from shelfwise.serve.deps import Services, error_status
from shelfwise.serve.fastlane import EventsFastLane
from shelfwise.serve.jobs import JobRunner, RetrainTrigger, submit_train, trigger_loop
from shelfwise.serve.middleware import Metrics, ServiceMiddleware
from shelfwise.serve.models import ModelRegistry
from shelfwise.serve.readlane import ReadFastLane
from shelfwise.serve.routers import ROUTERS
from shelfwise.serve.search import watch_catalog
from shelfwise.serve.security import KeyVerifier, RateLimiter
from shelfwise.serve.warmup import Readiness, use_lightgbm, warm_up
from shelfwise.serve.writer import EventWriter
from shelfwise.serving import Engine
from shelfwise.settings import Settings
from shelfwise.store import Store, open_store

log = logging.getLogger(__name__)

DESCRIPTION = """Product search and recommendations for online stores.

Authenticate with an API key: `Authorization: Bearer swk_...` or `X-API-Key: swk_...`.
Scopes: **read** (search, recommendations), **write** (events), **admin** (catalogue,
models, users; implies read and write). Create keys with `shelfwise keys create`.
"""

_SHOWN_CHARS = 200


def _safe_text(text: str) -> str:
    """Text that always renders as JSON: lone surrogates and control characters escaped
    (`\\ud800`, `\\x00`), cut to `_SHOWN_CHARS`."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _safe_value(value: Any) -> Any:
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    return _safe_text(str(value))


def safe_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Validation errors as a 422 body that always renders: type, loc, msg and scalar ctx,
    escaped; never the raw input (it may hold NaN, lone surrogates or NUL bytes)."""
    out: list[dict[str, Any]] = []
    for error in errors:
        error = dict(error)
        shown: dict[str, Any] = {
            "type": _safe_text(str(error.get("type", "value_error"))),
            "loc": [_safe_value(p) for p in error.get("loc", ())],
            "msg": _safe_text(str(error.get("msg", "invalid value"))),
        }
        ctx = error.get("ctx")
        if isinstance(ctx, dict) and ctx:
            shown["ctx"] = {_safe_text(str(k)): _safe_value(v) for k, v in ctx.items()}
        out.append(shown)
    return out


def _item_lookup(engine: Engine) -> ItemLookup:
    """item ids -> (categories, brands, prices) from the live catalog, for profiles."""

    def lookup(ids: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
        cat = engine.catalog
        idx = np.asarray(cat.vocab.encode(list(ids), unknown="minus_one"), dtype=np.int64)
        ok = idx >= 0
        safe = np.where(ok, idx, 0)
        cats = np.where(ok, cat.category[safe], "").tolist() if len(cat) else [""] * len(ids)
        brands = np.where(ok, cat.brand[safe], "").tolist() if len(cat) else [""] * len(ids)
        prices = np.where(ok, cat.price[safe], np.nan) if len(cat) else np.full(len(ids), np.nan)
        return [str(c) for c in cats], [str(b) for b in brands], prices

    return lookup


def build_services(engine: Engine, settings: Settings, metrics: Metrics) -> Services:
    """Wire the engine to search, profiles, models, jobs and security. The search service
    is brought up to the live catalogue by the warm-up (`serve.warmup`), or on first use;
    catalogue changes reach it from then on."""
    watch_catalog(engine)
    profiles = ProfileService(engine.store, _item_lookup(engine))
    engine.add_erase_listener(profiles.forget)
    engine.add_reset_listener(profiles.clear)
    registry = ModelRegistry(engine, engine.bundle.registry)
    metrics.set_model(engine.model_version, engine.serving_label)
    writer = EventWriter(engine.store, gather_seconds=settings.serve.event_gather_ms / 1000)
    metrics.watch_event_writer(writer.stats)
    return Services(
        settings=settings,
        store=engine.store,
        engine=engine,
        profiles=profiles,
        models=registry,
        jobs=JobRunner(settings.serve.job_workers, settings.serve.max_queued_jobs),
        verifier=KeyVerifier(engine.store, settings.serve.key_cache_seconds),
        limiter=RateLimiter(settings.serve.rate_limit, settings.serve.rate_burst),
        extra={
            "metrics": metrics,
            "event_writer": writer,
            # impressions are written by it
            "experiments": LiveExperiments(engine.store, impressions=settings.impressions),
        },
    )


def _refresh_loop(engine: Engine, seconds: float, stop: threading.Event) -> None:
    """Catch up with other processes' writes every `seconds` until `stop` is set."""
    while not stop.wait(seconds):
        try:
            done = engine.refresh()
        except Exception as exc:  # keep serving; the next round retries
            log.warning("refresh failed: %s", exc)
            continue
        if any(done.values()):
            log.info("caught up with other processes: %s", done)


def replica_path(settings: Settings) -> Path:
    """Where a server saves its event replica between starts: beside the registry's
    versions (`serving.replica.EventLog`)."""
    return Path(settings.paths.artifacts) / "replica.npz"


def _save_replica(engine: Engine) -> None:
    try:
        if engine.save_replica():
            log.info("event replica saved to %s", engine.replica_path)
    except Exception as exc:  # a snapshot only speeds the next start up
        log.warning("could not save the event replica: %s", exc)


def _open_engine(settings: Settings) -> tuple[Store, Engine]:
    store = open_store(settings.store.url)
    try:
        # the search re-ranker's trees are read as numpy arrays, not by LightGBM, whose
        # import (scikit-learn, scipy.stats: about 3.5 s of CPU at 100k items) would be
        # most of the start; `serve.warmup.use_lightgbm` swaps LightGBM in once ready
        with scoring_without_lightgbm():
            bundle, built = ensure_bundle(
                store,
                settings.paths.artifacts,
                rebuild=settings.serve.rebuild,
                # `auto` serves the active bundle whichever way its search was built (hybrid
                # when it was built dense): a restart never retrains for it
                search_dense=None if settings.search.mode == "auto" else settings.search.dense,
                engine=settings.engine,
                cache_dir=settings.paths.embeddings,
                reuse_stale=True,  # start on the last good bundle: the engine catches up online
                tuning=settings.tuning,  # a bundle built here tunes within build_budget_seconds
            )
        log.info("%s bundle %s", "built" if built else "loaded", bundle.directory)
        engine = Engine(
            store,
            bundle,
            tail_seconds=settings.serve.tail_seconds,
            replica=replica_path(settings),
        )
        log.info(
            "event replica %s",
            "read from its snapshot" if engine.log.from_snapshot else "read from the store",
        )
        return store, engine
    except BaseException:
        store.close()
        raise


def create_app(engine: Engine | None = None, settings: Settings | None = None) -> FastAPI:
    """The API app around `engine`, or around the store the settings name (module doc)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened: Store | None = None
        readiness = Readiness()
        app.state.readiness = readiness
        if engine is None:
            t0 = time.perf_counter()
            opened, served = _open_engine(settings)
            readiness.done("bundle", time.perf_counter() - t0)
        else:
            served = engine
            readiness.done("bundle")
        services = build_services(served, settings, metrics)
        app.state.services = services
        app.state.engine = served
        if settings.serve.auth and not services.store.api_keys():
            log.warning(
                "auth is on and there are no API keys: create one with "
                "`shelfwise keys create --scopes read,write`"
            )
        stop = threading.Event()
        warming: threading.Thread | None = None
        if engine is None:  # a server: listen at once, /readyz says what is pending

            def warm_then_snapshot() -> None:
                warm_up(served, settings, readiness, background=True)
                if readiness.ready and not served.log.from_snapshot:
                    _save_replica(served)  # the next start reads it instead of the log
                if readiness.ready:
                    use_lightgbm(served)  # the trees read at start -> LightGBM's faster walk

            warming = threading.Thread(
                target=warm_then_snapshot,
                args=(),
                name="shelfwise-warm-up",
                daemon=True,
            )
            warming.start()
        else:  # embedded (tests): ready when the app has started
            warm_up(served, settings, readiness)
        if settings.serve.refresh_seconds > 0:
            threading.Thread(
                target=_refresh_loop,
                args=(served, settings.serve.refresh_seconds, stop),
                name="shelfwise-refresh",
                daemon=True,
            ).start()
        serve = settings.serve
        trigger = RetrainTrigger(
            serve.retrain_every_seconds,
            serve.retrain_after_events,
            start=lambda reason: submit_train(services, activate=True, trigger=reason),
            busy=lambda: services.jobs.pending("train"),
        )
        if trigger.enabled:  # retrain on a schedule / after new events
            threading.Thread(
                target=trigger_loop,
                args=(trigger, lambda: services.store.counts()["events"], stop),
                name="shelfwise-retrain",
                daemon=True,
            ).start()
        try:
            yield
        finally:
            stop.set()
            services.extra["event_writer"].close()  # what is queued is written first
            services.extra["experiments"].close()  # and the queued impressions
            if warming is not None:
                warming.join(timeout=60)  # it reads the store that is closed below
            services.jobs.shutdown()
            if opened is not None:
                _save_replica(served)  # with what arrived while serving
            app.state.services = None
            if opened is not None:
                opened.close()

    app = FastAPI(
        title="Shelfwise",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = None
    app.state.metrics = metrics

    @app.exception_handler(ShelfwiseError)
    async def _shelfwise_error(_: Request, exc: ShelfwiseError) -> JSONResponse:
        status = error_status(exc)
        if status >= 500:
            log.error("%s: %s", type(exc).__name__, exc)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.exception_handler(ValidationError)
    async def _validation_error(_: Request, exc: ValidationError) -> JSONResponse:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        return JSONResponse(status_code=422, content={"detail": safe_errors(errors)})

    @app.exception_handler(RequestValidationError)
    async def _request_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which fails to render for NaN and lone
        # surrogates (a 500 or a reset connection instead of the 422)
        return JSONResponse(status_code=422, content={"detail": safe_errors(exc.errors())})

    for router in ROUTERS:
        app.include_router(router)
    if importlib.util.find_spec("shelfwise.serve.web") is not None:
        web = importlib.import_module("shelfwise.serve.web")
        app.include_router(web.router)
    else:

        @app.get("/", include_in_schema=False)
        def index() -> RedirectResponse:
            return RedirectResponse("/docs")

    app.add_middleware(EventsFastLane)  # innermost: inside CORS, the limits and metrics
    app.add_middleware(ReadFastLane)  # the plain GETs of search and recommendations
    origins = settings.serve.cors_list()
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            max_age=600,
        )
    app.add_middleware(
        ServiceMiddleware, max_body_bytes=settings.serve.max_body_bytes, metrics=metrics
    )
    return app


#: Seconds a worker process may take to answer uvicorn's supervisor (`serve`).
WORKER_HEALTHCHECK_SECONDS = 120


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Run the API with uvicorn: one process, or `workers` processes sharing PostgreSQL.

    With uvicorn's C HTTP parser and event loop (`httptools`, `uvloop`, pinned
    dependencies), named explicitly: uvicorn's `auto` would fall back to the pure-Python
    `h11` and asyncio's loop without a word if one were missing."""
    import uvicorn

    if workers > 1:
        if not settings.store.url.lower().startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"--workers {workers} needs a PostgreSQL store: an embedded DuckDB store has "
                "one writer process (use --workers 1, or --store postgresql://...)"
            )
        # Build (or check) the bundle once here, so the workers only load it.
        store, _ = _open_engine(settings)
        store.close()
        # the workers build their own Settings() from these (uvicorn starts them fresh)
        resolved = settings.with_(
            paths={"artifacts": Path(settings.paths.artifacts).resolve()},
            serve={"rebuild": False},
        )
        os.environ.update(resolved.to_env())
        uvicorn.run(
            "shelfwise.serve.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            # A worker loading its bundle and event replica (a million events: tens of
            # seconds on a busy machine) may answer the supervisor's ping late; with
            # uvicorn's 5 s it was killed as hung and replaced, over and over.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            http="httptools",
            loop="uvloop",
        )
        return
    uvicorn.run(
        create_app(settings=settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
    )
