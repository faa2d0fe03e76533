"""Hybrid: blend math by hand, RRF ranks by hand, weight fitting on validation, persistence."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError, DataError
from shelfwise.recommenders import create, load_model
from shelfwise.recommenders.base import ModelConfig, Recommender
from shelfwise.recommenders.hybrid import (
    Hybrid,
    HybridConfig,
    blend_rrf,
    blend_weighted,
    normalise_scores,
    ranks,
)


class FixedConfig(ModelConfig):
    label: str = ""


class Fixed(Recommender):
    """A fake component (not registered) whose scores are a fixed users x items table."""

    name = "fixed"
    Config = FixedConfig

    def __init__(self, table: np.ndarray, label: str = "") -> None:
        super().__init__(label=label)
        self.table = np.asarray(table, dtype=np.float32)
        self.n_items = self.table.shape[1]

    def fit(self, interactions, items=None):
        return self

    def score(self, histories, users=None):
        rows = np.arange(histories.shape[0]) if users is None else np.asarray(users)
        return self.table[rows]

    def _arrays(self):
        return {"table": self.table}

    def _restore(self, arrays):
        self.table = arrays["table"]


A = np.array([[1.0, 2.0, 3.0, 5.0]])
B = np.array([[10.0, 0.0, 5.0, 0.0]])
EMPTY = sp.csr_matrix((1, 4), dtype=np.float32)


def two(**params) -> Hybrid:
    return Hybrid.from_components({"a": Fixed(A, "a"), "b": Fixed(B, "b")}, **params)


# -- blend math -----------------------------------------------------------------------------
def test_weighted_minmax_by_hand():
    model = two(weights={"a": 0.75, "b": 0.25})
    # minmax: a -> [0, .25, .5, 1], b -> [1, 0, .5, 0]
    np.testing.assert_allclose(model.score(EMPTY)[0], [0.25, 0.1875, 0.5, 0.75], atol=1e-6)
    # with item 3 seen, statistics use items 0-2: a -> [0, .5, 1, 2], b -> [1, 0, .5, 0]
    seen = model.history_matrix([3])
    np.testing.assert_allclose(model.score(seen)[0], [0.25, 0.375, 0.875, 1.5], atol=1e-6)
    assert model.recommend([3], k=3).ids.tolist() == [2, 1, 0]


def test_weighted_zscore_and_default_weights():
    model = two(normalise="zscore")
    assert model.fitted_weights == {"a": 0.5, "b": 0.5}
    za = (A - A.mean()) / A.std()
    zb = (B - B.mean()) / B.std()
    np.testing.assert_allclose(model.score(EMPTY), 0.5 * za + 0.5 * zb, atol=1e-5)


def test_normalise_edge_cases():
    flat = np.array([[2.0, 2.0, 2.0], [0.0, np.nan, np.inf]])
    np.testing.assert_array_equal(normalise_scores(flat, "minmax"), [[0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(normalise_scores(flat, "zscore"), [[0, 0, 0], [0, 0, 0]])
    everything_seen = np.ones((1, 2), dtype=bool)
    np.testing.assert_allclose(
        normalise_scores(np.array([[1.0, 3.0]]), "minmax", everything_seen), [[0, 1]]
    )
    out = blend_weighted([A, B], [1.0, 0.0])
    np.testing.assert_allclose(out, [[0, 0.25, 0.5, 1]])


def test_rrf_by_hand():
    # ranks: a -> items (3, 2, 1, 0); b -> (0, 2, 1, 3), the 0-0 tie broken by index
    np.testing.assert_array_equal(ranks(A), [[4, 3, 2, 1]])
    np.testing.assert_array_equal(ranks(B), [[1, 3, 2, 4]])
    expected = [1 / 64 + 1 / 61, 2 / 63, 2 / 62, 1 / 61 + 1 / 64]
    model = two(method="rrf")
    assert model.fitted_weights == {"a": 1.0, "b": 1.0}
    np.testing.assert_allclose(model.score(EMPTY)[0], expected, rtol=1e-6)
    assert model.recommend([], k=4).ids.tolist() == [2, 0, 3, 1]
    np.testing.assert_allclose(blend_rrf([A], [2.0], k=10)[0], 2 / (10 + np.array([4, 3, 2, 1])))


def test_rrf_ranks_seen_items_last():
    seen = np.array([[False, False, False, True]])
    np.testing.assert_array_equal(ranks(A, seen), [[3, 2, 1, 4]])
    model = two(method="rrf", rrf_k=1)
    scores = model.score(model.history_matrix([3]))[0]
    # a ranks items (2, 1, 0), b ranks (0, 2, 1) among the unseen
    np.testing.assert_allclose(scores[:3], [1 / 4 + 1 / 2, 1 / 3 + 1 / 4, 1 / 2 + 1 / 3])


# -- weight fitting ---------------------------------------------------------------------------
def validation_from(table: np.ndarray) -> sp.csr_matrix:
    """Each user's held-out item is the one `table` ranks first."""
    best = table.argmax(axis=1)
    n_users, n_items = table.shape
    return sp.csr_matrix(
        (np.ones(n_users, np.float32), (np.arange(n_users), best)), shape=(n_users, n_items)
    )


