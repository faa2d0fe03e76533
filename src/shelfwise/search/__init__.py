"""Product search: one search path, `SearchService` (lexical BM25F with typos, prefix and
synonyms; filters, facets, sorting, pages and autocomplete; dense retrieval, fusion and a
learned re-ranker as hooks).

The names below are importable from here; each is loaded on first use, so importing
`shelfwise.search` stays cheap (no faiss, lightgbm or torch until a dense index or a
re-ranker is asked for).

* `SearchService`: the service (`search.service`);
* `SearchConfig`, `SearchResponse`: its configuration and answers (`search.config`);
* `build_search_service`, `load_search_service`: a bundle's service (`search.build`);
* `Filters`, `SORTS`, `Sort`, `DEFAULT_FACETS`: filters and sort orders (`search.filters`);
* `SEARCH_MODES`, `SearchMode`: search modes (`search.modes`);
* `BM25Index`, `BM25Config`: the lexical index (`search.bm25`);
* `DenseIndex`: the dense index (`search.semantic`, imports faiss);
* `reciprocal_rank_fusion`, `RRFFusion`, `ScoreFusion`: fusion (`search.fusion`);
* `item_documents`, `item_texts`, `attribute_text`: the catalogue as text
  (`search.documents`);
* `PersonalisedReranker`: the learned re-ranker (`search.ltr`, imports lightgbm).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise._lazy import lazy_exports

if TYPE_CHECKING:
    from shelfwise.search.bm25 import BM25Config, BM25Index
    from shelfwise.search.build import build_search_service, load_search_service
    from shelfwise.search.config import SearchConfig, SearchResponse
    from shelfwise.search.documents import attribute_text, item_documents, item_texts
    from shelfwise.search.filters import DEFAULT_FACETS, SORTS, Filters, Sort
    from shelfwise.search.fusion import RRFFusion, ScoreFusion, reciprocal_rank_fusion
    from shelfwise.search.ltr import PersonalisedReranker
    from shelfwise.search.modes import SEARCH_MODES, SearchMode
    from shelfwise.search.semantic import DenseIndex
    from shelfwise.search.service import SearchService

_HOMES = {
    "BM25Config": "bm25",
    "BM25Index": "bm25",
    "DEFAULT_FACETS": "filters",
    "DenseIndex": "semantic",
    "Filters": "filters",
    "PersonalisedReranker": "ltr",
    "RRFFusion": "fusion",
    "SEARCH_MODES": "modes",
    "SORTS": "filters",
    "ScoreFusion": "fusion",
    "SearchConfig": "config",
    "SearchMode": "modes",
    "SearchResponse": "config",
    "SearchService": "service",
    "Sort": "filters",
    "attribute_text": "documents",
    "build_search_service": "build",
    "item_documents": "documents",
    "item_texts": "documents",
    "load_search_service": "build",
    "reciprocal_rank_fusion": "fusion",
}

__all__ = [
    "DEFAULT_FACETS",
    "SEARCH_MODES",
    "SORTS",
    "BM25Config",
    "BM25Index",
    "DenseIndex",
    "Filters",
    "PersonalisedReranker",
    "RRFFusion",
    "ScoreFusion",
    "SearchConfig",
    "SearchMode",
    "SearchResponse",
    "SearchService",
    "Sort",
    "attribute_text",
    "build_search_service",
    "item_documents",
    "item_texts",
    "load_search_service",
    "reciprocal_rank_fusion",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
