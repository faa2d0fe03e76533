"""Self-tuned search: Optuna over the ranking parameters of a `SearchService`, scored by
nDCG@10 on graded judgements, with query-level cross-validation.

    result = tune_search(service, judged, SearchTuneSettings(trials=40, folds=5))
    result.config          # the SearchConfig tuned on every query (what a bundle serves)
    result.cv              # {"default": out-of-fold nDCG@10, "tuned": ..., "folds": [...]}

Judgements are `(queries, judgements)`: the query texts and, per query, catalogue row ->
grade. They come from a judged folder (`search.judged.load_judged_folder`: `queries.tsv` +
`qrels.tsv`) or from the store's click log (`click_judgements`: search -> click / cart /
purchase events graded 1 / 2 / 3 by `search.ltr.search_labels`, one judgement set per
distinct query).

**Honest numbers.** Queries are split into `folds` folds (whole query groups per fold:
the same text never sits on both sides). For each fold a fresh study tunes on the other
folds only and its best parameters score the held-out fold, so every query's tuned score
comes from parameters that never saw it; `cv["tuned"]` is the mean of those out-of-fold
scores and `cv["default"]` the default parameters' mean over the same queries. A last study
on every query picks the parameters that are written into the bundle. Every study's first
trial is the starting configuration, so a study never ends below it on its own queries.

**The space** (`SEARCH_SPACE`, data like the models' spaces: `recommenders.space`): BM25F
k1 and b, the field weights, the minimum-should-match ratio, coordination, phrase and
proximity boosts, the brand and category boosts and, when the service has a dense
retriever, the fusion weight and the dense candidates' minimum similarity. Names with dots
address nested fields (`bm25.fields.title`). Parameters that change the index (the `bm25.`
ones) rebuild it from the catalogue's analysed text, which is analysed once.

Progress (trial, best so far, ETA) is logged; `time_budget` bounds the whole run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import ConfigError, DataError
from shelfwise.recommenders.space import FloatRange, IntRange, Param, SearchSpace, draw
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.config import SearchConfig
from shelfwise.search.documents import item_documents
from shelfwise.search.judged import judged_metrics
from shelfwise.search.service import SearchService

__all__ = [
    "DENSE_SPACE",
    "SEARCH_SPACE",
    "Judged",
    "SearchEvaluator",
    "SearchTuneResult",
    "SearchTuneSettings",
    "apply_params",
    "click_judgements",
    "config_params",
    "query_folds",
    "tune_search",
]

log = logging.getLogger(__name__)

SEARCH_SPACE: SearchSpace = {
    "bm25.k1": FloatRange(0.3, 3.0),
    "bm25.b": FloatRange(0.1, 1.0),
    "bm25.fields.title": FloatRange(0.5, 8.0, log=True),
    "bm25.fields.brand": FloatRange(0.25, 8.0, log=True),
    "bm25.fields.category": FloatRange(0.25, 8.0, log=True),
    "bm25.fields.description": FloatRange(0.1, 4.0, log=True),
    "bm25.fields.attributes": FloatRange(0.1, 4.0, log=True),
    "min_match_ratio": FloatRange(0.5, 1.0),
    "coordination": FloatRange(0.0, 3.0),
    "phrase_boost": FloatRange(0.0, 1.0),
    "proximity_boost": FloatRange(0.0, 0.5),
    "brand_boost": FloatRange(0.0, 1.5),
    "category_boost": FloatRange(0.0, 1.0),
}
"""The lexical ranking parameters `tune_search` searches (SearchConfig field names; dotted
names reach into `bm25`)."""

DENSE_SPACE: SearchSpace = {
    "fusion_weight": FloatRange(0.0, 0.9),
    "dense_min_similarity": FloatRange(0.0, 0.6),
    "dense_confident_weight": FloatRange(0.0, 1.0),
    "dense_confident_matches": IntRange(1, 200, log=True),
}
"""Added to the space when the service has a dense retriever (hybrid search)."""


@dataclass(frozen=True)
class Judged:
    """Graded judgements for tuning: query texts, per query row -> grade, and the group
    each query's fold is chosen by (default: the lower-cased text)."""

    queries: list[str]
    judgements: list[dict[int, int]]
    groups: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.queries) != len(self.judgements):
            raise DataError(
                f"{len(self.queries)} queries for {len(self.judgements)} judgement sets"
            )
        if not self.groups:
            object.__setattr__(self, "groups", [q.lower().strip() for q in self.queries])
        if self.types and len(self.types) != len(self.queries):
            raise DataError(f"{len(self.types)} query types for {len(self.queries)} queries")

    @classmethod
    def from_dataset(cls, dataset: Any) -> Judged:
        """From a `search.relevance.SearchDataset` (e.g. `load_judged_folder`)."""
        q = dataset.queries
        types = q["type"].astype(str).tolist() if "type" in q else []
        return cls(
            q["query"].astype(str).tolist(),
            [dict(j) for j in dataset.judgements],
            q["group"].astype(str).tolist() if "group" in q else [],
            types,
            str(dataset.name),
        )


