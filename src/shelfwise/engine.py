"""The facade: store -> trained models + search index -> one versioned bundle on disk.

A bundle is a folder `<artifacts>/<version>/` with `manifest.json`, the item vocabulary,
one sub-folder per model and the search index. It records the store fingerprint it was built
from, so `ensure_bundle` reuses it as long as the store has not changed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise import __version__
from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.schemas import CATEGORY_SEPARATOR, EVENT_TYPES, normalise_category
from shelfwise.data.sequences import OrderedInteractions, Sequences
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, DataError, ShelfwiseError, UnknownIdError
from shelfwise.recommenders import Recommender, create, load_model
from shelfwise.recommenders.trending import Trending
from shelfwise.search.bm25 import BM25Index
from shelfwise.store import Store
from shelfwise.types import Results, top_k

log = logging.getLogger(__name__)

DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {"neighbors": 100, "shrink": 10.0},
    # serving fallbacks: trending per category, and content vectors for cold-start items
    "trending": {"half_life_days": 7.0},
    "tfidf": {},
}
DEFAULT_RECOMMENDER = "itemknn"
HISTORY_LIMIT = 200
# Serving: a session ends after 30 quiet minutes; its latest SESSION_ITEMS items drive the
# session step. Items added after training join personalised lists when their content
# cosine with the user's profile reaches COLD_MIN_SIMILARITY; content similarity counts
# CONTENT_WEIGHT against collaborative similarity in the session step.
SESSION_GAP = timedelta(minutes=30)
SESSION_ITEMS = 10
COLD_MIN_SIMILARITY = 0.05
CONTENT_WEIGHT = 0.3
BASKET_TYPES = ("add_to_cart", "purchase")
COPURCHASE_SHRINK = 2.0
SEARCH_FIELDS = ("title", "brand", "category", "description")


@dataclass
class Bundle:
    """Everything a server needs to answer: catalog snapshot, models, search index."""

    directory: Path
    manifest: dict[str, Any]
    items: pd.DataFrame
    item_vocab: Vocabulary
    models: dict[str, Recommender]
    search_index: BM25Index
    weights: InteractionWeights = field(default_factory=InteractionWeights)
    #: The learned search re-ranker (`search.ltr.PersonalisedReranker`), trained from the
    #: store's search -> click / cart / purchase events; None when there were none.
    search_reranker: Any = None

    @property
    def fingerprint(self) -> str:
        """The store fingerprint the bundle was built from."""
        return str(self.manifest.get("fingerprint", ""))

    def describe(self, res: Results, extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Dense ids + scores -> result dicts with the catalog's id, title and fields."""
        out = []
        for idx, score in zip(res.ids.tolist(), res.scores.tolist(), strict=True):
            if idx < 0:
                continue
            row = self.items.iloc[idx]
            out.append(
                {
                    "item_id": str(row["item_id"]),
                    "title": row["title"],
                    "category": row["category"] or None,
                    "brand": row["brand"] or None,
                    "price": None if pd.isna(row["price"]) else float(row["price"]),
                    "score": round(float(score), 6),
                    **(extra or {}),
                }
            )
        return out


def _catalog_frame(store: Store, interaction_items: np.ndarray) -> pd.DataFrame:
    """The catalog, plus placeholder rows for items seen in events but not in the catalog."""
    items = store.items()
    known = set(items["item_id"])
    orphans = [i for i in pd.unique(interaction_items) if i not in known]
    if orphans:
        log.warning("%d items have events but no catalog row; they are not served", len(orphans))
        extra = pd.DataFrame({"item_id": orphans, "title": None, "in_stock": False})
        items = pd.concat([items, extra], ignore_index=True)
    return items.reset_index(drop=True)


def _weighted_events(events: pd.DataFrame, weights: InteractionWeights) -> pd.DataFrame:
    """The item events that count under `weights` (types weighing 0 are left out)."""
    events = events[events["item_id"].notna()]
    if "type" in events.columns:
        counts = events["type"].map(lambda t: weights.weight_of(str(t)) > 0).astype(bool)
        events = events[counts.to_numpy()]
    return events


