"""One versioned registry for everything Shelfwise serves: bundles and tuned models.

Layout under `root`::

    root/
      ACTIVE                   the served version's id (one line; replaced atomically)
      HISTORY                  one JSON line per activation (what `rollback` walks back)
      versions/
        v0001/                 a bundle (kind "bundle"): catalogue, models, search service
          manifest.json        kind, created_at, metrics, and what the kind records
          ...
        v0002/                 a tuned model (kind "model")
          manifest.json
          model/               the saved Recommender (config.json + arrays.npz, no pickle)
          best.toml            `[model]` table of its configuration, for `shelfwise train`
          items.json           item vocabulary (optional; dense index -> external id)
          users.json           user vocabulary (optional)

A version is written into a hidden temporary folder (`Registry.draft`) and renamed into
place, so a version either exists completely or not at all; its id is claimed by that
rename, so concurrent writers never share an id. Versions are never modified after they are
written; `activate` only replaces `ACTIVE` (and appends to `HISTORY`).

One pointer says what is served. A bundle may name a tuned model version as the model of
its personalised recommendations (`manifest["serving_model"]`); activating a tuned model
while a bundle is served therefore writes a *derived* bundle (`derive`: the parent's files
hard-linked, the manifest naming the tuned version) and activates that, so what a restarted
server serves is always one complete version, and `rollback` returns to the parent.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shelfwise.errors import ConfigError, StoreError, UnknownIdError

if TYPE_CHECKING:
    from shelfwise.data.vocab import Vocabulary  # pandas: imported where a vocabulary is read
    from shelfwise.recommenders.base import Recommender

Kind = Literal["bundle", "model"]
KINDS: tuple[str, ...] = ("bundle", "model")
MANIFEST = "manifest.json"
_VERSION_RE = re.compile(r"^v(\d{4,})$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

__all__ = [
    "KINDS",
    "MANIFEST",
    "Draft",
    "Registry",
    "VersionInfo",
    "config_toml",
    "current_bundle_dir",
    "json_ready",
    "toml_value",
]


@dataclass(frozen=True)
class VersionInfo:
    """What one version's manifest says, plus whether it is served now.

    `active` is true for the version `ACTIVE` names and, when that is a bundle serving a
    tuned model, for that model version too.
    """

    version: str
    kind: str
    created: str
    metrics: dict[str, Any]
    path: Path
    manifest: dict[str, Any]
    active: bool = False

    @property
    def model(self) -> str:
        """A tuned model's registry name ("" for a bundle)."""
        return str(self.manifest.get("model", ""))

    @property
    def config(self) -> dict[str, Any]:
        """A tuned model's configuration ({} for a bundle)."""
        return dict(self.manifest.get("config", {}))

    @property
    def dataset(self) -> str:
        """The data set a tuned model was tuned on ("" if not recorded)."""
        return str(self.manifest.get("dataset", ""))

    @property
    def extra(self) -> dict[str, Any]:
        """Anything else the writer recorded (protocol, promotion decision, ...)."""
        return dict(self.manifest.get("extra", {}))

    @property
    def parent(self) -> str | None:
        """The bundle a derived bundle was made from, if any."""
        value = self.manifest.get("parent")
        return str(value) if value else None

    @property
    def serving_model(self) -> str | None:
        """The tuned model version a bundle personalises with, if any."""
        value = self.manifest.get("serving_model")
        return str(value) if value else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the path as a string)."""
        return {
            "version": self.version,
            "kind": self.kind,
            "created": self.created,
            "active": self.active,
            "metrics": self.metrics,
            "model": self.model,
            "config": self.config,
            "dataset": self.dataset,
            "extra": self.extra,
            "path": str(self.path),
        }


@dataclass
class Draft:
    """A version being written: fill `path`, add to `manifest`; committed on success."""

    path: Path
    kind: str
    manifest: dict[str, Any] = field(default_factory=dict)
    #: The id the version got, once committed.
    version: str = ""


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


def json_ready(value: Any) -> Any:
    """Floats that JSON cannot hold (nan/inf) become None; containers are walked."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_ready(value.item())
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _link_tree(source: Path, target: Path) -> None:
    """Recreate `source` under `target` with hard links (copies where links fail)."""
    for folder, _, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        (target / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            src, dst = Path(folder) / name, target / rel / name
            try:
                os.link(src, dst)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(src, dst)


class Registry:
    """Versioned bundles and tuned models under one folder; see the module doc."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._versions = self.root / "versions"

    def __repr__(self) -> str:
        return f"Registry({str(self.root)!r})"

    # -- reading ---------------------------------------------------------------------------
    def _ids(self) -> list[str]:
        if not self._versions.is_dir():
            return []
        found = [
            p.name
            for p in self._versions.iterdir()
            if _VERSION_RE.match(p.name) and (p / MANIFEST).is_file()
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def path(self, version: str) -> Path:
        """The folder of `version`; `UnknownIdError` if there is no such version."""
        folder = self._versions / str(version)
        if not _VERSION_RE.match(str(version)) or not (folder / MANIFEST).is_file():
            known = ", ".join(self._ids()) or "none yet"
            raise UnknownIdError(f"unknown version {version!r}; versions: {known}")
        return folder

    def _active_id(self) -> str | None:
        marker = self.root / "ACTIVE"
        if not marker.exists():
            return None
        value = marker.read_text(encoding="utf-8").strip()
        return value or None

    def _manifest(self, version: str) -> dict[str, Any]:
        file = self.path(version) / MANIFEST
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{file} is unreadable ({exc})") from exc
        if not isinstance(manifest, dict):
            raise StoreError(f"{file} holds {type(manifest).__name__}, not an object")
        return manifest

    def _served(self) -> set[str]:
        """The active id, plus the tuned model an active bundle serves."""
        current = self._active_id()
        if current is None:
            return set()
        served = {current}
        try:
            model = self._manifest(current).get("serving_model")
        except (UnknownIdError, StoreError):
            return served
        if model:
            served.add(str(model))
        return served

    def get(self, version: str) -> VersionInfo:
        """The manifest of one version."""
        manifest = self._manifest(version)
        return VersionInfo(
            version=version,
            kind=str(manifest.get("kind", "")),
            created=str(manifest.get("created_at", "")),
            metrics=dict(manifest.get("metrics", {})),
            path=self.path(version),
            manifest=manifest,
            active=version in self._served(),
        )

    def versions(self, kind: str | None = None) -> list[VersionInfo]:
        """Every version (of `kind`, if given), oldest first; unreadable ones skipped."""
        out = []
        for version in self._ids():
            try:
                info = self.get(version)
            except StoreError:
                continue
            if kind is None or info.kind == kind:
                out.append(info)
        return out

    def active(self) -> VersionInfo | None:
        """The served version, or None when none has been activated."""
        current = self._active_id()
        if current is None:
            return None
        return self.get(current)

    def champion(self) -> VersionInfo | None:
        """The tuned model served now: the active version if it is a model, else the tuned
        model the active bundle serves; None when neither."""
        active = self.active()
        if active is None:
            return None
        if active.kind == "model":
            return active
        if active.serving_model:
            return self.get(active.serving_model)
        return None

    def history(self) -> list[dict[str, Any]]:
        """Every activation, oldest first: {"version", "at", "previous"}."""
        file = self.root / "HISTORY"
        if not file.exists():
            return []
        out = []
        for line in file.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line of a crashed writer
        return out

    # -- writing ---------------------------------------------------------------------------
    @contextmanager
    def draft(self, kind: str) -> Iterator[Draft]:
        """Write a new version: fill `draft.path` and `draft.manifest` inside the block.

        On a clean exit the manifest is written (with kind and created_at) and the folder is
        renamed into place (`draft.version` is then its id); on an exception nothing is
        left behind."""
        if kind not in KINDS:
            raise ConfigError(f"unknown version kind {kind!r}; use one of {', '.join(KINDS)}")
        self._versions.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self._versions))
        draft = Draft(tmp, kind)
        try:
            yield draft
            manifest = {"kind": kind, "created_at": _now(), **draft.manifest}
            manifest["kind"] = kind
            manifest.setdefault("metrics", {})
            (tmp / MANIFEST).write_text(
                json.dumps(json_ready(manifest), indent=2) + "\n", encoding="utf-8"
            )
            tmp.chmod(0o755)  # mkdtemp makes it private; a version is readable like any file
            draft.version = self._claim(tmp, manifest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _claim(self, tmp: Path, manifest: dict[str, Any]) -> str:
        """Rename `tmp` to the next free version id (retrying if another writer won); the
        manifest gets the id first (rewritten in the temporary folder, before the rename)."""
        existing = self._ids()
        number = int(existing[-1][1:]) + 1 if existing else 1
        for _ in range(1000):
            target = self._versions / f"v{number:04d}"
            if not target.exists():
                manifest["version"] = target.name
                (tmp / MANIFEST).write_text(
                    json.dumps(json_ready(manifest), indent=2) + "\n", encoding="utf-8"
                )
                try:
                    os.rename(tmp, target)  # fails if target exists (non-empty dir) or races
                    return target.name
                except OSError:
                    if not target.exists():
                        raise
            number += 1
        raise StoreError(f"{self._versions}: could not claim a new version id")

    def activate(self, version: str, *, _rollback: bool = False) -> VersionInfo:
        """Serve `version` from now on (atomic replace of `ACTIVE`, logged in `HISTORY`)."""
        self.path(version)
        previous = self._active_id()
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".ACTIVE.{os.getpid()}.tmp"
        tmp.write_text(version + "\n", encoding="utf-8")
        tmp.replace(self.root / "ACTIVE")
        entry: dict[str, Any] = {"version": version, "at": _now(), "previous": previous}
        if _rollback:
            entry["rollback"] = True
        with (self.root / "HISTORY").open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")
        return self.get(version)

    def _stack(self) -> list[str]:
        """The activations still in force, oldest first: a roll back pops the latest."""
        stack: list[str] = []
        for entry in self.history():
            if entry.get("rollback"):
                if stack:
                    stack.pop()
            else:
                stack.append(str(entry.get("version")))
        return stack

    def rollback(self) -> VersionInfo:
        """Serve again what was served before the current version (`ConfigError` when there
        is nothing to go back to). Successive roll backs walk further back."""
        current = self._active_id()
        stack = self._stack()
        if len(stack) >= 2 and stack[-1] == current:
            previous = stack[-2]
            try:
                self.path(previous)
            except UnknownIdError:
                pass
            else:
                return self.activate(previous, _rollback=True)
        raise ConfigError(
            f"{self.root}: nothing to roll back to (active: {current or 'none'}); "
            "activate a version by id instead"
        )

    def derive(
        self,
        bundle: str,
        *,
        replace: Mapping[str, Callable[[Path], None]] | None = None,
        **changes: Any,
    ) -> str:
        """A new bundle version with `bundle`'s files (hard-linked) and its manifest updated
        by `changes` (e.g. `serving_model="v0007"`), recording `parent`. Returns its id.

        `replace` maps top-level entries of the bundle (e.g. `"search"`) to a function
        that writes that entry's new content at the path it is given; those entries are
        not linked from the parent (writing into a hard link would change the parent)."""
        parent = self.get(bundle)
        if parent.kind != "bundle":
            raise ConfigError(f"{bundle} is a {parent.kind}, not a bundle")
        replace = dict(replace or {})
        bad = [name for name in replace if name == MANIFEST or "/" in name or name in ("", ".")]
        if bad:
            raise ConfigError(f"derive: cannot replace {bad}; name top-level bundle entries")
        with self.draft("bundle") as draft:
            for name, write in replace.items():
                write(draft.path / name)
            for item in parent.path.iterdir():
                if item.name == MANIFEST or item.name in replace:
                    continue
                if item.is_dir():
                    _link_tree(item, draft.path / item.name)
                else:
                    _link_tree_file(item, draft.path / item.name)
            manifest = {k: v for k, v in parent.manifest.items() if k not in ("version",)}
            manifest.update(changes, parent=bundle, created_at=_now())
            draft.manifest = manifest
        return draft.version

    # -- tuned models ----------------------------------------------------------------------
    def save_model(
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
        """Write a tuned model version (model, best.toml, manifest, vocabularies) -> its id.

        `config` defaults to the model's own configuration. With `activate`, the new
        version is served once it is completely written (see `promote`)."""
        params = dict(config if config is not None else model.config.model_dump(mode="json"))
        with self.draft("model") as draft:
            model.save(draft.path / "model")
            created = _now()
            protocol = (extra or {}).get("protocol")
            comments = [
                f"shelfwise model {model.name}, saved {created}"
                + (f" from dataset {dataset}" if dataset else ""),
                f"reproduce: shelfwise train --model {model.name} --config best.toml"
                + (f" --dataset {dataset}" if dataset else "")
                + (f" --protocol {protocol}" if protocol else ""),
            ]
            (draft.path / "best.toml").write_text(
                config_toml(model.name, params, comments), "utf-8"
            )
            draft.manifest = {
                "model": model.name,
                "dataset": dataset,
                "metrics": dict(metrics),
                "config": params,
                "extra": dict(extra or {}),
            }
            if items is not None:
                items.save(draft.path / "items.json")
            if users is not None:
                users.save(draft.path / "users.json")
        if activate:
            self.promote(draft.version)
        return draft.version

    def promote(self, model_version: str) -> VersionInfo:
        """Serve a tuned model: over the active bundle (a derived bundle naming it is written
        and activated), or on its own when no bundle is served."""
        info = self.get(model_version)
        if info.kind != "model":
            raise ConfigError(f"{model_version} is a {info.kind}, not a tuned model")
        active = self.active()
        if active is not None and active.kind == "bundle":
            if active.serving_model == model_version:
                return active
            base = active.parent if active.serving_model and active.parent else active.version
            return self.activate(self.derive(base, serving_model=model_version))
        return self.activate(model_version)

    def load_model(self, version: str | None = None) -> Recommender:
        """The saved model of a tuned `version` (default: the champion)."""
        from shelfwise.recommenders.base import load_model

        if version is None:
            champion = self.champion()
            if champion is None:
                raise UnknownIdError(f"{self.root}: no tuned model is served; activate one first")
            version = champion.version
        folder = self.path(version)
        if not (folder / "model").is_dir():
            raise ConfigError(f"{version} is not a tuned model version")
        return load_model(folder / "model")

    def vocabulary(self, version: str, kind: str = "items") -> Vocabulary | None:
        """The `items` or `users` vocabulary saved with a tuned `version`, if any."""
        if kind not in ("items", "users"):
            raise ValueError(f"kind must be 'items' or 'users', got {kind!r}")
        file = self.path(version) / f"{kind}.json"
        from shelfwise.data.vocab import Vocabulary

        return Vocabulary.load(file) if file.exists() else None


def current_bundle_dir(root: Path) -> Path | None:
    """The served bundle's folder in the registry at `root`, if a bundle is served."""
    active = Registry(root).active()
    return active.path if active is not None and active.kind == "bundle" else None


def _link_tree_file(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
