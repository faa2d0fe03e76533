"""The retriever contract (`shelfwise.testing.RetrieverContract`) for BM25F, dense retrieval
with the real all-MiniLM-L6-v2 model (offline), and retrievers fused by RRF and by scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError
from shelfwise.search.base import Retriever
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.fusion import FusedRetriever, RRFFusion, ScoreFusion
from shelfwise.search.semantic import DenseIndex, item_texts
from shelfwise.testing import CORPUS, RetrieverContract, RetrieverTraits
from shelfwise.testing.retriever import RetrieverFactory
from shelfwise.text import get_encoder
from shelfwise.types import Results

FIELDS = ("title", "brand", "category", "description")


def bm25(corpus: pd.DataFrame) -> BM25Index:
    """BM25F over the corpus's text fields (default boosts)."""
    return BM25Index().index({f: corpus[f].tolist() for f in FIELDS})


def dense(corpus: pd.DataFrame) -> DenseIndex:
    """Exact (flat) MiniLM retrieval; embedded directly, so no on-disk cache is written."""
    return DenseIndex().index_vectors(get_encoder().encode(item_texts(corpus)))


class TestBM25Contract(RetrieverContract):
    """BM25F answers only matching rows."""

    @pytest.fixture()
    def retriever_factory(self) -> RetrieverFactory:
        return bm25


class TestDenseContract(RetrieverContract):
    """Dense retrieval always has nearest neighbours, so it is not matches-only."""

    @pytest.fixture()
    def retriever_factory(self) -> RetrieverFactory:
        return dense

    @pytest.fixture()
    def retriever_traits(self) -> RetrieverTraits:
        return RetrieverTraits(matches_only=False)


class TestRRFFusedContract(RetrieverContract):
    """BM25F and dense, fused by reciprocal rank fusion."""

    @pytest.fixture()
    def retriever_factory(self) -> RetrieverFactory:
        return lambda corpus: FusedRetriever([bm25(corpus), dense(corpus)], RRFFusion())

    @pytest.fixture()
    def retriever_traits(self) -> RetrieverTraits:
        return RetrieverTraits(matches_only=False)


class TestScoreFusedContract(RetrieverContract):
    """BM25F and dense, fused by min-max normalised scores, fetching deeper than k."""

    @pytest.fixture()
    def retriever_factory(self) -> RetrieverFactory:
        return lambda corpus: FusedRetriever(
            [bm25(corpus), dense(corpus)], ScoreFusion([1.0, 1.0]), depth=8
        )

    @pytest.fixture()
    def retriever_traits(self) -> RetrieverTraits:
        return RetrieverTraits(matches_only=False)


class TestLexicalOnlyFusedContract(RetrieverContract):
    """Fusion of two lexical retrievers stays matches-only."""

    @pytest.fixture()
    def retriever_factory(self) -> RetrieverFactory:
        return lambda corpus: FusedRetriever([bm25(corpus), bm25(corpus)])


class _Fixed:
    """A retriever answering the same list whatever the query (to check the wrapper)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = np.asarray(ids, np.int64)
        self.calls: list[tuple[str, int]] = []

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        self.calls.append((query, k))
        ids = self.ids if mask is None else self.ids[mask[self.ids]]
        ids = ids[:k]
        return Results(ids, np.linspace(1.0, 0.5, ids.size).astype(np.float32))


def test_fused_retriever_fuses_in_order_at_depth() -> None:
    # RRF with k=60: row 3 is 2nd in both lists (2/62 = 0.03226) and beats row 1 and row 5,
    # each 1st in one list only (1/61 = 0.01639), but only when both lists reach depth 2
    a, b = _Fixed([1, 3, 4]), _Fixed([5, 3, 4])
    fused = FusedRetriever([a, b], depth=2)
    assert isinstance(fused, Retriever)
    res = fused.retrieve("q", 1)
    assert res.ids.tolist() == [3]
    np.testing.assert_allclose(res.scores, [2 / 62], rtol=1e-6)
    assert a.calls == b.calls == [("q", 2)]
    # without depth each list gives its first row only: a tie broken by the smaller row
    assert FusedRetriever([a, b]).retrieve("q", 1).ids.tolist() == [1]
    mask = np.ones(6, dtype=bool)
    mask[3] = False
    assert fused.retrieve("q", 3, mask).ids.tolist() == [4, 1, 5]


def test_fused_retriever_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="at least one retriever"):
        FusedRetriever([])
    with pytest.raises(ConfigError, match="depth"):
        FusedRetriever([_Fixed([0])], depth=0)


def test_corpus_titles_are_distinct_queries() -> None:
    # the exact-title test relies on it: only rows 0 and 10 share title words
    words = [set(t.lower().split()) for t in CORPUS["title"]]
    shared = {
        (i, j) for i in range(len(words)) for j in range(i + 1, len(words)) if words[i] & words[j]
    }
    assert shared == {(0, 10)}
