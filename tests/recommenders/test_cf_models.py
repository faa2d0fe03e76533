"""Known-answer tests of the collaborative models: each against a direct computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.recommenders import ALS, BPR, EASE, ItemKNN, PureSVD, Trending, UserKNN, create
from shelfwise.recommenders.itemknn import average_row_length, column_idf, weigh_rows

# users 0-2 like items 0-2, users 3-5 like items 3-5, item 6 is cold; user 1 also has 3
DENSE = np.array(
    [
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 1, 1, 0],
    ],
    dtype=np.float32,
)
X = sp.csr_matrix(DENSE)


def random_matrix(n_users: int = 60, n_items: int = 25, seed: int = 0) -> sp.csr_matrix:
    """A random binary matrix with counts (2s) here and there."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.3).astype(np.float32)
    dense[rng.random((n_users, n_items)) < 0.05] *= 2
    return sp.csr_matrix(dense)


# -- EASE --------------------------------------------------------------------------------
def test_ease_matches_the_closed_form():
    l2 = 2.0
    model = EASE(l2=l2).fit(X)
    p = np.linalg.inv(DENSE.T.astype(np.float64) @ DENSE + l2 * np.eye(7))
    expected = np.eye(7) - p / np.diag(p)[None, :]
    np.testing.assert_allclose(model.weights, expected, atol=1e-6)
    assert np.all(np.diag(model.weights) == 0)
    # the constraint-free optimum property: B_ij = -P_ij / P_jj
    assert model.weights[0, 1] == pytest.approx(-p[0, 1] / p[1, 1], rel=1e-5)
    history = model.history_matrix([0, 4])
    np.testing.assert_allclose(model.score(history)[0], expected[0] + expected[4], atol=1e-6)


def test_ease_refuses_a_catalog_above_max_items():
    with pytest.raises(
        ConfigError,
        match=r"7 items exceed max_items=6; .* about 1 KiB while fitting .* and 196 bytes to keep",
    ):
        EASE(max_items=6).fit(X)
    with pytest.raises(ConfigError, match="l2"):
        EASE(l2=0.0)


def test_ease_memory_message_for_a_large_catalog():
    x = sp.csr_matrix((1, 60_000), dtype=np.float32)
    # 60,000^2 float32 = 13.4 GiB, inverted in place (float32 above 10,000): the same to fit
    with pytest.raises(ConfigError, match=r"13\.4 GiB while fitting .* and 13\.4 GiB to keep"):
        EASE().fit(x)


# -- PureSVD -----------------------------------------------------------------------------
@pytest.mark.parametrize("factors", [2, 5])
def test_puresvd_matches_numpy_svd(factors):
    x = random_matrix()
    model = PureSVD(factors=factors).fit(x)  # ARPACK path (factors well below 25)
    _, _, vt = np.linalg.svd(x.toarray().astype(np.float64), full_matrices=False)
    v = vt[:factors].T
    np.testing.assert_allclose(
        model.item_factors @ model.item_factors.T, v @ v.T, atol=1e-5
    )  # V V^T does not depend on the signs of the singular vectors
    histories = x[:4]
    np.testing.assert_allclose(model.score(histories), histories.toarray() @ v @ v.T, atol=1e-5)


def test_puresvd_full_rank_request_uses_a_dense_svd():
    model = PureSVD(factors=50).fit(X)  # more factors than min(6, 7): clipped to 6
    assert model.item_factors.shape == (7, 6)
    # rank(X) = 6 with 6 factors: the projection reproduces every training row
    np.testing.assert_allclose(model.score(X), DENSE, atol=1e-5)


