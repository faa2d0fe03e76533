"""GET /v1/search and GET /v1/autocomplete (scope: read)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shelfwise.search.filters import Filters, Sort
from shelfwise.search.modes import SearchMode
from shelfwise.search.service import SearchResponse
from shelfwise.serve.deps import ReadDep, Services, ServicesDep, answer
from shelfwise.serve.measure import experiments_of, served
from shelfwise.serve.schemas import AutocompleteOut, SearchOut
from shelfwise.serve.search import SearchCache, search_answer

router = APIRouter(prefix="/v1", tags=["search"])

Text = Annotated[str, Query(min_length=1, max_length=200)]


@router.get("/search", response_model=SearchOut)
async def search(
    services: ServicesDep,
    _: ReadDep,
    q: Annotated[
        str, Query(max_length=500, description="the query; empty browses by popularity")
    ] = "",
    category: Annotated[
        str | None, Query(max_length=1000, description="only this category path and below")
    ] = None,
    brand: Annotated[
        list[str] | None, Query(max_length=50, description="only these brands (repeatable)")
    ] = None,
    price_min: Annotated[float | None, Query(ge=0, le=1e12)] = None,
    price_max: Annotated[float | None, Query(ge=0, le=1e12)] = None,
    in_stock: bool | None = None,
    facets: Annotated[
        list[Literal["category", "brand", "price", "in_stock"]] | None,
        Query(max_length=4, description="facets to count over all matches (repeatable)"),
    ] = None,
    sort: Sort = "relevance",
    page: Annotated[int, Query(ge=1, le=1000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    k: Annotated[int | None, Query(ge=1, le=100, description="alias of per_page")] = None,
    user: Annotated[
        str | None, Query(min_length=1, max_length=256, description="personalise for this user")
    ] = None,
    mode: Annotated[
        SearchMode | None,
        Query(
            description="retrieval: lexical (BM25F), semantic (embeddings) or hybrid (both, "
            "fused); default: the server's SHELFWISE_SEARCH_MODE. Without dense retrieval "
            "on the server, semantic and hybrid answer lexically and say so in `notice`"
        ),
    ] = None,
    understand: Annotated[
        bool | None,
        Query(
            description="read price phrases ('under 50'), cheap words and brand / category "
            "mentions from the query (see `query_info`); false searches the words as typed "
            "(default true)"
        ),
    ] = None,
    correct: Annotated[
        bool,
        Query(
            description="correct words the catalogue does not know (see `query_info.corrected`); "
            "false searches them as typed ('search instead for')"
        ),
    ] = True,
) -> SearchOut:
    """Full-text product search with filters, facets, sorting and pages."""
    filters = Filters(
        category=category,
        brand=tuple(brand or ()),
        min_price=price_min,
        max_price=price_max,
        in_stock=in_stock,
    )
    reads = services.reads_store(user=user is not None, search=True)
    return await answer(
        reads,
        search_body,
        services,
        q,
        filters,
        sort,
        page,
        k or per_page,
        list(dict.fromkeys(facets or ())),
        user,
        mode,
        understand,
        correct,
    )


def search_body(
    services: Services,
    q: str,
    filters: Filters,
    sort: Sort,
    page: int,
    per_page: int,
    facets: list[str],
    user: str | None,
    mode: SearchMode | None,
    understand: bool | None,
    correct: bool,
) -> SearchOut:
    """The search route's work (in memory unless `Services.reads_store` says otherwise)."""
    service = services.search
    history, weights = None, None
    if user is not None:
        # engine and search share one catalogue numbering: the history goes as indices
        history, weights = services.engine.user_history(user)
    # a running experiment's variant fills the settings the request left open
    decision = experiments_of(services).decide(user, "search")
    settings = decision.variant.search_settings() if decision else {}
    exposed = not (decision and decision.overridden({"mode": mode, "understand": understand}))
    mode = mode if mode is not None else settings.get("mode")
    understand = understand if understand is not None else settings.get("understand", True)
    rerank = bool(settings.get("rerank", True))

    def compute() -> SearchResponse:
        return service.search(
            q,
            filters=filters,
            sort=sort,
            page=page,
            per_page=per_page,
            facets=facets,
            user=user,
            history=history,
            history_weights=weights,
            mode=mode,
            understand=understand,
            rerank=rerank,
            correct=correct,
        )

    if user is None:  # the same answer for everyone until the catalogue changes
        # Filters holds dicts (unhashable); its repr names every field's value
        flt = repr(filters)
        key = (q, flt, sort, page, per_page, tuple(facets), mode, understand, rerank, correct)
        res = search_cache(services).get(service, key, compute)
    else:
        res = compute()
    shaped = search_answer(service, res)
    request_id, shaped["items"] = served(
        services,
        "search",
        shaped["items"],
        [i["item_id"] for i in shaped["items"]],
        user,
        decision,
        exposed,
        query=q,
        n_results=res.total,
        policy=shaped["engine"],
        model_version=services.engine.model_version,
    )
    return SearchOut(query=q, page=page, per_page=per_page, request_id=request_id, **shaped)


def search_cache(services: Services) -> SearchCache:
    """The app's cache of non-personalised search answers (`serve.search_cache` entries),
    its counters exported at `/metrics` (`shelfwise_search_cache_{hits,misses}_total`,
    `shelfwise_search_cache_entries`)."""
    cache = services.extra.get("search_cache")
    if cache is None:
        made = SearchCache(services.settings.serve.search_cache)
        cache = services.extra.setdefault("search_cache", made)
        metrics = services.extra.get("metrics")
        if cache is made and metrics is not None:
            metrics.registry.register(_CacheCollector(made))
    assert isinstance(cache, SearchCache)
    return cache


class _CacheCollector(Collector):
    """The search cache's counters, read at scrape time."""

    def __init__(self, cache: SearchCache) -> None:
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        stats = self.cache.stats()
        for name in ("hits", "misses"):
            yield CounterMetricFamily(
                f"shelfwise_search_cache_{name}",
                f"Searches without a user answered {'from' if name == 'hits' else 'past'} "
                "the search cache.",
                value=float(stats[name]),
            )
        yield GaugeMetricFamily(
            "shelfwise_search_cache_entries",
            "Answers in the search cache.",
            value=float(stats["entries"]),
        )

    def describe(self) -> Iterator[Metric]:
        return self.collect()


@router.get("/autocomplete", response_model=AutocompleteOut)
async def autocomplete(
    services: ServicesDep,
    _: ReadDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="what was typed")],
    k: Annotated[int, Query(ge=1, le=20)] = 8,
) -> AutocompleteOut:
    """Query completions for a prefix."""
    return await answer(services.reads_store(search=True), autocomplete_body, services, q, k)


def autocomplete_body(services: Services, q: str, k: int) -> AutocompleteOut:
    """The autocomplete route's work (in memory once the search service is prepared)."""
    suggestions = services.search.autocomplete(q, k)
    return AutocompleteOut(prefix=q, suggestions=[s.text for s in suggestions])