def click_judgements(
    events: pd.DataFrame,
    id_to_row: Mapping[str, int],
    window_minutes: float = 30.0,
    min_searches: int = 1,
) -> Judged:
    """Judgements from the click log: every distinct (lower-cased, trimmed) search query
    that led to a click, cart or purchase (`search.ltr.search_labels`), each item graded by
    the strongest thing any shopper did with it after that query. Queries searched fewer
    than `min_searches` times are left out; items not in `id_to_row` are skipped."""
    from shelfwise.search.ltr import search_labels

    labels = search_labels(events, window_minutes)
    if labels.empty:
        raise DataError(
            "the click log holds no search followed by a click, cart or purchase: "
            "nothing to tune search on (give a judged folder instead)"
        )
    labels = labels.assign(key=labels["query"].astype(str).str.lower().str.strip())
    labels["row"] = labels["item_id"].astype(str).map(id_to_row)
    labels = labels[labels["row"].notna()]
    counts = labels.groupby("key")["search_id"].nunique()
    keep = counts[counts >= min_searches].index
    labels = labels[labels["key"].isin(keep)]
    if labels.empty:
        raise DataError(
            f"no query was searched at least {min_searches} times with a click on a catalogue item"
        )
    best = labels.groupby(["key", "row"], sort=True)["grade"].max().reset_index()
    queries: list[str] = []
    judgements: list[dict[int, int]] = []
    for key, group in best.groupby("key", sort=True):
        queries.append(str(key))
        judgements.append(
            {int(r): int(g) for r, g in zip(group["row"], group["grade"], strict=True)}
        )
    return Judged(queries, judgements, source="click log")


def query_folds(groups: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """The fold of each query: whole groups per fold, groups spread at random."""
    from shelfwise.search.relevance import _fold_of_groups

    if folds < 2:
        raise ConfigError(f"folds must be at least 2 for cross-validation, got {folds}")
    n_groups = len(set(groups))
    if n_groups < folds:
        raise ConfigError(f"{n_groups} distinct queries cannot fill {folds} folds")
    return _fold_of_groups(groups, folds, seed)


def config_params(config: SearchConfig, space: Mapping[str, Param]) -> dict[str, Any]:
    """The values `config` has for the parameters of `space`."""
    dumped = config.model_dump()
    out: dict[str, Any] = {}
    for name in space:
        value: Any = dumped
        for part in name.split("."):
            if not isinstance(value, dict) or part not in value:
                raise ConfigError(f"search parameter {name!r} is not a SearchConfig field")
            value = value[part]
        out[name] = value
    return out


def apply_params(config: SearchConfig, params: Mapping[str, Any]) -> SearchConfig:
    """`config` with `params` set (dotted names reach into nested fields); `ConfigError`
    naming a parameter that is not a field, or a value the field refuses."""
    data = config.model_dump()
    for name, value in params.items():
        node = data
        parts = name.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"search parameter {name!r}: {part!r} is not a section")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"search parameter {name!r} is not a SearchConfig field")
        node[parts[-1]] = value
    try:
        return SearchConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"search parameters {dict(params)}: {exc}") from exc


