"""A learned, personalised re-ranker: LightGBM lambdarank over candidate features.

Training data are graded (query, item) labels: a store's relevance judgements where it
has them (`PersonalisedReranker.train_judged`, over the candidates the store's own
`SearchService` hands its re-ranker, `service_candidates`), and otherwise the store's own
behaviour after a search (`search_labels`): an item the shopper clicked, carted or bought
in the same session within `window_minutes` of the search is relevant, graded purchase (3)
> add_to_cart (2) > click (1); every other candidate the first stage showed is grade 0
(shown, not clicked).

The model (`LTRReranker`) is a LightGBM booster trained with the lambdarank objective,
which optimises nDCG directly (Burges, "From RankNet to LambdaRank to LambdaMART", 2010).
It is saved as LightGBM's own text model file plus a JSON file with the configuration and
the feature names, so loading needs no pickle and refuses a model built for other features.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.data.schemas import CATEGORY_SEPARATOR
from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.search.base import SearchContext
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.features import FeatureBuilder, UserProfiles, numeric_attributes
from shelfwise.search.fusion import reciprocal_rank_fusion
from shelfwise.search.trees import load_booster
from shelfwise.search.understanding import QueryUnderstanding
from shelfwise.types import Results, top_k

if TYPE_CHECKING:
    import lightgbm as lgb

    from shelfwise.search.semantic import DenseIndex
    from shelfwise.search.service import SearchService
    from shelfwise.search.trees import TreeEnsemble

log = logging.getLogger(__name__)

__all__ = [
    "GRADES",
    "UNJUDGED",
    "CandidateRecorder",
    "LTRConfig",
    "LTRReranker",
    "PersonalisedReranker",
    "ServedCandidates",
    "search_labels",
    "service_candidates",
]

GRADES: dict[str, int] = {"click": 1, "add_to_cart": 2, "purchase": 3}
"""Relevance grade of an item by the strongest thing the shopper did with it after a search."""

_FORMAT_VERSION = 1
_RERANKER_FORMAT = 3
"""`reranker.json` format: 3 since the coordination, phrase, first-stage score and query
understanding features (2: per-field BM25 from the search index's `field_scores`; 1 had
one BM25 index per field); a model of another format is refused."""

MAX_TRAINING_SEARCHES = 5_000
"""`PersonalisedReranker.train` learns from at most this many labelled searches (a fixed
sample): each costs a first-stage retrieval and its features, so all of them grew the build
with the event log (25 minutes at 1.3M events); a few thousand lists are plenty for the
ranker, and the demo store (about 2,500) is unchanged."""

UNJUDGED = ("zero", "drop")
"""What training on judgements does with candidates nobody judged: `zero` counts them as
grade 0 (irrelevant), `drop` leaves them out of the training lists (they are still ranked
at test and serving time)."""


def search_labels(events: pd.DataFrame, window_minutes: float = 30.0) -> pd.DataFrame:
    """Graded labels from search -> click / add_to_cart / purchase events.

    Each click, cart or purchase is credited to the latest search before it in the same
    session (the same shopper when there is no session id) if it came within
    `window_minutes`; an item's grade is the strongest event credited to it (see `GRADES`).

    Returns one row per (search, item) with a positive grade: `search_id` (the search's
    event id), `user_id`, `query`, `timestamp` (of the search), `item_id`, `grade`.
    """
    need = {"event_id", "user_id", "item_id", "type", "query", "timestamp"}
    missing = need - set(events.columns)
    if missing:
        raise DataError(f"events lack columns {sorted(missing)} needed for search labels")
    if window_minutes <= 0:
        raise ConfigError(f"window_minutes must be > 0, got {window_minutes}")
    ev = events.loc[:, sorted(need | ({"session_id"} & set(events.columns)))].copy()
    session = ev["session_id"] if "session_id" in ev else pd.Series(None, index=ev.index)
    ev["_key"] = np.where(
        session.notna(), "s:" + session.astype(str), "u:" + ev["user_id"].astype(str)
    )
    ev["timestamp"] = pd.to_datetime(ev["timestamp"])
    ev["_order"] = np.arange(len(ev))
    q = ev["query"]
    is_search = (ev["type"] == "search") & q.notna() & (q.astype(str).str.strip() != "")
    searches = ev.loc[is_search, ["event_id", "user_id", "query", "timestamp", "_key", "_order"]]
    acts = ev.loc[ev["type"].isin(list(GRADES)) & ev["item_id"].notna()]
    out_cols = ["search_id", "user_id", "query", "timestamp", "item_id", "grade"]
    if searches.empty or acts.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in out_cols})
    searches = searches.rename(
        columns={"event_id": "search_id", "timestamp": "search_ts", "_order": "search_order"}
    )
    searches["_t"] = searches["search_ts"]
    acts = acts.assign(_t=acts["timestamp"]).sort_values(["_t", "_order"], kind="stable")
    searches = searches.sort_values(["_t", "search_order"], kind="stable")
    joined = pd.merge_asof(
        acts[["_key", "_t", "_order", "item_id", "type"]],
        searches[["_key", "_t", "search_id", "user_id", "query", "search_ts", "search_order"]],
        on="_t",
        by="_key",
        direction="backward",
        tolerance=pd.Timedelta(minutes=window_minutes),
    )
    joined = joined[joined["search_id"].notna()]
    joined["grade"] = joined["type"].map(GRADES).astype(np.int64)
    labels = (
        joined.groupby(["search_id", "item_id"], sort=False)
        .agg(
            user_id=("user_id", "first"),
            query=("query", "first"),
            timestamp=("search_ts", "first"),
            grade=("grade", "max"),
        )
        .reset_index()
    )
    return (
        labels.loc[:, out_cols]
        .sort_values(["timestamp", "search_id", "item_id"])
        .reset_index(drop=True)
    )


class LTRConfig(BaseModel):
    """LightGBM lambdarank hyper-parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(default=300, ge=1, le=10_000)
    learning_rate: float = Field(default=0.05, gt=0.0, le=1.0)
    num_leaves: int = Field(default=31, ge=2, le=4096)
    min_data_in_leaf: int = Field(default=50, ge=1)
    feature_fraction: float = Field(default=0.9, gt=0.0, le=1.0)
    bagging_fraction: float = Field(default=0.8, gt=0.0, le=1.0)
    lambda_l2: float = Field(default=1.0, ge=0.0)
    truncation_level: int = Field(default=20, ge=1)
    """Positions lambdarank optimises (`lambdarank_truncation_level`)."""
    num_threads: int = Field(default=1, ge=1)
    """Threads; more than one only pays on large data and idle cores (OpenMP spins)."""
    seed: int = 0


