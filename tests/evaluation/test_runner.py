"""Protocols, the runner and the reports on small synthetic data with known answers."""

import json
import math
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError
from shelfwise.evaluation.protocols import align_catalog, prepare, sample_negatives
from shelfwise.evaluation.report import build_report, format_table, main_keys, render_html
from shelfwise.evaluation.runner import evaluate, sampled_metrics
from shelfwise.recommenders import base
from shelfwise.recommenders.base import ModelConfig, Recommender

# Leave-last-out toy (time order within each user as listed):
#   u1: a b c d -> train a b, validation c, test d
#   u2: a c b e -> train a c, validation b, test e
#   u3: b a d   -> train b,   validation a, test d
#   u4: a b     -> too short: all train
#   u5: a d     -> all train
#   u6: c       -> all train
# train popularity (users): a 4, b 3, c 2, d 1, e 0
SEQUENCES = {
    "u1": "abcd",
    "u2": "acbe",
    "u3": "bad",
    "u4": "ab",
    "u5": "ad",
    "u6": "c",
}


def toy_events() -> pd.DataFrame:
    rows = []
    for user, seq in SEQUENCES.items():
        for pos, item in enumerate(seq):
            rows.append(
                (user, item, "purchase", pd.Timestamp("2026-01-01") + pd.Timedelta(days=pos))
            )
    return pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp"])


class OracleConfig(ModelConfig):
    pass


class Oracle(Recommender):
    """Scores each user's test items highest: perfect by construction."""

    name = "_test_oracle"
    Config = OracleConfig
    answer: ClassVar[sp.csr_matrix] = sp.csr_matrix((0, 0))
    seen_validation: ClassVar[list[Any]] = []

    def fit(self, interactions: Any, items: pd.DataFrame | None = None, validation: Any = None):
        Oracle.seen_validation.append(validation)
        self.n_items = base.as_csr(interactions).shape[1]
        return self

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        assert users is not None
        return np.asarray(Oracle.answer[users].toarray(), dtype=np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        pass


class Broken(Oracle):
    name = "_test_broken"

    def fit(self, interactions: Any, items: pd.DataFrame | None = None, validation: Any = None):
        raise RuntimeError("boom")


@pytest.fixture()
def test_models() -> Iterator[None]:
    base.register(Oracle)
    base.register(Broken)
    try:
        yield
    finally:
        base._REGISTRY.pop(Oracle.name, None)
        base._REGISTRY.pop(Broken.name, None)


def test_prepare_loo_aligns_matrices_on_full_vocabulary():
    data = prepare(toy_events(), "loo")
    assert list(data.items.ids) == ["a", "b", "c", "d", "e"]
    assert list(data.users.ids) == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert data.train.shape == data.test.shape == data.validation.shape == (6, 5)
    assert np.bincount(data.train.indices, minlength=5).tolist() == [4, 3, 2, 1, 0]
    assert data.test_users.tolist() == [0, 1, 2]
    assert data.test[0].indices.tolist() == [3]  # u1 -> d
    assert data.validation[0].indices.tolist() == [2]  # u1 -> c
    assert data.summary["matrix"]["test_nnz"] == 3


def test_test_items_already_in_train_are_not_relevant():
    events = pd.DataFrame(
        {
            "user_id": ["u", "u", "u", "v"],
            "item_id": ["a", "b", "a", "a"],
            "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-01"]),
        }
    )
    data = prepare(events, "loo")  # u's last event repeats a, which is in train
    assert data.test.nnz == 0
    assert data.test_users.size == 0


