"""Model versions the API can list and activate.

Two kinds live side by side:

- bundles (`<artifacts>/<version>/manifest.json`, pointer `<artifacts>/CURRENT`): what
  `shelfwise build` and the `train` job produce: the catalog snapshot, every default
  model and the search index. Activating one hot-swaps the engine's bundle.
- tuned versions (`shelfwise.artifacts.Registry` under `<models_dir>`, ids `v0001`...):
  one tuned model each, with its validation/test metrics, written by `shelfwise tune` and
  the `tune` job. Activating one makes it the model of personalised recommendations (its
  item ids are mapped onto the served catalog), and marks it active in the model store.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from shelfwise.artifacts import current_bundle_dir, load_bundle
from shelfwise.artifacts.registry import Registry
from shelfwise.errors import UnknownIdError
from shelfwise.serve.schemas import ModelVersion
from shelfwise.serving import Engine

log = logging.getLogger(__name__)


class ModelRegistry:
    """Lists and activates bundles under `artifacts` and tuned versions under `models_dir`."""

    def __init__(self, engine: Engine, artifacts: Path, models_dir: Path | None) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.models_dir = models_dir

    def _model_store(self) -> Registry | None:
        if self.models_dir is None:
            return None
        return Registry(self.models_dir)

    def bundles(self) -> list[ModelVersion]:
        """Bundle versions, newest first."""
        active = self.engine.model_version
        out = []
        if self.artifacts.is_dir():
            for folder in sorted(self.artifacts.iterdir(), reverse=True):
                manifest_file = folder / "manifest.json"
                if not manifest_file.is_file():
                    continue
                try:
                    manifest = json.loads(manifest_file.read_text())
                except (OSError, ValueError):
                    continue
                out.append(
                    ModelVersion(
                        version=str(manifest.get("version", folder.name)),
                        active=manifest.get("version") == active,
                        created_at=manifest.get("created_at"),
                        models=manifest.get("models", {}),
                        counts=manifest.get("counts", {}),
                        metrics={"seconds": manifest.get("seconds", {})},
                    )
                )
        return out

    def tuned(self) -> list[ModelVersion]:
        """Tuned versions of the model store, newest first (none without a model store)."""
        store = self._model_store()
        if store is None:
            return []
        serving = self.engine.serving_label
        out = []
        for info in reversed(store.versions("model")):
            out.append(
                ModelVersion(
                    version=info.version,
                    active=serving == f"{info.model}@{info.version}",
                    created_at=info.created,
                    models={info.model: info.config},
                    counts={"dataset": info.dataset} if info.dataset else {},
                    metrics=dict(info.metrics),
                )
            )
        return out

    def activate(self, version: str) -> ModelVersion:
        """Serve a bundle or tuned version from now on; `UnknownIdError` if there is none."""
        folder = self.artifacts / version
        if (folder / "manifest.json").is_file():
            bundle = load_bundle(folder)
            self.engine.activate(bundle)
            (self.artifacts / "CURRENT").write_text(version)
            log.info("activated bundle %s", version)
            return next(b for b in self.bundles() if b.version == version)
        store = self._model_store()
        if store is not None:
            try:
                info = store.get(version)
            except UnknownIdError:
                info = None
            if info is not None:
                model = store.load_model(version)
                items = store.vocabulary(version, "items")
                self.engine.set_serving_model(model, items, f"{info.model}@{version}")
                store.promote(version)
                log.info("serving tuned model %s@%s", info.model, version)
                return next(v for v in self.tuned() if v.version == version)
        raise UnknownIdError(
            f"no model version '{version}': GET /v1/models lists the bundles and tuned versions"
        )

    def restore_active_tuned(self) -> None:
        """At startup: serve the model store's active version, if it fits the catalog."""
        store = self._model_store()
        if store is None:
            return
        info = store.champion()
        if info is None:
            return
        try:
            model = store.load_model(info.version)
            items = store.vocabulary(info.version, "items")
            self.engine.set_serving_model(model, items, f"{info.model}@{info.version}")
        except Exception as exc:  # a stale tuned version must not stop the service
            log.warning("not serving tuned version %s: %s", info.version, exc)

    def current_bundle(self) -> str | None:
        """The bundle the CURRENT pointer names."""
        current = current_bundle_dir(self.artifacts)
        return current.name if current is not None else None
