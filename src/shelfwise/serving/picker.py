"""The result picker: fills k slots from successive fallback steps, never repeating an item."""

from __future__ import annotations

from typing import Any

import numpy as np

from shelfwise.serving.catalog import Catalog
from shelfwise.types import Results, top_k


class Picker:
    """Fills up to k slots from successive fallback steps, never repeating an item.

    Only servable items that are not `blocked` (the user's history, the page's item, the
    caller's exclusions) are taken. `strategy` names the first step that added an item.
    """

    def __init__(self, catalog: Catalog, k: int, blocked: np.ndarray) -> None:
        self.catalog = catalog
        self.k = k
        self.allowed = catalog.servable & ~blocked
        self.items: list[dict[str, Any]] = []
        self.strategy = ""

    @property
    def full(self) -> bool:
        """True once k items are picked."""
        return len(self.items) >= self.k

    def take(self, scores: np.ndarray, source: str, positive_only: bool = True) -> None:
        """Add the best allowed items of `scores` (padded/truncated to the catalog size),
        labelled `source`; with `positive_only`, only items scoring above 0."""
        if self.full:
            return
        n = len(self.catalog)
        m = min(n, scores.shape[0])
        head = np.asarray(scores[:m], dtype=np.float64)
        # the candidates: allowed, finite (and positive): usually far fewer than n items
        ok = self.allowed[:m] & np.isfinite(head)
        if positive_only:
            ok &= head > 0
        candidates = np.flatnonzero(ok)
        if not candidates.size:
            return
        best = top_k(head[candidates], self.k - len(self.items))
        res = Results(candidates[best.ids], best.scores)
        added = False
        for idx, score in zip(res.ids.tolist(), res.scores.tolist(), strict=True):
            if not np.isfinite(score):
                continue
            self.items.append(self.catalog.describe(idx, score, source))
            self.allowed[idx] = False
            added = True
        if added and not self.strategy:
            self.strategy = source
