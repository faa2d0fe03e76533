"""Tuned against default configurations on the test split, for every classic model, beside
the published Microsoft Recommenders MovieLens-100K rows.

    python benchmarks/tuned_vs_default.py [--models a,b] [--budget 60]
        [--beauty-models sasrec] [--beauty-budget 900] [--beauty-users 4000]
        [--beauty-epochs 20] [--beauty-full-models itemknn,userknn,als]
        [--beauty-full-budget 300] [--out PATH]

Protocol: as `benchmarks/movielens_recommenders.py` (per-user stratified 75/25 holdout,
seed 42, binary feedback, top-10 over the full catalogue with training items removed;
MAP = Recommenders' old map_at_k, i.e. `map_nrel@10`). Each model is tuned with TPE and the
median pruner for `--budget` seconds on a validation holdout carved from the training part
(the test part is not looked at); its default configuration is queued as the first trial,
so tuning can only match or beat it on validation. Then the best and the default
configuration are each fitted once on the full training part and scored once on test.

The sequential models (`--beauty-models`, e.g. sasrec,gru4rec,caser) are tuned the same
way on Amazon Beauty, leave-last-out (validation: each user's second-to-last item; test:
the last), on `--beauty-users` users drawn at random (seed 0) and with at most
`--beauty-epochs` epochs per trial (pinned, early stopping as configured), so that a CPU
fits a useful study in the budget; they report HR@10 and NDCG@10 over the full catalogue.
Skipped when `--beauty-budget` is 0. `--beauty-full-models` are tuned on all of Amazon
Beauty (the protocol of `benchmarks/beauty_loo.py`, so beside its table) when
`--beauty-full-budget` is above 0.

Intervals (`--rescore`): the split has one seed and the tuning is what it is, so each test
figure carries the 95% Student t interval of the mean over test users, and each model the
paired test of tuned against default on the same users (`shelfwise.evaluation.stats`): the
stored tuned (`best_params`) and default configurations are refitted on the same split and
scored user by user (no tuning again); the refitted means are checked against the stored
ones (`rescore.max_abs_diff`). The Beauty sample's sequential models are not refitted (a
study's worth of epochs); their table rows say so.

    python benchmarks/tuned_vs_default.py --rescore     # intervals for the saved results

Results go to benchmarks/results/tuned_vs_default.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from shelfwise.data.datasets import load_dataset
from shelfwise.data.splits import sample_users
from shelfwise.evaluation.protocols import fold_validation, prepare
from shelfwise.evaluation.stats import paired_test, per_unit_intervals
from shelfwise.tuning.space import has_search_space, search_space
from shelfwise.tuning.tuner import TuneSettings, score_on_test, tune

sys.path.insert(0, str(Path(__file__).parent))
from movielens_recommenders import PUBLISHED, SOURCE

K = 10
CLASSIC = (
    "ease", "itemknn", "userknn", "als", "svd", "bpr", "bprmf", "trending", "tfidf", "lsa",
    "lda",
)  # fmt: skip
"""Every registered non-sequential model with a search space except `embedding` (one slow,
two-point space) and `hybrid` (its space blends fixed components); `popularity` has no
parameters and is shown with its default only."""
SEQ_COLUMNS = {"HR@10": f"hr@{K}", "NDCG@10": f"ndcg@{K}"}
COLUMNS = {"MAP": f"map_nrel@{K}", "nDCG@k": f"ndcg@{K}", "Precision@k": f"precision@{K}",
           "Recall@k": f"recall@{K}"}  # fmt: skip


def row(metrics: dict[str, float], columns: dict[str, str] = COLUMNS) -> dict[str, float]:
    """The published table's columns from our metric names."""
    return {col: float(metrics[key]) for col, key in columns.items()}


