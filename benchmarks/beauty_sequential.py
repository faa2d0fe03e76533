"""SASRec, GRU4Rec and Caser on Amazon Beauty (5-core), leave-last-one-out, full ranking.

    python benchmarks/beauty_sequential.py [--models sasrec,gru4rec,caser] [--epochs N]
        [--minutes M] [--val-users N] [--threads T] [--set sasrec.loss=bce ...] [--out PATH]

Protocol (as SASRec's paper and code, and S3-Rec's data): per user the last item is the test
target and the second-to-last the validation target. A model trains on every user's
sequence without those two (next-item objective, see each model's doc), validates after
every epoch on the validation target (full-ranking NDCG@10 over `--val-users` users,
training items excluded) for early stopping with restore-best, and is then tested on the
test target from the sequence *including* the validation item, as in the paper: no
retraining. Reported: full-ranking HR@10 / NDCG@10 (target among all 12,101 items, the
user's history excluded; test targets the user already had are dropped, as in
benchmarks/beauty_loo.py) and sampled HR@10 / NDCG@10 (target among the same 99 sampled
negatives per user as beauty_loo.py, seed 42).

Budget. Training stops at `--epochs`, on early stopping (the model's `patience`), or when
`--minutes` of training have passed (the best epoch so far is kept); the JSON records which.
A longer budget (`--minutes 600 --epochs 200`) reproduces a fully converged run.

Intervals: one run (no seed to vary in the split, and a model's training is too long on a
CPU to repeat), so each figure carries the 95% Student t interval of the mean over the
test users (`ci95`, from the per-user values). Runs saved before that was recorded are
rendered with the exact interval of HR@10 (0/1 per user) and a bound of NDCG@10's
(`benchmarks/render_tables.py`).

Results are merged into benchmarks/results/beauty_sequential.json (one entry per model, so
models can run in separate processes), beside the best classic models of
benchmarks/results/beauty_loo.json (with their intervals; `--refresh-classic` copies them
again without training) and published SASRec numbers (PUBLISHED, with sources).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from shelfwise.data.datasets import load_dataset
from shelfwise.data.sequences import OrderedInteractions
from shelfwise.evaluation.metrics import ndcg_of_ranks, per_user_ranking
from shelfwise.evaluation.protocols import fold_validation, prepare, sample_negatives
from shelfwise.evaluation.runner import sampled_metrics
from shelfwise.evaluation.stats import per_unit_intervals
from shelfwise.recommenders import create
from shelfwise.recommenders.sequential import SequentialRecommender

K = 10
SEED = 42
N_NEGATIVES = 99
RESULTS = Path(__file__).parent / "results"
CLASSIC = ("hybrid", "userknn", "ease", "itemknn")

# Full-ranking SASRec numbers on this data set and protocol (leave-one-out, 5-core Beauty of
# S3-Rec: 22,363 users, 12,101 items, 198,502 reviews), and the sampled ones of S3-Rec.
PUBLISHED: dict[str, dict[str, Any]] = {
    "SASRec (S3-Rec paper, sampled 99)": {
        "mode": "sampled99", "HR@10": 0.4696, "NDCG@10": 0.3156,
        "source": "Zhou et al., CIKM 2020 (S3-Rec), Table 2 Beauty, restated in "
                  "aHuiWang/CIKM2020-S3Rec reproduce/README.md",
    },
    "SASRec (genrec, full)": {
        "mode": "full", "HR@10": 0.0688, "NDCG@10": 0.0375,
        "source": "genrec documentation, SASRec on Amazon 2014 Beauty "
                  "(https://phonism.github.io/genrec/en/models/sasrec), third-party run",
    },
    "SASRec (RecBole-style CE run, full)": {
        "mode": "full", "HR@10": 0.0848, "NDCG@10": 0.0432,
        "source": "kanishkaRandunu/pswrec2k26, archives/results/results_old/Final_Results/"
                  "results_table_updated.md (Amazon Beauty, full ranking), third-party run",
    },
}  # fmt: skip


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """`model.key=value` -> {model: {key: value}} (values parsed as JSON when they can be)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, _, raw = item.partition("=")
        model, _, field = key.partition(".")
        if not field or not raw:
            raise SystemExit(f"--set wants model.key=value, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(model, {})[field] = value
    return out


def run_model(
    name: str,
    params: dict[str, Any],
    data: Any,
    test: Any,
    negatives: np.ndarray,
    minutes: float,
    val_users: int,
) -> tuple[dict[str, Any], SequentialRecommender]:
    """Train `name` within the budget, then test it; returns (the JSON row, the model)."""
    model = create(name, **params)
    assert isinstance(model, SequentialRecommender)
    validation = data.validation
    if val_users and val_users < data.test_users.size:
        rng = np.random.default_rng(SEED)
        keep = np.zeros(data.n_users, dtype=bool)
        keep[rng.choice(data.n_users, size=val_users, replace=False)] = True
        validation = sp.csr_matrix(sp.diags(keep.astype(np.float32)) @ validation)
        validation.eliminate_zeros()  # rows of the other users must hold no stored cells
    t0 = time.perf_counter()
    model.start(OrderedInteractions(data.train, data.sequences), validation=validation)
    trainer = model.trainer
    assert trainer is not None
    stop = "epochs"
    while trainer.epoch < trainer.cfg.epochs:
        epoch_row = trainer.train_epoch()
        print(
            f"  {name} epoch {int(epoch_row['epoch'])}: loss {epoch_row['loss']:.4f} "
            f"val ndcg@10 {epoch_row.get('ndcg@10', float('nan')):.4f} "
            f"hr@10 {epoch_row.get('hr@10', float('nan')):.4f} ({epoch_row['seconds']:.0f}s)",
            flush=True,
        )
        if trainer.should_stop:
            stop = "early stopping"
            break
        if time.perf_counter() - t0 > minutes * 60:
            stop = f"time budget ({minutes:g} min)"
            break
    trainer.finish()
    train_seconds = time.perf_counter() - t0
    history = trainer.history

    users = test.test_users
    assert test.sequences is not None
    seqs = test.sequences.rows(users)
    t1 = time.perf_counter()
    recs = model.recommend_batch(test.train[users], k=K, users=users, sequences=seqs)
    rec_seconds = time.perf_counter() - t1
    per_user = per_user_ranking(recs.ids, test.test[users], K)
    full = {key: float(v.mean()) for key, v in per_user.items()}
    scores = model.score_sequences(seqs, users)
    ranks = []
    for row_i, user in enumerate(users):
        pos = test.test.indices[test.test.indptr[user] : test.test.indptr[user + 1]]
        neg = negatives[row_i][negatives[row_i] >= 0]
        s = scores[row_i]
        ranks.append(1 + (s[neg][None, :] >= s[pos][:, None]).sum(axis=1))
    all_ranks = np.concatenate(ranks)
    sampled = sampled_metrics(all_ranks, K, N_NEGATIVES)
    hit = all_ranks <= K
    intervals = per_unit_intervals(
        {
            "full_HR@10": per_user[f"hr@{K}"],
            "full_NDCG@10": per_user[f"ndcg@{K}"],
            f"sampled{N_NEGATIVES}_HR@10": hit.astype(np.float64),
            f"sampled{N_NEGATIVES}_NDCG@10": ndcg_of_ranks(all_ranks, K),
        }
    )
    epochs = history.epochs
    row: dict[str, Any] = {
        "params": params,
        "full_HR@10": full[f"hr@{K}"],
        "full_NDCG@10": full[f"ndcg@{K}"],
        f"sampled{N_NEGATIVES}_HR@10": sampled[f"sampled{N_NEGATIVES}_hr@{K}"],
        f"sampled{N_NEGATIVES}_NDCG@10": sampled[f"sampled{N_NEGATIVES}_ndcg@{K}"],
        "epochs_run": len(epochs),
        "best_epoch": history.best_epoch,
        "best_val_ndcg@10": history.best_value,
        "stopped_by": stop,
        "train_seconds": train_seconds,
        "seconds_per_epoch": float(np.mean([e["seconds"] for e in epochs])) if epochs else 0.0,
        "recommend_users_per_second": users.size / rec_seconds if rec_seconds else 0.0,
        "users_evaluated": int(users.size),
        "ci95": {col: iv["ci95"] for col, iv in intervals.items()},
        "curve": [
            {k: e[k] for k in ("epoch", "loss", "ndcg@10", "hr@10", "seconds") if k in e}
            for e in epochs
        ],
    }
    return row, model


def merge_results(out: Path, rows: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Read-modify-write `out` under a lock, so parallel runs of different models merge."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(out.parent, os.O_RDONLY)  # lock the folder: no lock file left behind
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(out.read_text()) if out.exists() else {}
        report.update(meta)
        report.setdefault("results", {}).update(rows)
        out.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        os.close(lock)
    return report


def classic_rows() -> dict[str, dict[str, Any]]:
    """The best classic models of benchmarks/results/beauty_loo.json."""
    path = RESULTS / "beauty_loo.json"
    if not path.exists():
        return {}
    res = json.loads(path.read_text()).get("results", {})
    keys = ("full_HR@10", "full_NDCG@10", "sampled99_HR@10", "sampled99_NDCG@10")
    rows: dict[str, dict[str, Any]] = {}
    for m in CLASSIC:
        if m not in res or "error" in res[m]:
            continue
        rows[m] = {k: res[m][k] for k in keys}
        ci = {k: v for k, v in res[m].get("ci95", {}).items() if k in keys}
        if ci:
            rows[m]["ci95"] = ci  # their intervals over the same test users
    return rows


def print_table(report: dict[str, Any]) -> None:
    """Ours, the classics, the published numbers."""
    cols = ("full_HR@10", "full_NDCG@10", "sampled99_HR@10", "sampled99_NDCG@10")
    print(f"\n{'model':<40}" + "".join(f"{c:>19}" for c in cols))
    for name, row in report.get("results", {}).items():
        print(f"{'shelfwise/' + name:<40}" + "".join(f"{row[c]:>19.4f}" for c in cols))
    for name, row in report.get("classic", {}).items():
        print(f"{'classic/' + name:<40}" + "".join(f"{row[c]:>19.4f}" for c in cols))
    for name, pub in PUBLISHED.items():
        full = pub["mode"] == "full"
        vals = [pub["HR@10"], pub["NDCG@10"], None, None] if full else [
            None, None, pub["HR@10"], pub["NDCG@10"]]  # fmt: skip
        cells = "".join(f"{v:>19.4f}" if v is not None else f"{'-':>19}" for v in vals)
        print(f"{'published/' + name:<40}{cells}")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="sasrec,gru4rec,caser")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget per model")
    parser.add_argument("--val-users", type=int, default=3000, help="0 = all users")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    parser.add_argument("--save-dir", default="", help="save each trained model under DIR/<name>")
    parser.add_argument("--users", type=int, default=0, help="smoke test: first N users only")
    parser.add_argument("--out", default=str(RESULTS / "beauty_sequential.json"))
    parser.add_argument(
        "--refresh-classic",
        action="store_true",
        help="only copy the classic rows (with their intervals) from beauty_loo.json into --out",
    )
    args = parser.parse_args()
    if args.refresh_classic:
        saved = json.loads(Path(args.out).read_text())
        saved["classic"] = classic_rows()
        Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        print(f"{args.out}: classic rows {', '.join(saved['classic'])} from beauty_loo.json")
        return
    torch.set_num_threads(max(1, args.threads))
    sets = parse_sets(args.set)

    t0 = time.perf_counter()
    ds = load_dataset("amazon-beauty")
    events = ds.events
    if args.users:
        first = events["user_id"].drop_duplicates().iloc[: args.users]
        events = events[events["user_id"].isin(first)]
    data = prepare(events, "loo", seed=SEED, binary=True)
    test = fold_validation(data)
    everything = test.train + test.test
    negatives = sample_negatives(everything.tocsr(), test.test_users, N_NEGATIVES, seed=SEED)
    print(
        f"amazon-beauty loo: {data.n_users:,} users x {data.n_items:,} items, "
        f"{test.test_users.size:,} test users ({time.perf_counter() - t0:.1f}s)",
        flush=True,
    )
    rows: dict[str, Any] = {}
    for name in [m for m in args.models.split(",") if m]:
        params = {"epochs": args.epochs, "threads": args.threads, "seed": SEED}
        params.update(sets.get(name, {}))
        print(f"{name} {params}", flush=True)
        row, model = run_model(name, params, data, test, negatives, args.minutes, args.val_users)
        rows[name] = row
        if args.save_dir:
            model.save(Path(args.save_dir) / name)
        print(
            f"{name}: full HR@10 {row['full_HR@10']:.4f} NDCG@10 {row['full_NDCG@10']:.4f} | "
            f"sampled HR@10 {row['sampled99_HR@10']:.4f} NDCG@10 {row['sampled99_NDCG@10']:.4f}"
            f" | {row['epochs_run']} epochs ({row['stopped_by']}), best {row['best_epoch']}, "
            f"{row['seconds_per_epoch']:.0f} s/epoch",
            flush=True,
        )
    meta = {
        "benchmark": "amazon-beauty 5-core, leave-last-one-out, sequential models",
        "protocol": {
            "users_limit": args.users or None,
            "train": "sequences without the last two items; validation = second-to-last",
            "test": "last item, from the sequence including the validation item",
            "k": K,
            "sampled_negatives": N_NEGATIVES,
            "seed": SEED,
            "test_users": int(test.test_users.size),
        },
        "classic": classic_rows(),
        "published": PUBLISHED,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "threads": args.threads,
        },
    }
    report = merge_results(Path(args.out), rows, meta)
    print_table(report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
