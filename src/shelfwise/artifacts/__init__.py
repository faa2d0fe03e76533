"""Artifacts: the one versioned registry of what Shelfwise serves (bundles, tuned models).

Names load on first use, so reading the registry (`shelfwise search` asks which bundle is
served) does not import the recommenders, the interaction matrices and the bundle builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shelfwise._lazy import lazy_exports

if TYPE_CHECKING:
    from shelfwise.artifacts.bundle import (
        DEFAULT_MODELS,
        Bundle,
        build_bundle,
        ensure_bundle,
        load_bundle,
        weighted_events,
    )
    from shelfwise.artifacts.registry import (
        KINDS,
        Draft,
        Registry,
        VersionInfo,
        config_toml,
        current_bundle_dir,
    )

_HOMES = {
    "DEFAULT_MODELS": "bundle",
    "Bundle": "bundle",
    "build_bundle": "bundle",
    "current_bundle_dir": "registry",
    "ensure_bundle": "bundle",
    "load_bundle": "bundle",
    "weighted_events": "bundle",
    "KINDS": "registry",
    "Draft": "registry",
    "Registry": "registry",
    "VersionInfo": "registry",
    "config_toml": "registry",
}

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

__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
