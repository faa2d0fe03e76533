"""The contract every retriever (`shelfwise.search.base.Retriever`) must meet, on a small
known corpus.

Needs pytest (a dev dependency, not a runtime one): the contract is a pytest test class.

The corpus (`CORPUS`, the canonical item layout) is twelve products whose titles share no
word except "stainless steel" (rows 0 and 10), so every title, searched as a query, has one
right answer: its own row. A retriever is built over it with rows numbered as the frame's
rows, and must then answer `retrieve(query, k, mask)` with at most `k` valid, distinct rows,
best first, never a row the mask forbids; an exact title first; an empty query with empty
`Results` (not an error); `k` beyond the corpus without complaint; the same answer every
time and for every build.

How to run it on your own retriever (a plugin author's path)::

    import pytest
    from shelfwise.testing import RetrieverContract, RetrieverTraits

    class TestMyRetriever(RetrieverContract):
        @pytest.fixture()
        def retriever_factory(self):
            return lambda corpus: MyRetriever().index(corpus["title"].tolist())

        @pytest.fixture()  # optional: a dense retriever answers queries no row matches
        def retriever_traits(self) -> RetrieverTraits:
            return RetrieverTraits(matches_only=False)

tests/search/test_retriever_contract.py runs it for BM25F, dense retrieval (MiniLM) and
fused retrievers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import conform
from shelfwise.search.base import Retriever
from shelfwise.types import Results

__all__ = [
    "CORPUS",
    "N_DOCS",
    "UNKNOWN_QUERY",
    "RetrieverContract",
    "RetrieverFactory",
    "RetrieverTraits",
    "corpus",
]

# (title, brand, category, description); the titles are the exact-match queries
_PRODUCTS = [
    (
        "Stainless Steel Chef Knife",
        "Edgeworks",
        "Home > Kitchen > Knives",
        "forged blade for slicing and chopping vegetables",
    ),
    (
        "Cast Iron Skillet",
        "Forgewell",
        "Home > Kitchen > Cookware",
        "pre-seasoned frying pan for searing and baking",
    ),
    (
        "Wireless Noise Cancelling Headphones",
        "Soundwave",
        "Electronics > Audio",
        "over-ear bluetooth headphones with a long battery life",
    ),
    (
        "Mechanical Gaming Keyboard",
        "Keyforge",
        "Electronics > Computers",
        "tactile switches and a backlight for late-night games",
    ),
    (
        "Non-Slip Yoga Mat",
        "Zenfit",
        "Sports > Fitness",
        "thick cushioned mat for yoga and pilates",
    ),
    (
        "Espresso Coffee Machine",
        "Barista Pro",
        "Home > Kitchen > Appliances",
        "a 15 bar pump brews espresso and cappuccino",
    ),
    (
        "Trail Running Shoes",
        "Stridex",
        "Sports > Running",
        "lightweight shoes with grippy soles for muddy trails",
    ),
    (
        "Leather Office Chair",
        "Seatwell",
        "Furniture > Office",
        "ergonomic swivel chair with lumbar support",
    ),
    (
        "Ceramic Plant Pot",
        "Greenhome",
        "Garden > Planters",
        "glazed pot with a drainage hole for indoor plants",
    ),
    (
        "Electric Toothbrush",
        "Brightsmile",
        "Health > Oral Care",
        "rechargeable sonic toothbrush with two brush heads",
    ),
    (
        "Stainless Steel Water Bottle",
        "Hydraflow",
        "Sports > Outdoor",
        "insulated bottle keeps drinks cold for a whole day",
    ),
    (
        "Wool Winter Scarf",
        "Northknit",
        "Clothing > Accessories",
        "soft merino wool scarf for cold days",
    ),
]

N_DOCS = len(_PRODUCTS)
UNKNOWN_QUERY = "qzxv wplk"
"""A query sharing no word with the corpus."""
_SHARED_QUERY = "stainless steel"
"""A query that matches two rows (0 and 10) and nothing else."""


def corpus() -> pd.DataFrame:
    """The contract corpus as a catalog frame (canonical item layout), row i = item row i."""
    rows = [
        {
            "item_id": f"doc-{i}",
            "title": title,
            "description": description,
            "category": category,
            "brand": brand,
            "price": 10.0 + i,
            "currency": "EUR",
            "in_stock": True,
            "attributes": "{}",
            "created_at": pd.Timestamp("2024-01-01"),
        }
        for i, (title, brand, category, description) in enumerate(_PRODUCTS)
    ]
    return conform("items", pd.DataFrame(rows))


CORPUS = corpus()

RetrieverFactory = Callable[[pd.DataFrame], Retriever]
"""Builds a retriever over a catalog frame whose row i is item row i."""


@dataclass(frozen=True)
class RetrieverTraits:
    """What a retriever promises beyond the contract: `matches_only` (it returns only rows
    that share a term with the query, so a query no row matches gets empty `Results`;
    False for dense retrieval, which always has nearest neighbours)."""

    matches_only: bool = True


def _checked(res: Results, k: int, mask: np.ndarray | None = None) -> list[int]:
    """The result's rows after checking what holds for every answer; fails with the reason."""
    assert isinstance(res, Results), f"retrieve must return Results, got {type(res).__name__}"
    assert res.ids.ndim == 1, f"one query's Results must be 1-D, got shape {res.ids.shape}"
    assert res.ids.shape == res.scores.shape
    assert np.issubdtype(res.ids.dtype, np.integer), f"ids must be integers, got {res.ids.dtype}"
    assert len(res) <= k, f"{len(res)} results for k={k}"
    ids = [int(i) for i in res.ids]
    bad = [i for i in ids if not 0 <= i < N_DOCS]
    assert not bad, f"ids {bad} are not rows of the {N_DOCS}-row corpus (padding is not allowed)"
    assert len(set(ids)) == len(ids), f"a row is listed twice: {ids}"
    assert np.isfinite(res.scores).all(), f"scores must be finite: {res.scores}"
    assert np.all(np.diff(res.scores) <= 0), f"not best first: scores {res.scores}"
    if mask is not None:
        forbidden = [i for i in ids if not mask[i]]
        assert not forbidden, f"rows {forbidden} are forbidden by the mask"
    return ids