# -- user kNN ----------------------------------------------------------------------------
def test_userknn_hand_computed_neighbours():
    model = UserKNN(neighbors=2, shrink=0.0, weighting="none").fit(X)
    # history {0, 1}: cos with user 0 = 2/(sqrt2 sqrt2) = 1, user 1 = 2/(sqrt2 * 2) = 0.7071,
    # user 2 = 1/(sqrt2 sqrt2) = 0.5, users 3-5 = 0; top-2: users 0 and 1
    sims = model.neighbours(model.history_matrix([0, 1])).toarray()[0]
    np.testing.assert_allclose(sims, [1.0, 1 / np.sqrt(2), 0, 0, 0, 0], rtol=1e-6)
    scores = model.score(model.history_matrix([0, 1]))[0]
    np.testing.assert_allclose(scores, DENSE[0] + DENSE[1] / np.sqrt(2), rtol=1e-6)
    assert model.recommend([0, 1], k=2).ids.tolist() == [2, 3]


def test_userknn_shrinkage_and_own_row_left_out():
    model = UserKNN(neighbors=1, shrink=1.0, weighting="none").fit(X)
    row = X[0]
    # without `users` the nearest neighbour of user 0's row is user 0 itself
    sims = model.neighbours(row).toarray()[0]
    assert np.flatnonzero(sims).tolist() == [0]
    assert sims[0] == pytest.approx(2 / (2 + 1))
    # as training user 0, the best other user is user 1: 2 / (sqrt2 * 2 + 1)
    sims = model.neighbours(row, np.array([0])).toarray()[0]
    assert np.flatnonzero(sims).tolist() == [1]
    assert sims[1] == pytest.approx(2 / (np.sqrt(2) * 2 + 1), rel=1e-6)
    assert model.recommend([0, 1], k=1, user=0).ids.tolist() == [2]


def test_userknn_weighting_scores_history_like_training_rows():
    x = random_matrix()
    for scheme in ("tfidf", "bm25"):
        model = UserKNN(weighting=scheme, neighbors=5, binary=False).fit(x)
        idf = column_idf(x)
        weighted = weigh_rows(x, scheme, idf, average_row_length(x)).toarray()
        w = weighted[7]
        expected = weighted @ w / (np.linalg.norm(weighted, axis=1) * np.linalg.norm(w) + 10.0)
        sims = model.neighbours(x[7], np.array([-1])).toarray()[0]
        top = np.argsort(-expected, kind="stable")[:5]
        np.testing.assert_allclose(sims[top], expected[top], rtol=1e-5)
        assert np.count_nonzero(sims) == 5


# -- item kNN weighting ------------------------------------------------------------------
def test_weighting_matches_implicit():
    from implicit.nearest_neighbours import bm25_weight, tfidf_weight

    x = random_matrix()
    idf = column_idf(x)
    ours = weigh_rows(x, "bm25", idf, average_row_length(x), k1=100.0, b=0.8).toarray()
    np.testing.assert_allclose(ours, bm25_weight(x, K1=100, B=0.8).toarray(), rtol=1e-5)
    ours = weigh_rows(x, "tfidf", idf, 0.0).toarray()
    np.testing.assert_allclose(ours, tfidf_weight(x).toarray(), rtol=1e-5)
    np.testing.assert_array_equal(weigh_rows(x, "none", idf, 0.0).toarray(), x.toarray())


def test_column_idf_is_floored_at_zero():
    x = sp.csr_matrix(np.ones((3, 2), dtype=np.float32))  # every row holds every column
    np.testing.assert_array_equal(column_idf(x), [0.0, 0.0])


@pytest.mark.parametrize("scheme", ["tfidf", "bm25"])
def test_itemknn_weighting_is_cosine_of_the_weighted_item_rows(scheme):
    x = random_matrix()
    model = ItemKNN(neighbors=100, shrink=0.0, weighting=scheme, binary=False).fit(x)
    xt = sp.csr_matrix(x.T)
    w = weigh_rows(xt, scheme, column_idf(xt), average_row_length(xt)).toarray()
    norms = np.linalg.norm(w, axis=1)
    expected = (w @ w.T) / np.outer(norms, norms)
    np.fill_diagonal(expected, 0)
    np.testing.assert_allclose(model.similarity.toarray(), expected, atol=1e-5)
    plain = ItemKNN(neighbors=100, shrink=0.0, binary=False).fit(x).similarity.toarray()
    assert not np.allclose(plain, model.similarity.toarray())
    with pytest.raises(ConfigError):
        ItemKNN(weighting="okapi")


