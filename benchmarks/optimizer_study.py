"""Optimiser study: the same model trained with every optimiser (and every schedule) under
the same epoch budget; validation NDCG@10 per epoch, seconds, test NDCG@10.

BPR-MF on MovieLens-100K (part `bprmf`): the holdout protocol (per-user random 75/25,
seed 42) for train/test; validation is the model's internal hold-out (10% of each user's
training interactions, seed 42), so every run sees exactly the same data. Each optimiser
gets a small learning-rate grid (its usual range; the loss is a batch mean, so plain SGD
needs large rates) and `--epochs` epochs with no early stopping; the table reports the
best rate of each. L-BFGS runs full batch (one step with up to 20 line-searched iterations
per epoch); the others run mini-batches of 2048. Every run uses the model's own per-example
L2 (`reg` 0.01); adamw adds decoupled weight decay 0.05. Then every schedule runs with adam
and adamw at their best rates (warm-up schedules warm up for 2 epochs; step halves the rate
every epochs/3 epochs, exponential multiplies it by 0.9 per epoch, plateau halves it after 2
epochs without improvement, one-cycle peaks at the rate).

SASRec on Amazon Beauty (part `sasrec`, if the model exists): leave-last-out, validation =
each user's second-to-last item, each optimiser at its usual rate (adamw with decoupled
weight decay 0.05) for `--sasrec-epochs` epochs on a random sample of `--sasrec-users`
users: a small budget on one CPU thread (the full-data SASRec numbers are in the Beauty
benchmark). L-BFGS is left out there: each of its steps is up to 20 forward/backward passes
of the transformer. A rerun with `--optimizers` merges into the saved runs.

    python benchmarks/optimizer_study.py                 # both parts
    python benchmarks/optimizer_study.py --parts bprmf --epochs 20
    python benchmarks/optimizer_study.py --replot        # plots and tables from the JSON
    python benchmarks/optimizer_study.py --rescore [--parts bprmf]   # intervals, see below

Intervals: each row is one training run, so its test NDCG@10 carries the 95% Student t
interval of the mean over test users (`test_ndcg@10_ci95`, from the per-user values,
`shelfwise.evaluation.stats.per_unit_intervals`). `--rescore` retrains the rows of the
tables (each optimiser's best rate, every schedule, every SASRec run) with their stored
parameters to add it, records how far the retrained test NDCG@10 is from the stored one
(`rescore_diff`) and saves after every run, so an interrupted rescore resumes.

Writes benchmarks/results/optimizer_study.json and the convergence plots
optimizer_study_bprmf.png, optimizer_study_bprmf_schedules.png (and _sasrec.png).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shelfwise.cli.train import training_input
from shelfwise.data.datasets import load_dataset
from shelfwise.evaluation.metrics import per_user_ranking
from shelfwise.evaluation.protocols import ProtocolData, prepare
from shelfwise.evaluation.stats import per_unit_intervals
from shelfwise.recommenders import available, create
from shelfwise.train import OPTIMIZERS, SCHEDULES, TrainHistory
from shelfwise.train.curves import plot_comparison

log = logging.getLogger("optimizer_study")
RESULTS = Path(__file__).parent / "results"

BPR_GRID: dict[str, list[float]] = {
    "sgd": [100.0, 300.0, 1000.0],
    "momentum": [10.0, 30.0, 100.0],
    "nesterov": [10.0, 30.0, 100.0],
    "adagrad": [0.03, 0.1, 0.3],
    "rmsprop": [1e-3, 3e-3, 1e-2],
    "adam": [3e-3, 1e-2, 3e-2],
    "adamw": [3e-3, 1e-2, 3e-2],
    "adadelta": [30.0, 100.0, 300.0],
    "lbfgs": [1.0],  # its strong-Wolfe line search sets the step; full batch is costly
}
SASREC_LR: dict[str, float] = {
    "sgd": 1.0, "momentum": 0.1, "nesterov": 0.1, "adagrad": 0.05, "rmsprop": 1e-3,
    "adam": 1e-3, "adamw": 1e-3, "adadelta": 10.0,
}  # fmt: skip


def options_for(optimizer: str, lr: float, epochs: int) -> dict[str, Any]:
    """Training options of one BPR-MF run."""
    out: dict[str, Any] = {"optimizer": optimizer, "lr": lr, "epochs": epochs, "patience": 0}
    if optimizer == "lbfgs":
        out["batch_size"] = 0
    if optimizer == "adamw":
        out["weight_decay"] = 0.05
    return out


def train_once(model_name: str, data: ProtocolData, params: dict[str, Any]) -> dict[str, Any]:
    """Fit one configuration; its history, seconds and test NDCG@10 / HR@10."""
    model = create(model_name, **params)
    validation = data.validation if data.validation.nnz else None
    t0 = time.perf_counter()
    model.fit(training_input(model, data), validation=validation)  # type: ignore[call-arg]
    seconds = time.perf_counter() - t0
    history: TrainHistory = model.history  # type: ignore[attr-defined]
    users = data.test_users
    from shelfwise.evaluation.runner import recommend_users

    recs, _ = recommend_users(model, data, users, 10)
    per_user = per_user_ranking(recs, data.test[users], 10)
    test = {key: float(v.mean()) for key, v in per_user.items()}
    ci = per_unit_intervals({"ndcg@10": per_user["ndcg@10"]})["ndcg@10"]
    vals = [e["ndcg@10"] for e in history.epochs if "ndcg@10" in e]
    row = {
        "params": params,
        "seconds": round(seconds, 2),
        "epochs_run": len(history.epochs),
        "final_val_ndcg@10": vals[-1] if vals else None,
        "best_val_ndcg@10": history.best_value,
        "best_epoch": history.best_epoch,
        "diverged": history.diverged,
        "test_ndcg@10": test["ndcg@10"],
        "test_ndcg@10_ci95": ci["ci95"],
        "test_users": ci["n"],
        "test_hr@10": test["hr@10"],
        "history": history.to_dict(),
    }
    log.info(
        "%s %s: final val %.4f best %.4f @%s test %.4f (%.1fs)%s",
        model_name, {k: v for k, v in params.items() if k not in ("epochs", "patience")},
        row["final_val_ndcg@10"] or 0.0, row["best_val_ndcg@10"] or 0.0, row["best_epoch"],
        row["test_ndcg@10"], seconds, " DIVERGED" if history.diverged else "",
    )  # fmt: skip
    return row


def _score(row: dict[str, Any]) -> float:
    best = row["best_val_ndcg@10"]
    return -1.0 if best is None or row["diverged"] else float(best)


def bprmf_part(epochs: int, optimizers: list[str], out: dict[str, Any]) -> None:
    """Every optimiser over its lr grid, then every schedule with adam and adamw."""
    data = prepare(load_dataset("movielens-100k").events, "holdout", seed=42)
    runs: dict[str, list[dict[str, Any]]] = {}
    best: dict[str, dict[str, Any]] = {}
    for opt in optimizers:
        runs[opt] = [
            train_once("bprmf", data, options_for(opt, lr, epochs)) for lr in BPR_GRID[opt]
        ]
        best[opt] = max(runs[opt], key=_score)
    schedules: dict[str, dict[str, Any]] = {}
    for opt in ("adam", "adamw"):
        if opt not in best:
            continue
        lr = best[opt]["params"]["lr"]
        for schedule in SCHEDULES:
            params = {**options_for(opt, lr, epochs), "schedule": schedule}
            if schedule.startswith("warmup"):
                params["warmup_epochs"] = min(2, epochs - 1)
            if schedule == "step":
                params["step_size"] = max(1, epochs // 3)
            if schedule == "exponential":
                params["gamma"] = 0.9
            schedules[f"{opt}+{schedule}"] = train_once("bprmf", data, params)
    out["bprmf"] = {
        "dataset": "movielens-100k",
        "protocol": "holdout (75/25 per user, seed 42); validation: internal 10% hold-out",
        "epochs": epochs,
        "grid": {o: BPR_GRID[o] for o in optimizers},
        "best": {o: _summary(r) for o, r in best.items()},
        "schedules": {name: _summary(r) for name, r in schedules.items()},
        "runs": {o: [_summary(r) for r in rs] for o, rs in runs.items()},
    }
    plot_bprmf(out["bprmf"])


def curve(row: dict[str, Any]) -> TrainHistory:
    """A run's validation NDCG@10 series (from its summary) as a history to plot."""
    series = row["val_ndcg@10_by_epoch"]
    return TrainHistory(epochs=[{"epoch": i + 1, "ndcg@10": v} for i, v in enumerate(series)])