class SearchEvaluator:
    """Scores a `SearchConfig` on judged queries over one service's catalogue: per-query
    nDCG@k of the first page (`SearchService.search` in the config's default mode, so a
    service with a dense retriever answers hybrid). Indexes for other BM25 settings are
    built from the catalogue's text analysed once."""

    def __init__(self, service: SearchService, judged: Judged, k: int = 10) -> None:
        self.service = service
        self.judged = judged
        self.k = k
        self._terms: dict[str, list[list[str]]] | None = None
        self._indexes: dict[str, BM25Index] = {}
        self.evaluations = 0

    def _analysed(self) -> dict[str, list[list[str]]]:
        if self._terms is None:
            docs = item_documents(self.service.items)
            analyzer = self.service.analyzer
            self._terms = {
                f: [[t for _, t in analyzer.pairs(text or "")] for text in texts]
                for f, texts in docs.items()
            }
        return self._terms

    def index_for(self, config: SearchConfig) -> BM25Index:
        """The service's index when `config.bm25` is the service's, else one built (and
        kept while the BM25 settings repeat) from the analysed catalogue."""
        base = self.service.index
        if config.bm25 == self.service.config.bm25:
            return base
        key = config.bm25.model_dump_json()
        hit = self._indexes.get(key)
        if hit is None:
            hit = BM25Index(config.bm25, self.service.analyzer).index_terms(self._analysed())
            # the same text: the words the typo and prefix rules read are the same too
            hit.surface_term = base.surface_term
            hit.surface_count = base.surface_count
            dead = np.flatnonzero(~base.alive)
            if dead.size:
                hit.delete(dead)
                hit.merge()
            self._indexes = {key: hit}  # one at a time: an index is catalogue-sized
        return hit

    def service_for(self, config: SearchConfig) -> SearchService:
        """The service answering with `config`."""
        return self.service.with_config(config, self.index_for(config))

    def rankings(self, config: SearchConfig, which: np.ndarray) -> dict[int, np.ndarray]:
        """The top-k rows `config` answers each query of `which` (a boolean mask) with."""
        service = self.service_for(config)
        return {
            i: np.asarray(
                service.search(self.judged.queries[i], per_page=self.k, facets=()).rows,
                dtype=np.int64,
            )
            for i in np.flatnonzero(which).tolist()
        }

    def per_query(
        self,
        config: SearchConfig,
        which: np.ndarray | None = None,
        keep: dict[int, np.ndarray] | None = None,
    ) -> np.ndarray:
        """nDCG@k of each query (NaN for queries outside `which`, a boolean mask); the
        rankings go into `keep` when given."""
        n = len(self.judged.queries)
        pick = np.ones(n, dtype=bool) if which is None else np.asarray(which, dtype=bool)
        out = np.full(n, np.nan)
        ranked = self.rankings(config, pick)
        if keep is not None:
            keep.update(ranked)
        idx = list(ranked)
        metrics = judged_metrics(
            [ranked[i] for i in idx], [self.judged.judgements[i] for i in idx], self.k
        )
        out[idx] = metrics["ndcg"].to_numpy()
        self.evaluations += 1
        return out


