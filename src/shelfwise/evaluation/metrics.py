"""Offline ranking metrics: pure numpy on (ranked ids per user, relevant items per user).

Inputs shared by the accuracy metrics:

- `recs`: an int array (n_users x L) of item indices, best first; `-1` pads missing slots
  (what `Recommender.recommend_batch` returns). Only the first `k` columns are used.
- `relevant`: the relevant items of each user, row for row: a CSR matrix (n_users x
  n_items, every stored cell with a value > 0 is relevant) or a sequence of id collections
  (arrays, lists or sets).

Every metric is averaged over the users that have at least one relevant item; users with
none are skipped (they cannot be scored). Relevance is binary.

Definitions (they reproduce Microsoft Recommenders' `python_evaluation.py`, see
`recommenders-team/recommenders`, `recommenders/evaluation/python_evaluation.py`):

- precision@k = hits@k / k (divided by k even when fewer than k items were recommended;
  Recommenders' `precision_at_k`, after Spark's `RankingMetrics.precisionAt`).
- recall@k = hits@k / |rel| (Recommenders' `recall_at_k`).
- ndcg@k = DCG / IDCG with binary gains, DCG = sum over hits at rank i of 1 / log(1 + i),
  IDCG = sum over i = 1..min(|rel|, k) of 1 / log(1 + i) (Recommenders' `ndcg_at_k`,
  `score_type="binary"`; the log base cancels out).
- map@k = sum over hits at rank i of precision@i, divided by min(k, |rel|)
  (`denominator="min_k_rel"`, Recommenders' current `map_at_k`) or by |rel|
  (`denominator="n_rel"`, Recommenders' `map`, which is what their `map_at_k` computed
  before it was split in two, and what the published MovieLens benchmark table reports).
- mrr@k = 1 / rank of the first hit (0 without a hit in the top k).
- hit_rate@k = 1 if any of the top k is relevant, else 0.
- f1@k = 2 P R / (P + R) per user (0 when P + R = 0), averaged.

nDCG lives here only, in one convention for binary and graded relevance: the gain of the
item at rank i (1-based) is its grade (linear, not `2 ** grade - 1`; a binary hit has grade
1), discounted by 1 / log2(i + 1); the ideal DCG is that of the best ordering of the judged
items cut at k, i.e. of the min(|rel|, k) best grades; an item repeated in a ranking counts
at its first position only and `-1` padding never counts. `ndcg_at_k` / `ndcg_per_user`
are the binary case over (ranked ids, relevant sets), `ndcg_of_scores` the same from a score
matrix (training items excluded, what models validate with during `fit`), `ndcg_of_ranks`
the case of one relevant item per ranking (sampled negatives), and
`graded_ndcg` the graded case over per-query judgements (search relevance). For 0/1 grades
`graded_ndcg` equals the binary nDCG. `graded_ndcg(..., gain="exponential")` uses the gain
`2 ** grade - 1` instead (the TREC / Burges convention, what judged search sets such as
beauty-search-dev score with); for 0/1 grades both gains agree.

Beyond accuracy: `catalog_coverage`, `novelty`, `intra_list_diversity`, `popularity_bias`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import scipy.sparse as sp

from shelfwise.types import top_k_rows

Relevant: TypeAlias = Any
"""A CSR matrix (users x items) or a sequence of per-user id collections."""
MapDenominator = Literal["min_k_rel", "n_rel"]
SimilarityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

__all__ = [
    "catalog_coverage",
    "f1_at_k",
    "graded_ndcg",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "ndcg_from_hits",
    "ndcg_of_ranks",
    "ndcg_of_scores",
    "ndcg_per_user",
    "novelty",
    "popularity_bias",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")


def _as_recs(recs: Any, k: int) -> np.ndarray:
    arr = np.asarray(recs)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"recs must be a 2-D array (users x ranked items), got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"recs must hold integer item indices, got dtype {arr.dtype}")
    arr = arr[:, :k].astype(np.int64, copy=False)
    if arr.shape[1] < k:  # pad short lists so every user has k slots
        pad = np.full((arr.shape[0], k - arr.shape[1]), -1, dtype=np.int64)
        arr = np.hstack([arr, pad])
    return arr


def _relevant_csr(relevant: Relevant, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, sorted unique item indices) per row of `relevant`."""
    if sp.issparse(relevant):
        m = sp.csr_matrix(relevant)
        m.eliminate_zeros()
        m = sp.csr_matrix((m.data > 0, m.indices, m.indptr), shape=m.shape)
        m.eliminate_zeros()
        m.sum_duplicates()
        m.sort_indices()
        indptr, indices = m.indptr.astype(np.int64), m.indices.astype(np.int64)
    else:
        rows = [np.unique(np.fromiter((int(x) for x in r), dtype=np.int64)) for r in relevant]
        lengths = np.array([r.size for r in rows], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if indptr.shape[0] - 1 != n_rows:
        raise ValueError(
            f"recs has {n_rows} rows but relevant has {indptr.shape[0] - 1}; they must match"
        )
    return indptr, indices


def hit_matrix(recs: Any, relevant: Relevant, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hits: bool users x k, n_relevant per user) for the top `k` of `recs`.

    A recommended id counts once even if it repeats; `-1` (padding) is never a hit.
    """
    _check_k(k)
    top = _as_recs(recs, k)
    n = top.shape[0]
    indptr, indices = _relevant_csr(relevant, n)
    n_rel = np.diff(indptr)
    if n == 0:
        return np.zeros((0, k), dtype=bool), n_rel
    width = int(max(top.max(initial=-1), indices.max(initial=-1))) + 2
    rel_rows = np.repeat(np.arange(n, dtype=np.int64), n_rel)
    rel_keys = rel_rows * width + indices
    rec_keys = np.arange(n, dtype=np.int64)[:, None] * width + np.where(top >= 0, top, width - 1)
    hits = np.isin(rec_keys, rel_keys) & (top >= 0)
    # a repeated id counts only at its first position
    if hits.any():
        marked = np.where(top >= 0, top, -np.arange(1, k + 1))  # padding never repeats
        ordered = np.sort(marked, axis=1)
        for row in np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1)):
            _, first = np.unique(top[row], return_index=True)
            keep = np.zeros(k, dtype=bool)
            keep[first] = True
            hits[row] &= keep
    return hits, n_rel


def _per_user(recs: Any, relevant: Relevant, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hits of scored users, their n_rel, mask of scored users)."""
    hits, n_rel = hit_matrix(recs, relevant, k)
    scored = n_rel > 0
    return hits[scored], n_rel[scored].astype(np.float64), scored


def _mean(values: Any) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()) if arr.size else 0.0


