"""`shelfwise evaluate`: offline comparison of models on a dataset and split protocol."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from shelfwise.errors import ConfigError

log = logging.getLogger("shelfwise.cli")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Split, fit every model, print the table and write the reports."""
    import numpy as np

    from shelfwise.config_params import load_config, merge, parse_set, validate_params
    from shelfwise.evaluation.metrics import popularity_profile
    from shelfwise.evaluation.protocols import prepare
    from shelfwise.evaluation.report import build_report, format_table, write_html, write_json
    from shelfwise.evaluation.runner import evaluate
    from shelfwise.evaluation.sources import load_frames, load_users
    from shelfwise.evaluation.stats import group_metrics, seed_summary, user_groups
    from shelfwise.recommenders import available

    models = [m.strip() for m in (args.models or "").split(",") if m.strip()]
    if not models and not args.model_dir:
        raise ConfigError(
            "--models: give at least one model, e.g. --models popularity,itemknn "
            "(or --model-dir DIR for a saved one)"
        )
    unknown = [m for m in models if m not in available()]
    if unknown:
        raise ConfigError(
            f"--models: unknown model(s) {', '.join(unknown)}; valid models: "
            f"{', '.join(available())}"
        )
    if args.k < 1:
        raise ConfigError(f"--k must be >= 1, got {args.k}")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.seeds > 1 and args.model_dir:
        raise ConfigError(
            "--seeds > 1 re-draws the split, which a saved model (--model-dir) was not "
            "trained on; score saved models with --seeds 1"
        )
    mmr = _mmr_lambdas(args.mmr)
    params = merge(load_config(Path(args.config)) if args.config else {}, parse_set(args.set or []))
    validate_params(params)

    t0 = time.perf_counter()
    label, events, items = load_frames(args.dataset, args.seed)
    log.info("loaded %s: %d events, %d items (%.1fs)", label, len(events), len(items),
             time.perf_counter() - t0)  # fmt: skip
    seeds = [args.seed + i for i in range(args.seeds)]
    all_runs = []
    for n, seed in enumerate(seeds, 1):
        t0 = time.perf_counter()
        data = prepare(
            events, args.protocol, seed=seed, binary=args.binary, items=items, split=args.split
        )
        m = data.summary["matrix"]
        log.info(
            "seed %d (%d/%d), %s split: %d users x %d items, train %d, test %d cells over "
            "%d users (%.1fs)", seed, n, len(seeds), args.protocol, m["users"], m["items"],
            m["train_nnz"], m["test_nnz"], m["test_users"], time.perf_counter() - t0,
        )  # fmt: skip
        runs = evaluate(
            data, models, k=args.k, params=params, sampled=args.sampled, seed=seed,
            progress=log.info, mmr=mmr if n == 1 else (),
        )  # fmt: skip
        all_runs.append(runs)
        if n == 1:
            first_split = data
    if args.model_dir:
        from shelfwise.cli.train import evaluate_saved

        runs.update(evaluate_saved(args.model_dir, data, args.k, args.sampled, args.seed, runs))
    runs, intervals, comparisons = seed_summary(all_runs, args.k)
    extra: dict[str, Any] = {
        "split_stratification": args.split,
        "seed": args.seed,
        "binary": args.binary,
        "params": params,
    }
    if args.sampled:
        extra["sampled"] = args.sampled
    extra["split"] = first_split.summary  # the first seed's; the others differ in the draw
    if len(seeds) > 1:
        extra["seeds"] = seeds
        extra["intervals"] = intervals
    extra["comparisons"] = comparisons
    first = all_runs[0]
    first_data = first_split
    popularity = np.bincount(first_data.train.indices, minlength=first_data.n_items)
    extra["popularity_bias"] = {
        "seed": seeds[0],
        "training": popularity_profile(first_data.train.indices, popularity).tolist(),
        "models": {
            name: popularity_profile(run.recommendations, popularity).tolist()
            for name, run in first.items()
            if run.recommendations is not None
        },
    }
    users = load_users(args.dataset)
    if users is not None:
        groups = user_groups(users)
        if groups:
            extra["group_metric"] = f"ndcg@{args.k}"
            extra["groups"] = group_metrics(
                all_runs, np.asarray(first_data.users.ids), groups, f"ndcg@{args.k}"
            )
    if mmr:
        extra["mmr"] = {name: run.mmr for name, run in first.items() if run.mmr}
    report = build_report(label, args.protocol, args.k, runs, **extra)
    print(format_table(report))
    if args.json:
        write_json(report, Path(args.json))
        log.info("wrote %s", args.json)
    if args.html:
        write_html(report, Path(args.html))
        log.info("wrote %s", args.html)
    return 0