# -- ALS ---------------------------------------------------------------------------------
def test_als_equals_implicit_and_train_epoch_continues():
    from implicit.cpu.als import AlternatingLeastSquares

    x = random_matrix()
    params = {"factors": 6, "regularization": 0.5, "alpha": 3.0, "iterations": 4, "seed": 3}
    model = ALS(**params, num_threads=1).fit(x)
    ref = AlternatingLeastSquares(
        factors=6, regularization=0.5, alpha=3.0, iterations=4, random_state=3, num_threads=1
    )
    ref.fit(x, show_progress=False)
    np.testing.assert_allclose(model.item_factors, ref.item_factors, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.user_factors, ref.user_factors, rtol=1e-4, atol=1e-5)
    assert model.epochs == 4

    stepped = ALS(**{**params, "iterations": 1}, num_threads=1).start(x)
    assert stepped.epochs == 0
    for _ in range(4):
        stepped.train_epoch()
    np.testing.assert_allclose(stepped.item_factors, model.item_factors, rtol=1e-6)
    with pytest.raises(NotFittedError):
        ALS().train_epoch()


def test_als_fold_in_is_implicits_recalculate_user():
    from implicit.cpu.als import AlternatingLeastSquares

    x = random_matrix()
    model = ALS(factors=6, regularization=0.5, alpha=3.0, iterations=3, num_threads=1).fit(x)
    ref = AlternatingLeastSquares(factors=6, regularization=0.5, alpha=3.0, use_cg=False)
    ref.item_factors = model.item_factors.copy()
    ref.user_factors = model.user_factors.copy()
    history = x[[5]]
    expected = ref.recalculate_user(5, history)
    folded = model.user_vectors(history, None)[0]
    np.testing.assert_allclose(folded, np.ravel(expected), rtol=1e-4, atol=1e-5)
    # known users use their learned factors, unknown ones (-1) are folded in
    mixed = model.score(x[[5, 5]], np.array([5, -1]))
    np.testing.assert_allclose(mixed[0], model.user_factors[5] @ model.item_factors.T, rtol=1e-6)
    np.testing.assert_allclose(mixed[1], folded @ model.item_factors.T, rtol=1e-5)


def test_factor_similar_items_is_cosine():
    model = ALS(factors=3, iterations=3, num_threads=1).fit(random_matrix())
    f = model.item_factors.astype(np.float64)
    cos = f @ f[4] / (np.linalg.norm(f, axis=1) * np.linalg.norm(f[4]))
    cos[4] = -np.inf
    res = model.similar_items(4, k=3)
    assert res.ids.tolist() == np.argsort(-cos, kind="stable")[:3].tolist()
    np.testing.assert_allclose(res.scores, np.sort(cos)[::-1][:3], rtol=1e-5)


# -- BPR ---------------------------------------------------------------------------------
def test_bpr_scores_and_fold_in():
    x = random_matrix()
    model = BPR(factors=4, iterations=20, seed=1, fold_in_l2=2.0).fit(x)
    assert model.item_factors.shape == (25, 5) and model.user_factors.shape == (60, 5)
    np.testing.assert_allclose(model.user_factors[:, -1], 1.0)  # the bias slot
    known = model.score(x[:3], np.arange(3))
    np.testing.assert_allclose(known, model.user_factors[:3] @ model.item_factors.T, rtol=1e-6)
    q = model.item_factors[:, :-1].astype(np.float64)
    h = x[:3].toarray().astype(np.float64)
    user = np.linalg.solve(q.T @ q + 2.0 * np.eye(4), q.T @ h.T).T
    np.testing.assert_allclose(model.score(x[:3]), user @ q.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.score(x[:3]), model.score(x[:3], np.full(3, -1)))


