"""topk_validation: NDCG / HR / recall at k with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.train.metrics import topk_validation

SCORES = np.array(
    [
        [0.9, 0.8, 0.7, 0.1],  # ranks items 0, 1, 2, 3
        [0.1, 0.2, 0.3, 0.4],  # ranks items 3, 2, 1, 0
        [0.5, 0.5, 0.5, 0.5],
    ],
    dtype=np.float32,
)


def rows(block: np.ndarray) -> np.ndarray:
    return SCORES[block]


def test_known_answers_with_seen_items_excluded() -> None:
    seen = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    out = topk_validation(rows, np.arange(3), seen, relevant, k=2)
    # user 0: item 0 seen, item 1 ranked first -> ndcg 1, hit; user 1: item 0 ranked 4th -> 0
    # user 2 has no held-out item and is skipped
    assert out["ndcg@2"] == pytest.approx(0.5)
    assert out["hr@2"] == pytest.approx(0.5)
    assert out["recall@2"] == pytest.approx(0.5)


def test_stored_zeros_are_not_held_out_items() -> None:
    relevant = sp.csr_matrix(
        (np.array([1.0, 0.0], np.float32), (np.array([0, 1]), np.array([0, 0]))), shape=(3, 4)
    )
    assert relevant.nnz == 2  # user 1 has a stored 0
    out = topk_validation(rows, np.arange(3), None, relevant, k=1)
    assert out["hr@1"] == pytest.approx(1.0)  # only user 0 counts, and item 0 is their top 1
    assert out["ndcg@1"] == pytest.approx(1.0)
