"""Related items: the steps of an item's neighbours (collaborative, content, bought
together) and the basket co-occurrence counts bought-together reads.

The steps anchor on the request's page item (`StepContext.anchors`): `Engine.similar` and
`Engine.bought_together` ask about that item, and a user's chain may list them too
(neighbours of the page being viewed).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.vocab import Vocabulary
from shelfwise.serving.catalog import Catalog
from shelfwise.serving.chain import Step, StepContext
from shelfwise.serving.config import EngineConfig
from shelfwise.store import Store


def copurchase_counts(
    events: pd.DataFrame, vocab: Vocabulary, n_items: int
) -> tuple[sp.csr_matrix, np.ndarray]:
    """(items x items co-occurrence counts within baskets, baskets per item) of basket
    `events` (user_id, item_id, timestamp, session_id).

    A basket is a session's events (the user's day when an event has no session id); an
    item counts once per basket. Items outside `vocab` are left out."""
    ev = events[events["item_id"].notna()]
    idx = vocab.encode(ev["item_id"].astype(str).to_numpy(), unknown="minus_one")
    day = pd.to_datetime(ev["timestamp"]).dt.strftime("%Y-%m-%d")
    basket = ev["session_id"].where(ev["session_id"].notna(), ev["user_id"] + "|" + day)
    keep = idx >= 0
    codes, _ = pd.factorize(basket[keep])
    b = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (codes, idx[keep])),
        shape=(int(codes.max()) + 1 if codes.size else 0, n_items),
    )
    b.sum_duplicates()
    b.data[:] = 1.0
    co = sp.csr_matrix(b.T @ b)
    counts = np.asarray(co.diagonal(), dtype=np.float64)
    co.setdiag(0)
    co.eliminate_zeros()
    return co, counts


class CoPurchase:
    """The store's basket co-occurrence counts over the live catalogue, built on first use
    and again after `clear` (a user erased, the catalogue grown, another bundle served)."""

    def __init__(self, store: Store, basket_types: Sequence[str]) -> None:
        self.store = store
        self.basket_types = list(basket_types)
        self._lock = threading.Lock()
        self._counts: tuple[sp.csr_matrix, np.ndarray] | None = None

    def get(self, catalog: Catalog) -> tuple[sp.csr_matrix, np.ndarray]:
        """(co-occurrence counts, baskets per item) over `catalog`'s indices."""
        with self._lock:
            # a build racing a catalogue change may hold a narrower matrix: widen it
            if self._counts is None or self._counts[0].shape[0] < len(catalog):
                events = self.store.events(types=self.basket_types)
                self._counts = copurchase_counts(events, catalog.vocab, len(catalog))
            return self._counts

    @property
    def counts(self) -> tuple[sp.csr_matrix, np.ndarray] | None:
        """The counts built so far (None before the first `get` or after `clear`)."""
        return self._counts

    def clear(self) -> None:
        """Forget the counts: the next `get` reads the store again."""
        with self._lock:
            self._counts = None


class CollaborativeSimilar(Step):
    """The similarity model's neighbours of the page's item, scaled to 0..1."""

    source = "similar"

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Empty without a page item or a similarity model."""
        if not ctx.anchors.size:
            return np.zeros(0)
        return ctx.roles.collaborative(ctx.anchors)


class ContentSimilar(Step):
    """The content model's neighbours of the page's item (cosine of their vectors)."""

    source = "content"

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Empty without a page item or a content model."""
        if not ctx.anchors.size:
            return np.zeros(0)
        return ctx.roles.content_scores(ctx.anchors)


class BoughtTogether(Step):
    """Items in the page item's baskets: confidence c_ij / (c_i + `shrink`), where c_ij
    counts the baskets holding both and c_i those holding the page item."""

    source = "bought_together"

    def __init__(self, shrink: float = 2.0) -> None:
        self.shrink = shrink

    @classmethod
    def from_config(cls, config: EngineConfig) -> BoughtTogether:
        """The step with the config's shrink."""
        return cls(config.copurchase_shrink)

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Empty without a page item or basket counts."""
        if not ctx.anchors.size or ctx.copurchase is None:
            return np.zeros(0)
        idx = int(ctx.anchors[0])
        co, counts = ctx.copurchase()
        scores = np.zeros(ctx.n)
        if idx < co.shape[0]:
            row = co.getrow(idx)
            inside = row.indices < ctx.n
            scores[row.indices[inside]] = row.data[inside] / (counts[idx] + self.shrink)
        return scores
