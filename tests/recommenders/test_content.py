"""Content-based models: item text, known neighbours, cold-start items, recency, persistence."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.recommenders import create, load_model
from shelfwise.recommenders.content import (
    EmbeddingConfig,
    LdaConfig,
    LsaConfig,
    TfidfConfig,
    attribute_text,
    item_texts,
)

MODELS = ["tfidf", "lsa", "lda", "embedding"]
PARAMS = {
    "tfidf": {},
    "lsa": {"n_components": 4},
    "lda": {"n_topics": 3, "max_iter": 50},
    "embedding": {"batch_size": 4},
}

KNIVES, AUDIO, COOKWARE = [0, 1], [2, 3, 5], [4, 6]


def catalog() -> pd.DataFrame:
    rows = [
        ("k1", "Chef knife", "Wusthof", "Kitchen > Knives", "Forged steel kitchen knife blade"),
        ("k2", "Paring knife", "Victorinox", "Kitchen > Knives", "Small steel knife blade"),
        ("a1", "Bluetooth headphones", "Sony", "Electronics > Audio", "Wireless audio headphones"),
        ("a2", "Wireless earbuds", "Jabra", "Electronics > Audio", "Wireless audio earbuds"),
        ("c1", "Cast iron skillet", "Lodge", "Kitchen > Cookware", "Skillet pan for frying"),
        # a1's twin, never interacted with in the tests: the cold-start item
        ("a3", "Noise cancelling headphones", "Bose", "Electronics > Audio", "Wireless headphones"),
        ("c2", "Nonstick frying pan", "Tefal", "Kitchen > Cookware", "Frying pan skillet"),
    ]
    frame = pd.DataFrame(rows, columns=["item_id", "title", "brand", "category", "description"])
    frame["attributes"] = json.dumps({"asin": "B00X", "url": "https://example.com/x"})
    return frame


def interactions() -> sp.csr_matrix:
    """Three users; item 5 (a3) has no interactions at all."""
    dense = np.zeros((3, 7), dtype=np.float32)
    dense[0, [0, 1]] = 1
    dense[1, [2, 3]] = 1
    dense[2, [4, 6]] = 1
    return sp.csr_matrix(dense)


@pytest.fixture(scope="module", params=MODELS)
def fitted(request):
    return create(request.param, **PARAMS[request.param]).fit(interactions(), catalog())


# LDA needs more than seven documents to find topics: its semantic tests use this catalog
@pytest.fixture(scope="module", params=["tfidf", "lsa", "embedding"])
def semantic(request):
    return create(request.param, **PARAMS[request.param]).fit(interactions(), catalog())


def word_catalog(per_group: int = 20) -> tuple[pd.DataFrame, np.ndarray]:
    """Titles of 5 random words from one of three disjoint vocabularies; the group ids."""
    rng = np.random.default_rng(0)
    vocab = [
        ["knife", "blade", "steel", "chef", "paring", "sharpen", "cutlery", "forged"],
        ["headphones", "audio", "wireless", "earbuds", "bluetooth", "speaker", "bass", "noise"],
        ["skillet", "pan", "frying", "cookware", "nonstick", "iron", "saucepan", "wok"],
    ]
    titles = [" ".join(rng.choice(words, 5)) for words in vocab for _ in range(per_group)]
    return pd.DataFrame({"title": titles}), np.repeat(np.arange(3), per_group)


def test_lda_finds_the_topics():
    items, groups = word_catalog()
    x = sp.csr_matrix((2, len(items)), dtype=np.float32)  # nobody interacted: all cold-start
    model = create("lda", n_topics=3, max_iter=30, seed=0).fit(x, items)
    neighbours = np.array([model.similar_items(i, k=1).ids[0] for i in range(len(items))])
    assert np.array_equal(groups[neighbours], groups)
    assert set(groups[model.recommend([20, 21], k=5).ids]) == {1}
    assert groups[model.recommend([0, 20], k=1, weights=[1.0, 0.05]).ids[0]] == 0
    assert groups[model.recommend([0, 20], k=1, weights=[0.05, 1.0]).ids[0]] == 1


def group_of(item: int) -> list[int]:
    return next(g for g in (KNIVES, AUDIO, COOKWARE) if item in g)


def test_item_texts():
    items = pd.DataFrame(
        {
            "title": ["Chef knife", None],
            "brand": ["Wusthof", None],
            "category": ["Kitchen > Cutlery > Knives", None],
            "description": ["Forged", float("nan")],
            "attributes": [
                json.dumps(
                    {
                        "color": "black",
                        "genres": ["Drama", "Comedy"],
                        "asin": "B000",
                        "imdb_url": "http://imdb.com/x",
                        "release_date": "1995-01-01",
                        "attribute_ids": [12, 7],
                        "nested": {"a": 1},
                    }
                ),
                None,
            ],
        }
    )
    text = item_texts(items)
    assert text[0] == (
        "Chef knife. Wusthof. Kitchen. Cutlery. Knives. Forged. "
        "attribute_ids_12 attribute_ids_7 black Drama Comedy"
    )
    assert text[1] == ""
    assert "attribute_ids" not in item_texts(items, id_tokens=False)[0]
    assert "black" not in item_texts(items, attributes=False)[0]
    with pytest.raises(ValueError):
        attribute_text("not json {")
    assert attribute_text({"size": 42, "on_sale": True, "fit": "slim"}, id_tokens=False) == "slim"
    assert item_texts(items.assign(attributes=["[1, 2]", "oops"]))[0].endswith("Forged")


def test_similar_items_are_from_the_same_group(semantic):
    for item in range(7):
        top = semantic.similar_items(item, k=1).ids
        assert top[0] in group_of(item), (semantic.name, item, top)
    # the named neighbours where the text leaves no doubt
    assert semantic.similar_items(0, k=1).ids[0] == 1
    assert semantic.similar_items(4, k=1).ids[0] == 6


def test_cold_start_item_is_recommended(semantic):
    # item 5 has no interactions but reads like the audio items the user had
    res = semantic.recommend([2, 3], k=1)
    assert res.ids.tolist() == [5]
    assert res.scores[0] > 0
    batch = semantic.recommend_batch(sp.csr_matrix(([1.0, 1.0], ([0, 0], [2, 3])), shape=(1, 7)))
    assert batch.ids[0, 0] == 5


def test_recency_weights_steer_the_profile(semantic):
    # history: a knife and headphones; the heavier (more recent) item wins
    recent_knife = semantic.recommend([0, 2], k=1, weights=[1.0, 0.05]).ids[0]
    recent_audio = semantic.recommend([0, 2], k=1, weights=[0.05, 1.0]).ids[0]
    assert recent_knife in KNIVES
    assert recent_audio in AUDIO


def test_scores_are_cosines(fitted):
    scores = fitted.score(interactions())
    assert scores.shape == (3, 7) and scores.dtype == np.float32
    assert np.all(scores <= 1.0 + 1e-5) and np.all(scores >= -1.0 - 1e-5)
    # a single-item history: the item is its own best match with cosine 1
    own = fitted.score(fitted.history_matrix([4]))[0]
    assert own[4] == pytest.approx(1.0, abs=1e-4)
    # an empty history scores nothing
    assert not np.any(fitted.score(sp.csr_matrix((1, 7), dtype=np.float32)))


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    assert not list((tmp_path / "m").glob("*.pkl"))
    loaded = load_model(tmp_path / "m")
    assert type(loaded) is type(fitted) and loaded.config == fitted.config
    np.testing.assert_allclose(loaded.score(interactions()), fitted.score(interactions()))


@pytest.mark.parametrize("name", ["tfidf", "lsa", "embedding"])
def test_add_items_after_load(name, tmp_path):
    items = catalog()
    model = create(name, **PARAMS[name]).fit(interactions()[:, :6], items.iloc[:6])
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    new = loaded.add_items(items.iloc[6:])
    assert new.tolist() == [6] and loaded.n_items == 7
    # the new frying pan is found from a skillet history without a refit
    assert loaded.recommend([4], k=1).ids.tolist() == [6]
    # vectors of known items do not change
    again = loaded.add_items(items.iloc[[0]])
    np.testing.assert_allclose(
        loaded.score(loaded.history_matrix([0]))[0, again[0]], 1.0, atol=1e-4
    )


@pytest.mark.parametrize("sublinear", [True, False])
def test_loaded_tfidf_vectorises_as_scikit_learn_to_the_bit(sublinear, tmp_path):
    """A loaded TF-IDF model vectorises new items without importing scikit-learn; the
    vectors are the fitted vectoriser's own, bit for bit (repeats, stop words, unknown and
    accented words, an empty text, one-letter tokens)."""
    items, _ = word_catalog()
    model = create("tfidf", sublinear_tf=sublinear).fit(sp.eye(len(items), format="csr"), items)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    texts = [
        "Chef knife knife KNIFE blade, the and of a",
        "",
        "x y z unknown zzz",
        "Café CAFÉ naïve Straße skillet-pan wok_wok 12 345",
        *items["title"].tolist()[:25],
    ]
    ours = loaded._tfidf(texts)
    theirs = sp.csr_matrix(model.vectorizer.transform(texts), dtype=np.float32)
    theirs.sort_indices()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype == np.float32
    assert ours.indptr.tolist() == theirs.indptr.tolist()
    assert ours.indices.tolist() == theirs.indices.tolist()
    assert ours.data.tobytes() == theirs.data.tobytes()
    assert ours[1].nnz == 0 and ours[0].nnz == 3  # chef, knife, blade: no stop word


def test_lda_add_items_needs_the_fitted_topic_model(tmp_path):
    model = create("lda", **PARAMS["lda"]).fit(interactions(), catalog())
    assert model.add_items(catalog().iloc[[0]]).tolist() == [7]
    model.save(tmp_path / "m")
    with pytest.raises(NotFittedError, match="refit"):
        load_model(tmp_path / "m").add_items(catalog().iloc[[0]])


@pytest.mark.parametrize("name", ["lsa", "lda"])
def test_deterministic_by_seed(name):
    a = create(name, **PARAMS[name], seed=3).fit(interactions(), catalog())
    b = create(name, **PARAMS[name], seed=3).fit(interactions(), catalog())
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_lda_seed_matters():
    a = create("lda", n_topics=3, max_iter=5, seed=0).fit(interactions(), catalog())
    b = create("lda", n_topics=3, max_iter=5, seed=1).fit(interactions(), catalog())
    assert not np.allclose(a.vectors, b.vectors)


def test_fit_needs_an_aligned_catalog():
    with pytest.raises(DataError, match="catalog"):
        create("tfidf").fit(interactions())
    with pytest.raises(DataError, match="7 columns"):
        create("tfidf").fit(interactions(), catalog().iloc[:5])
    with pytest.raises(NotFittedError):
        create("tfidf").recommend([0])


def test_items_without_words_score_zero():
    items = catalog()
    items.loc[5, ["title", "brand", "category", "description"]] = None
    items["attributes"] = None
    for name in MODELS:
        model = create(name, **PARAMS[name]).fit(interactions(), items)
        assert model.score(model.history_matrix([2, 3]))[0, 5] == 0.0, name
    # a catalog with no words at all still fits, and scores nothing
    empty = pd.DataFrame({"title": [""] * 7})
    for name in MODELS:
        model = create(name, **PARAMS[name]).fit(interactions(), empty)
        assert not np.any(model.score(interactions())), name


def test_tiny_catalogs_fit():
    one = catalog().iloc[:1]
    x = sp.csr_matrix(np.ones((1, 1), dtype=np.float32))
    for name in MODELS:
        model = create(name, **PARAMS[name]).fit(x, one)
        assert model.score(x).shape == (1, 1)


def test_configs_and_search_spaces():
    with pytest.raises(ConfigError):
        create("tfidf", ngram_range=(2, 1))
    with pytest.raises(ConfigError):
        create("lsa", n_components=0)
    with pytest.raises(ConfigError):
        create("embedding", unknown=1)

    class Trial:
        def suggest_categorical(self, name, choices):
            return choices[0]

        def suggest_int(self, name, low, high, log=False):
            return low

        def suggest_float(self, name, low, high, log=False):
            return low

    trial = Trial()
    for cls in (TfidfConfig, LsaConfig, LdaConfig, EmbeddingConfig):
        assert isinstance(cls.search_space(trial), cls)
    assert LsaConfig.search_space(trial).n_components == 16


# -- real data --------------------------------------------------------------------------------
def _precision_at_10(scores: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix) -> float:
    scores = scores.copy()
    scores[train.toarray() > 0] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    hits = np.take_along_axis(test.toarray() > 0, top, axis=1)
    return float(hits.mean())


@pytest.mark.realdata
def test_tfidf_beats_random_on_movielens():
    from shelfwise.data.datasets import is_available, load_dataset
    from shelfwise.data.matrix import build_interactions
    from shelfwise.data.vocab import Vocabulary

    if not is_available("movielens-100k"):
        pytest.skip("dataset movielens-100k not found (set SHELFWISE_DATA_DIR)")
    ds = load_dataset("movielens-100k")
    vocab = Vocabulary(ds.items["item_id"], name="item_id")
    rng = np.random.default_rng(0)
    is_test = rng.random(len(ds.events)) < 0.25
    users = Vocabulary(ds.events["user_id"].unique(), name="user_id")
    kwargs = {"users": users, "items": vocab}
    train = build_interactions(ds.events[~is_test], **kwargs).matrix
    test = build_interactions(ds.events[is_test], **kwargs).matrix
    train.data[:] = 1.0
    model = create("tfidf").fit(train, ds.items)
    keep = np.flatnonzero(np.diff(test.indptr) > 0)
    train, test = train[keep], test[keep]
    tfidf = _precision_at_10(model.score(train), train, test)
    random = _precision_at_10(rng.random(train.shape).astype(np.float32), train, test)
    assert tfidf > 1.5 * random
    assert tfidf > random + 0.02


@pytest.mark.parametrize("name", ["tfidf", "lsa"])
def test_profiles_of_a_history_sized_before_add_items(name):
    # a request built its history row (1 x n_items) just before the live catalogue's
    # add_items appended a vector row in another thread: same profile, no shape error
    items = catalog()
    model = create(name, **PARAMS[name]).fit(interactions()[:, :6], items.iloc[:6])
    row = model.history_matrix([4, 0], [2.0, 1.0])
    before = model.profiles(row)
    model.add_items(items.iloc[6:])
    assert model.n_items == 7 and row.shape == (1, 6)
    after = model.profiles(row)
    np.testing.assert_allclose(_dense(after), _dense(before), atol=1e-6)


def _dense(m):
    return m.toarray() if sp.issparse(m) else np.asarray(m)
