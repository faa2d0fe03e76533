"""Sessions needed to tell two rankers apart: team-draft interleaving against A/B tests.

Pairs of rankers with a known difference (their true click-through per slot in an average
visit, from the simulator's choice model, is reported) are compared on simulated sessions
of the demo world's shoppers (see `compare_pairs`): the A/B test a store runs (shoppers
randomised, click-through per shopper by the delta method), an A/B test randomising each
session (the most favourable case for A/B), and team-draft interleaving with the sign test
on the per-session winner (`experiments.interleaving`). For each number of shoppers on a
grid, the power is the share of repeats that detect the right winner at p < 0.05; the
sessions needed are where the power first reaches 0.8 (interpolated in log sessions).
Target: interleaving needs at least 10x fewer sessions than the A/B test. How many fewer
depends on how unequal shoppers and visits are (their clickiness, and the visit's mood,
`ShopperModel.visit_sd`), which an A/B test must average away and a comparison within each
session does not see, so the benchmark sweeps the visit mood.

    python benchmarks/simulate_interleaving.py --repeat 40
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.experiments.interleaving import credit, sign_test, team_draft_batch
from shelfwise.experiments.stats import compare_means, compare_ratios
from sim_common import machine, setup

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulate_interleaving.json"
POWER = 0.8


def needed(grid: list[int], power: list[float]) -> float | None:
    """Sessions at which the power first reaches POWER (log-linear between grid points)."""
    for i, p in enumerate(power):
        if p >= POWER:
            if i == 0:
                return float(grid[0])
            lo, hi, plo = grid[i - 1], grid[i], power[i - 1]
            t = (POWER - plo) / max(p - plo, 1e-9)
            return float(math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo))))
    return None


def _clicks(world: Any, users: np.ndarray, slates: np.ndarray, rng: Any) -> np.ndarray:
    """Simulated clicks (sessions x positions) of sessions by `users` shown `slates`."""
    p = world.click_probabilities(users, slates, moods=world.visit_moods(users.size, rng))
    return np.asarray(rng.random(p.shape) < p)


def compare_pairs(
    world: Any, pairs: dict[str, tuple[np.ndarray, np.ndarray]], k: int, args: Any, t0: float
) -> dict[str, Any]:
    """Power curves and sessions needed of every pair of rankers in `world`.

    At each grid point, `n` shoppers are drawn from the world with the sessions the world's
    visit model gives them over `args.test_days` (heavy-tailed: a few shoppers visit a
    lot). Three tests see the same sessions: the A/B test a store runs (shoppers randomised,
    click-through per shopper with the delta method, `compare_ratios`), an A/B test that
    randomises every session independently (Welch on clicks per session: the most
    favourable case for A/B), and team-draft interleaving of every session (sign test).
    """
    rng = np.random.default_rng(7)
    users = np.arange(world.n_users)
    rates = world.visit_rates(users, np.zeros(world.n_users)) * args.test_days
    results: dict[str, Any] = {}
    for name, (a, b) in pairs.items():
        ctr_a = float(world.click_probabilities(users, a).mean())
        ctr_b = float(world.click_probabilities(users, b).mean())
        sign = np.sign(ctr_b - ctr_a)
        # `draws` team drafts per shopper, reused by the sessions that sample the shopper
        drafts = [team_draft_batch(a, b, k, rng) for _ in range(args.draws)]
        grid: list[int] = []
        power: dict[str, list[float]] = {"ab_users": [], "ab_sessions": [], "interleaving": []}
        n = 4
        while n <= args.max_users:
            hits = dict.fromkeys(power, 0)
            sessions = 0
            for _ in range(args.repeat):
                shoppers = rng.integers(0, world.n_users, size=n)
                count = rng.poisson(rates[shoppers])
                owner = np.repeat(np.arange(n), count)  # session -> shopper position
                su = shoppers[owner]
                sessions += su.size
                # A/B by shopper: the arm of each shopper, all their sessions alike
                in_b = rng.random(n) < 0.5
                sb = in_b[owner]
                clicks = np.where(
                    sb[:, None], _clicks(world, su, b[su], rng), _clicks(world, su, a[su], rng)
                ).sum(axis=1)
                per_user = np.bincount(owner, weights=clicks, minlength=n)
                imps = count * k
                if min(imps[in_b].sum(), imps[~in_b].sum()) > 0 and 2 <= in_b.sum() <= n - 2:
                    c = compare_ratios(per_user[~in_b], imps[~in_b], per_user[in_b], imps[in_b])
                    hits["ab_users"] += int(c.p_value < 0.05 and np.sign(c.diff) == sign)
                # A/B by session: the same sessions, each its own coin
                coin = rng.random(su.size) < 0.5
                if coin.sum() >= 2 and (~coin).sum() >= 2:
                    ua, ub = su[~coin], su[coin]
                    c = compare_means(
                        _clicks(world, ua, a[ua], rng).sum(axis=1),
                        _clicks(world, ub, b[ub], rng).sum(axis=1),
                    )
                    hits["ab_sessions"] += int(c.p_value < 0.05 and np.sign(c.diff) == sign)
                # interleaving: every session shows a team draft of both
                which = rng.integers(0, args.draws, size=su.size)
                outcome = np.zeros(su.size, dtype=np.int64)
                for d in range(args.draws):
                    rows = np.flatnonzero(which == d)
                    items, teams = drafts[d][0][su[rows]], drafts[d][1][su[rows]]
                    outcome[rows] = credit(teams, _clicks(world, su[rows], items, rng))
                test = sign_test(outcome)
                right = (test.preference_b > 0.5) == (sign > 0)
                hits["interleaving"] += int(test.p_value < 0.05 and right)
            grid.append(round(sessions / args.repeat))
            for key in power:
                power[key].append(hits[key] / args.repeat)
            print(f"visit_sd={world.model.visit_sd:g} {name} shoppers={n} sessions={grid[-1]}: "
                  + ", ".join(f"{key} {v[-1]:.2f}" for key, v in power.items())
                  + f" ({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
            if all(v[-1] >= POWER for v in power.values()):
                break
            n = round(n * math.sqrt(2))
        entry: dict[str, Any] = {
            "true_ctr_a_average_visit": round(ctr_a, 6),
            "true_ctr_b_average_visit": round(ctr_b, 6),
            "true_lift_b_vs_a": round(ctr_b / ctr_a - 1, 4),
            "grid_sessions": grid,
            "power": power,
        }
        need = {key: needed(grid, v) for key, v in power.items()}
        for key, value in need.items():
            entry[f"{key}_sessions_needed"] = round(value) if value else None
            # reached at the grid's first point: the true need may be lower
            entry[f"{key}_at_first_point"] = bool(power[key][0] >= POWER)
        il = need["interleaving"]
        for key in ("ab_users", "ab_sessions"):
            ab = need[key]
            entry[f"ratio_{key}_vs_interleaving"] = round(ab / il, 1) if ab and il else None
        results[name] = entry
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--draws", type=int, default=4, help="team drafts per shopper")
    parser.add_argument("--max-users", type=int, default=200_000)
    parser.add_argument("--test-days", type=int, default=14, help="days the A/B test runs")
    parser.add_argument(
        "--visit-sd",
        type=float,
        nargs="+",
        default=[0.0, 1.0, 2.0],
        help="visit moods to compare (the spread of clicks per session)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    s = setup(args.items, args.users, args.days, models=("itemknn", "popularity"))
    world = s.world
    k = world.model.slate_size
    users = np.arange(world.n_users)
    knn = s.top("itemknn", users, k + 3)
    pairs = {
        # B = ItemKNN without its 3 best items: a small, known degradation
        "itemknn_vs_itemknn_minus_top3": (knn[:, :k], knn[:, 3 : k + 3]),
        "itemknn_vs_popularity": (knn[:, :k], s.top("popularity", users, k)),
    }
    results: dict[str, Any] = {}
    for visit_sd in args.visit_sd:
        world.model = world.model.model_copy(update={"visit_sd": visit_sd})
        results[f"visit_sd={visit_sd:g}"] = compare_pairs(world, pairs, k, args, t0)
    out = {
        "benchmark": "simulate_interleaving",
        "setup": {
            "demo": {"items": args.items, "users": args.users, "days": args.days, "seed": 42},
            "slate_size": k, "repeats": args.repeat, "power_target": POWER, "alpha": 0.05,
            "ab_users": "shoppers randomised; click-through per shopper, delta method",
            "ab_sessions": "sessions randomised; clicks per session, Welch",
            "sessions": f"the world's visit model over {args.test_days} days per shopper",
            "interleaving": "team draft, sign test on the per-session winner",
        },
        "pairs": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