@pytest.mark.parametrize("right", ["a", "b"])
def test_weight_fitting_picks_the_component_that_is_right(right):
    rng = np.random.default_rng(0)
    tables = {"a": rng.random((40, 30)), "b": rng.random((40, 30))}
    model = Hybrid.from_components({k: Fixed(t, k) for k, t in tables.items()})
    train = sp.csr_matrix((40, 30), dtype=np.float32)
    weights = model.tune_weights(train, validation_from(tables[right]))
    wrong = "b" if right == "a" else "a"
    assert weights[right] > 0.5 > weights[wrong]
    assert sum(weights.values()) == pytest.approx(1.0)
    assert model.validation_ndcg == pytest.approx(1.0)
    assert model.fitted_weights == weights


def test_weight_fitting_with_many_components_uses_coordinate_ascent():
    rng = np.random.default_rng(1)
    tables = {k: rng.random((30, 20)) for k in "abcd"}
    model = Hybrid.from_components({k: Fixed(t, k) for k, t in tables.items()})
    weights = model.tune_weights(sp.csr_matrix((30, 20)), validation_from(tables["c"]))
    assert max(weights, key=weights.__getitem__) == "c"
    assert model.validation_ndcg == pytest.approx(1.0)


def test_weight_fitting_rejects_misaligned_validation():
    model = two()
    with pytest.raises(DataError, match="shape"):
        model.tune_weights(EMPTY, sp.csr_matrix((2, 4)))


# -- real components ----------------------------------------------------------------------------
def catalog() -> pd.DataFrame:
    titles = [
        "Chef knife steel",
        "Paring knife steel",
        "Bluetooth headphones wireless",
        "Wireless earbuds",
        "Cast iron skillet pan",
        "Noise cancelling headphones wireless",
    ]
    return pd.DataFrame({"item_id": [f"i{i}" for i in range(6)], "title": titles})


def matrix() -> sp.csr_matrix:
    dense = np.array(
        [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 1, 0]],
        dtype=np.float32,
    )
    return sp.csr_matrix(dense)