def tune_and_score(
    name: str, data: Any, budget: float, label: str, columns: dict[str, str],
    pinned: dict[str, Any] | None = None, cv: int = 1,
) -> dict[str, Any]:  # fmt: skip
    """Tune `name` for `budget` seconds on validation, then score tuned and default on test."""
    start = time.perf_counter()
    if not has_search_space(name):
        _, default = score_on_test(name, {}, data, K)
        return {"default": row(default, columns), "note": "no parameters to tune"}
    settings = TuneSettings(
        model=name, timeout=budget, sampler="tpe", pruner="median", cv=cv,
        pinned={name: pinned} if pinned else {},
    )  # fmt: skip
    try:
        tuned = tune(
            data, settings, optuna.storages.InMemoryStorage(), name, dataset=label,
            progress=lambda _m: None,
        )  # fmt: skip
    except Exception as exc:  # a model that fails is a row, not a crash
        print(f"{name}: ERROR {exc}", flush=True)
        return {"error": f"{type(exc).__name__}: {exc}"}
    r = tuned.result
    print(
        f"{name:<9} nDCG@10 test: tuned {r.test[f'ndcg@{K}']:.4f} vs default "
        f"{r.default_test[f'ndcg@{K}']:.4f} (validation {r.best_value:.4f} vs "
        f"{r.default_validation or 0:.4f}; {r.n_trials} trials, {r.n_pruned} pruned, "
        f"{time.perf_counter() - start:.0f}s)",
        flush=True,
    )
    return {
        "tuned": row(r.test, columns),
        "default": row(r.default_test, columns),
        "validation_ndcg": {"tuned": r.best_value, "default": r.default_validation},
        "best_params": r.best_params,
        "n_trials": r.n_trials,
        "n_pruned": r.n_pruned,
        "cv": cv,
        "seconds": round(time.perf_counter() - start, 1),
    }


def rescore(name: str, res: dict[str, Any], data: Any, columns: dict[str, str]) -> dict[str, float]:
    """Refit the stored tuned and default configurations of `name` on `data` and add, per
    column, the 95% t interval over test users (`ci95`: {kind: {column: [lo, hi]}}) and the
    paired test of tuned against default on nDCG@10 (`paired_ndcg`). Returns, per kind, the
    largest |refitted - stored| mean over the columns."""
    per_user: dict[str, dict[str, Any]] = {}
    ci95: dict[str, dict[str, list[float]]] = {}
    diffs: dict[str, float] = {}
    for kind in ("tuned", "default"):
        if kind not in res:
            continue
        if kind == "tuned":
            config: Any = search_space(name)(optuna.trial.FixedTrial(dict(res["best_params"])))
        else:
            config = {}
        values: dict[str, Any] = {}
        _, metrics = score_on_test(name, config, data, K, per_user=values)
        per_user[kind] = values
        iv = per_unit_intervals({col: values[key] for col, key in columns.items()})
        ci95[kind] = {col: v["ci95"] for col, v in iv.items()}
        diffs[kind] = max(abs(metrics[key] - res[kind][col]) for col, key in columns.items())
        res.setdefault("test_users", int(iv[next(iter(columns))]["n"]))
    res["ci95"] = ci95
    if {"tuned", "default"} <= per_user.keys():
        key = f"ndcg@{K}"
        res["paired_ndcg"] = paired_test(per_user["tuned"][key], per_user["default"][key])
    print(
        f"{name:<9} rescored: {', '.join(f'{k} max |diff| {v:.1e}' for k, v in diffs.items())}",
        flush=True,
    )
    return diffs


def rescore_all(path: Path) -> None:
    """`--rescore`: intervals and paired tests for the saved results, written back (models
    rescored before keep theirs, so an interrupted rescore resumes)."""
    report = json.loads(path.read_text())
    t0 = time.perf_counter()
    diffs: dict[str, float] = dict(report.get("rescore", {}).get("max_abs_diff", {}))

    def each(part: str, results: dict[str, Any], data: Any, columns: dict[str, str]) -> None:
        for name, res in results.items():
            if "error" in res or ("ci95" in res and f"{part}/{name}" in diffs):
                continue
            diffs[f"{part}/{name}"] = max(rescore(name, res, data, columns).values())

    ds = load_dataset("movielens-100k")
    data = prepare(ds.events, "holdout", seed=42, binary=True, items=ds.items)
    each("movielens-100k", report["results"], data, COLUMNS)
    if "beauty_full" in report:
        each("beauty_full", report["beauty_full"]["results"], beauty_sample(0)[0], SEQ_COLUMNS)
    if "beauty" in report:  # sequential models: not refitted, their test users counted
        users = int(report["beauty"]["protocol"].split(", ")[1].split()[0])
        n = int(fold_validation(beauty_sample(users)[0]).test_users.size)
        for res in report["beauty"]["results"].values():
            res["test_users"] = n
    report["rescore"] = {
        "command": "python benchmarks/tuned_vs_default.py --rescore",
        "intervals": "95% Student t interval of the mean over test users (one split, no "
        "seed varied); paired_ndcg: tuned - default nDCG@10 per user (paired t and "
        "Wilcoxon)",
        "max_abs_diff": diffs,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path} ({report['rescore']['seconds']}s)")


