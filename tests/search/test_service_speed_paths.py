"""Known answers for the shortcuts the service takes for speed: the partial order of the
shown pages, the argpartition top-k, the category facet by `np.bincount`, code filters by
table lookup and the index's title postings (`BM25Index.rows_with`)."""

import numpy as np
import pandas as pd
import pytest

from shelfwise.search.filters import FilterIndex, top_stable
from shelfwise.search.service import SearchConfig, SearchService


def test_top_stable_is_the_stable_argsort_head():
    values = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 0.5])
    assert top_stable(values, 2).tolist() == [0, 2]  # ties by position
    assert top_stable(values, 4).tolist() == [0, 2, 4, 3]
    assert top_stable(values, 10).tolist() == [0, 2, 4, 3, 1, 5]
    assert top_stable(values, 0).tolist() == []
    rng = np.random.default_rng(3)
    for _ in range(50):
        v = rng.integers(0, 5, size=200).astype(np.float32)  # many ties
        k = int(rng.integers(1, 250))
        assert top_stable(v, k).tolist() == np.argsort(-v, kind="stable")[:k].tolist()


def test_order_with_a_limit_is_the_head_of_the_full_order():
    frame = pd.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(8)],
            "title": ["t"] * 8,
            "price": [5.0, None, 5.0, 1.0, None, 9.0, 1.0, 5.0],
        }
    )
    index = FilterIndex.build(frame)
    rows = np.array([7, 0, 3, 5, 1, 6, 2, 4])
    rel = np.array([1.0, 2.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0])
    pop = np.array([0.0, 1.0, 0.0, 3.0, 0.0, 0.0, 1.0, 0.0])
    assert index.order(rows, rel, "relevance", pop, 3).tolist() == [3, 1, 0]
    assert index.order(rows, rel, "price_asc", pop, 3).tolist() == [3, 6, 0]
    # missing prices after every known one, the more relevant (row 1) first
    assert index.order(rows, rel, "price_desc", pop, 7).tolist() == [5, 0, 2, 7, 3, 6, 1]
    rng = np.random.default_rng(5)
    for sort in ("relevance", "price_asc", "price_desc", "popularity", "newest"):
        for _ in range(20):
            r = rng.permutation(8)
            s = rng.integers(0, 3, size=8).astype(np.float64)
            full = index.order(r, s, sort, pop).tolist()
            for limit in (0, 1, 3, 8, 20):
                assert index.order(r, s, sort, pop, limit).tolist() == full[:limit]


def test_category_facet_counts_every_level_and_follows_new_labels():
    frame = pd.DataFrame(
        {
            "item_id": ["A", "B", "C", "D"],
            "title": ["t"] * 4,
            "category": ["Home > Kitchen", "Home > Garden", "Home > Kitchen", "Toys"],
        }
    )
    index = FilterIndex.build(frame)
    got = index.facets(np.arange(4), ["category"])["category"]
    assert [(c["value"], c["count"], c["level"]) for c in got] == [
        ("Home", 3, 1),
        ("Toys", 1, 1),
        ("Home > Kitchen", 2, 2),
        ("Home > Garden", 1, 2),
    ]
    # a new label after the first facet call is counted (the path table is rebuilt)
    index.set_rows(np.array([4]), frame.iloc[[0]].assign(item_id="E", category="Toys > Cars"))
    got = index.facets(np.array([3, 4]), ["category"])["category"]
    assert [(c["value"], c["count"]) for c in got] == [("Toys", 2), ("Toys > Cars", 1)]


def test_code_filters_by_table_lookup():
    frame = pd.DataFrame(
        {"item_id": list("ABCD"), "title": ["t"] * 4, "brand": ["Acme", None, "acme", "Bolt"]}
    )
    index = FilterIndex.build(frame)
    codes = index.brand.matching(["ACME"])
    assert index.brand.holds(codes).tolist() == [True, False, True, False]
    assert index.brand.holds(codes, np.array([3, 2])).tolist() == [False, True]
    assert index.brand.holds(np.array([], dtype=np.int32)).tolist() == [False] * 4


