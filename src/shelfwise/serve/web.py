"""The storefront and admin pages, served by the API app itself.

The pages are plain HTML, CSS and vanilla JavaScript modules in `serve/static/` (no build
step, no CDN: everything is served from this package, so the demo works offline). They talk
to the JSON API like any other client: `/v1/search`, `/v1/autocomplete`, recommendations,
similar and bought-together items, and `POST /v1/events` for every view and click, so the
storefront adapts as one browses.

`router` holds the page routes and the static files; `create_app()` includes it with
`app.include_router(web.router)`. Static files are served from a fixed list of the files
that ship in `static/` (read once at import), so no request path ever reaches the file
system. The router also carries the one JSON route only the admin page needs,
`GET /v1/admin/tuning` (admin scope): the tuning runs recorded under the model store's
`reports/` folder by `shelfwise tune` (and the API's tune jobs), with their trials.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from shelfwise.serve.deps import AdminDep, ServicesDep
from shelfwise.tuning.runs import TuningRun, tuning_runs

log = logging.getLogger(__name__)

__all__ = ["STATIC_DIR", "page_config", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""Where the pages, scripts and styles live (shipped as package data)."""


_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

_CONFIG_MARK = "<!--shelfwise-config-->"
# The pages load only their own scripts, styles and API: a content security policy says so,
# so an injected <script> or a script from elsewhere would not run.
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _static_files() -> dict[str, Path]:
    """The servable files, by name: regular files in `static/` with a known media type."""
    if not STATIC_DIR.is_dir():
        return {}
    return {
        p.name: p
        for p in sorted(STATIC_DIR.iterdir())
        if p.is_file() and p.suffix in _MEDIA_TYPES and not p.name.startswith(".")
    }


_FILES = _static_files()


def page_config(request: Request, page: str) -> dict[str, Any]:
    """What a page needs to know before its first API call."""
    engine = getattr(request.app.state, "engine", None)
    bundle = getattr(engine, "bundle", None)
    manifest: dict[str, Any] = getattr(bundle, "manifest", None) or {}
    services = getattr(request.app.state, "services", None)
    key = services.settings.serve.web_key if services is not None else None
    return {
        "page": page,
        "apiBase": "",
        "apiKey": key if page == "store" else None,
        "bundle": manifest.get("version"),
    }


def _page(request: Request, name: str, page: str) -> HTMLResponse:
    """A page with its config inlined as JSON (`<`, `>`, `&` escaped: it cannot end the script)."""
    path = _FILES.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"page {name} is not installed")
    config = (
        json.dumps(page_config(request, page))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )
    html = path.read_text(encoding="utf-8").replace(
        _CONFIG_MARK,
        f'<script type="application/json" id="shelfwise-config">{config}</script>',
        1,
    )
    return HTMLResponse(html, headers=_PAGE_HEADERS)


router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request) -> HTMLResponse:
    """The storefront's home page: personalised and "because you viewed" rows."""
    return _page(request, "store.html", "store")


@router.get("/search", response_class=HTMLResponse, include_in_schema=False)
def search_page(request: Request) -> HTMLResponse:
    """Search results with autocomplete, facets, sorting and pages."""
    return _page(request, "store.html", "store")


@router.get("/product/{item_id}", response_class=HTMLResponse, include_in_schema=False)
def product_page(
    request: Request, item_id: Annotated[str, PathParam(min_length=1, max_length=256)]
) -> HTMLResponse:
    """One product with similar and bought-together items."""
    return _page(request, "store.html", "store")


@router.get("/admin", response_class=HTMLResponse, include_in_schema=False)
def admin_page(request: Request) -> HTMLResponse:
    """Catalogue and event counts, models and their metrics, tuning history."""
    return _page(request, "admin.html", "admin")


@router.get("/admin/", response_class=RedirectResponse, include_in_schema=False)
def admin_slash() -> RedirectResponse:
    """`/admin/` -> `/admin`."""
    return RedirectResponse("/admin", status_code=308)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    """The shop's icon (browsers ask for it at the root)."""
    return static_file("favicon.svg")


@router.get("/static/{name}", include_in_schema=False)
def static_file(name: Annotated[str, PathParam(max_length=64)]) -> Response:
    """One shipped static file; anything else is a 404."""
    path = _FILES.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail=f"no static file named {name!r}")
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/v1/admin/tuning", response_model=list[TuningRun], tags=["admin"])
def tuning_history(services: ServicesDep, _: AdminDep) -> list[TuningRun]:
    """Tuning runs with their trials, newest first (for the admin page's history plots)."""
    return tuning_runs(Path(services.models.root))
