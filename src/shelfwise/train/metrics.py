"""Validation metrics for training: top-k NDCG / HR / recall of held-out items, in chunks.

Kept here (numpy only) rather than borrowed from `shelfwise.evaluation`, so models can
validate during `fit` without importing the evaluation layer above them. The definitions
match `shelfwise.evaluation.metrics` (binary gains, IDCG over min(|relevant|, k)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

ScoreRows = Callable[[np.ndarray], np.ndarray]


def topk_validation(
    score_rows: ScoreRows,
    users: np.ndarray,
    seen: sp.csr_matrix | None,
    relevant: sp.csr_matrix,
    k: int = 10,
    chunk: int = 1024,
) -> dict[str, float]:
    """Mean `ndcg@k`, `hr@k` and `recall@k` over `users`.

    `score_rows(user_block)` returns the (len(block) x n_items) scores of those users;
    items stored in the user's row of `seen` (training items) are excluded from the ranking;
    the user's row of `relevant` holds the held-out items. Users without relevant items are
    skipped; with none at all every metric is 0.
    """
    relevant = sp.csr_matrix(relevant, copy=True)
    relevant.eliminate_zeros()  # a stored 0 is not a held-out item
    users = np.asarray(users, dtype=np.int64)
    users = users[np.diff(relevant.indptr)[users] > 0]
    if users.size == 0:
        return {f"ndcg@{k}": 0.0, f"hr@{k}": 0.0, f"recall@{k}": 0.0}
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)
    ndcg, hr, recall = [], [], []
    for start in range(0, users.size, chunk):
        block = users[start : start + chunk]
        scores = np.array(score_rows(block), dtype=np.float32, copy=True)
        if seen is not None:
            s = sp.csr_matrix(seen[block])
            rows = np.repeat(np.arange(block.size), np.diff(s.indptr))
            scores[rows, s.indices] = -np.inf
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        rel = sp.csr_matrix(relevant[block])
        hits = np.asarray(rel[np.arange(block.size)[:, None], top].todense()) > 0
        n_rel = np.diff(rel.indptr)
        dcg = (hits * discounts[:kk]).sum(axis=1)
        ndcg.append(dcg / ideal[np.minimum(n_rel, k) - 1])
        hr.append(hits.any(axis=1).astype(np.float64))
        recall.append(hits.sum(axis=1) / n_rel)
    return {
        f"ndcg@{k}": float(np.concatenate(ndcg).mean()),
        f"hr@{k}": float(np.concatenate(hr).mean()),
        f"recall@{k}": float(np.concatenate(recall).mean()),
    }
