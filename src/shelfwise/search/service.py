"""`SearchService`: the product search facade (lexical retrieval, filters, facets, sorting,
autocomplete, live catalog updates, persistence) with hooks for dense retrieval, fusion and
a learned re-ranker.

Usage::

    service = SearchService.build(items, events, SearchConfig())
    res = service.search("wireles headphnes", filters=["brand=Sonic", "price=..100"],
                         sort="relevance", page=1, per_page=20)
    res.items        # [{"item_id", "title", "brand", "category", "price", "in_stock",
                     #   "score", "row"}, ...] for the page
    res.total        # how many items match (all pages)
    res.facets       # {"brand": [{"value", "count"}], "category": [...], "price": [...], ...}
    res.query_info   # {"corrected": {"wireles": "wireless", ...}, "expanded": {...}, ...}
    service.autocomplete("wirel", k=8)   # [Suggestion(text, kind, score), ...]
    service.upsert_items(frame); service.delete_items(["SKU-1"])   # searchable at once
    service.save(path); SearchService.load(path)                   # npz + JSON + parquet

API for the HTTP layer (`GET /v1/search`, `GET /v1/autocomplete`):

* `search(query, filters=None, sort="relevance", page=1, per_page=20, facets=DEFAULT_FACETS,
  user=None, history=None, history_weights=None, history_ids=None) -> SearchResponse`.
  `history` are service rows (`service.id_to_row`), not another component's indices;
  pass `history_ids` (item ids, newest first) to let the service map them. `filters` takes a
  `Filters`, a dict of its fields or `key=value` strings (see `search.filters`); an empty
  query browses the filtered catalog by popularity. Bad input raises `ConfigError` naming
  the argument: unknown sort (lists `SORTS`), unknown facet, `min_price > max_price`,
  `page < 1`, `per_page` outside 1..100. `SearchResponse.to_dict()` is the JSON body.
* `autocomplete(prefix, k=10) -> list[Suggestion]` (`Suggestion.to_dict()` for JSON);
  `record_queries([...])` counts live searches into the suggestions.
* `upsert_items(frame) -> {"inserted", "updated"}`, `delete_items(ids) -> int`.

The service is safe to share between threads: searches and updates take one lock (the
numpy work holds the GIL for most of a query anyway).

Hooks for semantic search and learning to rank (protocols in `search.base`): set
`service.dense` (a `Retriever`), `service.fusion` (a `Fusion`; without one, dense and
lexical lists are merged by reciprocal rank fusion) and `service.reranker` (a `Reranker`,
applied to the best `rerank_depth` candidates when sorting by relevance).
`service.enable_dense()` sets up the usual dense retriever: MiniLM embeddings of every item
(cached on disk per text, see `search.semantic.EmbeddingCache`) in a faiss index that
follows `upsert_items` / `delete_items`, fused with BM25F by RRF.

Search modes (`search(..., mode=)`, default `SearchConfig.mode`; `auto` is `hybrid` when a
dense retriever is set, else `lexical`):

* `lexical`: BM25F with typos, prefix and synonyms (the dense index, if any, still feeds
  the re-ranker's similarity features);
* `semantic`: the dense retriever's best `dense_depth` items only;
* `hybrid`: every lexical match plus the dense retriever's best `dense_depth`, ordered by
  the fusion of the two lists (RRF) before re-ranking.

Dense candidates obey the filters (the retriever gets the filter mask) and need a score of
at least `dense_min_similarity` (cosine for `DenseIndex`). Asking for `semantic` or
`hybrid` without a dense retriever answers with `lexical` and says so in
`query_info["notice"]`; `query_info["mode"]` is the mode that answered.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.data.frames import ITEM_COLUMNS
from shelfwise.data.weights import weighted_types
from shelfwise.errors import ConfigError, DataError, NotFittedError, UnknownIdError
from shelfwise.search.analysis import Analyzer
from shelfwise.search.autocomplete import Autocomplete, Suggestion, normalise_phrase
from shelfwise.search.base import Fusion, Reranker, Retriever, SearchContext, Updatable
from shelfwise.search.bm25 import BM25Config, BM25Index
from shelfwise.search.documents import item_documents, item_texts
from shelfwise.search.filters import (
    DEFAULT_FACETS,
    FilterIndex,
    Filters,
    check_sort,
    coerce_filters,
    page_slice,
)
from shelfwise.search.fusion import reciprocal_rank_fusion
from shelfwise.search.modes import SEARCH_MODES, SearchMode
from shelfwise.search.query import ParsedQuery, QueryOptions, QueryParser
from shelfwise.search.synonyms import Synonyms
from shelfwise.search.typo import TypoIndex
from shelfwise.types import Results

__all__ = ["SearchConfig", "SearchResponse", "SearchService"]

log = logging.getLogger(__name__)
_FORMAT = 1
_CHANGE_LOG = 4096
"""Catalogue changes remembered for `changes_since` (older readers rebuild their state)."""
_COMPARED = ("title", "brand", "category", "description", "price", "in_stock", "attributes")
"""The item columns `sync_catalog` compares to find changed rows."""


class SearchConfig(BaseModel):
    """Everything that shapes search; the defaults suit a typical shop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bm25: BM25Config = Field(default_factory=BM25Config)
    language: str = "english"
    stem: bool = True
    typo: bool = True
    typo_weights: tuple[float, float] = (0.7, 0.5)
    prefix: bool = True
    prefix_min_chars: int = Field(default=2, ge=1)
    prefix_expansions: int = Field(default=20, ge=0, le=500)
    prefix_weight: float = Field(default=0.8, gt=0.0, le=1.0)
    synonyms: list[str] = Field(default_factory=list)
    """Synonym rules in the file format (`a, b, c` or `a => b`), one per entry."""
    synonyms_file: str | None = None
    matching: Literal["all", "last", "any"] = "last"
    """`all`: every query word must match; `last`: like all, but drop words from the end
    while nothing matches (Meilisearch's default); `any`: any word (plain BM25). Words the
    catalog does not know at all (no exact, typo, prefix or synonym match) are ignored and
    reported in `query_info["unknown"]`."""
    mode: Literal["auto"] | SearchMode = "auto"
    """The default search mode (see the module doc); `auto`: hybrid with a dense retriever."""
    dense_depth: int = Field(default=100, ge=1, le=10_000)
    """How many items the dense retriever contributes (semantic and hybrid modes)."""
    dense_min_similarity: float = Field(default=0.25, ge=-1.0, le=1.0)
    """Dense candidates scoring below this (cosine for `DenseIndex`) are left out, so an
    unrelated query does not drag in the catalogue's nearest-but-unrelated items."""
    rerank_depth: int = Field(default=100, ge=1, le=10_000)
    popularity: dict[str, float] = Field(default_factory=weighted_types)
    popularity_half_life_days: float | None = Field(default=30.0, gt=0)
    autocomplete_min_query_count: int = Field(default=1, ge=1)

    def query_options(self) -> QueryOptions:
        """The parser's knobs."""
        return QueryOptions(
            typo=self.typo,
            typo_weights=self.typo_weights,
            prefix=self.prefix,
            prefix_min_chars=self.prefix_min_chars,
            prefix_expansions=self.prefix_expansions,
            prefix_weight=self.prefix_weight,
        )

    def load_synonyms(self) -> Synonyms:
        """The rules from `synonyms` plus `synonyms_file`."""
        syn = Synonyms.parse(self.synonyms, source="SearchConfig.synonyms")
        if self.synonyms_file:
            extra = Synonyms.from_file(Path(self.synonyms_file))
            syn.equivalent += extra.equivalent
            syn.one_way += extra.one_way
        return syn


