"""Small value types shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Results:
    """Ranked dense ids with their scores, best first (1-D for one query, 2-D for a batch)."""

    ids: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        if self.ids.shape != self.scores.shape:
            raise ValueError(f"ids {self.ids.shape} and scores {self.scores.shape} differ")

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def top_k(scores: np.ndarray, k: int) -> Results:
    """The k best entries of a 1-D score vector (ties broken by index), skipping -inf."""
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return Results(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
    if k < n:
        # everything tied with the k-th best competes, so ties are broken by index
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(n)
    idx = part[np.lexsort((part, -scores[part]))][:k]
    idx = idx[np.isfinite(scores[idx])]
    return Results(idx.astype(np.int64), scores[idx].astype(np.float32))


def top_k_rows(scores: np.ndarray, k: int) -> Results:
    """Row-wise top-k of a 2-D score matrix; -inf entries come back as id -1."""
    n_rows, n = scores.shape
    k = min(k, n)
    if k <= 0:
        return Results(np.empty((n_rows, 0), np.int64), np.empty((n_rows, 0), np.float32))
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(n), (n_rows, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(vals)] = -1
    return Results(ids, vals)
