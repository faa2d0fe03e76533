"""TPE with pruning against random search under the same wall-clock budget.

    python benchmarks/tuning_compare.py [--models ease,als,itemknn]
        [--budget ease=60,als=120,itemknn=60] [--seeds 5]
        [--sasrec-budget 0] [--sasrec-users 4000] [--sasrec-seeds 1] [--out PATH]

MovieLens 100K, the Microsoft Recommenders protocol (per-user stratified 75/25 holdout, seed
42, binary feedback); tuning sees only a validation holdout carved from the training part
(`shelfwise.tuning.data`, always with seed 42, so every study scores on the same split),
never the test part. For each model and seed, two studies run for the same wall-clock
budget:

- `tpe+median`: multivariate TPE, median pruner (epochs are the steps of iterative models,
  here ALS and SASRec; EASE and item-kNN are fitted in one step, so pruning cannot act on
  them);
- `random`: random search, no pruning.

The two draw from independent sampler streams (`sampler_seed`; TPE starts with random
trials, which would otherwise replay the random search's first points). Neither study
starts from the default configuration (only the search strategy differs).

The two studies of a seed run at the same time, in two processes limited to one CPU thread
each (BLAS, OpenMP, torch and ALS's solver), so whatever else the machine is doing slows
both alike; a sequential A-then-B run on a shared machine compares the load, not the
strategies.

For each run we record the best validation NDCG@10 against elapsed time. The headline
number is the time each strategy needs to reach random search's final best (of the same
seed): the target is TPE+pruning in at most half of random search's time.

With `--sasrec-budget S` SASRec is compared the same way on Amazon Beauty (leave-last-out)
restricted to `--sasrec-users` users drawn at random (seed 0), with the epochs pinned
(`--sasrec-epochs`, default 10; early stopping and the pruner end trials sooner) so that a
CPU fits enough trials in the budget to compare the strategies.

Results go to benchmarks/results/tuning_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STRATEGIES = {"tpe+median": ("tpe", "median"), "random": ("random", "none")}
ONE_THREAD = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
# the models' own thread settings, pinned in every trial of both strategies
PINS: dict[str, dict[str, Any]] = {"als": {"num_threads": 1}, "sasrec": {"threads": 1}}
SPLIT_SEED = 42


def curve(study: Any, start: float) -> list[tuple[float, float]]:
    """(seconds since start, best value so far) at each completed trial, in time order."""
    from optuna.trial import TrialState

    points = []
    for t in study.trials:
        if t.state == TrialState.COMPLETE and t.datetime_complete is not None:
            points.append((t.datetime_complete.timestamp() - start, float(t.value or 0.0)))
    points.sort()
    out, best = [], float("-inf")
    for seconds, value in points:
        best = max(best, value)
        out.append((round(seconds, 2), best))
    return out


def epoch_values(trial: Any) -> list[float]:
    """A trial's reported validation values, in epoch (step) order."""
    return [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]


def time_to_reach(trace: list[tuple[float, float]], target: float) -> float | None:
    """First time the best-so-far is >= target (None if never)."""
    for seconds, best in trace:
        if best >= target - 1e-12:
            return seconds
    return None