def beauty_sample(users: int) -> tuple[Any, str]:
    """Amazon Beauty leave-last-out on `users` random users (seed 0); all users for 0."""
    ds = load_dataset("amazon-beauty")
    events = sample_users(ds.events, users, seed=0)
    label = f"amazon-beauty ({events['user_id'].nunique():,} users)"
    return prepare(events, "loo", seed=42, binary=True, items=ds.items), label


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(CLASSIC))
    parser.add_argument("--budget", type=float, default=60.0, help="tuning seconds per model")
    parser.add_argument(
        "--cv",
        type=int,
        default=1,
        help="MovieLens part: score each trial on K folds of the training part (1: one "
        "validation holdout)",
    )
    parser.add_argument("--beauty-models", default="sasrec")
    parser.add_argument("--beauty-budget", type=float, default=0.0)
    parser.add_argument("--beauty-users", type=int, default=4000)
    parser.add_argument("--beauty-epochs", type=int, default=20)
    parser.add_argument("--beauty-threads", type=int, default=2)
    parser.add_argument("--beauty-full-models", default="itemknn,userknn,als")
    parser.add_argument("--beauty-full-budget", type=float, default=0.0)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "tuned_vs_default.json")
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="refit the saved tuned and default configurations of --out and add per-user "
        "intervals and paired tests (no tuning)",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.rescore:
        rescore_all(Path(args.out))
        return
    t0 = time.perf_counter()
    ds = load_dataset("movielens-100k")
    data = prepare(ds.events, "holdout", seed=42, binary=True, items=ds.items)
    results: dict[str, Any] = {}
    for name in [m for m in args.models.split(",") if m]:
        results[name] = tune_and_score(
            name, data, args.budget, "movielens-100k", COLUMNS, cv=args.cv
        )
    beauty: dict[str, Any] = {}
    beauty_full: dict[str, Any] = {}
    if args.beauty_budget > 0:
        bdata, blabel = beauty_sample(args.beauty_users)
        pins = {"epochs": args.beauty_epochs, "threads": args.beauty_threads}
        for name in [m for m in args.beauty_models.split(",") if m]:
            beauty[name] = tune_and_score(
                name, bdata, args.beauty_budget, blabel, SEQ_COLUMNS, pins
            )
    if args.beauty_full_budget > 0:
        fdata, flabel = beauty_sample(0)
        for name in [m for m in args.beauty_full_models.split(",") if m]:
            beauty_full[name] = tune_and_score(
                name, fdata, args.beauty_full_budget, flabel, SEQ_COLUMNS
            )
    print_table(results)
    for title, rows in (("Beauty sample", beauty), ("Beauty (all users)", beauty_full)):
        for name, res in rows.items():
            for kind in ("tuned", "default"):
                if kind in res:
                    cells = "  ".join(f"{c} {v:.4f}" for c, v in res[kind].items())
                    print(f"{title}: {name} ({kind}) {cells}")
    report: dict[str, Any] = {
        "benchmark": "tuned vs default, movielens-100k, Microsoft Recommenders protocol",
        "protocol": "random_holdout 75/25 seed 42, binary, k=10, seen items removed; tuning on "
        "a validation holdout of the training part (TPE + median pruner)",
        "budget_seconds_per_model": args.budget,
        "published_source": SOURCE,
        "published": {algo: dict(zip(COLUMNS, v, strict=True)) for algo, v in PUBLISHED.items()},
        "results": results,
        **(
            {
                "beauty": {
                    "protocol": f"amazon-beauty leave-last-out, {args.beauty_users} random "
                    f"users (seed 0), at most {args.beauty_epochs} epochs per trial, full "
                    "ranking",
                    "budget_seconds_per_model": args.beauty_budget,
                    "results": beauty,
                }
            }
            if beauty
            else {}
        ),
        **(
            {
                "beauty_full": {
                    "protocol": "amazon-beauty leave-last-out, all 22,363 users, full "
                    "ranking (as benchmarks/beauty_loo.py)",
                    "budget_seconds_per_model": args.beauty_full_budget,
                    "results": beauty_full,
                }
            }
            if beauty_full
            else {}
        ),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['seconds']}s)")


def print_table(results: dict[str, Any]) -> None:
    """Tuned and default rows, then the published ones."""
    print(f"\n{'algorithm':<24}" + "".join(f"{c:>13}" for c in COLUMNS))
    for name, res in results.items():
        if "error" in res:
            print(f"{'shelfwise/' + name:<24}  ERROR {res['error']}")
            continue
        for kind in ("tuned", "default"):
            if kind in res:
                cells = "".join(f"{res[kind][c]:>13.6f}" for c in COLUMNS)
                print(f"{f'shelfwise/{name} ({kind})':<24}{cells}")
    for algo, values in PUBLISHED.items():
        print(f"{'published/' + algo:<24}" + "".join(f"{v:>13.6f}" for v in values))


if __name__ == "__main__":
    main()
