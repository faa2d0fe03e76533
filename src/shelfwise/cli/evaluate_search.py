"""`shelfwise evaluate-search`: search relevance of BM25, dense, hybrid and LTR side by side.

    shelfwise evaluate-search --dataset demo --methods bm25,dense,hybrid,ltr --json out.json

    shelfwise evaluate-search --dataset ../shared/data/beauty-search-dev
                              [--corpus amazon-beauty] [--methods default,lexical,hybrid]
                              [--ltr-cv 5 --ltr-seeds 0,1,2 --unjudged zero] [--dense]
                              [--run-dir runs/] [--json out.json]

`--dataset all` runs every search dataset that is present and prints a note for each one
that is absent. `--dataset FOLDER` scores a judged folder (`queries.tsv` with query_id,
query, type; `qrels.tsv` with query_id, doc_id, grade) over the `--corpus` dataset with the
product's `SearchService` (methods `default`, `lexical`, `semantic`, `hybrid`): nDCG@10
(gain 2^grade - 1), Recall@10 and MRR@10 (relevant = grade >= 2), judged@10 (the share of
returned top-10 documents with a judgement) overall and per query type, the same numbers as
the folder's own `eval.py` on the TREC run files `--run-dir` writes. `--corpus` is a dataset
name or an items file (JSONL, CSV or Parquet, as `shelfwise ingest` reads). `--ltr-cv K`
adds `ltr`: the LightGBM re-ranker learnt from the folder's judgements over the default
mode's candidates, scored out of fold with K query-level folds (grouped by query text,
once per `--ltr-seeds` seed; mean over seeds, spread printed below the tables) beside the
un-reranked `default`; unjudged candidates count as grade 0 (`--unjudged zero`) or are left
out of training (`drop`). `--dense` switches dense retrieval on (the default mode is then
hybrid, and the re-ranker gets the dense-similarity features).

The JSON file holds `{"dataset": ..., "results": {METHOD: {"ndcg@10": ...,
"map": ..., "p@10": ..., "recall@100": ...}}, ...}` for one dataset,
`{"runs": [that, ...], "skipped": {NAME: why}}` for `all`, and for a judged folder
`{"dataset": ..., "results": {METHOD: {"ndcg@10", "recall@10", "mrr@10", "judged@10"}},
"by_type": {METHOD: {TYPE: {"n", ...the same}}}, ...}`, plus `"ltr_cv": {"folds", "seeds",
"per_seed", "spread": {METRIC: {"mean", "std", "min", "max"}}, "feature_gain_share", ...}`
with `--ltr-cv`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from shelfwise.errors import ConfigError, DataError

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


def format_type_table(report: dict[str, Any]) -> str:
    """The per-type nDCG of a judged folder's report: one row per query type, one column
    per method, with the number of queries."""
    by_type: dict[str, dict[str, dict[str, float]]] = report["by_type"]
    if not by_type:
        return ""
    methods = list(by_type)
    types = sorted({t for per in by_type.values() for t in per})
    metric = f"ndcg@{report['k']}"
    width = max(14, *(len(m) + 2 for m in methods))
    head = f"{'type (' + metric + ')':<18}{'n':>5}" + "".join(f"{m:>{width}}" for m in methods)
    lines = [head, "-" * len(head)]
    for t in types:
        n = next(int(per[t]["n"]) for per in by_type.values() if t in per)
        cells = "".join(
            f"{by_type[m][t][metric]:>{width}.4f}" if t in by_type[m] else f"{'':>{width}}"
            for m in methods
        )
        lines.append(f"{t:<18}{n:>5}" + cells)
    return "\n".join(lines)


def format_cv_spread(report: dict[str, Any]) -> str:
    """The out-of-fold re-ranker's figures over the seeds: mean, spread and range."""
    cv = report["ltr_cv"]
    lines = [
        f"ltr: {cv['folds']}-fold query-level cross-validation, seeds "
        f"{','.join(str(s) for s in cv['seeds'])}, unjudged candidates: {cv['unjudged']}, "
        f"{cv['candidates']:g} candidates per query from {cv['candidates_from']} "
        f"({cv['judged_candidates']:.0%} judged)"
    ]
    for metric, row in cv["spread"].items():
        lines.append(
            f"  {metric:<10} mean {row['mean']:.4f}  sd {row['std']:.4f}  "
            f"range {row['min']:.4f}-{row['max']:.4f}"
        )
    return "\n".join(lines)