def run_one(
    data: Any, model: str, strategy: str, seed: int, budget: float, label: str,
    pinned: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One study of `budget` seconds; its trace and counts."""
    import optuna

    from shelfwise.tuning.tuner import TuneSettings, tune

    sampler, pruner = STRATEGIES[strategy]
    # independent sampler streams on the same validation split: TPE's random start-up
    # trials would otherwise replay the random search of the same seed point for point
    stream = seed if strategy == "tpe+median" else 1000 + seed
    settings = TuneSettings(
        model=model, timeout=budget, sampler=sampler, pruner=pruner, seed=SPLIT_SEED,
        sampler_seed=stream, enqueue_defaults=False, pinned={model: {**PINS.get(model, {}),
        **(pinned or {})}},
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
        "n_repeats": sum("repeat_of" in t.user_attrs for t in tuned.study.trials),
        "trace": trace,
        # every trial's validation value after each epoch (pruning analyses replay these)
        "trials": [
            {
                "state": t.state.name,
                "value": t.value,
                "curve": epoch_values(t),
                "params": t.params,
            }
            for t in tuned.study.trials
        ],
    }


def load_data(dataset: str, users: int, epochs: int) -> tuple[Any, str, dict[str, Any]]:
    """(protocol data, label, pinned parameters) of a benchmark dataset."""
    from shelfwise.data.datasets import load_dataset
    from shelfwise.data.splits import sample_users
    from shelfwise.evaluation.protocols import prepare

    ds = load_dataset(dataset)
    if dataset == "movielens-100k":
        return prepare(ds.events, "holdout", seed=SPLIT_SEED, binary=True, items=ds.items), (
            dataset), {}  # fmt: skip
    events = sample_users(ds.events, users, seed=0)
    data = prepare(events, "loo", seed=SPLIT_SEED, binary=True, items=ds.items)
    label = f"{dataset} ({events['user_id'].nunique():,} users)"
    return data, label, {"epochs": epochs, "patience": 3}


def run_pair(model: str, seed: int, budget: float, args: argparse.Namespace) -> dict[str, Any]:
    """Both strategies of one seed at the same time, one process and one thread each."""
    dataset = "amazon-beauty" if model == "sasrec" else "movielens-100k"
    env = {**os.environ, **ONE_THREAD}
    with tempfile.TemporaryDirectory() as tmp:
        procs = {}
        for strategy in STRATEGIES:
            out = Path(tmp) / f"{strategy}.json"
            cmd = [
                sys.executable, __file__, "--worker", model, strategy, str(seed), str(budget),
                str(out), "--dataset", dataset, "--sasrec-users", str(args.sasrec_users),
                "--sasrec-epochs", str(args.sasrec_epochs),
            ]  # fmt: skip
            procs[strategy] = (subprocess.Popen(cmd, env=env), out)
        results = {}
        for strategy, (proc, out) in procs.items():
            if proc.wait() != 0:
                raise SystemExit(f"{model} {strategy} seed {seed}: worker failed")
            results[strategy] = json.loads(out.read_text())
    return results


def worker(argv: list[str]) -> None:
    """`--worker MODEL STRATEGY SEED BUDGET OUT`: one study, its result as JSON in OUT."""
    model, strategy, seed, budget, out = argv[:5]
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--sasrec-users", type=int, default=0)
    parser.add_argument("--sasrec-epochs", type=int, default=10)
    opts = parser.parse_args(argv[5:])
    import optuna
    import torch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data, label, pinned = load_data(opts.dataset, opts.sasrec_users, opts.sasrec_epochs)
    result = run_one(data, model, strategy, int(seed), float(budget), label, pinned)
    result["dataset"] = label
    Path(out).write_text(json.dumps(result))


def compare(
    model: str, seeds: list[int], budget: float, args: argparse.Namespace
) -> dict[str, Any]:
    """Both strategies for every seed, and the time-to-target summary."""
    runs: dict[str, dict[str, Any]] = {s: {} for s in STRATEGIES}
    for seed in seeds:
        pair = run_pair(model, seed, budget, args)
        for strategy, result in pair.items():
            runs[strategy][str(seed)] = result
    return {
        "budget_seconds": budget,
        "seeds": seeds,
        "runs": runs,
        "summary": summarize(runs, seeds, args.tolerance),
    }


def summarize(
    runs: dict[str, dict[str, Any]], seeds: list[int], tolerance: float
) -> dict[str, Any]:
    """Per seed: the time each strategy takes to reach random search's final best, exactly
    and within `tolerance`; the median TPE/random time ratio (a seed where TPE never gets
    there counts as an infinite ratio, so failures are not dropped from the median)."""
    per_seed: dict[str, Any] = {}
    ratios: dict[str, list[float]] = {"exact": [], "tolerance": []}
    for seed in seeds:
        rnd, tpe = runs["random"][str(seed)], runs["tpe+median"][str(seed)]
        row: dict[str, Any] = {"random_final_best": rnd["best"], "tpe_final_best": tpe["best"]}
        for kind, target in (("exact", rnd["best"]), ("tolerance", rnd["best"] - tolerance)):
            t_random = time_to_reach(rnd["trace"], target)
            t_tpe = time_to_reach(tpe["trace"], target)
            ratio = (t_tpe / max(t_random, 1e-9)) if t_tpe is not None and t_random else None
            ratios[kind].append(ratio if ratio is not None else float("inf"))
            suffix = "" if kind == "exact" else "_within_tolerance"
            row[f"random_seconds_to_target{suffix}"] = t_random
            row[f"tpe_seconds_to_target{suffix}"] = t_tpe
            row[f"tpe_over_random_time{suffix}"] = ratio
        per_seed[str(seed)] = row
    summary: dict[str, Any] = {"per_seed": per_seed, "tolerance": tolerance}
    for kind, values in ratios.items():
        suffix = "" if kind == "exact" else "_within_tolerance"
        median = statistics.median(values) if values else None
        summary[f"median_time_ratio{suffix}"] = median if median != float("inf") else None
        reached = sum(1 for v in values if v != float("inf"))
        summary[f"tpe_reached_target{suffix}"] = f"{reached}/{len(seeds)}"
        summary[f"seeds_at_most_half_time{suffix}"] = (
            f"{sum(v <= 0.5 for v in values)}/{len(seeds)}"
        )
    summary["mean_best"] = {
        s: statistics.mean(runs[s][str(seed)]["best"] for seed in seeds) for s in STRATEGIES
    }
    return summary


def plot(results: dict[str, Any], path: Path) -> None:
    """Best validation nDCG@10 against seconds, one panel per model, every seed drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    colours = {"tpe+median": "tab:blue", "random": "tab:orange"}
    for ax, model in zip(axes[0], names, strict=True):
        res = results[model]
        for strategy, colour in colours.items():
            for n, (_seed, run) in enumerate(res["runs"][strategy].items()):
                if not run["trace"]:
                    continue
                xs = [t for t, _ in run["trace"]] + [res["budget_seconds"]]
                ys = [v for _, v in run["trace"]] + [run["trace"][-1][1]]
                ax.step(xs, ys, where="post", color=colour, alpha=0.75, lw=1.2,
                        label=strategy if n == 0 else None)  # fmt: skip
        finals = [r["best"] for s in colours for r in res["runs"][s].values()]
        low = min(min(v for _, v in r["trace"][-1:]) for s in colours
                  for r in res["runs"][s].values() if r["trace"])  # fmt: skip
        span = max(finals) - low + 1e-4
        ax.set_ylim(low - 0.6 * span, max(finals) + 0.15 * span)
        ax.set_title(f"{model} ({len(res['seeds'])} seeds, {res['budget_seconds']:.0f} s)")
        ax.set_xlabel("seconds")
        ax.set_ylabel("best validation nDCG@10")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def print_summary(results: dict[str, Any]) -> None:
    """One table row per (model, seed) and the median ratios per model."""
    print(
        f"\n{'model':<9}{'seed':>5}{'random best':>13}{'TPE best':>10}{'t random s':>11}"
        f"{'t TPE s':>8}{'ratio':>7}{'ratio (tol)':>13}"
    )

    def fmt(value: float | None, spec: str, none: str) -> str:
        return format(value, spec) if value is not None else none

    for model, res in results.items():
        for seed, row in res["summary"]["per_seed"].items():
            print(
                f"{model:<9}{seed:>5}{row['random_final_best']:>13.4f}"
                f"{row['tpe_final_best']:>10.4f}"
                f"{fmt(row['random_seconds_to_target'], '.0f', '-'):>11}"
                f"{fmt(row['tpe_seconds_to_target'], '.0f', 'never'):>8}"
                f"{fmt(row['tpe_over_random_time'], '.2f', '-'):>7}"
                f"{fmt(row['tpe_over_random_time_within_tolerance'], '.2f', '-'):>13}"
            )
        summ = res["summary"]
        print(
            f"{model:<9} median TPE/random time {fmt(summ['median_time_ratio'], '.2f', 'inf')} "
            f"(<= 0.5 in {summ['seeds_at_most_half_time']} seeds); within "
            f"{summ['tolerance']}: {fmt(summ['median_time_ratio_within_tolerance'], '.2f', 'inf')}"
            f" (<= 0.5 in {summ['seeds_at_most_half_time_within_tolerance']} seeds)"
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
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ease,als,itemknn")
    parser.add_argument(
        "--budget",
        default="ease=60,als=120,itemknn=60",
        help="seconds per study: one number, or MODEL=SECONDS pairs",
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sasrec-budget", type=float, default=0.0)
    parser.add_argument("--sasrec-users", type=int, default=4000)
    parser.add_argument("--sasrec-epochs", type=int, default=10)
    parser.add_argument("--sasrec-seeds", type=int, default=1)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run from this one (to add seeds)"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.0005,
        help="also time TPE to random's final best minus this (validation nDCG@10 of EASE "
        "ripples by about +-0.0003 along its optimal plateau, so the exact best is luck)",
    )
    parser.add_argument(
        "--resummarize",
        metavar="JSON",
        help="recompute the summaries of an earlier results file (e.g. with another "
        "--tolerance) without running anything",
    )
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "tuning_compare.json")
    )
    args = parser.parse_args()
    if args.resummarize:
        path = Path(args.resummarize)
        report = json.loads(path.read_text())
        for res in report["results"].values():
            res["summary"] = summarize(res["runs"], res["seeds"], args.tolerance)
        print_summary(report["results"])
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"rewrote {path}")
        plot(report["results"], path.with_suffix(".png"))
        return
    t0 = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results: dict[str, Any] = {}
    budgets = parse_budgets(args.budget)
    for model in [m for m in args.models.split(",") if m]:
        budget = budgets.get(model, budgets.get("*", 60.0))
        print(f"movielens-100k {model}: {budget:.0f}s per study, seeds {seeds}", flush=True)
        results[model] = compare(model, seeds, budget, args)
    if args.sasrec_budget > 0:
        print(
            f"amazon-beauty sasrec ({args.sasrec_users} users, {args.sasrec_epochs} epochs at "
            f"most): {args.sasrec_budget:.0f}s per study",
            flush=True,
        )
        sasrec_seeds = list(range(args.first_seed, args.first_seed + args.sasrec_seeds))
        results["sasrec"] = compare("sasrec", sasrec_seeds, args.sasrec_budget, args)
    print_summary(results)
    report = {
        "benchmark": "TPE + median pruning vs random search, same wall-clock budget, run "
        "side by side (one process and one CPU thread each)",
        "dataset": "movielens-100k, Recommenders holdout (75/25, seed 42); validation carved "
        "from train (seed 42, the same for every study). sasrec: amazon-beauty leave-last-"
        f"out, {args.sasrec_users} random users, at most {args.sasrec_epochs} epochs",
        "metric": "ndcg@10 on validation",
        "strategies": {k: {"sampler": v[0], "pruner": v[1]} for k, v in STRATEGIES.items()},
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out} ({report['seconds']}s)")
    plot(results, out.with_suffix(".png"))


if __name__ == "__main__":
    main()
