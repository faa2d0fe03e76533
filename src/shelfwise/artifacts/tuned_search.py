"""Tuned search parameters into the registry: a bundle derived with a re-configured search
service (`shelfwise tune-search`).

`derive_tuned_search(registry, bundle, config, report)` loads the bundle's search service,
re-configures it with the tuned `SearchConfig` (`SearchService.with_config`: the BM25F
index is rebuilt when k1, b or a field weight changed) and writes a new bundle version
whose `search/` folder holds it, every other file hard-linked from the parent
(`Registry.derive`). The manifest records the tuned parameters and the cross-validated
report under `search.tuned`, and the parent under `parent`, so `rollback` returns to the
untuned bundle. A server loading the new bundle answers with the tuned configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shelfwise.artifacts.registry import Registry, json_ready
from shelfwise.errors import ConfigError
from shelfwise.search.build import load_search_service
from shelfwise.search.config import SearchConfig

__all__ = ["derive_tuned_search"]

log = logging.getLogger(__name__)


def derive_tuned_search(
    registry: Registry,
    bundle: str,
    config: SearchConfig,
    report: Mapping[str, Any],
    activate: bool = True,
) -> str:
    """A new bundle version: `bundle` serving search with `config` (see the module doc);
    activated when `activate`. Returns its id."""
    parent = registry.get(bundle)
    if parent.kind != "bundle":
        raise ConfigError(f"{bundle} is a {parent.kind}, not a bundle")
    service = load_search_service(parent.path / "search")
    # the mode is the server's choice (settings / request), not a tuned parameter
    tuned = service.with_config(config.model_copy(update={"mode": service.config.mode}))
    search_meta = dict(parent.manifest.get("search", {}))
    search_meta["tuned"] = json_ready(
        {
            "params": dict(report.get("params", {})),
            "cv": {k: v for k, v in dict(report.get("cv", {})).items() if k != "per_query"},
            "source": report.get("source", ""),
            "trials": report.get("trials"),
        }
    )

    def write(path: Path) -> None:
        tuned.save(path)

    version = registry.derive(bundle, replace={"search": write}, search=search_meta)
    log.info("bundle %s: %s with tuned search parameters", version, bundle)
    if activate:
        registry.activate(version)
    return version