def _ltr_config(text: str | None) -> Any:
    """`--ltr-params` JSON as an `LTRConfig` (None when not given); a clear error naming
    the parameter otherwise."""
    if not text:
        return None
    from pydantic import ValidationError

    from shelfwise.search.ltr import LTRConfig

    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--ltr-params: not JSON ({exc.msg}): {text!r}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"--ltr-params: a JSON object of LTRConfig fields, got {text!r}")
    try:
        return LTRConfig(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "?"
        raise ConfigError(f"--ltr-params: {where}: {err['msg']}") from None


def _judged_folder(args: argparse.Namespace) -> int:
    """`--dataset FOLDER`: the search service on a judged folder."""
    from shelfwise.search.judged import (
        JUDGED_METHODS,
        evaluate_judged_search,
        load_judged_folder,
        write_trec_run,
    )

    methods = [m.strip() for m in (args.methods or "default").split(",") if m.strip()]
    unknown = [m for m in methods if m not in JUDGED_METHODS]
    if not methods or unknown:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown) or '(none given)'} for a judged folder; "
            f"valid methods: {', '.join(JUDGED_METHODS)}"
        )
    if args.ltr_cv is not None and args.ltr_cv < 2:
        raise ConfigError(f"--ltr-cv: needs at least 2 folds, got {args.ltr_cv}")
    try:
        seeds = [int(x) for x in str(args.ltr_seeds).split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--ltr-seeds: comma-separated integers, got {args.ltr_seeds!r}"
        ) from None
    if not seeds:
        raise ConfigError("--ltr-seeds: give at least one seed")
    ltr_config = _ltr_config(args.ltr_params)
    corpus: Any = args.corpus
    if Path(args.corpus).is_file():
        from shelfwise.data.io import load_records

        corpus = load_records(Path(args.corpus), "items")
    dataset = load_judged_folder(Path(args.dataset), corpus=corpus)
    report = evaluate_judged_search(
        dataset,
        methods,
        k=args.k,
        cache_dir=_embeddings_dir(),
        ltr_cv=args.ltr_cv or 0,
        ltr_seeds=seeds,
        unjudged=args.unjudged,
        dense=True if args.dense else None,
        ltr_mode=args.ltr_mode,
        ltr_config=ltr_config,
    )
    runs = report.pop("runs")
    print(format_search_table(report))
    print()
    print(format_type_table(report))
    if "ltr_cv" in report:
        print()
        print(format_cv_spread(report))
    if args.run_dir:
        for method, ranked in runs.items():
            path = write_trec_run(
                Path(args.run_dir) / f"{method}.run", dataset, ranked, method, args.k
            )
            print(f"wrote {path}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


def cmd_evaluate_search(args: argparse.Namespace) -> int:
    """Evaluate the methods on the dataset(s) or a judged folder; print tables, optionally
    write JSON."""
    from shelfwise.search.relevance import (
        METHODS,
        SEARCH_DATASETS,
        evaluate_search,
        load_search_dataset,
    )

    if args.dataset not in (*SEARCH_DATASETS, "all") and Path(args.dataset).is_dir():
        return _judged_folder(args)
    methods = [m.strip() for m in (args.methods or "bm25,dense,hybrid,ltr").split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if not methods or unknown:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown) or '(none given)'}; valid methods: "
            f"{', '.join(METHODS)}"
        )
    if args.dataset != "all" and args.dataset not in SEARCH_DATASETS:
        raise ConfigError(
            f"--dataset {args.dataset!r}: choose one of {', '.join(SEARCH_DATASETS)}, all, or "
            "a folder holding queries.tsv and qrels.tsv"
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
            cache_dir=_embeddings_dir(),
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
        help="search relevance of bm25/dense/hybrid/ltr, or of the search service on a "
        "judged folder (nDCG@10, Recall@10, MRR@10, judged@10, per query type)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dataset",
        default="all",
        help="wands, esci, demo, all (default), or a judged folder (queries.tsv + qrels.tsv)",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated: bm25, dense, hybrid (RRF), hybrid-score (min-max), ltr "
        "(default bm25,dense,hybrid,ltr); for a judged folder default, lexical, semantic, "
        "hybrid (default: default)",
    )
    p.add_argument(
        "--corpus",
        default="amazon-beauty",
        help="judged folder: the dataset (or items file) whose items the qrels' doc_ids "
        "name (default: amazon-beauty)",
    )
    p.add_argument("--run-dir", help="judged folder: write one TREC run file per method here")
    p.add_argument(
        "--ltr-cv",
        type=int,
        default=None,
        metavar="K",
        help="judged folder: add the re-ranker learnt from the judgements, scored with "
        "K-fold query-level cross-validation",
    )
    p.add_argument(
        "--ltr-seeds", default="0", help="judged folder: fold seeds, comma-separated (default 0)"
    )
    p.add_argument(
        "--ltr-params",
        default=None,
        help="judged folder: LightGBM settings as JSON, e.g. '{\"min_data_in_leaf\": 20}' "
        "(fields of search.ltr.LTRConfig)",
    )
    p.add_argument(
        "--ltr-mode",
        choices=("lexical", "semantic", "hybrid"),
        default=None,
        help="judged folder: re-rank this mode's candidates (default: the default mode)",
    )
    p.add_argument(
        "--unjudged",
        choices=("zero", "drop"),
        default="zero",
        help="judged folder: unjudged candidates are grade 0 in training, or left out",
    )
    p.add_argument(
        "--dense",
        action="store_true",
        help="judged folder: dense retrieval on (default mode hybrid, dense re-ranker features)",
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


def _embeddings_dir() -> Path:
    """The embedding cache folder of `Settings()` (constructed when a run needs it)."""
    from shelfwise.settings import Settings

    return Settings().paths.embeddings