def precision_at_k(recs: Any, relevant: Relevant, k: int) -> float:
    """Mean over users of hits@k / k."""
    hits, _, _ = _per_user(recs, relevant, k)
    return _mean(hits.sum(axis=1) / k)


def recall_at_k(recs: Any, relevant: Relevant, k: int) -> float:
    """Mean over users of hits@k / |relevant|."""
    hits, n_rel, _ = _per_user(recs, relevant, k)
    return _mean(hits.sum(axis=1) / n_rel)


def f1_at_k(recs: Any, relevant: Relevant, k: int) -> float:
    """Mean over users of the harmonic mean of their precision@k and recall@k."""
    hits, n_rel, _ = _per_user(recs, relevant, k)
    p = hits.sum(axis=1) / k
    r = hits.sum(axis=1) / n_rel
    denom = p + r
    f1 = np.divide(2 * p * r, denom, out=np.zeros_like(p), where=denom > 0)
    return _mean(f1)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def ndcg_from_hits(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """Binary nDCG per row from `hit_matrix`'s (hits, n_rel): DCG of the row's hits / DCG of
    min(n_rel, k) hits in a row. Every row must have n_rel >= 1."""
    disc = _discounts(k)
    dcg = hits.astype(np.float64) @ disc
    idcg = np.cumsum(disc)[np.minimum(n_rel, k).astype(np.int64) - 1] if n_rel.size else n_rel
    return np.asarray(dcg / idcg, dtype=np.float64)


def ndcg_per_user(recs: Any, relevant: Relevant, k: int) -> np.ndarray:
    """Binary nDCG@k of every user with at least one relevant item, in row order (see the
    module doc); users without one are left out."""
    hits, n_rel, _ = _per_user(recs, relevant, k)
    return ndcg_from_hits(hits, n_rel, k)


def ndcg_at_k(recs: Any, relevant: Relevant, k: int) -> float:
    """Mean over users of DCG@k / IDCG@k, binary gains; IDCG over min(|rel|, k) hits."""
    return _mean(ndcg_per_user(recs, relevant, k))


def ndcg_of_scores(
    scores: np.ndarray, relevant: Relevant, seen: np.ndarray | sp.spmatrix | None, k: int
) -> float:
    """Mean binary nDCG@k of the rankings of a (users x items) score matrix.

    Items marked in `seen` (a boolean array, or a sparse matrix whose stored cells mark them,
    of the same shape: the users' training items) are never ranked, nor are entries at
    -inf; the top k are taken as `types.top_k_rows` does. Rows of `relevant` (a CSR matrix
    of the same shape) without a relevant item are skipped; 0.0 when none has one. A
    catalogue of fewer than k items is scored as a ranking padded to k (IDCG over
    min(|rel|, k)).
    """
    _check_k(k)
    s = np.array(scores, dtype=np.float64, copy=True)
    if seen is not None:
        if sp.issparse(seen):
            m = sp.csr_matrix(seen)
            rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
            s[rows, m.indices] = -np.inf
        else:
            s[np.asarray(seen, dtype=bool)] = -np.inf
    return ndcg_at_k(top_k_rows(s, k).ids, relevant, k)


def ndcg_of_ranks(ranks: np.ndarray, k: int) -> np.ndarray:
    """nDCG@k of rankings that hold one relevant item each, given its 1-based `ranks` (the
    sampled-negatives protocol): 1 / log2(rank + 1) within the top k, else 0 (IDCG is 1)."""
    _check_k(k)
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r <= k, 1.0 / np.log2(r + 1.0), 0.0)


