"""Hybrid fusion: reciprocal rank fusion and weighted normalised score fusion, by hand."""

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.search.fusion import (
    RRFFusion,
    ScoreFusion,
    hybrid_fusion,
    normalise_scores,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)
from shelfwise.types import Results


def res(ids, scores=None):
    ids = np.array(ids, dtype=np.int64)
    if scores is None:
        scores = np.arange(len(ids), 0, -1, dtype=np.float32)
    return Results(ids, np.array(scores, dtype=np.float32))


def test_rrf_known_answer():
    a = res([1, 2, 3])
    b = res([3, 1, 4])
    fused = reciprocal_rank_fusion([a, b])
    expected = {
        1: 1 / 61 + 1 / 62,
        2: 1 / 62,
        3: 1 / 63 + 1 / 61,
        4: 1 / 63,
    }
    order = sorted(expected, key=lambda d: (-expected[d], d))
    assert fused.ids.tolist() == order == [1, 3, 2, 4]
    np.testing.assert_allclose(fused.scores, [expected[d] for d in order], rtol=1e-6)


def test_rrf_k_weights_and_limit():
    a, b = res([1, 2]), res([2, 1])
    # equal weights: 1 and 2 tie, smaller id first
    assert reciprocal_rank_fusion([a, b]).ids.tolist() == [1, 2]
    # weight list b twice as much: 2 wins
    fused = reciprocal_rank_fusion([a, b], k=1, weights=[1.0, 2.0], limit=1)
    assert fused.ids.tolist() == [2]
    np.testing.assert_allclose(fused.scores, [1 / 3 + 2 / 2], rtol=1e-6)


def test_rrf_ignores_padding_and_uses_best_rank_of_repeats():
    padded = Results(np.array([5, -1, -1]), np.array([1.0, -np.inf, -np.inf], np.float32))
    repeated = res([7, 5, 7])
    fused = reciprocal_rank_fusion([padded, repeated])
    got = dict(zip(fused.ids.tolist(), fused.scores.tolist(), strict=True))
    assert set(got) == {5, 7}
    assert got[7] == pytest.approx(1 / 61)
    assert got[5] == pytest.approx(1 / 61 + 1 / 62)


def test_empty_inputs():
    empty = res([], [])
    assert len(reciprocal_rank_fusion([empty, empty])) == 0
    assert len(weighted_score_fusion([empty])) == 0
    assert len(reciprocal_rank_fusion([])) == 0


def test_normalise_scores():
    np.testing.assert_allclose(normalise_scores(np.array([2.0, 4.0, 6.0])), [0, 0.5, 1])
    np.testing.assert_allclose(normalise_scores(np.array([3.0, 3.0])), [1, 1])
    z = normalise_scores(np.array([1.0, 2.0, 3.0]), "zscore")
    np.testing.assert_allclose(z, [-1.224745, 0, 1.224745], rtol=1e-5)
    np.testing.assert_allclose(normalise_scores(np.array([5.0, 5.0]), "zscore"), [0, 0])
    with pytest.raises(ConfigError):
        normalise_scores(np.array([1.0]), "rank")  # type: ignore[arg-type]


def test_weighted_minmax_known_answer():
    lexical = res([1, 2, 3], [10.0, 6.0, 2.0])  # -> 1, 0.5, 0
    dense = res([3, 4], [0.9, 0.5])  # -> 1, 0 ; ids 1, 2 missing -> 0
    fused = weighted_score_fusion([lexical, dense], weights=[0.7, 0.3])
    expected = {1: 0.7, 2: 0.35, 3: 0.3, 4: 0.0}
    assert fused.ids.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(fused.scores, [expected[d] for d in [1, 2, 3, 4]], atol=1e-6)


def test_weighted_zscore_missing_counts_as_list_minimum():
    a = res([1, 2, 3], [3.0, 2.0, 1.0])  # z = 1.22, 0, -1.22
    b = res([2], [5.0])  # z = 0 (one value); 1 and 3 missing -> 0
    fused = weighted_score_fusion([a, b], method="zscore")
    assert fused.ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(fused.scores, [1.224745, 0.0, -1.224745], rtol=1e-5)


