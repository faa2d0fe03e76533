"""Item-based collaborative filtering: cosine similarity with shrinkage, top-k neighbours.

sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrink), keeping the k most similar items per
item; a user's score for j is the sum over their history of weight(i) * sim(i, j).

`weighting` re-weights the users x items matrix before the similarity, as implicit's
`TFIDFRecommender` / `BM25Recommender` do: each item is a document whose terms are its users,
so users who interacted with many items count less (idf) and, with BM25, an item's entries
are normalised by its length (number or weight of its users). The helpers `column_idf` and
`weigh_rows` are shared with `userknn`, which applies them the other way round (users are
the documents, items the terms).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register
from shelfwise.recommenders.space import Choice, FloatRange, IntRange, SearchSpace, when

Weighting = Literal["none", "tfidf", "bm25"]

#: At most this many item pairs (co-occurring, i.e. non-zero products) are held at once in
#: `ItemKNN.fit`: rows are grouped so that the multiply-adds of a block's sparse product, an
#: upper bound of its non-zeros, stay under this (about 0.5 GB of temporaries at 2**25). The
#: product is never dense: its cost follows the co-occurrences, not items x items.
BLOCK_CELLS = 2**25


def row_blocks(work: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive [start, stop) row ranges whose summed `work` stays under `budget` (a row
    over budget on its own is a block of one)."""
    bounds, start, total = [], 0, 0
    for row, cost in enumerate(work.tolist()):
        if total + cost > budget and row > start:
            bounds.append((start, row))
            start, total = row, 0
        total += cost
    if start < work.size:
        bounds.append((start, int(work.size)))
    return bounds


def top_k_per_row(block: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, cols, vals) of the `k` largest positive entries of each row of `block` (ties:
    the lower column first)."""
    block.sum_duplicates()
    counts = np.diff(block.indptr)
    rows = np.repeat(np.arange(block.shape[0]), counts)
    order = np.lexsort((block.indices, -block.data, rows))
    rank = np.arange(order.size) - np.repeat(block.indptr[:-1], counts)
    keep = order[(rank < k) & (block.data[order] > 0)]
    return rows[keep], block.indices[keep], block.data[keep]


def column_idf(x: sp.csr_matrix) -> np.ndarray:
    """Per column (term): log(n_rows) - log(1 + rows holding it), floored at 0 (float32).

    The idf of implicit's `tfidf_weight` / `bm25_weight`; the floor only matters for a term
    present in every row, which implicit would give a slightly negative weight.
    """
    n_rows = max(x.shape[0], 1)
    df = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    return np.maximum(np.log(n_rows) - np.log1p(df), 0.0).astype(np.float32)


def weigh_rows(
    x: sp.csr_matrix,
    scheme: Weighting,
    idf: np.ndarray,
    average_length: float,
    k1: float = 100.0,
    b: float = 0.8,
) -> sp.csr_matrix:
    """Rows are documents, columns terms; returns a re-weighted float32 CSR copy.

    - `none`: unchanged.
    - `tfidf`: sqrt(x) * idf (implicit's `tfidf_weight`).
    - `bm25`: x (k1 + 1) / (k1 * norm + x) * idf with norm = (1 - b) + b * len / avg_len,
      where len is the row's sum (implicit's `bm25_weight`). `average_length` is that of the
      training rows, so a row scored later is weighted exactly as in training.
    """
    out = sp.csr_matrix(x, dtype=np.float32, copy=True)
    if scheme == "none" or out.nnz == 0:
        return out
    data = out.data.astype(np.float64)
    col_idf = idf[out.indices].astype(np.float64)
    if scheme == "tfidf":
        out.data = (np.sqrt(np.maximum(data, 0.0)) * col_idf).astype(np.float32)
    else:
        row_len = np.repeat(
            np.asarray(out.sum(axis=1), dtype=np.float64).ravel(), np.diff(out.indptr)
        )
        norm = (1.0 - b) + b * row_len / (average_length if average_length > 0 else 1.0)
        out.data = (data * (k1 + 1.0) / (k1 * norm + data) * col_idf).astype(np.float32)
    out.eliminate_zeros()
    return out


def average_row_length(x: sp.csr_matrix) -> float:
    """Mean row sum (the BM25 average document length)."""
    return float(np.asarray(x.sum(axis=1)).mean()) if x.shape[0] else 0.0


def knn_space(neighbors: tuple[int, int]) -> SearchSpace:
    """The search space of the kNN models: the weighting, a log range of neighbourhood
    sizes, the shrinkage, and BM25's `b` when the weighting is BM25."""
    return {
        "weighting": Choice(("none", "tfidf", "bm25")),
        "neighbors": IntRange(*neighbors, log=True),
        "shrink": FloatRange(0.1, 200.0, log=True),
        "bm25_b": FloatRange(0.0, 1.0, when=when("weighting", "bm25")),
    }


