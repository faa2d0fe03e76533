"""Shelfwise: self-tuning product search and recommendations for online stores.

The common path in one import (each name is imported on first use, so `import shelfwise`
stays cheap and never imports torch)::

    import shelfwise as sw

    settings = sw.Settings()                         # SHELFWISE_* environment variables
    store = sw.open_store(settings.store.url)        # DuckDB file or PostgreSQL
    bundle, _ = sw.ensure_bundle(store, settings.paths.artifacts)
    engine = sw.Engine(store, bundle)                # recommendations, fallback chain
    engine.recommend("U-00001", k=10)
    bundle.search.search("chef knife")               # the one search path (SearchService)
    model = sw.create("ease", l2=500).fit(sw.build_interactions(store.interactions()))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise._lazy import lazy_exports

__version__ = "0.1.0"

_HOMES = {
    "Settings": "shelfwise.settings",
    "open_store": "shelfwise.store",
    "Store": "shelfwise.store",
    "create": "shelfwise.recommenders",
    "load_model": "shelfwise.recommenders",
    "available": "shelfwise.recommenders",
    "Recommender": "shelfwise.recommenders",
    "build_interactions": "shelfwise.data",
    "load_dataset": "shelfwise.data",
    "leave_last_out": "shelfwise.data",
    "Vocabulary": "shelfwise.data",
    "Engine": "shelfwise.serving",
    "EngineConfig": "shelfwise.serving",
    "RecContext": "shelfwise.serving",
    "SearchService": "shelfwise.search",
    "SearchConfig": "shelfwise.search",
    "Registry": "shelfwise.artifacts",
    "build_bundle": "shelfwise.artifacts",
    "ensure_bundle": "shelfwise.artifacts",
    "load_bundle": "shelfwise.artifacts",
    "tune": "shelfwise.tuning",
    "TuneSettings": "shelfwise.tuning",
    "tune_dataset": "shelfwise.tuning.run",
    "Results": "shelfwise.types",
    "ShelfwiseError": "shelfwise.errors",
}

__all__ = [
    "Engine",
    "EngineConfig",
    "RecContext",
    "Recommender",
    "Registry",
    "Results",
    "SearchConfig",
    "SearchService",
    "Settings",
    "ShelfwiseError",
    "Store",
    "TuneSettings",
    "Vocabulary",
    "__version__",
    "available",
    "build_bundle",
    "build_interactions",
    "create",
    "ensure_bundle",
    "leave_last_out",
    "load_bundle",
    "load_dataset",
    "load_model",
    "open_store",
    "tune",
    "tune_dataset",
]

if TYPE_CHECKING:
    from shelfwise.artifacts import Registry, build_bundle, ensure_bundle, load_bundle
    from shelfwise.data import Vocabulary, build_interactions, leave_last_out, load_dataset
    from shelfwise.errors import ShelfwiseError
    from shelfwise.recommenders import Recommender, available, create, load_model
    from shelfwise.search import SearchConfig, SearchService
    from shelfwise.serving import Engine, EngineConfig, RecContext
    from shelfwise.settings import Settings
    from shelfwise.store import Store, open_store
    from shelfwise.tuning import TuneSettings, tune
    from shelfwise.tuning.run import tune_dataset
    from shelfwise.types import Results


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