def graded_ndcg(
    ranked: Sequence[np.ndarray] | np.ndarray,
    judgements: Sequence[Mapping[int, int]],
    k: int,
    gain: Literal["linear", "exponential"] = "linear",
) -> np.ndarray:
    """nDCG@k per query with graded gains (see the module doc): `ranked[q]` the item ids of
    query q best first (`-1` pads), `judgements[q]` item -> grade (unjudged items and grades
    <= 0 gain nothing); `gain` the grade itself (`"linear"`) or `2 ** grade - 1`
    (`"exponential"`). NaN for a query without a positive grade."""
    _check_k(k)
    if gain not in ("linear", "exponential"):
        raise ValueError(f"gain must be 'linear' or 'exponential', got {gain!r}")
    disc = _discounts(k)
    out = np.full(len(ranked), np.nan)
    for i, judged in enumerate(judgements):
        ideal = np.sort(np.array([g for g in judged.values() if g > 0], dtype=np.float64))[::-1]
        if ideal.size == 0:
            continue
        if gain == "exponential":
            ideal = 2.0**ideal - 1.0
        idcg = float(ideal[:k] @ disc[: min(k, ideal.size)])
        seen: set[int] = set()
        gains = np.zeros(k)
        for j, item in enumerate(np.asarray(ranked[i], dtype=np.int64)[:k].tolist()):
            if item >= 0 and item not in seen:
                gains[j] = judged.get(item, 0)
                seen.add(item)
        if gain == "exponential":
            gains = np.where(gains > 0, 2.0**gains - 1.0, 0.0)
        out[i] = float(np.maximum(gains, 0) @ disc) / idcg
    return out


