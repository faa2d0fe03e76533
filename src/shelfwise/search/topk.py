"""Exact top-k over a `BM25Index` without scoring every match: impact-ordered postings and
a threshold bound (Fagin's threshold algorithm, vectorised with numpy).

The exhaustive path (`BM25Index.score_and_match`) adds every posting of every query term
into dense arrays as long as the catalogue, so a query costs O(catalogue + postings) however
few results are wanted. Here each term's postings are also kept sorted by score, best first
(`ImpactPostings`, built once per merge of the main segment). A query then reads the lists
in rounds, from the top:

1. every row in the round's slice of any list that was not seen before is scored *exactly*
   by random access (a binary search of the row in each query term's row-sorted postings,
   main and delta segment), with the same float32 operations, in the same order, as
   `score_and_match`, so scores are bit-identical;
2. an unseen row can score at most `T = sum over groups of max over alternatives of
   sum(weight * next score in the term's list)`; when the k-th best score found is above
   `T` (strictly, so ties with the k-th are never lost), no unseen row can enter the top k
   and the search stops. It also stops when fewer than `min_match` groups have unread
   postings: an unseen row could not match enough groups;
3. rounds read geometrically more (x4) of each list, so a query costs O(log) rounds.

A one-word query reads about k postings. Rows of the delta segment (recent upserts) are all
scored in the first round (the delta is small), and tombstoned rows of the main segment are
skipped. `mask` (filters, liveness) is applied to scored rows; when it admits fewer rows than
the query's postings, the admitted rows are scored directly instead.

The result is exactly `score_and_match`'s top k among rows with a positive score that
match at least `min_match` groups (and `mask`), ties broken by row; the tests check it on
random queries. What needs the whole match set (a total count, facet counts, sorting by
price) still takes the exhaustive path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from shelfwise.types import Results

if TYPE_CHECKING:
    from shelfwise.search.bm25 import BM25Index, Group

__all__ = ["ImpactPostings", "pruned_top_k"]

_FIRST = 32
"""Postings read from each list in the first round (at least 2k)."""
_GROWTH = 4


class ImpactPostings:
    """Each column of a CSC score matrix with its entries sorted by score, best first (ties
    by row), sharing the matrix's `indptr`."""

    def __init__(self, scores: sp.csc_matrix) -> None:
        if not scores.has_sorted_indices:
            scores.sort_indices()
        indptr = scores.indptr.astype(np.int64)
        n_terms = scores.shape[1]
        col = np.repeat(np.arange(n_terms, dtype=np.uint64), np.diff(indptr))
        # positive float32 scores sort like their bit patterns; invert them for best first,
        # and a stable sort keeps rows ascending among equal scores
        bits = np.asarray(scores.data, dtype=np.float32).view(np.uint32).astype(np.uint64)
        key = (col << np.uint64(32)) | (np.uint64(0xFFFFFFFF) - bits)
        order = np.argsort(key, kind="stable")
        del key, col, bits
        self.indptr = indptr
        self.rows = scores.indices[order].astype(np.int32)
        self.vals = np.asarray(scores.data[order], dtype=np.float32)
        del order
        self.n_rows = int(scores.shape[0])
        # (term, row) as one sorted int64 key per posting of the row-sorted matrix, so that
        # the scores of many rows for many terms are one binary search (`lookup`)
        self.keys = np.repeat(np.arange(n_terms, dtype=np.int64) * self.n_rows, np.diff(indptr))
        self.keys += scores.indices
        self.data = np.asarray(scores.data, dtype=np.float32)

    @property
    def nbytes(self) -> int:
        """Memory held (bytes)."""
        parts = (self.indptr, self.rows, self.vals, self.keys, self.data)
        return int(sum(a.nbytes for a in parts))

    def lookup(self, terms: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores (len(terms), len(rows)) of main-segment `rows` (< n_rows) for `terms`
        (0 where a row does not hold a term)."""
        want = (terms.astype(np.int64)[:, None] * self.n_rows + rows[None, :]).ravel()
        pos = np.searchsorted(self.keys, want)
        pos[pos >= self.keys.size] = max(self.keys.size - 1, 0)
        out = np.zeros(want.size, dtype=np.float32)
        if self.keys.size:
            hit = self.keys[pos] == want
            out[hit] = self.data[pos[hit]]
        return out.reshape(terms.size, rows.size)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (cheaper than np.unique on the few hundred rows of a round)."""
    if values.size < 2:
        return values
    v = np.sort(values)
    keep = np.empty(v.size, dtype=bool)
    keep[0] = True
    np.not_equal(v[1:], v[:-1], out=keep[1:])
    return v[keep]


def _contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of `values` occur in `sorted_values` (a sorted array)."""
    pos = np.searchsorted(sorted_values, values)
    pos[pos >= sorted_values.size] = sorted_values.size - 1
    return np.asarray(sorted_values[pos] == values)


def _lookup(matrix: sp.csc_matrix | None, term: int, rows: np.ndarray) -> np.ndarray:
    """Scores of `rows` (sorted) for `term` in a row-sorted CSC matrix (0 where absent)."""
    out = np.zeros(rows.size, dtype=np.float32)
    if matrix is None or term >= matrix.shape[1]:
        return out
    lo, hi = int(matrix.indptr[term]), int(matrix.indptr[term + 1])
    if hi == lo:
        return out
    col = matrix.indices[lo:hi]
    pos = np.searchsorted(col, rows)
    pos[pos >= col.size] = col.size - 1
    hit = col[pos] == rows
    out[hit] = matrix.data[lo:hi][pos[hit]]
    return out


def score_rows(
    index: BM25Index, groups: Sequence[Group], rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(score, number of groups matched) of `rows` (sorted, unique), computed as
    `BM25Index.score_and_match` computes them, restricted to those rows."""
    impacts = index.impacts()
    terms = sorted({t for g in groups for alt in g for t, _ in alt})
    at = {t: i for i, t in enumerate(terms)}
    term_arr = np.asarray(terms, dtype=np.int64)
    in_main = rows < index._n_main
    if in_main.all():
        values = impacts.lookup(term_arr, rows)
    else:
        values = np.zeros((term_arr.size, rows.size), dtype=np.float32)
        values[:, in_main] = impacts.lookup(term_arr, rows[in_main])
    if index._stale_any:
        gone = np.zeros(rows.size, dtype=bool)
        gone[in_main] = index._stale[rows[in_main]]
        values[:, gone] = 0.0
    delta = index._delta_scores
    if delta is not None:
        for i, t in enumerate(terms):
            values[i] += _lookup(delta, t, rows)
    present = values != 0.0

    def value(t: int) -> np.ndarray:
        return values[at[t]]

    n = rows.size
    out = np.zeros(n, dtype=np.float32)
    count = np.zeros(n, dtype=np.int32)
    for group in groups:
        hit = np.zeros(n, dtype=bool)
        if len(group) == 1:
            for t, w in group[0]:
                vals = value(t)
                out += vals if w == 1.0 else vals * np.float32(w)
                hit |= present[at[t]]
        else:
            best = np.zeros(n, dtype=np.float32)
            for alt in group:
                if len(alt) == 1:
                    t, w = alt[0]
                    vals = value(t)
                    np.maximum(best, vals * np.float32(w), out=best)
                    hit |= present[at[t]]
                else:
                    acc = np.zeros(n, dtype=np.float32)
                    have = np.zeros(n, dtype=np.int32)
                    for t, w in alt:
                        acc += value(t) * np.float32(w)
                        have += present[at[t]]
                    np.maximum(best, acc, out=best)
                    hit |= have >= len({t for t, _ in alt})
            out += best
        count += hit
    return out, count


def _bound(groups: Sequence[Group], front: dict[int, float]) -> float:
    """The most an unseen row can score: per group the best alternative's sum of weighted
    next scores."""
    total = 0.0
    for group in groups:
        best = 0.0
        for alt in group:
            s = 0.0
            for t, w in alt:
                s += w * front.get(t, 0.0)
            best = max(best, s)
        total += best
    return total


def pruned_top_k(
    index: BM25Index,
    groups: Sequence[Group],
    k: int,
    mask: np.ndarray | None = None,
    min_match: int = 1,
) -> Results:
    """The k best rows for `groups` (see the module doc): exactly the exhaustive top k
    among rows with a positive score, at least `min_match` matched groups and `mask`."""
    from shelfwise.search.bm25 import _sparse_top_k

    empty = Results(np.empty(0, np.int64), np.empty(0, np.float32))
    if k <= 0 or not groups or min_match > len(groups):
        return empty
    impacts = index.impacts()
    terms = sorted({t for g in groups for alt in g for t, _ in alt if 0 <= t < index.n_terms})
    if not terms:
        return empty
    lo = {t: int(impacts.indptr[t]) if t < impacts.indptr.size - 1 else 0 for t in terms}
    hi = {t: int(impacts.indptr[t + 1]) if t < impacts.indptr.size - 1 else 0 for t in terms}
    n_postings = sum(hi[t] - lo[t] for t in terms)

    def finish(rows: np.ndarray, scores: np.ndarray, count: np.ndarray) -> Results:
        ok = (scores > 0) & (count >= min_match)
        if mask is not None:
            ok &= mask[rows]
        return _sparse_top_k(rows[ok], scores[ok], k)

    if mask is not None:
        allowed = np.flatnonzero(mask)
        if allowed.size <= n_postings:
            scores, count = score_rows(index, groups, allowed)
            return finish(allowed, scores, count)

    got_rows: list[np.ndarray] = []
    got_scores: list[np.ndarray] = []

    def take(cand: np.ndarray) -> None:
        scores, count = score_rows(index, groups, cand)
        ok = (scores > 0) & (count >= min_match)
        if mask is not None:
            ok &= mask[cand]
        if ok.any():
            got_rows.append(cand[ok])
            got_scores.append(scores[ok])

    # the delta's rows (recent upserts) are scored up front; the lists hold the main segment
    seen = np.empty(0, dtype=np.int64)
    delta = index._delta_scores
    if delta is not None:
        parts = [
            delta.indices[delta.indptr[t] : delta.indptr[t + 1]]
            for t in terms
            if t < delta.shape[1]
        ]
        if parts:
            seen = _sorted_unique(np.concatenate(parts).astype(np.int64))
            if seen.size:
                take(seen)
    # a tombstoned main row is either in the delta (scored above) or deleted
    stale = index._stale if index._stale_any else None
    group_terms = [{t for alt in g for t, _ in alt} for g in groups]
    depth = max(_FIRST, 2 * k)
    read = 0
    while True:
        chunk = [impacts.rows[lo[t] + read : min(lo[t] + depth, hi[t])] for t in terms]
        read = depth
        cand = _sorted_unique(np.concatenate(chunk).astype(np.int64))
        if seen.size and cand.size:
            cand = cand[~_contains(seen, cand)]
        if stale is not None and cand.size:
            cand = cand[~stale[cand]]
        if cand.size:
            take(cand)
            seen = np.sort(np.concatenate([seen, cand]))
        front = {t: float(impacts.vals[lo[t] + read]) for t in terms if lo[t] + read < hi[t]}
        if not front or sum(bool(gt & front.keys()) for gt in group_terms) < min_match:
            break  # no unseen row can match enough groups
        if sum(r.size for r in got_rows) >= k:
            found = np.concatenate(got_scores)
            theta = float(np.partition(found, found.size - k)[found.size - k])
            # float32 sums may round above the exact bound: keep a margin
            if theta > _bound(groups, front) * (1.0 + 1e-5) + 1e-9:
                break
            got_rows = [np.concatenate(got_rows)]
            got_scores = [found]
        depth *= _GROWTH
    if not got_rows:
        return empty
    rows = np.concatenate(got_rows)
    scores_all = np.concatenate(got_scores)
    order = np.argsort(rows, kind="stable")
    return _sparse_top_k(rows[order], scores_all[order], k)