class KNNConfig(ModelConfig):
    """Neighbourhood size, shrinkage, whether to binarise interactions first, and the
    feature weighting (`none`, `tfidf`, `bm25` with `bm25_k1` / `bm25_b`); shared by the
    item- and user-based models."""

    SEARCH_SPACE: ClassVar[SearchSpace] = knn_space(neighbors=(10, 500))

    neighbors: int = Field(default=100, ge=1)
    shrink: float = Field(default=10.0, ge=0.0)
    binary: bool = True
    weighting: Weighting = "none"
    bm25_k1: float = Field(default=100.0, gt=0.0)
    bm25_b: float = Field(default=0.8, ge=0.0, le=1.0)


class ItemKNNConfig(KNNConfig):
    """Item-kNN: no feature weighting by default."""


@register
class ItemKNN(Recommender):
    """Item-item cosine kNN."""

    name = "itemknn"
    Config = ItemKNNConfig
    config: ItemKNNConfig

    def __init__(self, config: ItemKNNConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.similarity = sp.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> ItemKNN:
        """Compute the top-k neighbour matrix (items x items, sparse) from the sparse
        co-occurrence product, in blocks of item rows bounded by `BLOCK_CELLS`."""
        x = as_csr(interactions)
        if self.config.binary:
            x = x.copy()
            x.data = (x.data > 0).astype(np.float32)
        xt = sp.csc_matrix(x, dtype=np.float32).T.tocsr()  # items x users
        if self.config.weighting != "none":  # items are the documents, users the terms
            xt = weigh_rows(
                xt,
                self.config.weighting,
                column_idf(xt),
                average_row_length(xt),
                self.config.bm25_k1,
                self.config.bm25_b,
            )
        norms = np.sqrt(np.asarray(xt.multiply(xt).sum(axis=1)).ravel()).astype(np.float32)
        n_items = x.shape[1]
        k = min(self.config.neighbors, max(n_items - 1, 1))
        x_users = xt.T.tocsr()  # users x items
        # multiply-adds of item i's row of xt @ xt.T: the sum of its users' item counts
        user_items = np.diff(x_users.indptr).astype(np.int64)
        work = (
            sp.csr_matrix(
                (np.ones_like(xt.data, dtype=np.int64), xt.indices, xt.indptr), shape=xt.shape
            )
            @ user_items
        )
        rows, cols, vals = [], [], []
        shrink = np.float32(self.config.shrink)
        for start, stop in row_blocks(np.asarray(work), BLOCK_CELLS):
            dots = (xt[start:stop] @ x_users).tocsr()  # sparse: co-occurring pairs only
            block_rows = np.repeat(np.arange(start, stop), np.diff(dots.indptr))
            denom = norms[block_rows] * norms[dots.indices] + shrink
            with np.errstate(divide="ignore", invalid="ignore"):
                dots.data = np.where(denom > 0, dots.data / denom, 0.0).astype(np.float32)
            dots.data[block_rows == dots.indices] = 0.0  # no self-similarity
            r, c, v = top_k_per_row(dots, k)
            rows.append(r + start)
            cols.append(c)
            vals.append(v)
        self.similarity = sp.csr_matrix(
            (
                np.concatenate(vals) if vals else np.zeros(0, np.float32),
                (
                    np.concatenate(rows) if rows else np.zeros(0, np.int64),
                    np.concatenate(cols) if cols else np.zeros(0, np.int64),
                ),
            ),
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
