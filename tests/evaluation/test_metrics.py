"""Ranking and beyond-accuracy metrics against hand-computed values and a port of
Microsoft Recommenders' pandas formulas."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.evaluation.metrics import (
    catalog_coverage,
    f1_at_k,
    graded_ndcg,
    hit_matrix,
    hit_rate_at_k,
    intra_list_diversity,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    ndcg_from_hits,
    ndcg_of_ranks,
    ndcg_of_scores,
    ndcg_per_user,
    novelty,
    popularity_bias,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

K = 3
# user A: recs 1 2 3, relevant {2, 3, 9}       -> hits 0 1 1
# user B: recs 4 5 -,  relevant {4}             -> hits 1 0 0   (padding slot)
# user C: recs 6 7 8,  relevant {}              -> skipped (no relevant items)
# user E: recs 10 11 12, relevant {10 12 20 21 22} -> hits 1 0 1
RECS = np.array([[1, 2, 3], [4, 5, -1], [6, 7, 8], [10, 11, 12]])
RELEVANT = [{2, 3, 9}, {4}, set(), {10, 12, 20, 21, 22}]
L2 = math.log2
# DCG/IDCG pieces: 1/log2(2) = 1, 1/log2(3) = 0.6309, 1/log2(4) = 0.5
IDCG3 = 1 + 1 / L2(3) + 1 / L2(4)  # ideal over min(|rel|, 3) = 3 hits


def test_precision_divides_by_k():
    # A 2/3, B 1/3, E 2/3 -> (5/3) / 3 users
    assert precision_at_k(RECS, RELEVANT, K) == pytest.approx(5 / 9)


def test_recall_divides_by_n_relevant():
    # A 2/3, B 1/1, E 2/5 -> (10/15 + 15/15 + 6/15) / 3 = 31/45
    assert recall_at_k(RECS, RELEVANT, K) == pytest.approx(31 / 45)


def test_ndcg_binary_ideal_over_min_rel_k():
    a = (1 / L2(3) + 1 / L2(4)) / IDCG3  # hits at ranks 2, 3; |rel| = 3
    b = 1.0  # hit at rank 1, |rel| = 1 -> DCG = IDCG = 1
    e = (1 + 1 / L2(4)) / IDCG3  # hits at ranks 1, 3; |rel| = 5 -> ideal over 3
    assert ndcg_at_k(RECS, RELEVANT, K) == pytest.approx((a + b + e) / 3)
    assert a == pytest.approx(0.530721, abs=1e-6)


def test_ndcg_per_user_skips_users_without_relevant_items():
    a = (1 / L2(3) + 1 / L2(4)) / IDCG3
    e = (1 + 1 / L2(4)) / IDCG3
    np.testing.assert_allclose(ndcg_per_user(RECS, RELEVANT, K), [a, 1.0, e])
    hits, n_rel = hit_matrix(RECS, RELEVANT, K)
    scored = n_rel > 0
    np.testing.assert_allclose(ndcg_from_hits(hits[scored], n_rel[scored], K), [a, 1.0, e])


def test_ndcg_of_scores_excludes_seen_items():
    scores = np.array([[0.9, 1.0, 0.1, 0.5, 0.0]])
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1, 0]], dtype=np.float32))
    # ranking 1, 0, 3, ...: hits at ranks 1 and 3
    expected = (1 + 1 / L2(4)) / (1 + 1 / L2(3))
    assert ndcg_of_scores(scores, relevant, None, 10) == pytest.approx(expected)
    # with item 0 seen (a boolean mask or a sparse matrix) the hits are at ranks 1 and 2
    seen = np.array([[True, False, False, False, False]])
    assert ndcg_of_scores(scores, relevant, seen, 10) == pytest.approx(1.0)
    assert ndcg_of_scores(scores, relevant, sp.csr_matrix(seen), 10) == pytest.approx(1.0)
    assert ndcg_of_scores(scores, sp.csr_matrix((1, 5)), None, 10) == 0.0
    # -inf entries are never ranked: only item 3 is left, a hit at rank 1 of |rel| = 2
    only_three = np.array([[-np.inf, -np.inf, -np.inf, 0.5, -np.inf]])
    assert ndcg_of_scores(only_three, relevant, None, 2) == pytest.approx(1 / (1 + 1 / L2(3)))


def test_ndcg_of_ranks_one_relevant_item():
    got = ndcg_of_ranks(np.array([1, 3, 4, 11]), 10)
    np.testing.assert_allclose(got, [1.0, 0.5, 1 / L2(5), 0.0])
    # the same as the binary nDCG of a ranking with its one hit at that rank
    assert got[1] == pytest.approx(ndcg_at_k(np.array([[7, 8, 5]]), [{5}], 10))


def test_graded_ndcg_known_answer():
    judged = [{1: 2, 2: 1, 3: 0, 9: 2}]
    # ranking 2 (gain 1), 3 (0), 1 (2); ideal 2, 2, 1 (linear gains)
    dcg = 1 / L2(2) + 0 + 2 / L2(4)
    idcg = 2 / L2(2) + 2 / L2(3) + 1 / L2(4)
    got = graded_ndcg([np.array([2, 3, 1])], judged, 10)
    assert got[0] == pytest.approx(dcg / idcg)
    # the ideal is cut at k: with k = 2 only the two grade-2 items count
    got2 = graded_ndcg([np.array([2, 3, 1])], judged, 2)
    assert got2[0] == pytest.approx((1 / L2(2)) / (2 / L2(2) + 2 / L2(3)))
    # a repeated item counts once, padding never counts, no positives -> NaN
    assert graded_ndcg([np.array([1, 1, -1])], [{1: 1}], 3)[0] == pytest.approx(1.0)
    assert np.isnan(graded_ndcg([np.array([1])], [{1: 0}], 3)[0])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        graded_ndcg([np.array([1])], [{1: 1}], 0)


def test_graded_ndcg_exponential_gain_known_answer():
    judged = [{1: 3, 2: 1, 3: 0, 9: 2}]
    # ranking 2 (gain 2^1-1 = 1), 3 (0), 1 (2^3-1 = 7); ideal 7, 3, 1
    dcg = 1 / L2(2) + 0 + 7 / L2(4)
    idcg = 7 / L2(2) + 3 / L2(3) + 1 / L2(4)
    got = graded_ndcg([np.array([2, 3, 1])], judged, 10, gain="exponential")
    assert got[0] == pytest.approx(dcg / idcg)
    # 0/1 grades: both gains agree
    ones = [{1: 1, 4: 1}]
    assert graded_ndcg([np.array([4, 5])], ones, 5, gain="exponential")[0] == pytest.approx(
        graded_ndcg([np.array([4, 5])], ones, 5)[0]
    )
    with pytest.raises(ValueError, match="gain must be"):
        graded_ndcg([np.array([1])], [{1: 1}], 3, gain="square")  # type: ignore[arg-type]


def test_graded_ndcg_with_binary_grades_is_the_binary_ndcg():
    judged = [{i: 1 for i in rel} for rel in RELEVANT]
    graded = graded_ndcg(list(RECS), judged, K)
    assert np.isnan(graded[2])  # user C has no relevant item
    np.testing.assert_allclose(graded[[0, 1, 3]], ndcg_per_user(RECS, RELEVANT, K))


def test_map_both_denominators():
    # A: precision@2 = 1/2, precision@3 = 2/3 -> sum 7/6; / min(3, 3) = / 3 -> 7/18
    # B: precision@1 = 1 -> 1 / min(3, 1) = 1 (and / |rel| = 1)
    # E: precision@1 = 1, precision@3 = 2/3 -> sum 5/3; / min(3, 5) = 5/9, / |rel| = 1/3
    assert map_at_k(RECS, RELEVANT, K) == pytest.approx((7 / 18 + 1 + 5 / 9) / 3)  # 35/54
    assert map_at_k(RECS, RELEVANT, K, denominator="n_rel") == pytest.approx(
        (7 / 18 + 1 + 1 / 3) / 3  # 31/54
    )
    with pytest.raises(ValueError, match="denominator"):
        map_at_k(RECS, RELEVANT, K, denominator="k")  # type: ignore[arg-type]


def test_mrr_hit_rate_f1():
    # first hits at ranks 2, 1, 1 -> (1/2 + 1 + 1) / 3
    assert mrr_at_k(RECS, RELEVANT, K) == pytest.approx(5 / 6)
    assert hit_rate_at_k(RECS, RELEVANT, K) == pytest.approx(1.0)
    # F1: A P=R=2/3 -> 2/3; B P=1/3 R=1 -> 1/2; E P=2/3 R=2/5 -> 1/2; mean 5/9
    assert f1_at_k(RECS, RELEVANT, K) == pytest.approx(5 / 9)


def test_ranking_metrics_matches_individual_functions_and_csr_input():
    rel = sp.csr_matrix(
        (
            np.ones(9),
            ([0, 0, 0, 1, 3, 3, 3, 3, 3], [2, 3, 9, 4, 10, 12, 20, 21, 22]),
        ),
        shape=(4, 25),
    )
    all_m = ranking_metrics(RECS, rel, K)
    assert all_m["precision@3"] == pytest.approx(5 / 9)
    assert all_m["recall@3"] == pytest.approx(31 / 45)
    assert all_m["map@3"] == pytest.approx(35 / 54)
    assert all_m["map_nrel@3"] == pytest.approx(31 / 54)
    assert all_m["mrr@3"] == pytest.approx(5 / 6)
    assert all_m["hr@3"] == pytest.approx(1.0)
    assert all_m["f1@3"] == pytest.approx(5 / 9)
    assert all_m["ndcg@3"] == pytest.approx(ndcg_at_k(RECS, RELEVANT, K))


def test_k_cuts_the_list_and_short_lists_are_padded():
    # k=1: only the first column; A misses, B and E hit
    assert precision_at_k(RECS, RELEVANT, 1) == pytest.approx(2 / 3)
    # k=5 on 3-wide lists: precision still divides by 5
    assert precision_at_k(RECS, RELEVANT, 5) == pytest.approx((2 / 5 + 1 / 5 + 2 / 5) / 3)


def test_repeated_ids_count_once():
    hits, n_rel = hit_matrix(np.array([[4, 4, 5]]), [{4, 5}], 3)
    assert hits.tolist() == [[True, False, True]]
    assert n_rel.tolist() == [2]


def test_no_scored_users_gives_zero_and_bad_input_raises():
    assert ndcg_at_k(np.array([[1, 2]]), [set()], 2) == 0.0
    with pytest.raises(ValueError, match="rows"):
        precision_at_k(RECS, RELEVANT[:2], K)
    with pytest.raises(ValueError, match="k must"):
        recall_at_k(RECS, RELEVANT, 0)


def test_coverage_novelty_popularity_bias():
    # 4 distinct valid ids (1, 2, 3, 4) out of 10
    assert catalog_coverage(np.array([[1, 2, 3], [4, -1, -1]]), 10) == pytest.approx(0.4)
    pop = np.array([8, 2, 0, 4])
    recs = np.array([[0, 1], [2, 3]])
    # -log2(8/8)=0, -log2(2/8)=2, -log2(1/8)=3 (count 0 clipped to 1), -log2(4/8)=1 -> 6/4
    assert novelty(recs, pop, n_users=8) == pytest.approx(1.5)
    # ARP: user 1 (8+2)/2 = 5, user 2 (0+4)/2 = 2 -> 3.5; normalised by max 8 -> 0.4375
    assert popularity_bias(recs, pop) == pytest.approx(3.5)
    assert popularity_bias(recs, pop, normalize=True) == pytest.approx(0.4375)


def test_intra_list_diversity_vectors_sparse_and_function():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    recs = np.array([[0, 1, 2], [0, -1, -1]])  # the second list has one item: skipped
    # pairs: (0,1) cos 0, (0,2) cos 1/sqrt2, (1,2) cos 1/sqrt2 -> mean(1 - cos)
    expected = (1 + 2 * (1 - 1 / math.sqrt(2))) / 3
    assert intra_list_diversity(recs, item_vectors=vectors) == pytest.approx(expected)
    assert intra_list_diversity(recs, item_vectors=sp.csr_matrix(vectors)) == pytest.approx(
        expected
    )

    def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a == b).astype(float)

    assert intra_list_diversity(recs, similarity=same) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="exactly one"):
        intra_list_diversity(recs)


# -- cross-check with a line-by-line port of Recommenders' pandas formulas ---------------
def _recommenders_reference(recs: np.ndarray, relevant: list[set[int]], k: int) -> dict:
    """merge_ranking_true_pred + precision/recall/ndcg/map/map_at_k of
    recommenders/evaluation/python_evaluation.py (binary relevance, top_k)."""
    pred = pd.DataFrame(
        [(u, int(i), k - r) for u, row in enumerate(recs) for r, i in enumerate(row) if i >= 0],
        columns=["u", "i", "prediction"],
    )
    true = pd.DataFrame([(u, i) for u, s in enumerate(relevant) for i in s], columns=["u", "i"])
    common = set(true["u"]) & set(pred["u"])
    true, pred = true[true["u"].isin(common)], pred[pred["u"].isin(common)]
    n_users = len(common)
    top = pred.sort_values(["u", "prediction"], ascending=[True, False]).groupby("u").head(k)
    top = top.assign(rank=top.groupby("u").cumcount() + 1)
    hit = pd.merge(top, true, on=["u", "i"])[["u", "i", "rank"]]
    counts = pd.merge(
        hit.groupby("u").size().rename("hit").reset_index(),
        true.groupby("u").size().rename("actual").reset_index(),
        on="u",
    )
    hit = hit.assign(rr=(hit.groupby("u").cumcount() + 1) / hit["rank"])
    rr = pd.merge(hit.groupby("u")["rr"].sum().reset_index(), counts, on="u")
    dcg = hit.assign(dcg=1 / np.log1p(hit["rank"])).groupby("u")["dcg"].sum().reset_index()
    dcg = pd.merge(dcg, counts, on="u")
    idcg = dcg["actual"].apply(lambda x: sum(1 / np.log1p(range(1, min(x, k) + 1))))
    return {
        "precision": (counts["hit"] / k).sum() / n_users,
        "recall": (counts["hit"] / counts["actual"]).sum() / n_users,
        "ndcg": (dcg["dcg"] / idcg).sum() / n_users,
        "map_nrel": (rr["rr"] / rr["actual"]).sum() / n_users,
        "map_min": (rr["rr"] / rr["actual"].clip(upper=k)).sum() / n_users,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_recommenders_formulas_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 40, 30, 10
    recs = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    relevant = [set(rng.choice(n_items, size=rng.integers(1, 15), replace=False).tolist())
                for _ in range(n_users)]  # fmt: skip
    ref = _recommenders_reference(recs, relevant, k)
    ours = ranking_metrics(recs, relevant, k)
    assert ours["precision@10"] == pytest.approx(ref["precision"])
    assert ours["recall@10"] == pytest.approx(ref["recall"])
    assert ours["ndcg@10"] == pytest.approx(ref["ndcg"])
    assert ours["map_nrel@10"] == pytest.approx(ref["map_nrel"])
    assert ours["map@10"] == pytest.approx(ref["map_min"])


def test_per_user_ranking_known_answer_and_means():
    from shelfwise.evaluation.metrics import per_user_ranking, ranking_metrics

    recs = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    # user 0: relevant {1}, hit at rank 2; user 1: relevant {3, 9}, hit at rank 1; user 2:
    # no relevant item (not scored)
    relevant = sp.csr_matrix((np.ones(3), ([0, 1, 1], [1, 3, 9])), shape=(3, 10), dtype=np.float32)
    per_user = per_user_ranking(recs, relevant, 3)
    assert per_user["precision@3"] == pytest.approx([1 / 3, 1 / 3])
    assert per_user["recall@3"] == pytest.approx([1.0, 0.5])
    assert per_user["hr@3"] == pytest.approx([1.0, 1.0])
    assert per_user["mrr@3"] == pytest.approx([0.5, 1.0])
    assert per_user["ndcg@3"] == pytest.approx([1 / math.log2(3), 1 / (1 + 1 / math.log2(3))])
    assert per_user["map_nrel@3"] == pytest.approx([0.5, 0.5])
    means = ranking_metrics(recs, relevant, 3)
    assert means == pytest.approx({k: float(v.mean()) for k, v in per_user.items()})
