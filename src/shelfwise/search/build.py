"""The search part of a model bundle: `build_search_service` and `load_search_service`.

A bundle's search service indexes the bundle's items frame row for row (row i = catalogue
index i; untitled placeholder rows for items seen only in events are dead rows, never
returned), learns popularity and past queries from the store's events and, with `rerank`,
carries the learned re-ranker (`search.ltr.PersonalisedReranker`) trained from the store's
search -> click / cart / purchase events over the service's own BM25 index, or, given a
judged folder (`judgements`: queries.tsv + qrels.tsv over the bundle's item ids), the
re-ranker learnt from those graded judgements (`search.judged.train_judged_reranker`),
which then replaces the one learnt from events. With judgements and a `tune_budget`, the
ranking parameters are first tuned on them (`tuning.search.tune_search`, Optuna within
the budget, query-level 5-fold CV) and the service answers with the tuned configuration
(`service.tuned` holds the report the bundle manifest records). It is saved
with `SearchService.save` (re-ranker included) and a server loads it instead of indexing
the catalogue again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shelfwise.errors import DataError, ShelfwiseError
from shelfwise.search.config import SearchConfig
from shelfwise.search.service import SearchService

if TYPE_CHECKING:
    from shelfwise.search.ltr import LTRConfig, PersonalisedReranker
    from shelfwise.search.relevance import SearchDataset

__all__ = ["build_search_service", "load_search_service"]

log = logging.getLogger(__name__)


def build_search_service(
    items: pd.DataFrame,
    events: pd.DataFrame | None,
    config: SearchConfig | None = None,
    rerank: bool = True,
    dense: bool = False,
    cache_dir: Path | None = None,
    judgements: Path | None = None,
    ltr_config: LTRConfig | None = None,
    tune_budget: float | None = None,
) -> SearchService:
    """The search service over `items` (row i = index i) with popularity and past queries
    from `events`; with `rerank`, plus the learned re-ranker when the events hold searches
    that led to a click, cart or purchase (else none, logged). With `dense` the re-ranker
    also learns from the dense-similarity features (MiniLM embeddings of the live rows,
    read from or written to the embedding cache in `cache_dir`); the dense index itself is not kept
    (a server switches dense retrieval on from the same cache).

    With `judgements` (a judged folder whose doc_ids are item ids of `items`) the
    re-ranker is learnt from its graded judgements instead, over the candidates the
    service hands its re-ranker (popularity from `events`; dense features with `dense`);
    `ltr_config` sets its LightGBM parameters. A folder that does not fit the catalogue is
    a `DataError` naming the file and line. A `tune_budget` (seconds, > 0) tunes the
    ranking parameters on the judgements first and serves the tuned ones (`_tune`).

    `service.timings` records the seconds spent indexing and training."""
    t0 = time.perf_counter()
    service = SearchService.build(items, events, config)
    timings = {"search_index": round(time.perf_counter() - t0, 3)}
    tuned: dict[str, Any] | None = None
    if judgements is not None:
        from shelfwise.search.judged import load_judged_folder

        dataset = load_judged_folder(Path(judgements), corpus=service.items)
        dataset.history = events
        if tune_budget:
            t0 = time.perf_counter()
            service, tuned = _tune(service, dataset, judgements, dense, cache_dir, tune_budget)
            timings["search_tuning"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        service.reranker = _train_judged(service, dataset, judgements, dense, cache_dir, ltr_config)
        timings["search_reranker"] = round(time.perf_counter() - t0, 3)
    elif rerank:
        t0 = time.perf_counter()
        service.reranker = _train_reranker(service, events, dense, cache_dir)
        timings["search_reranker"] = round(time.perf_counter() - t0, 3)
    service.timings = timings
    service.tuned = tuned
    return service


@contextmanager
def _dense_on(
    service: SearchService, dense: bool, cache_dir: Path | None, what: str
) -> Iterator[None]:
    """With `dense`, dense retrieval switched on for the block (a warning saying `what` goes
    without it when it cannot be); afterwards the service's dense index and fusion as before."""
    saved = service.dense, service.fusion
    if dense:
        try:
            service.enable_dense(cache_dir=cache_dir)
        except ShelfwiseError as exc:
            log.warning("%s without dense features: %s", what, exc)
    try:
        yield
    finally:
        service.dense, service.fusion = saved


