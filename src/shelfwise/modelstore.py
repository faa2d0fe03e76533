"""Versioned model bundles on disk, with one active (served) version.

Layout under `root`::

    root/
      ACTIVE                   the active version's id (one line; replaced atomically)
      versions/
        v0001/
          model/               the saved Recommender (config.json + arrays.npz, no pickle)
          best.toml            `[model]` table of its configuration, for `shelfwise train`
          meta.json            model, metrics, config, dataset, created, extra
          items.json           item vocabulary (optional; dense index -> external id)
          users.json           user vocabulary (optional)

A version is written into a hidden temporary folder and renamed into place, so a version
either exists completely or not at all; its id is claimed by that rename, so concurrent
writers never share an id. Versions are never modified after they are written; `activate`
only rewrites `ACTIVE`.

API (kept small for the HTTP service): `save_version`, `versions`, `get`, `active`,
`activate`, `load`, `path`. Unknown version ids raise `UnknownIdError`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import StoreError, UnknownIdError
from shelfwise.recommenders.base import Recommender, load_model

_VERSION_RE = re.compile(r"^v(\d{4,})$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class VersionInfo:
    """What `meta.json` of one version says, plus whether it is the active one."""

    version: str
    model: str
    created: str
    metrics: dict[str, Any]
    config: dict[str, Any]
    dataset: str
    path: Path
    active: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the path as a string)."""
        return {
            "version": self.version,
            "model": self.model,
            "created": self.created,
            "dataset": self.dataset,
            "active": self.active,
            "metrics": self.metrics,
            "config": self.config,
            "extra": self.extra,
            "path": str(self.path),
        }


# -- TOML (the subset a model configuration needs) ------------------------------------------
def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """One TOML value: bool, int, float, string, list or (inline) table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + inner + "}" if inner else "{}"
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} as TOML")


def config_toml(model: str, config: Mapping[str, Any], comments: list[str] | None = None) -> str:
    """A `[model]` table of parameters (None values left out), as `--config` files take."""
    lines = [f"# {c}" for c in comments or []]
    if lines:
        lines.append("")
    lines.append(f"[{_toml_key(model)}]")
    for key, value in config.items():
        if value is None:  # TOML has no null: the model's default applies
            continue
        lines.append(f"{_toml_key(str(key))} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def _json_ready(value: Any) -> Any:
    """Floats that JSON cannot hold (nan/inf) become None; containers are walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_ready(value.item())
    return value


class ModelStore:
    """Versioned model bundles under one folder; see the module doc for the layout."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._versions = self.root / "versions"

    # -- reading ---------------------------------------------------------------------------
    def _ids(self) -> list[str]:
        if not self._versions.is_dir():
            return []
        found = [p.name for p in self._versions.iterdir() if _VERSION_RE.match(p.name)]
        return sorted(found, key=lambda v: int(v[1:]))

    def path(self, version: str) -> Path:
        """The folder of `version`; `UnknownIdError` if there is no such version."""
        if not _VERSION_RE.match(str(version)) or not (self._versions / version).is_dir():
            known = ", ".join(self._ids()) or "none yet"
            raise UnknownIdError(f"unknown model version {version!r}; versions: {known}")
        return self._versions / version

    def _active_id(self) -> str | None:
        marker = self.root / "ACTIVE"
        if not marker.exists():
            return None
        value = marker.read_text(encoding="utf-8").strip()
        return value or None

    def get(self, version: str) -> VersionInfo:
        """The metadata of one version."""
        folder = self.path(version)
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{folder}/meta.json is unreadable ({exc})") from exc
        return VersionInfo(
            version=version,
            model=str(meta.get("model", "")),
            created=str(meta.get("created", "")),
            metrics=dict(meta.get("metrics", {})),
            config=dict(meta.get("config", {})),
            dataset=str(meta.get("dataset", "")),
            path=folder,
            active=version == self._active_id(),
            extra=dict(meta.get("extra", {})),
        )

    def versions(self) -> list[VersionInfo]:
        """Every version, oldest first."""
        return [self.get(v) for v in self._ids()]

    def active(self) -> VersionInfo | None:
        """The active version, or None when none has been activated."""
        current = self._active_id()
        if current is None:
            return None
        return self.get(current)

    def load(self, version: str | None = None) -> Recommender:
        """The saved model of `version` (default: the active one)."""
        if version is None:
            current = self._active_id()
            if current is None:
                raise UnknownIdError(f"{self.root}: no active model version; activate one first")
            version = current
        return load_model(self.path(version) / "model")

    def vocabulary(self, version: str, kind: str = "items") -> Vocabulary | None:
        """The `items` or `users` vocabulary saved with `version`, if any."""
        if kind not in ("items", "users"):
            raise ValueError(f"kind must be 'items' or 'users', got {kind!r}")
        file = self.path(version) / f"{kind}.json"
        return Vocabulary.load(file) if file.exists() else None

    # -- writing ---------------------------------------------------------------------------
    def save_version(
        self,
        model: Recommender,
        metrics: Mapping[str, Any],
        config: Mapping[str, Any] | None = None,
        dataset: str = "",
        *,
        items: Vocabulary | None = None,
        users: Vocabulary | None = None,
        extra: Mapping[str, Any] | None = None,
        activate: bool = False,
    ) -> str:
        """Write a new version (model, best.toml, meta.json, vocabularies) -> its id.

        `config` defaults to the model's own configuration. With `activate`, the new
        version becomes the active one once it is completely written.
        """
        params = dict(config if config is not None else model.config.model_dump(mode="json"))
        self._versions.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self._versions))
        try:
            model.save(tmp / "model")
            created = datetime.now(UTC).isoformat(timespec="seconds")
            protocol = (extra or {}).get("protocol")
            comments = [
                f"shelfwise model {model.name}, saved {created}"
                + (f" from dataset {dataset}" if dataset else ""),
                f"reproduce: shelfwise train --model {model.name} --config best.toml"
                + (f" --dataset {dataset}" if dataset else "")
                + (f" --protocol {protocol}" if protocol else ""),
            ]
            (tmp / "best.toml").write_text(config_toml(model.name, params, comments), "utf-8")
            meta = {
                "model": model.name,
                "created": created,
                "dataset": dataset,
                "metrics": _json_ready(dict(metrics)),
                "config": _json_ready(params),
                "extra": _json_ready(dict(extra or {})),
            }
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
            if items is not None:
                items.save(tmp / "items.json")
            if users is not None:
                users.save(tmp / "users.json")
            tmp.chmod(0o755)  # mkdtemp makes it private; a version is readable like any file
            version = self._claim(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if activate:
            self.activate(version)
        return version

    def _claim(self, tmp: Path) -> str:
        """Rename `tmp` to the next free version id (retrying if another writer won)."""
        existing = self._ids()
        number = int(existing[-1][1:]) + 1 if existing else 1
        for _ in range(1000):
            target = self._versions / f"v{number:04d}"
            try:
                os.rename(tmp, target)  # fails if target exists (non-empty dir) or races
                return target.name
            except OSError:
                if not target.exists():
                    raise
                number += 1
        raise StoreError(f"{self._versions}: could not claim a new version id")

    def activate(self, version: str) -> VersionInfo:
        """Make `version` the active one (atomic replace of `ACTIVE`)."""
        self.path(version)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".ACTIVE.{os.getpid()}.tmp"
        tmp.write_text(version + "\n", encoding="utf-8")
        tmp.replace(self.root / "ACTIVE")
        return self.get(version)
