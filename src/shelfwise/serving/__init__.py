"""Serving: the live catalogue, the event replica, the fallback chain as composable steps
configured by `EngineConfig`, related items, and `Engine`, which wires them to a bundle."""

from shelfwise.serving.aligned import AlignedModel
from shelfwise.serving.catalog import Catalog
from shelfwise.serving.chain import (
    CategoryTrending,
    EngineConfig,
    Personalised,
    Popular,
    RecContext,
    Session,
    Step,
    StepContext,
    walk,
)
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
