"""`shelfwise experiment create|status|stop`: live experiments from the command line.

They work on the store directly (`--store`, as `shelfwise keys` does), or through a running
server's API (`--api http://host:port --key swk_...`), which an embedded DuckDB store
needs while the server holds it. A server picks up what the store says within 30 s.

Variants come from `--spec FILE.json` (an `ExperimentSpec`) or from `--variants a,b`
with `--weights` and `--set VARIANT.FIELD=VALUE` (repeatable; VALUE is read as JSON when
it parses, e.g. `--set b.understand=false`, `--set b.exploration={"epsilon":0.1}`,
`--set b.model=itemknn`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shelfwise.errors import ConfigError, ShelfwiseError

SUMMARY_METRICS = ("ctr", "add_to_cart_rate", "conversion_rate", "revenue_per_visitor")


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment spec dict the arguments describe (validated by the caller)."""
    if args.spec:
        try:
            spec = json.loads(Path(args.spec).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"--spec: cannot read {args.spec}: {exc}") from exc
        if not isinstance(spec, dict):
            raise ConfigError("--spec: the file must hold one JSON object")
        spec.setdefault("experiment_id", args.experiment_id)
        return spec
    names = [n.strip() for n in (args.variants or "").split(",") if n.strip()]
    if len(names) < 2:
        raise ConfigError("--variants: name at least two variants, e.g. --variants control,new")
    weights = [1.0] * len(names)
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError as exc:
            raise ConfigError(f"--weights: numbers separated by commas ({exc})") from exc
        if len(weights) != len(names):
            raise ConfigError(f"--weights: {len(weights)} weights for {len(names)} variants")
    variants: dict[str, dict[str, Any]] = {
        n: {"name": n, "weight": w} for n, w in zip(names, weights, strict=True)
    }
    for item in args.set or ():
        key, sep, raw = item.partition("=")
        name, dot, path = key.partition(".")
        if not sep or not dot or not path:
            raise ConfigError(f"--set {item!r}: use VARIANT.FIELD=VALUE, e.g. new.understand=false")
        if name not in variants:
            raise ConfigError(f"--set {item!r}: no variant '{name}' (variants: {', '.join(names)})")
        target = variants[name]
        parts = path.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = _value(raw)
    built: dict[str, Any] = {
        "experiment_id": args.experiment_id,
        "variants": list(variants.values()),
    }
    if args.description:
        built["description"] = args.description
    return built


def _validated(spec: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from shelfwise.experiments.assignment import ExperimentSpec

    try:
        return ExperimentSpec.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"experiment spec: {where or 'spec'}: {first['msg']}") from exc


class _Api:
    """The few calls this command makes to a running server."""

    def __init__(self, url: str, key: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=60.0)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        try:
            r = self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ShelfwiseError(f"cannot reach {self.client.base_url}: {exc}") from exc
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise ShelfwiseError(f"{method} {path}: {r.status_code} {detail}")
        return r.json()


def _store_url(args: argparse.Namespace) -> str:
    from shelfwise.settings import Settings

    return str(args.store or Settings().store.url)


def _row_dict(row: Any) -> dict[str, Any]:
    return {
        "experiment_id": row.experiment_id,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "stopped_at": row.stopped_at.isoformat() if row.stopped_at else None,
        "spec": row.spec,
    }


