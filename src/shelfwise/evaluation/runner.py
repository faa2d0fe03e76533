"""Fit and score models on a protocol's matrices: accuracy, beyond-accuracy and speed.

For each model: `create(name, **params)`, fit on the training matrix (with the catalog
aligned to the item vocabulary, and the validation matrix when the model's `fit` accepts a
`validation=` argument), then recommend the top k for every test user from their training
row (`users=` their training indices), excluding training items, in batches. Metrics
compare those lists with each user's test items (see `shelfwise.evaluation.metrics`).
Sequential models (`model.sequential`) are fitted on `OrderedInteractions` (the training
matrix plus every user's training events in time order) and scored from each test user's
ordered sequence.

History at test time (`scoring_view`): when the split has a validation part (leave-last-out),
models are fitted on train (validation passed to `fit` for early stopping) and the test item
is then predicted from train + validation (`fold_validation`): the validation item belongs
to the user's history, so it is excluded from the list like any other seen item and never
recommended, as in the sequential papers' protocol (SASRec, BERT4Rec).

Sampled mode (`sampled=N`): each (test user, held-out item) pair is ranked among N items
the user never interacted with (anywhere in the data), drawn once per run with a fixed
seed and shared by every model; HR@k and NDCG@k are computed over the N + 1 candidates.
Ties count against the held-out item (its rank is 1 + the number of negatives scoring
at least as high), so a model that scores everything alike gets no credit.

A model that raises is reported as `{"error": "..."}` instead of stopping the run.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.data.sequences import OrderedInteractions, Sequences
from shelfwise.evaluation.metrics import (
    calibration_kl,
    catalog_coverage,
    category_matrix,
    gini_exposure,
    intra_list_diversity,
    long_tail_items,
    long_tail_share,
    ndcg_of_ranks,
    novelty,
    per_user_metrics,
    popularity_bias,
    ranking_metrics,
)
from shelfwise.evaluation.protocols import ProtocolData, fold_validation, sample_negatives
from shelfwise.recommenders.base import Recommender, create

log = logging.getLogger("shelfwise.evaluation")

Progress = Callable[[str], None]


@dataclass
class ModelRun:
    """One model's outcome: metrics (or an error) and the recommendations it made."""

    name: str
    metrics: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    recommendations: np.ndarray | None = None
    per_user: dict[str, np.ndarray] = field(default_factory=dict)
    users: np.ndarray | None = None
    mmr: list[dict[str, float]] = field(default_factory=list)
    sampled_ranks: np.ndarray | None = None
    """With sampled negatives: the rank (1-based, ties pessimistic) of each held-out test
    item among them (`sampled_ranks`), one per (test user, item) pair, for per-user
    intervals of the sampled metrics."""


def ordered_history(model: Recommender, data: ProtocolData) -> Sequences | None:
    """The training sequences a sequential model reads, or None (order-blind model, no
    sequences, or sequences that do not hold exactly the training matrix's items)."""
    if not model.sequential or data.sequences is None:
        return None
    pattern = sp.csr_matrix(data.train > 0, dtype=np.float32)
    if data.sequences.n_users != data.n_users or (
        (data.sequences.to_csr(data.n_items) != pattern).nnz
    ):
        log.warning(
            "%s: the ordered sequences do not match the training matrix; "
            "scoring from item index order",
            model.name,
        )
        return None
    return data.sequences


def _fit(model: Recommender, data: ProtocolData) -> None:
    """Fit with the catalog, and the validation matrix if `fit` takes `validation=`."""
    kwargs: dict[str, Any] = {}
    try:
        params = inspect.signature(model.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}  # type: ignore[assignment]
    if "validation" in params:
        kwargs["validation"] = data.validation
    sequences = ordered_history(model, data)
    train: Any = data.train if sequences is None else OrderedInteractions(data.train, sequences)
    model.fit(train, data.catalog, **kwargs)


def catalog_categories(catalog: Any) -> sp.csr_matrix | None:
    """Items x categories 0/1 matrix of an aligned catalog: the `genres` list in each item's
    JSON `attributes` when any item has one (MovieLens), else the `category` column; None
    without either."""
    if catalog is None or len(catalog) == 0:
        return None
    if "attributes" in catalog.columns:
        genres: list[Any] = []
        for raw in catalog["attributes"]:
            try:
                value = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                value = None
            genres.append(value.get("genres") if isinstance(value, dict) else None)
        if any(g for g in genres):
            return category_matrix(genres)
    if "category" in catalog.columns and catalog["category"].notna().any():
        return category_matrix([c if isinstance(c, str) else None for c in catalog["category"]])
    return None