def plot_bprmf(part: dict[str, Any]) -> None:
    """The two convergence plots of the BPR-MF part."""
    plot_comparison(
        {f"{o} (lr {r['params']['lr']:g})": curve(r) for o, r in part["best"].items()},
        RESULTS / "optimizer_study_bprmf.png",
        title=f"BPR-MF on MovieLens-100K: validation NDCG@10, {part['epochs']} epochs, "
        "best lr each",
    )
    plot_comparison(
        {name: curve(r) for name, r in part["schedules"].items()},
        RESULTS / "optimizer_study_bprmf_schedules.png",
        title="BPR-MF on MovieLens-100K: schedules with adam / adamw",
    )


def plot_sasrec(part: dict[str, Any]) -> None:
    """The convergence plot of the SASRec part."""
    plot_comparison(
        {o: curve(r) for o, r in part["runs"].items()},
        RESULTS / "optimizer_study_sasrec.png",
        title=f"SASRec on Amazon Beauty ({part['users']:,} users): validation NDCG@10, "
        f"{part['epochs']} epochs",
    )


def sample_users(events: Any, n: int, seed: int = 42) -> Any:
    """The events of `n` users drawn at random (all users when n is 0 or more than exist)."""
    users = events["user_id"].dropna().unique()
    if not n or n >= users.size:
        return events
    rng = np.random.default_rng(seed)
    keep = set(rng.choice(users, size=n, replace=False).tolist())
    return events[events["user_id"].isin(keep)].reset_index(drop=True)


