"""Every registered model on Amazon Beauty (5-core), leave-last-one-out.

    python benchmarks/beauty_loo.py [--models a,b] [--negatives 99] [--out PATH]

Protocol (as S3-Rec, CIKM 2020, and the sequential-recommendation papers that reuse its
data): per user, the last item is the test target and the second-to-last the validation
target. As in those papers the test prediction is made from everything before the target:
models are fitted on train + validation (no tuning happens here) and score each user from
that history, excluding it. Reported: full-ranking HR@10 / NDCG@10 (the target among all
12,101 items) and sampled HR@10 / NDCG@10 (the target among 99 items the user never
interacted with, uniformly drawn with seed 42: 100 candidates, as S3-Rec's paper table).
Ties in the sampled ranking count against the target.

Published numbers beside ours (see PUBLISHED_SOURCES): S3-Rec's repository README of
reproduced results (sampled, 99 negatives). Full-ranking numbers of the S3-Rec paper are
only published as an image (all_rank.PNG), so none are quoted from it; a third-party
full-ranking SASRec reproduction is listed as such.

Intervals: the split is deterministic (no seed to vary), so full-ranking HR@10 and NDCG@10
carry the 95% Student t interval of the mean over test users (`ci95`,
`shelfwise.evaluation.stats.mean_interval` on the per-user values; with one target a user,
per-user recall@10 is their HR@10). The sampled columns carry the same interval from each
user's rank of the target among the 100 candidates (`ModelRun.sampled_ranks`), stored as
`sampled99_rank_counts` (how many users ranked it 1st, 2nd, ..., 100th: everything a
per-user metric of the rank needs, in 100 numbers). Rows saved before that was recorded
are rendered with sampled HR@10's exact interval from the mean and n and a bound of sampled
NDCG@10's (`benchmarks/render_tables.py`).

`--merge` keeps the rows of the existing `--out` file that this run has not replaced (for
rerunning some models, e.g. all but the 12-minute `embedding`); the report is written after
every model, so an interrupted run keeps what it measured.

Results go to benchmarks/results/beauty_loo.json; a model that raises is an error row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.data.datasets import load_dataset
from shelfwise.evaluation.metrics import ndcg_of_ranks
from shelfwise.evaluation.protocols import ProtocolData, prepare, sample_negatives
from shelfwise.evaluation.runner import evaluate_model
from shelfwise.evaluation.stats import mean_interval, per_unit_intervals
from shelfwise.recommenders import available

K = 10
SEED = 42
PUBLISHED_SOURCES: dict[str, dict[str, str]] = {
    "s3rec_repo": {
        "citation": "Zhou et al., S3-Rec: Self-Supervised Learning for Sequential "
        "Recommendation with Mutual Information Maximization, CIKM 2020 (Table 2, Beauty), "
        "as restated with the repository's reproduction",
        "repository": "aHuiWang/CIKM2020-S3Rec",
        "path": "reproduce/README.md",
        "commit": "25b1c6c8b1594ae387c160421dc24fdb67731dc5",
        "protocol": "leave-one-out, target ranked among 99 sampled negatives",
    },
    "genrec_docs": {
        "citation": "genrec documentation, SASRec benchmark on Amazon 2014 Beauty "
        "(third-party reproduction, not a paper)",
        "url": "https://phonism.github.io/genrec/en/models/sasrec",
        "protocol": "leave-one-out, full ranking",
    },
}
# model: {metric: value}
PUBLISHED: dict[str, dict[str, Any]] = {
    "SASRec (S3-Rec paper)": {
        "source": "s3rec_repo",
        "mode": "sampled99",
        "HR@1": 0.1870, "HR@5": 0.3741, "NDCG@5": 0.2848, "HR@10": 0.4696,
        "NDCG@10": 0.3156, "MRR": 0.2852,
    },
    "SASRec (S3-Rec repo rerun)": {
        "source": "s3rec_repo",
        "mode": "sampled99",
        "HR@1": 0.1867, "HR@5": 0.3721, "NDCG@5": 0.2843, "HR@10": 0.4651,
        "NDCG@10": 0.3142, "MRR": 0.2850,
    },
    "S3-Rec (paper)": {
        "source": "s3rec_repo",
        "mode": "sampled99",
        "HR@1": 0.2192, "HR@5": 0.4502, "NDCG@5": 0.3407, "HR@10": 0.5506,
        "NDCG@10": 0.3732, "MRR": 0.3340,
    },
    "S3-Rec (repo rerun)": {
        "source": "s3rec_repo",
        "mode": "sampled99",
        "HR@1": 0.2197, "HR@5": 0.4626, "NDCG@5": 0.3473, "HR@10": 0.5687,
        "NDCG@10": 0.3816, "MRR": 0.3390,
    },
    "SASRec (genrec, third party)": {
        "source": "genrec_docs",
        "mode": "full",
        "HR@5": 0.0469, "HR@10": 0.0688, "NDCG@5": 0.0305, "NDCG@10": 0.0375,
    },
}  # fmt: skip


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def with_validation_in_history(data: ProtocolData) -> ProtocolData:
    """Fold the validation targets into train (history and fit), as the papers' test step."""
    train = sp.csr_matrix(data.train + data.validation, dtype=np.float32)
    train.data[:] = 1.0
    test = sp.csr_matrix(data.test - data.test.multiply(train > 0), dtype=np.float32)
    test.eliminate_zeros()
    test_users = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int64)
    empty = sp.csr_matrix(data.validation.shape, dtype=np.float32)
    return dataclasses.replace(
        data, train=train, validation=empty, test=test, test_users=test_users
    )


