"""Search modes: the one list of how a search may find its candidates.

* `lexical`: BM25F with typos, prefix and synonyms;
* `semantic`: the dense retriever's best items only;
* `hybrid`: both, fused by reciprocal rank fusion.

`SearchMode` is the type (settings, HTTP parameters), `SEARCH_MODES` the same values as a
tuple (CLI choices, error messages); `SearchConfig.mode` adds `auto` (hybrid when a dense
retriever is set, else lexical).
"""

from __future__ import annotations

import os
from typing import Literal, get_args

from shelfwise.errors import ConfigError

__all__ = ["SEARCH_MODES", "SearchMode", "search_mode_from_env"]

SearchMode = Literal["lexical", "semantic", "hybrid"]
"""How a search finds candidates: BM25F only, dense retrieval only, or both fused (RRF)."""

SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
"""The values of `SearchMode`, in order."""


def search_mode_from_env(default: str = "lexical") -> str:
    """The served search mode from `$SHELFWISE_SEARCH_MODE` (lexical, semantic or hybrid);
    `semantic` and `hybrid` switch dense retrieval on."""
    value = os.environ.get("SHELFWISE_SEARCH_MODE", "").strip().lower() or default
    if value not in SEARCH_MODES:
        raise ConfigError(
            f"SHELFWISE_SEARCH_MODE={value!r} is not a search mode; "
            f"choose one of {', '.join(SEARCH_MODES)}"
        )
    return value