def beyond_accuracy(recs: np.ndarray, data: ProtocolData, users: np.ndarray) -> dict[str, float]:
    """Coverage, novelty, average popularity (arp), Gini of exposure, long-tail share (items
    outside the head holding 20% of training interactions), and, when the catalog has
    categories, intra-list diversity (1 - cosine over category vectors) and calibration
    (KL of the history's category distribution against the list's)."""
    popularity = np.bincount(data.train.indices, minlength=data.n_items)
    train_users = int((np.diff(data.train.indptr) > 0).sum()) or 1
    out = {
        "coverage": catalog_coverage(recs, data.n_items),
        "novelty": novelty(recs, popularity, train_users),
        "arp": popularity_bias(recs, popularity),
        "gini": gini_exposure(recs, data.n_items),
        "long_tail_share": long_tail_share(recs, long_tail_items(popularity)),
    }
    cats = catalog_categories(data.catalog)
    if cats is not None:
        out["ild"] = intra_list_diversity(recs, item_vectors=cats)
        out["calibration_kl"] = calibration_kl(recs, data.train[users], cats)
    return out


def mmr_rerank(
    ids: np.ndarray, scores: np.ndarray, vectors: sp.csr_matrix, k: int, lam: float
) -> np.ndarray:
    """Maximal marginal relevance (Carbonell & Goldstein 1998) over each row's candidates:
    greedily pick the candidate maximising `lam * rel - (1 - lam) * max cosine similarity to
    the items already picked`, rel the model's scores min-max scaled to [0, 1] per row.
    `lam=1` keeps the model's order; -1 ids (padding) are never picked. Returns k ids per
    row (-1 padded)."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"the MMR lambda must be in [0, 1], got {lam}")
    m = sp.csr_matrix(vectors, dtype=np.float64)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    normed = sp.csr_matrix(
        sp.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m
    )
    out = np.full((ids.shape[0], k), -1, dtype=np.int64)
    for row in range(ids.shape[0]):
        valid = ids[row] >= 0
        cand = ids[row][valid].astype(np.int64)
        if cand.size == 0:
            continue
        rel = np.asarray(scores[row][valid], dtype=np.float64)
        span = rel.max() - rel.min()
        rel = (rel - rel.min()) / span if span > 0 else np.ones_like(rel)
        sim = np.asarray((normed[cand] @ normed[cand].T).todense())
        max_sim = np.zeros(cand.size)
        free = np.ones(cand.size, dtype=bool)
        for slot in range(min(k, cand.size)):
            value = np.where(free, lam * rel - (1 - lam) * max_sim, -np.inf)
            pick = int(np.argmax(value))
            out[row, slot] = cand[pick]
            free[pick] = False
            max_sim = np.maximum(max_sim, sim[pick])
    return out


def mmr_curve(
    model: Recommender,
    data: ProtocolData,
    k: int,
    lambdas: Sequence[float],
    candidates: int = 100,
) -> list[dict[str, float]]:
    """The accuracy-diversity trade-off of MMR re-ranking a fitted model's top `candidates`
    (one point per lambda: nDCG@k, recall@k, ILD, coverage, novelty), category vectors from
    the catalog (`catalog_categories`). Empty without categories."""
    cats = catalog_categories(data.catalog)
    if cats is None:
        return []
    data = scoring_view(data)
    users = data.test_users
    sequences = ordered_history(model, data)
    res = model.recommend_batch(
        data.train[users],
        k=max(candidates, k),
        exclude_seen=True,
        users=users,
        sequences=None if sequences is None else sequences.rows(users),
    )
    points = []
    for lam in lambdas:
        recs = mmr_rerank(res.ids, res.scores, cats, k, lam)
        acc = ranking_metrics(recs, data.test[users], k)
        extra = beyond_accuracy(recs, data, users)
        points.append(
            {
                "lambda": float(lam),
                f"ndcg@{k}": acc[f"ndcg@{k}"],
                f"recall@{k}": acc[f"recall@{k}"],
                "ild": extra.get("ild", 0.0),
                "coverage": extra["coverage"],
                "novelty": extra["novelty"],
            }
        )
    return points


def scoring_view(data: ProtocolData) -> ProtocolData:
    """The split as the test step sees it: the validation part folded into every user's
    history (`fold_validation`) when there is one, else `data` itself."""
    return fold_validation(data) if data.validation.nnz else data


def recommend_users(
    model: Recommender, data: ProtocolData, users: np.ndarray, k: int, exclude_seen: bool = True
) -> tuple[np.ndarray, float]:
    """(top-k ids for `users` from their training rows, seconds taken)."""
    start = time.perf_counter()
    sequences = ordered_history(model, data)
    res = model.recommend_batch(
        data.train[users],
        k=k,
        exclude_seen=exclude_seen,
        users=users,
        sequences=None if sequences is None else sequences.rows(users),
    )
    return res.ids, time.perf_counter() - start


def sampled_ranks(
    model: Recommender,
    data: ProtocolData,
    users: np.ndarray,
    negatives: np.ndarray,
    chunk: int = 1024,
) -> np.ndarray:
    """Rank (1-based, ties pessimistic) of each held-out test item among its user's
    negatives; one entry per (user, test item) pair, users in order, items ascending."""
    ranks: list[np.ndarray] = []
    test = data.test
    sequences = ordered_history(model, data)
    for start in range(0, users.size, chunk):
        block = users[start : start + chunk]
        if sequences is None:
            raw = model.score(data.train[block], block)
        else:
            raw = model.score_sequences(sequences.rows(block), block)
        scores = np.asarray(raw, dtype=np.float64)
        neg = negatives[start : start + chunk]
        valid = neg >= 0
        neg_scores = np.where(valid, scores[np.arange(block.size)[:, None], np.maximum(neg, 0)], 0)
        for row, user in enumerate(block):
            pos = test.indices[test.indptr[user] : test.indptr[user + 1]]
            pos_scores = scores[row, pos]
            ns = neg_scores[row][valid[row]]
            ranks.append(1 + (ns[None, :] >= pos_scores[:, None]).sum(axis=1))
    return np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)


def sampled_metrics(ranks: np.ndarray, k: int, n: int) -> dict[str, float]:
    """HR@k and NDCG@k (one relevant item among n + 1 candidates) from sampled ranks."""
    if ranks.size == 0:
        return {f"sampled{n}_hr@{k}": 0.0, f"sampled{n}_ndcg@{k}": 0.0}
    hit = ranks <= k
    ndcg = ndcg_of_ranks(ranks, k)
    return {
        f"sampled{n}_hr@{k}": float(hit.mean()),
        f"sampled{n}_ndcg@{k}": float(ndcg.mean()),
        f"sampled{n}_mrr": float(np.mean(1.0 / ranks)),
    }


def _all_interactions(data: ProtocolData) -> sp.csr_matrix:
    m = sp.csr_matrix(data.train + data.validation + data.test)
    m.sort_indices()
    return m


def fitted_metrics(
    model: Recommender,
    data: ProtocolData,
    k: int = 10,
    negatives: np.ndarray | None = None,
    n_sampled: int | None = None,
    exclude_seen: bool = True,
) -> tuple[dict[str, Any], np.ndarray]:
    """Measure an already fitted model on `data.test`: ranking metrics at `k`, coverage,
    novelty, popularity bias, sampled metrics when `negatives` are given, throughput.
    Returns the metrics (`fit_seconds` 0) and the top-k ids per test user.

    `data` is the split the model was fitted on; the test step scores from
    `scoring_view(data)` (validation items are history, never recommended). `negatives`
    are rows for `scoring_view(data).test_users`."""
    data = scoring_view(data)
    users = data.test_users
    recs, rec_seconds = recommend_users(model, data, users, k, exclude_seen)
    metrics: dict[str, Any] = ranking_metrics(recs, data.test[users], k)
    metrics.update(beyond_accuracy(recs, data, users))
    if negatives is not None and n_sampled:
        ranks = sampled_ranks(model, data, users, negatives)
        metrics.update(sampled_metrics(ranks, k, n_sampled))
    metrics["fit_seconds"] = 0.0
    metrics["recommend_seconds"] = rec_seconds
    metrics["recommend_users_per_second"] = users.size / rec_seconds if rec_seconds else 0.0
    metrics["users_evaluated"] = int(users.size)
    return metrics, recs


def training_summary(model: Recommender) -> dict[str, Any] | None:
    """What a torch model's training did (its `history`): epochs run, the best epoch and
    value of the monitored metric, why it stopped, and the learning curve (per epoch: loss,
    validation metrics, seconds); None for models without one."""
    history = getattr(model, "history", None)
    to_dict = getattr(history, "to_dict", None)
    if not callable(to_dict):
        return None
    data = dict(to_dict())
    epochs = list(data.get("epochs", []))
    return {
        "epochs_run": len(epochs),
        "best_epoch": data.get("best_epoch"),
        "best_value": data.get("best_value"),
        "monitor": data.get("monitor"),
        "stopped_early": data.get("stopped_early", False),
        "stopped_by_budget": data.get("stopped_by_budget", False),
        "diverged": data.get("diverged", False),
        "curve": epochs,
    }


def evaluate_model(
    name: str,
    data: ProtocolData,
    k: int = 10,
    params: Mapping[str, Any] | None = None,
    negatives: np.ndarray | None = None,
    n_sampled: int | None = None,
    exclude_seen: bool = True,
    mmr: Sequence[float] = (),
) -> ModelRun:
    """Fit one registered model on `data.train` and measure it on `data.test`; with `mmr`
    lambdas, also the MMR trade-off curve (`mmr_curve`) in `run.mmr`."""
    run = ModelRun(name)
    try:
        model = create(name, **dict(params or {}))
        t0 = time.perf_counter()
        _fit(model, data)
        fit_seconds = time.perf_counter() - t0
        metrics, recs = fitted_metrics(model, data, k, None, None, exclude_seen)
        scored = scoring_view(data)
        if negatives is not None and n_sampled:
            ranks = sampled_ranks(model, scored, scored.test_users, negatives)
            metrics.update(sampled_metrics(ranks, k, n_sampled))
            run.sampled_ranks = ranks
        metrics["fit_seconds"] = fit_seconds
        training = training_summary(model)
        if training is not None:
            metrics["training"] = training
        run.metrics = metrics
        run.recommendations = recs
        run.users = scored.test_users
        run.per_user = per_user_metrics(recs, scored.test[scored.test_users], k)
        if mmr:
            run.mmr = mmr_curve(model, data, k, mmr)
    except Exception as exc:  # a broken model is a result row, not a crash
        log.exception("%s failed", name)
        run.error = f"{type(exc).__name__}: {exc}"
    return run


def evaluate(
    data: ProtocolData,
    models: Sequence[str],
    k: int = 10,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    sampled: int | None = None,
    seed: int = 42,
    exclude_seen: bool = True,
    progress: Progress | None = None,
    mmr: Sequence[float] = (),
) -> dict[str, ModelRun]:
    """Evaluate several models on the same split; `progress` gets one line per step."""
    say = progress or log.info
    negatives = None
    if sampled:
        negatives = sample_negatives(
            _all_interactions(data), scoring_view(data).test_users, sampled, seed
        )
    runs: dict[str, ModelRun] = {}
    for i, name in enumerate(models, 1):
        say(f"[{i}/{len(models)}] {name}: fitting and scoring {data.test_users.size:,} users")
        t0 = time.perf_counter()
        run = evaluate_model(
            name,
            data,
            k=k,
            params=(params or {}).get(name),
            negatives=negatives,
            n_sampled=sampled,
            exclude_seen=exclude_seen,
            mmr=mmr,
        )
        elapsed = time.perf_counter() - t0
        if run.error:
            say(f"[{i}/{len(models)}] {name}: ERROR {run.error} ({elapsed:.1f}s)")
        else:
            m = run.metrics
            say(
                f"[{i}/{len(models)}] {name}: ndcg@{k}={m[f'ndcg@{k}']:.4f} "
                f"recall@{k}={m[f'recall@{k}']:.4f} fit {m['fit_seconds']:.2f}s, "
                f"{m['recommend_users_per_second']:,.0f} users/s ({elapsed:.1f}s)"
            )
        runs[name] = run
    return runs