def test_rows_with_follows_upserts_and_deletes():
    frame = pd.DataFrame(
        {"item_id": list("ABC"), "title": ["red lipstick", "blue liner", "red liner"]}
    )
    svc = SearchService.build(frame, None, SearchConfig())
    index = svc.index
    red = index.vocab["red"]
    assert index.rows_with("title", red).tolist() == [0, 2]
    assert index.rows_with("brand", red).tolist() == []
    svc.upsert_items(pd.DataFrame({"item_id": ["B", "D"], "title": ["red gloss", "red pen"]}))
    assert index.rows_with("title", red).tolist() == [0, 1, 2, 3]
    svc.delete_items(["A"])
    assert index.rows_with("title", red).tolist() == [1, 2, 3]
    svc.upsert_items(pd.DataFrame({"item_id": ["C"], "title": ["green liner"]}))
    assert index.rows_with("title", red).tolist() == [1, 3]
    # the proximity check reads the titles the postings point at: "red gloss" in order
    assert svc.search("red gloss").items[0]["item_id"] == "B"


def test_proximity_boost_factors_per_title():
    """The phrase (+0.3) and proximity (+0.1, within 4 words) boosts per pair of neighbouring
    query words, averaged over the pairs: each title's score over its unboosted score."""
    titles = {
        "T1": "argan oil serum",  # both pairs adjacent: 1 + 0.3
        "T2": "serum oil argan",  # both pairs reversed, 1 word apart: 1 + 0.1
        "T3": "argan oil with many more words before serum",  # one adjacent pair: 1 + 0.15
        "T4": "serum plus argan and some filler words oil",  # oil 5 after argan: 1 + 0.05
        "T5": "oil words words words words words argan serum",  # none near: 1 + 0
        "T6": "argan serum argan oil",  # argan-oil adjacent, oil-serum 2 before: 1 + 0.2
    }
    frame = pd.DataFrame({"item_id": list(titles), "title": list(titles.values())})
    boosted = SearchService.build(
        frame, None, SearchConfig(mode="lexical", phrase_boost=0.3, proximity_boost=0.1)
    )
    flat = SearchService.build(
        frame, None, SearchConfig(mode="lexical", phrase_boost=0.0, proximity_boost=0.0)
    )

    def scores(svc: SearchService) -> dict[str, float]:
        res = svc.search("argan oil serum", per_page=20, understand=False)
        return {i["item_id"]: i["score"] for i in res.items}

    got, base = scores(boosted), scores(flat)
    expected = {"T1": 1.3, "T2": 1.1, "T3": 1.15, "T4": 1.05, "T5": 1.0, "T6": 1.2}
    assert set(got) == set(expected)
    for item, factor in expected.items():
        assert got[item] == pytest.approx(base[item] * factor, rel=1e-5), item


def test_price_facet_buckets_by_binary_search_keep_histogram_edges():
    """[lo, hi) buckets: 10 is in 10-25, 9.99 in 0-10, 1000 and 5000 in 1000+; missing and
    negative prices are not counted; the counts are np.histogram's."""
    prices = [0.0, 9.99, 10.0, 24.5, 25.0, None, -3.0, 1000.0, 5000.0, 999.0, 10.0]
    frame = pd.DataFrame(
        {"item_id": [f"I{i}" for i in range(len(prices))], "title": "t", "price": prices}
    )
    index = FilterIndex.build(frame)
    rows = np.arange(len(prices))
    got = {b["value"]: b["count"] for b in index.facets(rows, ["price"])["price"]}
    assert got == {"0-10": 2, "10-25": 3, "25-50": 1, "500-1000": 1, "1000+": 2}
    known = np.array([p for p in prices if p is not None and p >= 0])
    counts, _ = np.histogram(known, bins=np.asarray([0, 10, 25, 50, 100, 250, 500, 1000, np.inf]))
    assert sum(got.values()) == int(counts.sum())
    assert [got.get(k, 0) for k in ("0-10", "10-25", "25-50")] == counts[:3].tolist()
    assert index.facets(rows[:0], ["price"])["price"] == []


