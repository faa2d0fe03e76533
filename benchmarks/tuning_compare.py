"""TPE with pruning against random search under the same wall-clock budget.

    python benchmarks/tuning_compare.py [--models ease,als,itemknn]
        [--budget ease=30,als=80,itemknn=30] [--seeds 3]
        [--sasrec-budget 0] [--out PATH]

MovieLens 100K, the Microsoft Recommenders protocol (per-user stratified 75/25 holdout, seed
42, binary feedback); tuning sees only a validation holdout carved from the training part
(`shelfwise.tuning.data`), never the test part. For each model and seed, two studies run
for the same wall-clock budget on the same validation split:

- `tpe+median`: multivariate TPE, median pruner (epochs are the steps of iterative models,
  here ALS; EASE and item-kNN are fitted in one step, so pruning cannot act on them);
- `random`: random search, no pruning.

The two draw from independent random streams (TPE starts with 5 random trials; with the
same seed they would replay the random search's first points).

Neither study starts from the default configuration (only the search strategy differs).
For each run we record the best validation NDCG@10 against elapsed time. The headline
number is the time each strategy needs to reach random search's final best (of the same
seed): the target is TPE+pruning in at most half of random search's time.

With `--sasrec-budget S` (and `shelfwise.recommenders.sasrec` present) SASRec is compared
the same way on Amazon Beauty (leave-last-out), one seed, S seconds per strategy.

Results go to benchmarks/results/tuning_compare.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import optuna
import torch

from shelfwise.data.datasets import load_dataset
from shelfwise.evaluation.protocols import ProtocolData, prepare
from shelfwise.tuning.tuner import TuneSettings, tune

STRATEGIES = {"tpe+median": ("tpe", "median"), "random": ("random", "none")}


def curve(study: optuna.Study, start: float) -> list[tuple[float, float]]:
    """(seconds since start, best value so far) at each completed trial, in time order."""
    points = []
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE and t.datetime_complete is not None:
            points.append((t.datetime_complete.timestamp() - start, float(t.value or 0.0)))
    points.sort()
    out, best = [], float("-inf")
    for seconds, value in points:
        best = max(best, value)
        out.append((round(seconds, 2), best))
    return out


def time_to_reach(trace: list[tuple[float, float]], target: float) -> float | None:
    """First time the best-so-far is >= target (None if never)."""
    for seconds, best in trace:
        if best >= target - 1e-12:
            return seconds
    return None


def run_one(
    data: ProtocolData, model: str, strategy: str, seed: int, budget: float, label: str
) -> dict[str, Any]:
    """One study of `budget` seconds; its trace and counts."""
    sampler, pruner = STRATEGIES[strategy]
    # independent random streams: TPE's random start-up trials would otherwise replay the
    # random search of the same seed point for point
    stream = seed if strategy == "tpe+median" else 1000 + seed
    settings = TuneSettings(
        model=model, timeout=budget, sampler=sampler, pruner=pruner, seed=stream,
        enqueue_defaults=False,
    )  # fmt: skip
    start = time.time()
    tuned = tune(
        data, settings, optuna.storages.InMemoryStorage(), f"{model}-{strategy}-{seed}",
        dataset=label, final=False, progress=lambda _msg: None,
    )  # fmt: skip
    trace = curve(tuned.study, start)
    r = tuned.result
    print(
        f"  {model:<8} {strategy:<11} seed {seed}: best {r.best_value:.4f} after "
        f"{r.n_trials} trials ({r.n_pruned} pruned) in {time.time() - start:.0f}s",
        flush=True,
    )
    return {
        "best": r.best_value,
        "best_params": r.best_params,
        "n_trials": r.n_trials,
        "n_pruned": r.n_pruned,
        "n_failed": r.n_failed,
        "trace": trace,
    }


def compare(
    data: ProtocolData, model: str, seeds: list[int], budget: float, label: str
) -> dict[str, Any]:
    """Both strategies for every seed, and the time-to-target summary."""
    runs: dict[str, dict[str, Any]] = {s: {} for s in STRATEGIES}
    for seed in seeds:
        for strategy in STRATEGIES:
            runs[strategy][str(seed)] = run_one(data, model, strategy, seed, budget, label)
    summary: dict[str, Any] = {"per_seed": {}}
    ratios = []
    for seed in seeds:
        target = runs["random"][str(seed)]["best"]
        t_random = time_to_reach(runs["random"][str(seed)]["trace"], target)
        t_tpe = time_to_reach(runs["tpe+median"][str(seed)]["trace"], target)
        ratio = (t_tpe / t_random) if (t_tpe is not None and t_random) else None
        if ratio is not None:
            ratios.append(ratio)
        summary["per_seed"][str(seed)] = {
            "random_final_best": target,
            "tpe_final_best": runs["tpe+median"][str(seed)]["best"],
            "random_seconds_to_target": t_random,
            "tpe_seconds_to_target": t_tpe,
            "tpe_over_random_time": ratio,
        }
    reached = sum(
        1 for s in seeds if summary["per_seed"][str(s)]["tpe_seconds_to_target"] is not None
    )
    summary["tpe_reached_target"] = f"{reached}/{len(seeds)}"
    summary["median_time_ratio"] = statistics.median(ratios) if ratios else None
    summary["mean_best"] = {
        s: statistics.mean(runs[s][str(seed)]["best"] for seed in seeds) for s in STRATEGIES
    }
    return {"budget_seconds": budget, "seeds": seeds, "runs": runs, "summary": summary}


def print_summary(results: dict[str, Any]) -> None:
    """One table row per (model, seed) and the median ratio per model."""
    print(
        f"\n{'model':<9}{'seed':>5}{'random best':>13}{'TPE best':>10}{'t random':>10}"
        f"{'t TPE':>8}{'ratio':>7}"
    )
    for model, res in results.items():
        for seed, row in res["summary"]["per_seed"].items():
            t_r, t_t = row["random_seconds_to_target"], row["tpe_seconds_to_target"]
            ratio = row["tpe_over_random_time"]
            print(
                f"{model:<9}{seed:>5}{row['random_final_best']:>13.4f}"
                f"{row['tpe_final_best']:>10.4f}{(t_r or 0):>9.0f}s"
                f"{(f'{t_t:.0f}s' if t_t is not None else 'never'):>8}"
                f"{(f'{ratio:.2f}' if ratio is not None else '-'):>7}"
            )
        med = res["summary"]["median_time_ratio"]
        print(
            f"{model:<9} median TPE/random time {med if med is None else round(med, 2)}, "
            f"TPE reached random's best in {res['summary']['tpe_reached_target']} seeds"
        )


def parse_budgets(text: str) -> dict[str, float]:
    """`"45"` -> {"*": 45}; `"ease=30,als=80"` -> {"ease": 30, "als": 80}."""
    if "=" not in text:
        return {"*": float(text)}
    out = {}
    for pair in text.split(","):
        name, _, seconds = pair.partition("=")
        out[name.strip()] = float(seconds)
    return out


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ease,als,itemknn")
    parser.add_argument(
        "--budget",
        default="ease=30,als=80,itemknn=30",
        help="seconds per study: one number, or MODEL=SECONDS pairs",
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sasrec-budget", type=float, default=0.0)
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "tuning_compare.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    ds = load_dataset("movielens-100k")
    data = prepare(ds.events, "holdout", seed=42, binary=True, items=ds.items)
    seeds = list(range(args.seeds))
    results: dict[str, Any] = {}
    budgets = parse_budgets(args.budget)
    for model in [m for m in args.models.split(",") if m]:
        budget = budgets.get(model, budgets.get("*", 30.0))
        print(f"movielens-100k {model}: {budget:.0f}s per study, seeds {seeds}", flush=True)
        results[model] = compare(data, model, seeds, budget, "movielens-100k")
    if args.sasrec_budget > 0:
        if importlib.util.find_spec("shelfwise.recommenders.sasrec") is None:
            print("shelfwise.recommenders.sasrec is not available; SASRec skipped")
        else:
            beauty = load_dataset("amazon-beauty")
            bdata = prepare(beauty.events, "loo", seed=42, binary=True, items=beauty.items)
            print(f"amazon-beauty sasrec: {args.sasrec_budget:.0f}s per study", flush=True)
            results["sasrec (beauty)"] = compare(
                bdata, "sasrec", [0], args.sasrec_budget, "amazon-beauty"
            )
    print_summary(results)
    report = {
        "benchmark": "TPE + median pruning vs random search, same wall-clock budget",
        "dataset": "movielens-100k, Recommenders holdout (75/25, seed 42); validation carved "
        "from train",
        "metric": "ndcg@10 on validation",
        "strategies": {k: {"sampler": v[0], "pruner": v[1]} for k, v in STRATEGIES.items()},
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['seconds']}s)")


if __name__ == "__main__":
    main()
