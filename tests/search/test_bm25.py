import math

import numpy as np
import pytest

from shelfwise.errors import DataError
from shelfwise.search.analysis import Analyzer
from shelfwise.search.bm25 import BM25Config, BM25Index

DOCS = [
    "red apple pie",
    "green apple",
    "banana bread with apple and banana",
    "chocolate cake",
]


def reference_bm25(docs: list[list[str]], query: list[str], k1: float, b: float) -> np.ndarray:
    """Textbook Okapi BM25 with Lucene's idf, computed term by term."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    out = np.zeros(n)
    for term in query:
        df = sum(term in d for d in docs)
        if df == 0:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, d in enumerate(docs):
            tf = d.count(term)
            out[i] += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl)) / (k1 + 1)
    return out


def test_single_field_matches_reference_bm25():
    cfg = BM25Config(k1=1.2, b=0.75, fields={"title": 1.0})
    index = BM25Index(cfg, Analyzer(stem=False)).index({"title": DOCS})
    tokenised = [Analyzer(stem=False).terms(d) for d in DOCS]
    for query in ["apple", "banana apple", "chocolate", "apple apple pie"]:
        expected = reference_bm25(tokenised, Analyzer(stem=False).terms(query), 1.2, 0.75)
        np.testing.assert_allclose(index.score(query), expected, rtol=1e-5, atol=1e-6)


def test_retrieve_ranks_and_skips_non_matching():
    index = BM25Index(BM25Config(fields={"title": 1.0})).index({"title": DOCS})
    res = index.retrieve("banana", k=10)
    assert res.ids.tolist() == [2]
    res = index.retrieve("apple", k=10)
    # shorter documents win at equal term frequency
    assert res.ids.tolist()[0] == 1 and set(res.ids.tolist()) == {0, 1, 2}
    assert len(index.retrieve("unknownword", k=5)) == 0


def test_field_boost_prefers_title_match():
    docs = {"title": ["steel knife", "wooden board"], "description": ["a board", "a knife"]}
    index = BM25Index(BM25Config(fields={"title": 3.0, "description": 1.0})).index(docs)
    assert index.retrieve("knife", k=2).ids.tolist() == [0, 1]
    assert index.retrieve("board", k=2).ids.tolist() == [1, 0]


def test_stemming_matches_plural_and_units(tmp_path):
    docs = {"title": ["Chef Knives Set", "Olive Oil 500ml", "65 inch TV"]}
    index = BM25Index(BM25Config(fields={"title": 1.0})).index(docs)
    assert index.retrieve("knife", k=1).ids.tolist() == [0] or index.retrieve(
        "knives", k=1
    ).ids.tolist() == [0]
    assert index.retrieve("500ml", k=1).ids.tolist() == [1]
    assert index.retrieve("65 inch", k=1).ids.tolist() == [2]
    index.save(tmp_path / "idx")
    loaded = BM25Index.load(tmp_path / "idx")
    np.testing.assert_array_equal(loaded.score("oil"), index.score("oil"))


def test_mismatched_field_lengths_rejected():
    with pytest.raises(DataError, match="one text per document"):
        BM25Index().index({"title": ["a", "b"], "brand": ["x"]})


# -- oracle comparisons ----------------------------------------------------------------

ORACLE_DOCS = [
    "stainless steel chef knife with wooden handle",
    "ceramic chef knife set of three knives",
    "wooden cutting board for the kitchen",
    "bamboo cutting board large",
    "electric kettle stainless steel 1.7 l",
    "glass kettle with blue light",
    "espresso coffee machine stainless steel",
    "coffee grinder with ceramic burr",
    "french press coffee maker glass",
    "cast iron skillet pre seasoned",
    "non stick frying pan with glass lid",
    "steel frying pan for induction hobs",
    "kitchen knife sharpener with steel rod",
    "coffee beans dark roast",
    "green tea bags organic",
]
ORACLE_QUERIES = [
    "steel knife",
    "coffee",
    "glass kettle",
    "cutting board wooden",
    "frying pan steel glass",
    "ceramic coffee grinder",
    "tea",
    "kitchen steel steel",
]


def _tokens(texts):
    a = Analyzer()
    return [a.terms(t) for t in texts]


def test_top10_matches_bm25s_lucene():
    bm25s = pytest.importorskip("bm25s")
    tokens = _tokens(ORACLE_DOCS)
    ours = BM25Index(BM25Config(k1=1.2, b=0.75, fields={"text": 1.0})).index_terms({"text": tokens})
    ref = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    ref.index(tokens, show_progress=False)
    for query in ORACLE_QUERIES:
        q = [t for t in Analyzer().terms(query) if t in ours.vocab]
        mine = ours.retrieve_many([[ours.vocab[t] for t in q]], k=10)[0]
        docs, scores = ref.retrieve([q], k=10, show_progress=False)
        keep = scores[0] > 0
        np.testing.assert_allclose(mine.scores, scores[0][keep], atol=1e-4)
        # no ties in this corpus except equal scores, which must then be equal sets
        assert sorted(mine.ids.tolist()) == sorted(docs[0][keep].tolist())
        assert mine.ids.tolist() == ours.retrieve(query, k=10).ids.tolist()
        full = ref.get_scores(q)
        np.testing.assert_allclose(ours.score(query), full, atol=1e-4)


def test_robertson_variant_matches_rank_bm25_okapi_times_k1_plus_1():
    rank_bm25 = pytest.importorskip("rank_bm25")
    tokens = _tokens(ORACLE_DOCS)
    ours = BM25Index(BM25Config(k1=1.5, b=0.75, fields={"text": 1.0}, idf="robertson")).index_terms(
        {"text": tokens}
    )
    okapi = rank_bm25.BM25Okapi(tokens, k1=1.5, b=0.75, epsilon=0.0)
    for query in ORACLE_QUERIES:
        q = Analyzer().terms(query)
        np.testing.assert_allclose(ours.score(query) * 2.5, okapi.get_scores(q), atol=1e-4)


# -- incremental updates ----------------------------------------------------------------

FIELDS = {"title": 2.0, "brand": 1.0}
TITLES = [f"{c} {n}" for c in ("red", "blue", "green") for n in ("mug", "kettle", "teapot")]
BRANDS = ["Acme", "Bolt", "Cora"] * 3


def _fresh(titles, brands):
    return BM25Index(BM25Config(fields=FIELDS)).index({"title": titles, "brand": brands})


def test_upsert_makes_new_item_searchable_and_merge_equals_rebuild():
    index = _fresh(TITLES, BRANDS)
    index.upsert([9], {"title": ["yellow teapot"], "brand": ["Dune"]})
    assert index.delta_rows == 1 and index.n_docs == 10
    assert index.retrieve("yellow", k=5).ids.tolist() == [9]
    assert 9 in index.retrieve("teapot", k=10).ids.tolist()
    index.merge()
    assert index.delta_rows == 0
    rebuilt = _fresh([*TITLES, "yellow teapot"], [*BRANDS, "Dune"])
    for q in ["teapot", "yellow", "red mug", "acme kettle"]:
        np.testing.assert_allclose(index.score(q), rebuilt.score(q), rtol=1e-6)


def test_update_replaces_old_text_and_delete_removes():
    index = _fresh(TITLES, BRANDS)
    assert 0 in index.retrieve("red mug", k=3).ids.tolist()
    index.upsert([0], {"title": ["purple bowl"], "brand": ["Acme"]})
    assert 0 not in index.retrieve("mug", k=10).ids.tolist()
    assert index.retrieve("purple", k=3).ids.tolist() == [0]
    index.delete([4])  # blue kettle
    assert 4 not in index.retrieve("blue kettle", k=10).ids.tolist()
    assert index.n_alive == 8 and index.n_docs == 9
    # deleting an upserted (delta) row works too
    index.delete([0])
    assert len(index.retrieve("purple", k=3)) == 0
    index.merge()
    rebuilt = _fresh(["", *TITLES[1:4], "", *TITLES[5:]], ["", *BRANDS[1:4], "", *BRANDS[5:]])
    alive = index.alive
    for q in ["kettle", "green teapot", "bolt"]:
        got = index.score(q)
        # corpus statistics count live documents only
        assert got[~alive].sum() == 0
        expected = (
            BM25Index(BM25Config(fields=FIELDS))
            .index(
                {
                    "title": [t for t, a in zip(["", *TITLES[1:]], alive, strict=True) if a],
                    "brand": [b for b, a in zip(["", *BRANDS[1:]], alive, strict=True) if a],
                }
            )
            .score(q)
        )
        np.testing.assert_allclose(got[alive], expected, rtol=1e-6)
    assert rebuilt.n_docs == 9


def test_delta_uses_live_statistics_and_auto_merges():
    cfg = BM25Config(fields=FIELDS, merge_min_rows=2, merge_ratio=0.01)
    index = BM25Index(cfg).index({"title": TITLES, "brand": BRANDS})
    index.upsert([9, 10], {"title": ["a mug", "b mug"], "brand": ["x", "y"]})
    assert index.delta_rows == 2
    index.upsert([11], {"title": ["c mug"], "brand": ["z"]})
    assert index.delta_rows == 0  # 3 > merge_min_rows: merged
    assert set(index.retrieve("mug", k=10).ids.tolist()) == {0, 3, 6, 9, 10, 11}


def test_bad_updates_are_rejected_without_change():
    index = _fresh(TITLES, BRANDS)
    before = index.score("mug").copy()
    with pytest.raises(DataError, match="continue"):
        index.upsert([20], {"title": ["gap"], "brand": ["x"]})
    with pytest.raises(DataError, match="rows"):
        index.upsert([1, 2], {"title": ["one"], "brand": ["x"]})
    with pytest.raises(DataError, match="not in the index"):
        index.delete([99])
    with pytest.raises(DataError, match="not in the BM25 config"):
        index.upsert([0], {"colour": ["red"]})
    np.testing.assert_array_equal(index.score("mug"), before)


def test_save_load_after_updates(tmp_path):
    index = _fresh(TITLES, BRANDS)
    index.upsert([9], {"title": ["yellow teapot"], "brand": ["Dune"]})
    index.delete([1])
    index.save(tmp_path / "idx")
    loaded = BM25Index.load(tmp_path / "idx")
    for q in ["teapot", "yellow", "kettle", "acme"]:
        np.testing.assert_array_equal(loaded.score(q), index.score(q))
    loaded.upsert([10], {"title": ["orange mug"], "brand": ["Eko"]})
    assert loaded.retrieve("orange", k=1).ids.tolist() == [10]
    assert loaded.surface_term["teapot"] == "teapot"


def test_groups_take_the_best_alternative_and_field_scores():
    index = _fresh(TITLES, BRANDS)
    mug, kettle = index.vocab["mug"], index.vocab["kettl"]
    both = index.score_groups([[[(mug, 1.0)], [(kettle, 0.5)]]])
    np.testing.assert_allclose(both[[0, 3, 6]], index.score("mug")[[0, 3, 6]], rtol=1e-6)
    np.testing.assert_allclose(both[[1, 4, 7]], 0.5 * index.score("kettle")[[1, 4, 7]], rtol=1e-6)
    _, masks = index.score_and_match([[[(mug, 1.0)]], [[(index.vocab["red"], 1.0)]]])
    assert np.flatnonzero(masks[0] & masks[1]).tolist() == [0]
    fs = index.field_scores([index.vocab["acm"], mug], np.array([0, 1, 4]))
    assert fs.shape == (3, 2)
    assert fs[0, 0] > 0 and fs[0, 1] > 0  # "red mug" by Acme: title and brand
    assert fs[1, 0] == 0 and fs[1, 1] == 0  # "red kettle" by Bolt
    assert fs[2, 1] == 0 and fs[2, 0] == 0  # "blue kettle" by Bolt


@pytest.mark.realdata
def test_amazon_beauty_titles_match_bm25s():
    """12k real product titles (a large, natural vocabulary): 300 queries made of title
    words agree with bm25s on every top-10 score and on the ids above the 10th score."""
    from shelfwise.data.datasets import is_available, load_dataset

    bm25s = pytest.importorskip("bm25s")
    if not is_available("amazon-beauty"):
        pytest.skip("dataset amazon-beauty not found (set SHELFWISE_DATA_DIR)")
    titles = load_dataset("amazon-beauty").items["title"].tolist()
    a = Analyzer()
    tokens = [a.terms(t) for t in titles]
    ours = BM25Index(BM25Config(fields={"text": 1.0})).index_terms({"text": tokens})
    ref = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    ref.index(tokens, show_progress=False)
    rng = np.random.default_rng(0)
    queries = []
    for i in rng.choice(len(tokens), 300, replace=False).tolist():
        if tokens[i]:
            n = min(len(tokens[i]), int(rng.integers(1, 4)))
            queries.append(list(rng.choice(tokens[i], n, replace=False)))
    mine = ours.retrieve_many([[ours.vocab[t] for t in q] for q in queries], k=10)
    for q, res in zip(queries, mine, strict=True):
        docs, scores = ref.retrieve([q], k=10, show_progress=False)
        keep = scores[0] > 0
        np.testing.assert_allclose(res.scores, scores[0][keep], atol=1e-4)
        above = res.scores > res.scores[-1] + 1e-4
        ref_above = scores[0][keep] > res.scores[-1] + 1e-4
        assert set(res.ids[above].tolist()) == set(docs[0][keep][ref_above].tolist())


def test_score_and_match_rows_equals_the_dense_path_over_rows_matching_enough_groups():
    """`score_and_match_rows(groups, min_match)` gives exactly the rows whose dense match
    count reaches `min_match`, with the dense path's scores and masks bit for bit, and
    `candidate_values` each term's scores at those rows; random groups with weighted and
    phrase alternatives, before and after upserts (delta segment) and deletions."""
    rng = np.random.default_rng(3)
    words = ["red", "blue", "mug", "cup", "tea", "coffee", "eye", "liner", "eyeliner"]
    words += ["lip", "stick", "gloss", "oil", "serum"]

    def texts(n: int) -> list[str]:
        return [" ".join(rng.choice(words, size=int(rng.integers(0, 7)))) for _ in range(n)]

    index = BM25Index(BM25Config(fields={"title": 1.0, "brand": 0.5})).index(
        {"title": texts(300), "brand": [str(rng.choice(["acme", "zen", ""])) for _ in range(300)]}
    )
    checked = 0
    for _round in range(2):
        for _ in range(60):
            groups = [
                [
                    [(int(t), float(rng.choice([1.0, 0.45]))) for t in rng.integers(0, 15, size=k)]
                    for k in rng.integers(1, 3, size=int(rng.integers(1, 4)))
                ]
                for _ in range(int(rng.integers(1, 5)))
            ]
            need = int(rng.integers(1, len(groups) + 1))
            rows, scores, masks = index.score_and_match_rows(groups, need)
            dense, dense_masks = index.score_and_match(groups)
            want = np.flatnonzero(np.sum(dense_masks, axis=0) >= need)
            assert np.array_equal(rows, want)
            assert np.array_equal(scores, dense[want])
            assert all(np.array_equal(m, d[want]) for m, d in zip(masks, dense_masks, strict=True))
            for t in range(index.n_terms):
                vals, present = index.candidate_values(t)
                at, got = index.postings(t)
                full = np.zeros(index.n_docs, np.float32)
                full[at] = got
                assert np.array_equal(vals, full[want]) and np.array_equal(present, full[want] > 0)
            checked += rows.size > 0
        changed = np.unique(rng.integers(0, index.n_docs, size=15))
        index.upsert(changed, {"title": ["red mug eyeliner"] * changed.size})
        index.delete(rng.integers(0, index.n_docs, size=4).tolist())
    assert index.delta_rows and checked > 60
