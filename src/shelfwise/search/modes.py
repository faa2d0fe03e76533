"""Search modes: the one list of how a search may find its candidates.

* `lexical`: BM25F with typos, prefix and synonyms;
* `semantic`: the dense retriever's best items only;
* `hybrid`: both, fused (`search.fusion.hybrid_fusion`, `SearchConfig.fusion`).

`SearchMode` is the type (settings, HTTP parameters), `SEARCH_MODES` the same values as a
tuple (CLI choices, error messages); `SearchConfig.mode` adds `auto` (hybrid when a dense
retriever is set, else lexical).
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["SEARCH_MODES", "SearchMode"]

SearchMode = Literal["lexical", "semantic", "hybrid"]
"""How a search finds candidates: BM25F only, dense retrieval only, or both fused."""

SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
"""The values of `SearchMode`, in order."""
