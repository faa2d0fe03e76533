"""Hybrid fusion of ranked lists: reciprocal rank fusion and weighted normalised scores.

Fusion only sees `Results` (ids and scores, best first); it does not know how the lists were
made, so BM25, dense retrieval or anything else can be combined.

* Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009):
  `rrf(d) = sum_i w_i / (k + rank_i(d))`, ranks starting at 1, `k = 60` as in the paper.
  A document missing from a list gets nothing from that list.
* Weighted score fusion: every list's scores are normalised (min-max to [0, 1], or z-scores)
  and summed with weights. A document missing from a list counts as that list's minimum
  (0 after min-max, the lowest z-score after z-scoring): it was not good enough to be
  retrieved, so it scores no better than the worst document that was.

Ties are broken by the smaller id, so fusion is deterministic.

`FusedRetriever` wraps retrievers and a fusion as one `search.base.Retriever`, so a fused
retriever can stand wherever a single one does (and passes the same contract,
`shelfwise.testing.RetrieverContract`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from shelfwise.errors import ConfigError
from shelfwise.search.base import Fusion, Retriever
from shelfwise.types import Results

Normalisation = Literal["minmax", "zscore", "max"]
FusionMethod = Literal["score", "rrf"]
"""How `hybrid_fusion` merges a lexical and a dense list."""

__all__ = [
    "RRF_K",
    "FusedRetriever",
    "FusionMethod",
    "RRFFusion",
    "ScoreFusion",
    "hybrid_fusion",
    "normalise_scores",
    "reciprocal_rank_fusion",
    "weighted_score_fusion",
]

RRF_K = 60
"""The rank constant of reciprocal rank fusion (the value of Cormack et al.)."""


def _weights(n: int, weights: Sequence[float] | None) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ConfigError(f"weights: expected {n} weights (one per list), got {len(w)}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ConfigError(f"weights must be finite and >= 0, got {list(weights or [])}")
    return w


def _valid(res: Results) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of a 1-D result list with padding (-1 ids, -inf scores) removed."""
    if res.ids.ndim != 1:
        raise ValueError(f"fusion takes one query's 1-D Results, got shape {res.ids.shape}")
    ids = res.ids.astype(np.int64)
    scores = res.scores.astype(np.float64)
    keep = (ids >= 0) & np.isfinite(scores)
    return ids[keep], scores[keep]


def _rank(ids: np.ndarray, fused: np.ndarray, limit: int | None) -> Results:
    order = np.lexsort((ids, -fused))
    if limit is not None:
        order = order[:limit]
    return Results(ids[order], fused[order].astype(np.float32))


