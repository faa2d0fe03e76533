"""Implicit-feedback matrix factorisation by alternating least squares (Hu, Koren, Volinsky
2008), trained with the `implicit` library's CPU solver.

Each stored cell r_ui of the training matrix is a positive preference with confidence
c_ui = alpha * r_ui; cells not stored are preference 0 with confidence 1 (implicit's
convention). Scores are user factor . item factor.

A row whose training user index is given in `users` is scored with that user's learned
factors. Any other row (a new user, or `users` omitted) is folded in: its user factor is the
exact least-squares step of ALS against the fixed item factors,
x = (Y^T Y + reg I + Y^T (C - I) Y)^-1 Y^T C p, the same computation as implicit's
`recalculate_user`. A training user's own row folds in to (nearly) their learned factors.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field
from threadpoolctl import threadpool_limits

from shelfwise.errors import NotFittedError
from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register
from shelfwise.recommenders.space import FloatRange, IntRange, SearchSpace
from shelfwise.types import Results, top_k


class ALSConfig(ModelConfig):
    """Factors, L2 regularisation, confidence scaling, sweeps, seed and solver threads.

    The defaults suit a binarised MovieLens-100K-sized matrix (small data wants few factors
    and a strong penalty); larger catalogs want more factors.
    `num_threads=0` uses every core (results do not depend on it).
    """

    factors: int = Field(default=32, ge=1)
    regularization: float = Field(default=10.0, ge=0.0)
    alpha: float = Field(default=2.0, gt=0.0)
    iterations: int = Field(default=15, ge=1)
    seed: int = 42
    num_threads: int = Field(default=0, ge=0)

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "factors": IntRange(16, 256, log=True),
        "regularization": FloatRange(1e-3, 10.0, log=True),
        "alpha": FloatRange(0.5, 100.0, log=True),
        "iterations": IntRange(5, 30),
    }


def fold_in_als(
    histories: sp.csr_matrix, item_factors: np.ndarray, regularization: float, alpha: float
) -> np.ndarray:
    """User factors for history rows: one exact ALS user step against fixed item factors."""
    y = item_factors.astype(np.float64)
    f = y.shape[1]
    base = y.T @ y + regularization * np.eye(f)
    out = np.zeros((histories.shape[0], f), dtype=np.float32)
    for r in range(histories.shape[0]):
        start, stop = histories.indptr[r], histories.indptr[r + 1]
        if start == stop:
            continue
        idx = histories.indices[start:stop]
        confidence = alpha * histories.data[start:stop].astype(np.float64)
        yh = y[idx]
        positive = confidence > 0
        a = base + (yh.T * (np.abs(confidence) - 1.0)) @ yh
        b = yh[positive].T @ confidence[positive]
        out[r] = np.linalg.solve(a, b)
    return out


def similar_by_factors(item_factors: np.ndarray, item: int, k: int) -> Results:
    """The k items whose factor vectors have the highest cosine with `item`'s (itself out).

    The item-item similarity of factor models, as implicit's `similar_items`.
    """
    n_items = item_factors.shape[0]
    if not 0 <= item < n_items:
        raise ValueError(f"item index {item} outside 0..{n_items - 1}")
    factors = item_factors.astype(np.float64)
    norms = np.linalg.norm(factors, axis=1)
    denom = norms * norms[item]
    cosine = np.divide(factors @ factors[item], denom, out=np.zeros(n_items), where=denom > 0)
    cosine[item] = -np.inf
    return top_k(cosine.astype(np.float32), k)


@register
class ALS(Recommender):
    """Implicit ALS (implicit's CPU `AlternatingLeastSquares`), with fold-in for new users."""

    name = "als"
    Config = ALSConfig
    config: ALSConfig

    def __init__(self, config: ALSConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.user_factors = np.zeros((0, self.config.factors), dtype=np.float32)
        self.item_factors = np.zeros((0, self.config.factors), dtype=np.float32)
        self.epochs = 0
        self._trainer: Any = None
        self._matrix: sp.csr_matrix | None = None

    @property
    def n_users(self) -> int:
        """Number of training users with learned factors."""
        return int(self.user_factors.shape[0])

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> ALS:
        """`start` then `iterations` calls of `train_epoch`."""
        self.start(interactions)
        for _ in range(self.config.iterations):
            self.train_epoch()
        return self

    def start(self, interactions: Any) -> ALS:
        """Initialise random factors for a matrix, without training (see `train_epoch`)."""
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        self._matrix = as_csr(interactions)
        with threadpool_limits(1, "blas"):  # implicit checks (and warns about) BLAS threads
            self._trainer = AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                alpha=c.alpha,
                iterations=1,
                random_state=c.seed,
                num_threads=c.num_threads,
            )
        n_users, n_items = self._matrix.shape
        rng = np.random.default_rng(c.seed)  # implicit's own initialisation
        self._trainer.user_factors = rng.random((n_users, c.factors), dtype=np.float32) * 0.01
        self._trainer.item_factors = rng.random((n_items, c.factors), dtype=np.float32) * 0.01
        self.user_factors = self._trainer.user_factors
        self.item_factors = self._trainer.item_factors
        self.n_items = int(n_items)
        self.epochs = 0
        return self

    def train_epoch(self) -> ALS:
        """One more ALS sweep (users, then items) over the matrix given to `start`/`fit`.

        Fitting with `iterations=n` equals `start` plus n calls, so a tuner can score the
        model between sweeps. The model keeps a reference to that matrix for this; not
        available on a loaded model.
        """
        if self._trainer is None or self._matrix is None:
            raise NotFittedError("als: train_epoch continues a start() or fit() in this process")
        with threadpool_limits(1, "blas"):  # implicit's solver threads; BLAS ones only hurt
            self._trainer.fit(self._matrix, show_progress=False)
        self.user_factors = np.asarray(self._trainer.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(self._trainer.item_factors, dtype=np.float32)
        self.epochs += 1
        return self

    def user_vectors(self, histories: sp.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        """Learned factors for rows of known users, folded-in factors for the others."""
        histories = sp.csr_matrix(histories, dtype=np.float32)
        c = self.config
        out = np.zeros((histories.shape[0], self.item_factors.shape[1]), dtype=np.float32)
        known = np.zeros(histories.shape[0], dtype=bool)
        if users is not None:
            users = np.asarray(users, dtype=np.int64)
            known = (users >= 0) & (users < self.n_users)
            out[known] = self.user_factors[users[known]]
        unknown = np.flatnonzero(~known)
        if unknown.size:
            out[unknown] = fold_in_als(
                histories[unknown], self.item_factors, c.regularization, c.alpha
            )
        return out

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """user vector . item factors."""
        self._check_fitted()
        return np.asarray(self.user_vectors(histories, users) @ self.item_factors.T, np.float32)

    def similar_items(self, item: int, k: int = 10) -> Results:
        """Items by cosine of their factor vectors (itself excluded)."""
        self._check_fitted()
        return similar_by_factors(self.item_factors, item, k)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors = arrays["user_factors"].astype(np.float32)
        self.item_factors = arrays["item_factors"].astype(np.float32)
