"""When may a pruner judge a SASRec trial? The learning curves of random configurations.

    python benchmarks/pruning_curves.py --from-compare benchmarks/results/FILE.json \
        [--out benchmarks/results/pruning_curves_sasrec_from_compare.json]

Reads the random-search studies of a SASRec TPE-vs-random comparison
(benchmarks/tuning_compare.py, which keeps every trial's validation NDCG@10 after each
epoch; random search runs without a pruner, so its curves are complete) and, for each
epoch k:

- Spearman's rank correlation between the value after epoch k and the trial's final value
  (how well epoch k ranks configurations);
- the median-pruning rule as Optuna applies it (from epoch `first` on, stop a trial whose
  best value so far is below the median of the finished trials' values at that epoch,
  once 3 trials have finished), replayed over 200 random orders of the trials: the share
  of epochs it saves, and how often it stops the best trial or one of the top 10%.

That is the evidence for the median pruner's warm-up (`shelfwise.tuning.factory.make_pruner`:
first prune at epoch 3). Writes the curves and the table to `--out` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any


def compare_trials(path: Path) -> tuple[list[dict[str, Any]], str]:
    """The complete random-search trials (with their curves) of a tuning_compare result."""
    runs = json.loads(path.read_text())["results"]["sasrec"]["runs"]["random"]
    trials, label = [], ""
    for run in runs.values():
        label = run.get("dataset", label)
        for t in run.get("trials", []):
            if t["state"] == "COMPLETE" and t["curve"]:
                trials.append({"params": t["params"], "final": t["value"], "curve": t["curve"]})
    if not trials:
        raise SystemExit(f"{path}: no random-search trial curves (re-run tuning_compare.py)")
    return trials, label


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def replay_median(
    trials: list[dict[str, Any]], first: int, orders: int = 200, startup: int = 3
) -> dict[str, float]:
    """Optuna's median rule (n_startup_trials=startup, n_warmup_steps=first, epochs counted
    from 1) replayed over random orders: share of epochs saved, and how often the best / a
    top-10% trial is stopped."""
    import numpy as np

    rng = np.random.default_rng(0)
    finals = np.array([t["final"] for t in trials])
    top = set(np.argsort(-finals)[: max(1, len(trials) // 10)].tolist())
    best = int(np.argmax(finals))
    saved, best_pruned, top_pruned = [], 0, 0
    for _ in range(orders):
        order = rng.permutation(len(trials))
        finished: list[list[float]] = []
        used = total = 0
        for i in order:
            curve = trials[i]["curve"]
            total += len(curve)
            stop = None
            if len(finished) >= startup:
                for step in range(first, len(curve) + 1):
                    others = [c[step - 1] for c in finished if len(c) >= step]
                    if others and max(curve[:step]) < float(np.median(others)):
                        stop = step
                        break
            if stop is None:
                finished.append(curve)
                used += len(curve)
            else:
                used += stop
                best_pruned += int(i == best)
                top_pruned += int(i in top)
        saved.append(1 - used / total)
    return {
        "first_prunable_epoch": first,
        "epochs_saved": float(np.mean(saved)),
        "best_pruned": best_pruned / orders,
        "top10_pruned_per_order": top_pruned / orders,
        "n_top10": len(top),
    }


def analyse(trials: list[dict[str, Any]], epochs: int) -> dict[str, Any]:
    """Rank correlations per epoch and the replayed median rule per warm-up."""
    finals = [t["final"] for t in trials]
    corr = {}
    for k in range(1, epochs + 1):
        pairs = [(t["curve"][k - 1], t["final"]) for t in trials if len(t["curve"]) >= k]
        if len(pairs) >= 5:
            corr[k] = {
                "spearman": spearman([a for a, _ in pairs], [b for _, b in pairs]),
                "n": len(pairs),
            }
    rules = [replay_median(trials, first) for first in range(1, 6)]
    return {
        "n_trials": len(trials),
        "final_median": statistics.median(finals),
        "final_max": max(finals),
        "spearman_by_epoch": corr,
        "median_rule": rules,
    }


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--from-compare",
        metavar="FILE",
        required=True,
        help="a tuning_compare.py result with SASRec (its random-search trials are read)",
    )
    parser.add_argument(
        "--out",
        default=str(Path(__file__).parent / "results" / "pruning_curves_sasrec_from_compare.json"),
    )
    args = parser.parse_args()
    start = time.time()
    trials, label = compare_trials(Path(args.from_compare))
    epochs = max(len(t["curve"]) for t in trials)
    result = analyse(trials, epochs)
    print(f"\n{label}: {result['n_trials']} trials, final value median "
          f"{result['final_median']:.4f}, max {result['final_max']:.4f}")  # fmt: skip
    print(f"{'epoch':>6}{'spearman':>10}{'n':>5}")
    for k, row in result["spearman_by_epoch"].items():
        print(f"{k:>6}{row['spearman']:>10.3f}{row['n']:>5}")
    head = ("prune from epoch", "epochs saved", "best stopped", "top-10% stopped")
    print(f"\n{head[0]:>17}{head[1]:>14}{head[2]:>14}{head[3]:>17}")
    for rule in result["median_rule"]:
        print(
            f"{rule['first_prunable_epoch']:>17}{rule['epochs_saved']:>14.1%}"
            f"{rule['best_pruned']:>14.1%}{rule['top10_pruned_per_order']:>12.2f} of "
            f"{rule['n_top10']}"
        )
    payload = {
        "benchmark": "pruning_curves",
        "model": "sasrec",
        "dataset": label,
        "metric": "validation ndcg@10",
        "analysis": result,
        "trials": trials,
        "seconds": round(time.time() - start, 1),
    }
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
