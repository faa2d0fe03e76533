"""Intervals over seeds and paired tests, against hand-computed and scipy answers."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError
from shelfwise.evaluation.metrics import (
    calibration_kl,
    category_matrix,
    gini_exposure,
    long_tail_items,
    long_tail_share,
)
from shelfwise.evaluation.runner import ModelRun
from shelfwise.evaluation.stats import mean_interval, paired_test, seed_summary


def test_mean_interval_known_answer():
    # values 1 2 3: mean 2, s = 1, t(0.975, 2) = 4.302652729911275
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert mean == pytest.approx(2.0)
    assert (low, high) == pytest.approx((2 - half, 2 + half))
    assert mean_interval([0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(ConfigError):
        mean_interval([])


def test_paired_test_known_answer():
    a = np.array([0.5, 0.6, 0.7, 0.8])
    b = a - np.array([0.1, 0.2, 0.1, 0.2])  # differences 0.1 0.2 0.1 0.2
    res = paired_test(a, b)
    # mean 0.15, s = 0.057735, t = 0.15 / (0.057735 / 2) = 5.196, df 3 -> p = 0.013846
    assert res["mean_diff"] == pytest.approx(0.15)
    assert res["p_value_t"] == pytest.approx(0.013846, abs=1e-5)
    # Wilcoxon, 4 positive differences, exact: p = 2 / 2**4 = 0.125
    assert res["p_value_wilcoxon"] == pytest.approx(0.125)
    assert res["n_pairs"] == 4
    same = paired_test(a, a)
    assert same["p_value_t"] == 1.0 and same["p_value_wilcoxon"] == 1.0
    with pytest.raises(ConfigError, match="pair"):
        paired_test(a, a[:3])


def _run(name: str, ndcg: list[float], per_user: list[float]) -> ModelRun:
    run = ModelRun(name, metrics={"ndcg@2": float(np.mean(ndcg)), "coverage": 0.5})
    run.per_user = {"ndcg@2": np.array(per_user), "recall@2": np.array(per_user)}
    run.users = np.arange(len(per_user))
    return run


def test_seed_summary_means_intervals_and_pooled_pairs():
    seed1 = {"a": _run("a", [1.0], [1.0, 1.0]), "b": _run("b", [0.0], [0.0, 0.0])}
    seed2 = {"a": _run("a", [0.5], [0.5, 0.5]), "b": _run("b", [0.5], [1.0, 0.0])}
    runs, intervals, comparisons = seed_summary([seed1, seed2], k=2)
    assert runs["a"].metrics["ndcg@2"] == pytest.approx(0.75)
    assert intervals["a"]["ndcg@2"]["values"] == [1.0, 0.5]
    # two values 1.0 0.5: s = 0.353553, t(0.975, 1) = 12.7062 -> half 3.17655
    low, high = intervals["a"]["ndcg@2"]["ci95"]
    assert (high - low) / 2 == pytest.approx(12.706204736 * 0.353553391 / math.sqrt(2))
    ndcg = [c for c in comparisons if c["metric"] == "ndcg@2"]
    assert len(ndcg) == 1 and (ndcg[0]["a"], ndcg[0]["b"]) == ("a", "b")
    # pooled differences 1 1 -0.5 0.5 -> mean 0.5
    assert ndcg[0]["mean_diff"] == pytest.approx(0.5)
    assert ndcg[0]["n_pairs"] == 4


def test_gini_of_exposure():
    assert gini_exposure(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    # one item takes every slot of 4 items: (n - 1) / n
    assert gini_exposure(np.array([[0, -1], [0, -1]]), 4) == pytest.approx(0.75)


def test_long_tail_share():
    pop = np.array([10, 5, 3, 2])  # 20 interactions; head = items reaching 20%: item 0
    tail = long_tail_items(pop)
    assert tail.tolist() == [False, True, True, True]
    assert long_tail_share(np.array([[0, 1], [2, -1]]), tail) == pytest.approx(2 / 3)


def test_calibration_kl_known_answer():
    cats = category_matrix(["x", "y", "x|y"])
    assert cats.toarray().tolist() == [[1, 0], [0, 1], [1, 1]]
    history = sp.csr_matrix(np.array([[1, 1, 0]]))  # p = (0.5, 0.5)
    assert calibration_kl(np.array([[2]]), history, cats) == pytest.approx(0.0)  # q = p
    # list [0]: q = (1, 0) -> q~ = (0.995, 0.005) with alpha 0.01 (q~ = 0.99 q + 0.01 p)
    expected = 0.5 * math.log2(0.5 / 0.995) + 0.5 * math.log2(0.5 / 0.005)
    assert calibration_kl(np.array([[0]]), history, cats) == pytest.approx(expected)


def test_mmr_rerank_known_answer():
    from shelfwise.evaluation.runner import mmr_rerank

    cats = category_matrix(["x", "x", "y"])
    ids = np.array([[0, 1, 2]])
    scores = np.array([[1.0, 0.9, 0.1]])
    assert mmr_rerank(ids, scores, cats, 2, 1.0).tolist() == [[0, 1]]
    # lambda 0.5 after item 0: item 1 -> 0.5 * 0.888 - 0.5 * 1 < 0; item 2 -> 0 - 0 = 0
    assert mmr_rerank(ids, scores, cats, 2, 0.5).tolist() == [[0, 2]]
    assert mmr_rerank(
        np.array([[3, -1]]), np.array([[1.0, 0.0]]), category_matrix(["a", "b", "c", "d"]), 2, 0.5
    ).tolist() == [[3, -1]]
