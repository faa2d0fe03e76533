"""Dense retrieval: faiss flat / HNSW / IVF against brute force, incremental updates,
save/load without pickle, the embedding cache, and known semantic answers with MiniLM."""

import json

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.search.semantic import DenseConfig, DenseIndex, encode_cached, item_texts
from shelfwise.text import get_encoder

DIM = 384


def unit(rng, n):
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def brute(vectors, ids, q, k):
    scores = vectors @ q
    order = np.lexsort((ids, -scores))[:k]
    return ids[order]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return unit(rng, 400), unit(rng, 5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_matches_brute_force(data, kind):
    vectors, queries = data
    index = DenseIndex(DenseConfig(kind=kind, ivf_nprobe=64, hnsw_ef_search=256))
    index.index_vectors(vectors)
    assert index.kind == kind and index.n_items == 400
    res = index.search_vectors(queries, 10)
    ids = np.arange(400)
    for i, q in enumerate(queries):
        expected = brute(vectors, ids, q, 10)
        if kind == "flat":
            assert res.ids[i].tolist() == expected.tolist()
            np.testing.assert_allclose(res.scores[i], vectors[expected] @ q, atol=1e-5)
        else:  # approximate, but on 400 points with wide search it finds nearly all
            assert len(set(res.ids[i]) & set(expected)) >= 9


def test_auto_kind_by_size(data):
    vectors, _ = data
    assert DenseIndex(DenseConfig(exact_threshold=1000)).index_vectors(vectors).kind == "flat"
    assert DenseIndex(DenseConfig(exact_threshold=100)).index_vectors(vectors).kind == "hnsw"


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_incremental_add_replace_remove(data, kind):
    vectors, queries = data
    q = queries[0]
    index = DenseIndex(DenseConfig(kind=kind, ivf_nprobe=64, hnsw_ef_search=256))
    index.index_vectors(vectors[:300], ids=np.arange(300))
    # a new item equal to the query is found first
    index.add_vectors(q[None, :], [1000])
    top = index.search_vectors(q[None, :], 3)
    assert top.ids[0, 0] == 1000 and top.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    # replacing it with a far-away vector moves it out of the top
    index.add_vectors(-q[None, :], [1000])
    assert 1000 not in index.search_vectors(q[None, :], 10).ids[0]
    assert index.n_items == 301
    # removing the current best makes the runner-up first
    best = int(index.search_vectors(q[None, :], 2).ids[0, 0])
    second = int(index.search_vectors(q[None, :], 2).ids[0, 1])
    assert index.remove([best, 99_999]) == 1
    assert best not in index
    assert int(index.search_vectors(q[None, :], 1).ids[0, 0]) == second
    assert index.remove([best]) == 0


def test_hnsw_rebuilds_after_many_deletes(data):
    vectors, queries = data
    index = DenseIndex(DenseConfig(kind="hnsw", rebuild_dead_fraction=0.1))
    index.index_vectors(vectors[:100])
    index.remove(np.arange(5))
    assert len(index._dead) == 5
    index.remove(np.arange(5, 20))  # 20 dead > 10% of 100: rebuilt without them
    assert len(index._dead) == 0 and index._index.ntotal == 80
    res = index.search_vectors(queries, 100)
    live = res.ids[res.ids >= 0]
    assert live.size == 5 * 80 and live.min() >= 20


def test_fewer_items_than_k_pads(data):
    vectors, queries = data
    index = DenseIndex().index_vectors(vectors[:3])
    res = index.search_vectors(queries[:1], 5)
    assert res.ids[0, 3:].tolist() == [-1, -1] and np.isneginf(res.scores[0, 3:]).all()


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip_without_pickle(tmp_path, data, kind):
    vectors, queries = data
    index = DenseIndex(DenseConfig(kind=kind)).index_vectors(vectors[:200])
    index.remove([3])
    index.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "dense.faiss", "vectors.npy", "present.npy", "dense.json"
    }  # fmt: skip
    meta = json.loads((tmp_path / "dense.json").read_text())
    assert meta["kind"] == kind
    loaded = DenseIndex.load(tmp_path)
    before, after = index.search_vectors(queries, 10), loaded.search_vectors(queries, 10)
    np.testing.assert_array_equal(before.ids, after.ids)
    assert 3 not in loaded and loaded.n_items == 199
    loaded.add_vectors(queries[:1], [500])  # still updatable
    assert loaded.search_vectors(queries[:1], 1).ids[0, 0] == 500


def test_errors(tmp_path, data):
    vectors, _ = data
    with pytest.raises(NotFittedError):
        DenseIndex().search_vectors(vectors[:1], 1)
    with pytest.raises(DataError, match="n x 384"):
        DenseIndex().index_vectors(np.zeros((2, 3), np.float32))
    with pytest.raises(DataError, match="unique"):
        DenseIndex().index_vectors(vectors[:2], ids=[1, 1])
    with pytest.raises(DataError, match="missing"):
        DenseIndex.load(tmp_path)
    with pytest.raises(ConfigError):
        DenseIndex().index_vectors(vectors[:2]).search_vectors(vectors[:1], 0)
    with pytest.raises(DataError, match="train"):
        DenseIndex(DenseConfig(kind="ivf")).index_vectors(np.zeros((0, DIM), np.float32))


