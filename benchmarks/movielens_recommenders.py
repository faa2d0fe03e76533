"""Every registered model on the Microsoft Recommenders MovieLens-100K benchmark protocol.

    python benchmarks/movielens_recommenders.py [--models a,b] [--out PATH]

Protocol (as `examples/06_benchmarks/movielens.ipynb` of recommenders-team/recommenders):
per-user stratified random split, 75% train / 25% test, seed 42 (`random_holdout`, a
faithful copy of `python_stratified_split`); every rating is a positive (implicit binary
feedback, all test ratings relevant); top-10 over the full catalogue with training items
removed; MAP, nDCG@10, Precision@10 and Recall@10 averaged over the test users.

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
from shelfwise.evaluation.runner import evaluate_model
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


def run(models: list[str], out: Path) -> dict[str, Any]:
    """Evaluate `models` and write the JSON report."""
    t0 = time.perf_counter()
    ds = load_dataset("movielens-100k")
    data = prepare(ds.events, "holdout", seed=SEED, binary=True, items=ds.items)
    m = data.summary["matrix"]
    print(
        f"movielens-100k holdout: {m['users']} users x {m['items']} items, "
        f"train {m['train_nnz']:,} / test {m['test_nnz']:,} ({time.perf_counter() - t0:.1f}s)",
        flush=True,
    )
    rows: dict[str, Any] = {}
    for i, name in enumerate(models, 1):
        start = time.perf_counter()
        print(f"[{i}/{len(models)}] {name} ...", flush=True)
        result = evaluate_model(name, data, k=K)
        elapsed = time.perf_counter() - start
        if result.error:
            rows[name] = {"error": result.error, "elapsed_seconds": elapsed}
            print(f"    ERROR {result.error} ({elapsed:.1f}s)", flush=True)
            continue
        r = result.metrics
        rows[name] = {
            "MAP": r[f"map_nrel@{K}"],
            "nDCG@k": r[f"ndcg@{K}"],
            "Precision@k": r[f"precision@{K}"],
            "Recall@k": r[f"recall@{K}"],
            "map@k_min_k_rel": r[f"map@{K}"],
            "hr@k": r[f"hr@{K}"],
            "mrr@k": r[f"mrr@{K}"],
            "coverage": r["coverage"],
            "fit_seconds": r["fit_seconds"],
            "recommend_users_per_second": r["recommend_users_per_second"],
            "peak_rss_mb": peak_rss_mb(),
            "elapsed_seconds": elapsed,
        }
        print(
            f"    MAP {r[f'map_nrel@{K}']:.6f}  nDCG@10 {r[f'ndcg@{K}']:.6f}  "
            f"P@10 {r[f'precision@{K}']:.6f}  R@10 {r[f'recall@{K}']:.6f}  "
            f"fit {r['fit_seconds']:.2f}s  {r['recommend_users_per_second']:,.0f} users/s  "
            f"peak RSS {peak_rss_mb():.0f} MB ({elapsed:.1f}s)",
            flush=True,
        )
    report = {
        "benchmark": "movielens-100k, Microsoft Recommenders protocol",
        "protocol": {
            "split": "random_holdout (python_stratified_split), test_ratio=0.25",
            "seed": SEED,
            "k": K,
            "feedback": "implicit binary: every rating is a positive",
            "remove_seen": True,
            "split_summary": data.summary,
        },
        "published_source": SOURCE,
        "published": {
            algo: dict(zip(("MAP", "nDCG@k", "Precision@k", "Recall@k"), v, strict=True))
            for algo, v in PUBLISHED.items()
        },
        "results": rows,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
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
        cells = "".join(f"{row[c]:>13.6f}" for c in cols)
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
    args = parser.parse_args()
    run([m for m in args.models.split(",") if m], Path(args.out))


if __name__ == "__main__":
    main()