# -- trending ----------------------------------------------------------------------------
def _events() -> pd.DataFrame:
    now = pd.Timestamp("2024-03-10")
    rows = [
        ("u1", "a", now),  # 1.0
        ("u2", "a", now - pd.Timedelta(days=14)),  # 0.25 with a 7-day half-life
        ("u1", "b", now - pd.Timedelta(days=7)),  # 0.5
        ("u2", "c", now - pd.Timedelta(days=7)),  # 0.5
        ("u3", "c", now - pd.Timedelta(days=7)),  # 0.5
        ("u3", "zzz", now),  # not in the vocabulary: ignored
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


def test_trending_fit_events_decays_counts():
    vocab = Vocabulary.from_values(np.array(["a", "b", "c", "d"], dtype=object), name="item_id")
    model = Trending(half_life_days=7.0).fit_events(_events(), vocab)
    np.testing.assert_allclose(model.trend, [1.25, 0.5, 1.0, 0.0], rtol=1e-6)
    assert model.recommend([], k=4).ids.tolist() == [0, 2, 1, 3]
    np.testing.assert_allclose(model.recommend([], k=2).scores, [1.0, 0.8], rtol=1e-6)
    slow = Trending(half_life_days=1e6).fit_events(_events(), vocab)
    np.testing.assert_allclose(slow.trend, [2.0, 1.0, 2.0, 0.0], rtol=1e-4)
    # fit on a matrix takes its weights as they are
    plain = Trending().fit(sp.csr_matrix(np.array([[1.0, 0, 3.0, 0]], dtype=np.float32)))
    np.testing.assert_allclose(plain.trend, [1, 0, 3, 0])


def test_trending_by_category():
    trend = np.array([[4, 2, 1, 3, 0]], dtype=np.float32)  # one row: the column sums
    items = pd.DataFrame({"category": ["A > x", "A > y", "B", "B > z", None]})
    model = Trending(by_category=True, category_boost=2.0).fit(sp.csr_matrix(trend), items)
    # within-category: A = {0, 1} max 4, B = {2, 3} max 3, uncategorised {4} max 0
    np.testing.assert_allclose(model.base_scores(), [1.0, 0.5, 1 / 3, 1.0, 0.0], rtol=1e-6)
    # history: 1 weight in A (item 1), 3 in B (item 2): shares 0.25 and 0.75
    h = sp.csr_matrix(np.array([[0, 1, 3, 0, 0]], dtype=np.float32))
    expected = np.array([1.0 * 1.5, 0.5 * 1.5, (1 / 3) * 2.5, 1.0 * 2.5, 0.0])
    np.testing.assert_allclose(model.score(h)[0], expected, rtol=1e-6)
    assert model.recommend([1, 2], weights=[1, 3], k=2).ids.tolist() == [3, 0]
    # without a catalog, by_category has nothing to work with: plain trending
    alone = Trending(by_category=True).fit(sp.csr_matrix(trend))
    np.testing.assert_allclose(alone.base_scores(), [1.0, 0.5, 0.25, 0.75, 0.0])
    with pytest.raises(DataError, match="one catalog row per matrix column"):
        Trending(by_category=True).fit(sp.csr_matrix(trend), items.iloc[:3])


# -- configs -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("als", {"factors": 0}),
        ("als", {"alpha": 0.0}),
        ("bpr", {"learning_rate": -1.0}),
        ("svd", {"factors": 0}),
        ("ease", {"max_items": 0}),
        ("userknn", {"weighting": "bm26"}),
        ("userknn", {"bm25_b": 1.5}),
        ("itemknn", {"bm25_k1": 0.0}),
        ("trending", {"half_life_days": 0.0}),
    ],
)
def test_invalid_parameters_raise_config_error(name, params):
    with pytest.raises(ConfigError, match=next(iter(params))):
        create(name, **params)