def sampled_intervals(ranks: np.ndarray, n_negatives: int) -> dict[str, Any]:
    """From each test user's rank (1-based) of the target among `n_negatives` + 1
    candidates: `{"ci95": {col: [low, high]}, "rank_counts": [users at rank 1, 2, ...]}`,
    the 95% t intervals over users of sampled HR@10, NDCG@10 and MRR."""
    sk = f"sampled{n_negatives}"
    r = np.asarray(ranks, dtype=np.int64)
    per_user = {
        f"{sk}_HR@10": (r <= K).astype(np.float64),
        f"{sk}_NDCG@10": ndcg_of_ranks(r, K),
        f"{sk}_MRR": 1.0 / r,
    }
    intervals = per_unit_intervals(per_user)
    counts = np.bincount(r - 1, minlength=n_negatives + 1)
    return {
        "ci95": {col: iv["ci95"] for col, iv in intervals.items()},
        "rank_counts": [int(c) for c in counts],
    }


TIMINGS = ("fit_seconds", "recommend_users_per_second", "peak_rss_mb", "elapsed_seconds")
CHECKED = ("full_HR@10", "full_NDCG@10", "sampled99_HR@10", "sampled99_NDCG@10")


def keep_timings(
    report: dict[str, Any], earlier: dict[str, Any], note: str, tolerance: float = 1e-9
) -> dict[str, Any]:
    """Give each row of `report` the timings (`TIMINGS`) of the same model in `earlier`
    (a report of a quieter run, described by `note`) when their metrics (`CHECKED`) agree
    within `tolerance`, keeping this run's as `rerun_timings`; a row whose metrics differ
    more keeps its own. For reruns on a loaded machine that only add intervals: the
    figures are deterministic, the seconds are not. The largest difference is recorded."""
    old = earlier.get("results", {})
    kept = []
    for name, row in report["results"].items():
        prev = old.get(name)
        if "error" in row or not prev or "error" in prev or "rerun_timings" in row:
            continue
        if "sampled99_rank_counts" not in row:
            continue  # a row kept from the earlier run itself
        diff = max(abs(row[c] - prev[c]) for c in CHECKED)
        row["max_abs_diff_from_timed_run"] = diff
        if diff > tolerance:
            print(f"{name}: metrics differ from the earlier run by {diff:.2e}; own timings kept")
            continue
        row["rerun_timings"] = {t: row[t] for t in TIMINGS}
        row.update({t: prev[t] for t in TIMINGS})
        kept.append(name)
    report["timings_from"] = {"models": kept, "run": note, "tolerance": tolerance}
    return report


