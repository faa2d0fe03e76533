"""Exact top-k over a `BM25Index` without scoring every match into catalogue-long arrays.

The exhaustive path (`BM25Index.score_and_match`) adds every posting of every query term
into dense arrays as long as the catalogue, so a query costs O(catalogue + postings) however
few results are wanted. `pruned_top_k` picks, per query, the cheapest exact plan:

1. **One term** (no pending updates, no mask): the term's postings sorted by score, best
   first (`ImpactPostings`, built once per merge of the main segment), hold the answer in
   their first k entries (ties are in row order there too): O(k).
2. **A query whose alternatives are single terms** (plain words as `retrieve` sends them,
   and typo-corrected or prefix-expanded words, each a group of weighted variants) when
   numba is installed: the compiled MaxScore kernel (`search.topk_kernel`), document at a
   time over the row-sorted postings, skipping rows that cannot reach the k-th best score;
   rows of the delta segment are scored exactly beside it and merged.
3. **A one-term query with updates or a mask**: the threshold algorithm (Fagin) over the
   impact-ordered lists, in rounds that read geometrically deeper heads of every list:
   each new row is scored exactly by random access (one binary search of (term, row) keys,
   `score_rows`); it stops when no unread row can beat the k-th best score found
   (`_bound`, compared strictly so that ties are never lost), or reads the short prefixes
   that can still hold a top-k row (`_prefix_limits`) and stops.
4. **Otherwise** (a multi-term alternative: split/join forms, phrase synonyms; or any
   alternatives without the kernel):
   dense exhaustive scoring (`BM25Index.top_k(..., exhaustive=True)`). The threshold rounds
   are exact for these too (the tests run them), but on Beauty-like catalogues the top rows
   of a multi-term query lie deep in every list, and the rounds measured slower than dense
   scoring at 100k and 1M products (docs/decisions/2026-12-02-lexical-engine.md).

Every plan returns exactly the exhaustive top k among rows with a positive score that match
at least `min_match` groups (and `mask`): the same rows, the same float32 scores (computed
with the same operations in the same order), ties broken by row. A `mask` that admits fewer
rows than the query's postings is served by scoring the admitted rows directly. What needs
the whole match set (a total count, facet counts, sorting by price) keeps the exhaustive
path (`SearchService`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from shelfwise.search import topk_kernel
from shelfwise.types import Results

if TYPE_CHECKING:
    from shelfwise.search.bm25 import BM25Index, Group

__all__ = ["ImpactPostings", "pruned_top_k"]

_FIRST = 32
"""Postings read from the head of each list in the first round (at least 4k)."""
_GROWTH = 4
_PREFIX_SHARE = 4.0
"""Read the prefixes that can still hold a top-k row when they are at most this many times
what the heads read so far."""
_EXHAUSTIVE_SHARE = 0.3
"""Above this share of the query's postings still to read, dense scoring is cheaper."""
_MAX_DEPTH = 128
"""Deepest head (postings per list) read before dense scoring takes over."""
_HEAD_MAX_TERMS = 1
"""Queries that the kernel does not take with more distinct terms skip the threshold rounds:
on Beauty-like catalogues their top rows lie deep in every list, so the rounds cost more
than dense scoring (measured at 100k and 1M, docs/decisions/2026-12-02-lexical-engine.md)."""


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
        self.data = np.asarray(scores.data, dtype=np.float32)
        self.csc_rows = np.asarray(scores.indices, dtype=np.int32)
        """The row-sorted postings (the matrix's own arrays, not copies)."""
        self.n_terms = n_terms
        heads = np.minimum(indptr[:-1], max(self.vals.size - 1, 0))
        self.maxima = np.where(np.diff(indptr) > 0, self.vals[heads] if self.vals.size else 0, 0)
        self.maxima = self.maxima.astype(np.float32)
        """Each term's largest score."""

    @property
    def nbytes(self) -> int:
        """Memory held beyond the score matrix itself (bytes)."""
        parts = (self.indptr, self.rows, self.vals, self.maxima)
        return int(sum(a.nbytes for a in parts))

    def lookup(self, terms: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores (len(terms), len(rows)) of main-segment `rows` (sorted, < n_rows) for
        `terms` (0 where a row does not hold a term): a binary search per term."""
        out = np.zeros((terms.size, rows.size), dtype=np.float32)
        for i, t in enumerate(terms.tolist()):
            if t >= self.n_terms:
                continue  # a term added since the last merge: only the delta holds it
            lo, hi = int(self.indptr[t]), int(self.indptr[t + 1])
            if hi == lo:
                continue
            col = self.csc_rows[lo:hi]
            pos = np.searchsorted(col, rows)
            pos[pos >= col.size] = col.size - 1
            hit = col[pos] == rows
            out[i, hit] = self.data[lo:hi][pos[hit]]
        return out


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (cheaper than np.unique on the few hundred rows of a round)."""
    if values.size < 2:
        return values
    v = np.sort(values)
    keep = np.empty(v.size, dtype=bool)
    keep[0] = True
    np.not_equal(v[1:], v[:-1], out=keep[1:])
    return v[keep]


def find_sorted(sorted_values: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pos, found) for each of `values`: its place in `sorted_values` (a sorted array; a
    binary search each, clipped to the last place) and whether it occurs there (none do in
    an empty array)."""
    if sorted_values.size == 0:
        return np.zeros(np.shape(values), dtype=np.int64), np.zeros(np.shape(values), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_values, values), sorted_values.size - 1)
    return pos, np.asarray(sorted_values[pos] == values)


def _contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of `values` occur in `sorted_values` (a sorted array)."""
    return find_sorted(sorted_values, values)[1]


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


def _prefix_limits(
    groups: Sequence[Group],
    impacts: ImpactPostings,
    lo: dict[int, int],
    hi: dict[int, int],
    theta: float,
) -> dict[int, int]:
    """Per term, how many of its best postings can hold a row scoring at least `theta`: a
    row's score is at most w * (its score for t) plus the other terms of t's alternative at
    their maxima plus the other groups at their maxima, so a row below the limit in t's
    list cannot reach theta through t (and a row of the top k reaches it through every
    term of its best alternative)."""
    top = {t: float(impacts.vals[lo[t]]) if hi[t] > lo[t] else 0.0 for t in lo}
    group_ub = [max(sum(w * top.get(t, 0.0) for t, w in alt) for alt in g) for g in groups]
    total = sum(group_ub)
    need: dict[int, float] = {}
    for g, group in enumerate(groups):
        others = total - group_ub[g]
        for alt in group:
            alt_ub = sum(w * top.get(t, 0.0) for t, w in alt)
            for t, w in alt:
                if t not in lo or w <= 0:
                    continue
                rest = others + alt_ub - w * top.get(t, 0.0)
                tau = (theta - rest) / w
                need[t] = min(need.get(t, tau), tau)
    out: dict[int, int] = {}
    for t, tau in need.items():
        n = hi[t] - lo[t]
        if tau > 0 and n:
            # vals are sorted best first: count those >= tau
            n = int(np.searchsorted(-impacts.vals[lo[t] : hi[t]], -tau, side="right"))
        out[t] = n
    return out


def _compiled_top_k(
    index: BM25Index,
    groups: Sequence[Group],
    k: int,
    mask: np.ndarray | None,
    min_match: int,
) -> Results:
    """A parsed query by the compiled MaxScore kernel over the main segment, merged with
    the delta's rows scored exactly."""
    impacts = index.impacts()
    n_main_terms = impacts.n_terms
    terms: list[int] = []
    weights: list[float] = []
    group_of: list[int] = []
    alt_of: list[int] = []
    need: list[int] = []
    phrase = False
    for g, group in enumerate(groups):
        for alt in group:
            a = len(need)
            need.append(len({t for t, _ in alt}) if len(alt) > 1 else 1)
            phrase = phrase or len(alt) > 1
            for t, w in alt:
                if (
                    0 <= t < n_main_terms
                ):  # a term added since the last merge: only the delta has it
                    terms.append(t)
                    weights.append(w)
                    group_of.append(g)
                    alt_of.append(a)
    # a partly matched phrase alternative scores without matching its group, so the
    # exhaustive path then asks for one matched group (`BM25Index.top_k`)
    need_groups = max(min_match, 1) if phrase else min_match
    rows, scores = topk_kernel.maxscore_top_k(
        impacts.indptr,
        impacts.csc_rows,
        impacts.data,
        impacts.maxima,
        np.asarray(terms, np.int64),
        np.asarray(weights, np.float32),
        k,
        index._stale if index._stale_any else None,
        mask,
        need_groups,
        np.asarray(group_of, np.int64),
        np.asarray(alt_of, np.int64),
        np.asarray(need, np.int64),
        np.asarray([len(g) == 1 for g in groups], np.bool_),
    )
    delta = index._delta_scores
    if delta is None:
        return Results(rows, scores)
    parts = [
        delta.indices[delta.indptr[t] : delta.indptr[t + 1]]
        for g in groups
        for alt in g
        for t, _ in alt
        if t < delta.shape[1]
    ]
    if not parts:
        return Results(rows, scores)
    extra = _sorted_unique(np.concatenate(parts).astype(np.int64))
    d_scores, count = score_rows(index, groups, extra)
    ok = (d_scores > 0) & (count >= need_groups)
    if mask is not None:
        ok &= mask[extra]
    return top_rows(np.concatenate([rows, extra[ok]]), np.concatenate([scores, d_scores[ok]]), k)


def _head(impacts: ImpactPostings, t: int, w: float, k: int) -> Results:
    """The k best rows of one term at weight `w` (no pending updates, no mask): the head of
    its impact list. Weighting keeps the order (a float32 product is monotone in the
    score) but may round neighbouring scores into a tie, so the head is extended over
    every posting that ties the k-th weighted score and re-sorted, ties by row."""
    lo, hi = int(impacts.indptr[t]), int(impacts.indptr[t + 1])
    take = min(k, hi - lo)
    if take <= 0 or w <= 0:
        return Results(np.empty(0, np.int64), np.empty(0, np.float32))
    if w == 1.0:
        head = slice(lo, lo + take)
        return Results(impacts.rows[head].astype(np.int64), impacts.vals[head].copy())
    vals = impacts.vals[lo:hi]
    fw = np.float32(w)
    kth = np.float32(vals[take - 1] * fw)
    end, step = take, 32
    while end < vals.size:
        more = int(np.count_nonzero(vals[end : end + step] * fw >= kth))
        end += more
        if more < step:
            break
        step *= 4
    scores = vals[:end] * fw
    rows = impacts.rows[lo : lo + end]
    order = np.lexsort((rows, -scores))[:take]
    keep = order[scores[order] > 0]
    return Results(rows[keep].astype(np.int64), scores[keep].astype(np.float32))


def top_rows(rows: np.ndarray, vals: np.ndarray, k: int) -> Results:
    """The k best of (row, score) pairs in any order, best first, ties by row."""
    if rows.size > k:
        kth = np.partition(vals, rows.size - k)[rows.size - k]
        part = vals >= kth
        rows, vals = rows[part], vals[part]
    order = np.lexsort((rows, -vals))[:k]
    return Results(rows[order].astype(np.int64), vals[order].astype(np.float32))


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
    plain = index._delta_scores is None and not index._stale_any and mask is None
    single = len(groups) == 1 and len(groups[0]) == 1 and len(groups[0][0]) == 1
    if plain and single and 0 <= groups[0][0][0][0] < impacts.n_terms:
        # one term: its impact list's head is the answer (ties are in row order there too)
        return _head(impacts, *groups[0][0][0], k)
    if mask is None and topk_kernel.AVAILABLE:
        return _compiled_top_k(index, groups, k, mask, min_match)
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

    if topk_kernel.AVAILABLE:
        return _compiled_top_k(index, groups, k, mask, min_match)
    if len(terms) > _HEAD_MAX_TERMS:
        return index.top_k(groups, k, mask, min_match, exhaustive=True)

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

    def read(ranges: dict[int, tuple[int, int]]) -> None:
        nonlocal seen
        chunk = [impacts.rows[a:b] for a, b in ranges.values() if b > a]
        if not chunk:
            return
        cand = _sorted_unique(np.concatenate(chunk).astype(np.int64))
        if seen.size and cand.size:
            cand = cand[~_contains(seen, cand)]
        if stale is not None and cand.size:
            cand = cand[~stale[cand]]
        if cand.size:
            take(cand)
            seen = np.sort(np.concatenate([seen, cand]))

    # rounds read geometrically deeper heads of every list, which raises theta (the k-th
    # best score found), until (a) no unread row can beat theta (threshold algorithm) or
    # (b) the rows that still could are few: a row of the top k scores at least theta, so
    # in every list that holds it its score is at least theta minus what the rest of the
    # query could add at most (`_prefix_limits`); those prefixes are read and the search
    # ends. Dense scoring takes over when what is left is a large share of the postings.
    depth, done_to = max(_FIRST, 4 * k), 0
    while True:
        read({t: (lo[t] + done_to, min(lo[t] + depth, hi[t])) for t in terms})
        done_to = depth
        front = {t: float(impacts.vals[lo[t] + depth]) for t in terms if lo[t] + depth < hi[t]}
        if not front or sum(bool(gt & front.keys()) for gt in group_terms) < min_match:
            break  # every list is read, or no unread row can match enough groups
        n_got = sum(r.size for r in got_rows)
        theta = 0.0
        if n_got >= k:
            found = np.concatenate(got_scores)
            theta = float(np.partition(found, found.size - k)[found.size - k])
            got_rows, got_scores = [np.concatenate(got_rows)], [found]
        # float32 sums may round above an exact bound: keep a margin
        margin = 1e-5 * theta + 1e-9
        if n_got >= k and theta > _bound(groups, front) + margin:
            break
        limits = _prefix_limits(groups, impacts, lo, hi, theta - margin)
        ranges = {t: (lo[t] + depth, lo[t] + n) for t, n in limits.items() if n > depth}
        left = sum(b - a for a, b in ranges.values())
        if left <= _PREFIX_SHARE * depth * len(terms):
            read(ranges)
            break
        if depth >= _MAX_DEPTH or left > _EXHAUSTIVE_SHARE * n_postings:
            return index.top_k(groups, k, mask, min_match, exhaustive=True)
        depth *= _GROWTH
    if not got_rows:
        return empty
    rows = np.concatenate(got_rows)
    scores_all = np.concatenate(got_scores)
    order = np.argsort(rows, kind="stable")
    return _sparse_top_k(rows[order], scores_all[order], k)
