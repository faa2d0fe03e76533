"""Artifacts: the one versioned registry of what Shelfwise serves (bundles, tuned models)."""

from shelfwise.artifacts.registry import KINDS, Draft, Registry, VersionInfo, config_toml

__all__ = ["KINDS", "Draft", "Registry", "VersionInfo", "config_toml"]