def map_at_k(
    recs: Any, relevant: Relevant, k: int, denominator: MapDenominator = "min_k_rel"
) -> float:
    """Mean average precision: per user sum over hits at rank i of precision@i, divided by
    min(k, |rel|) (`"min_k_rel"`, the usual MAP@k) or by |rel| (`"n_rel"`, Recommenders'
    `map`, used by their published MovieLens benchmark)."""
    if denominator not in ("min_k_rel", "n_rel"):
        raise ValueError(f"denominator must be 'min_k_rel' or 'n_rel', got {denominator!r}")
    hits, n_rel, _ = _per_user(recs, relevant, k)
    h = hits.astype(np.float64)
    precision_at_i = np.cumsum(h, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    total = (precision_at_i * h).sum(axis=1)
    denom = np.minimum(n_rel, k) if denominator == "min_k_rel" else n_rel
    return _mean(total / denom)


def mrr_at_k(recs: Any, relevant: Relevant, k: int) -> float:
    """Mean reciprocal rank of the first relevant item in the top k (0 if none)."""
    hits, _, _ = _per_user(recs, relevant, k)
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1)
    return _mean(np.where(any_hit, 1.0 / (first + 1), 0.0))


def hit_rate_at_k(recs: Any, relevant: Relevant, k: int) -> float:
    """Share of users with at least one relevant item in their top k."""
    hits, _, _ = _per_user(recs, relevant, k)
    return _mean(hits.any(axis=1).astype(np.float64))


def per_user_ranking(recs: Any, relevant: Relevant, k: int) -> dict[str, np.ndarray]:
    """Every accuracy metric at `k` of every scored user (users with relevant items, in row
    order), keyed as `ranking_metrics`: the values behind its means, for intervals over
    users and paired tests."""
    hits, n_rel, _ = _per_user(recs, relevant, k)
    h = hits.astype(np.float64)
    n_hits = h.sum(axis=1)
    p = n_hits / k
    r = n_hits / n_rel if n_rel.size else n_hits
    prec_i = np.cumsum(h, axis=1) / np.arange(1, k + 1, dtype=np.float64)
    ap_sum = (prec_i * h).sum(axis=1)
    any_hit = hits.any(axis=1)
    first = np.argmax(hits, axis=1) if hits.size else np.zeros(0, np.int64)
    f1_den = p + r
    return {
        f"ndcg@{k}": ndcg_from_hits(hits, n_rel, k),
        f"recall@{k}": r,
        f"precision@{k}": p,
        f"map@{k}": ap_sum / np.minimum(n_rel, k),
        f"map_nrel@{k}": ap_sum / n_rel,
        f"hr@{k}": any_hit.astype(np.float64),
        f"mrr@{k}": np.where(any_hit, 1.0 / (first + 1), 0.0),
        f"f1@{k}": np.divide(2 * p * r, f1_den, out=np.zeros_like(p), where=f1_den > 0),
    }


def ranking_metrics(recs: Any, relevant: Relevant, k: int) -> dict[str, float]:
    """All accuracy metrics at `k` in one pass, keyed `"ndcg@10"`, `"recall@10"`, ...: the
    means over users of `per_user_ranking`.

    `map@k` uses min(k, |rel|), `map_nrel@k` uses |rel| (see `map_at_k`).
    """
    return {key: _mean(values) for key, values in per_user_ranking(recs, relevant, k).items()}


# -- beyond accuracy ---------------------------------------------------------------------
def _valid_ids(recs: Any) -> np.ndarray:
    arr = np.asarray(recs)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"recs must hold integer item indices, got dtype {arr.dtype}")
    flat = arr.astype(np.int64, copy=False).ravel()
    return flat[flat >= 0]


def catalog_coverage(recs: Any, n_items: int) -> float:
    """Distinct recommended items / catalogue size (padding ignored)."""
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    return float(np.unique(_valid_ids(recs)).size / n_items)


def _popularity_array(item_popularity: Any) -> np.ndarray:
    pop = np.asarray(item_popularity, dtype=np.float64).ravel()
    if (pop < 0).any():
        raise ValueError("item popularity must be >= 0")
    return pop


def novelty(recs: Any, item_popularity: Any, n_users: int) -> float:
    """Mean self-information -log2(p(i)) of the recommended items (padding ignored).

    p(i) = (users who interacted with i in training) / n_users, with counts clipped at 1 so
    an item nobody interacted with gets the highest finite novelty, log2(n_users).
    """
    if n_users <= 0:
        raise ValueError(f"n_users must be positive, got {n_users}")
    ids = _valid_ids(recs)
    if ids.size == 0:
        return 0.0
    pop = _popularity_array(item_popularity)
    p = np.maximum(pop[ids], 1.0) / n_users
    return float(np.mean(-np.log2(np.minimum(p, 1.0))))


