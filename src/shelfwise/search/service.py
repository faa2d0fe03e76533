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
(title + brand, cached on disk per text, see `search.semantic.EmbeddingCache`) in a faiss
index that follows `upsert_items` / `delete_items`, fused with BM25F as `SearchConfig.
fusion` says (`search.fusion.hybrid_fusion`).

Search modes (`search(..., mode=)`, default `SearchConfig.mode`; `auto` is `hybrid` when a
dense retriever is set, else `lexical`):

* `lexical`: BM25F with typos, prefix and synonyms (the dense index, if any, still feeds
  the re-ranker's similarity features);
* `semantic`: the dense retriever's best `dense_depth` items only;
* `hybrid`: every lexical match plus the dense retriever's best `dense_depth`; the best
  `fusion_depth` lexical matches and the dense candidates ordered by `hybrid_fusion`
  (`fusion`: convex score fusion or weighted RRF, the dense share `fusion_weight`; a
  lexically confident query, `dense_confident_matches` products holding every word, gets
  `fusion_weight * dense_confident_weight`), the rest after them, before re-ranking. The
  dense side embeds the query with the typo corrections applied; `query_info["fusion"]`
  says what was done.

Dense candidates obey the filters (the retriever gets the filter mask) and need a score of
at least `dense_min_similarity` (cosine for `DenseIndex`). Asking for `semantic` or
`hybrid` without a dense retriever answers with `lexical` and says so in
`query_info["notice"]`; `query_info["mode"]` is the mode that answered.

The service's parts live beside it, and their public names are importable from here too:
`search.config` (`SearchConfig`, `SearchResponse`), `search.catalog` (the catalogue state:
canonical items, `event_popularity`, `past_queries`, the change log behind `revision` and
`changes_since`, and the work of `upsert_items`, `delete_items` and `sync_catalog`) and
`search.persistence` (`save` / `load`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.data.frames import ITEM_COLUMNS
from shelfwise.data.names import CATEGORY_SEPARATOR
from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.search import catalog
from shelfwise.search.analysis import Analyzer
from shelfwise.search.autocomplete import Autocomplete, Suggestion
from shelfwise.search.base import Fusion, Reranker, Retriever, SearchContext, Updatable
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.catalog import (
    ChangeLog,
    canonical_items,
    event_popularity,
    past_queries,
    result_columns,
)
from shelfwise.search.config import SearchConfig, SearchResponse
from shelfwise.search.documents import item_documents, item_texts
from shelfwise.search.filters import (
    DEFAULT_FACETS,
    FilterIndex,
    Filters,
    check_sort,
    coerce_filters,
    page_slice,
    top_stable,
)
from shelfwise.search.fusion import hybrid_fusion
from shelfwise.search.modes import SEARCH_MODES
from shelfwise.search.persistence import load_service, save_service
from shelfwise.search.query import ParsedQuery, QueryParser
from shelfwise.search.topk import find_sorted
from shelfwise.search.typo import TypoIndex
from shelfwise.search.understanding import (
    ProductHeads,
    QueryUnderstanding,
    Understood,
    leaf_heads,
    product_heads,
)
from shelfwise.types import Results

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "SearchConfig",
    "SearchResponse",
    "SearchService",
    "event_popularity",
    "past_queries",
]

log = logging.getLogger(__name__)

TITLE_CHECK_DEPTH = 10
"""The best lexical matches whose titles are looked at for a query word."""
MATCHED_IN_DEPTH = 50
"""The best lexical matches whose fields `query_info["matched_in"]` counts."""
NAME_FIELDS = ("title", "brand", "category")
"""The fields that name a product; matching none of them is said in `notice`."""


class SearchService:
    """Search over a catalog; see the module doc for the API."""

    #: `should` matching scores only the rows a query word occurs in (False: the dense
    #: path over the whole catalogue, kept as the reference the sparse path must equal)
    sparse_should: bool = True

    def __init__(self, config: SearchConfig | None = None) -> None:
        self.config = config or SearchConfig()
        self.analyzer = Analyzer(stem=self.config.stem, language=self.config.language)
        self.index = BM25Index(self.config.bm25, self.analyzer)
        self.synonyms = self.config.load_synonyms()
        self.words = TypoIndex()
        self.filters = FilterIndex()
        self._suggestions: Autocomplete | None = Autocomplete()
        #: Makes the suggestions on first use when they are not in memory yet (a loaded
        #: service reads them only when autocomplete or a catalogue change needs them).
        self._suggestions_source: Callable[[], Autocomplete] | None = None
        #: The catalogue frame (`items`), or None until `_items_source` reads it: a loaded
        #: service answers queries from its result arrays and reads the frame (and imports
        #: pandas) only when a catalogue change, dense retrieval or a rebuild needs it.
        self._items: pd.DataFrame | None = None
        self._items_source: Callable[[], pd.DataFrame] | None = None
        self.popularity = np.zeros(0, dtype=np.float64)
        self.id_to_row: dict[str, int] = {}
        self.dense: Retriever | None = None
        self.fusion: Fusion | None = None
        self.reranker: Reranker | None = None
        self._parser: QueryParser | None = None
        self._literal_parser: QueryParser | None = None
        self._understanding: QueryUnderstanding | None = None
        self._view: dict[str, np.ndarray] | None = None
        self._titles: dict[int, tuple[str, list[str]]] = {}
        #: row -> (title, category, the product's head words), see `_head_hits`
        self._heads: dict[int, tuple[str, str, ProductHeads]] = {}
        self._nouns: tuple[int, frozenset[str]] = (-1, frozenset())
        #: (the index the ids are of, row -> (title, its term ids)), see `_title_ids`
        self._title_id_cache: tuple[BM25Index, dict[int, tuple[str, np.ndarray]]] | None = None
        self._lock = threading.RLock()
        self._built = False
        #: Seconds spent building (index, re-ranker), filled by `search.build`.
        self.timings: dict[str, float] = {}
        self.tuned: dict[str, Any] | None = None
        """The tuning report when the parameters were tuned at build (`search.build`)."""
        self._changes = ChangeLog()

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
        frame = canonical_items(items)
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

    @property
    def suggestions(self) -> Autocomplete:
        """The autocomplete suggestions (read from their source on first use)."""
        if self._suggestions is None:
            with self._lock:
                if self._suggestions is None:
                    source = self._suggestions_source
                    self._suggestions = source() if source is not None else Autocomplete()
                    self._suggestions_source = None
        return self._suggestions

    @suggestions.setter
    def suggestions(self, value: Autocomplete) -> None:
        self._suggestions = value
        self._suggestions_source = None

    @property
    def items(self) -> pd.DataFrame:
        """The catalogue in the canonical item columns, row i = index row i (read from its
        source on first use; an empty frame for a new service)."""
        if self._items is None:
            with self._lock:
                if self._items is None:
                    source = self._items_source
                    if source is None:
                        import pandas as pd

                        self._items = pd.DataFrame(columns=list(ITEM_COLUMNS))
                    else:
                        self._items = source()
                    self._items_source = None
        return self._items

    @items.setter
    def items(self, value: pd.DataFrame) -> None:
        with self._lock:
            self._items = value
            self._items_source = None

    def defer_items(self, source: Callable[[], pd.DataFrame]) -> None:
        """Read the catalogue frame with `source()` when it is first needed."""
        with self._lock:
            self._items = None
            self._items_source = source

    def defer_suggestions(self, source: Callable[[], Autocomplete]) -> None:
        """Make the suggestions with `source()` when they are first needed."""
        self._suggestions = None
        self._suggestions_source = source

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

    @property
    def literal_parser(self) -> QueryParser:
        """The query parser without typo corrections (a request's `correct=False`)."""
        if self._literal_parser is None:
            options = dataclasses.replace(self.config.query_options(), typo=False)
            self._literal_parser = QueryParser(self.index, self.words, self.synonyms, options)
        return self._literal_parser

    def enable_dense(
        self,
        dense: Retriever | None = None,
        fusion: Fusion | None = None,
        cache_dir: Path | None = None,
    ) -> Retriever:
        """Switch on dense retrieval: `dense`, or a `DenseIndex` over every live item
        embedded through an `EmbeddingCache` in `cache_dir` (default
        `$SHELFWISE_CACHE_DIR/embeddings`), so only texts never embedded before are
        embedded (with progress logged); fused with BM25F by `fusion` (default: none, so
        `SearchConfig.fusion` and `fusion_weight` decide)."""
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
            fusion = self.fusion  # None: `SearchConfig.fusion` decides
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

    def with_config(self, config: SearchConfig, index: BM25Index | None = None) -> SearchService:
        """A service over the same catalogue answering with `config` (tuned ranking
        parameters, say): items, filters, popularity, suggestions and the dense retriever,
        fusion and re-ranker are shared. The BM25F index is rebuilt from the items when
        `config.bm25` differs from this service's (k1, b and field weights are baked into
        its scores), unless `index` gives one built with `config.bm25` over the same rows.
        Analysis settings (`language`, `stem`) and synonyms stay this service's."""
        self._check()
        if config.language != self.config.language or config.stem != self.config.stem:
            raise ConfigError(
                "with_config: language and stem change the analysis; build a new service"
            )
        with self._lock:
            if index is None:
                if config.bm25 == self.config.bm25:
                    index = self.index
                else:
                    index = BM25Index(config.bm25, self.analyzer).index(item_documents(self.items))
                    dead = np.flatnonzero(~self.index.alive)
                    if dead.size:
                        index.delete(dead)
                        index.merge()
            elif index.n_docs != self.index.n_docs:
                raise ConfigError(
                    f"with_config: the index holds {index.n_docs} rows, the service "
                    f"{self.index.n_docs}"
                )
            out = type(self)(config)
            out.analyzer = self.analyzer
            out.index = index
            out.synonyms = self.synonyms
            out.words = self.words
            out.filters = self.filters
            out.suggestions = self.suggestions
            with self._lock:  # a frame not read yet stays unread in both
                out._items, out._items_source = self._items, self._items_source
            out.popularity = self.popularity
            out.id_to_row = self.id_to_row
            out.dense, out.fusion, out.reranker = self.dense, self.fusion, self.reranker
            out._view = self._view
            out._built = True
            return out

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

    @property
    def revision(self) -> int:
        """Bumped by every catalogue change (`upsert_items`, `delete_items`,
        `sync_catalog`); components caching per-item state compare it to theirs."""
        return self._changes.revision

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
        understand: bool = True,
        rerank: bool = True,
        correct: bool = True,
    ) -> SearchResponse:
        """One page of results for `query` under `filters`, sorted by `sort`.

        The user's history (for a re-ranker) is given either as service rows (`history`)
        or as item ids (`history_ids`, newest first; ids the service does not hold are
        skipped), with optional `history_weights` aligned to it. `mode` picks the
        retrieval (lexical, semantic, hybrid; None: `SearchConfig.mode`). `understand=False`
        turns query understanding (price, cheap words, brand and category mentions) off;
        `rerank=False` leaves the learned re-ranker out (an experiment's variant).
        `correct=False` searches the words as typed, without typo corrections (the
        storefront's "search instead for" link asks for both).
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
                understand,
                rerank,
                correct,
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
                "(SHELFWISE_SEARCH_MODE=auto or hybrid turns it on); answered with lexical search"
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
        understand: bool = True,
        rerank: bool = True,
        correct: bool = True,
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
        info["correct"] = bool(correct and self.config.typo)
        if notice:
            info["notice"] = notice
        scores_by_row: dict[int, float] | None = None
        read = self._understand(query, understand, info)
        text = query if read is None else read.text
        detected = None if read is None else self._understood_mask(read, flt, info)
        rows, relevance, parsed = self._retrieve(
            text, used, allowed if detected is None else allowed & detected, info, correct
        )
        if detected is not None and rows.size == 0:
            rows, relevance, parsed = self._retrieve(text, used, allowed, info, correct)
            if rows.size:
                self._relaxed(info)
        if parsed is not None and rows.size == 0:
            self._nothing_found(parsed, allowed, info)
        if read is not None:
            rows, relevance = self._prefer(read, rows, relevance, info)
        ranking = rerank and sort == "relevance"
        if text.strip() and self.reranker is not None and ranking and rows.size:
            rows, relevance, scores_by_row = self._rerank(
                text, rows, relevance, user, history, history_weights, read
            )
            info["reranked"] = True
        # only the pages up to this one are put in order (the rest is never shown)
        ordered = self.filters.order(rows, relevance, sort, self.popularity, page * per_page)
        window = ordered[page_slice(rows.size, page, per_page)]
        score_of = _window_scores(rows, relevance, window)
        if scores_by_row:
            score_of.update(scores_by_row)
        info["took_ms"] = round((time.perf_counter() - t0) * 1000.0, 3)
        return SearchResponse(
            items=self.describe(window, [score_of[r] for r in window.tolist()]),
            total=int(rows.size),
            facets=self.filters.facets(rows, facet_names) if facet_names else {},
            query_info=info,
            page=page,
            per_page=per_page,
            sort=sort,
            rows=window,
        )

    def _retrieve(
        self,
        text: str,
        used: str,
        allowed: np.ndarray,
        info: dict[str, Any],
        correct: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, ParsedQuery | None]:
        """(rows, relevance, the parsed query) for `text` among `allowed` rows."""
        if not text.strip():
            rows = np.flatnonzero(allowed)
            info["mode"] = "browse"
            return rows, self.popularity[rows].astype(np.float32), None
        info["mode"] = used
        if used == "semantic":
            rows, relevance = self._dense_candidates(text, allowed)
            order = np.lexsort((rows, -relevance))
            info["retrievers"] = ["dense"]
            return rows[order], relevance[order], None
        parsed = (self.parser if correct else self.literal_parser).parse(text)
        asked = info["query"]
        info.update(parsed.info())
        info["query"] = asked  # the query as asked; the parser saw what was left of it
        info["matching"] = self.config.matching
        rows, relevance, dropped = self._lexical(parsed, allowed, info)
        info["dropped"] = dropped
        self._matched_in(parsed, rows, relevance, info)
        retrievers = ["bm25"]
        if used == "hybrid":
            complete = info.get("complete_matches")
            if complete is None:  # all / last / any matching: every match is as asked
                complete = int(rows.size) if self.config.matching != "any" else 0
            rows, relevance = self._with_dense(
                self._dense_query(text, parsed), rows, relevance, allowed, complete, info
            )
            retrievers.append("dense")
        info["retrievers"] = retrievers
        return rows, relevance, parsed

    def _matched_in(
        self, parsed: ParsedQuery, rows: np.ndarray, relevance: np.ndarray, info: dict[str, Any]
    ) -> None:
        """When none of the best `TITLE_CHECK_DEPTH` lexical matches has a query word in its
        title: how many of the best `MATCHED_IN_DEPTH` hold the words in each field
        (`info["matched_in"]`), and, when none holds them in its name (title, brand or
        category), a notice that the products only mention them ("wine" finding detergents
        that lift wine stains). The title check reads the cached analysed titles, so an
        ordinary query pays next to nothing; the per-field scores are for the rare rest."""
        if rows.size == 0:
            return
        terms = sorted({t for group in parsed.groups for alt in group for t, _ in alt})
        order = top_stable(relevance, MATCHED_IN_DEPTH)
        names = self.index.terms_list
        words = {names[t] for t in terms}
        for row in rows[order[:TITLE_CHECK_DEPTH]].tolist():
            if words.intersection(self._title_terms(int(row))):
                return
        top = rows[order[:MATCHED_IN_DEPTH]]
        scores = self.index.field_scores(terms, top)
        counts = {f: int((scores[:, j] > 0).sum()) for j, f in enumerate(self.index.fields)}
        info["matched_in"] = counts
        named = [f for f in NAME_FIELDS if f in counts]
        if named and not any(counts[f] for f in named):
            where = [f for f, c in counts.items() if c]
            said = (
                f"no product has {parsed.text!r} in its {_either(named)}; showing products "
                f"whose {_either(where) or 'text'} mentions it"
            )
            info["notice"] = f"{info['notice']}; {said}" if info.get("notice") else said

    @property
    def understanding(self) -> QueryUnderstanding:
        """Query understanding over the catalogue's current brand and category labels."""
        if self._understanding is None:
            self._understanding = QueryUnderstanding(
                self.analyzer, self.config.understanding_options()
            )
        self._understanding.update(
            self.filters.brand.labels, self.filters.category.labels, CATEGORY_SEPARATOR
        )
        return self._understanding

    def _understand(self, query: str, understand: bool, info: dict[str, Any]) -> Understood | None:
        """What the query asks for beyond its words (None when understanding is off)."""
        info["understand"] = bool(understand and self.config.understand)
        if not info["understand"] or not query.strip():
            return None
        read = self.understanding.read(query)
        info["searched"] = read.text
        info["removed"] = list(read.removed)
        return read

    def _understood_mask(
        self, read: Understood, flt: Filters, info: dict[str, Any]
    ) -> np.ndarray | None:
        """The filter the understood query adds (price, a brand or category alone), with
        what it is reported in `info`; None when it adds none."""
        mask: np.ndarray | None = None
        cfg = self.config
        if read.has_price:
            price = read.price_info()
            if flt.min_price is not None or flt.max_price is not None:
                price["applied"] = "none"
                price["reason"] = "the request's own price filter applies"
            else:
                price["applied"] = "filter"
                mask = self.filters.mask(
                    Filters(min_price=read.min_price, max_price=read.max_price)
                )
            info["price"] = price
        if read.brand is not None:
            brand: dict[str, Any] = {"value": read.brand, "words": read.brand_words}
            if cfg.brand_filter_alone and read.only_mention and not flt.brand:
                brand["applied"] = "filter"
                m = self.filters.mask(Filters(brand=(read.brand,)))
                mask = m if mask is None else mask & m
            else:
                brand["applied"] = "boost" if cfg.brand_boost > 0 else "none"
                brand["boost"] = cfg.brand_boost
            info["brand"] = brand
        if read.category:
            category: dict[str, Any] = {"value": read.category[0], "words": read.category_words}
            if len(read.category) > 1:
                category["paths"] = list(read.category)
            alone = cfg.category_filter_alone and read.only_mention
            if alone and len(read.category) == 1 and not flt.category:
                category["applied"] = "filter"
                m = self.filters.mask(Filters(category=read.category[0]))
                mask = m if mask is None else mask & m
            elif cfg.category_head_only and not read.category_head:
                category["applied"] = "none"
                category["reason"] = "the mention qualifies the product asked for"
            else:
                category["applied"] = "boost" if cfg.category_boost > 0 else "none"
                category["boost"] = cfg.category_boost
            info["category"] = category
        return mask

    def _relaxed(self, info: dict[str, Any]) -> None:
        """Say that the understood filters left nothing and were dropped."""
        said = []
        for key in ("price", "brand", "category"):
            part = info.get(key)
            if part and part.get("applied") == "filter":
                part["applied"] = "relaxed"
                part["relaxed"] = True
                said.append(f"{key} {part.get('source') or part.get('value')}")
        text = f"nothing matched with {', '.join(said)}; showing matches without it"
        info["notice"] = f"{info['notice']}; {text}" if info.get("notice") else text

    def _prefer(
        self, read: Understood, rows: np.ndarray, relevance: np.ndarray, info: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Apply the soft parts of an understood query: brand and category boosts, the
        cheap preference (a below-median filter or a boost), reported in `info`."""
        cfg = self.config
        rel = np.asarray(relevance, dtype=np.float32)
        gain = np.zeros(rows.size, dtype=np.float32)
        brand = info.get("brand")
        if brand and brand.get("applied") == "boost" and rows.size:
            codes = self.filters.brand.matching([read.brand or ""])
            hit = self.filters.brand.holds(codes, rows)
            gain += np.float32(cfg.brand_boost) * hit
            brand["boosted"] = int(hit.sum())
        category = info.get("category")
        if category and category.get("applied") == "boost" and rows.size:
            codes = np.concatenate([self.filters._category_codes(p) for p in read.category])
            hit = self.filters.category.holds(codes, rows)
            gain += np.float32(cfg.category_boost) * hit
            category["boosted"] = int(hit.sum())
        if read.head and cfg.head_boost > 0 and rows.size:
            hit = self._head_hits(read.head, rows, rel)
            gain += np.float32(cfg.head_boost) * hit
            info["head"] = {
                "word": read.head,
                "boost": cfg.head_boost,
                "boosted": int((hit > 0).sum()),
                "lowered": int((hit < 0).sum()),
            }
        if read.cheap is not None and cfg.understand_cheap != "off":
            price = self.filters.price[rows]
            known = np.isfinite(price)
            cheap: dict[str, Any] = {"preference": "cheap", "source": read.cheap}
            if known.any():
                median = float(np.median(price[known]))
                if cfg.understand_cheap == "filter":
                    keep = known & (price <= median)
                    rows, rel, gain = rows[keep], rel[keep], gain[keep]
                    cheap.update(applied="filter", max=round(median, 2))
                else:
                    ranks = np.zeros(rows.size, dtype=np.float32)
                    order = np.argsort(price[known], kind="stable")
                    n = max(int(known.sum()) - 1, 1)
                    share = np.empty(order.size, dtype=np.float32)
                    share[order] = 1.0 - np.arange(order.size, dtype=np.float32) / n
                    ranks[known] = share
                    gain += np.float32(cfg.cheap_boost) * ranks
                    cheap.update(applied="boost", boost=cfg.cheap_boost, median=round(median, 2))
            else:
                cheap["applied"] = "none"
            info.setdefault("price", {}).update(cheap)
        if gain.any():
            rel = (rel + np.abs(rel) * gain).astype(np.float32)
        return rows, rel

    def _head_hits(self, head: str, rows: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """For each of the best `rescore_depth` rows: 1 when `head` is one of its head
        words, -1 when its name holds `head` only as a qualifier, else 0
        (`ProductHeads.match`; cached per row while its title and category stay the same)."""
        out = np.zeros(rows.size, dtype=np.float32)
        cols = self._columns()
        labels = self.filters.category.labels
        if self._nouns[0] != len(labels):  # the catalogue's product nouns
            nouns = set().union(*(leaf_heads(self.analyzer, c, CATEGORY_SEPARATOR) for c in labels))
            self._nouns = (len(labels), frozenset(nouns))
        for at in top_stable(rel, self.config.rescore_depth).tolist():
            row = int(rows[at])
            title, category = str(cols["title"][row] or ""), str(cols["category"][row] or "")
            hit = self._heads.get(row)
            if hit is None or hit[0] != title or hit[1] != category:
                heads = product_heads(self.analyzer, title, category, CATEGORY_SEPARATOR)
                hit = self._heads[row] = (title, category, heads)
            out[at] = hit[2].match(head, self._nouns[1])
        return out

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

    def required_matches(self, n_groups: int) -> int:
        """How many of a query's `n_groups` words a product must match (`should` matching:
        all up to `min_match_all_up_to` words, then `floor(min_match_ratio * n)`)."""
        cfg = self.config
        if n_groups <= cfg.min_match_all_up_to:
            return n_groups
        return max(1, min(n_groups, math.floor(cfg.min_match_ratio * n_groups + 1e-9)))

    def _lexical(
        self, parsed: ParsedQuery, allowed: np.ndarray, info: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        matching = self.config.matching
        if matching == "should" and self.sparse_should:
            return self._lexical_should(parsed, allowed, info)
        scores, masks = self.index.score_and_match(parsed.groups, masks=matching != "any")
        match = allowed & (scores > 0)
        if parsed.split_groups and masks:
            self._check_splits(parsed, scores, masks, match)
            match &= scores > 0
        dropped: list[str] = []
        if masks and matching == "should":
            return self._should_ranked(parsed, scores, masks, match, info)
        if masks:
            need_all = np.logical_and.reduce(masks)
            cand = match & need_all
            keep = len(masks)
            while matching == "last" and keep > 1 and not cand.any():
                keep -= 1
                dropped.insert(0, parsed.labels[keep])
                cand = match & np.logical_and.reduce(masks[:keep])
            match = cand
        rows = np.flatnonzero(match)
        return rows, scores[rows], dropped

    def _lexical_should(
        self, parsed: ParsedQuery, allowed: np.ndarray, info: dict[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """`_lexical`'s `should` matching over only the rows a query term occurs in
        (`BM25Index.score_and_match_rows`) that match at least `required_matches` of its
        groups (the others cannot match): the same rows and scores as the dense path."""
        need = self.required_matches(len(parsed.groups))
        cand, scores, masks = self.index.score_and_match_rows(parsed.groups, need)
        match = allowed[cand] & (scores > 0)
        if parsed.split_groups and masks:
            self._check_splits(parsed, scores, masks, match, cand)
            match &= scores > 0
        if not masks:  # no query words: nothing matched, nothing dropped
            return cand[match], scores[match], []
        return self._should_ranked(parsed, scores, masks, match, info, cand)

    def _should_ranked(
        self,
        parsed: ParsedQuery,
        scores: np.ndarray,
        masks: list[np.ndarray],
        match: np.ndarray,
        info: dict[str, Any] | None,
        cand: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The rows matching at least `required_matches` of the groups, with coordination
        and proximity applied; the arrays are catalogue-long, or over the rows `cand`."""
        count = np.zeros(match.size, dtype=np.int32)
        for m in masks:
            count += m
        need = self.required_matches(len(masks))
        if info is not None:
            info["required"] = need
        match &= count >= need
        keep = np.flatnonzero(match)
        rows = keep if cand is None else cand[keep]
        rel = scores[keep]
        if self.config.coordination > 0 and need < len(masks):
            rel = rel * (count[keep] / len(masks)) ** np.float32(self.config.coordination)
        rel = self._proximity(parsed, rows, rel.astype(np.float32))
        if info is not None:  # how sure the lexical side is (hybrid fusion reads it)
            info["complete_matches"] = int(np.sum(count[keep] == len(masks)))
        return rows, rel, list(parsed.unknown)

    def _check_splits(
        self,
        parsed: ParsedQuery,
        scores: np.ndarray,
        masks: list[np.ndarray],
        match: np.ndarray,
        cand: np.ndarray | None = None,
    ) -> None:
        """Where a group's split form scores a row without the two parts as neighbours in
        its title ("sun" in the category and "screen" in the title is not "sunscreen"),
        score the row by the group's other alternatives (in place), or un-match it. The
        arrays are catalogue-long, or, with `cand` (the rows of the last
        `BM25Index.score_and_match_rows` in this thread), over those rows only (a term's
        scores there from `BM25Index.candidate_values`)."""
        n = scores.size

        def values(term: int) -> tuple[np.ndarray, np.ndarray]:  # (score, present) per place
            if cand is not None:
                return self.index.candidate_values(term)
            rows, vals = self.index.postings(term)
            got = np.zeros(n, dtype=np.float32)
            got[rows] = vals
            present = np.zeros(n, dtype=bool)
            present[rows] = True
            return got, present

        def row_of(places: np.ndarray) -> np.ndarray:
            return places if cand is None else cand[places]

        for g, ta, tb in parsed.split_groups:
            single = np.zeros(n, dtype=np.float32)
            for alt in parsed.groups[g]:
                if len(alt) == 1:
                    np.maximum(single, values(alt[0][0])[0] * np.float32(alt[0][1]), out=single)
            weight = next(alt[0][1] for alt in parsed.groups[g] if len(alt) == 2)
            part = np.zeros(n, dtype=np.float32)
            have = np.zeros(n, dtype=np.int32)
            for t in (ta, tb):
                vals, present = values(t)
                part += vals * np.float32(weight)
                have += present
            # rows the split form decides: it matched and scored above the other forms
            via = np.flatnonzero((have == 2) & (part > single) & match & masks[g])
            via_rows = row_of(via)
            # only a title holding both parts can hold them as neighbours; the others are
            # settled by the index's title postings without reading their titles
            maybe = np.flatnonzero(
                self._title_holds(via_rows, [ta]) & self._title_holds(via_rows, [tb])
            )
            apart = np.ones(via.size, dtype=bool)
            if maybe.size:
                titles = [self._title_ids(int(r)) for r in via_rows[maybe].tolist()]
                flat = np.concatenate(titles)
                owner = np.repeat(maybe, [t.size for t in titles])
                pair = (flat[:-1] == ta) & (flat[1:] == tb) & (owner[:-1] == owner[1:])
                apart[owner[:-1][pair]] = False
            off = via[apart]
            if off.size:
                scores[off] = np.maximum(np.float32(0.0), scores[off] - part[off] + single[off])
                masks[g][off[single[off] <= 0]] = False

    def _title_holds(self, rows: np.ndarray, terms: Sequence[int]) -> np.ndarray:
        """Whether each row's analysed title holds one of `terms` (all True when the index
        does not score titles, so that the caller reads the titles themselves)."""
        if "title" not in self.index.fields:
            return np.ones(rows.size, dtype=bool)
        out = np.zeros(rows.size, dtype=bool)
        for t in dict.fromkeys(terms):
            held = self.index.rows_with("title", t)  # sorted: a binary search per row
            out |= find_sorted(held, rows)[1]
        return out

    def _title_ids(self, row: int) -> np.ndarray:
        """The analysed title of a row as index term ids (-1 for a word the index does not
        know), cached while the title and the index stay the same (a title with an unknown
        word is not cached: a later update may add the word)."""
        title = self._columns()["title"][row] or ""
        cache = self._title_id_cache
        if cache is None or cache[0] is not self.index:
            cache = self._title_id_cache = (self.index, {})
        hit = cache[1].get(row)
        if hit is not None and hit[0] == title:
            return hit[1]
        vocab = self.index.vocab
        terms = self._title_terms(row)
        out = np.fromiter((vocab.get(t, -1) for t in terms), dtype=np.int64, count=len(terms))
        if not (out < 0).any():
            cache[1][row] = (title, out)
        return out

    def _title_terms(self, row: int) -> list[str]:
        """The analysed title of a row (cached while the title stays the same)."""
        title = self._columns()["title"][row] or ""
        hit = self._titles.get(row)
        if hit is not None and hit[0] == title:
            return hit[1]
        terms = self.analyzer.terms(title)
        self._titles[row] = (title, terms)
        return terms

    def _proximity(self, parsed: ParsedQuery, rows: np.ndarray, rel: np.ndarray) -> np.ndarray:
        """Boost the best `rescore_depth` rows whose titles hold neighbouring query words as
        neighbours (`phrase_boost`) or within `proximity_window` words (`proximity_boost`)."""
        cfg = self.config
        groups = parsed.groups
        if len(groups) < 2 or rows.size == 0 or cfg.rescore_depth == 0:
            return rel
        if cfg.phrase_boost == 0 and cfg.proximity_boost == 0:
            return rel
        ids = [[t for alt in g for t, _ in alt] for g in groups]
        top = top_stable(rel, cfg.rescore_depth)
        top_rows = rows[top]
        # which query words each title holds, from the index's title postings: only a title
        # holding two neighbouring words can earn a boost, so only those titles are read
        held = np.stack([self._title_holds(top_rows, g) for g in ids])
        cand = np.flatnonzero((held[:-1] & held[1:]).any(axis=0))
        if cand.size == 0:
            return rel
        # every candidate title as one array of word codes (len(uniq): no query word), and
        # which groups each code is in; then one pass per offset over every pair of
        # neighbouring groups (term ids stand for names: the vocabulary maps them one to one)
        uniq = np.unique(np.asarray([t for g in ids for t in g], dtype=np.int64))
        if uniq.size == 0:
            return rel
        member = np.zeros((uniq.size + 1, len(groups)), dtype=bool)  # last row: no word
        for i, g in enumerate(ids):
            member[np.searchsorted(uniq, g), i] = True
        titles = [self._title_ids(int(r)) for r in top_rows[cand].tolist()]
        lengths = np.fromiter(map(len, titles), dtype=np.int64, count=len(titles))
        flat = np.concatenate(titles) if titles else np.zeros(0, dtype=np.int64)
        pos, known = find_sorted(uniq, flat)
        flat = np.where(known, pos, uniq.size)
        owner = np.repeat(np.arange(cand.size), lengths)
        window, pairs = cfg.proximity_window, len(groups) - 1
        if len(groups) <= 62:
            adjacent, near = _pair_counts(member, flat, owner, cand.size, window, pairs)
        else:  # more groups than bits in an int64: pair by pair
            adjacent, near = _pair_counts_each(member[flat], owner, cand.size, window, pairs)
        boosted = (adjacent > 0) | (near > 0)
        boost = cfg.phrase_boost * adjacent + cfg.proximity_boost * near
        factor = (1.0 + boost / pairs).astype(np.float32)
        out = rel.copy()
        at = top[cand[boosted]]
        out[at] = rel[at] * factor[boosted]
        return out

    def _nothing_found(
        self, parsed: ParsedQuery, allowed: np.ndarray, info: dict[str, Any]
    ) -> None:
        """Say that nothing matched and suggest what would: near words for words the
        catalog does not know, and the query without one of its words."""
        suggestions: list[str] = []
        for word in parsed.unknown:
            near_words = [parsed.suggested[word]] if word in parsed.suggested else []
            for near in near_words + self.parser.near_words(word):
                suggestions.append(" ".join(near if t == word else t for t in parsed.tokens))
        if len(parsed.groups) > 1 and self.config.matching in ("should", "all"):
            _, masks = self.index.score_and_match(parsed.groups)
            for j in range(len(parsed.labels)):
                rest = [m for i, m in enumerate(masks) if i != j]
                need = self.required_matches(len(rest))
                if self.config.matching == "all":
                    need = len(rest)
                if ((np.sum(rest, axis=0) >= need) & allowed).any():
                    suggestions.append(" ".join(x for i, x in enumerate(parsed.labels) if i != j))
        said = f"no product matches {parsed.text!r}" + (
            "; did you mean one of the suggestions?" if suggestions else ""
        )
        info["notice"] = f"{info['notice']}; {said}" if info.get("notice") else said
        info["suggestions"] = list(dict.fromkeys(suggestions))[:5]

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

    @staticmethod
    def _dense_query(text: str, parsed: ParsedQuery) -> str:
        """What the dense retriever embeds: the query with the lexical side's typo
        corrections applied (an embedding of "shampo" is not one of "shampoo")."""
        if not parsed.corrected:
            return text
        return " ".join(parsed.corrected.get(t, t) for t in parsed.tokens)

    def _with_dense(
        self,
        query: str,
        rows: np.ndarray,
        relevance: np.ndarray,
        allowed: np.ndarray,
        complete: int | None = None,
        info: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lexical matches plus the dense retriever's best, the best `fusion_depth` lexical
        matches and the dense candidates ordered by the fused score (`SearchConfig.fusion`,
        `fusion_weight`; `service.fusion` instead when one is set), the other lexical
        matches below them in lexical order.

        With at least `dense_confident_matches` products matching every query word
        (`complete`), the lexical side is confident: the dense share is scaled by
        `dense_confident_weight` and, when that is below 1, the dense retriever only
        re-scores lexical matches instead of adding products of its own."""
        cfg = self.config
        weight = cfg.fusion_weight
        confident = complete is not None and complete >= cfg.dense_confident_matches
        if confident:
            weight *= cfg.dense_confident_weight
        d_ids, d_scores = self._dense_candidates(query, allowed)
        if confident and cfg.dense_confident_weight < 1.0:
            keep = np.isin(d_ids, rows)
            d_ids, d_scores = d_ids[keep], d_scores[keep]
        if info is not None:
            info["fusion"] = {
                "method": "custom" if self.fusion is not None else cfg.fusion,
                "dense_weight": round(weight, 4),
                "lexically_confident": confident,
            }
            if query != info.get("searched", info.get("query")):
                info["fusion"]["dense_query"] = query
        order = np.lexsort((rows, -relevance))
        rows, relevance = rows[order], np.asarray(relevance, np.float32)[order]
        head = min(rows.size, cfg.fusion_depth)
        lexical = Results(rows[:head], relevance[:head])
        if self.fusion is not None:
            fused = self.fusion.fuse([lexical, Results(d_ids, d_scores)], head + d_ids.size)
        else:
            dense = Results(d_ids, d_scores)
            similarity = getattr(self.dense, "similarity", None)
            if cfg.fusion == "score" and callable(similarity):
                # every candidate scored by both sides: the exact convex combination (for
                # rrf, ranking every lexical match by similarity measured worse)
                cand = np.union1d(rows[:head], d_ids)
                sims = np.asarray(similarity(query, cand), dtype=np.float32)
                dense = Results(cand, sims)
            fused = hybrid_fusion(lexical, dense, weight, cfg.fusion, cfg.fusion_rrf_k)
        fused_ids = fused.ids[fused.ids >= 0].astype(np.int64)
        fused_scores = fused.scores[: fused_ids.size].astype(np.float32)
        rest = rows[head:]
        rest = rest[~np.isin(rest, fused_ids)]
        floor = float(fused_scores.min()) if fused_scores.size else 0.0
        # below every fused row, in lexical order
        rest_scores = (floor - 1.0 - np.arange(rest.size) / max(rest.size, 1)).astype(np.float32)
        return np.concatenate([fused_ids, rest]), np.concatenate([fused_scores, rest_scores])

    def _rerank(
        self,
        query: str,
        rows: np.ndarray,
        relevance: np.ndarray,
        user: str | None,
        history: np.ndarray | None,
        history_weights: np.ndarray | None,
        read: Understood | None = None,
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
        context = SearchContext(query, self, user, hist, hw, read)
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
            self._view = result_columns(self.items)
        return self._view

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

    # -- live updates (the work is in `search.catalog`) ----------------------------------

    def rows_of(self, ids: Iterable[str]) -> np.ndarray:
        """Rows of live items; `UnknownIdError` lists ids that are not in the catalog."""
        return catalog.rows_of(self, ids)

    def upsert_items(self, frame: pd.DataFrame) -> dict[str, int]:
        """Add new items and replace existing ones; searchable when this returns."""
        self._check()
        with self._lock:
            return catalog.upsert(self, frame)

    def delete_items(self, ids: Iterable[str]) -> int:
        """Remove items (all or nothing); returns how many were removed."""
        self._check()
        with self._lock:
            return catalog.delete(self, ids)

    def changes_since(self, revision: int) -> np.ndarray | None:
        """Rows changed (upserted, appended or deleted) after `revision`, sorted; None when
        the change log no longer reaches back that far (rebuild from `items` then)."""
        with self._lock:
            return self._changes.since(revision)

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
            return catalog.sync(self, frame, alive, rows)

    # -- persistence (the work is in `search.persistence`) -------------------------------

    def save(self, directory: Path) -> None:
        """Write the service (parquet + npz + JSON; no pickle) into `directory`."""
        self._check()
        with self._lock:
            save_service(self, Path(directory))

    @classmethod
    def load(cls, directory: Path) -> SearchService:
        """Read a service written by `save` (components are re-created by their class)."""
        return load_service(cls, directory)


def _window_scores(rows: np.ndarray, relevance: np.ndarray, window: np.ndarray) -> dict[int, float]:
    """row -> relevance for the rows of `window` (the last one where a row repeats), without
    a dict over every match; a binary search per match into the few sorted window rows,
    not a table as long as the row range)."""
    shown = np.sort(np.asarray(window, dtype=np.int64))
    if rows.size == 0 or shown.size == 0:
        return {}
    at = np.flatnonzero(find_sorted(shown, rows)[1])
    return dict(zip(rows[at].tolist(), np.asarray(relevance)[at].tolist(), strict=True))


def _either(words: Sequence[str]) -> str:
    """ "a", "a or b", "a, b or c"."""
    return " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else "".join(words)


def _pair_counts_each(
    held_at: np.ndarray, owner: np.ndarray, n: int, window: int, pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per title (`owner` of each word; `held_at`: (title words, groups) membership): how
    many neighbouring query-group pairs stand next to each other, and how many more within
    `window` words, one pair and one offset at a time."""
    adjacent = np.zeros(n, dtype=np.int64)
    near = np.zeros(n, dtype=np.int64)
    size = held_at.shape[0]
    for i in range(pairs):
        a, b = held_at[:, i], held_at[:, i + 1]
        adj = np.zeros(n, dtype=bool)
        close = np.zeros(n, dtype=bool)
        for d in range(1, min(window, max(size - 1, 0)) + 1):
            same = owner[:-d] == owner[d:]
            after = a[:-d] & b[d:] & same  # group i + 1 d words after group i
            before = b[:-d] & a[d:] & same  # ... d words before it
            if d == 1:
                adj[owner[:-1][after]] = True
            close[owner[:-d][after | before]] = True
        adjacent += adj
        near += close & ~adj
    return adjacent, near


