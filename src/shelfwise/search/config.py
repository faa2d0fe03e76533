"""What shapes a search and what one answers: `SearchConfig` (the knobs of
`SearchService`: the BM25F index, analysis, typos, prefix, synonyms, matching, modes, dense
retrieval, re-ranking depth, popularity and autocomplete) and `SearchResponse` (one page of
results, its facets and how the query was read; `to_dict()` is the JSON body of
`GET /v1/search`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.data.weights import weighted_types
from shelfwise.search.bm25 import BM25Config
from shelfwise.search.modes import SearchMode
from shelfwise.search.query import QueryOptions
from shelfwise.search.synonyms import Synonyms

__all__ = ["SearchConfig", "SearchResponse"]


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
    """The default search mode (see `search.service`); `auto`: hybrid with a dense retriever."""
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
