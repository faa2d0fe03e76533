"""EASE^R (Steck 2019): a shallow item-item autoencoder with a closed-form solution.

B = argmin ||X - X B||^2 + l2 ||B||^2 subject to diag(B) = 0 is
B = I - P diag(1 / diag(P)) with P = (X^T X + l2 I)^-1, i.e. B_ij = -P_ij / P_jj and
B_jj = 0. A history row h (any user) scores h @ B.

`l2` scales with the entries of X^T X (co-occurrence counts): the paper uses 500 on
MovieLens-20M-sized data, and 500 is also a good value for a binarised MovieLens-100K; much
sparser or much larger data sets may want 50-5000.

B is a dense items x items float32 matrix and fitting inverts a dense matrix of the same size
(float64 up to 10,000 items, float32 above to halve the memory), so `fit` refuses catalogs
above `max_items` items with a `ConfigError` that says how much memory they would need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from shelfwise.errors import ConfigError
from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register
from shelfwise.recommenders.space import FloatRange, SearchSpace

_FLOAT64_UP_TO = 10_000


class EASEConfig(ModelConfig):
    """L2 penalty of the item-item weights, and the largest catalog to accept."""

    l2: float = Field(default=500.0, gt=0.0)
    max_items: int = Field(default=50_000, ge=1)

    SEARCH_SPACE: ClassVar[SearchSpace] = {"l2": FloatRange(1.0, 1e4, log=True)}

    @classmethod
    def from_search(cls, params: Mapping[str, Any]) -> Self:
        """The drawn `l2` rounded to two significant figures (458.6 -> 460). Validation
        NDCG is flat to within a few 1e-4 over a wide band of l2 (about 290-540 on
        MovieLens 100K), so finer values only chase that ripple; rounded, a draw that
        repeats an earlier value is answered by the tuner from the earlier trial instead of
        being fitted again."""
        values = dict(params)
        if "l2" in values:
            values["l2"] = significant(float(values["l2"]), 2)
        return cls(**values)


def significant(value: float, digits: int) -> float:
    """`value` rounded to `digits` significant figures."""
    if value == 0.0 or not np.isfinite(value):
        return value
    return float(round(value, digits - 1 - int(np.floor(np.log10(abs(value))))))


def ease_memory_bytes(n_items: int) -> tuple[int, int]:
    """(peak bytes while fitting, bytes of the stored B) for a catalog of n_items."""
    cell = 8 if n_items <= _FLOAT64_UP_TO else 4
    return 2 * n_items * n_items * cell, n_items * n_items * 4


def ease_weights(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """The EASE^R closed form B (items x items, float32, zero diagonal)."""
    n = x.shape[1]
    dtype = np.float64 if n <= _FLOAT64_UP_TO else np.float32
    xd = sp.csr_matrix(x, dtype=dtype)
    gram: np.ndarray = np.asarray((xd.T @ xd).toarray(), dtype=dtype)
    gram[np.diag_indices(n)] += l2
    p: np.ndarray = np.linalg.inv(gram)
    del gram
    p /= -np.diag(p)[None, :]
    p[np.diag_indices(n)] = 0.0
    return p.astype(np.float32, copy=False)


@register
class EASE(Recommender):
    """EASE^R: score = history @ B."""

    name = "ease"
    Config = EASEConfig
    config: EASEConfig

    def __init__(self, config: EASEConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.weights = np.zeros((0, 0), dtype=np.float32)

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> EASE:
        """Closed-form fit; `ConfigError` for a catalog above `max_items`."""
        x = as_csr(interactions)
        n = int(x.shape[1])
        if n > self.config.max_items:
            peak, stored = ease_memory_bytes(n)
            raise ConfigError(
                f"ease: {n:,} items exceed max_items={self.config.max_items:,}; the dense "
                f"{n:,} x {n:,} item-item matrix would need about {peak / 2**30:,.1f} GiB "
                f"while fitting and {stored / 2**30:,.1f} GiB to keep. Raise max_items if the "
                "machine has that memory, or restrict the catalog (e.g. to items with enough "
                "interactions) or use another model (itemknn, als)"
            )
        self.weights = ease_weights(x, self.config.l2)
        self.n_items = n
        return self

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """h @ B."""
        self._check_fitted()
        return np.asarray(sp.csr_matrix(histories, dtype=np.float32) @ self.weights, np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights = arrays["weights"].astype(np.float32)
