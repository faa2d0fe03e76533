"""A plugin author's path through the retriever contract: a tiny third-party retriever passes
it, and broken variants fail the contract tests that cover what they break."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from shelfwise.testing import CORPUS, RetrieverContract, RetrieverTraits
from shelfwise.testing.retriever import RetrieverFactory
from shelfwise.types import Results


def words(text: str) -> set[str]:
    """Lower-cased alphanumeric words."""
    return set(re.findall(r"[a-z0-9]+", text.lower()))


class WordOverlap:
    """Rows scored by how many of the query's words their text contains (a third party's
    retriever: it knows shelfwise only through `Results`)."""

    def __init__(self, corpus: pd.DataFrame) -> None:
        fields = ("title", "brand", "category", "description")
        self.docs = [words(" ".join(str(row[f]) for f in fields)) for _, row in corpus.iterrows()]

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        """The best `k` rows sharing a word with the query, ties by row."""
        q = words(query)
        scores = np.array([len(q & doc) for doc in self.docs], dtype=np.float32)
        if mask is not None:
            scores[~mask] = 0.0
        rows = np.flatnonzero(scores > 0)
        rows = rows[np.lexsort((rows, -scores[rows]))][:k]
        return Results(rows.astype(np.int64), scores[rows])


class TestWordOverlapContract(RetrieverContract):
    """The third-party retriever passes the whole contract."""

    @pytest.fixture()
    def retriever_factory(self) -> RetrieverFactory:
        return WordOverlap


class IgnoresMask(WordOverlap):
    """Broken: searches every row whatever the mask says."""

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        return super().retrieve(query, k)


class WorstFirst(WordOverlap):
    """Broken: lists the rows in reverse."""

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        res = super().retrieve(query, k, mask)
        return Results(res.ids[::-1], res.scores[::-1])


class PadsToK(WordOverlap):
    """Broken: pads the answer to k with id -1 (a batch layout, not one query's)."""

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        res = super().retrieve(query, k, mask)
        pad = k - len(res)
        ids = np.concatenate([res.ids, np.full(pad, -1, np.int64)])
        return Results(ids, np.concatenate([res.scores, np.zeros(pad, np.float32)]))


class RefusesBlankQueries(WordOverlap):
    """Broken: a blank query is an error."""

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        if not query.strip():
            raise ValueError("empty query")
        return super().retrieve(query, k, mask)


CONTRACT = RetrieverContract()
LEXICAL = RetrieverTraits()
Check = Callable[[WordOverlap], None]

# each contract test as a call on a built retriever
CHECKS: dict[str, Check] = {
    "at_most_k_valid_rows_best_first": lambda r: CONTRACT.test_at_most_k_valid_rows_best_first(
        r, 5
    ),
    "query_matching_two_rows": lambda r: CONTRACT.test_query_matching_two_rows(r, LEXICAL),
    "exact_title": lambda r: CONTRACT.test_exact_title_ranks_its_row_first(r, 0),
    "mask_forbids_rows": lambda r: CONTRACT.test_mask_forbids_rows(r, LEXICAL),
    "mask_allowing_few_rows": lambda r: CONTRACT.test_mask_allowing_few_rows(r, LEXICAL),
    "mask_allowing_nothing": lambda r: CONTRACT.test_mask_allowing_nothing(r),
    "empty_query": lambda r: CONTRACT.test_empty_query_gives_empty_results(r, ""),
    "unknown_query": lambda r: CONTRACT.test_unknown_query_is_not_an_error(r, LEXICAL),
    "k_larger_than_the_corpus": lambda r: CONTRACT.test_k_larger_than_the_corpus(r, LEXICAL),
}


def failing_checks(retriever: WordOverlap) -> set[str]:
    """The contract checks the retriever fails (an assertion, or any exception it raises)."""
    failed = set()
    for name, check in CHECKS.items():
        try:
            check(retriever)
        except Exception:
            failed.add(name)
    return failed


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (WordOverlap, set()),
        (IgnoresMask, {"mask_forbids_rows", "mask_allowing_few_rows", "mask_allowing_nothing"}),
        # only answers with unequal scores show the reversal: the other checks' answers are
        # one row or rows tied on score
        (WorstFirst, {"at_most_k_valid_rows_best_first", "exact_title"}),
        (
            PadsToK,
            {
                "at_most_k_valid_rows_best_first",
                "query_matching_two_rows",
                "exact_title",
                "mask_forbids_rows",
                "mask_allowing_few_rows",
                "mask_allowing_nothing",
                "empty_query",
                "unknown_query",
                "k_larger_than_the_corpus",
            },
        ),
        (RefusesBlankQueries, {"empty_query"}),
    ],
)
def test_broken_retrievers_fail_the_checks_of_what_they_break(
    broken: type[WordOverlap], expected: set[str]
) -> None:
    assert failing_checks(broken(CORPUS.copy())) == expected