def _run(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    """Through the API when --api is given, else on the store."""
    if args.api:
        return _Api(args.api, args.key).call(method, path, body)
    from shelfwise.experiments.live import LiveExperiments
    from shelfwise.store import open_store

    with open_store(_store_url(args)) as store:
        live = LiveExperiments(store)
        parts = path.strip("/").split("/")  # v1 experiments [id [results|stop]]
        if method == "POST" and len(parts) == 2:
            return _row_dict(live.create(_validated(body)))
        if len(parts) == 2:
            return [_row_dict(r) for r in live.all()]
        if len(parts) == 3:
            return _row_dict(live.get(parts[2]))
        if parts[3] == "stop":
            return _row_dict(live.stop(parts[2]))
        return live.results(parts[2])


def cmd_create(args: argparse.Namespace) -> int:
    """Create and start an experiment."""
    spec = _validated(spec_from_args(args)).model_dump(mode="json", exclude_none=True)
    row = _run(args, "POST", "/v1/experiments", spec)
    if args.json:
        print(json.dumps(row))
    else:
        names = ", ".join(v["name"] for v in row["spec"]["variants"])
        print(f"experiment {row['experiment_id']} running since {row['created_at']}: {names}")
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    """List experiments, or show one's results."""
    if not args.experiment_id:
        rows = _run(args, "GET", "/v1/experiments")
        if args.json:
            print(json.dumps(rows))
        elif not rows:
            print("no experiments (create one with: shelfwise experiment create ID ...)")
        for row in [] if args.json else rows:
            print(f"{row['experiment_id']:<24}{row['status']:<9}{row['created_at']}")
        return 0
    results = _run(args, "GET", f"/v1/experiments/{args.experiment_id}/results")
    if args.json:
        print(json.dumps(results))
        return 0
    srm = results["srm"]
    print(
        f"experiment {results['experiment_id']} ({results['status']}), "
        f"{results['start']} .. {results['end']}, surfaces {', '.join(results['surfaces'])}"
    )
    if srm.get("mismatch"):
        print(f"WARNING: sample-ratio mismatch (p = {srm['p_value']:.2g}): do not trust the rest")
    print(f"{'variant':<16}{'users':>8}" + "".join(f"{m:>22}" for m in SUMMARY_METRICS))
    for name, values in results["variants"].items():
        cells = "".join(f"{_fmt(values.get(m)):>22}" for m in SUMMARY_METRICS)
        print(f"{name:<16}{values['users']:>8}{cells}")
    for c in results["comparisons"]:
        lo, hi = c["lift_ci95"]
        print(
            f"{c['b']} vs {c['a']} {c['metric']}: lift {_fmt(c['lift'])} "
            f"[{_fmt(lo)}, {_fmt(hi)}], p {_fmt(c['p_value'])}, "
            f"always-valid p {_fmt(c.get('sequential_p_value'))}"
            + (" (CUPED)" if c.get("cuped") else "")
        )
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop an experiment."""
    row = _run(args, "POST", f"/v1/experiments/{args.experiment_id}/stop")
    if args.json:
        print(json.dumps(row))
    else:
        print(f"experiment {row['experiment_id']} {row['status']} at {row['stopped_at']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add `shelfwise experiment {create,status,stop}`."""
    p = sub.add_parser("experiment", help="create, follow and stop live A/B experiments")
    commands = p.add_subparsers(dest="experiment_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--store", default=None, help="store URL (default: $SHELFWISE_STORE)")
        q.add_argument("--api", default=None, help="a running server's URL, instead of --store")
        q.add_argument("--key", default=None, help="an admin API key for --api")
        q.add_argument("--json", action="store_true", help="print JSON")

    q = commands.add_parser("create", help="create and start an experiment")
    q.add_argument("experiment_id", help="letters, digits, '_', '.', '-'")
    q.add_argument("--spec", default=None, help="a JSON file holding the whole spec")
    q.add_argument("--variants", default=None, help="comma-separated names; the first is control")
    q.add_argument("--weights", default=None, help="comma-separated weights (default: equal)")
    q.add_argument(
        "--set", action="append", default=None, metavar="VARIANT.FIELD=VALUE", help="repeatable"
    )
    q.add_argument("--description", default="")
    common(q)
    q.set_defaults(func=cmd_create)

    q = commands.add_parser("status", help="list experiments, or one's results")
    q.add_argument("experiment_id", nargs="?", default=None)
    common(q)
    q.set_defaults(func=cmd_status)

    q = commands.add_parser("stop", help="stop an experiment (results stay readable)")
    q.add_argument("experiment_id")
    common(q)
    q.set_defaults(func=cmd_stop)
