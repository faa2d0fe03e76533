"""EASE^R (Steck 2019): a shallow item-item autoencoder with a closed-form solution.

B = argmin ||X - X B||^2 + l2 ||B||^2 subject to diag(B) = 0 is
B = I - P diag(1 / diag(P)) with P = (X^T X + l2 I)^-1, i.e. B_ij = -P_ij / P_jj and
B_jj = 0. A history row h (any user) scores h @ B.

`l2` scales with the entries of X^T X (co-occurrence counts): the paper uses 500 on
MovieLens-20M-sized data, and 500 is also a good value for a binarised MovieLens-100K; much
sparser or much larger data sets may want 50-5000.

B is a dense items x items float32 matrix and fitting inverts a dense matrix of the same size:
up to 10,000 items in float64 (`numpy.linalg.inv`), above that in float32 and in place
(LAPACK `spotrf` + `spotri` on the Gram matrix's own buffer: a Cholesky factorisation and
the inverse from it, then the triangle mirrored block by block), so a 23,715-item catalogue
needs one 2.1 GiB matrix rather than the 16 GiB `numpy.linalg.inv` takes (it computes in
float64 whatever the input, and allocates the identity and the result beside it).
`ease_memory_bytes` is that estimate of the dense matrices (the sparse X^T X product,
densified into them, comes on top while it lives); `fit` refuses catalogs above
`max_items` items with a `ConfigError` that says how much memory they would need.
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
    """(peak bytes of the dense matrices while fitting, bytes of the stored B) for a
    catalog of n_items: up to 10,000 items the float64 Gram matrix, `numpy.linalg.inv`'s
    identity and result (3 x 8 bytes a cell) and B (4); above, one float32 matrix inverted
    in place (4 bytes a cell), which becomes B."""
    cells = n_items * n_items
    if n_items <= _FLOAT64_UP_TO:
        return 3 * 8 * cells + 4 * cells, 4 * cells
    return 4 * cells, 4 * cells


def memory_text(n_bytes: int) -> str:
    """Bytes as the refusal message quotes them: GiB with one decimal from 1 GiB, else whole
    MiB from 1 MiB, else whole KiB from 1 KiB, else bytes (2,249,604,900 -> "2.1 GiB",
    63,000,000 -> "60 MiB", 25,200 -> "25 KiB", 196 -> "196 bytes")."""
    if n_bytes >= 2**30:
        return f"{n_bytes / 2**30:,.1f} GiB"
    if n_bytes >= 2**20:
        return f"{n_bytes / 2**20:,.0f} MiB"
    if n_bytes >= 2**10:
        return f"{n_bytes / 2**10:,.0f} KiB"
    return f"{n_bytes:,} bytes"


def _inverse_in_place_f32(gram: np.ndarray) -> np.ndarray:
    """Inverse of a symmetric positive definite float32 C-ordered matrix, overwriting it."""
    from scipy.linalg import lapack

    n = gram.shape[0]
    fortran = gram.T  # the same buffer, Fortran-ordered: LAPACK works on it in place
    c, info = lapack.spotrf(fortran, lower=0, overwrite_a=1, clean=0)
    if info != 0:
        raise ConfigError(f"ease: the Gram matrix is not positive definite (spotrf info {info})")
    c, info = lapack.spotri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise ConfigError(f"ease: inverting the Cholesky factor failed (spotri info {info})")
    p = np.asarray(c.T)  # upper triangle of the Fortran view = lower triangle of p
    if not np.shares_memory(p, gram):  # pragma: no cover - LAPACK copied after all
        gram[...] = p
        p = gram
    block = 2048
    for start in range(0, n, block):
        end = min(n, start + block)
        square = p[start:end, start:end]
        square[...] = np.tril(square) + np.tril(square, -1).T
        p[start:end, end:] = p[end:, start:end].T
    return p


def dense_gram(x: sp.spmatrix, dtype: Any) -> np.ndarray:
    """X^T X as a dense C-ordered `dtype` array, allocated once. The sparse product is CSC,
    whose `toarray()` is Fortran-ordered, and `np.ascontiguousarray` of it would copy it
    (twice the dense memory at the peak); X^T X is symmetric, so the transposed view is the
    same matrix in C order."""
    xd = sp.csr_matrix(x, dtype=dtype)
    dense: np.ndarray = (xd.T @ xd).toarray()
    return dense if dense.flags.c_contiguous else dense.T


def ease_weights(x: sp.csr_matrix, l2: float, float64_up_to: int = _FLOAT64_UP_TO) -> np.ndarray:
    """The EASE^R closed form B (items x items, float32, zero diagonal); float64 for
    catalogs up to `float64_up_to` items, float32 in place above (see the module doc)."""
    n = x.shape[1]
    dtype = np.float64 if n <= float64_up_to else np.float32
    gram = dense_gram(x, dtype)
    gram[np.diag_indices(n)] += l2
    if dtype == np.float64:
        p: np.ndarray = np.linalg.inv(gram)
        del gram
    else:
        p = _inverse_in_place_f32(gram)
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
                f"{n:,} x {n:,} item-item matrix would need about {memory_text(peak)} "
                f"while fitting (plus the sparse co-occurrence product while it is "
                f"densified) and {memory_text(stored)} to keep. Raise max_items if the "
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
