"""Artifacts: the one versioned registry of what Shelfwise serves (bundles, tuned models)."""

from shelfwise.artifacts.bundle import (
    DEFAULT_MODELS,
    Bundle,
    build_bundle,
    current_bundle_dir,
    ensure_bundle,
    load_bundle,
    weighted_events,
)
from shelfwise.artifacts.registry import KINDS, Draft, Registry, VersionInfo, config_toml

__all__ = [
    "DEFAULT_MODELS",
    "KINDS",
    "Bundle",
    "Draft",
    "Registry",
    "VersionInfo",
    "build_bundle",
    "config_toml",
    "current_bundle_dir",
    "ensure_bundle",
    "load_bundle",
    "weighted_events",
]
