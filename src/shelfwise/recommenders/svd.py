"""PureSVD (Cremonesi, Koren, Turrin 2010): a truncated SVD of the users x items matrix.

X ~ U S V^T with `factors` components; a history row h (any user) is projected onto the item
factor space and back: score = h V V^T. Missing cells count as 0, as the paper prescribes,
and no user factors are kept: a training user's row is their history, so known and new users
are scored the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field
from scipy.sparse.linalg import svds

from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register
from shelfwise.recommenders.space import IntRange, SearchSpace


class SVDConfig(ModelConfig):
    """Number of singular vectors (clipped to the matrix rank bound) and the ARPACK seed.

    20 factors suit MovieLens-100K; larger catalogs usually want 50-300.
    """

    factors: int = Field(default=20, ge=1)
    seed: int = 42

    SEARCH_SPACE: ClassVar[SearchSpace] = {"factors": IntRange(8, 400, log=True)}


def top_right_singular_vectors(x: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """Items x k: the right singular vectors of the k largest singular values.

    ARPACK (`svds`) with a seeded start vector when k is well below the smaller dimension;
    a dense SVD otherwise (ARPACK needs k < min(shape)).
    """
    n = min(x.shape)
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros((x.shape[1], 0), dtype=np.float32)
    if k >= n - 1:
        _, _, vt = np.linalg.svd(x.toarray().astype(np.float64), full_matrices=False)
        return np.ascontiguousarray(vt[:k].T, dtype=np.float32)
    v0 = np.random.default_rng(seed).uniform(-1.0, 1.0, size=n)
    _, s, vt = svds(x.astype(np.float64), k=k, v0=v0, solver="arpack")
    order = np.argsort(-s, kind="stable")
    return np.ascontiguousarray(vt[order].T, dtype=np.float32)


@register
class PureSVD(Recommender):
    """PureSVD: score = history @ V @ V^T."""

    name = "svd"
    Config = SVDConfig
    config: SVDConfig

    def __init__(self, config: SVDConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.item_factors = np.zeros((0, 0), dtype=np.float32)

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> PureSVD:
        """Truncated SVD; keeps V (items x factors)."""
        x = as_csr(interactions)
        self.item_factors = top_right_singular_vectors(x, self.config.factors, self.config.seed)
        self.n_items = int(x.shape[1])
        return self

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """(h V) V^T."""
        self._check_fitted()
        v = self.item_factors
        projected = np.asarray(sp.csr_matrix(histories, dtype=np.float32) @ v)
        return np.asarray(projected @ v.T, dtype=np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors = arrays["item_factors"].astype(np.float32)
