"""Compiled MaxScore top-k for parsed queries: plain, typo, prefix, split/join (numba, optional).

When numba is installed (`pip install numba==0.68.1`), `maxscore_top_k` runs document at a
time over the row-sorted postings of the main segment (Turtle & Flood's MaxScore). Each
posting list is one term of an alternative of a query group: a plain word is a group of one
list, a typo-corrected or prefix-expanded word a group of its weighted variants, of which a
row scores the best (so an exact match keeps scoring above its weaker variants), and a
split form or phrase synonym an alternative of several lists, summed. The lists are
ordered by their largest weighted score; the lowest lists whose maxima together (per group
the largest sum over one alternative, summed over groups) cannot reach the current k-th
best score (`theta`) are
*non-essential*: rows are taken only from the other lists, and a non-essential list is only
searched (binary search forward) for a row that can still reach theta. Rows are visited in
increasing order, so a row that ties the k-th best never displaces it (ties by row, as the
exhaustive path). Bounds are compared in float64 with a margin; the score of a row that
enters the top k is the float32 sum of its groups' best weighted scores in query order, the
exhaustive path's arithmetic, so scores are bit-identical.

Without numba `AVAILABLE` is False and `search.topk` uses its numpy paths. numba itself is
imported on the kernel's first call (about 0.5 s), not with this module: a process that never
runs the kernel (`shelfwise search`, which scores through `SearchService`) does not pay it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np

__all__ = ["AVAILABLE", "maxscore_top_k"]

AVAILABLE = importlib.util.find_spec("numba") is not None
"""Whether numba is installed (the kernel can run); tests and benchmarks may switch it off."""


def _kernel(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    maxima: np.ndarray,
    terms: np.ndarray,
    weights: np.ndarray,
    group: np.ndarray,
    n_groups: int,
    alt: np.ndarray,
    need: np.ndarray,
    single: np.ndarray,
    k: int,
    stale: np.ndarray,
    mask: np.ndarray,
    min_match: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    m = terms.size
    ub = np.zeros(m, np.float64)
    start = np.zeros(m, np.int64)
    end = np.zeros(m, np.int64)
    for i in range(m):
        t = terms[i]
        start[i] = indptr[t]
        end[i] = indptr[t + 1]
        ub[i] = float(maxima[t]) * weights[i]
    order = np.argsort(ub)  # lists by their maximum, lowest first
    # cum[j]: the most that lists order[0..j] can add to a row: per group, the largest
    # sum of maxima of one alternative's lists there (a group scores its best
    # alternative), summed over groups
    cum = np.zeros(m, np.float64)
    top = np.zeros(n_groups, np.float64)
    alt_ub = np.zeros(need.size, np.float64)
    run = 0.0
    for j in range(m):
        i = order[j]
        g = group[i]
        alt_ub[alt[i]] += ub[i]
        if alt_ub[alt[i]] > top[g]:
            run += alt_ub[alt[i]] - top[g]
            top[g] = alt_ub[alt[i]]
        cum[j] = run
    pos = start.copy()
    vals = np.zeros(m, np.float32)
    have = np.zeros(m, np.bool_)
    heap_s = np.zeros(k, np.float32)
    heap_r = np.zeros(k, np.int64)
    size = 0
    theta = -1.0
    n_non = 0  # order[0..n_non-1] are non-essential
    n_stale = stale.size
    n_mask = mask.size
    while n_non < m:
        # the next row of the essential lists
        d = -1
        for j in range(n_non, m):
            i = order[j]
            if pos[i] < end[i]:
                r = indices[pos[i]]
                if d < 0 or r < d:
                    d = r
        if d < 0:
            break
        for i in range(m):
            have[i] = False
        bound = 0.0
        for j in range(n_non, m):
            i = order[j]
            if pos[i] < end[i] and indices[pos[i]] == d:
                vals[i] = data[pos[i]]
                have[i] = True
                bound += vals[i] * weights[i]
                pos[i] += 1
        if (n_stale and stale[d]) or (n_mask and not mask[d]):
            continue
        margin = 1e-5 * theta + 1e-9
        ok = True
        for j in range(n_non - 1, -1, -1):
            if size == k and bound + cum[j] < theta - margin:
                ok = False
                break
            i = order[j]
            # gallop forward to the first row >= d
            lo = pos[i]
            hi = end[i]
            step = 1
            while lo + step < hi and indices[lo + step] < d:
                lo += step
                step *= 2
            top = min(lo + step, hi)
            while lo < top:
                mid = (lo + top) // 2
                if indices[mid] < d:
                    lo = mid + 1
                else:
                    top = mid
            pos[i] = lo
            if lo < hi and indices[lo] == d:
                vals[i] = data[lo]
                have[i] = True
                bound += vals[i] * weights[i]
                pos[i] = lo + 1
        if not ok or (size == k and bound < theta - margin):
            continue
        # the exhaustive arithmetic, in query order: a group of one alternative adds its
        # terms to the row's score one by one; otherwise each alternative sums its terms
        # from 0 and the group adds its best alternative. A group is matched by any term of
        # a lone alternative, or by an alternative holding as many of its lists as it has
        # distinct terms
        matched = 0
        score = np.float32(0.0)
        i = 0
        for g in range(n_groups):
            held_g = False
            if single[g]:
                while i < m and group[i] == g:
                    if have[i]:
                        held_g = True
                        v = vals[i] if weights[i] == 1.0 else np.float32(vals[i] * weights[i])
                        score = np.float32(score + v)
                    i += 1
            else:
                best_g = np.float32(0.0)
                while i < m and group[i] == g:
                    a = alt[i]
                    s = np.float32(0.0)
                    n_have = 0
                    while i < m and alt[i] == a:
                        if have[i]:
                            n_have += 1
                            v = vals[i] if weights[i] == 1.0 else np.float32(vals[i] * weights[i])
                            s = np.float32(s + v)
                        i += 1
                    if n_have >= need[a]:
                        held_g = True
                    if s > best_g:
                        best_g = s
                score = np.float32(score + best_g)
            if held_g:
                matched += 1
        if matched < min_match or score <= 0:
            continue
        if size < k:
            # push, sift up (the root is the worst: lowest score, then highest row)
            c = size
            heap_s[c] = score
            heap_r[c] = d
            size += 1
            while c > 0:
                par = (c - 1) // 2
                if heap_s[c] < heap_s[par] or (
                    heap_s[c] == heap_s[par] and heap_r[c] > heap_r[par]
                ):
                    heap_s[c], heap_s[par] = heap_s[par], heap_s[c]
                    heap_r[c], heap_r[par] = heap_r[par], heap_r[c]
                    c = par
                else:
                    break
        elif score > heap_s[0]:
            heap_s[0] = score
            heap_r[0] = d
            c = 0
            while True:
                a = 2 * c + 1
                b = a + 1
                w = c
                if a < size and (
                    heap_s[a] < heap_s[w] or (heap_s[a] == heap_s[w] and heap_r[a] > heap_r[w])
                ):
                    w = a
                if b < size and (
                    heap_s[b] < heap_s[w] or (heap_s[b] == heap_s[w] and heap_r[b] > heap_r[w])
                ):
                    w = b
                if w == c:
                    break
                heap_s[c], heap_s[w] = heap_s[w], heap_s[c]
                heap_r[c], heap_r[w] = heap_r[w], heap_r[c]
                c = w
        else:
            continue
        if size == k:
            theta = heap_s[0]
            margin = 1e-5 * theta + 1e-9
            while n_non < m and cum[n_non] < theta - margin:
                n_non += 1
    # best first, ties by row (insertion sort: k is small)
    out_s = heap_s[:size].copy()
    out_r = heap_r[:size].copy()
    for a in range(1, size):
        sa = out_s[a]
        ra = out_r[a]
        b = a - 1
        while b >= 0 and (out_s[b] < sa or (out_s[b] == sa and out_r[b] > ra)):
            out_s[b + 1] = out_s[b]
            out_r[b + 1] = out_r[b]
            b -= 1
        out_s[b + 1] = sa
        out_r[b + 1] = ra
    return out_r, out_s


_compiled: Any = None


def maxscore_top_k(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    maxima: np.ndarray,
    terms: np.ndarray,
    weights: np.ndarray,
    k: int,
    stale: np.ndarray | None,
    mask: np.ndarray | None,
    min_match: int,
    group: np.ndarray | None = None,
    alt: np.ndarray | None = None,
    need: np.ndarray | None = None,
    single: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores), best first and ties by row, of the k best rows of a row-sorted CSC
    score matrix (with each column's largest score in `maxima`) for `terms` with
    `weights`: term i belongs to alternative `alt[i]` of query group `group[i]` (default:
    each term its own alternative, one group per term; groups and alternatives numbered
    from 0 in query order, the terms of an alternative and the alternatives of a group next
    to each other). An alternative sums its terms, a group scores its best alternative and
    a row scores its groups summed in order, a group of one alternative (`single[g]`,
    default: its lists share one alternative) adding its terms one by one, with the
    arithmetic of `BM25Index.score_and_match`. A row matches a lone alternative's group by
    any of its terms, another group by an alternative holding `need[a]` of its lists (its
    number of distinct terms; default 1); `stale` rows are skipped, only `mask` rows count,
    and a row must match `min_match` groups."""
    global _compiled
    if _compiled is None:
        try:
            numba: Any = importlib.import_module("numba")
        except ImportError as exc:
            raise RuntimeError("numba is not installed: pip install numba==0.68.1") from exc
        _compiled = numba.njit(cache=True, nogil=True)(_kernel)
    empty = np.zeros(0, np.bool_)
    if group is None:
        group = np.arange(terms.size, dtype=np.int64)
    group = np.asarray(group, dtype=np.int64)
    if alt is None:
        alt = np.arange(terms.size, dtype=np.int64)
    alt = np.asarray(alt, dtype=np.int64)
    if need is None:
        need = np.ones(int(alt.max()) + 1 if alt.size else 0, dtype=np.int64)
    need = np.asarray(need, dtype=np.int64)
    if single is None:
        # each group one alternative, unless some of its lists belong to different ones
        n = int(group.max()) + 1 if group.size else 0
        alt_group = np.full(need.size, -1, dtype=np.int64)
        alt_group[alt] = group
        single = np.bincount(alt_group[alt_group >= 0], minlength=n) <= 1
    single = np.asarray(single, dtype=np.bool_)
    n_groups = int(single.size)
    rows, scores = _compiled(
        indptr,
        indices,
        data,
        maxima,
        terms,
        weights,
        group,
        n_groups,
        alt,
        need,
        single,
        int(k),
        empty if stale is None else stale,
        empty if mask is None else mask,
        int(min_match),
    )
    return rows, scores
