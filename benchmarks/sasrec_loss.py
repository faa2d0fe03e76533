"""SASRec's loss: full softmax (`ce`) against the paper's one-negative `bce`, same configs.

    python benchmarks/sasrec_loss.py [--users 4000] [--epochs 10] [--threads 1]

Two configurations found by the TPE-vs-random comparison (benchmarks/tuning_compare.py,
SASRec seed 3: random search's best, a `ce` config, and TPE's best, a `bce` one), each
trained with both losses on the same Amazon Beauty leave-last-out sample and validation
split as that comparison (seed 0 users, split seed 42, early stopping with patience 3).
Prints the validation NDCG@10 after every epoch and writes
benchmarks/results/sasrec_loss.json. This is why SASRec's search space fixes `loss="ce"`.

Each value is one training's validation NDCG@10, a mean over `validation_users` users,
with its 95% t interval over them: each row keeps the per-user values' summary (`per_user`:
n, mean, sd, `stats.unit_summary`) and `ci95`, and each configuration the paired test of
ce against bce on the same users (`paired_ce_minus_bce`, `stats.paired_test`). Files saved
before that was recorded are rendered with the bound of the interval
(`benchmarks/render_tables.py`). `--count-users` adds the user count to a saved file
without training.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).parent))
from shelfwise.evaluation.metrics import ndcg_per_user
from shelfwise.evaluation.stats import mean_interval, paired_test, unit_summary
from shelfwise.tuning.data import validation_folds
from shelfwise.tuning.objective import Objective
from tuning_compare import SPLIT_SEED, epoch_values, load_data

CONFIGS = {
    "random-search best (seed 3)": {
        "hidden": 32, "blocks": 1, "dropout": 0.1414, "schedule": "warmup_cosine",
        "optimizer": "adamw", "lr": 0.00375, "weight_decay": 1e-05, "batch_size": 64,
        "warmup_epochs": 2,
    },
    "TPE best (seed 3)": {
        "hidden": 64, "blocks": 1, "dropout": 0.1407, "schedule": "warmup_cosine",
        "optimizer": "adam", "lr": 0.00265, "weight_decay": 1e-05, "batch_size": 64,
        "warmup_epochs": 2,
    },
}  # fmt: skip


@dataclass
class PerUserObjective(Objective):
    """The tuning objective, also keeping the final model's per-user validation NDCG@10
    (the values `score_fold` averages, users in fold order)."""

    per_user: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)

    def _epochs(self, model: Any, fold: Any, trial: Any | None) -> float:
        value = super()._epochs(model, fold, trial)
        users = fold.users
        if getattr(model, "sequential", False) and fold.sequences is not None:  # as score_fold
            recs = model.recommend_batch(
                fold.train[users], k=self.k, users=users, sequences=fold.sequences.rows(users)
            )
        else:
            recs = model.recommend_batch(fold.train[users], k=self.k, users=users)
        self.per_user = ndcg_per_user(recs.ids, fold.relevance[users], self.k)
        if not np.isclose(self.per_user.mean(), value, rtol=0, atol=1e-9):
            raise RuntimeError(f"per-user mean {self.per_user.mean()} is not the value {value}")
        return value


def validation_users(folds: Any) -> int:
    """How many users the validation NDCG@10 averages over (the bound of its interval)."""
    return int(sum(f.users.size for f in folds))


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "sasrec_loss.json")
    )
    parser.add_argument(
        "--count-users", action="store_true", help="add validation_users to --out, no training"
    )
    parser.add_argument(
        "--seconds-from",
        type=Path,
        help="a saved report of a quieter run: rows whose final value it matches (1e-9) keep "
        "its seconds, this run's go to `rerun_seconds`",
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data, label, pins = load_data("amazon-beauty", args.users, args.epochs)
    folds = validation_folds(data, seed=SPLIT_SEED)
    if args.count_users:
        saved = json.loads(Path(args.out).read_text())
        saved["validation_users"] = validation_users(folds)
        Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        print(f"{args.out}: validation_users {saved['validation_users']}")
        return
    load_before = round(os.getloadavg()[0], 2)
    results = []
    for name, params in CONFIGS.items():
        per_user: dict[str, np.ndarray] = {}
        for loss in ("ce", "bce"):
            objective = PerUserObjective(
                models=["sasrec"], folds=folds,
                pinned={"sasrec": {**pins, "threads": args.threads, "loss": loss}},
            )  # fmt: skip
            study = optuna.create_study(direction="maximize")
            study.enqueue_trial(params)
            t0 = time.perf_counter()
            study.optimize(objective, n_trials=1)
            trial = study.trials[0]
            curve = epoch_values(trial)
            row = {"config": name, "loss": loss, "params": params, "final": trial.value,
                   "curve": curve, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            per_user[loss] = objective.per_user
            row["per_user"] = unit_summary(objective.per_user)
            row["ci95"] = list(mean_interval(objective.per_user)[1:])
            results.append(row)
            print(
                f"{name:<28} {loss:<4} final {trial.value:.4f} ({row['seconds']:.0f}s) "
                f"per epoch {' '.join(f'{v:.4f}' for v in curve)}",
                flush=True,
            )
        test = paired_test(per_user["ce"], per_user["bce"])
        for row in results[-2:]:
            row["paired_ce_minus_bce"] = test
    if args.seconds_from:
        earlier = {
            (r["config"], r["loss"]): r
            for r in json.loads(args.seconds_from.read_text())["results"]
        }
        kept = []
        for row in results:
            prev = earlier.get((row["config"], row["loss"]))
            if prev is not None and abs(prev["final"] - row["final"]) <= 1e-9:
                row["rerun_seconds"], row["seconds"] = row["seconds"], prev["seconds"]
                kept.append(f"{row['config']} {row['loss']}")
        seconds_note = (
            f"rows {'; '.join(kept)}: the same final values as {args.seconds_from}, whose "
            "seconds they show (this run's, on a loaded machine, are `rerun_seconds`)"
        )
    out = Path(args.out)
    report = {"dataset": label, "metric": "validation ndcg@10", "results": results,
              "validation_users": validation_users(folds),
              "command": " ".join(["python", *sys.argv]),
              "load_avg_1m_before_after": [load_before, round(os.getloadavg()[0], 2)]}  # fmt: skip
    if args.seconds_from:
        report["seconds_from"] = seconds_note
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