class SearchTuneSettings(BaseModel):
    """How `tune_search` runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(default=40, ge=1, le=10_000)
    """Trials per study (each fold's and the final one), the starting configuration first."""
    folds: int = Field(default=5, ge=0, le=50)
    """Query-level cross-validation folds (0: no cross-validation, only the final study)."""
    time_budget: float | None = Field(default=None, gt=0)
    """Seconds for the whole run, shared evenly by the studies (None: trials decide)."""
    seed: int = 0
    k: int = Field(default=10, ge=1, le=100)
    dense: bool | None = None
    """Tune the fusion parameters (`DENSE_SPACE`): None when the service has a dense
    retriever."""
    params: tuple[str, ...] | None = None
    """Only these parameters of the space (None: all)."""


@dataclass
class SearchTuneResult:
    """What `tune_search` found: the config to serve, its parameters, the cross-validated
    comparison with the starting configuration and how the studies went."""

    config: SearchConfig
    params: dict[str, Any]
    default_params: dict[str, Any]
    cv: dict[str, Any]
    final: dict[str, Any]
    trials: int
    seconds: float
    source: str = ""
    oof_rankings: list[np.ndarray] = field(default_factory=list)
    """Per query, the top-k rows of the parameters tuned without it (empty without CV)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "source": self.source,
            "params": self.params,
            "default_params": self.default_params,
            "cv": self.cv,
            "final": self.final,
            "trials": self.trials,
            "seconds": round(self.seconds, 2),
        }


def _space(
    service: SearchService, settings: SearchTuneSettings, given: Mapping[str, Param] | None
) -> SearchSpace:
    dense = settings.dense if settings.dense is not None else service.dense is not None
    if dense and service.dense is None:
        raise ConfigError("dense tuning asked for, but the service has no dense retriever")
    space: SearchSpace = dict(SEARCH_SPACE) if given is None else dict(given)
    if dense and given is None:
        space.update(DENSE_SPACE)
    config_params(service.config, space)  # every name is a field
    fields = service.config.bm25.fields
    for name in list(space):
        if name.startswith("bm25.fields.") and name.split(".", 2)[2] not in fields:
            del space[name]
    if settings.params is not None:
        unknown = sorted(set(settings.params) - set(space))
        if unknown:
            raise ConfigError(
                f"params: {', '.join(unknown)} not in the search space; choose from "
                f"{', '.join(space)}"
            )
        space = {n: p for n, p in space.items() if n in settings.params}
    if not space:
        raise ConfigError("nothing to tune: the search space is empty")
    return space


class _Clock:
    """Progress of the whole run: trials done out of planned, ETA from the pace so far or
    the budget."""

    def __init__(self, planned: int, budget: float | None) -> None:
        self.planned = planned
        self.budget = budget
        self.start = time.perf_counter()
        self.done = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def eta(self) -> float:
        pace = self.elapsed() / max(self.done, 1)
        left = pace * max(self.planned - self.done, 0)
        if self.budget is not None:
            left = min(left, max(self.budget - self.elapsed(), 0.0))
        return left


def _study(
    evaluator: SearchEvaluator,
    base: SearchConfig,
    space: SearchSpace,
    which: np.ndarray,
    settings: SearchTuneSettings,
    seed: int,
    budget: float | None,
    clock: _Clock,
    label: str,
) -> tuple[dict[str, Any], float, int]:
    """(best params, their mean nDCG on `which`, trials run) of one study over `which`."""
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, settings.trials))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial(config_params(base, space))
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        params = draw(space, trial)
        try:
            config = apply_params(base, params)
        except ConfigError:
            return float("nan")
        return float(np.nanmean(evaluator.per_query(config, which)))

    def progress(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        clock.done += 1
        best = study.best_value if study.best_trial is not None else float("nan")
        log.info(
            "tune-search %s: trial %d/%d nDCG@%d %.4f (best %.4f), %.0fs elapsed, ETA %.0fs",
            label,
            trial.number + 1,
            settings.trials,
            settings.k,
            trial.value if trial.value is not None else float("nan"),
            best,
            clock.elapsed(),
            clock.eta(),
        )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(
        objective,
        n_trials=settings.trials,
        timeout=budget,
        callbacks=[progress],
        catch=(ConfigError,),
    )
    done = [t for t in study.trials if t.value is not None and not math.isnan(t.value)]
    if not done:
        raise ConfigError(f"tune-search {label}: no trial finished (budget too small?)")
    best = max(done, key=lambda t: (t.value, -t.number))
    log.info("tune-search %s: best %.4f after %d trials (%.0fs)", label, best.value,
             len(study.trials), time.perf_counter() - started)  # fmt: skip
    return dict(best.params), float(best.value or 0.0), len(study.trials)


def tune_search(
    service: SearchService,
    judged: Judged,
    settings: SearchTuneSettings | None = None,
    space: Mapping[str, Param] | None = None,
) -> SearchTuneResult:
    """Tune `service`'s ranking parameters on `judged` (see the module doc): the
    cross-validated comparison of the tuned and the starting parameters, then the
    parameters tuned on every query. `space` replaces the default space (`SEARCH_SPACE`,
    plus `DENSE_SPACE` with a dense retriever; `settings.params` picks from either)."""
    settings = settings or SearchTuneSettings()
    if not judged.queries:
        raise DataError("no judged queries to tune on")
    t0 = time.perf_counter()
    base = service.config
    space = _space(service, settings, space)
    evaluator = SearchEvaluator(service, judged, settings.k)
    n = len(judged.queries)
    studies = settings.folds + 1
    budget = None if settings.time_budget is None else settings.time_budget / studies
    clock = _Clock(settings.trials * studies, settings.time_budget)
    log.info(
        "tune-search: %d queries (%s), %d parameters, %d folds, %d trials per study%s",
        n, judged.source or "judgements", len(space), settings.folds, settings.trials,
        "" if budget is None else f", {budget:.0f}s per study",
    )  # fmt: skip
    default_scores = evaluator.per_query(base)
    cv: dict[str, Any] = {"folds": [], "k": settings.k, "queries": n}
    oof: dict[int, np.ndarray] = {}
    trials = 0
    if settings.folds:
        fold_of = query_folds(judged.groups, settings.folds, settings.seed)
        tuned_scores = np.full(n, np.nan)
        for f in range(settings.folds):
            train = fold_of != f
            params, train_score, ran = _study(
                evaluator, base, space, train, settings, settings.seed + 1 + f, budget,
                clock, f"fold {f + 1}/{settings.folds}",
            )  # fmt: skip
            trials += ran
            held = ~train
            scores = evaluator.per_query(apply_params(base, params), held, oof)
            tuned_scores[held] = scores[held]
            cv["folds"].append(
                {
                    "fold": f,
                    "queries": int(held.sum()),
                    "train_ndcg": round(train_score, 4),
                    "default_ndcg": round(float(np.mean(default_scores[held])), 4),
                    "tuned_ndcg": round(float(np.mean(scores[held])), 4),
                    "params": _rounded(params),
                }
            )
        cv["default"] = round(float(np.mean(default_scores)), 4)
        cv["tuned"] = round(float(np.mean(tuned_scores)), 4)
        if judged.types:
            cv["by_type"] = _by_type(judged.types, default_scores, tuned_scores)
        cv["per_query"] = {
            "default": [round(float(x), 4) for x in default_scores],
            "tuned": [round(float(x), 4) for x in tuned_scores],
        }
    params, score, ran = _study(
        evaluator, base, space, np.ones(n, dtype=bool), settings, settings.seed, budget,
        clock, "all queries",
    )  # fmt: skip
    trials += ran
    config = apply_params(base, params)
    final = {
        "ndcg": round(score, 4),
        "default_ndcg": round(float(np.mean(default_scores)), 4),
        "note": "on the queries it was tuned on (optimistic); read cv for the honest number",
    }
    return SearchTuneResult(
        config=config,
        params=_rounded(params),
        default_params=_rounded(config_params(base, space)),
        cv=cv,
        final=final,
        trials=trials,
        seconds=time.perf_counter() - t0,
        source=judged.source,
        oof_rankings=[oof[i] for i in range(n)] if oof else [],
    )


def _rounded(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in params.items()}


def _by_type(
    types: Sequence[str], default: np.ndarray, tuned: np.ndarray
) -> dict[str, dict[str, float]]:
    frame = pd.DataFrame({"type": list(types), "default": default, "tuned": tuned})
    return {
        str(t): {
            "n": len(g),
            "default": round(float(g["default"].mean()), 4),
            "tuned": round(float(g["tuned"].mean()), 4),
        }
        for t, g in frame.groupby("type", sort=True)
    }
