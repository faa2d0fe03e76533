"""Search with and without the learned re-ranker, simulated for 14 days.

The shoppers of the default demo store (5,000 items, 2,000 shoppers, 90 days of history)
only search here (`ShopperModel(search_rate=1)`): each visit wants an item drawn from their
tastes and types a query made from its words, as the demo's shoppers do. They are split by
a hash of their id into two arms that share one `SearchService` (lexical retrieval and the
LightGBM re-ranker learned from the history's searches) and differ only in `rerank`
(`SearchService.search(..., rerank=False)`); searches are personalised with each shopper's
history (`shelfwise.experiments.simulate.search.RerankDriver`). Repeated with several seeds
and salts: click-through, conversion and revenue per visitor of each arm with 95% intervals,
and the re-ranker's lift with its interval and p-value.

    python benchmarks/simulate_search_rerank.py --repeat 3
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.data.demo import DemoConfig
from shelfwise.experiments.simulate.policies import history_matrix
from shelfwise.experiments.simulate.report import report
from shelfwise.experiments.simulate.run import simulate
from shelfwise.experiments.simulate.search import RerankDriver
from shelfwise.experiments.simulate.world import ShopperModel, World
from sim_common import parse_world_arguments, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulate_search_rerank.json"
ARMS = {"no_rerank": False, "rerank": True}
METRICS = ("ctr", "list_ctr", "conversion_rate", "revenue_per_user", "true_ctr")


def main() -> None:
    args = parse_world_arguments(__doc__.split("\n\n")[0], RESULTS, repeat=3)

    t0 = time.perf_counter()
    demo = DemoConfig(seed=42, n_items=args.items, n_users=args.users, days=args.history_days)
    world = World.generate(demo, ShopperModel(search_rate=1.0))
    driver = RerankDriver(world, ARMS, history_matrix(world))
    print(f"search service built ({time.perf_counter() - t0:.0f}s)", flush=True)
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        driver.reset()
        result = simulate(world, driver, list(ARMS), days=args.days, seed=rep, salt=f"rr-{rep}")
        runs.append(report(result))
        print(f"repeat {rep + 1}/{args.repeat} ({time.perf_counter() - t0:.0f}s)", flush=True)

    summary = {
        arm: {m: round(float(np.mean([r["policies"][arm][m] for r in runs])), 6) for m in METRICS}
        for arm in ARMS
    }
    targets: dict[str, Any] = {}
    for metric in ("ctr", "list_ctr", "conversion_rate", "revenue_per_user"):
        cs = [
            next(c for c in r["comparisons"] if (c["a"], c["b"], c["metric"]) ==
                 ("no_rerank", "rerank", metric))
            for r in runs
        ]  # fmt: skip
        targets[f"rerank_vs_no_rerank_{metric}"] = {
            "lift": [c["lift"] for c in cs],
            "lift_ci95": [c["lift_ci95"] for c in cs],
            "p_value": [c["p_value"] for c in cs],
        }
    out = {
        "benchmark": "simulate_search_rerank",
        "setup": {
            "demo": {
                "seed": 42,
                "items": args.items,
                "users": args.users,
                "days": args.history_days,
            },
            "test_days": args.days,
            "repeats": args.repeat,
            "arms": ARMS,
            "shopper_model": world.model.model_dump(),
            "search_timings": driver.service.timings,
            "history_searches": int((world.history["type"] == "search").sum()),
        },
    }
    write_results(args.out, out, summary, targets, runs, t0)


if __name__ == "__main__":
    main()
