"""Bundles: store -> trained models + search service -> one version of the registry.

A bundle is a version of kind "bundle" in the artifacts registry (`shelfwise.artifacts.
registry.Registry`: `<root>/versions/vNNNN/`, written atomically, served when `ACTIVE`
names it) holding `manifest.json`, the item vocabulary, the catalogue snapshot, one
sub-folder per model and the persisted search service. Its manifest records the store
fingerprint it was built from, so `ensure_bundle` reuses it as long as the store has not
changed (a server, `reuse_stale=True`, serves it whatever arrived since); the serving
engine's configuration (`"engine"`: fallback-chain order, weights, thresholds, model roles,
history half-life), so a bundle is served the way it was built to be; and, for a bundle
derived to serve a tuned model, that model's version (`"serving_model"`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shelfwise import __version__
from shelfwise.artifacts.gate import holdout_metrics
from shelfwise.artifacts.registry import Registry, json_ready
from shelfwise.artifacts.registry import current_bundle_dir as current_bundle_dir  # re-export
from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.sequences import OrderedInteractions, Sequences
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import DataError, ShelfwiseError
from shelfwise.recommenders import Recommender, create, load_model
from shelfwise.recommenders.capabilities import FitsFromEvents
from shelfwise.search.build import build_search_service, load_search_service
from shelfwise.search.service import SearchService
from shelfwise.serving.config import EngineConfig
from shelfwise.store import Store

if TYPE_CHECKING:
    from shelfwise.settings import TuningSettings

log = logging.getLogger(__name__)

DEFAULT_MODELS: dict[str, dict[str, Any]] = {
    "popularity": {},
    "itemknn": {"neighbors": 100, "shrink": 10.0},
    # serving fallbacks: trending per category, and content vectors for cold-start items
    "trending": {"half_life_days": 7.0},
    "tfidf": {},
}


def _engine_config(data: dict[str, Any] | None = None) -> EngineConfig:
    """The serving configuration recorded in a manifest (defaults when it records none)."""
    return EngineConfig.model_validate(data or {})


@dataclass
class Bundle:
    """Everything a server needs to answer: catalog snapshot, models, search index."""

    directory: Path
    manifest: dict[str, Any]
    items: pd.DataFrame
    item_vocab: Vocabulary
    models: dict[str, Recommender]
    #: The search service over `items` (row i = item index i), re-ranker included.
    search: SearchService
    weights: InteractionWeights = field(default_factory=InteractionWeights)
    #: How the engine serves this bundle (`serving.chain.EngineConfig`), from the manifest.
    engine: EngineConfig = field(default_factory=_engine_config)
    #: The tuned model personalised requests use instead of the bundle's own, as
    #: (model, its item vocabulary, label "name@version"); None: the bundle's own.
    serving: tuple[Recommender, Vocabulary | None, str] | None = None

    @property
    def version(self) -> str:
        """The bundle's version id in the registry."""
        return str(self.manifest.get("version", self.directory.name))

    @property
    def registry(self) -> Registry:
        """The registry the bundle is a version of (`<root>/versions/<version>/`)."""
        return Registry(self.directory.parent.parent)

    @property
    def search_reranker(self) -> Any:
        """The learned search re-ranker (`search.ltr.PersonalisedReranker`) the search
        service carries, trained from the store's search -> click / cart / purchase
        events; None when there were none."""
        return self.search.reranker

    @property
    def fingerprint(self) -> str:
        """The store fingerprint the bundle was built from."""
        return str(self.manifest.get("fingerprint", ""))


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


def weighted_events(events: pd.DataFrame, weights: InteractionWeights) -> pd.DataFrame:
    """The item events that count under `weights` (types weighing 0 are left out)."""
    events = events[events["item_id"].notna()]
    if "type" in events.columns:
        kinds = [t for t in pd.unique(events["type"]) if weights.weight_of(str(t)) > 0]
        events = events[events["type"].isin(kinds).to_numpy()]  # per type, not per row
    return events


