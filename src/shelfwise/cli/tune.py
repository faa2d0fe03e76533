"""`shelfwise tune`: tune a model (or choose and tune one, `--model auto`) on a dataset,
report the test score once, and promote the winner if it beats the active model.

`shelfwise tune --target search ...` is `shelfwise tune-search ...` (the search ranking
parameters; every `tune-search` option applies): `search_target` rewrites the command line
before it is parsed.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shelfwise.cli.defaults import FromSettings
from shelfwise.errors import ConfigError

log = logging.getLogger("shelfwise.cli")

TARGETS = ("model", "search")
"""What `shelfwise tune --target` tunes: a recommender model, or search ranking."""


def search_target(argv: Sequence[str]) -> list[str]:
    """The command line with `tune --target search` (or `--target=search`) turned into
    `tune-search`, the rest kept in order; any other command line unchanged."""
    args = list(argv)
    # the subcommand is the first word that is not a global option (-v, --verbose)
    at = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    if at is None or args[at] != "tune":
        return args
    for i in range(at + 1, len(args)):
        if args[i] == "--target" and i + 1 < len(args) and args[i + 1] == "search":
            return [*args[:at], "tune-search", *args[at + 1 : i], *args[i + 2 :]]
        if args[i] == "--target=search":
            return [*args[:at], "tune-search", *args[at + 1 : i], *args[i + 1 :]]
        if args[i] == "--":
            break
    return args


def _csv(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    if not names:
        raise ConfigError("--models: give at least one model, e.g. --models ease,itemknn")
    return names


def cmd_tune(args: argparse.Namespace) -> int:
    """Load, split, tune, test once, save a version, promote if better, write reports."""
    if args.target == "search":  # `main` hands these to tune-search; a direct call lands here
        raise ConfigError("--target search: run `shelfwise tune-search` with the same options")
    missing = [f"--{name}" for name in ("model", "dataset") if getattr(args, name) is None]
    if missing:
        raise ConfigError(
            f"tune --target model needs {' and '.join(missing)} (e.g. --model ease --dataset "
            "movielens-100k); `tune --target search` tunes search ranking instead"
        )
    from shelfwise.config_params import parse_set, validate_params
    from shelfwise.tuning.report import write_json
    from shelfwise.tuning.run import tune_dataset
    from shelfwise.tuning.tuner import AUTO_MODELS, TuneSettings

    pinned = parse_set(args.set or [])
    validate_params(pinned)
    settings = TuneSettings(
        model=args.model,
        metric=args.metric,
        n_trials=args.trials,
        timeout=args.timeout,
        sampler=args.sampler,
        pruner=args.pruner,
        cv=args.cv,
        seed=args.seed,
        candidates=_csv(args.models) or AUTO_MODELS,
        grid_points=args.grid_points,
        max_eval_users=args.max_eval_users,
        binary=args.binary,
        pinned=pinned,
    )
    run = tune_dataset(
        args.dataset,
        settings,
        Path(args.models_dir),
        protocol=args.protocol,
        seed=args.seed,
        binary=args.binary,
        study=args.study,
        storage=args.storage,
        report_dir=Path(args.report_dir) if args.report_dir else None,
        promote=args.promote,
        final=args.final,
    )
    result, decision, study, report_dir = run.result, run.decision, run.study, run.report_dir
    if not args.final:  # a worker on a shared study: trials only
        print(
            f"study {study}: {result.n_trials} trials ({result.n_complete} complete, "
            f"{result.n_pruned} pruned, {result.n_failed} failed); best {result.metric} "
            f"{result.best_value:.4f} with {result.best_params}"
        )
        return 0
    assert report_dir is not None  # final runs always report
    summary = result.to_dict()
    if args.json:
        write_json(summary, Path(args.json))
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report_dir / "report.html", args.html)

    metric = result.metric
    lines = [
        f"model        {result.model}",
        f"study        {study} ({result.n_trials} trials: {result.n_complete} complete, "
        f"{result.n_pruned} pruned, {result.n_failed} failed; {result.seconds:.0f}s)",
        f"best params  {result.best_params}",
        f"validation   {metric} {result.best_value:.4f} tuned vs "
        f"{(result.default_validation or float('nan')):.4f} default",
        f"test         {metric} {result.test.get(metric, float('nan')):.4f} tuned vs "
        f"{result.default_test.get(metric, float('nan')):.4f} default",
    ]
    if decision is not None:
        state = "PROMOTED (now active)" if decision.promoted else "not promoted"
        lines.append(f"version      {result.version}: {state}: {decision.reason}")
    lines.append(f"report       {report_dir}/ (report.html, best.toml, trials.csv, result.json)")
    print("\n".join(lines))
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `shelfwise tune` on the CLI's subparsers."""
    from shelfwise.tuning.names import PRUNERS, SAMPLERS

    p: argparse.ArgumentParser = subparsers.add_parser(
        "tune",
        help="tune a model's hyperparameters with Optuna (or pick the best model: auto)",
        description="Tune on a validation split carved from the training part, score the "
        "best and the default configuration once on the test part, save the tuned model as "
        "a version and activate it if it beats the active model on validation.",
    )
    p.add_argument(
        "--target",
        choices=TARGETS,
        default="model",
        help="what to tune: a recommender model (default), or search ranking (`--target "
        "search` is `shelfwise tune-search` and takes its options: --judgements, --store, "
        "--mode, --folds, --trials, ...; see `shelfwise tune-search --help`)",
    )
    p.add_argument(
        "--model", default=None, help="a registered model, or 'auto' (see --models); required"
    )
    p.add_argument(
        "--dataset",
        default=None,
        help="a dataset name (see `shelfwise datasets`), 'demo', or a .duckdb store file; required",
    )
    p.add_argument(
        "--models",
        default=None,
        help="candidates of --model auto, comma-separated (default: ease,itemknn,userknn,"
        "als,svd,bpr)",
    )
    # defaults from `Settings().tuning`, read only when `tune` runs (`cli.defaults`)
    p.add_argument(
        "--metric",
        default=FromSettings("tuning.metric"),
        help="validation metric (default: $SHELFWISE_TUNING__METRIC, else ndcg@10)",
    )
    p.add_argument("--trials", type=int, default=FromSettings("tuning.trials"),
                   help="trials in the study (default 50, or unlimited with --timeout; "
                   "grid: every point)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=FromSettings("tuning.timeout"),
                   help="time budget in seconds")  # fmt: skip
    p.add_argument("--sampler", default=FromSettings("tuning.sampler"),
                   help=f"one of {', '.join(SAMPLERS)}")  # fmt: skip
    p.add_argument("--pruner", default=FromSettings("tuning.pruner"),
                   help=f"one of {', '.join(PRUNERS)}")  # fmt: skip
    p.add_argument("--cv", type=int, default=1, help="K-fold cross-validation on train (K>=2)")
    p.add_argument(
        "--storage",
        default=None,
        help="study storage: postgresql://... (shared by processes), sqlite:///FILE or a "
        "journal file (default: the registry's studies/STUDY.journal)",
    )
    p.add_argument("--study", default=None, help="study name (default from model, data, ...)")
    p.add_argument(
        "--protocol",
        choices=("holdout", "temporal", "loo"),
        default=None,
        help="evaluation protocol; tuning uses a validation split of its training part "
        "(default: loo for sequential models, holdout otherwise)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.PARAM=VALUE",
        help="fix a parameter in every trial instead of searching it (repeatable), e.g. "
        "--set sasrec.epochs=20 --set sasrec.threads=1",
    )
    p.add_argument(
        "--models-dir",
        default=FromSettings("paths.artifacts", str),
        help="the artifacts registry the tuned version is saved in (default var/artifacts, "
        "where `shelfwise build` and `serve` keep their bundles)",
    )
    p.add_argument("--report-dir", default=None, help="default: the registry's reports/STUDY")
    p.add_argument("--json", help="also write the result JSON here")
    p.add_argument("--html", help="also write the HTML report here")
    p.add_argument("--seed", type=int, default=FromSettings("tuning.seed"),
                   help="split and sampler seed")  # fmt: skip
    p.add_argument("--grid-points", type=int, default=4, help="grid values per numeric range")
    p.add_argument(
        "--max-eval-users", type=int, default=None, help="validation users per fold (sampled)"
    )
    p.add_argument(
        "--binary",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train on binary implicit feedback (default), as `evaluate` does",
    )
    p.add_argument(
        "--promote",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="save a version and activate it if it beats the active one (default)",
    )
    p.add_argument(
        "--final",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the trials, score best and default once on test, save, promote and "
        "report (default); --no-final only runs trials (extra workers on a shared study)",
    )
    p.set_defaults(func=cmd_tune)
    return p