class LTRReranker:
    """LightGBM lambdarank model over `FeatureBuilder` rows."""

    def __init__(self, config: LTRConfig | None = None) -> None:
        self.config = config or LTRConfig()
        self.booster: lgb.Booster | TreeEnsemble | None = None
        self.feature_names: list[str] = []

    def _params(self) -> dict[str, object]:
        c = self.config
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_data_in_leaf": c.min_data_in_leaf,
            "feature_fraction": c.feature_fraction,
            "bagging_fraction": c.bagging_fraction,
            "bagging_freq": 1 if c.bagging_fraction < 1.0 else 0,
            "lambda_l2": c.lambda_l2,
            "lambdarank_truncation_level": c.truncation_level,
            "num_threads": c.num_threads,
            "seed": c.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }

    def fit(
        self,
        features: np.ndarray,
        grades: np.ndarray,
        group_sizes: Sequence[int] | np.ndarray,
        feature_names: Sequence[str] | None = None,
    ) -> LTRReranker:
        """Train on rows grouped by query (`group_sizes` rows each, in order).

        Queries whose candidates are all grade 0 carry no ranking signal and are dropped.
        """
        x = np.asarray(features, dtype=np.float32)
        y = np.asarray(grades, dtype=np.int64).ravel()
        sizes = np.asarray(group_sizes, dtype=np.int64).ravel()
        if x.ndim != 2 or x.shape[0] != y.size:
            raise DataError(f"features {x.shape} and grades {y.shape} do not line up")
        if sizes.sum() != y.size or (sizes <= 0).any():
            raise DataError(f"group sizes sum to {sizes.sum()} but there are {y.size} rows")
        if y.size and (y.min() < 0 or y.max() > 30):
            raise DataError(f"grades must be integers in [0, 30], got [{y.min()}, {y.max()}]")
        names = list(feature_names) if feature_names is not None else []
        if names and len(names) != x.shape[1]:
            raise DataError(f"{len(names)} feature names for {x.shape[1]} columns")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        useful = np.array(
            [
                y[s : s + n].max() > 0 and y[s : s + n].min() < y[s : s + n].max()
                for s, n in zip(starts, sizes, strict=True)
            ],
            dtype=bool,
        )
        if not useful.any():
            raise DataError(
                "no query has both relevant and non-relevant candidates: nothing to learn from"
            )
        rows = np.concatenate(
            [np.arange(s, s + n) for s, n, u in zip(starts, sizes, useful, strict=True) if u]
        )
        self.feature_names = names or [f"f{i}" for i in range(x.shape[1])]
        import lightgbm as lgb  # only to train; a loaded model may score without it

        data = lgb.Dataset(
            x[rows],
            label=y[rows],
            group=sizes[useful],
            feature_name=self.feature_names,
            free_raw_data=True,
        )
        log.info("training lambdarank on %d queries, %d rows", int(useful.sum()), rows.size)
        self.booster = lgb.train(self._params(), data, num_boost_round=self.config.n_estimators)
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores of feature rows (higher is better)."""
        if self.booster is None:
            raise NotFittedError("LTRReranker.fit() or load() must be called first")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise DataError(
                f"expected {len(self.feature_names)} feature columns, got shape {x.shape}"
            )
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.predict(x, num_threads=self.config.num_threads))

    def rerank(
        self,
        builder: FeatureBuilder,
        query: str,
        candidates: Results,
        user_id: str | None = None,
        k: int | None = None,
    ) -> Results:
        """Re-order a first stage's candidates (1-D Results) for `query` and shopper."""
        if builder.names != self.feature_names:
            raise ConfigError(
                "the feature builder's features differ from the model's: retrain the "
                f"re-ranker (model: {self.feature_names}, builder: {builder.names})"
            )
        ids = candidates.ids[candidates.ids >= 0]
        scores = self.predict(builder.features(query, ids, user_id))
        order = np.lexsort((np.arange(ids.size), -scores))[: k if k is not None else None]
        return Results(ids[order].astype(np.int64), scores[order].astype(np.float32))

    def feature_importance(self) -> dict[str, float]:
        """Total gain per feature, largest first."""
        if self.booster is None:
            raise NotFittedError("LTRReranker.fit() or load() must be called first")
        gain = self.booster.feature_importance(importance_type="gain")
        pairs = sorted(zip(self.feature_names, gain, strict=True), key=lambda p: -p[1])
        return {name: float(g) for name, g in pairs}

    def save(self, directory: Path) -> None:
        """Write `ltr.model.txt` (LightGBM text format) and `ltr.json`."""
        if self.booster is None:
            raise NotFittedError("nothing to save: fit the re-ranker first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(directory / "ltr.model.txt"))
        meta = {
            "format": _FORMAT_VERSION,
            "config": self.config.model_dump(),
            "feature_names": self.feature_names,
        }
        (directory / "ltr.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> LTRReranker:
        """Read a model written by `save`."""
        directory = Path(directory)
        missing = [f for f in ("ltr.json", "ltr.model.txt") if not (directory / f).is_file()]
        if missing:
            raise DataError(f"{directory} is not a saved re-ranker: missing {missing}")
        meta = json.loads((directory / "ltr.json").read_text())
        if meta.get("format") != _FORMAT_VERSION:
            raise DataError(f"{directory}: unsupported re-ranker format {meta.get('format')}")
        model = cls(LTRConfig(**meta["config"]))
        model.feature_names = [str(n) for n in meta["feature_names"]]
        model.booster = load_booster(directory / "ltr.model.txt")
        return model


def _first_stage(builder: FeatureBuilder, query: str, depth: int, q_vec: np.ndarray | None) -> Any:
    """RRF of the BM25F and dense top-`depth` lists (dense left out without an index)."""
    scores = builder.bm25.score(query)
    scores[scores <= 0] = -np.inf
    lists = [top_k(scores, depth)]
    if builder.dense is not None and q_vec is not None:
        res = builder.dense.search_vectors(q_vec[None, :], depth)
        keep = res.ids[0] >= 0
        lists.append(Results(res.ids[0][keep], res.scores[0][keep]))
    return reciprocal_rank_fusion(lists)


class PersonalisedReranker:
    """The learned re-ranker as a `search.base.Reranker` for `SearchService`.

    `train` learns from a store's own events: events before `history_fraction` of the time
    span are the history (popularity, shopper profiles), and every later search with a
    click, cart or purchase is a training query over its first-stage candidates (RRF of
    BM25F and dense top-`depth`), labelled by `search_labels`. Features of a search never
    see the events that label it.

    At serving time the feature builder reads the service's catalogue and its own BM25
    index (per-field scores through `BM25Index.field_scores`; no index of its own), and its
    `dense` index when that is a `DenseIndex` and the model was trained with one,
    `uses_dense` (a model trained without the dense features saw them as 0, so they stay 0;
    a model trained with them gets 0 only from a service without a dense index);
    popularity comes from all the training events, and the shopper's affinities from the
    history the request carries (`SearchContext.history` rows and weights). The feature
    state is kept per service and follows `SearchService.revision`: after a catalogue
    change only the changed rows are recomputed (`SearchService.changes_since`), so a
    write never makes the next search rebuild it. Saved as the LightGBM text model plus
    `reranker.json` and `item_stats.npz` (no pickle).
    """

    def __init__(
        self,
        model: LTRReranker,
        item_ids: Sequence[str],
        popularity: np.ndarray,
        purchases: np.ndarray,
        attribute_keys: Sequence[str] = (),
        uses_dense: bool = False,
        corrects_query: bool = False,
    ) -> None:
        if not (len(item_ids) == popularity.size == purchases.size):
            raise DataError("item_ids, popularity and purchases must have one entry per item")
        self.model = model
        self.item_ids = [str(i) for i in item_ids]
        self.popularity = np.asarray(popularity, dtype=np.float64)
        self.purchases = np.asarray(purchases, dtype=np.float64)
        self.attribute_keys = list(attribute_keys)
        #: Whether the model learned from the dense features (query-item and
        #: query-category cosine); the serving builder computes them only then.
        self.uses_dense = bool(uses_dense)
        #: Whether the text features read the query with the service's typo corrections
        #: applied (`SearchService.parse(...).corrected`), as the judged re-ranker does; a
        #: re-ranker trained from events reads the query as typed.
        self.corrects_query = bool(corrects_query)
        self._row_of = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self._state: _FeatureState | None = None
        #: How often the whole feature state was built (a new service, index or dense
        #: index, or a change log that no longer reaches back): the work updates avoid.
        self.full_builds = 0

    @classmethod
    def train(
        cls,
        items: pd.DataFrame,
        events: pd.DataFrame,
        dense: DenseIndex | None = None,
        config: LTRConfig | None = None,
        window_minutes: float = 30.0,
        history_fraction: float = 2 / 3,
        depth: int = 100,
        index: BM25Index | None = None,
        now: datetime | pd.Timestamp | None = None,
        max_queries: int | None = MAX_TRAINING_SEARCHES,
    ) -> PersonalisedReranker:
        """Learn from `events` over the catalogue `items` (row = item index). `index` is the
        BM25 index over exactly these rows that serving will read (the search service's);
        without one, an index of the same fields is built here. Events later than `now`
        (default: the wall clock) are ignored. At most `max_queries` labelled searches
        (None: all) are learnt from, a fixed random sample of them when there are more."""
        if not 0.0 < history_fraction < 1.0:
            raise ConfigError(f"history_fraction must be in (0, 1), got {history_fraction}")
        items = items.reset_index(drop=True)
        # events after `now` (default: the wall clock) are poison from before the write
        # paths refused it; one in the year 9999 would put the cut there and leave no labels
        latest = pd.Timestamp(now if now is not None else pd.Timestamp.now(tz="UTC"))
        if latest.tzinfo is not None:
            latest = latest.tz_convert("UTC").tz_localize(None)
        ts = pd.to_datetime(events["timestamp"])
        if ts.dt.tz is not None:
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        keep = (ts <= latest).to_numpy()
        if not keep.all():
            events, ts = events[keep], ts[keep]
        cut = ts.min() + (ts.max() - ts.min()) * history_fraction
        labels = search_labels(events, window_minutes)
        labels = labels[pd.to_datetime(labels["timestamp"]) >= cut]
        if labels.empty:
            raise DataError(
                "no search after the history cut was followed by a click, cart or purchase: "
                "nothing to learn from (record search events with the query and session)"
            )
        attrs = numeric_attributes(items)
        builder = FeatureBuilder(
            items, history=events[ts < cut], dense=dense, item_features=attrs, index=index
        )
        row_of = {item_id: i for i, item_id in enumerate(items["item_id"].astype(str))}
        feats: list[np.ndarray] = []
        grades: list[np.ndarray] = []
        sizes: list[int] = []
        groups = list(labels.groupby("search_id", sort=False))
        if max_queries is not None and len(groups) > max_queries:
            keep_groups = np.sort(
                np.random.default_rng(0).choice(len(groups), max_queries, replace=False)
            )
            log.info("learning from %d of %d labelled searches", max_queries, len(groups))
            groups = [groups[i] for i in keep_groups]
        # the re-ranker sees what query understanding leaves of the query, as in serving
        understanding = _understanding(items, builder)
        reads = [understanding.read(str(g["query"].iloc[0])) for _, g in groups]
        queries = [r.text for r in reads]
        q_vecs = dense.encode_queries(queries) if dense is not None else None
        for n, (_, group) in enumerate(groups):
            q_vec = q_vecs[n] if q_vecs is not None else None
            first = _first_stage(builder, queries[n], depth, q_vec)
            cands = first.ids
            if cands.size == 0:
                continue
            judged = {
                row_of[str(i)]: int(g)
                for i, g in zip(group["item_id"], group["grade"], strict=True)
                if str(i) in row_of
            }
            user = str(group["user_id"].iloc[0])
            feats.append(
                builder.features(
                    queries[n],
                    cands,
                    user,
                    query_vector=q_vec,
                    first_stage=first.scores,
                    understood=reads[n],
                )
            )
            grades.append(np.array([judged.get(int(c), 0) for c in cands], dtype=np.int64))
            sizes.append(cands.size)
        if not feats:
            raise DataError("no training search retrieved any candidates")
        model = LTRReranker(config).fit(
            np.vstack(feats), np.concatenate(grades), sizes, builder.names
        )
        full = _item_stats(items, events)
        return cls(
            model,
            items["item_id"].astype(str).tolist(),
            *full,
            attribute_keys=list(attrs),
            uses_dense=dense is not None,
        )

    def _stats(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(popularity, purchases, numeric attributes) of catalogue rows, by item id."""
        where = np.array(
            [self._row_of.get(str(i), -1) for i in frame["item_id"].tolist()], dtype=np.int64
        )
        known = where >= 0
        pop = np.where(known, self.popularity[np.maximum(where, 0)], 0.0)
        buys = np.where(known, self.purchases[np.maximum(where, 0)], 0.0)
        return pop, buys, numeric_attributes(frame, self.attribute_keys)

    def builder_for(self, service: SearchService) -> FeatureBuilder:
        """The feature state for `service`, brought up to its `revision` (the caller holds
        the service's lock, so the catalogue does not move underneath)."""
        dense = None
        if self.uses_dense and service.dense is not None:
            from shelfwise.search.semantic import DenseIndex  # faiss: only with dense search

            dense = service.dense if isinstance(service.dense, DenseIndex) else None
        state = self._state
        if (
            state is not None
            and state.service() is service
            and state.builder.bm25 is service.index
            and state.builder.dense is dense
        ):
            if state.revision == service.revision:
                return state.builder
            rows = service.changes_since(state.revision)
            if rows is not None:
                frame = service.items
                rows = np.unique(
                    np.concatenate([rows, np.arange(state.builder.n_items, len(frame))])
                )
                # the two columns read, not a row slice of the whole (wide) frame
                part = pd.DataFrame(
                    {
                        c: frame[c].iloc[rows].to_numpy(dtype=object)
                        for c in ("item_id", "attributes")
                    }
                )
                pop, buys, attrs = self._stats(part)
                state.builder.update(frame, rows, pop, buys, attrs)
                state.revision = service.revision
                return state.builder
        frame = service.items.reset_index(drop=True)
        pop, buys, attrs = self._stats(frame)
        builder = FeatureBuilder(
            frame,
            dense=dense,
            item_features=attrs,
            popularity=pop,
            purchases=buys,
            index=service.index,
        )
        self.full_builds += 1
        self._state = _FeatureState(weakref.ref(service), service.revision, builder)
        return builder

    def rerank(self, candidates: Results, context: SearchContext) -> Results:
        """Re-score the candidates for the query and the shopper in `context`."""
        builder = self.builder_for(context.service)
        ids = candidates.ids[candidates.ids >= 0].astype(np.int64)
        if ids.size == 0:
            return Results(ids, np.empty(0, np.float32))
        x = self.features(candidates, context)
        if builder.names != self.model.feature_names:
            raise ConfigError("the catalogue's features differ from the model's: retrain it")
        scores = self.model.predict(x)
        order = np.lexsort((np.arange(ids.size), -scores))
        return Results(ids[order], scores[order].astype(np.float32))

    def features(self, candidates: Results, context: SearchContext) -> np.ndarray:
        """The feature rows of the (valid) candidates, as `rerank` scores them: the query
        and shopper from `context`, the first-stage scores from `candidates`."""
        builder = self.builder_for(context.service)
        valid = candidates.ids >= 0
        ids = candidates.ids[valid].astype(np.int64)
        history = None
        if context.history.size:
            history = (context.history, context.history_weights)
        first = np.asarray(candidates.scores, dtype=np.float64)[valid] if ids.size else None
        query = context.query
        if self.corrects_query and query.strip():
            parsed = context.service.parse(query)
            if parsed.corrected:
                query = " ".join(parsed.corrected.get(t, t) for t in parsed.tokens)
        return builder.features(
            query,
            ids,
            context.user,
            history=history,
            first_stage=first,
            understood=context.understood,
        )

    @classmethod
    def for_service(
        cls,
        service: SearchService,
        events: pd.DataFrame | None = None,
        config: LTRConfig | None = None,
    ) -> PersonalisedReranker:
        """An untrained re-ranker over `service`'s rows (popularity and purchases from
        `events`, zeros without; dense features when the service has a `DenseIndex`):
        `features` works at once, `rerank` after `fit`."""
        items = service.items.reset_index(drop=True)
        if events is not None and not events.empty:
            pop, buys = _item_stats(items, events)
        else:
            pop, buys = np.zeros(len(items)), np.zeros(len(items))
        uses_dense = False
        if service.dense is not None:
            from shelfwise.search.semantic import DenseIndex  # faiss: only with dense search

            uses_dense = isinstance(service.dense, DenseIndex)
        reranker = cls(
            LTRReranker(config),
            items["item_id"].astype(str).tolist(),
            pop,
            buys,
            attribute_keys=list(numeric_attributes(items)),
            uses_dense=uses_dense,
            corrects_query=True,
        )
        reranker.model.feature_names = reranker.builder_for(service).names
        return reranker

    @classmethod
    def train_judged(
        cls,
        service: SearchService,
        queries: Sequence[str],
        judgements: Sequence[dict[int, int]],
        events: pd.DataFrame | None = None,
        config: LTRConfig | None = None,
        unjudged: Literal["zero", "drop"] = "zero",
        users: Sequence[str | None] | None = None,
    ) -> PersonalisedReranker:
        """Learn from graded judgements (per query: service row -> grade) over the
        candidates `service` hands its re-ranker for each query (`service_candidates`);
        `unjudged` candidates count as grade 0 or are left out (see `UNJUDGED`). The
        service's own re-ranker is not used (nor changed)."""
        if len(queries) != len(judgements):
            raise DataError(f"{len(queries)} queries for {len(judgements)} judgement sets")
        reranker = cls.for_service(service, events, config)
        served = service_candidates(service, queries, users)
        feats, grades, judged = reranker.judged_rows(served, judgements)
        return reranker.fit(feats, grades, judged, unjudged)

    def judged_rows(
        self, served: Sequence[ServedCandidates], judgements: Sequence[dict[int, int]]
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """(feature rows, grades, judged mask) of each query's served candidates (empty
        arrays for a query with none); unjudged candidates get grade 0."""
        width = len(self.model.feature_names)
        feats: list[np.ndarray] = []
        grades: list[np.ndarray] = []
        judged: list[np.ndarray] = []
        for got, qrels in zip(served, judgements, strict=True):
            if got.context is None or got.rows.size == 0:
                feats.append(np.zeros((0, width), np.float32))
                grades.append(np.zeros(0, np.int64))
                judged.append(np.zeros(0, bool))
                continue
            feats.append(self.features(Results(got.rows, got.scores), got.context))
            grades.append(np.array([max(qrels.get(int(r), 0), 0) for r in got.rows], np.int64))
            judged.append(np.array([int(r) in qrels for r in got.rows], dtype=bool))
        return feats, grades, judged

    def fit(
        self,
        feats: Sequence[np.ndarray],
        grades: Sequence[np.ndarray],
        judged: Sequence[np.ndarray] | None = None,
        unjudged: Literal["zero", "drop"] = "zero",
    ) -> PersonalisedReranker:
        """Train the model on per-query feature rows and grades (queries without rows are
        skipped); with `unjudged="drop"` only the rows `judged` marks are learnt from. A
        leaf needs `min_data_in_leaf` rows, or 5% of the rows when that is fewer (a small
        judged folder would otherwise leave no split to make)."""
        if unjudged not in UNJUDGED:
            raise ConfigError(f"unjudged must be one of {', '.join(UNJUDGED)}, got {unjudged!r}")
        xs, ys, sizes = [], [], []
        for n, (x, y) in enumerate(zip(feats, grades, strict=True)):
            if unjudged == "drop":
                if judged is None:
                    raise ConfigError('unjudged="drop" needs the judged masks')
                x, y = x[judged[n]], y[judged[n]]
            if y.size:
                xs.append(x)
                ys.append(y)
                sizes.append(y.size)
        if not sizes:
            raise DataError("no query has candidates to learn from")
        names = list(self.model.feature_names)
        config = self.model.config
        leaf = min(config.min_data_in_leaf, max(1, sum(sizes) // 20))
        model = LTRReranker(config.model_copy(update={"min_data_in_leaf": leaf}))
        model.fit(np.vstack(xs), np.concatenate(ys), sizes, names)
        self.model = model
        return self

    def save(self, directory: Path) -> None:
        """Write the model, `reranker.json` and `item_stats.npz`."""
        directory = Path(directory)
        self.model.save(directory)
        np.savez(directory / "item_stats.npz", popularity=self.popularity, purchases=self.purchases)
        meta = {
            "format": _RERANKER_FORMAT,
            "item_ids": self.item_ids,
            "attribute_keys": self.attribute_keys,
            "uses_dense": self.uses_dense,
            "corrects_query": self.corrects_query,
        }
        (directory / "reranker.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> PersonalisedReranker:
        """Read what `save` wrote."""
        directory = Path(directory)
        if not (directory / "reranker.json").is_file():
            raise DataError(f"{directory} is not a saved personalised re-ranker")
        meta = json.loads((directory / "reranker.json").read_text())
        if meta.get("format") != _RERANKER_FORMAT:
            raise DataError(
                f"{directory}: re-ranker format {meta.get('format', 1)} was trained on other "
                f"features (this version reads format {_RERANKER_FORMAT}); rebuild the bundle "
                "(shelfwise build --rebuild)"
            )
        with np.load(directory / "item_stats.npz", allow_pickle=False) as stats:
            pop, buys = stats["popularity"], stats["purchases"]
        return cls(
            LTRReranker.load(directory),
            meta["item_ids"],
            pop,
            buys,
            meta["attribute_keys"],
            uses_dense=bool(meta.get("uses_dense", False)),
            corrects_query=bool(meta.get("corrects_query", False)),
        )


@dataclass
class ServedCandidates:
    """What a `SearchService` hands its re-ranker for one query: the candidate rows and
    first-stage scores (best first) and the `SearchContext` (None when the query reaches
    no re-ranking: nothing matched, or nothing was left to search); `top` holds the rows
    of the un-reranked first page."""

    rows: np.ndarray
    scores: np.ndarray
    context: SearchContext | None
    top: np.ndarray


class CandidateRecorder:
    """A `search.base.Reranker` that keeps the candidates and context it is given and
    returns the candidates unchanged (the service's first-stage order)."""

    def __init__(self) -> None:
        self.candidates: Results | None = None
        self.context: SearchContext | None = None

    def rerank(self, candidates: Results, context: SearchContext) -> Results:
        """Record, and change nothing."""
        self.candidates, self.context = candidates, context
        return candidates


def service_candidates(
    service: SearchService,
    queries: Sequence[str],
    users: Sequence[str | None] | None = None,
    k: int = 10,
    mode: str | None = None,
) -> list[ServedCandidates]:
    """The candidates `service` hands a re-ranker for each query (the best
    `SearchConfig.rerank_depth` of `mode`, default its default mode, after query
    understanding, filters and boosts), as its own `search` makes them. The service's
    re-ranker is swapped for a `CandidateRecorder` while this runs (build-time work: not
    while the service serves)."""
    if users is not None and len(users) != len(queries):
        raise DataError(f"{len(users)} users for {len(queries)} queries")
    saved = service.reranker
    out: list[ServedCandidates] = []
    started = time.perf_counter()
    try:
        for n, query in enumerate(queries):
            recorder = CandidateRecorder()
            service.reranker = recorder
            user = users[n] if users is not None else None
            page = service.search(query, per_page=k, facets=(), user=user, mode=mode)
            got, context = recorder.candidates, recorder.context
            top = np.asarray(page.rows, dtype=np.int64)
            if got is None or context is None:
                empty = np.zeros(0, np.int64)
                out.append(ServedCandidates(empty, np.zeros(0, np.float32), None, top))
                continue
            valid = got.ids >= 0
            rows = got.ids[valid].astype(np.int64)
            scores = np.asarray(got.scores, np.float32)[valid]
            out.append(ServedCandidates(rows, scores, context, top))
    finally:
        service.reranker = saved
    log.info(
        "re-ranker candidates of %d queries in %.1fs (%.1f per query)",
        len(out),
        time.perf_counter() - started,
        float(np.mean([c.rows.size for c in out])) if out else 0.0,
    )
    return out


def _understanding(items: pd.DataFrame, builder: FeatureBuilder) -> QueryUnderstanding:
    """Query understanding over the brands and categories of `items` (what the search
    service reads from its filter index), analysed as the builder's index is."""
    understanding = QueryUnderstanding(builder.analyzer)

    def labels(column: str) -> list[str]:
        if column not in items:
            return []
        values = items[column].dropna().astype(str).str.strip()
        return list(dict.fromkeys(v for v in values.tolist() if v))

    understanding.update(labels("brand"), labels("category"), CATEGORY_SEPARATOR)
    return understanding


@dataclass
class _FeatureState:
    """The re-ranker's feature state for one service, as of one catalogue revision."""

    service: weakref.ReferenceType[SearchService]
    revision: int
    builder: FeatureBuilder


def _item_stats(items: pd.DataFrame, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(weighted popularity, purchases) per catalogue row, weighted as `FeatureBuilder` does."""
    n = len(items)
    none = np.full(n, -1, dtype=np.int64)
    ids = items["item_id"].astype(str).tolist()
    prof = UserProfiles(ids, none, none, none, np.full(n, np.nan), events)
    return prof.popularity, prof.purchases
