"""Operations: /healthz (liveness), /readyz (readiness), /metrics (Prometheus). No auth:
they expose no personal data and probes and scrapers carry no keys."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shelfwise.errors import ShelfwiseError
from shelfwise.serve.schemas import Health, Ready

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Ready, responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Ready | JSONResponse:
    """A bundle is loaded, warmed up (every route that answers from it has answered once)
    and the store answers; 503 otherwise, naming the start-up steps still `pending`."""
    services = getattr(request.app.state, "services", None)
    readiness = getattr(request.app.state, "readiness", None)
    if services is None or readiness is None:
        pending = readiness.pending if readiness is not None else ["bundle"]
        return JSONResponse(status_code=503, content={"detail": "starting", "pending": pending})
    if not readiness.ready:
        return JSONResponse(status_code=503, content=readiness.detail())
    try:
        counts = services.store.counts()
    except ShelfwiseError as exc:
        return JSONResponse(status_code=503, content={"detail": f"store unavailable: {exc}"})
    return Ready(status="ready", model_version=services.engine.model_version, **counts)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Request counts and latency histograms per route, the served model version."""
    services = getattr(request.app.state, "services", None)
    registry = services.extra["metrics"].registry if services is not None else None
    if services is not None:
        services.extra["metrics"].set_model(
            services.engine.model_version, services.engine.serving_label
        )
    body = generate_latest(registry) if registry is not None else b""
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
