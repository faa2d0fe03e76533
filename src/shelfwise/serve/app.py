"""FastAPI application factory: `create_app(engine)`.

Versioned under /v1. Every request gets an answer: an unknown user is served the popular
items, never a 5xx.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from shelfwise import __version__
from shelfwise.data.frames import parse_attributes
from shelfwise.engine import Engine
from shelfwise.errors import ConfigError, ShelfwiseError

log = logging.getLogger(__name__)


class ItemResult(BaseModel):
    """One search or recommendation result."""

    item_id: str
    title: str | None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    score: float


class SearchResponse(BaseModel):
    """Answer of GET /v1/search."""

    query: str
    k: int
    results: list[ItemResult]


class RecommendationResponse(BaseModel):
    """Answer of GET /v1/users/{id}/recommendations."""

    user_id: str
    strategy: str
    model_version: str
    items: list[ItemResult]


_INDEX = """<!doctype html><html><head><meta charset="utf-8"><title>Shelfwise</title>
<style>body{{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .3em}}</style></head><body>
<h1>Shelfwise {version}</h1>
<p>Model bundle <code>{bundle}</code>: {items:,} items, {users:,} users,
{interactions:,} interactions.</p>
<ul>
<li><a href="/v1/search?q=coffee">/v1/search?q=coffee</a></li>
<li><a href="/v1/users/{user}/recommendations">/v1/users/{user}/recommendations</a></li>
<li><a href="/docs">/docs</a> (OpenAPI)</li>
</ul></body></html>"""


def create_app(engine: Engine) -> FastAPI:
    """Build the app around a ready engine (store + bundle)."""
    app = FastAPI(
        title="Shelfwise",
        version=__version__,
        description="Product search and recommendations for online stores.",
    )
    app.state.engine = engine

    @app.exception_handler(ShelfwiseError)
    async def _shelfwise_error(_: Request, exc: ShelfwiseError) -> JSONResponse:
        status = 400 if isinstance(exc, ConfigError) else 422
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        counts = engine.bundle.manifest["counts"]
        some_user = engine.store.users()["user_id"].head(1).tolist() or ["anonymous"]
        return _INDEX.format(
            version=__version__,
            bundle=engine.bundle.manifest["version"],
            user=some_user[0],
            **counts,
        )

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz() -> dict[str, Any]:
        """Readiness: a model bundle is loaded and the store answers."""
        counts = engine.store.counts()
        return {"status": "ready", "bundle": engine.bundle.manifest["version"], **counts}

    @app.get("/v1/search", response_model=SearchResponse, tags=["search"])
    def search(
        q: Annotated[str, Query(min_length=1, max_length=500, description="the query")],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> SearchResponse:
        """BM25 search over titles, brands, categories and descriptions."""
        results = engine.search(q, k)
        return SearchResponse(query=q, k=k, results=[ItemResult(**r) for r in results])

    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=RecommendationResponse,
        tags=["recommendations"],
    )
    def recommendations(
        user_id: Annotated[str, Path(min_length=1, max_length=256)],
        k: Annotated[int, Query(ge=1, le=100)] = 10,
        model: Annotated[str | None, Query(max_length=64)] = None,
    ) -> RecommendationResponse:
        """Personalised from the user's latest events; popular items for unknown users."""
        strategy, items = engine.recommend(user_id, k, model)
        return RecommendationResponse(
            user_id=user_id,
            strategy=strategy,
            model_version=engine.bundle.manifest["version"],
            items=[ItemResult(**r) for r in items],
        )

    @app.get("/v1/items/{item_id}", tags=["catalog"])
    def item(item_id: Annotated[str, Path(min_length=1, max_length=256)]) -> dict[str, Any]:
        """One catalog item."""
        rows = engine.store.items([item_id])
        if rows.empty:
            raise HTTPException(status_code=404, detail=f"no item with item_id '{item_id}'")
        row = {str(k): v for k, v in rows.iloc[0].to_dict().items()}
        row["created_at"] = row["created_at"].isoformat() + "Z"
        row["price"] = None if row["price"] != row["price"] else row["price"]
        row["attributes"] = parse_attributes(row["attributes"])
        return row

    return app
