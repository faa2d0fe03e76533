"""Serving: the live catalogue, the event replica, the fallback chain as composable steps
configured by `EngineConfig`, related items, and `Engine`, which wires them to a bundle.

Names are imported on first use, so `shelfwise.serving.config` (what settings and bundle
manifests need) does not pull the engine in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise._lazy import lazy_exports

_HOMES = {
    "AlignedModel": "aligned",
    "Catalog": "catalog",
    "CategoryTrending": "chain",
    "Personalised": "chain",
    "Popular": "chain",
    "RecContext": "chain",
    "Session": "chain",
    "Step": "chain",
    "StepContext": "chain",
    "walk": "chain",
    "EngineConfig": "config",
    "STEPS": "engine",
    "Engine": "engine",
    "Recommendation": "engine",
    "build_chain": "engine",
    "Picker": "picker",
    "BoughtTogether": "related",
    "CollaborativeSimilar": "related",
    "ContentSimilar": "related",
    "CoPurchase": "related",
    "copurchase_counts": "related",
    "EventLog": "replica",
    "event_sequence": "replica",
    "weighted_history": "replica",
    "ModelRoles": "roles",
}

__all__ = [
    "STEPS",
    "AlignedModel",
    "BoughtTogether",
    "Catalog",
    "CategoryTrending",
    "CoPurchase",
    "CollaborativeSimilar",
    "ContentSimilar",
    "Engine",
    "EngineConfig",
    "EventLog",
    "ModelRoles",
    "Personalised",
    "Picker",
    "Popular",
    "RecContext",
    "Recommendation",
    "Session",
    "Step",
    "StepContext",
    "build_chain",
    "copurchase_counts",
    "event_sequence",
    "walk",
    "weighted_history",
]

if TYPE_CHECKING:
    from shelfwise.serving.aligned import AlignedModel
    from shelfwise.serving.catalog import Catalog
    from shelfwise.serving.chain import (
        CategoryTrending,
        Personalised,
        Popular,
        RecContext,
        Session,
        Step,
        StepContext,
        walk,
    )
    from shelfwise.serving.config import EngineConfig
    from shelfwise.serving.engine import STEPS, Engine, Recommendation, build_chain
    from shelfwise.serving.picker import Picker
    from shelfwise.serving.related import (
        BoughtTogether,
        CollaborativeSimilar,
        ContentSimilar,
        CoPurchase,
        copurchase_counts,
    )
    from shelfwise.serving.replica import EventLog, event_sequence, weighted_history
    from shelfwise.serving.roles import ModelRoles


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