# ---- with the real encoder (short texts, a couple of seconds) ------------------------------

CATALOG = pd.DataFrame(
    {
        "item_id": [f"i{i}" for i in range(8)],
        "title": [
            "Stainless Steel Chef's Knife, 8 inch",
            "Noise-Cancelling Over-Ear Headphones",
            "Cast Iron Skillet, 12 inch",
            "Organic Cotton Bath Towel Set",
            "Dry Dog Food with Chicken",
            "Waterproof Bluetooth Speaker",
            "Lavender Scented Soy Candle",
            "Running Shoes for Men",
        ],
        "brand": ["Edge", "Sonaro", "Forge", "Loom", "Barkly", "Sonaro", "Glow", "Stride"],
        "category": [
            "Home > Kitchen > Knives", "Electronics > Audio > Headphones",
            "Home > Kitchen > Cookware", "Home > Bath > Towels", "Pets > Dogs > Food",
            "Electronics > Audio > Speakers", "Home > Decor > Candles",
            "Fashion > Shoes > Sneakers",
        ],
    }
)  # fmt: skip


def test_item_texts():
    texts = item_texts(CATALOG)
    assert texts[0] == "Stainless Steel Chef's Knife, 8 inch Edge"  # title + brand
    assert item_texts(pd.DataFrame({"title": ["x"]})) == ["x"]


def test_semantic_known_answers(tmp_path):
    index = DenseIndex().index(item_texts(CATALOG), cache_dir=tmp_path)
    for query, expected in [
        ("something to slice vegetables", 0),
        ("headphones for a noisy flight", 1),
        ("frying pan", 2),
        ("kibble for my puppy", 4),
        ("sneakers for jogging", 7),
    ]:
        assert index.retrieve(query, 1).ids.tolist() == [expected], query
    # a mask restricts the search exactly
    mask = np.zeros(8, dtype=bool)
    mask[[5, 6]] = True
    assert index.retrieve("headphones for a noisy flight", 2, mask=mask).ids.tolist() == [5, 6]
    sims = index.similarity("frying pan", np.array([2, 3, -1, 99]))
    assert sims[0] > sims[1] > 0 and sims[2] == sims[3] == 0
    # add and remove by text
    index.add([8], ["Electric Kettle, 1.7 L"])
    assert index.retrieve("boil water for tea", 1).ids.tolist() == [8]
    index.remove([8])
    assert 8 not in index.retrieve("boil water for tea", 9).ids


class CountingEncoder:
    """Wraps the real encoder and counts the texts it embeds."""

    def __init__(self):
        self.inner = get_encoder()
        self.model_path, self.max_length, self.dim = (
            self.inner.model_path, self.inner.max_length, self.inner.dim,
        )  # fmt: skip
        self.calls = 0

    def encode(self, texts, batch_size=64, progress=False):
        self.calls += 1
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


def test_encode_cache_keyed_by_content(tmp_path):
    enc = CountingEncoder()
    first = encode_cached(["red dress", "blue jeans"], enc, cache_dir=tmp_path)
    again = encode_cached(["red dress", "blue jeans"], enc, cache_dir=tmp_path)
    assert enc.calls == 1
    np.testing.assert_array_equal(first, again)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    encode_cached(["red dress", "black jeans"], enc, cache_dir=tmp_path)
    assert enc.calls == 2 and len(list(tmp_path.glob("*.npy"))) == 2


def test_a_masked_search_on_an_ann_index_post_filters_and_falls_back_to_exact():
    from shelfwise.search.semantic import DenseConfig, DenseIndex

    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((3000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    rows = np.arange(3000)
    ann = DenseIndex(DenseConfig(kind="hnsw", hnsw_ef_search=512)).index_vectors(vectors, rows)
    flat = DenseIndex(DenseConfig(kind="flat")).index_vectors(vectors, rows)
    assert ann.kind == "hnsw" and flat.kind == "flat"
    q = vectors[7] * 0.6 + vectors[8] * 0.4
    q /= np.linalg.norm(q)
    wide = rng.random(3000) < 0.8  # most items allowed: the ANN path, post-filtered
    narrow = rng.random(3000) < 0.1  # few allowed: exact
    for mask in (wide, narrow):
        got = ann._retrieve_masked(q, 20, mask)
        want = flat._retrieve_masked(q, 20, mask)
        assert got.ids.tolist() == want.ids.tolist()
        assert bool(mask[got.ids].all())
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-5)
    # k as large as the allowed set: every allowed item, whichever path answers
    few = np.zeros(3000, dtype=bool)
    few[: 3000 // 2] = True
    got = ann._retrieve_masked(q, 3000, few)
    assert sorted(got.ids.tolist()) == list(range(1500))
