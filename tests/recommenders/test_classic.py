import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError, NotFittedError
from shelfwise.recommenders import ItemKNN, Popularity, available, create, load_model

# Two taste groups: users 0-2 like items 0-2, users 3-5 like items 3-5; item 6 is cold.
DENSE = np.array(
    [
        [1, 1, 0, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0, 0],
        [0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 1, 1, 0],
    ],
    dtype=np.float32,
)
X = sp.csr_matrix(DENSE)


def test_registry_knows_names():
    assert {"popularity", "itemknn"} <= set(available())
    with pytest.raises(ConfigError, match="choose one of"):
        create("nope")
    with pytest.raises(ConfigError, match="neighbors"):
        create("itemknn", neighbors=0)
    with pytest.raises(ConfigError):
        create("itemknn", bogus=1)


def test_popularity_counts_users_and_excludes_seen():
    model = Popularity().fit(X)
    np.testing.assert_array_equal(model.popularity, [2, 3, 2, 2, 3, 2, 0])
    res = model.recommend([1], k=3)
    assert res.ids.tolist() == [4, 0, 2]  # ties broken by index
    assert model.recommend([1], k=3, exclude_seen=False).ids.tolist() == [1, 4, 0]


def test_itemknn_cosine_with_shrinkage_known_values():
    model = ItemKNN(neighbors=10, shrink=1.0).fit(X)
    s = model.similarity.toarray()
    # items 0 and 1 co-occur for users 0 and 1: cos = 2 / (sqrt(2) sqrt(3) + 1)
    assert s[0, 1] == pytest.approx(2 / (np.sqrt(2) * np.sqrt(3) + 1), rel=1e-5)
    assert s[0, 3] == 0 and s[0, 0] == 0 and s[6].sum() == 0


def test_itemknn_recommends_within_taste_group():
    model = ItemKNN(neighbors=10, shrink=0.0).fit(X)
    assert model.recommend([0], k=1).ids.tolist() == [1]
    assert set(model.recommend([3, 4], k=1).ids.tolist()) == {5}
    assert model.similar_items(3, k=2).ids.tolist() == [4, 5]
    # candidates restrict the ranking
    res = model.recommend([0], k=3, candidates=[2, 5])
    assert res.ids.tolist() == [2, 5] and res.scores[1] == 0
    batch = model.recommend_batch(X, k=1)
    assert batch.ids[[0, 2, 3, 5], 0].tolist() == [2, 0, 5, 3]
    # users who have seen their whole group get only zero-score items
    assert batch.scores[[1, 4], 0].tolist() == [0.0, 0.0]


def test_itemknn_blocks_bounded_by_pairs_give_the_same_neighbours(monkeypatch):
    # with BLOCK_CELLS 14 the rows go a few at a time (each block's product at most 14
    # multiply-adds, or one row), and the neighbours must not change
    whole = ItemKNN(neighbors=2, shrink=0.5).fit(X).similarity.toarray()
    monkeypatch.setattr("shelfwise.recommenders.itemknn.BLOCK_CELLS", 14)
    blocked = ItemKNN(neighbors=2, shrink=0.5).fit(X).similarity.toarray()
    np.testing.assert_array_equal(blocked, whole)
    assert (blocked > 0).sum(axis=1).max() == 2


def test_neighbour_pruning_keeps_top_k():
    model = ItemKNN(neighbors=1, shrink=0.0).fit(X)
    assert (np.diff(model.similarity.indptr) <= 1).all()


def test_save_load_roundtrip(tmp_path):
    for model in (Popularity().fit(X), ItemKNN(neighbors=3).fit(X)):
        model.save(tmp_path / model.name)
        loaded = load_model(tmp_path / model.name)
        assert type(loaded) is type(model) and loaded.config == model.config
        np.testing.assert_allclose(loaded.score(X[:2]), model.score(X[:2]))


def test_not_fitted_and_bad_history():
    with pytest.raises(NotFittedError):
        ItemKNN().recommend([0])
    model = ItemKNN().fit(X)
    with pytest.raises(ValueError, match="outside"):
        model.recommend([99])
    with pytest.raises(NotImplementedError):
        Popularity().fit(X).similar_items(0)


def test_itemknn_sparse_product_matches_dense_cosine_top_k(monkeypatch):
    # the neighbours come from the sparse co-occurrence product; they must be those of the
    # dense brute force sim = dots / (|x_i| |x_j| + shrink), top 3 positive per row, also
    # when BLOCK_CELLS splits the rows into many blocks
    rng = np.random.default_rng(3)
    dense = (rng.random((40, 30)) < 0.15) * rng.random((40, 30))
    x = sp.csr_matrix(dense.astype(np.float32))
    xt = dense.T
    norms = np.sqrt((xt**2).sum(axis=1))
    sims = (xt @ xt.T) / (norms[:, None] * norms[None, :] + 2.0)
    np.fill_diagonal(sims, 0.0)
    expected = np.zeros_like(sims)
    for i, row in enumerate(sims):
        top = np.argsort(-row)[:3]
        top = top[row[top] > 0]
        expected[i, top] = row[top]
    for cells in (2**25, 7):
        monkeypatch.setattr("shelfwise.recommenders.itemknn.BLOCK_CELLS", cells)
        got = ItemKNN(neighbors=3, shrink=2.0, binary=False).fit(x).similarity.toarray()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_row_blocks_stay_under_the_budget():
    from shelfwise.recommenders.itemknn import row_blocks

    assert row_blocks(np.array([3, 3, 3, 10, 1, 1]), 6) == [(0, 2), (2, 3), (3, 4), (4, 6)]
    assert row_blocks(np.array([], dtype=np.int64), 6) == []