def popularity_bias(recs: Any, item_popularity: Any, normalize: bool = False) -> float:
    """Average recommendation popularity (ARP): mean over users of the mean popularity of
    their recommended items (padding ignored; users with an empty list skipped).

    With `normalize`, popularity is divided by the most popular item's, giving 0..1.
    """
    arr = np.asarray(recs)
    if arr.ndim == 1:
        arr = arr[None, :]
    arr = arr.astype(np.int64, copy=False)
    pop = _popularity_array(item_popularity)
    if normalize and pop.size and pop.max() > 0:
        pop = pop / pop.max()
    valid = arr >= 0
    counts = valid.sum(axis=1)
    sums = np.where(valid, pop[np.where(valid, arr, 0)], 0.0).sum(axis=1)
    keep = counts > 0
    return _mean(sums[keep] / counts[keep])


def _cosine_similarity_fn(vectors: Any) -> SimilarityFn:
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        normed = sp.csr_matrix(sp.diags(inv) @ m)

        def sim_sparse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return np.asarray(normed[a].multiply(normed[b]).sum(axis=1)).ravel()

        return sim_sparse
    dense = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(dense, axis=1)
    dense = dense / np.where(norms > 0, norms, 1.0)[:, None]

    def sim_dense(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(np.einsum("ij,ij->i", dense[a], dense[b]))

    return sim_dense


def intra_list_diversity(
    recs: Any,
    item_vectors: Any | None = None,
    similarity: SimilarityFn | None = None,
) -> float:
    """Mean over lists of the mean pairwise dissimilarity 1 - sim(i, j) of their items.

    Give either `item_vectors` (n_items x d, dense or sparse; cosine similarity) or
    `similarity`, a function of two equal-length index arrays returning their similarities.
    Lists with fewer than two items are skipped.
    """
    if (item_vectors is None) == (similarity is None):
        raise ValueError("give exactly one of item_vectors or similarity")
    sim = similarity if similarity is not None else _cosine_similarity_fn(item_vectors)
    arr = np.asarray(recs)
    if arr.ndim == 1:
        arr = arr[None, :]
    n_lists = 0
    left_all: list[np.ndarray] = []
    right_all: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for items in _rows(arr):
        if items.size < 2:
            continue
        i, j = np.triu_indices(items.size, k=1)
        left_all.append(items[i])
        right_all.append(items[j])
        owners.append(np.full(i.size, n_lists, dtype=np.int64))
        n_lists += 1
    if not n_lists:
        return 0.0
    left, right, owner = (np.concatenate(x) for x in (left_all, right_all, owners))
    dissim = 1.0 - np.asarray(sim(left, right), dtype=np.float64)
    sums = np.bincount(owner, weights=dissim, minlength=n_lists)
    counts = np.bincount(owner, minlength=n_lists)
    return float(np.mean(sums / counts))


def _rows(arr: np.ndarray) -> Iterable[np.ndarray]:
    for row in arr.astype(np.int64, copy=False):
        yield row[row >= 0]


def per_user_metrics(recs: Any, relevant: Relevant, k: int) -> dict[str, np.ndarray]:
    """nDCG@k and recall@k of every scored user (users with relevant items, in row order):
    the per-user values paired tests between models compare."""
    hits, n_rel, _ = _per_user(recs, relevant, k)
    return {
        f"ndcg@{k}": ndcg_from_hits(hits, n_rel, k),
        f"recall@{k}": hits.sum(axis=1) / np.maximum(n_rel, 1.0),
    }


def gini_exposure(recs: Any, n_items: int) -> float:
    """Gini coefficient of how often each catalogue item is recommended (padding ignored):
    0 when every item is shown equally often, (n - 1) / n when one item takes every slot.

    With exposures sorted ascending x_1..x_n: G = sum_i (2i - n - 1) x_i / (n * sum x).
    """
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    counts = np.sort(np.bincount(_valid_ids(recs), minlength=n_items).astype(np.float64))
    total = counts.sum()
    if total == 0:
        return 0.0
    i = np.arange(1, n_items + 1, dtype=np.float64)
    return float(((2 * i - n_items - 1) * counts).sum() / (n_items * total))


def long_tail_items(item_popularity: Any, head_share: float = 0.2) -> np.ndarray:
    """Mask of long-tail items: all but the most popular items that together hold
    `head_share` of the interactions (the head, taken in popularity order, ties by index)."""
    pop = _popularity_array(item_popularity)
    order = np.argsort(-pop, kind="stable")
    cum = np.cumsum(pop[order])
    total = cum[-1] if cum.size else 0.0
    tail = np.ones(pop.size, dtype=bool)
    if total > 0:
        n_head = int(np.searchsorted(cum, head_share * total, side="left")) + 1
        tail[order[:n_head]] = False
    return tail


def long_tail_share(recs: Any, tail: np.ndarray) -> float:
    """Share of recommended slots (padding ignored) that hold a long-tail item."""
    ids = _valid_ids(recs)
    return float(tail[ids].mean()) if ids.size else 0.0


def calibration_kl(
    recs: Any, histories: sp.csr_matrix, item_categories: sp.csr_matrix, alpha: float = 0.01
) -> float:
    """Miscalibration (Steck 2018): mean over users of KL(p || q~), p the category
    distribution of the user's history, q the distribution of their list, q~ = (1 - alpha) q
    + alpha p so the divergence stays finite. An item's categories share its unit weight
    (`item_categories` rows, items x categories, are normalised to sum 1). Users with no
    categorised history or list items are skipped."""
    cats = sp.csr_matrix(item_categories, dtype=np.float64)
    sums = np.asarray(cats.sum(axis=1)).ravel()
    cats = sp.csr_matrix(
        sp.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ cats
    )
    arr = np.asarray(recs).astype(np.int64, copy=False)
    if arr.ndim == 1:
        arr = arr[None, :]
    hist = sp.csr_matrix(histories > 0, dtype=np.float64)
    p = np.asarray((hist @ cats).todense())
    rows = np.repeat(np.arange(arr.shape[0]), arr.shape[1])
    flat = arr.ravel()
    keep = flat >= 0
    lists = sp.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], flat[keep])), shape=(arr.shape[0], cats.shape[0])
    )
    q = np.asarray((lists @ cats).todense())
    p_tot = p.sum(axis=1)
    q_tot = q.sum(axis=1)
    ok = (p_tot > 0) & (q_tot > 0)
    if not ok.any():
        return 0.0
    p = p[ok] / p_tot[ok, None]
    q = q[ok] / q_tot[ok, None]
    q = (1 - alpha) * q + alpha * p
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p / q), 0.0)
    return float(terms.sum(axis=1).mean())