@dataclass
class SearchResponse:
    """One page of results plus what the whole result set looks like."""

    items: list[dict[str, Any]]
    total: int
    facets: dict[str, list[dict[str, Any]]]
    query_info: dict[str, Any]
    page: int = 1
    per_page: int = 20
    sort: str = "relevance"
    rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False)
    """Row numbers of the page's items (for callers working with item indices)."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of a search answer."""
        return {
            "items": self.items,
            "total": self.total,
            "page": self.page,
            "per_page": self.per_page,
            "sort": self.sort,
            "facets": self.facets,
            "query_info": self.query_info,
        }


def _view_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The result fields of a canonical items frame as numpy arrays of their own
    (writable: `_update_view` writes changed rows into them)."""
    return {
        "item_id": frame["item_id"].astype(str).to_numpy(object, copy=True),
        "title": frame["title"].to_numpy(object, copy=True),
        "brand": frame["brand"].to_numpy(object, copy=True),
        "category": frame["category"].to_numpy(object, copy=True),
        "price": frame["price"].to_numpy(np.float64, na_value=np.nan, copy=True),
        "in_stock": frame["in_stock"].fillna(False).astype(bool).to_numpy(copy=True),
    }


def _canonical_items(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every canonical item column (defaults for missing ones), ids as str."""
    if "item_id" not in frame:
        raise DataError("items need an 'item_id' column")
    if "title" not in frame:
        raise DataError("items need a 'title' column")
    out = frame.copy()
    out["item_id"] = out["item_id"].astype(str).str.strip()
    if (out["item_id"] == "").any():
        raise DataError("item_id must not be empty")
    dup = out["item_id"][out["item_id"].duplicated()]
    if not dup.empty:
        raise DataError(f"item_id repeats within the frame: {sorted(set(dup))[:5]}")
    defaults: dict[str, Any] = {
        "description": "",
        "category": "",
        "brand": "",
        "price": np.nan,
        "currency": "USD",
        "in_stock": True,
        "attributes": "{}",
        "created_at": pd.Timestamp(datetime.now(UTC)).tz_localize(None),
    }
    for name, default in defaults.items():
        if name not in out:
            out[name] = default
    out["attributes"] = [
        v if isinstance(v, str) else json.dumps(v or {}, sort_keys=True, default=str)
        for v in out["attributes"].tolist()
    ]
    out["price"] = pd.to_numeric(out["price"], errors="coerce").astype("float64")
    ts = pd.to_datetime(out["created_at"], errors="coerce", utc=True)
    out["created_at"] = ts.dt.tz_localize(None).astype("datetime64[us]")
    out["in_stock"] = out["in_stock"].fillna(True).astype(bool)
    return out.loc[:, list(ITEM_COLUMNS)].reset_index(drop=True)


