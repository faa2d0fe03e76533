"""Most-popular items: the baseline, and the last step of every fallback chain."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register


class PopularityConfig(ModelConfig):
    """`users`: count distinct users per item; `weight`: sum of interaction weights."""

    by: Literal["users", "weight"] = "users"


@register
class Popularity(Recommender):
    """Scores every item by its popularity, the same for every user."""

    name = "popularity"
    Config = PopularityConfig
    personalised = False
    config: PopularityConfig

    def __init__(self, config: PopularityConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> Popularity:
        """Count per item."""
        x = as_csr(interactions)
        if self.config.by == "users":
            counts = np.bincount(x.indices[x.data > 0], minlength=x.shape[1])
        else:
            counts = np.asarray(x.sum(axis=0)).ravel()
        self.popularity = counts.astype(np.float32)
        self.n_items = x.shape[1]
        return self

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """The popularity vector, repeated per row."""
        self._check_fitted()
        return np.broadcast_to(self.popularity, (histories.shape[0], self.n_items))

    def similar_items(self, item: int, k: int = 10) -> Any:
        """Popularity has no notion of similarity."""
        raise NotImplementedError("popularity does not compute item similarity")

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.popularity = arrays["popularity"].astype(np.float32)
