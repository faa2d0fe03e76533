"""Pruned top-k (`search.topk`) equals exhaustive scoring: same rows, same float32 scores,
same tie order, on random corpora and random parsed queries (typo alternatives, phrase
alternatives, weights, min-should-match, masks), before and after upserts and deletes."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.search import topk, topk_kernel
from shelfwise.search.analysis import Analyzer
from shelfwise.search.bm25 import BM25Config, BM25Index, Group
from shelfwise.search.topk import ImpactPostings

PLANS = ["default", "threshold", "kernel"]


@pytest.fixture(params=PLANS)
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test under each plan of `pruned_top_k`: as configured; the threshold rounds
    for every query (kernel off); the compiled kernel (skipped without numba)."""
    name = str(request.param)
    if name == "threshold":
        monkeypatch.setattr(topk_kernel, "AVAILABLE", False)
        monkeypatch.setattr(topk, "_HEAD_MAX_TERMS", 64)
    elif name == "kernel" and not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    return name


FIELDS = {"title": 3.0, "brand": 2.0}
VOCAB = [f"w{i}" for i in range(60)]


def _corpus(rng: np.random.Generator, n: int) -> dict[str, list[str]]:
    """Titles with Zipf-distributed words (so some terms are in most documents and ties
    are common) and a brand from a short list."""
    p = 1.0 / np.arange(1, len(VOCAB) + 1) ** 1.1
    p /= p.sum()
    titles = [
        " ".join(rng.choice(VOCAB, size=int(rng.integers(1, 9)), p=p).tolist()) for _ in range(n)
    ]
    brands = [f"b{int(rng.integers(0, 6))}" for _ in range(n)]
    return {"title": titles, "brand": brands}


def _index(docs: dict[str, list[str]], **cfg: object) -> BM25Index:
    config = BM25Config(fields=FIELDS, **cfg)  # type: ignore[arg-type]
    return BM25Index(config, Analyzer(stem=False)).index(docs)


def _random_groups(rng: np.random.Generator, index: BM25Index) -> list[Group]:
    """1-4 groups; a group is one term, or a term with a weaker typo-like alternative, or
    a term and a two-term (split) alternative; half the queries are plain (one term per
    group, as `retrieve` and the compiled kernel take)."""
    groups: list[Group] = []
    plain = rng.random() < 0.5
    for _ in range(int(rng.integers(1, 5))):
        t = int(rng.integers(0, index.n_terms))
        kind = 0 if plain else int(rng.integers(0, 3))
        if kind == 0:
            w = 1.0 if rng.random() < 0.7 else float(rng.choice([0.5, 0.8]))
            groups.append([[(t, w)]])
        elif kind == 1:
            u = int(rng.integers(0, index.n_terms))
            groups.append([[(t, 1.0)], [(u, 0.7)]])
        else:
            u, v = (int(x) for x in rng.integers(0, index.n_terms, size=2))
            groups.append([[(t, 1.0)], [(u, 0.45), (v, 0.45)]])
    return groups


def _assert_same(index: BM25Index, groups: list[Group], k: int, **kw: object) -> None:
    exact = index.top_k(groups, k, exhaustive=True, **kw)  # type: ignore[arg-type]
    pruned = index.top_k(groups, k, **kw)  # type: ignore[arg-type]
    assert pruned.ids.tolist() == exact.ids.tolist(), groups
    np.testing.assert_array_equal(pruned.scores, exact.scores)


