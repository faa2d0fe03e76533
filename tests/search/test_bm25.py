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