def event_popularity(
    events: pd.DataFrame | None,
    id_to_row: Mapping[str, int],
    n_rows: int,
    weights: Mapping[str, float],
    half_life_days: float | None,
) -> np.ndarray:
    """Weighted, time-decayed event counts per row (0 for items without events)."""
    out = np.zeros(n_rows, dtype=np.float64)
    if events is None or events.empty or "item_id" not in events:
        return out
    ev = events[events["item_id"].notna()]
    w = ev["type"].map(dict(weights)).fillna(0.0).to_numpy(np.float64)
    if half_life_days and "timestamp" in ev and len(ev):
        ts = pd.to_datetime(ev["timestamp"], errors="coerce", utc=True)
        age = (ts.max() - ts).dt.total_seconds().fillna(0.0).to_numpy() / 86_400.0
        w = w * np.power(0.5, age / half_life_days)
    rows = ev["item_id"].astype(str).map(id_to_row)
    ok = rows.notna().to_numpy() & (w > 0)
    np.add.at(out, rows[ok].astype(np.int64).to_numpy(), w[ok])
    return out


def past_queries(events: pd.DataFrame | None) -> Counter[str]:
    """How often each normalised query was searched."""
    if events is None or events.empty or "query" not in events:
        return Counter()
    q = events.loc[(events["type"] == "search") & events["query"].notna(), "query"]
    return Counter(normalise_phrase(str(v)) for v in q.tolist() if str(v).strip())


