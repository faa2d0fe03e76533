"""`shelfwise versions`: list, activate and roll back the versions of the artifacts registry
(bundles and tuned models). A running server serves what `ACTIVE` names after a restart, or
at once through `POST /v1/models/{version}/activate` / `POST /v1/models/rollback`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _registry(args: argparse.Namespace) -> Any:
    from shelfwise.artifacts.registry import Registry

    return Registry(Path(args.artifacts))


def _row(info: Any) -> dict[str, Any]:
    validation = info.metrics.get("validation", {}) if info.kind == "model" else {}
    return {
        "version": info.version,
        "kind": info.kind,
        "active": info.active,
        "created": info.created,
        "model": info.model or None,
        "serving_model": info.serving_model,
        "parent": info.parent,
        "validation": validation,
        "counts": info.manifest.get("counts", {}),
    }


def cmd_list(args: argparse.Namespace) -> int:
    """Every version, oldest first, the served ones marked."""
    rows = [_row(v) for v in _registry(args).versions()]
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print(f"no versions in {args.artifacts} (build one with: shelfwise build)")
        return 0
    print(f"{'':2}{'version':<9}{'kind':<8}{'created':<27}what")
    for row in rows:
        if row["kind"] == "model":
            what = f"{row['model']} " + " ".join(
                f"{k} {v:.4f}" for k, v in row["validation"].items()
            )
        else:
            counts = row["counts"]
            what = f"{counts.get('items', '?')} items, {counts.get('users', '?')} users"
            if row["serving_model"]:
                what += f", serving {row['serving_model']} (from {row['parent']})"
        mark = "*" if row["active"] else ""
        print(f"{mark:<2}{row['version']:<9}{row['kind']:<8}{row['created']:<27}{what}")
    return 0


def cmd_activate(args: argparse.Namespace) -> int:
    """Serve a version: a bundle as it is, a tuned model over the served bundle."""
    registry = _registry(args)
    info = registry.get(args.version)
    served = (
        registry.promote(info.version) if info.kind == "model" else registry.activate(info.version)
    )
    print(f"active: {served.version} ({served.kind})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    """Serve again what was served before the current version."""
    served = _registry(args).rollback()
    print(f"active: {served.version} ({served.kind})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `shelfwise versions {list,activate,rollback}`."""
    from shelfwise.cli.defaults import FromSettings

    p = sub.add_parser("versions", help="list, activate and roll back bundles and tuned models")
    versions = p.add_subparsers(dest="versions_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--artifacts",
            default=FromSettings("paths.artifacts", str),
            help="the artifacts registry (default: $SHELFWISE_PATHS__ARTIFACTS or var/artifacts)",
        )

    q = versions.add_parser("list", help="every version, the served ones marked with *")
    common(q)
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)
    q = versions.add_parser("activate", help="serve a version (restart or use the API)")
    q.add_argument("version", help="a version id, e.g. v0003")
    common(q)
    q.set_defaults(func=cmd_activate)
    q = versions.add_parser("rollback", help="serve what was served before")
    common(q)
    q.set_defaults(func=cmd_rollback)
