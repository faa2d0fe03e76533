"""Off-policy estimates of new policies' click-through against the simulator's ground truth.

A logging policy explores around ItemKNN (epsilon-greedy over its top N, propensities
logged) on simulated visits of the demo world's shoppers; IPS, self-normalised IPS and
doubly robust (position x item reward model) estimate the click-through per slot of
target policies that re-rank the same candidates, and each estimate's 95% interval is
checked against the exact truth (the choice model's click probabilities of the target's
slates on the same visits). Repeated with fresh logs; the coverage is the share of repeats
whose interval holds the truth (target: about 95%, and never the truth outside on average).

`--logger live` logs with the live service's exploration instead
(`experiments.assignment.explore`, the same epsilon over the same top N) and weighs by the
marginal propensities it logs (`assignment.marginal_propensities`), to
`simulate_ope_live.json`.

    python benchmarks/simulate_ope.py --visits 20000 --repeat 20
    python benchmarks/simulate_ope.py --visits 20000 --repeat 20 --logger live
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.experiments.assignment import Exploration, explore, marginal_propensities
from shelfwise.experiments.ope import LoggedSlates, PositionItemModel, estimate_all
from shelfwise.experiments.simulate.policies import EpsilonGreedyPolicy
from sim_common import machine, setup

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulate_ope.json"
RESULTS_LIVE = ROOT / "benchmarks" / "results" / "simulate_ope_live.json"


def live_logs(
    pool: np.ndarray, k: int, exploration: Exploration, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The live service's exploration of each row of `pool` (the served order): the first
    k items shown and their marginal propensities."""
    n = pool.shape[1]
    ids, props = np.empty((pool.shape[0], k), dtype=np.int64), np.empty((pool.shape[0], k))
    for row in range(pool.shape[0]):
        order, _ = explore(range(n), exploration, rng)
        ids[row] = pool[row, order[:k]]
        props[row] = marginal_propensities(order, n, exploration)[:k]
    return ids, props


def targets(pool: np.ndarray, k: int, world: Any, users: np.ndarray) -> dict[str, np.ndarray]:
    """New policies that re-rank the logging policy's candidates (so they stay in its
    support): its own greedy list, the candidates by popularity, reversed, and by true
    utility (the best any re-ranker could do)."""
    popularity = np.asarray(np.bincount(
        world.history.dropna(subset=["item_id"])["item_id"].map(
            {s: i for i, s in enumerate(world.item_ids)}
        ).to_numpy(dtype=np.int64),
        minlength=world.n_items,
    ), dtype=np.float64)  # fmt: skip
    safe = np.maximum(pool, 0)
    by_pop = np.take_along_axis(pool, np.argsort(-popularity[safe], axis=1, kind="stable"), 1)
    util = np.where(pool >= 0, world.utility(users[:, None], safe), -np.inf)
    by_truth = np.take_along_axis(pool, np.argsort(-util, axis=1, kind="stable"), 1)
    return {
        "itemknn_greedy": pool[:, :k],
        "popularity_rerank": by_pop[:, :k],
        "reversed": pool[:, ::-1][:, :k],
        "oracle_rerank": by_truth[:, :k],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--visits", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--epsilon", type=float, default=0.5)
    parser.add_argument("--top-n", type=int, default=20)
    parser.add_argument("--logger", choices=("simulator", "live"), default="simulator")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    live = args.logger == "live"
    if args.out is None:
        args.out = RESULTS_LIVE if live else RESULTS
    exploration = Exploration(kind="epsilon", epsilon=args.epsilon, top_n=args.top_n)

    t0 = time.perf_counter()
    s = setup(args.items, args.users, args.days)
    world, k = s.world, s.world.model.slate_size
    users = np.arange(world.n_users)
    pools = s.top("itemknn", users, args.top_n)
    logging_policy = EpsilonGreedyPolicy(s.rankers["itemknn"], args.epsilon, args.top_n)
    per_target: dict[str, dict[str, Any]] = {}
    for rep in range(args.repeat):
        rng = np.random.default_rng(1000 + rep)
        visit_users = rng.integers(0, world.n_users, size=args.visits)
        pool = pools[visit_users]
        if live:
            ids, props = live_logs(pool, k, exploration, rng)
        else:
            logged_slates = logging_policy.explore(pool, k, rng)
            assert logged_slates.propensities is not None
            ids, props = logged_slates.ids, logged_slates.propensities
        p_click = world.click_probabilities(visit_users, ids)
        clicks = rng.random(p_click.shape) < p_click
        logged = LoggedSlates(ids, props, clicks)
        reward = PositionItemModel.fit(logged, world.n_items)
        for name, target in targets(pool, k, world, visit_users).items():
            truth = float(world.click_probabilities(visit_users, target).mean())
            entry = per_target.setdefault(name, {"truth": [], "estimators": {}})
            entry["truth"].append(truth)
            for method, est in estimate_all(logged, target, reward).items():
                e = entry["estimators"].setdefault(
                    method, {"value": [], "width": [], "covered": [], "ess": []}
                )
                e["value"].append(est.value)
                e["width"].append(est.ci95[1] - est.ci95[0])
                e["covered"].append(est.covers(truth))
                e["ess"].append(est.ess)
        print(f"repeat {rep + 1}/{args.repeat} done ({time.perf_counter() - t0:.0f}s)", flush=True)

    summary: dict[str, Any] = {}
    for name, entry in per_target.items():
        truths = np.asarray(entry["truth"])
        row: dict[str, Any] = {"truth_mean": round(float(truths.mean()), 6)}
        for method, e in entry["estimators"].items():
            values = np.asarray(e["value"])
            row[method] = {
                "estimate_mean": round(float(values.mean()), 6),
                "bias_mean": round(float((values - truths).mean()), 6),
                "ci95_width_mean": round(float(np.mean(e["width"])), 6),
                "coverage": round(float(np.mean(e["covered"])), 3),
                "ess_mean": round(float(np.mean(e["ess"])), 1),
            }
        summary[name] = row
    out = {
        "benchmark": "simulate_ope",
        "setup": {
            "demo": {"items": args.items, "users": args.users, "days": args.days, "seed": 42},
            "visits_per_repeat": args.visits, "repeats": args.repeat, "slate_size": k,
            "logging": (
                f"the live exploration (assignment.explore, epsilon={args.epsilon}) of "
                f"ItemKNN's top {args.top_n}, marginal propensities"
                if live else
                f"epsilon-greedy over ItemKNN's top {args.top_n}, epsilon={args.epsilon}"
            ),
            "value": "click-through per slot (clicks / items shown)",
        },
        "targets": summary,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