def run(models: list[str], n_negatives: int, out: Path, merge: bool = False) -> dict[str, Any]:
    """Evaluate `models` and write the JSON report (`merge`: keeping the other models'
    rows of an existing `out`)."""
    kept: dict[str, Any] = {}
    if merge and out.is_file():
        kept = json.loads(out.read_text())["results"]  # each replaced once its model has run
    t0 = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    ds = load_dataset("amazon-beauty")
    data = with_validation_in_history(
        prepare(ds.events, "loo", seed=SEED, binary=True, items=ds.items)
    )
    everything = sp.csr_matrix(data.train + data.test)
    negatives = sample_negatives(everything, data.test_users, n_negatives, seed=SEED)
    print(
        f"amazon-beauty loo: {data.n_users:,} users x {data.n_items:,} items, "
        f"{data.test_users.size:,} test users ({time.perf_counter() - t0:.1f}s)",
        flush=True,
    )
    rows: dict[str, Any] = {}
    sk = f"sampled{n_negatives}"

    def save() -> dict[str, Any]:
        """Write the report so far (after every model: an interrupted run keeps its rows)."""
        report = {
            "benchmark": "amazon-beauty 5-core, leave-last-one-out",
            "protocol": {
                "split": "leave_last_out (test = last, validation = second-to-last)",
                "history": "train + validation (models fitted on it; test from it)",
                "k": K,
                "sampled_negatives": n_negatives,
                "seed": SEED,
                "feedback": "implicit binary",
                "split_summary": data.summary,
                "interval": "95% Student t interval of the mean over test users (full and "
                "sampled ranking, from the per-user values)",
            },
            "published_sources": PUBLISHED_SOURCES,
            "published": PUBLISHED,
            "results": {**kept, **rows},
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "load_avg_1m_before_after": [load_before, round(os.getloadavg()[0], 2)],
            },
            "command": " ".join(["python", *sys.argv]),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report

    for i, name in enumerate(models, 1):
        start = time.perf_counter()
        print(f"[{i}/{len(models)}] {name} ...", flush=True)
        result = evaluate_model(name, data, k=K, negatives=negatives, n_sampled=n_negatives)
        elapsed = time.perf_counter() - start
        if result.error:
            rows[name] = {"error": result.error, "elapsed_seconds": elapsed}
            print(f"    ERROR {result.error} ({elapsed:.1f}s)", flush=True)
            continue
        r = result.metrics
        assert result.sampled_ranks is not None
        sampled = sampled_intervals(result.sampled_ranks, n_negatives)
        rows[name] = {
            "full_HR@10": r[f"hr@{K}"],
            "full_NDCG@10": r[f"ndcg@{K}"],
            "full_MRR@10": r[f"mrr@{K}"],
            f"{sk}_HR@10": r[f"{sk}_hr@{K}"],
            f"{sk}_NDCG@10": r[f"{sk}_ndcg@{K}"],
            f"{sk}_MRR": r[f"{sk}_mrr"],
            "coverage": r["coverage"],
            "fit_seconds": r["fit_seconds"],
            "recommend_users_per_second": r["recommend_users_per_second"],
            "peak_rss_mb": peak_rss_mb(),
            "elapsed_seconds": elapsed,
            "ci95": {
                "full_HR@10": list(mean_interval(result.per_user[f"recall@{K}"])[1:]),
                "full_NDCG@10": list(mean_interval(result.per_user[f"ndcg@{K}"])[1:]),
                **sampled["ci95"],
            },
            f"{sk}_rank_counts": sampled["rank_counts"],
        }
        print(
            f"    full HR@10 {r[f'hr@{K}']:.4f} NDCG@10 {r[f'ndcg@{K}']:.4f} | sampled "
            f"HR@10 {r[f'{sk}_hr@{K}']:.4f} NDCG@10 {r[f'{sk}_ndcg@{K}']:.4f} | "
            f"fit {r['fit_seconds']:.1f}s {r['recommend_users_per_second']:,.0f} users/s "
            f"peak RSS {peak_rss_mb():.0f} MB ({elapsed:.1f}s)",
            flush=True,
        )
        save()
    report = save()
    print_table(rows, sk)
    print(f"wrote {out}")
    return report


def print_table(rows: dict[str, Any], sk: str) -> None:
    """Our rows, then the published ones."""
    cols = ("full_HR@10", "full_NDCG@10", f"{sk}_HR@10", f"{sk}_NDCG@10")
    print(f"\n{'model':<34}" + "".join(f"{c:>18}" for c in cols) + f"{'fit s':>9}")
    for name, row in rows.items():
        if "error" in row:
            print(f"{'shelfwise/' + name:<34}  ERROR {row['error']}")
            continue
        cells = "".join(f"{row[c]:>18.4f}" for c in cols)
        print(f"{'shelfwise/' + name:<34}{cells}{row['fit_seconds']:>9.1f}")
    for name, pub in PUBLISHED.items():
        full = pub["mode"] == "full"
        vals = [
            pub["HR@10"] if full else None,
            pub["NDCG@10"] if full else None,
            None if full else pub["HR@10"],
            None if full else pub["NDCG@10"],
        ]
        cells = "".join(f"{v:>18.4f}" if v is not None else f"{'-':>18}" for v in vals)
        print(f"{'published/' + name:<34}{cells}")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(available()))
    parser.add_argument("--negatives", type=int, default=99)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "beauty_loo.json"))
    parser.add_argument("--merge", action="store_true", help="keep other models' rows of --out")
    parser.add_argument(
        "--timings-from",
        type=Path,
        help="a report of a quieter run: its timings replace this run's where the metrics "
        "agree (`keep_timings`)",
    )
    parser.add_argument("--timings-tolerance", type=float, default=1e-9, help="with --timings-from")
    args = parser.parse_args()
    earlier = json.loads(args.timings_from.read_text()) if args.timings_from else None
    report = run(
        [m for m in args.models.split(",") if m], args.negatives, Path(args.out), args.merge
    )
    if earlier is not None:
        report = keep_timings(report, earlier, str(args.timings_from), args.timings_tolerance)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