def build_bundle(
    store: Store,
    directory: Path | Registry,
    models: dict[str, dict[str, Any]] | None = None,
    weights: InteractionWeights | None = None,
    activate: bool = True,
    search_rerank: bool = True,
    search_dense: bool | None = None,
    engine: EngineConfig | None = None,
    serving_model: str | None = None,
    cache_dir: Path | None = None,
    source: tuple[str, str] | None = None,
    tuning: TuningSettings | None = None,
    retune: bool = False,
    judgements: Path | None = None,
) -> Bundle:
    """Train the models and build the search service from the store; save the bundle as a new
    version of the registry at `directory`.

    With `activate` the new version becomes the served one (what `ensure_bundle` and a restarted
    server load); without, it is only written (the API's train job can build one while
    another is served). `serving_model` names a tuned model version of the same registry
    that personalised requests are to use. `search_dense` (None: no) trains the search
    re-ranker with the dense-similarity features, embedding the catalogue through the
    embedding cache in `cache_dir` (`Settings().paths.embeddings`); the manifest records it.
    `engine` (default: `EngineConfig()`) is how the bundle is to be served; the manifest
    records it under "engine". The manifest's `metrics["holdout"]` is the personalisation
    model's held-out metric (`artifacts.gate.holdout_metrics`), which the train job's gate
    compares. `source` (fingerprint, url) is the store the manifest records instead of
    `store`'s own (a build from a snapshot records the store it was taken from).

    `tuning` with `build_budget_seconds > 0` first tunes the personalisation model within
    that budget (`artifacts.selftune.choose_config`; a later build of the same store reuses
    the earlier choice unless `retune`): the winner joins `models` under its name, becomes
    `engine.personalisation_model` and, like every model here, is fitted on all the
    interactions; the manifest records the study under "tuning" and `metrics["tuning"]`.

    `judgements` (a judged folder: queries.tsv + qrels.tsv over the store's item ids) trains
    the search re-ranker from those graded judgements instead of the search events
    (`search.build.build_search_service`); with a tuning budget (`tuning.
    build_budget_seconds > 0`) the search ranking parameters are first tuned on them within
    that budget (query-level CV) and the bundle serves the tuned ones. The manifest records
    the folder and the source under "search", and the tuning report under
    `["search"]["tuned"]`."""
    started = time.perf_counter()
    search_dense = bool(search_dense)
    models = dict(models or DEFAULT_MODELS)
    weights = weights or InteractionWeights()
    engine = engine if engine is not None else _engine_config()
    fingerprint, store_url = source if source is not None else (store.fingerprint(), store.url)
    interactions = store.interactions()
    items = _catalog_frame(store, interactions["item_id"].to_numpy())
    if items.empty:
        raise DataError("the store has no items: ingest a catalog first (shelfwise ingest)")
    item_vocab = Vocabulary(items["item_id"].astype(str).tolist())
    registry = directory if isinstance(directory, Registry) else Registry(directory)
    tuned, tuning_seconds = None, 0.0
    if tuning is not None and tuning.build_budget_seconds > 0:
        from shelfwise.artifacts.selftune import choose_config

        t0 = time.perf_counter()
        tuned = choose_config(
            weighted_events(interactions, weights), items, tuning, registry,
            store_url=store_url, fingerprint=fingerprint, retune=retune,
        )  # fmt: skip
        if tuned is not None:
            models[tuned["model"]] = dict(tuned["config"])
            engine = engine.model_copy(update={"personalisation_model": tuned["model"]})
            if not tuned.get("reused_from"):
                tuning_seconds = round(time.perf_counter() - t0, 3)
    data = build_interactions(interactions, weights=weights, items=item_vocab)
    log.info(
        "training on %d users x %d items, %d interactions", data.n_users, data.n_items, data.nnz
    )
    fitted: dict[str, Recommender] = {}
    timings: dict[str, float] = {}
    if tuned is not None and not tuned.get("reused_from"):
        timings["tuning"] = tuning_seconds
    ordered: OrderedInteractions | None = None
    for name, params in models.items():
        t0 = time.perf_counter()
        model = create(name, **params)
        if model.sequential and ordered is None:
            frame = weighted_events(interactions, weights)
            ordered = OrderedInteractions(
                data.matrix, Sequences.from_frame(frame, data.users, data.items, drop_unknown=True)
            )
        if isinstance(model, FitsFromEvents):  # e.g. decays by event age: reads the events
            fitted[name] = model.fit_events(interactions, item_vocab, items, weights)
        else:
            fitted[name] = model.fit(ordered if model.sequential else data, items)
        timings[name] = round(time.perf_counter() - t0, 3)
        log.info("trained %s in %.2fs", name, timings[name])
    catalog = items[items["title"].notna()]
    search = build_search_service(
        items, store.events(), rerank=search_rerank, dense=search_dense, cache_dir=cache_dir,
        judgements=judgements,
        tune_budget=tuning.build_budget_seconds if tuning is not None else None,
    )  # fmt: skip
    timings.update(search.timings)
    reranker = search.reranker
    metrics: dict[str, Any] = {}
    personal = engine.personalisation_model
    if personal in models:
        t0 = time.perf_counter()
        holdout = holdout_metrics(
            weighted_events(interactions, weights), personal, models[personal]
        )
        timings["holdout"] = round(time.perf_counter() - t0, 3)
        if holdout is not None:
            metrics["holdout"] = holdout
    if tuned is not None:
        from shelfwise.artifacts.selftune import tuning_metrics

        metrics["tuning"] = tuning_metrics(tuned)
    with registry.draft("bundle") as draft:
        target = draft.path
        item_vocab.save(target / "items.vocab.json")
        items.to_parquet(target / "catalog.parquet", index=False)
        for name, model in fitted.items():
            model.save(target / "models" / name)
        search.save(target / "search")
        draft.manifest = {
            "shelfwise": __version__,
            "fingerprint": fingerprint,
            "store": store_url,
            "created_at": datetime.now(UTC).isoformat(),
            "models": {name: params for name, params in models.items()},
            "weights": weights.model_dump(mode="json"),
            "engine": engine.model_dump(mode="json"),
            "search": {
                "dense": bool(search_dense),
                "reranker": reranker is not None,
                "reranker_dense": bool(getattr(reranker, "uses_dense", False)),
                "reranker_source": (
                    None if reranker is None else "judgements" if judgements else "events"
                ),
                "judgements": str(Path(judgements).resolve()) if judgements else None,
                **({"tuned": json_ready(search.tuned)} if search.tuned else {}),
            },
            "counts": {
                "items": len(catalog),
                "users": int(data.n_users),
                "interactions": int(data.nnz),
            },
            "seconds": {**timings, "total": round(time.perf_counter() - started, 3)},
            "metrics": metrics,
            "serving_model": serving_model,
            "tuning": tuned,
        }
    info = registry.activate(draft.version) if activate else registry.get(draft.version)
    bundle = Bundle(info.path, info.manifest, items, item_vocab, fitted, search, weights, engine)
    bundle.serving = _serving_model(registry, serving_model)
    return bundle