def sasrec_part(epochs: int, users: int, optimizers: list[str], out: dict[str, Any]) -> None:
    """Each optimiser at its usual rate for a few epochs of SASRec on (a user sample of)
    Beauty."""
    events = sample_users(load_dataset("amazon-beauty").events, users)
    data = prepare(events, "loo", seed=42)
    runs: dict[str, dict[str, Any]] = {}
    for opt in optimizers:
        if opt == "lbfgs":  # each step is up to 20 full forward/backward passes
            log.info("sasrec: skipping lbfgs (too costly for this budget)")
            continue
        params: dict[str, Any] = {
            "optimizer": opt, "lr": SASREC_LR[opt], "epochs": epochs, "patience": 0,
            "threads": 1,
        }  # fmt: skip
        if opt == "adamw":
            params["weight_decay"] = 0.05
        runs[opt] = train_once("sasrec", data, params)
    previous = out.get("sasrec", {})
    if (previous.get("epochs"), previous.get("users")) == (epochs, data.n_users):
        runs = {**previous.get("runs", {}), **runs}  # a partial rerun (--optimizers) merges
        runs = {o: runs[o] for o in OPTIMIZERS if o in runs}
    out["sasrec"] = {
        "dataset": "amazon-beauty",
        "users": data.n_users,
        "items": data.n_items,
        "protocol": "leave-last-out; validation: each user's second-to-last item",
        "epochs": epochs,
        "runs": {o: r if "history" not in r else _summary(r) for o, r in runs.items()},
    }
    plot_sasrec(out["sasrec"])