def test_exhaustive_top_k_is_the_dense_scores_top_k() -> None:
    """The reference itself, on a known answer: 'w0' ranks the shortest title first."""
    index = _index({"title": ["w0 w1 w2", "w0", "w1", "w0 w0 w3"], "brand": ["", "", "", ""]})
    res = index.top_k([[[(index.vocab["w0"], 1.0)]]], 10, exhaustive=True)
    assert res.ids.tolist()[:2] == [3, 1] or res.ids.tolist()[:2] == [1, 3]
    assert set(res.ids.tolist()) == {0, 1, 3}
    dense = index.score_groups([[[(index.vocab["w0"], 1.0)]]])
    np.testing.assert_array_equal(res.scores, np.sort(dense[dense > 0])[::-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pruned_equals_exhaustive_on_random_queries(seed: int, plan: str) -> None:
    rng = np.random.default_rng(seed)
    index = _index(_corpus(rng, 3000))
    for _ in range(150):
        groups = _random_groups(rng, index)
        k = int(rng.choice([1, 5, 10, 50]))
        _assert_same(index, groups, k)
        _assert_same(index, groups, k, min_match=int(rng.integers(1, len(groups) + 1)))


def test_pruned_equals_exhaustive_with_ties_and_one_term(plan: str) -> None:
    """Identical documents tie exactly; the pruned path keeps the lowest rows, as the
    exhaustive one does."""
    docs = {"title": ["w1 w2"] * 500 + ["w1"] * 3 + ["w2 w3 w4"] * 200, "brand": [""] * 703}
    index = _index(docs)
    w1, w2 = index.vocab["w1"], index.vocab["w2"]
    res = index.top_k([[[(w1, 1.0)]]], 5)
    assert res.ids.tolist() == [500, 501, 502, 0, 1]
    _assert_same(index, [[[(w2, 1.0)]]], 10)
    _assert_same(index, [[[(w1, 1.0)]], [[(w2, 1.0)]]], 10)
    for w in (0.8, 0.7, 0.45):
        _assert_same(index, [[[(w1, w)]]], 5)
        _assert_same(index, [[[(w2, w)]]], 600)


def test_one_weighted_term_equals_exhaustive_over_many_lengths(plan: str) -> None:
    titles = [" ".join(["w1"] + ["w2"] * (i % 40)) for i in range(600)]
    index = _index({"title": titles, "brand": [""] * 600})
    w1 = index.vocab["w1"]
    for w in (1e-7, 0.3, 0.7):
        for k in (1, 7, 25, 100):
            _assert_same(index, [[[(w1, w)]]], k)


def test_one_term_head_keeps_ties_that_the_weight_rounds_into() -> None:
    """Known answer: scores one float32 step apart, in rows that run against the score
    order, tie once multiplied by 0.7 (rounded to float32); the weighted head ranks tied
    rows by row, as exhaustive scoring does, and reads past the first k postings to find
    them."""
    import scipy.sparse as sp

    v = [np.float32(1.0)]
    for _ in range(59):
        v.append(np.nextafter(v[-1], np.float32(0)))
    vals = np.asarray(v, np.float32)
    rows = np.arange(60)[::-1].copy()  # the best score in the last row
    imp = ImpactPostings(sp.csc_matrix((vals, (rows, np.zeros(60, int))), shape=(60, 1)))
    w = np.float32(0.7)
    weighted = vals * w
    assert np.unique(weighted).size < 60  # the weight made ties
    for k in (1, 3, 10, 59):
        ref = np.lexsort((rows, -weighted))[:k]
        res = topk._head(imp, 0, 0.7, k)
        assert res.ids.tolist() == rows[ref].tolist()
        np.testing.assert_array_equal(res.scores, weighted[ref])
    head = topk._head(imp, 0, 0.7, 59).ids.tolist()
    assert head != rows[:59].tolist()  # tied rows were re-ranked, not kept in list order


def test_pruned_respects_masks_and_min_match(plan: str) -> None:
    rng = np.random.default_rng(5)
    index = _index(_corpus(rng, 2000))
    for density in (0.002, 0.05, 0.6):
        mask = rng.random(index.n_docs) < density
        for _ in range(40):
            groups = _random_groups(rng, index)
            _assert_same(index, groups, 10, mask=mask)
            _assert_same(index, groups, 10, mask=mask, min_match=len(groups))
            res = index.top_k(groups, 10, mask=mask)
            assert mask[res.ids].all()


def test_pruned_follows_upserts_and_deletes_before_and_after_merge(plan: str) -> None:
    rng = np.random.default_rng(11)
    docs = _corpus(rng, 1500)
    index = _index(docs, merge_min_rows=10_000)
    index.impacts()  # built before the updates: the pruned path must not serve stale rows
    new = _corpus(rng, 40)
    rows = np.concatenate([rng.choice(1500, 20, replace=False), np.arange(1500, 1520)])
    index.upsert(rows, {"title": new["title"][:40], "brand": new["brand"][:40]})
    index.delete(rng.choice(1500, 30, replace=False))
    assert index.delta_rows > 0
    for _ in range(120):
        groups = _random_groups(rng, index)
        _assert_same(index, groups, 10)
        res = index.top_k(groups, 50)
        assert index.alive[res.ids].all()
    index.merge()
    for _ in range(60):
        _assert_same(index, _random_groups(rng, index), 10)


def test_retrieve_uses_pruned_top_k_and_matches_dense_scores(plan: str) -> None:
    rng = np.random.default_rng(3)
    docs = _corpus(rng, 2500)
    index = _index(docs)
    for q in ["w0", "w0 w1", "w5 w17 w3", "w59", "b2 w0", "nothing"]:
        dense = index.score(q)
        cand = np.flatnonzero(dense > 0)
        order = cand[np.lexsort((cand, -dense[cand]))][:10]
        res = index.retrieve(q, k=10)
        assert res.ids.tolist() == order.tolist()
        np.testing.assert_array_equal(res.scores, dense[order])


def test_impact_postings_are_sorted_best_first_and_look_up_exact_scores() -> None:
    rng = np.random.default_rng(2)
    index = _index(_corpus(rng, 800))
    assert index.scores is not None
    imp = ImpactPostings(index.scores.copy())
    for t in range(index.n_terms):
        lo, hi = imp.indptr[t], imp.indptr[t + 1]
        vals, rows = imp.vals[lo:hi], imp.rows[lo:hi]
        assert np.all(np.diff(vals) <= 0)
        ties = np.flatnonzero(np.diff(vals) == 0)
        assert np.all(rows[ties] < rows[ties + 1])
    terms = np.array([0, 3, index.n_terms - 1])
    rows = np.arange(0, 800, 7)
    dense = np.stack([index.score_terms([int(t)]) for t in terms])[:, rows]
    np.testing.assert_array_equal(imp.lookup(terms, rows), dense)


def test_kernel_matches_exhaustive_with_weights_and_repeated_terms() -> None:
    """The compiled kernel alone (numba), on plain queries with weights below 1 and a term
    given twice (its score counts twice, as in dense scoring)."""
    if not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(8)
    index = _index(_corpus(rng, 4000))
    imp = index.impacts()
    for _ in range(100):
        terms = rng.integers(0, index.n_terms, size=int(rng.integers(1, 6)))
        if rng.random() < 0.3:
            terms = np.concatenate([terms, terms[:1]])
        weights = rng.choice([1.0, 0.8, 0.5], size=terms.size).astype(np.float32)
        groups: list[Group] = [[[(int(t), float(w))]] for t, w in zip(terms, weights, strict=True)]
        need = int(rng.integers(1, terms.size + 1))
        rows, scores = topk_kernel.maxscore_top_k(
            imp.indptr,
            imp.csc_rows,
            imp.data,
            imp.maxima,
            terms.astype(np.int64),
            weights,
            10,
            None,
            None,
            need,
        )
        exact = index.top_k(groups, 10, min_match=need, exhaustive=True)
        assert rows.tolist() == exact.ids.tolist()
        np.testing.assert_array_equal(scores, exact.scores)


def _variant_groups(rng: np.random.Generator, index: BM25Index) -> list[Group]:
    """1-4 groups as the parser makes them for typos and prefixes: the exact word (weight
    1) or none, then 1-12 weighted variants (0.7 typo, 0.8 prefix), some groups plain."""
    groups: list[Group] = []
    for _ in range(int(rng.integers(1, 5))):
        n = 0 if rng.random() < 0.3 else int(rng.integers(1, 13))
        terms = rng.choice(index.n_terms, size=n + 1, replace=False).tolist()
        alts = [[(int(terms[0]), 1.0)]] if rng.random() < 0.7 else []
        alts += [[(int(t), float(rng.choice([0.7, 0.8])))] for t in terms[1:]]
        groups.append(alts or [[(int(terms[0]), 0.8)]])
    return groups


def test_typo_and_prefix_groups_take_the_kernel_and_equal_exhaustive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Groups of single-term alternatives (typo and prefix variants) go through the compiled
    kernel and give the exhaustive rows and bit-identical scores, before and after updates,
    with masks and min-should-match; so does a split alternative (two terms)."""
    if not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    calls: list[int] = []
    real = topk_kernel.maxscore_top_k

    def counted(*args: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(topk_kernel, "maxscore_top_k", counted)
    rng = np.random.default_rng(21)
    index = _index(_corpus(rng, 3000), merge_min_rows=10_000)
    for step in range(2):
        for _ in range(120):
            groups = _variant_groups(rng, index)
            k = int(rng.choice([1, 10, 50]))
            before = len(calls)
            _assert_same(index, groups, k)
            single = len(groups) == 1 and len(groups[0]) == 1
            assert len(calls) == before + (0 if single and step == 0 else 1), groups
            _assert_same(index, groups, k, min_match=len(groups))
            _assert_same(index, groups, 10, mask=rng.random(index.n_docs) < 0.5)
        new = _corpus(rng, 30)
        rows = np.concatenate([rng.choice(3000, 15, replace=False), np.arange(3000, 3015)])
        index.upsert(rows, {"title": new["title"], "brand": new["brand"]})
        index.delete(rng.choice(3000, 20, replace=False))
    before = len(calls)
    w0, w1, w2 = index.vocab["w0"], index.vocab["w1"], index.vocab["w2"]
    _assert_same(index, [[[(w0, 1.0)], [(w1, 0.45), (w2, 0.45)]]], 10)
    assert len(calls) == before + 1


def _phrase_groups(rng: np.random.Generator, index: BM25Index, n_terms: int) -> list[Group]:
    """1-4 groups mixing what the parser makes: a plain word, typo/prefix variants, a word
    with its split form (two terms at 0.45), a joined pair as one group of one two-term
    alternative, a phrase synonym of 2-3 terms (a term may repeat), terms drawn from the
    first `n_terms` ids (those above the main segment's exist only in the delta)."""
    groups: list[Group] = []
    for _ in range(int(rng.integers(1, 5))):
        t, u, v = (int(x) for x in rng.integers(0, n_terms, size=3))
        kind = int(rng.integers(0, 5))
        if kind == 0:
            groups.append([[(t, 1.0)]])
        elif kind == 1:
            groups.append([[(t, 1.0)], [(u, 0.7)], [(v, 0.8)]])
        elif kind == 2:
            groups.append([[(t, 1.0)], [(u, 0.45), (v, 0.45)]])
        elif kind == 3:
            groups.append(
                [[(t, 1.0), (u, 1.0)], [(v, 0.9)]] if rng.random() < 0.5 else [[(t, 1.0), (u, 0.9)]]
            )
        else:
            phrase = [(t, 1.0), (u, 1.0)] + ([(v, 1.0)] if rng.random() < 0.5 else [(t, 1.0)])
            groups.append([phrase, [(v, 1.0)]])
    return groups


def test_split_join_and_phrase_groups_take_the_kernel_and_equal_exhaustive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Groups with multi-term alternatives (split and joined forms, phrase synonyms, a
    group of one multi-term alternative, a repeated term) go through the compiled kernel
    and give the exhaustive rows and bit-identical scores: the float32 sums in the same
    order, a phrase matching its group only where all its terms are, one matched group
    required even with min_match 0; with masks, min-should-match, and after upserts whose
    new terms only the delta holds."""
    if not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    calls: list[int] = []
    real = topk_kernel.maxscore_top_k

    def counted(*args: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(topk_kernel, "maxscore_top_k", counted)
    rng = np.random.default_rng(31)
    index = _index(_corpus(rng, 3000), merge_min_rows=10_000)
    index.impacts()
    for _step in range(2):
        for _ in range(150):
            groups = _phrase_groups(rng, index, index.n_terms)
            k = int(rng.choice([1, 10, 50]))
            before = len(calls)
            _assert_same(index, groups, k)
            if any(len(alt) > 1 for g in groups for alt in g):
                assert len(calls) == before + 1, groups
            _assert_same(index, groups, k, min_match=0)
            _assert_same(index, groups, k, min_match=int(rng.integers(1, len(groups) + 1)))
            _assert_same(index, groups, 10, mask=rng.random(index.n_docs) < 0.5)
        new = _corpus(rng, 30)
        new["title"] = [f"{t} fresh{i % 3}" for i, t in enumerate(new["title"])]
        rows = np.concatenate([rng.choice(3000, 15, replace=False), np.arange(3000, 3015)])
        index.upsert(rows, {"title": new["title"], "brand": new["brand"]})
        index.delete(rng.choice(3000, 20, replace=False))
    assert index.n_terms > index.impacts().n_terms  # the fresh words: delta only
    fresh = index.vocab["fresh1"]
    w0 = index.vocab["w0"]
    _assert_same(index, [[[(w0, 1.0), (fresh, 1.0)]]], 10)
    _assert_same(index, [[[(w0, 1.0)], [(w0, 0.45), (fresh, 0.45)]]], 10)


def test_kernel_scores_a_split_form_as_the_sum_of_its_parts() -> None:
    """Known answer: "lipstick" with its split form "lip stick" (each part at 0.45): the row
    holding the word scores it at weight 1, a row holding both parts scores their weighted
    sum, a row holding only "lip" scores 0.45 of it but does not match the group, so it is
    left out."""
    if not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    docs = {"title": ["lipstick red", "lip stick red", "lip balm", "red"], "brand": [""] * 4}
    index = _index(docs)
    word, lip, stick = index.vocab["lipstick"], index.vocab["lip"], index.vocab["stick"]
    groups: list[Group] = [[[(word, 1.0)], [(lip, 0.45), (stick, 0.45)]]]
    res = index.top_k(groups, 10)
    s_word, s_lip, s_stick = (index.score_terms([t]) for t in (word, lip, stick))
    split = np.float32(
        np.float32(s_lip[1] * np.float32(0.45)) + np.float32(s_stick[1] * np.float32(0.45))
    )
    assert res.ids.tolist() == ([0, 1] if s_word[0] > split else [1, 0])
    np.testing.assert_array_equal(res.scores, np.sort(np.asarray([s_word[0], split]))[::-1])


def test_kernel_scores_an_exact_word_above_its_prefix_variant() -> None:
    """Known answer: a row holding the exact word scores it at weight 1, a row holding
    only the variant at 0.8 of the variant's score; a row holding both scores the better
    one, not their sum (rows 0 and 2 tie: same title length, both hold the exact word)."""
    if not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    docs = {"title": ["w1 w9", "w12 w9", "w1 w12", "w9"], "brand": [""] * 4}
    index = _index(docs)
    w1, w12 = index.vocab["w1"], index.vocab["w12"]
    groups: list[Group] = [[[(w1, 1.0)], [(w12, 0.8)]]]
    res = index.top_k(groups, 10)
    s1, s12 = index.score_terms([w1]), index.score_terms([w12])
    assert s1[0] == s1[2] > np.float32(s12[2] * np.float32(0.8)) > 0
    assert res.ids.tolist() == [0, 2, 1]
    expected = [s1[0], s1[2], np.float32(s12[1] * np.float32(0.8))]
    np.testing.assert_array_equal(res.scores, np.asarray(expected, np.float32))


def test_parsed_typo_and_prefix_queries_take_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's own parses of a typo ("shampo") and a prefix ("moistu") give groups
    of single-term variants; their pruned top k is the exhaustive one, by the kernel."""
    if not topk_kernel.AVAILABLE:
        pytest.skip("numba is not installed")
    import pandas as pd

    from shelfwise.search.service import SearchService

    titles = ["shampoo for dry hair", "mild shampoo", "shampoo12 travel size", "moisturiser",
              "moisture mist", "moisturizing shampoo", "hair oil", "dry shampoo spray"]  # fmt: skip
    frame = pd.DataFrame({"item_id": [f"I{i}" for i in range(len(titles))], "title": titles})
    service = SearchService.build(frame)
    calls: list[int] = []
    real = topk_kernel.maxscore_top_k

    def counted(*args: object, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(topk_kernel, "maxscore_top_k", counted)
    for query in ("shampo", "moistu", "dry shampo", "shampoo moistu"):
        groups = service.parse(query).groups
        assert any(len(g) > 1 for g in groups), query  # variants were added
        before = len(calls)
        _assert_same(service.index, list(groups), 5)
        assert len(calls) == before + 1, query