class SearchService:
    """Search over a catalog; see the module doc for the API."""

    def __init__(self, config: SearchConfig | None = None) -> None:
        self.config = config or SearchConfig()
        self.analyzer = Analyzer(stem=self.config.stem, language=self.config.language)
        self.index = BM25Index(self.config.bm25, self.analyzer)
        self.synonyms = self.config.load_synonyms()
        self.words = TypoIndex()
        self.filters = FilterIndex()
        self.suggestions = Autocomplete()
        self.items = pd.DataFrame(columns=list(ITEM_COLUMNS))
        self.popularity = np.zeros(0, dtype=np.float64)
        self.id_to_row: dict[str, int] = {}
        self.dense: Retriever | None = None
        self.fusion: Fusion | None = None
        self.reranker: Reranker | None = None
        self._parser: QueryParser | None = None
        self._view: dict[str, np.ndarray] | None = None
        self._lock = threading.RLock()
        self._built = False
        #: Bumped by every catalogue change (`upsert_items`, `delete_items`,
        #: `sync_catalog`); components caching per-item state compare it to theirs.
        self.revision = 0
        #: Seconds spent building (index, re-ranker), filled by `search.build`.
        self.timings: dict[str, float] = {}
        self._changes: deque[tuple[int, np.ndarray]] = deque(maxlen=_CHANGE_LOG)

    # -- building ------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        items: pd.DataFrame,
        events: pd.DataFrame | None = None,
        config: SearchConfig | None = None,
    ) -> SearchService:
        """Index a catalog (canonical item columns; `item_id` and `title` required) and
        learn popularity and past queries from `events` (canonical event columns)."""
        t0 = time.perf_counter()
        service = cls(config)
        frame = _canonical_items(items)
        if frame.empty:
            raise DataError("the catalog is empty: nothing to search")
        service.items = frame
        service.id_to_row = {i: r for r, i in enumerate(frame["item_id"].tolist())}
        service.index.index(item_documents(frame))
        untitled = np.flatnonzero(frame["title"].isna().to_numpy() | (frame["title"] == ""))
        if untitled.size:
            # placeholder rows (items seen in events but not in the catalog) are not served
            service.index.delete(untitled)
            service.index.merge()
        service.words = TypoIndex(dict(service.index.surface_count))
        service.words.prepare()
        service.filters = FilterIndex.build(frame)
        cfg = service.config
        service.popularity = event_popularity(
            events, service.id_to_row, len(frame), cfg.popularity, cfg.popularity_half_life_days
        )
        service.suggestions = service._build_suggestions(past_queries(events))
        service._built = True
        log.info(
            "search index: %d items, %d terms in %.2fs",
            len(frame),
            service.index.n_terms,
            time.perf_counter() - t0,
        )
        return service

    def _build_suggestions(self, queries: Counter[str]) -> Autocomplete:
        alive = self.index.alive
        frame = self.items
        pop = self.popularity
        titles = [t if ok else None for t, ok in zip(frame["title"].tolist(), alive, strict=True)]
        categories: dict[str, float] = {}
        for cat, p, ok in zip(frame["category"].tolist(), pop.tolist(), alive, strict=True):
            if ok and cat:
                categories[cat] = categories.get(cat, 0.0) + p + 1.0
        kept = {
            q: float(c)
            for q, c in queries.items()
            if c >= self.config.autocomplete_min_query_count and self._known_phrase(q)
        }
        return Autocomplete.build(titles, pop + 1e-3, categories, kept)

    def _known_phrase(self, text: str) -> bool:
        """Whether every word of `text` occurs in the catalog (no typos suggested)."""
        tokens = self.analyzer.tokens(text)
        return bool(tokens) and all(t in self.words for t in tokens)

    @property
    def parser(self) -> QueryParser:
        """The query parser (built on first use)."""
        if self._parser is None:
            self._parser = QueryParser(
                self.index, self.words, self.synonyms, self.config.query_options()
            )
        return self._parser

    def enable_dense(
        self,
        dense: Retriever | None = None,
        fusion: Fusion | None = None,
        cache_dir: Path | None = None,
    ) -> Retriever:
        """Switch on dense retrieval: `dense`, or a `DenseIndex` over every live item
        embedded through an `EmbeddingCache` in `cache_dir` (default
        `$SHELFWISE_CACHE_DIR/embeddings`), so only texts never embedded before are
        embedded (with progress logged); fused with BM25F by `fusion` (default RRF, k=60)."""
        self._check()
        built: np.ndarray | None = None
        if dense is None:
            from shelfwise.search.semantic import DenseIndex, EmbeddingCache

            with self._lock:
                rows = np.flatnonzero(self.index.alive)
                frame = self.items.iloc[rows]
            t0 = time.perf_counter()
            index = DenseIndex()
            index.cache = EmbeddingCache(cache_dir, encoder=index.encoder)
            vectors = index.embed(item_texts(frame), what="items")
            dense = index.index_vectors(vectors, rows)
            built = rows
            log.info(
                "dense index: %d items in %.2fs (%d embedded, %d from the cache)",
                rows.size,
                time.perf_counter() - t0,
                index.cache.encoded,
                index.cache.hits,
            )
        if fusion is None:
            from shelfwise.search.fusion import RRFFusion

            fusion = self.fusion or RRFFusion()
        with self._lock:
            if isinstance(dense, Updatable) and built is not None:
                # items added or deleted while the index was being embedded
                now = np.flatnonzero(self.index.alive)
                added = np.setdiff1d(now, built)
                if added.size:
                    dense.upsert(added, self.items.iloc[added])
                gone = np.setdiff1d(built, now)
                if gone.size:
                    dense.delete(gone)
            self.dense = dense
            self.fusion = fusion
        return dense

    def _check(self) -> None:
        if not self._built:
            raise NotFittedError("SearchService.build() or load() must be called first")

    @property
    def n_items(self) -> int:
        """Live items."""
        return self.index.n_alive

    @property
    def alive(self) -> np.ndarray:
        """Boolean mask of live rows."""
        return self.index.alive

    # -- searching -----------------------------------------------------------------------

    def parse(self, query: str) -> ParsedQuery:
        """How the service reads `query` (groups, corrections, expansions, synonyms)."""
        self._check()
        return self.parser.parse(query)

    def lexical_scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` with typos, prefix and synonyms applied."""
        return self.index.score_groups(self.parse(query).groups)

    def field_scores(self, query: str, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Per-field BM25 of `rows` for `query` (exact terms): field -> float32 array."""
        self._check()
        terms = self.index.query_terms(query)
        scores = self.index.field_scores(terms, rows)
        return {f: scores[:, j] for j, f in enumerate(self.index.fields)}

    def search(
        self,
        query: str,
        filters: Filters | Mapping[str, Any] | Sequence[str] | None = None,
        sort: str = "relevance",
        page: int = 1,
        per_page: int = 20,
        facets: Iterable[str] = DEFAULT_FACETS,
        user: str | None = None,
        history: np.ndarray | None = None,
        history_weights: np.ndarray | None = None,
        history_ids: Sequence[str] | None = None,
        mode: str | None = None,
    ) -> SearchResponse:
        """One page of results for `query` under `filters`, sorted by `sort`.

        The user's history (for a re-ranker) is given either as service rows (`history`)
        or as item ids (`history_ids`, newest first; ids the service does not hold are
        skipped), with optional `history_weights` aligned to it. `mode` picks the
        retrieval (lexical, semantic, hybrid; None: `SearchConfig.mode`).
        """
        self._check()
        with self._lock:
            return self._search(
                query,
                filters,
                sort,
                page,
                per_page,
                facets,
                user,
                history,
                history_weights,
                history_ids,
                mode,
            )

    def resolve_mode(self, mode: str | None = None) -> tuple[str, str | None]:
        """(the mode that answers, a notice when it is not the one asked for)."""
        wanted = self.config.mode if mode is None else mode
        if wanted == "auto":
            return ("hybrid" if self.dense is not None else "lexical"), None
        if wanted not in SEARCH_MODES:
            raise ConfigError(f"unknown mode {wanted!r}; choose one of {', '.join(SEARCH_MODES)}")
        if wanted != "lexical" and self.dense is None:
            return "lexical", (
                f"{wanted} search needs dense retrieval, which is not enabled here "
                "(SHELFWISE_SEARCH_MODE=hybrid turns it on); answered with lexical search"
            )
        return wanted, None

    def _search(
        self,
        query: str,
        filters: Filters | Mapping[str, Any] | Sequence[str] | None,
        sort: str,
        page: int,
        per_page: int,
        facets: Iterable[str],
        user: str | None,
        history: np.ndarray | None,
        history_weights: np.ndarray | None,
        history_ids: Sequence[str] | None,
        mode: str | None = None,
    ) -> SearchResponse:
        if history is None and history_ids is not None:
            history, history_weights = self._history_rows(history_ids, history_weights)
        elif history is not None:
            history, history_weights = self._live_history(history, history_weights)
        t0 = time.perf_counter()
        check_sort(sort)
        facet_names = self.filters.check_facets(list(facets))
        flt = coerce_filters(filters)
        page_slice(0, page, per_page)  # validates page and per_page before any work
        if not isinstance(query, str):
            raise ConfigError(f"query must be a string, got {type(query).__name__}")
        used, notice = self.resolve_mode(mode)
        allowed = self.index.alive
        fmask = self.filters.mask(flt)
        if fmask is not None:
            allowed &= fmask
        info: dict[str, Any] = {"query": query, "filters": flt.describe()}
        if notice:
            info["notice"] = notice
        scores_by_row: dict[int, float] | None = None
        if not query.strip():
            rows = np.flatnonzero(allowed)
            relevance = self.popularity[rows].astype(np.float32)
            info["mode"] = "browse"
        elif used == "semantic":
            info["mode"] = used
            rows, relevance = self._dense_candidates(query, allowed)
            order = np.lexsort((rows, -relevance))
            rows, relevance = rows[order], relevance[order]
            info["retrievers"] = ["dense"]
        else:
            info["mode"] = used
            parsed = self.parser.parse(query)
            info.update(parsed.info())
            rows, relevance, dropped = self._lexical(parsed, allowed)
            info["matching"] = self.config.matching
            info["dropped"] = dropped
            retrievers = ["bm25"]
            if used == "hybrid":
                rows, relevance = self._with_dense(query, rows, relevance, allowed)
                retrievers.append("dense")
            info["retrievers"] = retrievers
        if query.strip() and self.reranker is not None and sort == "relevance" and rows.size:
            rows, relevance, scores_by_row = self._rerank(
                query, rows, relevance, user, history, history_weights
            )
            info["reranked"] = True
        ordered = self.filters.order(rows, relevance, sort, self.popularity)
        score_of = dict(zip(rows.tolist(), relevance.tolist(), strict=True))
        if scores_by_row:
            score_of.update(scores_by_row)
        window = ordered[page_slice(ordered.size, page, per_page)]
        info["took_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
        return SearchResponse(
            items=self.describe(window, [score_of[r] for r in window.tolist()]),
            total=int(ordered.size),
            facets=self.filters.facets(ordered, facet_names) if facet_names else {},
            query_info=info,
            page=page,
            per_page=per_page,
            sort=sort,
            rows=window,
        )

    def _history_rows(
        self, ids: Sequence[str], weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        alive = self.index.alive
        rows = np.asarray([self.id_to_row.get(str(i), -1) for i in ids], dtype=np.int64)
        ok = rows >= 0
        ok[ok] = alive[rows[ok]]
        w = np.ones(rows.size, np.float32) if weights is None else np.asarray(weights, np.float32)
        if w.shape != rows.shape:
            raise ConfigError(f"history_weights has {w.size} values for {rows.size} history ids")
        return rows[ok], w[ok]

    def _live_history(
        self, rows: np.ndarray, weights: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """History rows that are live items (others skipped), with their weights."""
        rows = np.asarray(rows, dtype=np.int64).ravel()
        w = np.ones(rows.size, np.float32) if weights is None else np.asarray(weights, np.float32)
        if w.shape != rows.shape:
            raise ConfigError(f"history_weights has {w.size} values for {rows.size} history rows")
        alive = self.index.alive
        ok = (rows >= 0) & (rows < alive.size)
        ok[ok] = alive[rows[ok]]
        return rows[ok], w[ok]

    def _lexical(
        self, parsed: ParsedQuery, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        scores, masks = self.index.score_and_match(
            parsed.groups, masks=self.config.matching != "any"
        )
        match = allowed & (scores > 0)
        dropped: list[str] = []
        if masks:
            need = np.logical_and.reduce(masks)
            cand = match & need
            keep = len(masks)
            while self.config.matching == "last" and keep > 1 and not cand.any():
                keep -= 1
                dropped.insert(0, parsed.labels[keep])
                cand = match & np.logical_and.reduce(masks[:keep])
            match = cand
        rows = np.flatnonzero(match)
        return rows, scores[rows], dropped

    def _dense_candidates(self, query: str, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The dense retriever's best rows among `allowed`, at least `dense_min_similarity`,
        best first."""
        assert self.dense is not None
        res = self.dense.retrieve(query, self.config.dense_depth, allowed)
        ids = np.asarray(res.ids, dtype=np.int64).ravel()
        scores = np.asarray(res.scores, dtype=np.float32).ravel()
        keep = (ids >= 0) & (ids < allowed.size) & np.isfinite(scores)
        keep &= scores >= self.config.dense_min_similarity
        keep[keep] = allowed[ids[keep]]
        return ids[keep], scores[keep]

    def _with_dense(
        self, query: str, rows: np.ndarray, relevance: np.ndarray, allowed: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lexical matches plus the dense retriever's best, ordered by the fused score."""
        d_ids, d_scores = self._dense_candidates(query, allowed)
        order = np.lexsort((rows, -relevance))
        lexical = Results(rows[order], relevance[order].astype(np.float32))
        dense = Results(d_ids, d_scores)
        union = np.union1d(rows, d_ids)
        depth = int(union.size)
        if self.fusion is not None:
            fused = self.fusion.fuse([lexical, dense], depth)
        else:
            fused = reciprocal_rank_fusion([lexical, dense], limit=depth)
        fused_ids = fused.ids[fused.ids >= 0].astype(np.int64)
        fused_scores = fused.scores[: fused_ids.size].astype(np.float32)
        rest = np.setdiff1d(union, fused_ids)
        floor = float(fused_scores.min()) if fused_scores.size else 0.0
        out_rows = np.concatenate([fused_ids, rest])
        rest_scores = np.full(rest.size, floor - 1.0, np.float32)
        return out_rows, np.concatenate([fused_scores, rest_scores])

    def _rerank(
        self,
        query: str,
        rows: np.ndarray,
        relevance: np.ndarray,
        user: str | None,
        history: np.ndarray | None,
        history_weights: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, dict[int, float]]:
        """Re-order the best `rerank_depth` rows; the rest keep their order below them."""
        assert self.reranker is not None
        order = np.lexsort((rows, -self.popularity[rows], -relevance))
        rows, relevance = rows[order], relevance[order]
        depth = min(self.config.rerank_depth, rows.size)
        hist = np.asarray(history if history is not None else [], dtype=np.int64)
        hw = np.asarray(
            history_weights if history_weights is not None else np.ones(hist.size), np.float32
        )
        context = SearchContext(query, self, user, hist, hw)
        top = Results(rows[:depth], relevance[:depth].astype(np.float32))
        ranked = self.reranker.rerank(top, context)
        r_ids = ranked.ids[ranked.ids >= 0].astype(np.int64)
        missing = np.setdiff1d(rows[:depth], r_ids, assume_unique=False)
        head = np.concatenate([r_ids, rows[:depth][np.isin(rows[:depth], missing)]])
        new_rows = np.concatenate([head, rows[depth:]])
        # relevance becomes the new rank so that sorting keeps the re-ranked order
        new_rel = -np.arange(new_rows.size, dtype=np.float32)
        r_scores = ranked.scores[ranked.ids >= 0].tolist()
        scores = {int(r): float(s) for r, s in zip(r_ids.tolist(), r_scores, strict=True)}
        return new_rows, new_rel, scores

    def _columns(self) -> dict[str, np.ndarray]:
        """The result fields as numpy arrays (built once, then updated row by row)."""
        if self._view is None:
            self._view = _view_of(self.items)
        return self._view

    def _update_view(self, rows: np.ndarray, new: pd.DataFrame) -> None:
        """Write the changed rows into the result arrays (grown for appended rows), so a
        write does not make the next search convert every column again."""
        view = self._view
        if view is None:
            return
        part = _view_of(new)
        n = len(self.items)
        for name, arr in view.items():
            if arr.size < n:
                grown = np.empty(n, dtype=arr.dtype)
                grown[: arr.size] = arr
                arr = view[name] = grown
            arr[rows] = part[name]

    def describe(self, rows: np.ndarray, scores: Sequence[float]) -> list[dict[str, Any]]:
        """Result dicts for rows: item_id, title, brand, category, price, in_stock, score."""
        cols = self._columns()
        out = []
        for row, score in zip(np.asarray(rows).tolist(), scores, strict=True):
            price = float(cols["price"][row])
            out.append(
                {
                    "item_id": str(cols["item_id"][row]),
                    "title": cols["title"][row],
                    "brand": cols["brand"][row] or None,
                    "category": cols["category"][row] or None,
                    "price": None if price != price else price,
                    "in_stock": bool(cols["in_stock"][row]),
                    "score": round(float(score), 6),
                    "row": int(row),
                }
            )
        return out

    def autocomplete(self, prefix: str, k: int = 10) -> list[Suggestion]:
        """Suggestions for a partly typed query (see `search.autocomplete`)."""
        self._check()
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100:
            raise ConfigError(f"k must be an integer from 1 to 100, got {k!r}")
        with self._lock:
            return self.suggestions.suggest(prefix, k)

    def record_queries(self, queries: Iterable[str]) -> None:
        """Count searches into autocomplete popularity (queries with unknown words are
        skipped, so typos are never suggested)."""
        self._check()
        with self._lock:
            self.suggestions.add_queries(q for q in queries if self._known_phrase(q))

    # -- live updates --------------------------------------------------------------------

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Rows of live items; `UnknownIdError` lists ids that are not in the catalog."""
        ids = [str(i) for i in ids]
        rows = [self.id_to_row.get(i, -1) for i in ids]
        alive = self.index.alive
        bad = [i for i, r in zip(ids, rows, strict=True) if r < 0 or not alive[r]]
        if bad:
            raise UnknownIdError(f"item ids not in the catalog: {bad[:10]}")
        return np.asarray(rows, dtype=np.int64)

    def upsert_items(self, frame: pd.DataFrame) -> dict[str, int]:
        """Add new items and replace existing ones; searchable when this returns."""
        self._check()
        with self._lock:
            return self._upsert(frame)

    def _upsert(self, frame: pd.DataFrame) -> dict[str, int]:
        new = _canonical_items(frame)
        if new.empty:
            return {"inserted": 0, "updated": 0}
        rows = []
        next_row = len(self.items)
        inserted = 0
        alive = self.index.alive
        old_titles: list[str] = []
        for item_id in new["item_id"].tolist():
            row = self.id_to_row.get(item_id)
            if row is None:
                row = next_row
                next_row += 1
            if row < len(alive) and alive[row]:
                old_titles.append(str(self.items.at[row, "title"] or ""))
            else:
                inserted += 1
            rows.append(row)
        rows_arr = np.asarray(rows, dtype=np.int64)
        updated = len(new) - inserted
        self.index.upsert(rows_arr, item_documents(new))  # validates, then applies
        appended = rows_arr >= len(self.items)
        if appended.any():
            self.items = pd.concat(
                [self.items, new[appended].set_axis(rows_arr[appended])], axis=0
            ).sort_index()
            self.popularity = np.concatenate([self.popularity, np.zeros(int(appended.sum()))])
        if (~appended).any():
            old = rows_arr[~appended]
            self.items.loc[old, list(ITEM_COLUMNS)] = new[~appended].to_numpy()
        self._update_view(rows_arr, new)
        for item_id, row in zip(new["item_id"].tolist(), rows, strict=True):
            self.id_to_row[item_id] = row
        self.filters.set_rows(rows_arr, new)
        words = Counter(
            tok
            for texts in item_documents(new).values()
            for text in texts
            for tok in self.analyzer.tokens(text)
        )
        self.words.add(dict(words))
        for title in old_titles:
            self.suggestions.remove(title, "title")
        for title, cat in zip(new["title"].tolist(), new["category"].tolist(), strict=True):
            if not isinstance(title, str) or not title:
                continue  # an untitled row is dead: nothing to suggest
            self.suggestions.add(title, "title", 1e-3)
            if isinstance(cat, str) and cat:
                self.suggestions.add(cat, "category", 1.0)
        if isinstance(self.dense, Updatable):
            self.dense.upsert(rows_arr, new)
        titles = new["title"].to_numpy(dtype=object)
        untitled = rows_arr[pd.isna(titles) | (titles == "")]
        if untitled.size:  # like a placeholder row at build: kept as a dead row
            self.index.delete(untitled)
            if isinstance(self.dense, Updatable):
                self.dense.delete(untitled)
        self._changed(rows_arr)
        return {"inserted": inserted, "updated": updated}

    def delete_items(self, ids: Iterable[str]) -> int:
        """Remove items (all or nothing); returns how many were removed."""
        self._check()
        with self._lock:
            return self._delete(ids)

    def _delete(self, ids: Iterable[str]) -> int:
        rows = self.rows_of(ids)
        if rows.size == 0:
            return 0
        rows = np.unique(rows)
        self.index.delete(rows)
        for title in self.items["title"].to_numpy(object)[rows].tolist():
            if title:
                self.suggestions.remove(str(title), "title")
        if isinstance(self.dense, Updatable):
            self.dense.delete(rows)
        self._changed(rows)
        return int(rows.size)

    def _changed(self, rows: np.ndarray) -> None:
        self.revision += 1
        self._changes.append((self.revision, np.asarray(rows, dtype=np.int64).copy()))

    def changes_since(self, revision: int) -> np.ndarray | None:
        """Rows changed (upserted, appended or deleted) after `revision`, sorted; None when
        the change log no longer reaches back that far (rebuild from `items` then)."""
        with self._lock:
            if revision == self.revision:
                return np.empty(0, np.int64)
            if revision > self.revision or not self._changes:
                return None
            if self._changes[0][0] > revision + 1:
                return None
            parts = [rows for rev, rows in self._changes if rev > revision]
            return np.unique(np.concatenate(parts))

    def sync_catalog(
        self,
        frame: pd.DataFrame,
        alive: np.ndarray | None = None,
        rows: np.ndarray | None = None,
    ) -> dict[str, int]:
        """Bring the service in step with `frame`, a live catalogue whose row i is item
        index i (the service's items in the same order, plus rows appended since): rows
        past the service's end are appended, rows whose fields differ are re-indexed, rows
        that `alive` (default: all) marks dead or that have no title become dead rows.
        With `rows`, only those rows (and the appended ones) are looked at, so following
        one change costs that change, not the catalogue. Returns `{"upserted", "deleted"}`.

        `DataError` when the catalogue is shorter than the service or names other items
        at the rows looked at (a catalogue numbered differently: build the service from
        it instead)."""
        self._check()
        with self._lock:
            return self._sync(frame, alive, rows)

    def _sync(
        self, frame: pd.DataFrame, alive: np.ndarray | None, rows: np.ndarray | None
    ) -> dict[str, int]:
        n, m = len(self.items), len(frame)
        if alive is not None and len(alive) != m:
            raise DataError(f"alive has {len(alive)} entries for {m} catalogue rows")
        if m < n or "item_id" not in frame:
            raise DataError(
                f"the catalogue has {m} rows, the search service {n}: build the search "
                "service from this catalogue"
            )
        if rows is None:
            check = np.arange(m, dtype=np.int64)
        else:
            wanted = np.asarray(rows, dtype=np.int64).ravel()
            wanted = wanted[(wanted >= 0) & (wanted < n)]
            check = np.union1d(wanted, np.arange(n, m, dtype=np.int64))
        old = check[check < n]  # sorted: the old rows come first
        sub = frame.iloc[check]
        ids = sub["item_id"].astype(str).to_numpy(dtype=object)
        ours_ids = self.items["item_id"].astype(str).to_numpy(dtype=object)[old]
        if not np.array_equal(ids[: old.size], ours_ids):
            raise DataError(
                "the catalogue names other items than the search service at the same rows; "
                "build the search service from this catalogue"
            )
        titles = sub["title"].to_numpy(dtype=object)
        live = ~np.asarray(pd.isna(titles) | (titles == ""), dtype=bool)
        if alive is not None:
            live &= np.asarray(alive, dtype=bool)[check]
        canon = _canonical_items(sub)
        differs = check >= n
        for column in _COMPARED:
            if column not in sub:
                continue
            a = canon[column].iloc[: old.size].reset_index(drop=True)
            b = self.items[column].iloc[old].reset_index(drop=True)
            same = (a == b).to_numpy(dtype=bool) | (a.isna() & b.isna()).to_numpy(dtype=bool)
            differs[: old.size] |= ~same
        ours = np.zeros(check.size, dtype=bool)
        ours[: old.size] = self.index.alive[old]
        todo = ((differs | ~ours) & live) | (check >= n)
        if todo.any():
            self._upsert(canon[todo])
        ours[:] = self.index.alive[check]
        gone = check[ours & ~live]
        if gone.size:
            self._delete(self.items["item_id"].to_numpy(dtype=object)[gone].tolist())
        return {"upserted": int(todo.sum()), "deleted": int(gone.size)}

    # -- persistence ---------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write the service (parquet + npz + JSON; no pickle) into `directory`."""
        self._check()
        with self._lock:
            self._save(Path(directory))

    def _save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.index.save(directory / "bm25")
        self.items.reset_index(drop=True).to_parquet(directory / "items.parquet", index=False)
        np.savez(directory / "state.npz", popularity=self.popularity)
        (directory / "autocomplete.json").write_text(
            json.dumps(self.suggestions.to_dict(), ensure_ascii=False)
        )
        components: dict[str, str] = {}
        for name in ("dense", "fusion", "reranker"):
            obj = getattr(self, name)
            if obj is not None and hasattr(obj, "save") and hasattr(type(obj), "load"):
                obj.save(directory / name)
                components[name] = f"{type(obj).__module__}:{type(obj).__qualname__}"
        meta = {
            "format": _FORMAT,
            "config": self.config.model_dump(mode="json"),
            "synonyms": self.synonyms.to_dict(),
            "components": components,
        }
        (directory / "service.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> SearchService:
        """Read a service written by `save` (components are re-created by their class)."""
        directory = Path(directory)
        meta_path = directory / "service.json"
        if not meta_path.exists():
            raise NotFittedError(f"no search service in {directory} (service.json is missing)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT:
            raise ConfigError(f"{meta_path}: format {meta.get('format')} != {_FORMAT}; rebuild")
        config = SearchConfig(**meta["config"]).model_copy(update={"synonyms_file": None})
        service = cls(config)
        service.synonyms = Synonyms.from_dict(meta.get("synonyms", {}))
        service.index = BM25Index.load(directory / "bm25")
        service.analyzer = service.index.analyzer
        service.items = pd.read_parquet(directory / "items.parquet")
        service.id_to_row = {i: r for r, i in enumerate(service.items["item_id"].tolist())}
        with np.load(directory / "state.npz", allow_pickle=False) as state:
            service.popularity = state["popularity"].astype(np.float64)
        service.words = TypoIndex(dict(service.index.surface_count))
        service.filters = FilterIndex.build(service.items)
        service.suggestions = Autocomplete.from_dict(
            json.loads((directory / "autocomplete.json").read_text())
        )
        for name, path in meta.get("components", {}).items():
            module, _, qualname = path.partition(":")
            if not module.startswith("shelfwise."):
                raise ConfigError(f"{meta_path}: component {name} comes from {module}")
            cls_obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                cls_obj = getattr(cls_obj, part)
            setattr(service, name, cls_obj.load(directory / name))
        service._built = True
        return service