def _mmr_lambdas(text: str | None) -> list[float]:
    """`--mmr` as a list of lambdas in [0, 1]: one value, or several comma-separated; a
    single value below 1 also draws the curve at 1, 0.9, 0.7, 0.5, 0.3 and itself."""
    if not text:
        return []
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--mmr: expected numbers in [0, 1] such as 0.7, got {text!r}") from None
    bad = [v for v in values if not 0.0 <= v <= 1.0]
    if bad or not values:
        raise ConfigError(f"--mmr: lambdas must lie in [0, 1], got {text!r}")
    if len(values) == 1:
        values = sorted({1.0, 0.9, 0.7, 0.5, 0.3, values[0]}, reverse=True)
    return values


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `shelfwise evaluate` on the CLI's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="compare models offline on a dataset split",
        description="Split a dataset, fit each model on train and rank every test user's "
        "unseen items; prints a metrics table and writes JSON / HTML reports.",
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="a dataset name (see `shelfwise datasets`), 'demo', or a .duckdb store file",
    )
    p.add_argument("--models", help="comma-separated registered models, e.g. popularity,ease")
    p.add_argument(
        "--model-dir",
        action="append",
        metavar="DIR",
        help="also score a saved model (a `shelfwise train --out` folder or its model/) "
        "without refitting; same dataset and protocol as it was trained on (repeatable)",
    )
    p.add_argument(
        "--protocol",
        choices=("holdout", "temporal", "loo"),
        default="holdout",
        help="holdout: per-user random 75/25; temporal: global time cut; loo: leave last out",
    )
    p.add_argument(
        "--split",
        choices=("per-user", "per-item"),
        default="per-user",
        help="stratification of --protocol holdout: per-user (each user's events 75/25, "
        "default) or per-item (each item's events 75/25, Microsoft Recommenders' "
        "python_stratified_split(filter_by='item') as in their MovieLens benchmark)",
    )
    p.add_argument("--k", type=int, default=10, help="list length (default 10)")
    p.add_argument(
        "--sampled",
        type=int,
        default=None,
        metavar="N",
        help="also rank each held-out item among N sampled unseen items (HR/NDCG, as papers do)",
    )
    p.add_argument("--seed", type=int, default=42, help="split and sampling seed")
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="repeat with N split seeds (--seed, --seed+1, ...) and report each metric's mean "
        "with its 95%% t interval (default 1)",
    )
    p.add_argument(
        "--binary",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train on binary implicit feedback (default); --no-binary uses event weights",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="MODEL.PARAM=VALUE",
        help="a model parameter, e.g. --set ease.l2=300 (repeatable; VALUE is TOML)",
    )
    p.add_argument(
        "--mmr",
        metavar="LAMBDA",
        help="also re-rank each model's top 100 with maximal marginal relevance over item "
        "categories and report the accuracy-diversity curve (LAMBDA in [0, 1], 1 = no "
        "re-ranking; a comma-separated list gives the curve's points)",
    )
    p.add_argument("--config", help="a TOML file of [model] tables of parameters")
    p.add_argument("--json", help="write the JSON report here")
    p.add_argument("--html", help="write the HTML report here")
    p.set_defaults(func=cmd_evaluate)
    return p
