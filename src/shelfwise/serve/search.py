"""Search for the API: `shelfwise.search.service.SearchService` (typo tolerance, synonyms,
filters, facets, autocomplete, live updates), built over the live catalog at startup; the
bundle's plain BM25 index with simple filters and facets is the fallback when the service
cannot be built.

Either way the API sees one `SearchAdapter` with `search`, `autocomplete`, `upsert_items`,
`delete_items`, `record_queries` and `forget_user`, and results in the API's shape.

With `search_mode` hybrid or semantic (`SHELFWISE_SEARCH_MODE`) the service also gets dense
retrieval (`SearchService.enable_dense`: MiniLM vectors of every live item, read from the
on-disk embedding cache, only unseen texts embedded, kept up to date by `upsert_items` /
`delete_items`) and answers in that mode unless a request asks for another. If the dense
index cannot be built the service stays lexical, and requests for semantic or hybrid search
are answered lexically with a `notice` saying why.
"""

from __future__ import annotations

import bisect
import importlib
import importlib.util
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.errors import ShelfwiseError
from shelfwise.serving import Engine
from shelfwise.types import top_k

log = logging.getLogger(__name__)

FACETS = ("category", "brand", "price")
SORTS = ("relevance", "price_asc", "price_desc", "popularity", "newest")
PRICE_BANDS = (0.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
_FALLBACK_CANDIDATES = 1000
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Filters:
    """What a search is restricted to."""

    category: str | None = None
    brands: tuple[str, ...] = ()
    price_min: float | None = None
    price_max: float | None = None
    in_stock: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """Only the filters that are set."""
        out: dict[str, Any] = {}
        if self.category:
            out["category"] = self.category
        if self.brands:
            out["brand"] = list(self.brands)
        if self.price_min is not None:
            out["min_price"] = self.price_min
        if self.price_max is not None:
            out["max_price"] = self.price_max
        if self.in_stock is not None:
            out["in_stock"] = self.in_stock
        return out


@dataclass
class SearchResult:
    """A page of results in the API's shape."""

    items: list[dict[str, Any]]
    total: int
    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    engine: str = "bm25"
    mode: str | None = None
    notice: str | None = None


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _as_item(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        obj = obj.model_dump()
    elif not isinstance(obj, dict):
        obj = {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_")}
    price = obj.get("price")
    return {
        "item_id": str(obj.get("item_id")),
        "title": obj.get("title"),
        "category": obj.get("category") or None,
        "brand": obj.get("brand") or None,
        "price": None if price is None or price != price else float(price),
        "score": float(obj.get("score", 0.0) or 0.0),
        "source": "search",
    }


def _as_facets(raw: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if not raw:
        return out
    items = raw.items() if isinstance(raw, dict) else ((_get(f, "name"), f) for f in raw)
    for name, values in items:
        values = _get(values, "values", values)
        rows = []
        for v in values.items() if isinstance(values, dict) else values:
            if isinstance(v, tuple):
                rows.append({"value": str(v[0]), "count": int(v[1])})
            else:
                rows.append({"value": str(_get(v, "value")), "count": int(_get(v, "count", 0))})
        out[str(name)] = rows
    return out


def _price_band(price: float) -> str:
    i = bisect.bisect_right(PRICE_BANDS, price) - 1
    lo = PRICE_BANDS[max(i, 0)]
    hi = PRICE_BANDS[i + 1] if i + 1 < len(PRICE_BANDS) else None
    return f"{lo:g}-{hi:g}" if hi is not None else f"{lo:g}+"


class SearchAdapter:
    """One search interface over whichever implementation is present."""

    def __init__(
        self, engine: Engine, service: Any | None = None, dense_error: str | None = None
    ) -> None:
        self.engine = engine
        self.service = service
        #: Why dense retrieval is off although it was asked for (None when it is on or
        #: was not asked for).
        self.dense_error = dense_error
        self._terms: list[str] | None = None

    @classmethod
    def create(
        cls, engine: Engine, use_service: bool = True, search_mode: str = "lexical"
    ) -> SearchAdapter:
        """Build the SearchService over the live catalog and the store's events; with
        `search_mode` hybrid or semantic switch dense retrieval on and make it the default."""
        service = None
        dense_error = None
        if use_service and importlib.util.find_spec("shelfwise.search.service") is not None:
            module = importlib.import_module("shelfwise.search.service")
            factory = getattr(module, "SearchService", None)
            if factory is not None:
                service = _build_service(factory, engine)
        if service is not None and search_mode != "lexical":
            dense_error = _enable_dense(service, engine, search_mode)
        return cls(engine, service, dense_error)

    @property
    def name(self) -> str:
        """What answers searches."""
        return "service" if self.service is not None else "bm25"

    @property
    def dense(self) -> bool:
        """Whether semantic and hybrid search are available."""
        return self.service is not None and getattr(self.service, "dense", None) is not None

    # -- queries ------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        filters: Filters,
        sort: str = "relevance",
        page: int = 1,
        per_page: int = 20,
        facets: tuple[str, ...] = (),
        user: str | None = None,
        mode: str | None = None,
    ) -> SearchResult:
        """One page of results, with facet counts over all matches. `mode` (lexical,
        semantic, hybrid; None: the service's default) picks the retrieval."""
        if self.service is not None:
            bundled = self.engine.bundle.search_reranker
            if self.service.reranker is not bundled:  # a newly activated bundle
                self.service.reranker = bundled
            history_ids, weights = None, None
            if user is not None:
                # the engine numbers items by its catalog vocabulary, the service by its own
                # rows: hand over item ids and let the service map them
                idx, weights = self.engine.user_history(user)
                history_ids = [str(i) for i in self.engine.catalog.vocab.decode(idx)]
            raw = self.service.search(
                query,
                filters=filters.as_dict(),
                sort=sort,
                page=page,
                per_page=per_page,
                facets=list(facets),
                user=user,
                history_ids=history_ids,
                history_weights=weights,
                mode=mode,
            )
            info = _get(raw, "query_info", {}) or {}
            used = info.get("mode")
            notice = info.get("notice")
            if notice and self.dense_error:
                notice = f"{notice} (dense retrieval failed to start: {self.dense_error})"
            engine = "service"
            if used in ("semantic", "hybrid"):
                engine += f"+{used}"
            if info.get("reranked"):
                engine += "+ltr"
            return SearchResult(
                items=[_as_item(i) for i in _get(raw, "items", [])],
                total=int(_get(raw, "total", 0)),
                facets=_as_facets(_get(raw, "facets", {})),
                engine=engine,
                mode=used,
                notice=notice,
            )
        result = self._fallback(query, filters, sort, page, per_page, facets)
        result.mode = "lexical" if query.strip() else "browse"
        if mode not in (None, "lexical"):
            result.notice = (
                f"{mode} search is not available (the search service is down); answered "
                "with the bundle's BM25 index"
            )
        return result

    def _fallback(
        self,
        query: str,
        filters: Filters,
        sort: str,
        page: int,
        per_page: int,
        facets: tuple[str, ...],
    ) -> SearchResult:
        cat = self.engine.catalog
        scores = np.asarray(self.engine.bundle.search_index.score(query), dtype=np.float64)
        full = np.zeros(len(cat))
        full[: min(len(scores), len(cat))] = scores[: len(cat)]
        mask = (full > 0) & cat.alive
        if filters.category:
            mask &= cat.in_category(filters.category)
        if filters.brands:
            mask &= np.isin(cat.brand, list(filters.brands))
        if filters.price_min is not None:
            mask &= cat.price >= filters.price_min
        if filters.price_max is not None:
            mask &= cat.price <= filters.price_max
        if filters.in_stock is not None and "in_stock" in cat.frame.columns:
            stock = cat.frame["in_stock"].fillna(True).to_numpy(dtype=bool)
            mask &= stock == filters.in_stock
        full[~mask] = -np.inf
        res = top_k(full, _FALLBACK_CANDIDATES)
        ids = res.ids[np.isfinite(res.scores)]
        if sort == "price_asc":
            ids = ids[np.argsort(np.nan_to_num(cat.price[ids], nan=np.inf), kind="stable")]
        elif sort == "price_desc":
            ids = ids[np.argsort(-np.nan_to_num(cat.price[ids], nan=-np.inf), kind="stable")]
        elif sort == "newest" and "created_at" in cat.frame.columns:
            created = pd.to_datetime(cat.frame["created_at"]).to_numpy()[ids]
            ids = ids[np.argsort(created, kind="stable")[::-1]]
        start = (page - 1) * per_page
        chosen = ids[start : start + per_page]
        items = [cat.describe(int(i), full[i], "search") for i in chosen]
        out_facets: dict[str, list[dict[str, Any]]] = {}
        for name in facets:
            if name == "price":
                values = [_price_band(p) for p in cat.price[ids] if np.isfinite(p)]
            else:
                column = cat.category if name == "category" else cat.brand
                values = [str(v) for v in column[ids] if v]
            counts = pd.Series(values, dtype=object).value_counts()
            out_facets[name] = [
                {"value": str(v), "count": int(n)} for v, n in counts.head(20).items()
            ]
        return SearchResult(items=items, total=len(ids), facets=out_facets)

    def autocomplete(self, prefix: str, k: int = 10) -> list[str]:
        """Completions of `prefix`."""
        if self.service is not None:
            return [str(_get(s, "text", s)) for s in self.service.autocomplete(prefix, k)]
        words = _WORD.findall(prefix.lower())
        if not words:
            return []
        if self._terms is None:
            titles = [t for t in self.engine.catalog.title if isinstance(t, str)]
            self._terms = sorted({w for t in titles for w in _WORD.findall(t.lower())})
        last = words[-1]
        head = " ".join(words[:-1])
        start = bisect.bisect_left(self._terms, last)
        out: list[str] = []
        for term in self._terms[start:]:
            if not term.startswith(last) or len(out) >= k:
                break
            out.append(f"{head} {term}".strip())
        return out

    # -- catalogue and users ---------------------------------------------------------------------
    def upsert_items(self, items: pd.DataFrame) -> None:
        """Index new or changed items (the service does; the fallback index is the bundle's)."""
        self._terms = None
        if self.service is not None:
            self.service.upsert_items(items)

    def delete_items(self, item_ids: list[str]) -> None:
        """Stop finding these items (ids the index does not hold are skipped)."""
        if self.service is None or not item_ids:
            return
        known = [i for i in item_ids if i in getattr(self.service, "id_to_row", {})]
        if known:
            try:
                self.service.delete_items(known)
            except ShelfwiseError as exc:  # already gone
                log.debug("search delete skipped: %s", exc)

    def record_queries(self, queries: list[str]) -> None:
        """Feed searches users made into autocomplete."""
        record = getattr(self.service, "record_queries", None)
        if callable(record) and queries:
            record(queries)

    def forget_user(self, user_id: str) -> None:
        """Drop anything the search service keeps about a user."""
        forget = getattr(self.service, "forget_user", None)
        if callable(forget):
            forget(user_id)


def _enable_dense(service: Any, engine: Engine, search_mode: str) -> str | None:
    """Switch dense retrieval on and make `search_mode` the service's default; the error
    (logged) when it cannot be, None when it is on."""
    t0 = time.perf_counter()
    try:
        service.enable_dense()
        service.config = service.config.model_copy(update={"mode": search_mode})
    except Exception as exc:  # search must degrade, not take the API down
        log.warning("dense retrieval unavailable (%s); search stays lexical", exc)
        return f"{type(exc).__name__}: {exc}"
    reranker = engine.bundle.search_reranker
    if reranker is not None and not getattr(reranker, "uses_dense", False):
        log.warning(
            "the bundle's search re-ranker was trained without dense features; rebuild the "
            "bundle with SHELFWISE_SEARCH_MODE=%s (shelfwise build --rebuild) to train it "
            "with them",
            search_mode,
        )
    log.info("dense retrieval on (%s search) in %.1fs", search_mode, time.perf_counter() - t0)
    return None


def _build_service(factory: Any, engine: Engine) -> Any | None:
    """Build a SearchService from the live catalog and the store's events; None (and a
    warning) if that fails, so the API still serves with the bundle's index."""
    cat = engine.catalog
    try:
        events = engine.store.events()
        service = factory.build(cat.frame[cat.alive].reset_index(drop=True), events)
        # the bundle's learned re-ranker orders the top candidates with the shopper's
        # category / brand / price-band affinities (from the history each request carries)
        service.reranker = engine.bundle.search_reranker
        return service
    except Exception as exc:  # search must degrade, not take the API down
        log.warning("search service unavailable (%s); using the bundle's BM25 index", exc)
        return None
