"""The versions the API lists, activates and rolls back: the artifacts registry's.

Bundles and tuned models are versions of one registry (`shelfwise.artifacts.Registry`, ids
`v0001`...). Activating a bundle hot-swaps the engine's bundle; activating a tuned model
serves it over the current bundle (the registry writes a derived bundle naming it, so a
restart serves the same thing); rolling back serves what was served before. This module
only asks the registry and `load_bundle`; it reads no artifact files itself.
"""

from __future__ import annotations

import logging

from shelfwise.artifacts import load_bundle
from shelfwise.artifacts.registry import Registry, VersionInfo
from shelfwise.errors import UnknownIdError
from shelfwise.serve.schemas import ModelVersion
from shelfwise.serving import Engine

log = logging.getLogger(__name__)


def _listed(info: VersionInfo) -> ModelVersion:
    manifest = info.manifest
    if info.kind == "model":
        return ModelVersion(
            version=info.version,
            kind="model",
            active=info.active,
            created_at=info.created,
            models={info.model: info.config},
            counts={"dataset": info.dataset} if info.dataset else {},
            metrics=dict(info.metrics),
        )
    metrics = dict(info.metrics)
    metrics.setdefault("seconds", manifest.get("seconds", {}))
    return ModelVersion(
        version=info.version,
        kind="bundle",
        active=info.active,
        created_at=info.created,
        models=manifest.get("models", {}),
        counts=manifest.get("counts", {}),
        metrics=metrics,
        parent=info.parent,
        serving_model=info.serving_model,
    )


class ModelRegistry:
    """The API's view of the registry the engine's bundle belongs to."""

    def __init__(self, engine: Engine, registry: Registry) -> None:
        self.engine = engine
        self.registry = registry

    @property
    def root(self) -> str:
        """The registry folder (tuning reports live under it)."""
        return str(self.registry.root)

    def versions(self) -> list[ModelVersion]:
        """Every version, newest first."""
        return [_listed(v) for v in reversed(self.registry.versions())]

    def _serve(self, info: VersionInfo) -> ModelVersion:
        bundle = load_bundle(info.path)
        self.engine.activate(bundle)
        log.info("serving bundle %s (tuned model: %s)", info.version, info.serving_model)
        return _listed(self.registry.get(info.version))

    def activate(self, version: str) -> ModelVersion:
        """Serve a bundle or tuned version from now on; `UnknownIdError` if there is none."""
        try:
            info = self.registry.get(version)
        except UnknownIdError:
            raise UnknownIdError(
                f"no model version '{version}': GET /v1/models lists the bundles and tuned versions"
            ) from None
        if info.kind == "model":
            active = self.registry.active()
            if active is None or active.version != self.engine.model_version:
                self.registry.activate(self.engine.model_version)  # over what is served
            served = self.registry.promote(version)
            self._serve(served)
            return _listed(self.registry.get(version))
        self.registry.activate(version)
        return self._serve(self.registry.get(version))

    def rollback(self) -> ModelVersion:
        """Serve what was served before the current version (`ConfigError` if nothing)."""
        info = self.registry.rollback()
        if info.kind == "model":  # a tuned model promoted on its own: serve it over this bundle
            return self.activate(info.version)
        return self._serve(info)

    def active(self) -> str | None:
        """The served version's id."""
        active = self.registry.active()
        return active.version if active is not None else None