def _tune(
    service: SearchService,
    dataset: SearchDataset,
    folder: Path,
    dense: bool,
    cache_dir: Path | None,
    budget: float,
) -> tuple[SearchService, dict[str, Any]]:
    """The service re-configured with ranking parameters tuned on a judged folder within
    `budget` seconds (hybrid with `dense`, the fusion parameters included), and the
    report (tuned parameters, the cross-validated comparison with the defaults)."""
    from shelfwise.tuning.search import Judged, SearchTuneSettings, tune_search

    judged = Judged.from_dataset(dataset)
    groups = len(set(judged.groups))
    folds = min(5, groups) if groups >= 3 else 0  # fewer: no cross-validation
    saved = service.dense, service.fusion
    with _dense_on(service, dense, cache_dir, "search tuned"):
        settings = SearchTuneSettings(trials=10_000, folds=folds, time_budget=budget)
        result = tune_search(service, judged, settings)
    tuned = service.with_config(result.config.model_copy(update={"mode": service.config.mode}))
    tuned.dense, tuned.fusion = saved
    report = result.to_dict()
    report["cv"] = {k: v for k, v in report["cv"].items() if k != "per_query"}
    log.info("search parameters tuned on %s: CV nDCG@10 %s (defaults %s)", folder,
             report["cv"].get("tuned"), report["cv"].get("default"))  # fmt: skip
    return tuned, report


def _train_reranker(
    service: SearchService, events: pd.DataFrame | None, dense: bool, cache_dir: Path | None
) -> PersonalisedReranker | None:
    """The LightGBM re-ranker learned from the events over the service's rows and index,
    or None (logged) when there is nothing to learn from."""
    if events is None or events.empty or not (events["type"] == "search").any():
        log.info("no search events: search results are not re-ranked")
        return None
    from shelfwise.search.ltr import PersonalisedReranker  # lightgbm only when needed

    index = None
    if dense:
        from shelfwise.search.documents import item_texts
        from shelfwise.search.semantic import DenseIndex, EmbeddingCache

        rows = np.flatnonzero(service.alive)
        try:
            index = DenseIndex()
            index.cache = EmbeddingCache(cache_dir, encoder=index.encoder)
            vectors = index.embed(item_texts(service.items.iloc[rows]), what="items")
            index.index_vectors(vectors, rows)
        except ShelfwiseError as exc:
            log.warning("re-ranker trained without dense features: %s", exc)
            index = None
    try:
        reranker = PersonalisedReranker.train(
            service.items, events, dense=index, index=service.index
        )
    except DataError as exc:
        log.info("search re-ranker not trained: %s", exc)
        return None
    log.info("trained the search re-ranker")
    return reranker


def _train_judged(
    service: SearchService,
    dataset: SearchDataset,
    folder: Path,
    dense: bool,
    cache_dir: Path | None,
    config: LTRConfig | None,
) -> PersonalisedReranker:
    """The re-ranker learnt from a judged folder's graded judgements over the service's
    candidates; with `dense`, over its hybrid candidates with the dense features (the dense
    index is then dropped again, as `_train_reranker` does)."""
    from shelfwise.search.judged import train_judged_reranker

    with _dense_on(service, dense, cache_dir, "judged re-ranker trained"):
        reranker = train_judged_reranker(service, dataset, config)
    log.info(
        "trained the search re-ranker on %d judged queries from %s", len(dataset.queries), folder
    )
    return reranker


def load_search_service(directory: Path) -> SearchService:
    """A service written by `SearchService.save`, re-ranker included (see
    `SearchService.load`); `NotFittedError` when `directory` holds none."""
    return SearchService.load(Path(directory))
