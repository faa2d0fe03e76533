"""SASRec's loss: full softmax (`ce`) against the paper's one-negative `bce`, same configs.

    python benchmarks/sasrec_loss.py [--users 4000] [--epochs 10] [--threads 1]

Two configurations found by the TPE-vs-random comparison (benchmarks/tuning_compare.py,
SASRec seed 3: random search's best, a `ce` config, and TPE's best, a `bce` one), each
trained with both losses on the same Amazon Beauty leave-last-out sample and validation
split as that comparison (seed 0 users, split seed 42, early stopping with patience 3).
Prints the validation NDCG@10 after every epoch and writes
benchmarks/results/sasrec_loss.json. This is why SASRec's search space fixes `loss="ce"`.

Each value is one training's validation NDCG@10, a mean over `validation_users` users; the
table gives it with the bound of its 95% interval over them (per-user values are not kept:
`benchmarks/render_tables.py`). `--count-users` adds that count to a saved file without
training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).parent))
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
    results = []
    for name, params in CONFIGS.items():
        for loss in ("ce", "bce"):
            objective = Objective(
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
            results.append(row)
            print(
                f"{name:<28} {loss:<4} final {trial.value:.4f} ({row['seconds']:.0f}s) "
                f"per epoch {' '.join(f'{v:.4f}' for v in curve)}",
                flush=True,
            )
    out = Path(args.out)
    report = {"dataset": label, "metric": "validation ndcg@10", "results": results,
              "validation_users": validation_users(folds)}  # fmt: skip
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