def test_popularity_on_toy_split_hand_computed():
    data = prepare(toy_events(), "loo")
    run = evaluate(data, ["popularity"], k=2, progress=lambda _: None)["popularity"]
    assert run.error is None
    m = run.metrics
    # top-2 unseen by train popularity (a4 b3 c2 d1 e0), the validation item being history:
    #   u1 (train a b, validation c): d e -> test d at rank 1: hit
    #   u2 (train a c, validation b): d e -> test e at rank 2: hit
    #   u3 (train b,   validation a): c d -> test d at rank 2: hit
    assert run.recommendations is not None
    assert run.recommendations.tolist() == [[3, 4], [3, 4], [2, 3]]
    assert m["hr@2"] == pytest.approx(1.0)
    assert m["ndcg@2"] == pytest.approx((1 + 2 / math.log2(3)) / 3)
    assert m["precision@2"] == pytest.approx(1 / 2)
    assert m["recall@2"] == pytest.approx(1.0)
    assert m["mrr@2"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert m["map@2"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert m["coverage"] == pytest.approx(3 / 5)  # c d e recommended, a b never
    assert m["users_evaluated"] == 3


def test_loo_never_recommends_the_validation_item():
    data = prepare(toy_events(), "loo")
    run = evaluate(data, ["popularity", "itemknn"], k=3, progress=lambda _: None)
    for name, r in run.items():
        assert r.error is None, name
        assert r.recommendations is not None
        for row, user in enumerate(data.test_users):
            val = set(data.validation[user].indices.tolist())
            assert not val & set(r.recommendations[row].tolist()), (name, user)


def test_perfect_model_gets_ndcg_one_and_receives_validation(test_models):
    data = prepare(toy_events(), "loo")
    Oracle.answer = data.test
    Oracle.seen_validation.clear()
    runs = evaluate(data, [Oracle.name, Broken.name], k=3, progress=lambda _: None)
    oracle = runs[Oracle.name].metrics
    assert oracle["ndcg@3"] == pytest.approx(1.0)
    assert oracle["recall@3"] == pytest.approx(1.0)
    assert oracle["hr@3"] == pytest.approx(1.0)
    assert oracle["mrr@3"] == pytest.approx(1.0)
    assert Oracle.seen_validation and Oracle.seen_validation[0] is data.validation
    assert runs[Broken.name].error == "RuntimeError: boom"


def test_sampled_mode_known_answer():
    data = prepare(toy_events(), "loo")
    # never-interacted items: u1 {e}, u2 {d}, u3 {c, e}; with N=2 each user gets all of them
    negatives = sample_negatives(data.train + data.validation + data.test, data.test_users, 2)
    assert sorted(negatives[0].tolist()) == [-1, 4]
    assert sorted(negatives[1].tolist()) == [-1, 3]
    assert sorted(negatives[2].tolist()) == [2, 4]
    run = evaluate(data, ["popularity"], k=1, sampled=2, seed=7, progress=lambda _: None)[
        "popularity"
    ]
    m = run.metrics
    # popularity scores a4 b3 c2 d1 e0:
    #   u1: test d (1) vs e (0)       -> rank 1
    #   u2: test e (0) vs d (1)       -> rank 2
    #   u3: test d (1) vs c (2), e(0) -> rank 2
    assert m["sampled2_hr@1"] == pytest.approx(1 / 3)
    assert m["sampled2_ndcg@1"] == pytest.approx(1 / 3)
    # the per-user ranks behind them are kept, for intervals over users
    assert run.sampled_ranks is not None and run.sampled_ranks.tolist() == [1, 2, 2]
    ranks = np.array([1, 2, 2])
    assert sampled_metrics(ranks, 2, 2)["sampled2_ndcg@2"] == pytest.approx(
        (1 + 2 / math.log2(3)) / 3
    )


def test_sample_negatives_is_seeded_and_avoids_interactions():
    rng = np.random.default_rng(0)
    m = sp.random(50, 300, density=0.1, format="csr", random_state=rng)
    users = np.arange(50)
    a = sample_negatives(m, users, 100, seed=42)
    b = sample_negatives(m, users, 100, seed=42)
    c = sample_negatives(m, users, 100, seed=43)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    for u in users:
        row = a[u]
        assert len(set(row.tolist())) == 100
        assert not set(row.tolist()) & set(m[u].indices.tolist())


def test_report_json_shape_table_and_html(test_models):
    data = prepare(toy_events(), "loo")
    runs = evaluate(data, ["popularity", Broken.name], k=2, progress=lambda _: None)
    report = build_report("toy", "loo", 2, runs, split=data.summary)
    text = json.dumps(report)  # serialisable
    again = json.loads(text)
    assert list(again)[:4] == ["dataset", "protocol", "k", "results"]
    assert (again["dataset"], again["protocol"], again["k"]) == ("toy", "loo", 2)
    pop = again["results"]["popularity"]
    assert list(pop)[: len(main_keys(2))] == main_keys(2)
    assert set(main_keys(2)) == {
        "ndcg@2", "recall@2", "precision@2", "map@2", "hr@2", "mrr@2", "coverage",
        "fit_seconds", "recommend_users_per_second",
    }  # fmt: skip
    assert again["results"][Broken.name] == {"error": "RuntimeError: boom"}
    table = format_table(report)
    assert "popularity" in table and "ERROR" in table
    page = render_html(report)
    assert "<table>" in page and "<svg" in page and "ndcg@2" in page


def test_align_catalog_follows_vocabulary_order():
    data = prepare(toy_events(), "loo")
    items = pd.DataFrame({"item_id": ["e", "a", "b", "zz"], "title": ["E", "A", "B", "Z"]})
    cat = align_catalog(items, data.items)
    assert cat["item_id"].tolist() == ["a", "b", "c", "d", "e"]
    assert cat["title"].tolist()[:2] == ["A", "B"]
    assert pd.isna(cat.loc[2, "title"])


def test_holdout_protocol_uses_quarter_of_each_user():
    rows = [(f"u{u}", f"i{i}") for u in range(5) for i in range(8)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id"])
    data = prepare(events, "holdout", seed=1)
    # 8 rows per user -> round(0.75 * 8) = 6 train, 2 test
    assert np.diff(data.train.indptr).tolist() == [6] * 5
    assert np.diff(data.test.indptr).tolist() == [2] * 5


def test_holdout_per_item_split_uses_quarter_of_each_item():
    # 8 users x 5 items, every pair once: per item 8 rows -> 6 train, 2 test
    rows = [(f"u{u}", f"i{i}") for u in range(8) for i in range(5)]
    events = pd.DataFrame(rows, columns=["user_id", "item_id"])
    data = prepare(events, "holdout", seed=3, split="per-item")
    assert np.bincount(data.train.indices, minlength=5).tolist() == [6] * 5
    assert np.bincount(data.test.indices, minlength=5).tolist() == [2] * 5
    assert data.summary["params"]["by"] == "item"
    per_user = prepare(events, "holdout", seed=3)
    # per user 5 rows -> round(3.75) = 4 train, 1 test
    assert np.diff(per_user.train.indptr).tolist() == [4] * 8


def test_per_item_split_is_refused_outside_holdout():
    with pytest.raises(ConfigError, match="holdout"):
        prepare(toy_events(), "loo", split="per-item")


def test_torch_model_time_budget_and_learning_curve_in_the_report(caplog):
    from shelfwise.config_params import parse_set, validate_params

    params = parse_set(["bprmf.time_budget=0.3", "bprmf.epochs=100000", "bprmf.patience=0"])
    validate_params(params)  # the budget is a known option of torch models
    data = prepare(toy_events(), "loo")
    with caplog.at_level("INFO", logger="shelfwise.train"):
        run = evaluate(data, ["bprmf"], k=2, params=params, progress=lambda _: None)["bprmf"]
    assert run.error is None, run.error
    training = run.metrics["training"]
    assert training["stopped_by_budget"] is True
    assert 1 <= training["epochs_run"] < 100000
    assert len(training["curve"]) == training["epochs_run"]
    assert training["best_epoch"] is not None
    assert sum(e["seconds"] for e in training["curve"]) < 0.3 + 1.0
    assert any("ETA" in r.getMessage() for r in caplog.records)
    assert any("time budget" in r.getMessage() for r in caplog.records)