def _pair_counts(
    member: np.ndarray, flat: np.ndarray, owner: np.ndarray, n: int, window: int, pairs: int
) -> tuple[np.ndarray, np.ndarray]:
    """`_pair_counts_each` with every pair at once: each title word's groups as bits of
    one int64 (bit i: group i), so that `x & (y >> 1)` has bit i where x holds group i
    and y group i + 1; one pass per offset instead of one per offset and pair."""
    weights = np.left_shift(np.int64(1), np.arange(member.shape[1], dtype=np.int64))
    bits = (member.astype(np.int64) @ weights)[flat]
    adj = np.zeros(n, dtype=np.int64)  # per title, bit i: pair i stands next to each other
    close = np.zeros(n, dtype=np.int64)  # ... within the window
    for d in range(1, min(window, max(flat.size - 1, 0)) + 1):
        x, y = bits[:-d], bits[d:]
        same = owner[:-d] == owner[d:]
        after = np.where(same, x & (y >> 1), 0)  # group i + 1 d words after group i
        before = np.where(same, y & (x >> 1), 0)  # ... d words before it
        at = np.flatnonzero(after | before)
        np.bitwise_or.at(close, owner[:-d][at], (after | before)[at])
        if d == 1:
            at = np.flatnonzero(after)
            np.bitwise_or.at(adj, owner[:-1][at], after[at])
    mask = (1 << pairs) - 1
    adj &= mask
    close &= mask & ~adj
    adjacent = np.zeros(n, dtype=np.int64)
    near = np.zeros(n, dtype=np.int64)
    for i in range(pairs):
        adjacent += (adj >> i) & 1
        near += (close >> i) & 1
    return adjacent, near