def _serving_model(
    registry: Registry, version: str | None
) -> tuple[Recommender, Vocabulary | None, str] | None:
    """(model, item vocabulary, label) of the tuned version a bundle serves, or None. A
    version that cannot be loaded is logged and not served: the bundle's own model answers
    (a stale tuned version must not stop the service)."""
    if not version:
        return None
    try:
        info = registry.get(version)
        model = registry.load_model(version)
        return model, registry.vocabulary(version, "items"), f"{info.model}@{version}"
    except (OSError, ValueError, ShelfwiseError) as exc:
        log.warning("not serving tuned version %s: %s", version, exc)
        return None


def load_bundle(directory: Path) -> Bundle:
    """Load one bundle folder (the one holding manifest.json). A manifest written before
    bundles recorded the engine configuration is served with the defaults."""
    manifest = json.loads((directory / "manifest.json").read_text())
    engine = _engine_config(manifest.get("engine"))
    items = pd.read_parquet(directory / "catalog.parquet")
    vocab = Vocabulary.load(directory / "items.vocab.json")
    models = {name: load_model(directory / "models" / name) for name in manifest["models"]}
    search = load_search_service(directory / "search")
    weights = InteractionWeights(**manifest.get("weights", {}))
    bundle = Bundle(directory, manifest, items, vocab, models, search, weights, engine)
    bundle.serving = _serving_model(bundle.registry, manifest.get("serving_model"))
    return bundle


