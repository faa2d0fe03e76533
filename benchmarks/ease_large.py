"""EASE on a 23,715-item catalogue end to end on one machine: fit, score, peak memory.

    python benchmarks/ease_large.py [--items 23715] [--catalogue 40000] [--users 50000]
        [--days 30] [--seed 7] [--l2 500] [--out benchmarks/results/ease_large.json]

No data set at hand has 23,715 items (MovieLens 100K 1,682, MovieLens 1M 3,706, Amazon
Beauty 12,101), so the interactions come from the demo generator
(`shelfwise.data.demo`): a `--catalogue`-item store with `--users` shoppers over `--days`
days, its events restricted to the `--items` most-interacted items (ties by item id), so
the evaluated matrix is exactly `--items` wide. Then the `shelfwise evaluate` path on it:
`prepare` (per-user random 75/25 holdout, seed 42, binary) and `evaluate` of `ease` (and
`popularity` as the floor), top 10 over the full catalogue with training items removed.

Memory: the process's peak resident set (`VmHWM` of /proc/self/status, reset through
`/proc/self/clear_refs` before each stage, so each stage's own peak; `ru_maxrss` for the
whole run), beside `ease_memory_bytes` (the estimate the refusal message quotes). Time:
wall seconds per stage and the load average around them (the machine is shared).

Writes benchmarks/results/ease_large.json; `--repeat-of` that file (with the same
settings) appends another run's seconds and peaks to it, for the spread of the timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.data.demo import DemoConfig, generate
from shelfwise.evaluation.protocols import prepare
from shelfwise.evaluation.runner import evaluate
from shelfwise.evaluation.stats import per_unit_intervals
from shelfwise.recommenders.ease import ease_memory_bytes

K = 10
RESULTS = Path(__file__).parent / "results" / "ease_large.json"
MiB = 2**20


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0); False if refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mib() -> dict[str, float | None]:
    """Current and peak (since the last reset) resident set in MiB."""
    now, peak = _status_kb("VmRSS"), _status_kb("VmHWM")
    return {
        "rss_mib": None if now is None else round(now / 1024, 1),
        "peak_rss_mib": None if peak is None else round(peak / 1024, 1),
    }


def restrict(events: Any, n_items: int) -> Any:
    """The events of the `n_items` items with the most interaction rows (ties by id)."""
    rows = events.dropna(subset=["user_id", "item_id"])
    counts = rows["item_id"].value_counts()
    order = counts.rename_axis("item_id").reset_index(name="n")
    order = order.sort_values(["n", "item_id"], ascending=[False, True], kind="stable")
    if len(order) < n_items:
        raise SystemExit(
            f"only {len(order):,} items have interactions; raise --catalogue, --users or --days"
        )
    keep = set(order["item_id"].iloc[:n_items])
    return rows[rows["item_id"].isin(keep)].reset_index(drop=True)


def stage(name: str, log: dict[str, Any]) -> float:
    """Start a stage: reset the peak mark, print, return the start time."""
    reset_peak()
    log[name] = {
        "load_avg_1m_before": round(os.getloadavg()[0], 2),
        "rss_mib_before": rss_mib()["rss_mib"],
    }
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    return time.perf_counter()


def done(name: str, t0: float, log: dict[str, Any]) -> None:
    """End a stage: seconds, memory, load."""
    log[name].update(
        seconds=round(time.perf_counter() - t0, 1),
        load_avg_1m_after=round(os.getloadavg()[0], 2),
        **rss_mib(),
    )
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {log[name]}", flush=True)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=23_715)
    parser.add_argument("--catalogue", type=int, default=40_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--l2", type=float, default=500.0)
    parser.add_argument("--models", default="ease,popularity")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--repeat-of",
        type=Path,
        default=None,
        help="a report of the same settings: append this run's seconds and peaks to its "
        "results' `repeats` (the spread of the timings) instead of writing --out",
    )
    args = parser.parse_args()
    stages: dict[str, Any] = {}
    peak, stored = ease_memory_bytes(args.items)
    print(
        f"ease at {args.items:,} items: estimate {peak / 2**30:.2f} GiB while fitting, "
        f"{stored / 2**30:.2f} GiB kept",
        flush=True,
    )
    t0 = stage("generate", stages)
    cfg = DemoConfig(seed=args.seed, n_items=args.catalogue, n_users=args.users, days=args.days)
    store = generate(cfg)
    events = restrict(store.events, args.items)
    del store
    done("generate", t0, stages)

    t0 = stage("prepare", stages)
    data = prepare(events, "holdout", seed=42, binary=True)
    del events
    done("prepare", t0, stages)
    matrix = data.summary["matrix"]
    print(f"matrix: {matrix}", flush=True)

    results: dict[str, Any] = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        t0 = stage(name, stages)
        params = {"ease": {"l2": args.l2}}
        run = evaluate(data, [name], k=K, params=params, progress=print)[name]
        done(name, t0, stages)
        if run.error:
            results[name] = {"error": run.error, **stages[name]}
            continue
        metrics = {
            key: float(v)
            for key, v in run.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        results[name] = {
            "metrics": metrics,
            "ci95": per_unit_intervals(run.per_user),
            "fit_seconds": round(metrics["fit_seconds"], 1),
            "stage": stages[name],
        }
    report = {
        "benchmark": "ease at a 23,715-item catalogue: fit + evaluate on one machine",
        "command": " ".join(
            ["python benchmarks/ease_large.py"]
            + [
                f"--{k.replace('_', '-')} {v}"
                for k, v in vars(args).items()
                if k not in ("out", "repeat_of") and v != parser.get_default(k)
            ]
        ),
        "data": {
            "source": f"demo generator: {args.catalogue:,} items, {args.users:,} shoppers, "
            f"{args.days} days, seed {args.seed}; events of the {args.items:,} "
            "most-interacted items",
            **matrix,
            "density": round(
                (matrix["train_nnz"] + matrix["test_nnz"]) / (matrix["users"] * matrix["items"]),
                6,
            ),
        },
        "protocol": "holdout (per-user random 75/25, seed 42), binary, k=10, training items "
        "removed; intervals: 95% t interval of the mean over test users",
        "ease_memory_estimate_gib": {
            "fitting": round(peak / 2**30, 3),
            "stored": round(stored / 2**30, 3),
        },
        "results": results,
        "stages": stages,
        # the stages' peaks: resetting the kernel's mark (clear_refs) resets ru_maxrss too
        "peak_rss_mib_whole_run": max(
            [st["peak_rss_mib"] or 0.0 for st in stages.values()]
            + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]
        ),
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "note": "shared 2-core machine, run under nice -n 19",
        },
    }
    if args.repeat_of is not None:
        base = json.loads(args.repeat_of.read_text())
        for name, row in results.items():
            if "error" not in row and name in base["results"]:
                base["results"][name].setdefault("repeats", []).append(
                    {"fit_seconds": row["fit_seconds"], "stage": row["stage"]}
                )
        args.repeat_of.write_text(json.dumps(base, indent=2) + "\n")
        print(f"appended to {args.repeat_of}", flush=True)
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