def test_bad_weights():
    with pytest.raises(ConfigError, match="2 weights"):
        reciprocal_rank_fusion([res([1]), res([2])], weights=[1.0])
    with pytest.raises(ConfigError, match=">= 0"):
        weighted_score_fusion([res([1])], weights=[-1.0])
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([res([1])], k=0)


def test_fusion_objects_for_the_service(tmp_path):
    lexical, dense = res([1, 2, 3], [9.0, 5.0, 1.0]), res([3, 4], [0.9, 0.1])
    rrf = RRFFusion(k=1, weights=[1.0, 3.0])
    assert rrf.fuse([lexical, dense], 2).ids.tolist() == [3, 4]
    rrf.save(tmp_path / "rrf")
    assert RRFFusion.load(tmp_path / "rrf").fuse([lexical, dense], 2).ids.tolist() == [3, 4]
    score = ScoreFusion([1.0, 0.0])
    assert score.fuse([lexical, dense], 3).ids.tolist() == [1, 2, 3]
    score.save(tmp_path / "score")
    loaded = ScoreFusion.load(tmp_path / "score")
    assert (loaded.weights, loaded.method) == ([1.0, 0.0], "minmax")
    with pytest.raises(ConfigError):
        ScoreFusion(method="rank")  # type: ignore[arg-type]


def test_normalise_by_the_maximum():
    np.testing.assert_allclose(normalise_scores(np.array([2.0, 4.0, 8.0]), "max"), [0.25, 0.5, 1])
    np.testing.assert_allclose(normalise_scores(np.array([0.0, 0.0]), "max"), [0, 0])


def test_hybrid_score_fusion_known_answer():
    lexical = res([10, 20], [10.0, 5.0])  # / best: 10 -> 1, 20 -> 0.5, 30 -> 0 (no match)
    dense = res([20, 30, 10], [0.9, 0.8, 0.5])  # min-max: 20 -> 1, 30 -> 0.75, 10 -> 0
    fused = hybrid_fusion(lexical, dense, weight=0.5)
    # 10: 0.5 * 1 + 0.5 * 0 = 0.5; 20: 0.25 + 0.5 = 0.75; 30: 0 + 0.375
    assert fused.ids.tolist() == [20, 10, 30]
    np.testing.assert_allclose(fused.scores, [0.75, 0.5, 0.375], rtol=1e-6)
    # weight 0: the lexical order (a dense-only row last); weight 1: the dense order
    assert hybrid_fusion(lexical, dense, weight=0.0).ids.tolist() == [10, 20, 30]
    assert hybrid_fusion(lexical, dense, weight=1.0).ids.tolist() == [20, 30, 10]
    # a row the dense list lacks counts as its lowest score (0 after min-max)
    fused = hybrid_fusion(res([1, 2], [4.0, 2.0]), res([2, 3], [0.9, 0.3]), weight=0.5, limit=2)
    assert fused.ids.tolist() == [2, 1]  # 2: 0.25 + 0.5; 1: 0.5 + 0; 3: 0 + 0 (cut by limit)


def test_hybrid_rrf_is_weighted_rrf():
    lexical, dense = res([1, 2, 3]), res([3, 4, 1])
    half = hybrid_fusion(lexical, dense, weight=0.5, method="rrf")
    plain = reciprocal_rank_fusion([lexical, dense])
    assert half.ids.tolist() == plain.ids.tolist()
    np.testing.assert_allclose(half.scores, plain.scores / 2, rtol=1e-6)
    # (1 - w) / (k + rank) + w / (k + rank), w = 0.1, k = 1: 1: 0.45 + 0.025, 2: 0.3,
    # 3: 0.225 + 0.05, 4: 0.1 / 3
    lexical_heavy = hybrid_fusion(lexical, dense, weight=0.1, method="rrf", rrf_k=1)
    assert lexical_heavy.ids.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(lexical_heavy.scores, [0.475, 0.3, 0.275, 0.1 / 3], rtol=1e-6)


def test_hybrid_fusion_bad_input():
    with pytest.raises(ConfigError, match=r"within 0\.\.1"):
        hybrid_fusion(res([1]), res([1]), weight=1.5)
    with pytest.raises(ConfigError, match="'score' or 'rrf'"):
        hybrid_fusion(res([1]), res([1]), method="max")  # type: ignore[arg-type]
    assert len(hybrid_fusion(res([], []), res([], []))) == 0
