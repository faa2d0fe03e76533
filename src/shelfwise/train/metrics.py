"""Validation metrics for training: top-k NDCG / HR / recall of held-out items, in chunks.

The per-user definitions are `shelfwise.evaluation.metrics`' (binary gains, IDCG over
min(|relevant|, k)); that module is numpy only, so models validating during `fit` pull in
nothing of the evaluation layer beyond it. This module only ranks the score rows chunk by
chunk so that a large catalogue never needs a full users x items matrix at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from shelfwise.evaluation.metrics import hit_matrix, ndcg_from_hits
from shelfwise.types import top_k_rows

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
    ndcg, hr, recall = [], [], []
    for start in range(0, users.size, chunk):
        block = users[start : start + chunk]
        scores = np.array(score_rows(block), dtype=np.float32, copy=True)
        if seen is not None:
            s = sp.csr_matrix(seen[block])
            rows = np.repeat(np.arange(block.size), np.diff(s.indptr))
            scores[rows, s.indices] = -np.inf
        top = top_k_rows(scores, k).ids
        rel = sp.csr_matrix(relevant[block])
        hits, n_rel = hit_matrix(top, rel, k)
        ndcg.append(ndcg_from_hits(hits, n_rel, k))
        hr.append(hits.any(axis=1).astype(np.float64))
        recall.append(hits.sum(axis=1) / n_rel)
    return {
        f"ndcg@{k}": float(np.concatenate(ndcg).mean()),
        f"hr@{k}": float(np.concatenate(hr).mean()),
        f"recall@{k}": float(np.concatenate(recall).mean()),
    }