def test_fit_real_components_and_round_trip(tmp_path):
    validation = sp.csr_matrix(
        np.array(
            [[0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]],
            dtype=np.float32,
        )
    )
    model = create(
        "hybrid",
        models={"itemknn": {"neighbors": 5}, "tfidf": {}, "tfidf:bigrams": {"ngram_range": [1, 2]}},
        grid_steps=4,
    ).fit(matrix(), catalog(), validation=validation)
    weights = model.fitted_weights
    assert set(weights) == {"itemknn", "tfidf", "tfidf:bigrams"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert model.config.weights is None  # the config keeps what was given
    model.save(tmp_path / "h")
    assert (tmp_path / "h" / "components" / "tfidf-bigrams" / "config.json").is_file()
    assert json.loads((tmp_path / "h" / "config.json").read_text())["model"] == "hybrid"
    loaded = load_model(tmp_path / "h")
    assert isinstance(loaded, Hybrid)
    assert loaded.fitted_weights == weights
    assert list(loaded.components) == list(model.components)
    np.testing.assert_allclose(loaded.score(matrix()), model.score(matrix()), atol=1e-6)
    # a cold-start item reaches the blend through its content component
    assert 5 in loaded.recommend([2, 3], k=2).ids


def test_explicit_weights_are_not_refitted():
    model = create("hybrid", models={"itemknn": {}, "popularity": {}}, weights={"itemknn": 1.0})
    model.fit(matrix(), validation=matrix())
    assert model.fitted_weights == {"itemknn": 1.0, "popularity": 0.0}


def test_rrf_ignores_validation_and_round_trips(tmp_path):
    model = create("hybrid", models={"itemknn": {}, "popularity": {}}, method="rrf")
    model.fit(matrix(), validation=matrix())
    assert model.fitted_weights == {"itemknn": 1.0, "popularity": 1.0}
    model.save(tmp_path / "r")
    np.testing.assert_allclose(load_model(tmp_path / "r").score(matrix()), model.score(matrix()))


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown model"):
        create("hybrid", models={"nope": {}}).fit(matrix(), catalog())
    with pytest.raises(ConfigError, match="unknown components"):
        create("hybrid", models={"itemknn": {}}, weights={"als": 1.0})
    with pytest.raises(ConfigError, match=">= 0"):
        create("hybrid", models={"itemknn": {}}, weights={"itemknn": -1.0})
    with pytest.raises(ConfigError, match="at least one"):
        create("hybrid", models={})
    with pytest.raises(ConfigError, match="component 'itemknn'"):
        create("hybrid", models={"itemknn": {"neighbors": 0}}).fit(matrix())
    with pytest.raises(ConfigError):
        Hybrid.from_components({"a": Fixed(A), "b": Fixed(np.ones((1, 3)))})


def test_default_components_are_registered():
    from shelfwise.recommenders import available

    assert set(HybridConfig().models) <= set(available())


def test_search_space():
    class Trial:
        def __init__(self, method):
            self.method = method

        def suggest_categorical(self, name, choices):
            return self.method if name == "method" else choices[-1]

        def suggest_int(self, name, low, high, log=False):
            return low

    assert HybridConfig.search_space(Trial("rrf")) == HybridConfig(method="rrf", rrf_k=5)
    assert HybridConfig.search_space(Trial("weighted")).normalise == "zscore"


# -- validation carved from the training data ---------------------------------------------------
def test_fit_without_validation_fits_weights_on_a_carved_split():
    # two taste blocks; block B is smaller, so popularity only ever suggests block A
    rng = np.random.default_rng(0)
    dense = np.zeros((60, 20), dtype=np.float32)
    for u in range(60):
        block = np.arange(0, 10) if u < 40 else np.arange(10, 20)
        dense[u, rng.choice(block, 6, replace=False)] = 1
    model = create("hybrid", models={"itemknn": {}, "popularity": {}}, grid_steps=4).fit(
        sp.csr_matrix(dense)
    )
    weights = model.fitted_weights
    assert weights["itemknn"] > weights["popularity"]
    assert model.validation_ndcg is not None and model.validation_ndcg > 0
    assert model.components["itemknn"].n_items == 20  # refitted on everything
    off = create("hybrid", models={"itemknn": {}, "popularity": {}}, validation_fraction=0.0).fit(
        sp.csr_matrix(dense)
    )
    assert off.fitted_weights == {"itemknn": 0.5, "popularity": 0.5}
    assert off.validation_ndcg is None
