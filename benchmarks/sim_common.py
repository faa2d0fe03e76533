"""Shared set-up of the simulator benchmarks (`simulate_*.py`): a world and fitted rankers.

The benchmarks folder is on sys.path when a benchmark runs, so `from sim_common import ...`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.data.demo import DemoConfig
from shelfwise.experiments.simulate.policies import RecommenderPolicy, fit_policy, history_matrix
from shelfwise.experiments.simulate.world import ShopperModel, World
from startup import machine  # the benchmarks folder is on sys.path

__all__ = ["Setup", "machine", "parse_world_arguments", "setup", "write_results"]


class Setup:
    """A world, its history matrix and the rankers the benchmarks compare."""

    def __init__(self, world: World, train: sp.csr_matrix, rankers: dict[str, Any], seconds: float):
        self.world, self.train, self.rankers, self.seconds = world, train, rankers, seconds

    def top(self, name: str, users: np.ndarray, k: int) -> np.ndarray:
        """A ranker's top k (seen items excluded) for `users`, from their generated history."""
        policy: RecommenderPolicy = self.rankers[name]
        rng = np.random.default_rng(0)
        return policy.slates(users, self.train[users], k, rng).ids


def setup(
    items: int, users: int, days: int, seed: int = 42, models: tuple[str, ...] = ("itemknn",)
) -> Setup:
    """The demo world of (items, users, days, seed) with `models` fitted on its history."""
    t0 = time.perf_counter()
    world = World.generate(DemoConfig(seed=seed, n_items=items, n_users=users, days=days),
                           ShopperModel())  # fmt: skip
    train = history_matrix(world)
    rankers = {m: fit_policy(m, world, train) for m in models}
    return Setup(world, train, rankers, time.perf_counter() - t0)


def write_results(
    path: Path,
    out: dict[str, Any],
    summary: dict[str, Any],
    targets: Any,
    runs: list[dict[str, Any]],
    t0: float,
) -> None:
    """Add what every simulator benchmark reports (the mean over repeats, the targets, the
    first repeat in full and the others' arms, seconds, the machine) to `out`, write it
    as JSON to `path` and print the summary."""
    out.update(
        {
            "mean_over_repeats": summary,
            "targets": targets,
            # the first repeat in full; the others' arms (their comparisons are in `targets`)
            "runs": [runs[0]] + [{"policies": r["policies"]} for r in runs[1:]],
            "seconds": round(time.perf_counter() - t0, 1),
            "machine": machine(),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({"mean_over_repeats": summary, "targets": targets}, indent=2))
    print(f"wrote {path}")


def parse_world_arguments(description: str, out: Path, repeat: int) -> argparse.Namespace:
    """The command line the simulator benchmarks share: the demo world's size
    (`--items`, `--users`, `--history-days`), the simulated `--days`, `--repeat` and the
    JSON `--out`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--history-days", type=int, default=90)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--out", type=Path, default=out)
    return parser.parse_args()