def category_matrix(values: Sequence[Any]) -> sp.csr_matrix:
    """Items x categories 0/1 matrix from one value per item: a category name, a
    `|`- or `,`-separated list of them (MovieLens genres), or missing (no category)."""
    index: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and value != value):
            continue
        parts = (
            value if isinstance(value, list | tuple) else str(value).replace(",", "|").split("|")
        )
        for part in parts:
            name = str(part).strip()
            if name:
                rows.append(row)
                cols.append(index.setdefault(name, len(index)))
    return sp.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(values), max(len(index), 1))
    )


def popularity_profile(recs: Any, item_popularity: Any, bins: int = 10) -> np.ndarray:
    """Share of recommended slots (padding ignored) falling in each popularity bin: items
    sorted by training popularity, most popular first (ties by index), cut into `bins`
    bins of equal item count. The popularity-bias curve of the report; the training data's
    own curve is `popularity_profile` of every interaction (pass the interaction indices)."""
    pop = _popularity_array(item_popularity)
    order = np.argsort(-pop, kind="stable")
    bin_of = np.empty(pop.size, dtype=np.int64)
    bin_of[order] = np.arange(pop.size) * bins // max(pop.size, 1)
    ids = _valid_ids(recs)
    counts = np.bincount(bin_of[ids], minlength=bins).astype(np.float64)
    return counts / counts.sum() if counts.sum() else counts
