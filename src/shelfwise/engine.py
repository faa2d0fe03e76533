"""The facade: store -> trained models + search index -> one versioned bundle on disk.

A bundle is a folder `<artifacts>/<version>/` with `manifest.json`, the item vocabulary,
one sub-folder per model and the search index. It records the store fingerprint it was built
from, so `ensure_bundle` reuses it as long as the store has not changed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shelfwise import __version__
from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, DataError, ShelfwiseError
from shelfwise.recommenders import Recommender, create, load_model
from shelfwise.search.bm25 import BM25Index
from shelfwise.store import Store
from shelfwise.types import Results, top_k

log = logging.getLogger(__name__)

DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {"neighbors": 100, "shrink": 10.0},
}
DEFAULT_RECOMMENDER = "itemknn"
HISTORY_LIMIT = 200
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


def build_bundle(
    store: Store,
    directory: Path,
    models: dict[str, dict[str, Any]] | None = None,
    weights: InteractionWeights | None = None,
) -> Bundle:
    """Train the models and build the search index from the store; save under `directory`."""
    started = time.perf_counter()
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
    for name, params in models.items():
        t0 = time.perf_counter()
        fitted[name] = create(name, **params).fit(data, items)
        timings[name] = round(time.perf_counter() - t0, 3)
        log.info("trained %s in %.2fs", name, timings[name])
    t0 = time.perf_counter()
    catalog = items[items["title"].notna()]
    docs = {f: items[f].fillna("").astype(str).tolist() for f in SEARCH_FIELDS}
    index = BM25Index().index(docs)
    timings["search_index"] = round(time.perf_counter() - t0, 3)

    version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = directory / version
    target.mkdir(parents=True, exist_ok=False)
    item_vocab.save(target / "items.vocab.json")
    items.to_parquet(target / "catalog.parquet", index=False)
    for name, model in fitted.items():
        model.save(target / "models" / name)
    index.save(target / "search")
    manifest = {
        "version": version,
        "shelfwise": __version__,
        "fingerprint": fingerprint,
        "store": store.url,
        "created_at": datetime.now(UTC).isoformat(),
        "models": {name: params for name, params in models.items()},
        "weights": weights.model_dump(mode="json"),
        "counts": {
            "items": len(catalog),
            "users": int(data.n_users),
            "interactions": int(data.nnz),
        },
        "seconds": {**timings, "total": round(time.perf_counter() - started, 3)},
    }
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    (directory / "CURRENT").write_text(version)
    return Bundle(target, manifest, items, item_vocab, fitted, index, weights)


def load_bundle(directory: Path) -> Bundle:
    """Load one bundle folder (the one holding manifest.json)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    items = pd.read_parquet(directory / "catalog.parquet")
    vocab = Vocabulary.load(directory / "items.vocab.json")
    models = {name: load_model(directory / "models" / name) for name in manifest["models"]}
    index = BM25Index.load(directory / "search")
    weights = InteractionWeights(**manifest.get("weights", {}))
    return Bundle(directory, manifest, items, vocab, models, index, weights)


def current_bundle_dir(root: Path) -> Path | None:
    """The active bundle under an artifacts root, if any."""
    pointer = root / "CURRENT"
    if not pointer.exists():
        return None
    target = root / pointer.read_text().strip()
    return target if (target / "manifest.json").exists() else None


def ensure_bundle(store: Store, root: Path, rebuild: bool = False) -> tuple[Bundle, bool]:
    """The current bundle if it matches the store, else a fresh one. Returns (bundle, built)."""
    current = current_bundle_dir(root)
    if current is not None and not rebuild:
        try:
            bundle = load_bundle(current)
        except (OSError, ValueError, KeyError, ShelfwiseError) as exc:
            log.warning("bundle %s is unreadable (%s); rebuilding", current, exc)
        else:
            if bundle.fingerprint == store.fingerprint():
                return bundle, False
            log.info("store changed since bundle %s was built; rebuilding", current.name)
    return build_bundle(store, root), True


class Engine:
    """Answers search and recommendation requests from a bundle plus the live store."""

    def __init__(self, store: Store, bundle: Bundle) -> None:
        self.store = store
        self.bundle = bundle
        self._servable = bundle.items["title"].notna().to_numpy()

    def _unservable(self) -> np.ndarray:
        return np.flatnonzero(~self._servable)

    def user_history(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The user's latest interactions, read from the store now: (item indices, weights)."""
        events = self.store.events(user_id=user_id, limit=HISTORY_LIMIT, newest_first=True)
        events = events[events["item_id"].notna()]
        if events.empty:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        data = build_interactions(
            events.assign(user_id=user_id),
            weights=self.bundle.weights,
            items=self.bundle.item_vocab,
            drop_unknown=True,
        )
        row = data.matrix[0] if data.n_users else None
        if row is None or row.nnz == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        return row.indices.astype(np.int64), row.data.astype(np.float32)

    def recommend(
        self, user_id: str, k: int = 10, model: str | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        """(strategy, items): personalised from the user's history, else popular."""
        name = model or DEFAULT_RECOMMENDER
        if name not in self.bundle.models:
            raise ConfigError(
                f"model '{name}' is not in the active bundle; choose one of "
                f"{', '.join(sorted(self.bundle.models))}"
            )
        history, weights = self.user_history(user_id)
        exclude = self._unservable()
        results: list[dict[str, Any]] = []
        strategy = name
        if history.size and name != "popularity":
            res = self.bundle.models[name].recommend(history, k, weights=weights, exclude=exclude)
            res = Results(res.ids[res.scores > 0], res.scores[res.scores > 0])
            results = self.bundle.describe(res)
        if len(results) < k:
            popular = self.bundle.models["popularity"].recommend(
                history, k + len(results), weights=weights, exclude=exclude
            )
            seen = {r["item_id"] for r in results}
            fill = [r for r in self.bundle.describe(popular) if r["item_id"] not in seen]
            if not results:
                strategy = "popularity"
            results.extend(fill[: k - len(results)])
        return strategy, results

    def search(self, query: str, k: int = 10) -> list[dict[str, Any]]:
        """BM25 results for `query`."""
        scores = self.bundle.search_index.score(query)
        scores[~self._servable] = 0.0
        scores[scores <= 0] = -np.inf
        return self.bundle.describe(top_k(scores, k))