def ensure_bundle(
    store: Store,
    root: Path,
    rebuild: bool = False,
    search_dense: bool | None = None,
    engine: EngineConfig | None = None,
    cache_dir: Path | None = None,
    reuse_stale: bool = False,
    tuning: TuningSettings | None = None,
    retune: bool = False,
    judgements: Path | None = None,
) -> tuple[Bundle, bool]:
    """The served bundle if it matches the store, else a fresh one. Returns (bundle, built).

    `root` is the artifacts registry. With `reuse_stale` (what a server starting up asks
    for) the served bundle is reused even if the store changed since it was built: the
    serving engine applies the newer events and catalogue changes online, so a restart
    takes seconds; a bundle is then built only when there is no usable one (none, or
    unreadable), when `rebuild` asks, or when `search_dense` asks for the other kind.
    Without (`shelfwise build`), a store that changed gets a fresh bundle.

    `search_dense` True / False also asks for a bundle whose search re-ranker was (not)
    trained with dense retrieval, rebuilding one built the other way; None takes either
    (and builds as `build_bundle` defaults). A new bundle records `engine` (default: the
    defaults); a reused one keeps the configuration it was built with. A new bundle keeps
    serving the tuned model the one it replaces served (or the tuned model `ACTIVE` names,
    when `shelfwise tune` promoted one with no bundle). `tuning` and `retune` are passed to
    `build_bundle` (a tuning budget for a new bundle; `retune` also rebuilds). `judgements`
    asks for a bundle whose search re-ranker learnt from that judged folder (one built
    otherwise is rebuilt)."""
    registry = Registry(root)
    active = registry.active()
    serving_model = None
    if active is not None:
        serving_model = active.version if active.kind == "model" else active.serving_model
    if active is not None and active.kind == "bundle" and not (rebuild or retune):
        try:
            bundle = load_bundle(active.path)
        except (OSError, ValueError, KeyError, ShelfwiseError) as exc:
            log.warning("bundle %s is unreadable (%s); rebuilding", active.version, exc)
        else:
            dense = bool(bundle.manifest.get("search", {}).get("dense", False))
            changed = bundle.fingerprint != store.fingerprint()
            if changed and not reuse_stale:
                log.info("store changed since bundle %s was built; rebuilding", active.version)
            elif judgements is not None and bundle.manifest.get("search", {}).get(
                "judgements"
            ) != str(Path(judgements).resolve()):
                log.info("bundle %s was not trained on %s; rebuilding", active.version, judgements)
            elif search_dense is not None and dense != search_dense:
                log.info(
                    "bundle %s was built %s dense search; rebuilding",
                    active.version,
                    "with" if dense else "without",
                )
            else:
                if changed:
                    log.info(
                        "serving bundle %s; the store changed since it was built: newer "
                        "events and items are applied online",
                        active.version,
                    )
                return bundle, False
    built = build_bundle(
        store,
        registry,
        search_dense=search_dense,
        engine=engine,
        serving_model=serving_model,
        cache_dir=cache_dir,
        tuning=tuning,
        retune=retune,
        judgements=judgements,
    )
    return built, True
