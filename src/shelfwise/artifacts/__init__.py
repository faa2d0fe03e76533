"""Trained artifacts on disk: bundles (catalogue snapshot, models, search index)."""

from shelfwise.artifacts.bundle import (
    DEFAULT_MODELS,
    SEARCH_FIELDS,
    Bundle,
    build_bundle,
    current_bundle_dir,
    ensure_bundle,
    load_bundle,
    weighted_events,
)

__all__ = [
    "DEFAULT_MODELS",
    "SEARCH_FIELDS",
    "Bundle",
    "build_bundle",
    "current_bundle_dir",
    "ensure_bundle",
    "load_bundle",
    "weighted_events",
]