def rescore(parts: set[str], path: Path, out: dict[str, Any]) -> None:
    """Retrain every table row without an interval with its stored parameters; add the
    interval over test users and the difference from the stored test NDCG@10."""
    tables = {"bprmf": ("best", "schedules"), "sasrec": ("runs",)}
    todo = [
        (part, key, name)
        for part in ("bprmf", "sasrec")
        if part in parts and part in out
        for key in tables[part]
        for name, row in out[part][key].items()
        if "test_ndcg@10_ci95" not in row
    ]
    if not todo:
        log.info("rescore: every row has its interval")
        return
    t0 = time.perf_counter()
    data: dict[str, ProtocolData] = {}
    for i, (part, key, name) in enumerate(todo, 1):
        if part not in data:
            if part == "bprmf":
                data[part] = prepare(load_dataset("movielens-100k").events, "holdout", seed=42)
            else:
                events = sample_users(load_dataset("amazon-beauty").events, out[part]["users"])
                data[part] = prepare(events, "loo", seed=42)
        row = out[part][key][name]
        fresh = train_once("bprmf" if part == "bprmf" else "sasrec", data[part], row["params"])
        row["test_ndcg@10_ci95"] = fresh["test_ndcg@10_ci95"]
        row["test_users"] = fresh["test_users"]
        row["rescore_diff"] = fresh["test_ndcg@10"] - row["test_ndcg@10"]
        path.write_text(json.dumps(out, indent=1))
        elapsed = time.perf_counter() - t0
        log.info(
            "rescore %d/%d %s %s: test %.4f (stored %.4f), ETA %.0f s", i, len(todo), part,
            name, fresh["test_ndcg@10"], row["test_ndcg@10"], elapsed / i * (len(todo) - i),
        )  # fmt: skip


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    """A run with its per-epoch history reduced to the loss, NDCG and lr series."""
    history = TrainHistory.from_dict(row["history"])
    keep = {k: v for k, v in row.items() if k != "history"}
    for key, name in (("ndcg@10", "val_ndcg@10_by_epoch"), ("loss", "loss_by_epoch"),
                      ("lr", "lr_by_epoch")):  # fmt: skip
        keep[name] = [round(v, 6) for v in history.series(key)[1]]
    return keep


def table(part: dict[str, Any], key: str) -> str:
    """A Markdown table of one part's runs."""
    lines = [
        "| run | lr | final val NDCG@10 | best val NDCG@10 (epoch) | test NDCG@10 | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in part[key].items():
        final = "diverged" if r["diverged"] else f"{r['final_val_ndcg@10'] or 0:.4f}"
        lines.append(
            f"| {name} | {r['params']['lr']:g} | {final} | {r['best_val_ndcg@10'] or 0:.4f} "
            f"({r['best_epoch']}) | {r['test_ndcg@10']:.4f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run the study and write the JSON and plots."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="bprmf,sasrec", help="bprmf, sasrec or both")
    parser.add_argument("--epochs", type=int, default=20, help="BPR-MF epoch budget")
    parser.add_argument("--sasrec-epochs", type=int, default=8, help="SASRec epoch budget")
    parser.add_argument(
        "--sasrec-users", type=int, default=4000, help="Beauty users sampled (0 = all 22,363)"
    )
    parser.add_argument("--optimizers", default=",".join(OPTIMIZERS))
    parser.add_argument("--out", default=str(RESULTS / "optimizer_study.json"))
    parser.add_argument(
        "--replot", action="store_true", help="redraw the plots and tables from --out, no training"
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="retrain the tables' rows of --out to add per-user intervals (no new study)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(2)
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    parts = {p.strip() for p in args.parts.split(",")}
    path = Path(args.out)
    out: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if args.rescore:
        rescore(parts, path, out)
        return
    if args.replot:
        if "bprmf" in out:
            plot_bprmf(out["bprmf"])
            print(table(out["bprmf"], "best"), table(out["bprmf"], "schedules"), sep="\n\n")
        if "sasrec" in out:
            plot_sasrec(out["sasrec"])
            print(table(out["sasrec"], "runs"))
        return
    out["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": "1 (torch)",
        "device": "cpu",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    if "bprmf" in parts:
        bprmf_part(args.epochs, optimizers, out)
        path.write_text(json.dumps(out, indent=1))
        print(table(out["bprmf"], "best"))
        print()
        print(table(out["bprmf"], "schedules"))
    if "sasrec" in parts:
        if "sasrec" not in available():
            log.warning("no sasrec model registered; skipping the SASRec part")
        else:
            sasrec_part(args.sasrec_epochs, args.sasrec_users, optimizers, out)
            path.write_text(json.dumps(out, indent=1))
            print(table(out["sasrec"], "runs"))
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