def reciprocal_rank_fusion(
    results: Sequence[Results],
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> Results:
    """Fuse ranked lists by `sum_i w_i / (k + rank_i)`; the best `limit` (all if None)."""
    if k < 1:
        raise ConfigError(f"the RRF rank constant k must be >= 1, got {k}")
    w = _weights(len(results), weights)
    all_ids: list[np.ndarray] = []
    all_vals: list[np.ndarray] = []
    for weight, res in zip(w, results, strict=True):
        ids, _ = _valid(res)
        # a repeated id counts at its best rank only
        ids, first = np.unique(ids, return_index=True)
        all_ids.append(ids)
        all_vals.append(weight / (k + first + 1.0))
    return _sum_and_rank(all_ids, all_vals, limit)


def _sum_and_rank(ids: list[np.ndarray], vals: list[np.ndarray], limit: int | None) -> Results:
    if not ids or sum(a.size for a in ids) == 0:
        return Results(np.empty(0, np.int64), np.empty(0, np.float32))
    cat_ids = np.concatenate(ids)
    uniq, inverse = np.unique(cat_ids, return_inverse=True)
    fused = np.bincount(inverse, weights=np.concatenate(vals), minlength=uniq.size)
    return _rank(uniq, fused, limit)


def normalise_scores(scores: np.ndarray, method: Normalisation = "minmax") -> np.ndarray:
    """Min-max to [0, 1] (all 1 when the scores are equal), z-scores (all 0 when equal) or
    `max`: divided by the largest score (for scores whose natural floor is 0, such as BM25:
    a list's best is 1 and a non-match stays 0; all 0 when no score is positive)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return s
    if method == "max":
        top = float(s.max())
        return np.zeros_like(s) if top <= 1e-12 else s / top
    if method == "minmax":
        lo, hi = float(s.min()), float(s.max())
        return np.ones_like(s) if hi - lo <= 1e-12 else (s - lo) / (hi - lo)
    if method == "zscore":
        sd = float(s.std())
        return np.zeros_like(s) if sd <= 1e-12 else (s - s.mean()) / sd
    raise ConfigError(f"normalisation must be 'minmax', 'zscore' or 'max', got {method!r}")


def weighted_score_fusion(
    results: Sequence[Results],
    weights: Sequence[float] | None = None,
    method: Normalisation = "minmax",
    limit: int | None = None,
) -> Results:
    """Fuse lists by the weighted sum of their normalised scores (see the module docstring)."""
    w = _weights(len(results), weights)
    lists = [_valid(r) for r in results]
    union = np.unique(np.concatenate([ids for ids, _ in lists])) if lists else np.empty(0, np.int64)
    if union.size == 0:
        return Results(np.empty(0, np.int64), np.empty(0, np.float32))
    fused = np.zeros(union.size, dtype=np.float64)
    for weight, (ids, s) in zip(w, lists, strict=True):
        if ids.size == 0:
            continue
        ids, s = _best_per_id(ids, s)  # a repeated id keeps its best score
        norm = normalise_scores(s, method)
        col = np.full(union.size, norm.min(), dtype=np.float64)
        col[np.searchsorted(union, ids)] = norm
        fused += weight * col
    return _rank(union, fused, limit)


def hybrid_fusion(
    lexical: Results,
    dense: Results,
    weight: float = 0.3,
    method: FusionMethod = "score",
    rrf_k: int = RRF_K,
    limit: int | None = None,
) -> Results:
    """A lexical and a dense list fused with the dense side's share `weight` (0..1).

    * `score`: `(1 - weight) * lexical / best lexical + weight * dense'`, where `dense'` is
      the dense score min-max normalised over the dense list. A row missing from the
      lexical list did not match the query's words and gets 0 from it; a row missing from
      the dense list gets the dense list's lowest score (it was not retrieved, so it is no
      better than the worst row that was). Give the dense list every candidate's score
      (the lexical rows' too) for the exact convex combination.
    * `rrf`: `(1 - weight) / (rrf_k + lexical rank) + weight / (rrf_k + dense rank)`
      (weighted reciprocal rank fusion; `weight=0.5` orders as plain RRF).

    Ties go to the smaller id; the best `limit` rows (all if None)."""
    if not 0.0 <= weight <= 1.0 or not np.isfinite(weight):
        raise ConfigError(f"fusion weight must be within 0..1, got {weight}")
    if method == "rrf":
        return reciprocal_rank_fusion([lexical, dense], rrf_k, [1.0 - weight, weight], limit)
    if method != "score":
        raise ConfigError(f"fusion method must be 'score' or 'rrf', got {method!r}")
    lex_ids, lex_s = _best_per_id(*_valid(lexical))
    den_ids, den_s = _best_per_id(*_valid(dense))
    union = np.union1d(lex_ids, den_ids)
    if union.size == 0:
        return Results(np.empty(0, np.int64), np.empty(0, np.float32))
    lex_col = np.zeros(union.size, dtype=np.float64)
    lex_col[np.searchsorted(union, lex_ids)] = normalise_scores(lex_s, "max")
    den_col = np.zeros(union.size, dtype=np.float64)
    if den_ids.size:
        norm = normalise_scores(den_s, "minmax")
        den_col[:] = norm.min()
        den_col[np.searchsorted(union, den_ids)] = norm
    fused = (1.0 - weight) * lex_col + weight * den_col
    return _rank(union, fused, limit)


def _best_per_id(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids, each with its best score."""
    if ids.size == 0:
        return ids, scores
    order = np.lexsort((-scores, ids))
    ids, scores = ids[order], scores[order]
    keep = np.ones(ids.size, dtype=bool)
    keep[1:] = ids[1:] != ids[:-1]
    return ids[keep], scores[keep]


class RRFFusion:
    """Reciprocal rank fusion as a `search.base.Fusion` (lexical list first, then dense)."""

    def __init__(self, k: int = RRF_K, weights: Sequence[float] | None = None) -> None:
        if k < 1:
            raise ConfigError(f"the RRF rank constant k must be >= 1, got {k}")
        self.k = k
        self.weights = None if weights is None else [float(w) for w in weights]

    def fuse(self, results: Sequence[Results], k: int) -> Results:
        """The best `k` of the fused lists."""
        return reciprocal_rank_fusion(results, self.k, self.weights, limit=k)

    def save(self, directory: Path) -> None:
        """Write `fusion.json`."""
        directory.mkdir(parents=True, exist_ok=True)
        spec = {"kind": "rrf", "k": self.k, "weights": self.weights}
        (directory / "fusion.json").write_text(json.dumps(spec))

    @classmethod
    def load(cls, directory: Path) -> RRFFusion:
        """Read what `save` wrote."""
        spec = json.loads((directory / "fusion.json").read_text())
        return cls(int(spec["k"]), spec.get("weights"))


class ScoreFusion:
    """Weighted normalised-score fusion as a `search.base.Fusion`."""

    def __init__(
        self, weights: Sequence[float] | None = None, method: Normalisation = "minmax"
    ) -> None:
        if method not in ("minmax", "zscore", "max"):
            raise ConfigError(f"normalisation must be 'minmax', 'zscore' or 'max', got {method!r}")
        self.weights = None if weights is None else [float(w) for w in weights]
        self.method: Normalisation = method

    def fuse(self, results: Sequence[Results], k: int) -> Results:
        """The best `k` of the fused lists."""
        return weighted_score_fusion(results, self.weights, self.method, limit=k)

    def save(self, directory: Path) -> None:
        """Write `fusion.json`."""
        directory.mkdir(parents=True, exist_ok=True)
        spec = {"kind": "score", "weights": self.weights, "method": self.method}
        (directory / "fusion.json").write_text(json.dumps(spec))

    @classmethod
    def load(cls, directory: Path) -> ScoreFusion:
        """Read what `save` wrote."""
        spec = json.loads((directory / "fusion.json").read_text())
        return cls(spec.get("weights"), spec["method"])


class FusedRetriever:
    """Several retrievers fused into one `search.base.Retriever`.

    Every retriever gets the query and the mask and returns its best `max(k, depth)` rows;
    `fusion` (default: RRF with k=60) merges the lists, in the order of `retrievers`, into
    the best `k`. A `depth` above `k` lets a row that is good in every list but first in
    none reach the fused top `k`.
    """

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        fusion: Fusion | None = None,
        depth: int | None = None,
    ) -> None:
        if not retrievers:
            raise ConfigError("FusedRetriever needs at least one retriever, got none")
        if depth is not None and depth < 1:
            raise ConfigError(f"depth must be >= 1 (rows fetched per retriever), got {depth}")
        self.retrievers = list(retrievers)
        self.fusion: Fusion = fusion if fusion is not None else RRFFusion()
        self.depth = depth

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        """The best `k` rows of the fused lists, among the rows `mask` allows."""
        depth = max(k, self.depth or 0)
        lists = [r.retrieve(query, depth, mask) for r in self.retrievers]
        return self.fusion.fuse(lists, k)