class RetrieverContract:
    """Tests every retriever must pass; subclasses provide the `retriever_factory` fixture
    and may override `retriever_traits` (see the module docstring)."""

    @pytest.fixture()
    def retriever_traits(self) -> RetrieverTraits:
        """What the retriever promises (default: lexical, only matching rows)."""
        return RetrieverTraits()

    @pytest.fixture()
    def retriever(self, retriever_factory: RetrieverFactory) -> Retriever:
        """A retriever built over (a copy of) the contract corpus."""
        return retriever_factory(CORPUS.copy())

    def test_is_a_retriever(self, retriever: Retriever) -> None:
        """The built object satisfies the `Retriever` protocol."""
        assert isinstance(retriever, Retriever)

    @pytest.mark.parametrize("k", [1, 2, 5])
    def test_at_most_k_valid_rows_best_first(self, retriever: Retriever, k: int) -> None:
        """At most k distinct corpus rows, finite scores, non-increasing."""
        for query in (_SHARED_QUERY, "kitchen", "wool scarf for cold days"):
            ids = _checked(retriever.retrieve(query, k), k)
            assert ids, f"no result for {query!r}, which the corpus matches"

    def test_query_matching_two_rows(
        self, retriever: Retriever, retriever_traits: RetrieverTraits
    ) -> None:
        """A query two rows match gets both first (only them, for a matches-only one)."""
        ids = _checked(retriever.retrieve(_SHARED_QUERY, 5), 5)
        assert set(ids[:2]) == {0, 10}, ids
        if retriever_traits.matches_only:
            assert len(ids) == 2, ids

    @pytest.mark.parametrize("row", range(N_DOCS))
    def test_exact_title_ranks_its_row_first(self, retriever: Retriever, row: int) -> None:
        """Searching a product's exact title ranks that product first."""
        title = str(CORPUS["title"].iloc[row])
        ids = _checked(retriever.retrieve(title, 3), 3)
        assert ids and ids[0] == row, f"{title!r}: expected row {row} first, got {ids}"

    def test_mask_forbids_rows(
        self, retriever: Retriever, retriever_traits: RetrieverTraits
    ) -> None:
        """Rows the mask forbids are never returned, even an exact match."""
        mask = np.ones(N_DOCS, dtype=bool)
        mask[0] = False
        title = str(CORPUS["title"].iloc[0])
        ids = _checked(retriever.retrieve(title, N_DOCS, mask), N_DOCS, mask)
        assert ids, f"{title!r} with row 0 masked: row 10 still matches"
        if retriever_traits.matches_only:
            # "stainless steel" is all that is left to match
            assert ids == [10], ids

    def test_mask_allowing_few_rows(
        self, retriever: Retriever, retriever_traits: RetrieverTraits
    ) -> None:
        """With two rows allowed, only they can come back, whatever k is."""
        mask = np.zeros(N_DOCS, dtype=bool)
        mask[[2, 7]] = True
        # "kitchen" matches rows 0, 1 and 5, all forbidden
        ids = _checked(retriever.retrieve("headphones for the kitchen", 10, mask), 10, mask)
        assert ids and ids[0] == 2, ids
        if retriever_traits.matches_only:
            assert ids == [2]

    def test_mask_allowing_nothing(self, retriever: Retriever) -> None:
        """An all-False mask gives empty Results."""
        mask = np.zeros(N_DOCS, dtype=bool)
        assert _checked(retriever.retrieve(_SHARED_QUERY, 5, mask), 5, mask) == []

    @pytest.mark.parametrize("query", ["", "   "])
    def test_empty_query_gives_empty_results(self, retriever: Retriever, query: str) -> None:
        """An empty or blank query gives empty Results, not an error."""
        assert _checked(retriever.retrieve(query, 5), 5) == []

    def test_unknown_query_is_not_an_error(
        self, retriever: Retriever, retriever_traits: RetrieverTraits
    ) -> None:
        """A query no row matches is answered (empty for a matches-only retriever)."""
        ids = _checked(retriever.retrieve(UNKNOWN_QUERY, 5), 5)
        if retriever_traits.matches_only:
            assert ids == []

    def test_k_larger_than_the_corpus(
        self, retriever: Retriever, retriever_traits: RetrieverTraits
    ) -> None:
        """k beyond the corpus size is fine: at most every row, each once."""
        k = 10 * N_DOCS
        ids = _checked(retriever.retrieve("kitchen", k), k)
        if retriever_traits.matches_only:
            # the three "Home > Kitchen" rows
            assert sorted(ids) == [0, 1, 5], ids
        else:
            assert {0, 1, 5} <= set(ids), ids

    def test_deterministic(self, retriever_factory: RetrieverFactory) -> None:
        """The same query gives the same answer, again and from a second build."""
        first = retriever_factory(CORPUS.copy())
        second = retriever_factory(CORPUS.copy())
        mask = np.ones(N_DOCS, dtype=bool)
        mask[[1, 4]] = False
        for query in (_SHARED_QUERY, "kitchen", "shoes for running on trails"):
            for m in (None, mask):
                a = first.retrieve(query, 5, m)
                again = first.retrieve(query, 5, m)
                b = second.retrieve(query, 5, m)
                for other in (again, b):
                    np.testing.assert_array_equal(other.ids, a.ids)
                    np.testing.assert_array_equal(other.scores, a.scores)
