"""User-based collaborative filtering: cosine with shrinkage over training users, top-k.

A history row h (any user, known at training time or not) is compared with every training
user v: sim(h, v) = <w(h), w(x_v)> / (|w(h)| |w(x_v)| + shrink), where w is the feature
weighting (`none`, `tfidf`, `bm25`: users are the documents, items the terms, so popular
items count less). The `neighbors` most similar users with a positive similarity are kept,
and the score of item j is sum_v sim(h, v) * x_vj over them (x binarised with `binary`).

When `users` gives a row's training index, that user is left out of their own neighbours:
their own row would otherwise be their nearest neighbour, take a slot and only add score to
items they have already seen.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.recommenders.base import Recommender, as_csr, register
from shelfwise.recommenders.itemknn import (
    KNNConfig,
    Weighting,
    average_row_length,
    column_idf,
    knn_space,
    weigh_rows,
)
from shelfwise.recommenders.space import SearchSpace

_SCORE_CELLS = 1 << 24  # rows x training users computed at once while scoring


class UserKNNConfig(KNNConfig):
    """User-kNN: TF-IDF weighting and a smaller neighbourhood range by default."""

    SEARCH_SPACE: ClassVar[SearchSpace] = knn_space(neighbors=(5, 400))

    weighting: Weighting = "tfidf"


@register
class UserKNN(Recommender):
    """User-user cosine kNN, scoring any history row against the training users."""

    name = "userknn"
    Config = UserKNNConfig
    config: UserKNNConfig

    def __init__(self, config: UserKNNConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.train = sp.csr_matrix((0, 0), dtype=np.float32)
        self.idf = np.zeros(0, dtype=np.float32)
        self.average_length = 0.0
        self._weighted_t = sp.csr_matrix((0, 0), dtype=np.float32)
        self._norms = np.zeros(0, dtype=np.float32)

    @property
    def n_users(self) -> int:
        """Number of training users (candidate neighbours)."""
        return int(self.train.shape[0])

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> UserKNN:
        """Keep the (binarised) training matrix and its weighting statistics."""
        x = as_csr(interactions)
        if self.config.binary:
            x = x.copy()
            x.data = (x.data > 0).astype(np.float32)
            x.eliminate_zeros()
        self.train = x
        self.idf = column_idf(x)
        self.average_length = average_row_length(x)
        self._prepare()
        self.n_items = int(x.shape[1])
        return self

    def _prepare(self) -> None:
        """Weighted training rows (transposed, for history @ W^T) and their norms."""
        weighted = self._weigh(self.train)
        self._weighted_t = sp.csr_matrix(weighted.T)
        self._norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        self._norms = self._norms.astype(np.float32)

    def _weigh(self, x: sp.csr_matrix) -> sp.csr_matrix:
        if self.config.binary:
            x = x.copy()
            x.data = (x.data > 0).astype(np.float32)
        c = self.config
        return weigh_rows(x, c.weighting, self.idf, self.average_length, c.bm25_k1, c.bm25_b)

    def neighbours(
        self, histories: sp.csr_matrix, users: np.ndarray | None = None
    ) -> sp.csr_matrix:
        """Rows x training users: the top-k positive similarities of each history row."""
        self._check_fitted()
        histories = sp.csr_matrix(histories, dtype=np.float32)
        weighted = self._weigh(histories)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        dots = np.asarray((weighted @ self._weighted_t).toarray(), dtype=np.float32)
        denom = norms[:, None].astype(np.float32) * self._norms[None, :] + self.config.shrink
        sims = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
        if users is not None:
            users = np.asarray(users, dtype=np.int64)
            own = np.flatnonzero((users >= 0) & (users < self.n_users))
            sims[own, users[own]] = 0.0
        k = min(self.config.neighbors, self.n_users)
        if k < self.n_users:
            drop = np.argpartition(-sims, k - 1, axis=1)[:, k:]
            np.put_along_axis(sims, drop, 0.0, axis=1)
        sims[sims < 0] = 0.0
        return sp.csr_matrix(sims)

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """sum over the top-k neighbour users of similarity * their interactions."""
        self._check_fitted()
        histories = sp.csr_matrix(histories, dtype=np.float32)
        out = np.zeros((histories.shape[0], self.n_items), dtype=np.float32)
        step = max(1, _SCORE_CELLS // max(self.n_users, 1))
        for start in range(0, histories.shape[0], step):
            stop = min(start + step, histories.shape[0])
            block_users = None if users is None else np.asarray(users)[start:stop]
            sims = self.neighbours(histories[start:stop], block_users)
            out[start:stop] = (sims @ self.train).toarray()
        return out

    def _arrays(self) -> dict[str, np.ndarray]:
        x = self.train
        return {
            "data": x.data,
            "indices": x.indices,
            "indptr": x.indptr,
            "shape": np.asarray(x.shape, dtype=np.int64),
            "idf": self.idf,
            "average_length": np.asarray([self.average_length], dtype=np.float64),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        shape = tuple(int(v) for v in arrays["shape"])
        self.train = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape, dtype=np.float32
        )
        self.idf = arrays["idf"].astype(np.float32)
        self.average_length = float(arrays["average_length"][0])
        self._prepare()
