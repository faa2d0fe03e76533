"""The small protocols that plug retrievers, fusion and re-rankers into `SearchService`.

Everything speaks in *item rows*: the dense, stable row numbers of `SearchService.items`
(row `i` of the catalog frame is item index `i`). Rows are never renumbered by
`upsert_items` / `delete_items`: an update keeps its row, a new item is appended, a deleted
item's row stays as a dead row (excluded by the `mask` every retriever receives).

A query flows through the service like this::

    lexical = bm25 (typos, prefix, synonyms applied)   -> Results over rows
    dense   = service.dense.retrieve(query, k, mask)   -> Results over rows   (optional)
    fused   = service.fusion.fuse([lexical, dense], k) -> Results             (optional)
    ranked  = service.reranker.rerank(fused, context)  -> Results             (optional)
    filters / sort / facets / pagination               -> SearchResponse

Objects that also implement `Updatable` are told about catalog changes; objects with
`save(directory)` and a `load(directory)` classmethod are persisted with the service (their
class is recorded by import path and must live in the `shelfwise` package).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from shelfwise.types import Results

if TYPE_CHECKING:
    import pandas as pd

    from shelfwise.search.service import SearchService
    from shelfwise.search.understanding import Understood

__all__ = [
    "Fusion",
    "Persistable",
    "Reranker",
    "Retriever",
    "SearchContext",
    "Updatable",
]


@runtime_checkable
class Retriever(Protocol):
    """Finds candidate rows for a query.

    `retrieve(query, k, mask)` returns at most `k` rows, best first, as a 1-D `Results`.
    `mask`, when given, is a boolean array over all rows (`len(service.items)`); rows where
    it is False (deleted items, items outside the filters) must not be returned.
    """

    def retrieve(self, query: str, k: int, mask: np.ndarray | None = None) -> Results:
        """The best `k` rows for `query` among the rows `mask` allows."""
        ...


@runtime_checkable
class Fusion(Protocol):
    """Merges ranked lists (lexical first, then dense) into one list of at most `k` rows."""

    def fuse(self, results: Sequence[Results], k: int) -> Results:
        """One ranked list from several; ids are rows, best first."""
        ...


@dataclass(frozen=True)
class SearchContext:
    """What a re-ranker may look at besides the candidates.

    `history` holds the rows the user interacted with (newest first) and `history_weights`
    their weights (same length); both are empty for an anonymous user or one without
    history. `understood` is what query understanding read in the query as asked (its
    brand, category and price), None when understanding was off. `service` gives access to
    `items`, `popularity`, `field_scores(query, rows)` and `lexical_scores(query)`.
    """

    query: str
    service: SearchService
    user: str | None = None
    history: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    history_weights: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    understood: Understood | None = None
    """What query understanding read in the query as asked (None when it was off)."""


@runtime_checkable
class Reranker(Protocol):
    """Re-orders first-stage candidates (at most `SearchConfig.rerank_depth` of them)."""

    def rerank(self, candidates: Results, context: SearchContext) -> Results:
        """The same rows (or a subset), re-scored and sorted best first."""
        ...


@runtime_checkable
class Updatable(Protocol):
    """A component that follows catalog changes without a rebuild."""

    def upsert(self, rows: np.ndarray, items: pd.DataFrame) -> None:
        """Index (or re-index) `items`, whose rows are `rows` (same length, same order)."""
        ...

    def delete(self, rows: np.ndarray) -> None:
        """Forget `rows`; they will be masked out anyway, this frees memory if it can."""
        ...


@runtime_checkable
class Persistable(Protocol):
    """A component that can be written to and read from a folder (no pickle)."""

    def save(self, directory: Path) -> None:
        """Write the component into `directory` (created if missing)."""
        ...