def _sparse_vs_dense_catalogue() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    words = ["red", "blue", "mug", "cup", "tea", "coffee", "eye", "liner", "eyeliner", "lip"]
    titles = [" ".join(rng.choice(words, size=int(rng.integers(1, 6)))) for _ in range(300)]
    return pd.DataFrame(
        {
            "item_id": [f"I{i}" for i in range(300)],
            "title": titles,
            "brand": rng.choice(["acme", "zen", "tea co"], size=300),
            "price": rng.uniform(1, 50, size=300).round(2),
        }
    )


def _lexical_both_ways(service: SearchService, query: str) -> tuple[object, object]:
    parsed = service.parse(query)
    allowed = service.index.alive
    out = []
    for sparse in (True, False):
        service.sparse_should = sparse
        rows, rel, dropped = service._lexical(parsed, allowed, {})
        out.append((rows.tolist(), rel.tolist(), dropped))
    service.sparse_should = True
    return out[0], out[1]


def test_sparse_should_matching_equals_the_dense_path_after_updates():
    service = SearchService.build(_sparse_vs_dense_catalogue(), None, SearchConfig(mode="lexical"))
    queries = ["red mug", "blue tea cup coffee", "eye liner red", "lip", "zen mug tea", "nothing"]
    queries += ["eyeliner", "red eyeliner mug"]  # split forms: "eye liner" in some titles
    assert service.parse("red eyeliner mug").split_groups
    for q in queries:
        sparse, dense = _lexical_both_ways(service, q)
        assert sparse == dense, q
    assert _lexical_both_ways(service, "red mug")[0][0]  # a query that matches something
    # live updates: a changed title (delta segment), a new product and a deleted one
    deleted = int(service.rows_of(["I5"])[0])
    service.upsert_items(pd.DataFrame({"item_id": ["I5"], "title": ["red mug"], "price": [1.0]}))
    assert deleted in _lexical_both_ways(service, "red mug")[0][0]
    service.upsert_items(
        pd.DataFrame(
            {"item_id": ["I3", "NEW"], "title": ["red red mug", "red mug"], "price": [2.0, 3.0]}
        )
    )
    service.delete_items(["I5"])
    for q in queries:
        sparse, dense = _lexical_both_ways(service, q)
        assert sparse == dense, q
    rows = _lexical_both_ways(service, "red mug")[0][0]
    assert deleted not in rows
    assert int(service.rows_of(["NEW"])[0]) in rows
    assert int(service.rows_of(["I3"])[0]) in rows


def test_pair_counts_by_bits_equal_the_pair_by_pair_loop():
    """The all-pairs-at-once proximity count (one int64 of group bits per title word) gives
    the same adjacent / near counts as the reference loop over each pair and offset, on
    random titles with words in several groups and unknown words."""
    from shelfwise.search.service import _pair_counts, _pair_counts_each

    rng = np.random.default_rng(5)
    for n_groups in (2, 3, 6, 12):
        member = rng.random((9, n_groups)) < 0.3
        member[-1] = False  # the last code: no query word
        lengths = rng.integers(0, 14, size=40)
        flat = rng.integers(0, member.shape[0], size=int(lengths.sum()))
        owner = np.repeat(np.arange(lengths.size), lengths)
        for window in (1, 2, 4):
            got = _pair_counts(member, flat, owner, lengths.size, window, n_groups - 1)
            want = _pair_counts_each(member[flat], owner, lengths.size, window, n_groups - 1)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
            assert want[0].any() and want[1].any()
