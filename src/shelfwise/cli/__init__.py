"""The `shelfwise` command: one subcommand per stage."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelfwise import __version__
from shelfwise.cli.defaults import FromSettings, resolve
from shelfwise.errors import ShelfwiseError
from shelfwise.search.modes import SEARCH_MODES

if TYPE_CHECKING:
    from shelfwise.settings import Settings

log = logging.getLogger("shelfwise.cli")


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        default=None,
        help="store URL: duckdb:///path.duckdb or postgresql://... "
        "(default: $SHELFWISE_STORE or duckdb:///var/shelfwise.duckdb)",
    )


def _store_url(args: argparse.Namespace) -> str:
    if args.store:
        return str(args.store)
    from shelfwise.settings import Settings

    return str(Settings().store.url)


def _parse_mapping(pairs: Sequence[str]) -> dict[str, dict[str, str]]:
    """`--map items.sku=item_id` -> {"items": {"sku": "item_id"}}."""
    out: dict[str, dict[str, str]] = {"items": {}, "users": {}, "events": {}}
    for pair in pairs:
        left, sep, target = pair.partition("=")
        kind, dot, column = left.partition(".")
        if not sep or not dot or kind not in out or not column or not target:
            raise ShelfwiseError(
                f"--map {pair!r}: expected KIND.SOURCE_COLUMN=FIELD with KIND one of "
                "items, users, events (e.g. --map items.sku=item_id)"
            )
        out[kind][column] = target
    return out


def cmd_ingest(args: argparse.Namespace) -> int:
    """Validate files (or a named dataset) completely, then write them in one transaction."""
    from shelfwise.data.datasets import load_dataset
    from shelfwise.data.io import load_records
    from shelfwise.store import open_store

    if args.dataset and (args.items or args.users or args.events):
        raise ShelfwiseError("use either --dataset or --items/--users/--events, not both")
    if not (args.dataset or args.items or args.users or args.events):
        raise ShelfwiseError("nothing to ingest: give --dataset NAME or --items/--users/--events")
    t0 = time.perf_counter()
    frames: dict[str, Any] = {}
    if args.dataset:
        ds = load_dataset(args.dataset)
        frames = {"items": ds.items, "users": ds.users, "events": ds.events}
    else:
        from shelfwise.settings import Settings

        mapping = _parse_mapping(args.map or [])
        bounds = Settings().ingest.time_bounds()
        for kind in ("items", "users", "events"):
            path = getattr(args, kind)
            if path:
                log.info("validating %s from %s", kind, path)
                frames[kind] = load_records(
                    path, kind, mapping[kind], args.unknown_columns, bounds=bounds
                )
    with open_store(_store_url(args)) as store:
        report = store.ingest(**frames)
    summary = {
        "store": _store_url(args),
        "items": report.items,
        "users": report.users,
        "events": report.events,
        "duplicate_events": report.duplicate_events,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    print(json.dumps(summary) if args.json else _kv(summary))
    return 0


def _kv(d: dict[str, Any]) -> str:
    return "\n".join(f"{k:<17}{v}" for k, v in d.items())


def cmd_stats(args: argparse.Namespace) -> int:
    """Counts, sparsity, events per type and top categories."""
    from shelfwise.store import open_store
    from shelfwise.store.stats import format_stats, store_stats

    with open_store(_store_url(args)) as store:
        stats = store_stats(store)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    """List the public datasets Shelfwise can load and whether they are present."""
    from shelfwise.data.datasets import available, dataset_path, is_available

    for name in available():
        where = str(dataset_path(name)) if is_available(name) else "not found"
        print(f"{name:<18} {where}")
    return 0


def cmd_generate_demo(args: argparse.Namespace) -> int:
    """Write a synthetic demo store (items.jsonl, users.jsonl, events.csv)."""
    from shelfwise.data.demo import DemoConfig, generate, write_demo

    config = DemoConfig(seed=args.seed, n_items=args.items, n_users=args.users, days=args.days)
    paths = write_demo(generate(config, progress=True), Path(args.out))
    print(_kv({k: str(v) for k, v in paths.items()}))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    """Train the models (tuning the personalisation one within `--tune-budget`) and build
    the search index from the store."""
    from shelfwise.artifacts import ensure_bundle
    from shelfwise.store import open_store

    settings = _settings(args.search_mode, args.tune_budget)
    judged = Path(args.judgements) if args.judgements else None
    if judged is not None:
        lacking = [f for f in ("queries.tsv", "qrels.tsv") if not (judged / f).is_file()]
        if lacking:  # before any training, not after it
            raise ShelfwiseError(
                f"--judgements {judged}: not a judged folder (lacks {', '.join(lacking)})"
            )
    with open_store(_store_url(args)) as store:
        bundle, built = ensure_bundle(
            store, Path(args.artifacts), rebuild=args.rebuild, search_dense=settings.search.dense,
            engine=settings.engine, cache_dir=settings.paths.embeddings,
            tuning=settings.tuning, retune=args.retune,
            judgements=judged,
        )  # fmt: skip
    state = "built" if built else "up to date"
    print(f"bundle {bundle.directory} ({state}): {json.dumps(bundle.manifest['counts'])}")
    tuned = bundle.manifest.get("tuning")
    if tuned:
        how = f"reused from {tuned['reused_from']}" if tuned.get("reused_from") else "tuned"
        print(
            f"personalisation: {tuned['model']} {json.dumps(tuned['config'])} ({how}; "
            f"{tuned['metric']}={tuned.get('validation')} on validation, "
            f"{tuned.get('trials')} trials)"
        )
    return 0


def _settings(search_mode: str | None = None, tune_budget: float | None = None) -> Settings:
    """`Settings()` from the environment, with `--search-mode` and `--tune-budget` winning
    when given."""
    from shelfwise.settings import Settings

    settings = Settings()
    if search_mode:  # argparse checked the value
        settings = settings.with_(search={"mode": search_mode})
    if tune_budget is not None:
        if tune_budget < 0:
            raise ShelfwiseError(f"--tune-budget must be >= 0 seconds, got {tune_budget:g}")
        settings = settings.with_(tuning={"build_budget_seconds": tune_budget})
    return settings


def _serve(
    store_url: str,
    artifacts: Path,
    host: str,
    port: int,
    rebuild: bool,
    auth: bool = True,
    workers: int = 1,
    search_mode: str | None = None,
    tune_budget: float | None = None,
    retune: bool = False,
) -> int:
    from shelfwise.artifacts import Registry, ensure_bundle
    from shelfwise.serve.app import serve
    from shelfwise.store import open_store

    settings = _settings(search_mode, tune_budget).with_(
        store={"url": store_url}, paths={"artifacts": artifacts}
    )
    active = Registry(artifacts).active()
    if rebuild or retune or active is None or active.kind != "bundle":
        # build here, where a bad store is a clear error; the server then only loads it
        with open_store(store_url) as store:
            bundle, _ = ensure_bundle(
                store, artifacts, rebuild=rebuild, search_dense=settings.search.dense,
                engine=settings.engine, cache_dir=settings.paths.embeddings, reuse_stale=True,
                tuning=settings.tuning, retune=retune,
            )  # fmt: skip
            log.info("built bundle %s", bundle.directory)
    # the server starts on the active bundle whatever arrived since (module `serve.app`)
    settings = settings.with_(serve={"auth": auth, "rebuild": False})
    keys = "API keys required (shelfwise keys create)" if auth else "auth OFF: no API keys needed"
    print(f"Shelfwise is serving on http://{host}:{port}  [{keys}]  (Ctrl+C to stop)", flush=True)
    serve(settings, host, port, workers)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the HTTP API over whatever the store holds."""
    return _serve(
        _store_url(args),
        Path(args.artifacts),
        args.host,
        args.port,
        args.rebuild,
        auth=not args.no_auth,
        workers=args.workers,
        search_mode=args.search_mode,
        tune_budget=args.tune_budget,
        retune=args.retune,
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate, ingest, train, index and serve the demo store; reuses what exists."""
    from shelfwise.data.demo import DemoConfig, generate, write_demo
    from shelfwise.data.io import load_records
    from shelfwise.store import open_store

    root = Path(args.dir)
    data_dir, db = root / "data", (root / "shelfwise.duckdb").resolve()
    store_url = f"duckdb:///{db}"
    files = {k: data_dir / f for k, f in (("items", "items.jsonl"), ("users", "users.jsonl"))}
    files["events"] = data_dir / "events.csv"
    if not all(p.exists() for p in files.values()):
        log.info("generating the demo store (seed %d) in %s", args.seed, data_dir)
        write_demo(generate(DemoConfig(seed=args.seed), progress=True), data_dir)
    with open_store(store_url) as store:
        if store.counts()["items"] == 0:
            log.info("ingesting %s into %s", data_dir, store_url)
            frames = {k: load_records(p, k) for k, p in files.items()}
            report = store.ingest(**frames)
            log.info(
                "ingested %d items, %d users, %d events", report.items, report.users, report.events
            )
    # the demo tunes its personalisation model (once: later runs reuse the choice)
    budget = args.tune_budget
    if budget is None:
        from shelfwise.settings import Settings

        budget = Settings().tuning.demo_budget_seconds
    if args.no_serve:
        from shelfwise.artifacts import ensure_bundle

        settings = _settings(args.search_mode, budget)
        with open_store(store_url) as store:
            bundle, _ = ensure_bundle(
                store, root / "artifacts", search_dense=settings.search.dense,
                engine=settings.engine, cache_dir=settings.paths.embeddings,
                tuning=settings.tuning, retune=args.retune,
            )  # fmt: skip
        print(f"demo ready: {store_url}, bundle {bundle.directory}")
        return 0
    # the local demo runs without API keys (printed at start); `shelfwise serve` needs them
    return _serve(
        store_url, root / "artifacts", args.host, args.port, rebuild=False, auth=False,
        search_mode=args.search_mode, tune_budget=budget, retune=args.retune,
    )  # fmt: skip


def _tune_args(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--tune-budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds a new bundle spends tuning its personalisation model, refitted on all "
        f"the data and served; 0: off (default: {default})",
    )
    p.add_argument(
        "--retune",
        action="store_true",
        help="tune again (and rebuild) instead of reusing an earlier build's tuned choice",
    )


def _search_mode_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--search-mode",
        choices=("auto", *SEARCH_MODES),
        default=None,
        help="how /v1/search finds candidates: auto (hybrid when the embedding model "
        "loads, else lexical), lexical (BM25F), hybrid (BM25F + MiniLM embeddings, score "
        "fusion) or semantic; all but lexical also train the search re-ranker with dense "
        "features (default: $SHELFWISE_SEARCH_MODE, else auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `shelfwise` command."""
    parser = argparse.ArgumentParser(prog="shelfwise", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shelfwise {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", help="load items/users/events files or a named dataset")
    p.add_argument("--items", help="items file (.csv, .tsv, .jsonl, .parquet; .gz ok)")
    p.add_argument("--users", help="users file")
    p.add_argument("--events", help="events file")
    p.add_argument("--dataset", help="a public dataset by name (see `shelfwise datasets`)")
    p.add_argument(
        "--map",
        action="append",
        metavar="KIND.COLUMN=FIELD",
        help="rename a source column, e.g. --map items.sku=item_id (repeatable)",
    )
    p.add_argument(
        "--unknown-columns",
        choices=("keep", "reject"),
        default="keep",
        help="columns that are not Shelfwise fields: keep them in attributes, or fail",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    _store_arg(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", help="counts, sparsity, events per type, top categories")
    p.add_argument("--json", action="store_true", help="print JSON")
    _store_arg(p)
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("datasets", help="list the public datasets and where they are")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("generate-demo", help="write a synthetic demo store to a folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--items", type=int, default=5000)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--days", type=int, default=90)
    p.set_defaults(func=cmd_generate_demo)

    for name, func, helptext in (
        ("build", cmd_build, "train the default models and build the search index"),
        ("serve", cmd_serve, "serve the HTTP API over the store"),
    ):
        p = sub.add_parser(name, help=helptext)
        _store_arg(p)
        p.add_argument(
            "--artifacts",
            default=FromSettings("paths.artifacts", str),
            help="the artifacts registry (default: $SHELFWISE_PATHS__ARTIFACTS or var/artifacts)",
        )
        p.add_argument(
            "--rebuild",
            action="store_true",
            help="retrain even if up to date"
            if name == "build"
            else "retrain before serving (default: serve the active bundle, catching up online)",
        )
        _search_mode_arg(p)
        _tune_args(p, "$SHELFWISE_TUNING__BUILD_BUDGET_SECONDS, else 0")
        if name == "build":
            p.add_argument(
                "--judgements",
                default=None,
                metavar="DIR",
                help="learn the search re-ranker from this judged folder (queries.tsv + "
                "qrels.tsv over the store's item ids) instead of the search events",
            )
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=8000)
            p.add_argument(
                "--no-auth", action="store_true", help="serve without API keys (local use only)"
            )
            p.add_argument(
                "--workers", type=int, default=1, help="API processes (>1 needs PostgreSQL)"
            )
        p.set_defaults(func=func)

    p = sub.add_parser("demo", help="generate, ingest, train and serve the demo store")
    p.add_argument("--dir", default="var/demo", help="where the demo's data and store live")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--no-serve", action="store_true", help="prepare everything, do not serve")
    _search_mode_arg(p)
    _tune_args(p, "$SHELFWISE_TUNING__DEMO_BUDGET_SECONDS, else 180")
    p.set_defaults(func=cmd_demo)
    from shelfwise.cli.evaluate import add_parser as add_evaluate_parser

    add_evaluate_parser(sub)
    from shelfwise.cli.evaluate_search import add_parser as add_evaluate_search_parser

    add_evaluate_search_parser(sub)
    from shelfwise.cli.search import add_parser as add_search_parser

    add_search_parser(sub)
    from shelfwise.cli.tune import add_parser as add_tune_parser

    add_tune_parser(sub)
    from shelfwise.cli.tune_search import add_parser as add_tune_search_parser

    add_tune_search_parser(sub)
    from shelfwise.cli.train import add_parser as add_train_parser

    add_train_parser(sub)
    from shelfwise.cli.keys import add_parser as add_keys_parser

    add_keys_parser(sub)
    from shelfwise.cli.versions import add_parser as add_versions_parser

    add_versions_parser(sub)
    from shelfwise.cli.experiment import add_parser as add_experiment_parser

    add_experiment_parser(sub)
    from shelfwise.cli.simulate import add_parser as add_simulate_parser

    add_simulate_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `shelfwise` console script."""
    from shelfwise.cli.tune import search_target

    args = resolve(build_parser().parse_args(search_target(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except ShelfwiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
