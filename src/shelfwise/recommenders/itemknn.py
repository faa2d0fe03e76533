"""Item-based collaborative filtering: cosine similarity with shrinkage, top-k neighbours.

sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrink), keeping the k most similar items per
item; a user's score for j is the sum over their history of weight(i) * sim(i, j).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register


class ItemKNNConfig(ModelConfig):
    """Neighbourhood size, shrinkage and whether to binarise interactions first."""

    neighbors: int = Field(default=100, ge=1)
    shrink: float = Field(default=10.0, ge=0.0)
    binary: bool = True


@register
class ItemKNN(Recommender):
    """Item-item cosine kNN."""

    name = "itemknn"
    Config = ItemKNNConfig
    config: ItemKNNConfig

    def __init__(self, config: ItemKNNConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(
        self, interactions: Any, items: pd.DataFrame | None = None, chunk: int = 2048
    ) -> ItemKNN:
        """Compute the top-k neighbour matrix (items x items, sparse)."""
        x = as_csr(interactions)
        if self.config.binary:
            x = x.copy()
            x.data = (x.data > 0).astype(np.float32)
        xt = sp.csc_matrix(x).T.tocsr()  # items x users
        norms = np.sqrt(np.asarray(xt.multiply(xt).sum(axis=1)).ravel()).astype(np.float32)
        n_items = x.shape[1]
        k = min(self.config.neighbors, max(n_items - 1, 1))
        rows, cols, vals = [], [], []
        for start in range(0, n_items, chunk):
            stop = min(start + chunk, n_items)
            dots = (xt[start:stop] @ xt.T).toarray()
            denom = norms[start:stop, None] * norms[None, :] + self.config.shrink
            sims = np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
            sims[np.arange(stop - start), np.arange(start, stop)] = 0.0  # no self-similarity
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < n_items else None
            block_rows = np.repeat(np.arange(start, stop), k if top is not None else n_items)
            if top is not None:
                block_cols = top.ravel()
            else:
                block_cols = np.tile(np.arange(n_items), stop - start)
            block_vals = sims[block_rows - start, block_cols]
            keep = block_vals > 0
            rows.append(block_rows[keep])
            cols.append(block_cols[keep])
            vals.append(block_vals[keep])
        self.similarity = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_items, n_items),
            dtype=np.float32,
        )
        self.n_items = n_items
        return self

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """history @ similarity."""
        self._check_fitted()
        return np.asarray((histories @ self.similarity).toarray(), dtype=np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        s = self.similarity
        return {"data": s.data, "indices": s.indices, "indptr": s.indptr}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        n = arrays["indptr"].shape[0] - 1
        self.similarity = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n)
        )
