"""Trending items: popularity with time decay, optionally ranked within categories.

Where the decay happens. An `Interactions` matrix carries weights, not timestamps, so the
decay is applied when events become a matrix, by `build_interactions` with
`InteractionWeights(half_life_days=...)`: each event counts `0.5 ** (age / half_life)`,
age measured from the newest event. Hence two ways to fit:

- `fit_events(events, item_vocab)` (the usual one): builds that decayed matrix from an
  events frame with this model's `half_life_days`, over the columns of `item_vocab` (the
  training matrix's item vocabulary, so indices line up with the other models), then `fit`s.
- `fit(interactions)`: takes the matrix's weights as they are. Trending is then the column
  sums of that matrix, i.e. time-decayed only if the caller built it with a half-life;
  `half_life_days` of this config is not applied (it cannot be, without timestamps).

Score. trend(i) = sum of item i's decayed weights. Without `by_category` (or without a
catalog) every user gets trend(i), scaled so the top item scores 1. With `by_category` and
the catalog given to `fit`, items compete within their top-level category (the part of
`category` before the first ">"): base(i) = trend(i) / max trend in i's category, so each
category's hottest item scores 1; a user's score is base(i) * (1 + category_boost * a),
where a is the share of the user's history weight falling in i's category. An empty history
gets base(i): the top of every category.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import DataError
from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register
from shelfwise.recommenders.space import Choice, FloatRange, SearchSpace, when


class TrendingConfig(ModelConfig):
    """Half-life of the decay (days, used by `fit_events`), per-category ranking, and the
    boost of categories in the user's history (with `by_category`)."""

    half_life_days: float = Field(default=7.0, gt=0.0)
    by_category: bool = False
    category_boost: float = Field(default=4.0, ge=0.0)

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "by_category": Choice((False, True)),
        "category_boost": FloatRange(0.1, 50.0, log=True, when=when("by_category", True)),
        "half_life_days": FloatRange(0.5, 365.0, log=True),
    }


def top_level_categories(items: pd.DataFrame, n_items: int) -> np.ndarray:
    """Per item (catalog row) a category code; items without a category share one code."""
    if len(items) != n_items:
        raise DataError(
            f"the catalog has {len(items):,} rows but the matrix {n_items:,} item columns; "
            "pass one catalog row per matrix column, in column order"
        )
    if "category" not in items.columns:
        raise DataError("by_category needs a 'category' column in the catalog")
    names = [
        str(value).split(">", 1)[0].strip() if isinstance(value, str) else ""
        for value in items["category"].tolist()
    ]
    codes, _ = pd.factorize(pd.Series(names, dtype=object))
    return np.asarray(codes, dtype=np.int64)


@register
class Trending(Recommender):
    """Time-decayed popularity, optionally per top-level category (see the module doc)."""

    name = "trending"
    Config = TrendingConfig
    config: TrendingConfig

    def __init__(self, config: TrendingConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.trend = np.zeros(0, dtype=np.float32)
        self.categories = np.zeros(0, dtype=np.int64)  # empty: no per-category ranking

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> Trending:
        """Column sums of the (already decayed) matrix; the catalog's categories with
        `by_category`."""
        x = as_csr(interactions)
        n_items = int(x.shape[1])
        self.trend = np.asarray(x.sum(axis=0), dtype=np.float32).ravel()
        self.categories = np.zeros(0, dtype=np.int64)
        if self.config.by_category and items is not None:
            self.categories = top_level_categories(items, n_items)
        self.n_items = n_items
        return self

    def fit_events(
        self,
        events: pd.DataFrame,
        item_vocab: Vocabulary,
        items: pd.DataFrame | None = None,
        weights: InteractionWeights | None = None,
        now: datetime | pd.Timestamp | str | None = None,
    ) -> Trending:
        """Fit from raw events (needs `timestamp`), decayed with this config's half-life.

        `weights` gives the event-type weights (its own half-life is replaced by
        `half_life_days`); `now` is the reference time (default: the newest event). Events
        of items outside `item_vocab` are ignored.
        """
        weights = weights or InteractionWeights()
        decayed = weights.model_copy(update={"half_life_days": self.config.half_life_days})
        matrix = build_interactions(
            events, decayed, items=item_vocab, now=now, drop_unknown=True
        ).matrix
        return self.fit(matrix, items)

    def base_scores(self) -> np.ndarray:
        """Per item: trend / max trend overall, or within its category with `by_category`."""
        self._check_fitted()
        trend = self.trend.astype(np.float64)
        if self.categories.size:
            top = np.zeros(int(self.categories.max()) + 1)
            np.maximum.at(top, self.categories, trend)
            scale = top[self.categories]
        else:
            scale = np.full(self.n_items, trend.max() if trend.size else 0.0)
        return np.divide(trend, scale, out=np.zeros_like(trend), where=scale > 0)

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """The trend, boosted per category by the history's category shares."""
        base = self.base_scores().astype(np.float32)
        n_rows = histories.shape[0]
        if not self.categories.size:
            return np.broadcast_to(base, (n_rows, self.n_items))
        n_cat = int(self.categories.max()) + 1
        onehot = sp.csr_matrix(
            (np.ones(self.n_items, np.float32), (np.arange(self.n_items), self.categories)),
            shape=(self.n_items, n_cat),
        )
        h = sp.csr_matrix(histories, dtype=np.float32)
        h.data = np.abs(h.data)
        per_cat = np.asarray((h @ onehot).toarray(), dtype=np.float32)
        total = per_cat.sum(axis=1, keepdims=True)
        share = np.divide(per_cat, total, out=np.zeros_like(per_cat), where=total > 0)
        boost = 1.0 + self.config.category_boost * share[:, self.categories]
        return np.asarray(base[None, :] * boost, dtype=np.float32)

    def similar_items(self, item: int, k: int = 10) -> Any:
        """Trending has no notion of item similarity."""
        raise NotImplementedError("trending does not compute item similarity")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"trend": self.trend, "categories": self.categories}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.trend = arrays["trend"].astype(np.float32)
        self.categories = arrays["categories"].astype(np.int64)
