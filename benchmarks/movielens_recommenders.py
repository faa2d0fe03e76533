"""Every registered model on the Microsoft Recommenders MovieLens-100K benchmark protocol.

    python benchmarks/movielens_recommenders.py [--models a,b] [--seeds 3]
        [--split per-item|per-user] [--out PATH]

Protocol (as `examples/06_benchmarks/movielens.ipynb` of recommenders-team/recommenders):
their stratified random split, 75% train / 25% test, stratified by item as the notebook
calls `python_stratified_split(..., filter_by="item")` (`--split per-item`, the default;
`random_holdout(by="item")` follows the same rounding rule; `--split per-user` is their
`filter_by="user"`); every rating is a positive (implicit binary feedback, all test ratings
relevant); top-10 over the full catalogue with training items removed; MAP, nDCG@10,
Precision@10 and Recall@10 averaged over the test users.

Seeds: the split is drawn with seeds 42, 43, ... (`--seeds`, default 3); each metric is the
mean over seeds with its 95% Student t interval (`shelfwise.evaluation.stats`), and the
JSON holds the per-seed values and paired tests (per-user nDCG@10 / recall@10, pooled over
seeds) between every two models. The published rows are single runs: no interval.

MAP here is the definition used for the published table: Recommenders' `map_at_k` at the
time divided each user's sum of precision@i at hits by the number of relevant items
(now their `map`), not by min(k, |rel|) (now their `map_at_k`). Both are recorded.

Our rows are printed beside the published rows; results go to
benchmarks/results/movielens100k_recommenders.json. A model that raises is an error row.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path
from typing import Any

from shelfwise.data.datasets import load_dataset
from shelfwise.evaluation.protocols import prepare
from shelfwise.evaluation.runner import ModelRun, evaluate_model
from shelfwise.evaluation.stats import seed_summary
from shelfwise.recommenders import available

K = 10
SEED = 42
SOURCE = {
    "repository": "recommenders-team/recommenders",
    "path": "README.md (section 'Algorithm Comparison'); protocol in "
    "examples/06_benchmarks/movielens.ipynb and examples/06_benchmarks/README.md",
    "commit": "005dcd06bd32ab996c7e4c9892ebbfcab80adb1a",
    "note": "MovieLens 100k, stratified 75/25 split, k=10, 15 epochs for iterative models; "
    "MAP = Recommenders' map_at_k of that time (divides by the number of relevant items); "
    "metric code: recommenders/evaluation/python_evaluation.py "
    "(commit 20b0b53f74ca1e4d32d77e681bc3b44cc3e79794 for the old map_at_k)",
}
# algo: (MAP, nDCG@k, Precision@k, Recall@k), copied from the README table at SOURCE.
PUBLISHED: dict[str, tuple[float, float, float, float]] = {
    "ALS": (0.004732, 0.044239, 0.048462, 0.017796),
    "BiVAE": (0.146126, 0.475077, 0.411771, 0.219145),
    "BPR": (0.132478, 0.441997, 0.388229, 0.212522),
    "FastAI": (0.025503, 0.147866, 0.130329, 0.053824),
    "LightGCN": (0.088526, 0.419846, 0.379626, 0.144336),
    "NCF": (0.107720, 0.396118, 0.347296, 0.180775),
    "SAR": (0.110591, 0.382461, 0.330753, 0.176385),
    "SVD": (0.012873, 0.095930, 0.091198, 0.032783),
}


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


COLUMNS = {
    "MAP": f"map_nrel@{K}",
    "nDCG@k": f"ndcg@{K}",
    "Precision@k": f"precision@{K}",
    "Recall@k": f"recall@{K}",
    "map@k_min_k_rel": f"map@{K}",
    "hr@k": f"hr@{K}",
    "mrr@k": f"mrr@{K}",
    "coverage": "coverage",
    "novelty": "novelty",
    "gini": "gini",
    "long_tail_share": "long_tail_share",
    "ild": "ild",
    "calibration_kl": "calibration_kl",
    "fit_seconds": "fit_seconds",
    "recommend_users_per_second": "recommend_users_per_second",
}


def run(models: list[str], out: Path, seeds: int = 3, split: str = "per-item") -> dict[str, Any]:
    """Evaluate `models` over `seeds` split seeds and write the JSON report."""
    t0 = time.perf_counter()
    ds = load_dataset("movielens-100k")
    runs_by_seed: list[dict[str, ModelRun]] = []
    elapsed: dict[str, float] = {}
    summaries = []
    total = seeds * len(models)
    done = 0
    for s_i in range(seeds):
        seed = SEED + s_i
        data = prepare(ds.events, "holdout", seed=seed, binary=True, items=ds.items, split=split)
        summaries.append(data.summary)
        m = data.summary["matrix"]
        print(
            f"seed {seed}: movielens-100k holdout {split}: {m['users']} users x {m['items']} "
            f"items, train {m['train_nnz']:,} / test {m['test_nnz']:,}",
            flush=True,
        )
        runs: dict[str, ModelRun] = {}
        for name in models:
            start = time.perf_counter()
            result = evaluate_model(name, data, k=K)
            took = time.perf_counter() - start
            elapsed[name] = elapsed.get(name, 0.0) + took
            done += 1
            spent = time.perf_counter() - t0
            eta = spent / done * (total - done)
            if result.error:
                print(f"  [{done}/{total}] {name}: ERROR {result.error}", flush=True)
            else:
                r = result.metrics
                print(
                    f"  [{done}/{total}] {name}: nDCG@10 {r[f'ndcg@{K}']:.4f} "
                    f"P@10 {r[f'precision@{K}']:.4f} fit {r['fit_seconds']:.2f}s "
                    f"({took:.1f}s, ETA {eta:.0f}s)",
                    flush=True,
                )
            runs[name] = result
        runs_by_seed.append(runs)
    merged, intervals, comparisons = seed_summary(runs_by_seed, K)
    rows: dict[str, Any] = {}
    for name in models:
        if merged[name].error is not None:
            rows[name] = {"error": merged[name].error, "elapsed_seconds": elapsed[name]}
            continue
        r = merged[name].metrics
        iv = intervals[name]
        rows[name] = {col: r[key] for col, key in COLUMNS.items() if key in r}
        rows[name]["ci95"] = {col: iv[key]["ci95"] for col, key in COLUMNS.items() if key in iv}
        rows[name]["per_seed"] = {
            col: iv[key]["values"] for col, key in COLUMNS.items() if key in iv
        }
        rows[name]["peak_rss_mb"] = peak_rss_mb()
        rows[name]["elapsed_seconds"] = elapsed[name]
    report = {
        "benchmark": "movielens-100k, Microsoft Recommenders protocol",
        "protocol": {
            "split": f"random_holdout {split} (python_stratified_split filter_by="
            f"{'item' if split == 'per-item' else 'user'}), test_ratio=0.25",
            "seeds": [SEED + i for i in range(seeds)],
            "interval": "mean over seeds, 95% Student t interval (t(0.975, n-1) s / sqrt(n))",
            "k": K,
            "feedback": "implicit binary: every rating is a positive",
            "remove_seen": True,
            "split_summary": summaries[0],
        },
        "published_source": SOURCE,
        "published": {
            algo: dict(zip(("MAP", "nDCG@k", "Precision@k", "Recall@k"), v, strict=True))
            for algo, v in PUBLISHED.items()
        },
        "results": rows,
        "comparisons": comparisons,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "seconds": time.perf_counter() - t0,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(rows)
    print(f"wrote {out}")
    return report


def print_table(rows: dict[str, Any]) -> None:
    """Our rows, then the published ones, in the published table's columns."""
    cols = ("MAP", "nDCG@k", "Precision@k", "Recall@k")
    print(f"\n{'algorithm':<22}" + "".join(f"{c:>13}" for c in cols) + f"{'fit s':>9}")
    for name, row in rows.items():
        if "error" in row:
            print(f"{'shelfwise/' + name:<22}  ERROR {row['error']}")
            continue
        ci = row.get("ci95", {})
        cells = "".join(
            f"{row[c]:>8.4f}±{(ci[c][1] - ci[c][0]) / 2:.4f}" if c in ci else f"{row[c]:>13.6f}"
            for c in cols
        )
        print(f"{'shelfwise/' + name:<22}{cells}{row['fit_seconds']:>9.2f}")
    for algo, values in PUBLISHED.items():
        print(f"{'published/' + algo:<22}" + "".join(f"{v:>13.6f}" for v in values))


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(available()))
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "movielens100k_recommenders.json")
    )
    parser.add_argument("--seeds", type=int, default=3, help="split seeds 42, 43, ...")
    parser.add_argument("--split", choices=("per-item", "per-user"), default="per-item")
    args = parser.parse_args()
    run([m for m in args.models.split(",") if m], Path(args.out), args.seeds, args.split)


if __name__ == "__main__":
    main()