def build_bundle(
    store: Store,
    directory: Path,
    models: dict[str, dict[str, Any]] | None = None,
    weights: InteractionWeights | None = None,
    activate: bool = True,
    search_rerank: bool = True,
    search_dense: bool | None = None,
) -> Bundle:
    """Train the models and build the search index from the store; save under `directory`.

    With `activate` the `CURRENT` pointer names the new bundle (what `ensure_bundle` and a
    restarted server load); without, it is only written (the API's train job can build one
    while another is served). `search_dense` (default: `$SHELFWISE_SEARCH_MODE` is hybrid
    or semantic) trains the search re-ranker with the dense-similarity features, embedding
    the catalogue through the on-disk embedding cache; the manifest records it."""
    started = time.perf_counter()
    if search_dense is None:
        from shelfwise.search.semantic import search_mode_from_env

        search_dense = search_mode_from_env() != "lexical"
    models = models or DEFAULT_MODELS
    weights = weights or InteractionWeights()
    fingerprint = store.fingerprint()
    interactions = store.interactions()
    items = _catalog_frame(store, interactions["item_id"].to_numpy())
    if items.empty:
        raise DataError("the store has no items: ingest a catalog first (shelfwise ingest)")
    item_vocab = Vocabulary(items["item_id"].astype(str).tolist())
    data = build_interactions(interactions, weights=weights, items=item_vocab)
    log.info(
        "training on %d users x %d items, %d interactions", data.n_users, data.n_items, data.nnz
    )
    fitted: dict[str, Recommender] = {}
    timings: dict[str, float] = {}
    ordered: OrderedInteractions | None = None
    for name, params in models.items():
        t0 = time.perf_counter()
        model = create(name, **params)
        if model.sequential and ordered is None:
            frame = _weighted_events(interactions, weights)
            ordered = OrderedInteractions(
                data.matrix, Sequences.from_frame(frame, data.users, data.items, drop_unknown=True)
            )
        if isinstance(model, Trending):  # decays by event age, so it reads the events
            fitted[name] = model.fit_events(interactions, item_vocab, items, weights)
        else:
            fitted[name] = model.fit(ordered if model.sequential else data, items)
        timings[name] = round(time.perf_counter() - t0, 3)
        log.info("trained %s in %.2fs", name, timings[name])
    t0 = time.perf_counter()
    catalog = items[items["title"].notna()]
    docs = {f: items[f].fillna("").astype(str).tolist() for f in SEARCH_FIELDS}
    index = BM25Index().index(docs)
    timings["search_index"] = round(time.perf_counter() - t0, 3)
    reranker = None
    if search_rerank:
        t0 = time.perf_counter()
        reranker = _train_search_reranker(store, items, dense=search_dense)
        timings["search_reranker"] = round(time.perf_counter() - t0, 3)

    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = directory / version
    target.mkdir(parents=True, exist_ok=False)
    item_vocab.save(target / "items.vocab.json")
    items.to_parquet(target / "catalog.parquet", index=False)
    for name, model in fitted.items():
        model.save(target / "models" / name)
    index.save(target / "search")
    if reranker is not None:
        reranker.save(target / "search_reranker")
    manifest = {
        "version": version,
        "shelfwise": __version__,
        "fingerprint": fingerprint,
        "store": store.url,
        "created_at": datetime.now(UTC).isoformat(),
        "models": {name: params for name, params in models.items()},
        "weights": weights.model_dump(mode="json"),
        "search": {
            "dense": bool(search_dense),
            "reranker": reranker is not None,
            "reranker_dense": bool(getattr(reranker, "uses_dense", False)),
        },
        "counts": {
            "items": len(catalog),
            "users": int(data.n_users),
            "interactions": int(data.nnz),
        },
        "seconds": {**timings, "total": round(time.perf_counter() - started, 3)},
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    if activate:
        (directory / "CURRENT").write_text(version)
    return Bundle(target, manifest, items, item_vocab, fitted, index, weights, reranker)


def _train_search_reranker(store: Store, items: pd.DataFrame, dense: bool = False) -> Any:
    """The LightGBM re-ranker learned from the store's own searches and what followed them,
    or None (logged) when the store holds no search that led to a click, cart or purchase.
    With `dense` it learns from the dense-similarity features too (MiniLM embeddings of the
    catalogue, read from or written to the embedding cache)."""
    from shelfwise.search.ltr import PersonalisedReranker  # lightgbm only when needed

    events = store.events()
    if events.empty or not (events["type"] == "search").any():
        log.info("no search events: search results are not re-ranked")
        return None
    catalog = items[items["title"].notna()].reset_index(drop=True)
    index = None
    if dense:
        from shelfwise.search.semantic import DenseIndex

        try:
            index = DenseIndex.from_catalog(catalog)
        except ShelfwiseError as exc:
            log.warning("re-ranker trained without dense features: %s", exc)
    try:
        reranker = PersonalisedReranker.train(catalog, events, dense=index)
    except DataError as exc:
        log.info("search re-ranker not trained: %s", exc)
        return None
    log.info("trained the search re-ranker")
    return reranker


def load_bundle(directory: Path) -> Bundle:
    """Load one bundle folder (the one holding manifest.json)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    items = pd.read_parquet(directory / "catalog.parquet")
    vocab = Vocabulary.load(directory / "items.vocab.json")
    models = {name: load_model(directory / "models" / name) for name in manifest["models"]}
    index = BM25Index.load(directory / "search")
    weights = InteractionWeights(**manifest.get("weights", {}))
    reranker = None
    if (directory / "search_reranker").is_dir():
        from shelfwise.search.ltr import PersonalisedReranker

        reranker = PersonalisedReranker.load(directory / "search_reranker")
    return Bundle(directory, manifest, items, vocab, models, index, weights, reranker)


def current_bundle_dir(root: Path) -> Path | None:
    """The active bundle under an artifacts root, if any."""
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None
    target = root / pointer.read_text().strip()
    return target if (target / "manifest.json").exists() else None


def ensure_bundle(
    store: Store, root: Path, rebuild: bool = False, search_dense: bool | None = None
) -> tuple[Bundle, bool]:
    """The current bundle if it matches the store, else a fresh one. Returns (bundle, built).

    `search_dense` True / False also asks for a bundle whose search re-ranker was (not)
    trained with dense retrieval, rebuilding one built the other way; None takes either
    (and builds as `build_bundle` defaults)."""
    current = current_bundle_dir(root)
    if current is not None and not rebuild:
        try:
            bundle = load_bundle(current)
        except (OSError, ValueError, KeyError, ShelfwiseError) as exc:
            log.warning("bundle %s is unreadable (%s); rebuilding", current, exc)
        else:
            dense = bool(bundle.manifest.get("search", {}).get("dense", False))
            if bundle.fingerprint != store.fingerprint():
                log.info("store changed since bundle %s was built; rebuilding", current.name)
            elif search_dense is not None and dense != search_dense:
                log.info(
                    "bundle %s was built %s dense search; rebuilding",
                    current.name,
                    "with" if dense else "without",
                )
            else:
                return bundle, False
    return build_bundle(store, root, search_dense=search_dense), True


@dataclass(frozen=True)
class RecContext:
    """Where a recommendation is shown: page type, the item on the page, a category, the
    browser session. Every field is optional."""

    page_type: str | None = None
    item_id: str | None = None
    category: str | None = None
    session_id: str | None = None


@dataclass
class Recommendation:
    """An answer: the first fallback step that contributed, the items (each naming its
    `source` step) and the model bundle version."""

    strategy: str
    items: list[dict[str, Any]]
    model_version: str
    model: str = ""  # the personalisation model, e.g. "itemknn" or "itemknn@v0003"


@dataclass(frozen=True)
class _Catalog:
    """The live catalog: the bundle's items plus items added since, as column arrays.

    Immutable: a catalog change builds a new one and swaps the reference, so readers on
    other threads always see a consistent snapshot.
    """

    frame: pd.DataFrame
    vocab: Vocabulary
    alive: np.ndarray  # titled and not deleted: searchable, has a product page
    servable: np.ndarray  # alive and in stock: recommendable
    item_id: np.ndarray
    title: np.ndarray
    category: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    category_masks: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, frame: pd.DataFrame, alive: np.ndarray | None = None) -> _Catalog:
        """`alive` marks the rows not deleted (default: all)."""
        frame = frame.reset_index(drop=True)
        titles = frame["title"].to_numpy(dtype=object)
        live = np.asarray(pd.notna(titles), dtype=bool)
        if alive is not None:
            live &= alive
        ok = live.copy()
        if "in_stock" in frame.columns:
            ok &= frame["in_stock"].fillna(True).to_numpy(dtype=bool)

        def text(column: str) -> np.ndarray:
            values = frame[column].to_numpy(dtype=object) if column in frame else None
            if values is None:
                return np.full(len(frame), "", dtype=object)
            return np.where(pd.isna(values), "", values).astype(object)

        price = (
            pd.to_numeric(frame["price"], errors="coerce").to_numpy(dtype=np.float64)
            if "price" in frame.columns
            else np.full(len(frame), np.nan)
        )
        return cls(
            frame=frame,
            vocab=Vocabulary(frame["item_id"].astype(str).tolist(), name="item_id"),
            alive=live,
            servable=np.asarray(ok, dtype=bool),
            item_id=frame["item_id"].astype(str).to_numpy(dtype=object),
            title=titles,
            category=text("category"),
            brand=text("brand"),
            price=price,
        )

    def __len__(self) -> int:
        return len(self.item_id)

    def in_category(self, category: str) -> np.ndarray:
        """Mask of the items in `category` or below it (cached per category; read-only)."""
        mask = self.category_masks.get(category)
        if mask is None:
            index = self.category_masks.get("\x00index")
            if index is None:  # category codes per item, and the codes under each path
                codes, names = pd.factorize(pd.Series(self.category, dtype=object))
                under: dict[str, list[int]] = {}
                for code, name in enumerate(names.tolist()):
                    parts = str(name).split(CATEGORY_SEPARATOR)
                    for depth in range(1, len(parts) + 1):
                        under.setdefault(CATEGORY_SEPARATOR.join(parts[:depth]), []).append(code)
                index = np.asarray(codes, dtype=np.int64)
                self.category_masks["\x00index"] = index
                self.category_masks.update(
                    {f"\x00codes:{k}": np.asarray(v, dtype=np.int64) for k, v in under.items()}
                )
            wanted = self.category_masks.get(f"\x00codes:{category}")
            if wanted is None:
                mask = np.zeros(len(self.category), dtype=bool)
            else:
                mask = np.isin(index, wanted)
            mask.flags.writeable = False
            if len(self.category_masks) < 100_000:
                self.category_masks[category] = mask
        return mask

    def describe(self, idx: int, score: float, source: str) -> dict[str, Any]:
        price = self.price[idx]
        return {
            "item_id": self.item_id[idx],
            "title": self.title[idx],
            "category": self.category[idx] or None,
            "brand": self.brand[idx] or None,
            "price": None if np.isnan(price) else float(price),
            "score": round(float(score), 6),
            "source": source,
        }


class _Picker:
    """Fills up to k slots from successive fallback steps, never repeating an item."""

    def __init__(self, catalog: _Catalog, k: int, blocked: np.ndarray) -> None:
        self.catalog = catalog
        self.k = k
        self.allowed = catalog.servable & ~blocked
        self.items: list[dict[str, Any]] = []
        self.strategy = ""

    @property
    def full(self) -> bool:
        return len(self.items) >= self.k

    def take(self, scores: np.ndarray, source: str, positive_only: bool = True) -> None:
        """Add the best allowed items of `scores` (padded/truncated to the catalog size)."""
        if self.full:
            return
        n = len(self.catalog)
        m = min(n, scores.shape[0])
        head = np.asarray(scores[:m], dtype=np.float64)
        # the candidates: allowed, finite (and positive): usually far fewer than n items
        ok = self.allowed[:m] & np.isfinite(head)
        if positive_only:
            ok &= head > 0
        candidates = np.flatnonzero(ok)
        if not candidates.size:
            return
        best = top_k(head[candidates], self.k - len(self.items))
        res = Results(candidates[best.ids], best.scores)
        added = False
        for idx, score in zip(res.ids.tolist(), res.scores.tolist(), strict=True):
            if not np.isfinite(score):
                continue
            self.items.append(self.catalog.describe(idx, score, source))
            self.allowed[idx] = False
            added = True
        if added and not self.strategy:
            self.strategy = source


def _normalised(scores: np.ndarray) -> np.ndarray:
    top = float(np.max(scores)) if scores.size else 0.0
    return scores / top if top > 0 else scores


class EventLog:
    """An in-memory replica of the latest events of every user, following the store's log.

    Serving reads a user's events on every request; a point query per request costs a
    column store like DuckDB a scan (tens of milliseconds on a million events), so the engine
    keeps the latest `limit` events per user in numpy arrays (loaded once, one sorted read)
    plus a per-user delta of newer events, and follows the log with `Store.tail_events`:
    before answering, it fetches the events above its watermark (a primary-key range query;
    at most every `tail_seconds`, and at once after a write through this process). Sequence
    numbers grow in commit order, so nothing is missed, whichever process wrote the event.

    Erasure in this process drops the user at once (under the tail lock, so no tail in
    flight can bring the erased events back); `reload()` rebuilds the replica, which the
    engine does when another process erased someone.
    """

    def __init__(self, store: Store, limit: int = HISTORY_LIMIT, tail_seconds: float = 0.0):
        self.store = store
        self.limit = limit
        self.tail_seconds = tail_seconds
        self._lock = threading.RLock()
        self.tail_lock = threading.Lock()
        self._dirty = False
        self._last_tail = 0.0
        self.reload()

    def reload(self) -> None:
        """Read the latest `limit` events of every user from the store."""
        with self.tail_lock:
            watermark = self.store.last_seq()
            frame = self.store.tail_events(0)
            if len(frame):
                watermark = max(watermark, int(frame["seq"].max()))
            base = _LogBase.build(frame, self.limit)
            with self._lock:
                self._base = base
                self._delta: dict[str, list[tuple[Any, ...]]] = {}
                self._watermark = watermark
                self._last_tail = time.monotonic()

    def mark_dirty(self) -> None:
        """This process wrote events: the next read tails the log whatever the interval."""
        self._dirty = True

    def tail(self, force: bool = False) -> int:
        """Fetch events above the watermark; returns how many arrived."""
        now = time.monotonic()
        if not force and not self._dirty and now - self._last_tail < self.tail_seconds:
            return 0
        with self.tail_lock:
            self._dirty = False
            self._last_tail = time.monotonic()
            if self.store.last_seq() <= self._watermark:  # a tiny read: nothing new
                return 0
            new = self.store.tail_events(self._watermark)
            if new.empty:
                return 0
            micros = new["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
            rows = zip(
                new["user_id"].tolist(),
                new["item_id"].tolist(),
                new["type"].tolist(),
                new["value"].tolist(),
                micros.tolist(),
                new["session_id"].tolist(),
                new["seq"].tolist(),
                strict=True,
            )
            with self._lock:
                for user, *row in rows:
                    bucket = self._delta.setdefault(str(user), [])
                    bucket.append(tuple(row))
                    if len(bucket) > 2 * self.limit:
                        del bucket[: len(bucket) - self.limit]
                self._watermark = max(self._watermark, int(new["seq"].max()))
            return len(new)

    def events(self, user_id: str) -> pd.DataFrame:
        """The user's latest `limit` events, newest first (RECENT_EVENT_COLUMNS)."""
        self.tail()
        with self._lock:
            base = self._base.rows(user_id)
            delta = list(self._delta.get(user_id, ()))
        if delta:
            item, kind, value, micros, session, seq = (list(c) for c in zip(*delta, strict=True))
            extra = {
                "item_id": np.array(item, dtype=object),
                "type": np.array(kind, dtype=object),
                "value": np.array(value, dtype=np.float64),
                "timestamp": np.array(micros, dtype=np.int64),
                "session_id": np.array(session, dtype=object),
                "seq": np.array(seq, dtype=np.int64),
            }
            base = {k: np.concatenate([base[k], extra[k]]) for k in base}
        order = np.lexsort((base["seq"], base["timestamp"]))[::-1][: self.limit]
        columns = {k: v[order] for k, v in base.items()}
        columns["timestamp"] = columns["timestamp"].astype(np.int64).view("datetime64[us]")
        return pd.DataFrame(columns, copy=False)

    def drop(self, user_id: str) -> None:
        """Forget a user (hold `tail_lock` around the store's erasure and this call)."""
        with self._lock:
            self._delta.pop(user_id, None)
            self._base = self._base.without(user_id)


@dataclass(frozen=True)
class _LogBase:
    """The loaded events, sorted by (user, timestamp, seq), the latest `limit` per user.

    Text columns are held as int32 codes into a table of distinct values (the last entry
    None), so a million events cost a few tens of megabytes, not one Python string each.
    """

    spans: dict[str, tuple[int, int]]
    codes: dict[str, np.ndarray]  # item_id, type, session_id -> int32 codes (-1: None)
    values: dict[str, np.ndarray]  # the distinct values per text column, None appended
    value: np.ndarray
    timestamp: np.ndarray  # int64 microseconds
    seq: np.ndarray

    TEXT = ("item_id", "type", "session_id")

    @classmethod
    def build(cls, frame: pd.DataFrame, limit: int) -> _LogBase:
        users, names = pd.factorize(frame["user_id"].astype(str))
        micros = frame["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        seq = frame["seq"].to_numpy(dtype=np.int64)
        order = np.lexsort((seq, micros, users))
        users = users[order]
        sizes = np.bincount(users, minlength=len(names))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        position = np.arange(len(users)) - starts[users]
        keep = position >= sizes[users] - limit
        order, users = order[keep], users[keep]
        kept = np.minimum(sizes, limit)
        kept_starts = np.concatenate([[0], np.cumsum(kept)[:-1]]).astype(np.int64)
        spans = {
            str(name): (int(a), int(a + n))
            for name, a, n in zip(names, kept_starts, kept, strict=True)
            if n
        }
        codes, values = {}, {}
        for name in cls.TEXT:
            column = frame[name].to_numpy(dtype=object)[order]
            code, distinct = pd.factorize(column, use_na_sentinel=True)
            codes[name] = code.astype(np.int32)
            values[name] = np.array([*list(distinct), None], dtype=object)
        return cls(
            spans=spans,
            codes=codes,
            values=values,
            value=pd.to_numeric(frame["value"]).to_numpy(dtype=np.float64)[order],
            timestamp=micros[order],
            seq=seq[order],
        )

    def rows(self, user_id: str) -> dict[str, np.ndarray]:
        """The user's loaded events as columns (oldest first)."""
        a, b = self.spans.get(user_id, (0, 0))
        out = {name: self.values[name][self.codes[name][a:b]] for name in self.TEXT}
        out.update(value=self.value[a:b], timestamp=self.timestamp[a:b], seq=self.seq[a:b])
        return out

    def without(self, user_id: str) -> _LogBase:
        """The same base without one user's events: their rows are overwritten in place
        (no event of theirs stays in memory) and their span dropped."""
        if user_id not in self.spans:
            return self
        a, b = self.spans[user_id]
        for name in self.TEXT:
            self.codes[name][a:b] = -1
        self.value[a:b] = np.nan
        self.timestamp[a:b] = 0
        self.seq[a:b] = -1
        spans = dict(self.spans)
        del spans[user_id]
        return _LogBase(spans, self.codes, self.values, self.value, self.timestamp, self.seq)


class AlignedModel:
    """A recommender scored in the live catalog's index space.

    A bundle model shares the bundle's item indices (`items=None`): catalog items past its
    `n_items` (added after training) are unknown to it. A model trained elsewhere (a tuned
    version from the `ModelStore`) brings its own item vocabulary; its indices are mapped
    to the catalog's by id, and catalog items it never saw are unknown to it.
    """

    def __init__(
        self,
        model: Recommender,
        items: Vocabulary | None = None,
        catalog: Vocabulary | None = None,
        label: str | None = None,
    ) -> None:
        self.model = model
        self.name = model.name
        self.label = label or model.name
        self.sequential = bool(getattr(model, "sequential", False))
        self.to_model: np.ndarray | None = None
        if items is not None:
            if catalog is None:
                raise ValueError("a model with its own item vocabulary needs the catalog's")
            if len(items) != model.n_items:
                raise ConfigError(
                    f"{self.label}: the saved item vocabulary has {len(items):,} ids but the "
                    f"model {model.n_items:,} items"
                )
            self.to_model = np.asarray(items.encode(catalog.ids, unknown="minus_one"))
            if not (self.to_model >= 0).any():
                raise ConfigError(
                    f"{self.label} shares no item with the served catalog; train it on this "
                    "store's data"
                )

    def known(self, n: int) -> np.ndarray:
        """Mask over the first n catalog items: those the model can score."""
        mask = np.zeros(n, dtype=bool)
        if self.to_model is None:
            mask[: min(n, self.model.n_items)] = True
        else:
            m = min(n, len(self.to_model))
            mask[:m] = self.to_model[:m] >= 0
        return mask

    def _to_model(self, idx: np.ndarray) -> np.ndarray:
        if self.to_model is None:
            return np.where(idx < self.model.n_items, idx, -1)
        inside = idx < len(self.to_model)
        out = np.full(idx.shape, -1, dtype=np.int64)
        out[inside] = self.to_model[idx[inside]]
        return out

    def scores(
        self, history: np.ndarray, weights: np.ndarray, sequence: np.ndarray, n: int
    ) -> np.ndarray:
        """Scores over the first n catalog items, scaled to 0..1 (0 where unknown)."""
        model = self.model
        if self.sequential:
            seq = self._to_model(sequence)
            seq = seq[seq >= 0]
            if not seq.size:
                return np.zeros(n)
            logits = np.asarray(model.score_sequences([seq])[0], dtype=np.float64)
            raw = np.zeros_like(logits)
            finite = np.isfinite(logits)
            if finite.any():  # softmax-like: positive, the best scoring 1
                raw[finite] = np.exp(logits[finite] - logits[finite].max())
        else:
            hist = self._to_model(history)
            keep = hist >= 0
            if not keep.any() or model.name == "popularity":
                return np.zeros(n)
            row = model.history_matrix(hist[keep], weights[keep])
            raw = _normalised(np.maximum(np.asarray(model.score(row)[0], np.float64), 0))
        out = np.zeros(n)
        if self.to_model is None:
            m = min(n, len(raw))
            out[:m] = raw[:m]
        else:
            m = min(n, len(self.to_model))
            mapped = self.to_model[:m]
            ok = mapped >= 0
            out[:m][ok] = raw[mapped[ok]]
        return out


class Engine:
    """Answers search and recommendation requests from a bundle plus the live store.

    Every recommendation request walks the fallback chain until k items are found:
    personalised (the chosen model on the user's history, plus content-based scores for
    items added since the bundle was built) -> session (items similar to what the user viewed
    in the current session and to the page's item) -> trending in the context's category
    (given, or the page item's, or the user's latest) -> globally popular. Each item names
    the step that produced it. Histories are read from the store at request time, so an
    acknowledged event changes the next answer without retraining.

    The catalog is live: `apply_items` / `remove_item` make a new or changed item servable
    at once, content-based (the bundle's content model vectorises new items with
    `add_items`) and in search (through the registered catalog listeners).
    """

    def __init__(
        self, store: Store, bundle: Bundle, sync: bool = True, tail_seconds: float = 0.0
    ) -> None:
        self.store = store
        self._lock = threading.RLock()
        self._erase_listeners: list[Callable[[str], None]] = []
        self._catalog_listeners: list[Callable[[pd.DataFrame, list[str]], None]] = []
        self._copurchase: tuple[sp.csr_matrix, np.ndarray] | None = None
        self._serving: tuple[Recommender, Vocabulary | None, str] | None = None
        self.log = EventLog(store, tail_seconds=tail_seconds)
        self._serving_aligned: AlignedModel | None = None
        self.bundle = bundle
        self._catalog = _Catalog.build(bundle.items)
        self._reset_listeners: list[Callable[[], None]] = []
        self._catalog_stamp = ""
        self._items_written: datetime | None = None  # newest catalog write applied
        self._erasures = 0
        if sync:
            self._catalog_stamp = store.catalog_stamp()
            self._erasures = store.erasure_count()
            self.sync_catalog()

    # -- bundle and catalog -----------------------------------------------------------------
    @property
    def model_version(self) -> str:
        """The active bundle's version."""
        return str(self.bundle.manifest.get("version", ""))

    @property
    def catalog(self) -> _Catalog:
        """The live catalog snapshot."""
        return self._catalog

    @property
    def _servable(self) -> np.ndarray:
        return self._catalog.servable

    def _unservable(self) -> np.ndarray:
        return np.flatnonzero(~self._catalog.servable)

    def content_model(self) -> Any | None:
        """The bundle's content-based model (it can vectorise new items), if any."""
        for model in self.bundle.models.values():
            if hasattr(model, "add_items") and hasattr(model, "vectors"):
                return model
        return None

    def activate(self, bundle: Bundle) -> None:
        """Serve another bundle from now on (hot swap); the live catalog is re-synced."""
        with self._lock:
            self.bundle = bundle
            self._catalog = _Catalog.build(bundle.items)
            self._copurchase = None
            self.sync_catalog()
            if self._serving is not None:
                self.set_serving_model(*self._serving)

    def set_serving_model(
        self, model: Recommender | None, items: Vocabulary | None = None, label: str = ""
    ) -> None:
        """Personalise with `model` (trained on `items`, e.g. a tuned version) instead of the
        bundle's default; None goes back to the default. `ConfigError` if it cannot be
        aligned with the catalog."""
        with self._lock:
            if model is None:
                self._serving, self._serving_aligned = None, None
                return
            aligned = AlignedModel(model, items, self._catalog.vocab, label or model.name)
            self._serving, self._serving_aligned = (model, items, aligned.label), aligned

    def serving_model(self, name: str | None = None) -> Recommender | AlignedModel:
        """The model a personalised request uses: `name` from the bundle, else the serving
        model set by `set_serving_model`, else the bundle's default."""
        if name is None and self._serving_aligned is not None:
            return self._serving_aligned
        return self._model(name or DEFAULT_RECOMMENDER)

    @property
    def serving_label(self) -> str:
        """Name of the model personalised requests use by default."""
        aligned = self._serving_aligned
        return aligned.label if aligned is not None else DEFAULT_RECOMMENDER

    def sync_catalog(self) -> None:
        """Apply store items the bundle does not know (added after it was built) and hide
        bundle items the store no longer has."""
        with self._lock:
            stored, self._items_written = self.store.items_written_since(None)
            known = set(self._catalog.item_id.tolist())
            new = stored[~stored["item_id"].isin(known)]
            if len(new):
                self.apply_items(new, notify=False)
            gone = ~pd.Series(self._catalog.item_id).isin(set(stored["item_id"])).to_numpy()
            if gone.any():
                alive = self._catalog.alive & ~gone
                self._catalog = _Catalog.build(self._catalog.frame, alive)

    def add_catalog_listener(self, listener: Callable[[pd.DataFrame, list[str]], None]) -> None:
        """Call `listener(upserted_items, deleted_ids)` after every catalog change."""
        self._catalog_listeners.append(listener)

    def add_erase_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(user_id)` after a user is erased (to drop caches)."""
        self._erase_listeners.append(listener)

    def add_reset_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` when another process erased users: drop all per-user caches."""
        self._reset_listeners.append(listener)

    def refresh(self) -> dict[str, int]:
        """Catch up with writes made by other processes sharing the store (several API
        workers on PostgreSQL): catalogue changes are applied to the live catalogue (and
        the search listeners), and after an erasure anywhere every per-user cache is
        dropped. Cheap when nothing changed: two tiny queries. Returns what it did."""
        done = {"items": 0, "removed": 0, "reset": 0}
        stamp = self.store.catalog_stamp()
        if stamp != self._catalog_stamp:
            done["items"], done["removed"] = self._catch_up_catalog()
            self._catalog_stamp = stamp
        erasures = self.store.erasure_count()
        if erasures != self._erasures:
            self._erasures = erasures
            self.log.reload()
            with self._lock:
                self._copurchase = None
            for listener in self._reset_listeners:
                listener()
            done["reset"] = 1
        return done

    def _catch_up_catalog(self) -> tuple[int, int]:
        """Apply the items written since the last catch-up (by their `updated_at`), and hide
        items the store no longer has (checked only when the counts disagree). Returns
        (applied, hidden). The cost follows the changes, not the catalogue size."""
        written, newest = self.store.items_written_since(self._items_written)
        written = self._differing(written)  # rows at the watermark itself come again
        if len(written):
            self.apply_items(written)
        if newest is not None:
            self._items_written = newest
        cat = self._catalog
        gone = np.empty(0, dtype=np.int64)
        if int(cat.alive.sum()) != self.store.counts()["items"]:
            stored = np.asarray(self.store.item_ids(), dtype=object)
            gone = np.flatnonzero(cat.alive & ~np.isin(cat.item_id, stored))
        if gone.size:
            with self._lock:
                alive = self._catalog.alive.copy()
                alive[gone] = False
                self._catalog = _Catalog.build(self._catalog.frame, alive)
            removed = [str(i) for i in cat.item_id[gone]]
            for listener in self._catalog_listeners:
                listener(cat.frame.iloc[0:0], removed)
        return len(written), int(gone.size)

    def _differing(self, stored: pd.DataFrame) -> pd.DataFrame:
        """The rows of `stored` that are new or differ from the live catalogue."""
        if stored.empty:
            return stored
        cat = self._catalog
        columns = [c for c in stored.columns if c != "created_at" and c in cat.frame.columns]
        current = cat.frame.loc[cat.alive, columns]
        merged = stored.merge(
            current, on="item_id", how="left", suffixes=("", "_live"), indicator=True
        )
        differs = (merged["_merge"] == "left_only").to_numpy().copy()
        for column in columns:
            if column == "item_id":
                continue
            a, b = merged[column], merged[f"{column}_live"]
            differs |= np.asarray((a != b) & ~(a.isna() & b.isna()), dtype=bool)
        return stored[differs]

    def apply_items(self, items: pd.DataFrame, notify: bool = True) -> list[str]:
        """Make upserted catalog rows servable now (the store must already hold them).

        New items get the next indices and a content vector; changed items get their new
        fields (their content vector is refreshed by the next bundle build). Returns the
        ids of the new items.
        """
        if items.empty:
            return []
        with self._lock:
            cat = self._catalog
            frame = items.drop_duplicates("item_id", keep="last").reset_index(drop=True)
            ids = frame["item_id"].astype(str)
            known = ids.isin(set(cat.item_id.tolist())).to_numpy()
            merged = cat.frame.copy()
            alive = cat.alive.copy()
            if known.any():
                changed = frame[known].set_index("item_id")
                positions = cat.vocab.encode(changed.index.to_numpy(), unknown="minus_one")
                for column in changed.columns.intersection(merged.columns):
                    merged.loc[positions, column] = changed[column].to_numpy()
                alive[positions] = True
            new = frame[~known]
            if len(new):
                content = self.content_model()
                if content is not None and content.n_items == len(cat):
                    content.add_items(new.reset_index(drop=True))
                merged = pd.concat([merged, new], ignore_index=True)
                alive = np.concatenate([alive, np.ones(len(new), dtype=bool)])
            self._catalog = _Catalog.build(merged, alive)
            self._copurchase = None if len(new) else self._copurchase
        if notify:
            for listener in self._catalog_listeners:
                listener(frame, [])
        return new["item_id"].astype(str).tolist()

    def remove_item(self, item_id: str) -> bool:
        """Stop serving an item (after the store deleted it); False if it was not served."""
        with self._lock:
            cat = self._catalog
            idx = self.item_index(item_id)
            if idx is None or not cat.alive[idx]:
                return False
            alive = cat.alive.copy()
            alive[idx] = False
            self._catalog = _Catalog.build(cat.frame, alive)
        for listener in self._catalog_listeners:
            listener(cat.frame.iloc[0:0], [item_id])
        return True

    def item_index(self, item_id: str) -> int | None:
        """The live index of an item id, or None."""
        idx = self._catalog.vocab.encode([item_id], unknown="minus_one")
        return int(idx[0]) if idx[0] >= 0 else None

    def _known_item(self, item_id: str, cat: _Catalog | None = None) -> int:
        cat = cat or self._catalog
        found = cat.vocab.encode([item_id], unknown="minus_one")
        idx = int(found[0]) if found[0] >= 0 else None
        if idx is None or not cat.alive[idx]:
            raise UnknownIdError(f"no item with item_id '{item_id}' in the catalog")
        return idx

    # -- users --------------------------------------------------------------------------------
    def erase_user(self, user_id: str) -> dict[str, int]:
        """Right to be forgotten: delete the user's events and profile, drop every cache."""
        with self.log.tail_lock:  # no tail in flight can bring the erased events back
            counts = self.store.erase_user(user_id)
            self.log.drop(user_id)
        with self._lock:
            self._copurchase = None  # baskets counted the user's purchases
        for listener in self._erase_listeners:
            listener(user_id)
        return counts

    def user_events(self, user_id: str) -> pd.DataFrame:
        """The user's latest HISTORY_LIMIT events (newest first): item_id, type, value,
        timestamp, session_id, seq, from the in-memory replica of the event log, brought up
        to date with the store first (see `EventLog`): an event shows in the very next
        answer, whichever process wrote it."""
        return self.log.events(user_id)

    def _history(self, events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(live item indices, summed weights) of a user's events, weighted like
        `build_interactions` with the bundle's `InteractionWeights` (type weights, values,
        `min_value`, decay from the newest event, `binary`), in plain numpy: this runs on
        every request."""
        empty = np.empty(0, np.int64), np.empty(0, np.float32)
        ev = events[events["item_id"].notna()]
        if ev.empty:
            return empty
        weights = self.bundle.weights
        idx = np.asarray(
            self._catalog.vocab.encode(ev["item_id"].to_numpy(dtype=object), unknown="minus_one"),
            dtype=np.int64,
        )
        types = ev["type"].to_numpy(dtype=object)
        table = {t: weights.weight_of(t) for t in EVENT_TYPES}
        w = np.fromiter((table.get(t, 1.0) for t in types), dtype=np.float64, count=len(types))
        if weights.use_value:
            valued = np.isin(types, list(weights.use_value))
            if valued.any():
                values = ev["value"].to_numpy(dtype=np.float64)
                values = np.where(np.isnan(values), 1.0, values)
                w = np.where(valued, w * values, w)
                if weights.min_value is not None:
                    w = np.where(valued & (values < weights.min_value), np.nan, w)
        if weights.half_life_days is not None:
            micros = ev["timestamp"].to_numpy(dtype="datetime64[us]").astype(np.int64)
            age_days = (micros.max() - micros) / 86_400e6
            w = w * np.exp2(-age_days / weights.half_life_days)
        keep = (idx >= 0) & ~np.isnan(w) & (w != 0)
        if not keep.any():
            return empty
        items, inverse = np.unique(idx[keep], return_inverse=True)
        sums = np.bincount(inverse, weights=w[keep]).astype(np.float32)
        nonzero = sums != 0
        if weights.binary:
            sums[:] = 1.0
        return items[nonzero], sums[nonzero]

    def user_history(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The user's latest interactions, read from the store now: (item indices, weights)."""
        return self._history(self.user_events(user_id))

    def user_sequence(self, user_id: str) -> np.ndarray:
        """The user's latest item events read from the store now, as item indices oldest ->
        newest (repeats kept, types weighing 0 and unknown items left out): what a
        sequential model reads, so a new event changes the next answer without retraining."""
        return self._sequence(self.user_events(user_id))

    def _sequence(self, events: pd.DataFrame) -> np.ndarray:
        events = _weighted_events(events, self.bundle.weights)
        if events.empty:
            return np.empty(0, np.int64)
        idx = self._catalog.vocab.encode(events["item_id"], unknown="minus_one")
        idx = idx[::-1]  # the store gave newest first
        return np.asarray(idx[idx >= 0], dtype=np.int64)

    # -- scoring helpers ---------------------------------------------------------------------
    def _model(self, name: str) -> Recommender:
        if name not in self.bundle.models:
            raise ConfigError(
                f"model '{name}' is not in the active bundle; choose one of "
                f"{', '.join(sorted(self.bundle.models))}"
            )
        return self.bundle.models[name]

    def _model_scores(
        self, model: Recommender, history: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """A history-based model's scores (items it does not know score 0)."""
        keep = history < model.n_items
        hist = history[keep]
        if not hist.size:
            return np.zeros(0)
        w = None if weights is None else weights[keep]
        row = model.history_matrix(hist, w)
        return np.asarray(model.score(row)[0], dtype=np.float64)

    def _content_scores(
        self,
        history: np.ndarray,
        weights: np.ndarray | None = None,
        only: np.ndarray | None = None,
    ) -> np.ndarray:
        """Content cosine of each item with the history's profile; with `only`, just for
        those items (in that order; 0 for items the content model lacks)."""
        content = self.content_model()
        if content is None:
            return np.zeros(0 if only is None else len(only))
        if only is None:  # vectors @ profile: a matrix-vector product, no transpose
            keep = history < content.n_items
            if not keep.any():
                return np.zeros(0)
            w = None if weights is None else weights[keep]
            profile = content.profiles(content.history_matrix(history[keep], w))
            dense = profile.toarray().ravel() if sp.issparse(profile) else np.ravel(profile)
            return np.asarray(content.vectors @ dense, dtype=np.float64).ravel()
        out = np.zeros(len(only))
        keep = history < content.n_items
        inside = only < content.n_items
        if not keep.any() or not inside.any():
            return out
        w = None if weights is None else weights[keep]
        profile = content.profiles(content.history_matrix(history[keep], w))
        vectors = content.vectors[only[inside]]
        dots = profile @ vectors.T
        dots = dots.toarray() if sp.issparse(dots) else np.asarray(dots)
        out[inside] = np.asarray(dots, dtype=np.float64).ravel()
        return out

    def _popularity(self) -> np.ndarray:
        model = self.bundle.models.get("popularity")
        if model is None:
            return np.zeros(0)
        return np.asarray(getattr(model, "popularity", np.zeros(0)), dtype=np.float64)

    def _trend(self) -> np.ndarray:
        model = self.bundle.models.get("trending")
        trend = getattr(model, "trend", None)
        if trend is None or not len(trend):
            return self._popularity()
        return np.asarray(trend, dtype=np.float64)

    def _category_scores(self, category: str) -> np.ndarray:
        """Trending scores of the items in `category` (tiny positive floor: cold items count),
        -inf outside it."""
        cat = self._catalog
        mask = cat.in_category(category)
        scores = np.full(len(cat), -np.inf)
        trend = np.zeros(len(cat))
        base = self._trend()
        trend[: min(len(base), len(cat))] = base[: len(cat)]
        scores[mask] = trend[mask] + 1e-9
        return scores

    def _global_scores(self) -> np.ndarray:
        cat = self._catalog
        scores = np.zeros(len(cat))
        pop = self._popularity()
        scores[: min(len(pop), len(cat))] = pop[: len(cat)]
        return scores + 1e-9

    def _personal_scores(
        self,
        model: Recommender | AlignedModel,
        history: np.ndarray,
        weights: np.ndarray,
        sequence: np.ndarray,
    ) -> np.ndarray:
        """The model's scores for the user scaled to (0, 1], plus content-based scores of
        the items the model has not seen (added after training)."""
        n = len(self._catalog)
        aligned = model if isinstance(model, AlignedModel) else AlignedModel(model)
        scores = np.zeros(n)
        raw = aligned.scores(history, weights, sequence, n)
        scores[: len(raw)] = raw[:n]
        unknown = np.flatnonzero(~aligned.known(n))
        if unknown.size:  # items added after training: scored by their content
            content = self._content_scores(history, weights, only=unknown)
            scores[unknown] = np.where(content >= COLD_MIN_SIMILARITY, content, 0.0)
        return scores

    def _collab_scores(self, items: np.ndarray) -> np.ndarray:
        """Collaborative scores of items similar to `items`, scaled to 0..1."""
        cf = self.bundle.models.get(DEFAULT_RECOMMENDER)
        collab = np.zeros(0) if cf is None else self._model_scores(cf, items)
        return _normalised(np.maximum(collab, 0))

    def _similar_scores(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(collaborative, content) scores of items similar to `items`, each scaled to 0..1."""
        return self._collab_scores(items), self._content_scores(items)

    def _session_items(self, events: pd.DataFrame, context: RecContext) -> np.ndarray:
        """Items of the current session: the page's item, then the items of the session named
        by the context (else the user's latest session; without session ids, the events
        within SESSION_GAP of one another up to the latest)."""
        ids: list[str] = []
        if context.item_id:
            ids.append(context.item_id)
        ev = events[events["item_id"].notna()]
        if len(ev):
            session = context.session_id
            if session is None and pd.notna(ev["session_id"].iloc[0]):
                session = str(ev["session_id"].iloc[0])
            if session is not None:
                ev = ev[ev["session_id"] == session]
            else:
                ts = pd.to_datetime(ev["timestamp"]).to_numpy()
                gaps = (ts[:-1] - ts[1:]) > np.timedelta64(int(SESSION_GAP.total_seconds()), "s")
                cut = int(np.argmax(gaps)) + 1 if gaps.any() else len(ev)
                ev = ev.iloc[:cut]
            ids.extend(ev["item_id"].astype(str).head(SESSION_ITEMS).tolist())
        if not ids:
            return np.empty(0, np.int64)
        idx = self._catalog.vocab.encode(ids, unknown="minus_one")
        return np.asarray(pd.unique(idx[idx >= 0]), dtype=np.int64)

    def _context_category(self, context: RecContext, events: pd.DataFrame) -> str | None:
        if context.category:
            return normalise_category(context.category)
        cat = self._catalog
        candidates = [context.item_id] if context.item_id else []
        candidates += events["item_id"].dropna().astype(str).head(20).tolist()
        for item_id in candidates:
            found = cat.vocab.encode([item_id], unknown="minus_one")
            idx = int(found[0]) if found[0] >= 0 else None
            if idx is not None and cat.category[idx]:
                return str(cat.category[idx])
        return None

    # -- answers --------------------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        model: str | None = None,
        context: RecContext | None = None,
        exclude: Sequence[str] = (),
    ) -> Recommendation:
        """Up to k items for a user, walking the fallback chain (see the class doc).

        Items the user interacted with, the page's item and `exclude` are never returned.
        An unknown user is answered from the session, category and popularity steps.
        """
        context = context or RecContext()
        chosen = self.serving_model(model)
        cat = self._catalog
        events = self.user_events(user_id)
        history, weights = self._history(events)
        blocked = np.zeros(len(cat), dtype=bool)
        # the live catalogue may have grown (or been swapped) since `cat` was taken
        blocked[history[history < len(cat)]] = True
        for item_id in [*exclude, context.item_id]:
            idx = self.item_index(item_id) if item_id else None
            if idx is not None and idx < len(cat):
                blocked[idx] = True
        pick = _Picker(cat, k, blocked)
        if history.size and chosen.name != "popularity":
            sequence = self._sequence(events) if getattr(chosen, "sequential", False) else history
            pick.take(self._personal_scores(chosen, history, weights, sequence), "personalised")
        if not pick.full:
            session = self._session_items(events, context)
            if session.size:
                collab, content = self._similar_scores(session)
                scores = np.zeros(len(cat))
                scores[: len(collab)] += collab[: len(cat)]
                scores[: len(content)] += CONTENT_WEIGHT * content[: len(cat)]
                pick.take(scores, "session")
        if not pick.full:
            category = self._context_category(context, events)
            if category:
                pick.take(self._category_scores(category), "trending")
        if not pick.full:
            pick.take(self._global_scores(), "popular", positive_only=False)
        label = getattr(chosen, "label", chosen.name)
        return Recommendation(pick.strategy or "popular", pick.items, self.model_version, label)

    def similar(self, item_id: str, k: int = 10) -> Recommendation:
        """Items like `item_id`: collaborative neighbours, then content neighbours, then
        trending in its category, then popular. `UnknownIdError` for an unknown item."""
        cat = self._catalog
        idx = self._known_item(item_id, cat)
        blocked = np.zeros(len(cat), dtype=bool)
        if idx < len(cat):  # the catalogue may have been swapped meanwhile
            blocked[idx] = True
        pick = _Picker(cat, k, blocked)
        pick.take(self._collab_scores(np.array([idx])), "similar")
        if not pick.full:
            pick.take(self._content_scores(np.array([idx])), "content")
        if not pick.full and cat.category[idx]:
            pick.take(self._category_scores(str(cat.category[idx])), "trending")
        if not pick.full:
            pick.take(self._global_scores(), "popular", positive_only=False)
        return Recommendation(pick.strategy or "popular", pick.items, self.model_version)

    def copurchase(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """(items x items co-occurrence counts within baskets, baskets per item).

        A basket is a session's add-to-cart and purchase events (the user's day when the
        events carry no session id). Built from the store on first use and after a user is
        erased or the catalog grows.
        """
        with self._lock:
            if self._copurchase is not None:
                return self._copurchase
            cat = self._catalog
            ev = self.store.events(types=list(BASKET_TYPES))
            ev = ev[ev["item_id"].notna()]
            idx = cat.vocab.encode(ev["item_id"].astype(str).to_numpy(), unknown="minus_one")
            day = pd.to_datetime(ev["timestamp"]).dt.strftime("%Y-%m-%d")
            basket = ev["session_id"].where(ev["session_id"].notna(), ev["user_id"] + "|" + day)
            keep = idx >= 0
            codes, _ = pd.factorize(basket[keep])
            n = len(cat)
            b = sp.csr_matrix(
                (np.ones(int(keep.sum()), np.float32), (codes, idx[keep])),
                shape=(int(codes.max()) + 1 if codes.size else 0, n),
            )
            b.sum_duplicates()
            b.data[:] = 1.0
            co = sp.csr_matrix(b.T @ b)
            counts = np.asarray(co.diagonal(), dtype=np.float64)
            co.setdiag(0)
            co.eliminate_zeros()
            self._copurchase = (co, counts)
            return self._copurchase

    def bought_together(self, item_id: str, k: int = 10) -> Recommendation:
        """Items bought with `item_id` (confidence c_ij / (c_i + shrink) over baskets), then
        its collaborative neighbours, trending in its category, popular."""
        cat = self._catalog
        idx = self._known_item(item_id, cat)
        co, counts = self.copurchase()
        scores = np.zeros(len(cat))
        if idx < co.shape[0]:
            row = co.getrow(idx)
            inside = row.indices < len(cat)
            scores[row.indices[inside]] = row.data[inside] / (counts[idx] + COPURCHASE_SHRINK)
        blocked = np.zeros(len(cat), dtype=bool)
        if idx < len(cat):  # the catalogue may have been swapped meanwhile
            blocked[idx] = True
        pick = _Picker(cat, k, blocked)
        pick.take(scores, "bought_together")
        if not pick.full:
            pick.take(self._collab_scores(np.array([idx])), "similar")
        if not pick.full and cat.category[idx]:
            pick.take(self._category_scores(str(cat.category[idx])), "trending")
        if not pick.full:
            pick.take(self._global_scores(), "popular", positive_only=False)
        return Recommendation(pick.strategy or "popular", pick.items, self.model_version)

    def search(self, query: str, k: int = 10) -> list[dict[str, Any]]:
        """BM25 results for `query` over the bundle's index (items added since are not in it:
        the search service indexes those)."""
        scores = np.asarray(self.bundle.search_index.score(query), dtype=np.float64)
        alive = self._catalog.alive[: len(scores)]
        scores[: len(alive)][~alive] = 0.0
        scores[scores <= 0] = -np.inf
        res = top_k(scores, k)
        cat = self._catalog
        out = []
        for i, s in zip(res.ids.tolist(), res.scores.tolist(), strict=True):
            if np.isfinite(s):
                row = cat.describe(i, s, "search")
                row.pop("source")
                out.append(row)
        return out
