"""`shelfwise tune-search`: tune the search ranking parameters with Optuna, cross-validated
by query, and serve them.

    shelfwise tune-search --judgements ../shared/data/beauty-search-dev [--folds 5]
                          [--trials 40] [--time-budget 600] [--mode hybrid]
                          [--artifacts var/artifacts] [--bundle v0003] [--no-activate]
    shelfwise tune-search --store duckdb:///var/shelfwise.duckdb      # the click log
    shelfwise tune-search --judgements DIR --corpus amazon-beauty --no-write  # no bundle

Judgements come from a judged folder (`--judgements DIR`: `queries.tsv` + `qrels.tsv`,
doc ids = the catalogue's item ids) or, without one, from the store's click log (search ->
click / cart / purchase, graded 1 / 2 / 3). The search service tuned is the bundle's
(`--bundle`, default the active one); `--corpus NAME` tunes a service built from a dataset
instead (nothing is written). The report gives the out-of-fold nDCG@10 of the tuned and the
default parameters (`shelfwise.tuning.search`); the parameters tuned on every query go into
a new bundle version (its search service re-configured), activated unless `--no-activate`.
`--mode hybrid` tunes the fusion weight too (dense retrieval: MiniLM embeddings, cached).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shelfwise.cli.defaults import FromSettings
from shelfwise.errors import ConfigError
from shelfwise.search.modes import SEARCH_MODES

if TYPE_CHECKING:
    from shelfwise.settings import Settings

log = logging.getLogger("shelfwise.cli")


def _service_and_judged(args: argparse.Namespace, settings: Settings) -> tuple[Any, Any, Any]:
    """(the service to tune, the judgements, the bundle's version or None)."""
    from shelfwise.artifacts import Registry
    from shelfwise.search.build import load_search_service
    from shelfwise.search.judged import load_judged_folder
    from shelfwise.search.service import SearchService
    from shelfwise.tuning.search import Judged, click_judgements

    if args.corpus:
        if not args.judgements:
            raise ConfigError("--corpus needs --judgements DIR (a judged folder over it)")
        dataset = load_judged_folder(Path(args.judgements), corpus=args.corpus)
        service = SearchService.build(dataset.items)
        return service, Judged.from_dataset(dataset), None
    registry = Registry(Path(args.artifacts))
    info = registry.get(args.bundle) if args.bundle else registry.active()
    if not args.bundle and (info is None or info.kind != "bundle"):
        raise ConfigError(
            f"--artifacts {args.artifacts}: no bundle is served; run `shelfwise build` "
            "first, name one with --bundle, or tune a dataset with --corpus"
        )
    assert info is not None
    if info.kind != "bundle":
        raise ConfigError(f"--bundle {info.version} is a {info.kind}, not a bundle")
    service = load_search_service(info.path / "search")
    if args.judgements:
        dataset = load_judged_folder(Path(args.judgements), corpus=service.items)
        judged = Judged.from_dataset(dataset)
    else:
        from shelfwise.store import open_store

        with open_store(str(args.store or settings.store.url)) as store:
            events = store.events()
        judged = click_judgements(events, service.id_to_row, min_searches=args.min_searches)
    return service, judged, info.version


def cmd_tune_search(args: argparse.Namespace) -> int:
    """Tune, report the cross-validated comparison, write and activate the bundle."""
    from shelfwise.settings import Settings
    from shelfwise.tuning.search import SearchTuneSettings, tune_search

    settings = Settings()
    mode = args.mode or settings.search.mode
    service, judged, bundle = _service_and_judged(args, settings)
    if mode != "lexical":
        service.enable_dense(cache_dir=settings.paths.embeddings)
    params = tuple(p.strip() for p in args.params.split(",") if p.strip()) if args.params else None
    tune_settings = SearchTuneSettings(
        trials=args.trials,
        folds=args.folds,
        time_budget=args.time_budget,
        seed=args.seed,
        params=params,
    )
    result = tune_search(service.with_config(service.config.model_copy(update={"mode": mode})),
                         judged, tune_settings)  # fmt: skip
    report = result.to_dict()
    report["mode"] = mode
    written = None
    if bundle is not None and not args.no_write:
        from shelfwise.artifacts import Registry
        from shelfwise.artifacts.tuned_search import derive_tuned_search

        written = derive_tuned_search(
            Registry(Path(args.artifacts)), bundle, result.config, report, not args.no_activate
        )
        report["bundle"] = {"parent": bundle, "version": written, "active": not args.no_activate}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(_summary(report, written, bundle, args))
    return 0


def _summary(
    report: dict[str, Any], written: str | None, bundle: str | None, args: argparse.Namespace
) -> str:
    cv = report["cv"]
    lines = [f"tune-search on {report['source'] or 'judgements'} ({report['mode']} search): "
             f"{report['trials']} trials in {report['seconds']:.0f}s"]  # fmt: skip
    if "tuned" in cv:
        lines.append(
            f"out-of-fold nDCG@{cv['k']} over {cv['queries']} queries ({len(cv['folds'])} "
            f"folds): default {cv['default']:.4f}, tuned {cv['tuned']:.4f}"
        )
        for t, row in cv.get("by_type", {}).items():
            lines.append(f"  {t:<14} n={row['n']:<4} default {row['default']:.4f}  "
                         f"tuned {row['tuned']:.4f}")  # fmt: skip
    lines.append(f"chosen (tuned on every query): {json.dumps(report['params'])}")
    if written:
        state = "activated" if not args.no_activate else "not activated (--no-activate)"
        lines.append(f"bundle {written} (from {bundle}) {state}")
    elif bundle is None:
        lines.append("no bundle written (--corpus: tuned a dataset, not a served bundle)")
    else:
        lines.append("no bundle written (--no-write)")
    return "\n".join(lines)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `shelfwise tune-search` on the CLI's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "tune-search",
        help="tune the search ranking parameters (Optuna, query-level CV) and serve them",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--judgements", default=None, metavar="DIR",
                   help="a judged folder (queries.tsv + qrels.tsv); "
                   "default: the click log")  # fmt: skip
    p.add_argument("--store", default=None,
                   help="the store whose click log is used without --judgements "
                   "(default: $SHELFWISE_STORE)")  # fmt: skip
    p.add_argument("--corpus", default=None,
                   help="tune a service built from this dataset (with --judgements); "
                   "writes no bundle")  # fmt: skip
    p.add_argument("--artifacts", default=FromSettings("paths.artifacts", str),
                   help="the artifacts registry (default: var/artifacts)")  # fmt: skip
    p.add_argument("--bundle", default=None, help="the bundle to tune (default: the active one)")
    p.add_argument("--mode", choices=("auto", *SEARCH_MODES), default=None,
                   help="the search mode tuned (hybrid and auto also tune the fusion weight; "
                   "default: $SHELFWISE_SEARCH_MODE, else auto)")  # fmt: skip
    p.add_argument("--folds", type=int, default=5, help="query-level CV folds (0: none)")
    p.add_argument("--trials", type=int, default=40, help="trials per study (default 40)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="seconds for the whole run (shared by the folds' and the final "
                   "study)")  # fmt: skip
    p.add_argument("--params", default=None,
                   help="comma-separated parameters to tune (default: the whole "
                   "space)")  # fmt: skip
    p.add_argument("--min-searches", type=int, default=1,
                   help="click log: queries searched fewer times are left out")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, metavar="FILE", help="write the report as JSON")
    p.add_argument("--no-write", action="store_true", help="report only, write no bundle")
    p.add_argument("--no-activate", action="store_true", help="write the bundle, do not serve it")
    p.set_defaults(func=cmd_tune_search)
    return p
