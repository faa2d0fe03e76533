"""`shelfwise evaluate-search`: search relevance of BM25, dense, hybrid and LTR side by side.

    shelfwise evaluate-search --dataset demo --methods bm25,dense,hybrid,ltr --json out.json

`--dataset all` runs every search dataset that is present and prints a note for each one
that is absent. The JSON file holds `{"dataset": ..., "results": {METHOD: {"ndcg@10": ...,
"map": ..., "p@10": ..., "recall@100": ...}}, ...}` for one dataset, and
`{"runs": [that, ...], "skipped": {NAME: why}}` for `all`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from shelfwise.errors import ConfigError, DataError
from shelfwise.settings import Settings

log = logging.getLogger("shelfwise.cli")


def format_search_table(report: dict[str, Any]) -> str:
    """The results of one dataset as an aligned text table, with the change over bm25."""
    results: dict[str, dict[str, float]] = report["results"]
    metrics = list(next(iter(results.values())))
    base = results.get("bm25")
    width = max(14, *(len(m) + 2 for m in results))
    head = f"{'method':<{width}}" + "".join(f"{m:>12}" for m in metrics)
    if base:
        head += f"{'vs bm25':>10}"
    lines = [
        f"dataset {report['dataset']}: {report['queries']} queries, {report['items']} items",
        head,
        "-" * len(head),
    ]
    first = metrics[0]
    for method, row in results.items():
        line = f"{method:<{width}}" + "".join(f"{row[m]:>12.4f}" for m in metrics)
        if base:
            change = (row[first] / base[first] - 1.0) * 100 if base[first] > 0 else float("nan")
            line += f"{change:>+9.1f}%"
        lines.append(line)
    return "\n".join(lines)


def cmd_evaluate_search(args: argparse.Namespace) -> int:
    """Evaluate the methods on the dataset(s); print tables, optionally write JSON."""
    from shelfwise.search.relevance import (
        METHODS,
        SEARCH_DATASETS,
        evaluate_search,
        load_search_dataset,
    )

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown) or '(none given)'}; valid methods: "
            f"{', '.join(METHODS)}"
        )
    if args.dataset != "all" and args.dataset not in SEARCH_DATASETS:
        raise ConfigError(
            f"--dataset {args.dataset!r}: choose one of {', '.join(SEARCH_DATASETS)} or all"
        )
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    names = list(SEARCH_DATASETS) if args.dataset == "all" else [args.dataset]
    runs: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in names:
        options: dict[str, Any] = {}
        if name == "demo":
            options = {
                "seed": args.seed,
                "n_items": args.demo_items,
                "n_users": args.demo_users,
                "days": args.demo_days,
            }
        elif args.max_queries is not None:
            options = {"max_queries": args.max_queries}
        try:
            dataset = load_search_dataset(name, **options)
        except DataError as exc:
            if args.dataset != "all":
                raise
            skipped[name] = str(exc)
            print(f"note: skipping {name}: {exc}")
            continue
        log.info("evaluating %s on %s (%d queries)", ",".join(methods), name, len(dataset.queries))
        report = evaluate_search(
            dataset,
            methods,
            k=args.k,
            depth=args.depth,
            folds=args.folds,
            cache_dir=Settings().paths.embeddings,
            seed=args.seed,
            progress=not args.quiet,
        )
        runs.append(report)
        print(format_search_table(report))
        print()
    if not runs:
        raise DataError(f"no search dataset could be loaded: {json.dumps(skipped)}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = (
            runs[0] if args.dataset != "all" else {"runs": runs, "skipped": skipped}
        )
        out.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def add_parser(sub: Any) -> None:
    """Register `evaluate-search` on the CLI's subparsers."""
    p = sub.add_parser(
        "evaluate-search",
        help="search relevance (nDCG@10, MAP, P@10, Recall@100) of bm25/dense/hybrid/ltr",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", default="all", help="wands, esci, demo or all (default: all)")
    p.add_argument(
        "--methods",
        default="bm25,dense,hybrid,ltr",
        help="comma-separated: bm25, dense, hybrid (RRF), hybrid-score (min-max), ltr",
    )
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--k", type=int, default=10, help="cut-off of nDCG and precision")
    p.add_argument("--depth", type=int, default=100, help="ranking depth (MAP, recall)")
    p.add_argument("--folds", type=int, default=5, help="LTR cross-validation folds")
    p.add_argument("--seed", type=int, default=42, help="demo store and fold seed")
    p.add_argument("--max-queries", type=int, default=None, help="cap queries (wands, esci)")
    p.add_argument("--demo-items", type=int, default=5000, help="demo catalogue size")
    p.add_argument("--demo-users", type=int, default=2000, help="demo shoppers")
    p.add_argument("--demo-days", type=int, default=90, help="demo days of activity")
    p.add_argument("--torch-threads", type=int, default=None, help="CPU threads for embedding")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate_search)
