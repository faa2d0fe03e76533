"""Compiled MaxScore top-k for plain, typo and prefix queries (numba, optional).

When numba is installed (`pip install numba==0.68.1`), `maxscore_top_k` runs document at a
time over the row-sorted postings of the main segment (Turtle & Flood's MaxScore). Each
posting list is one alternative of a query group: a plain word is a group of one list, a
typo-corrected or prefix-expanded word a group of its weighted variants, of which a row
scores the best (so an exact match keeps scoring above its weaker variants). The lists are
ordered by their largest weighted score; the lowest lists whose maxima together (per group
the largest, summed over groups) cannot reach the current k-th best score (`theta`) are
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
    # maximum among its lists there (a group scores its best list), summed
    cum = np.zeros(m, np.float64)
    top = np.zeros(n_groups, np.float64)
    run = 0.0
    for j in range(m):
        g = group[order[j]]
        if ub[order[j]] > top[g]:
            run += ub[order[j]] - top[g]
            top[g] = ub[order[j]]
        cum[j] = run
    pos = start.copy()
    vals = np.zeros(m, np.float32)
    have = np.zeros(m, np.bool_)
    best = np.zeros(n_groups, np.float32)
    held = np.zeros(n_groups, np.bool_)
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
        for g in range(n_groups):
            best[g] = 0.0
            held[g] = False
        for i in range(m):
            if have[i]:
                g = group[i]
                held[g] = True
                v = vals[i] if weights[i] == 1.0 else np.float32(vals[i] * weights[i])
                if v > best[g]:
                    best[g] = v
        matched = 0
        score = np.float32(0.0)
        for g in range(n_groups):
            if held[g]:
                matched += 1
                score = np.float32(score + best[g])
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
    return heap_r[:size].copy(), heap_s[:size].copy()


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
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores), best first and ties by row, of the k best rows of a row-sorted CSC
    score matrix (with each column's largest score in `maxima`) for `terms` with
    `weights`: term i is an alternative of query group `group[i]` (default: one group per
    term; groups numbered from 0, the terms of a group next to each other), a group scores
    its best alternative and a row scores its groups summed in order (as
    `BM25Index.score_and_match`); `stale` rows are skipped, only `mask` rows count, and a
    row must match `min_match` groups."""
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
    n_groups = int(group.max()) + 1 if group.size else 0
    rows, scores = _compiled(
        indptr,
        indices,
        data,
        maxima,
        terms,
        weights,
        np.asarray(group, dtype=np.int64),
        n_groups,
        int(k),
        empty if stale is None else stale,
        empty if mask is None else mask,
        int(min_match),
    )
    order = np.lexsort((rows, -scores))
    return rows[order].astype(np.int64), scores[order].astype(np.float32)
