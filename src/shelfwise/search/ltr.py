"""A learned, personalised re-ranker: LightGBM lambdarank over candidate features.

Training data are graded (query, item) labels: a dataset's relevance judgements where it
has them, and otherwise the store's own behaviour after a search (`search_labels`): an
item the shopper clicked, carted or bought in the same session within `window_minutes` of
the search is relevant, graded purchase (3) > add_to_cart (2) > click (1); every other
candidate the first stage showed is grade 0 (shown, not clicked).

The model (`LTRReranker`) is a LightGBM booster trained with the lambdarank objective,
which optimises nDCG directly (Burges, "From RankNet to LambdaRank to LambdaMART", 2010).
It is saved as LightGBM's own text model file plus a JSON file with the configuration and
the feature names, so loading needs no pickle and refuses a model built for other features.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.search.bm25 import BM25Index
from shelfwise.search.features import FeatureBuilder, UserProfiles, numeric_attributes
from shelfwise.search.fusion import reciprocal_rank_fusion
from shelfwise.search.trees import load_booster
from shelfwise.types import Results, top_k

if TYPE_CHECKING:
    import lightgbm as lgb

    from shelfwise.search.base import SearchContext
    from shelfwise.search.semantic import DenseIndex
    from shelfwise.search.service import SearchService
    from shelfwise.search.trees import TreeEnsemble

log = logging.getLogger(__name__)

__all__ = ["GRADES", "LTRConfig", "LTRReranker", "PersonalisedReranker", "search_labels"]

GRADES: dict[str, int] = {"click": 1, "add_to_cart": 2, "purchase": 3}
"""Relevance grade of an item by the strongest thing the shopper did with it after a search."""

_FORMAT_VERSION = 1
_RERANKER_FORMAT = 2
"""`reranker.json` format: 2 since the per-field BM25 features come from the search
index's `field_scores` (1 had one BM25 index per field); a format-1 model is refused."""


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
    ) -> PersonalisedReranker:
        """Learn from `events` over the catalogue `items` (row = item index). `index` is the
        BM25 index over exactly these rows that serving will read (the search service's);
        without one, an index of the same fields is built here. Events later than `now`
        (default: the wall clock) are ignored."""
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
        queries = [str(g["query"].iloc[0]) for _, g in groups]
        q_vecs = dense.encode_queries(queries) if dense is not None else None
        for n, (_, group) in enumerate(groups):
            q_vec = q_vecs[n] if q_vecs is not None else None
            cands = _first_stage(builder, queries[n], depth, q_vec).ids
            if cands.size == 0:
                continue
            judged = {
                row_of[str(i)]: int(g)
                for i, g in zip(group["item_id"], group["grade"], strict=True)
                if str(i) in row_of
            }
            user = str(group["user_id"].iloc[0])
            feats.append(builder.features(queries[n], cands, user, query_vector=q_vec))
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
        history = None
        if context.history.size:
            history = (context.history, context.history_weights)
        x = builder.features(context.query, ids, context.user, history=history)
        if builder.names != self.model.feature_names:
            raise ConfigError("the catalogue's features differ from the model's: retrain it")
        scores = self.model.predict(x)
        order = np.lexsort((np.arange(ids.size), -scores))
        return Results(ids[order], scores[order].astype(np.float32))

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
        )


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
