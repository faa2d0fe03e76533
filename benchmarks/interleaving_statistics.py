"""Which analysis of team-draft clicks is most sensitive, on the same simulated sessions.

`simulate_interleaving.py` measures sessions needed test by test, each on its own simulated
sessions, so differences of a few percent between analyses drown in the noise of the
measurement. Here every analysis sees the very same tests: `--repeat` tests of `--shoppers`
shoppers (drawn from the demo world with the sessions its visit model gives them over 14
days, every session shown one of its shopper's marginalised team drafts of ItemKNN against
ItemKNN without its 3 best items), and each analysis' z statistic for the better ranker.
Shoppers needed for 80% power follow as in `simulate_interleaving.py`
(n ((1.96 + 0.84 sd z) / mean z)^2), with a 95% bootstrap interval of each analysis' need
relative to the plain shopper test (paired: the same tests), and the false-positive rate
(with its Wilson interval) on the null of `simulate_interleaving.py` (A and B swapped for a
random half of each test's shoppers). Analyses, all valid on that null:

* `sums`: each shopper's credited click differences summed, t-test over shoppers
  (`shopper_test`, the benchmark's `interleaving_shoppers`);
* `shrink_<s>`: the same with shopper u's sum weighed by 1 / (1 + s n_u)
  (`shopper_test(..., shrink=s)`);
* `means`: t-test of each shopper's mean difference per session (shoppers alike);
* `means_clicked`: the mean over the shopper's sessions with a credited click;
* `click_share`: each shopper's (B - A) / (A + B) credited clicks;
* `ratio_wald`: sum D / sum n with its delta-method standard error (no t-test of sums);
* `sign_sums`: each session's winner (+1 / -1 / 0) summed per shopper, t-test;
* `coin_adjusted`: sums adjusted by a control variate of the coins, the examination
  probability 1 / log2(2 + position) of B's credited positions minus A's (mean 0 by the
  coin's fairness), its coefficient fitted by least squares.

Beside them, the truth the analyses cannot see: each shopper's expected credit per session
(B minus A, from the choice model, averaged over their drafts and visit moods), whose
spread across shoppers against its mean says how much shoppers disagree.

    python benchmarks/interleaving_statistics.py --repeat 300
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from shelfwise.experiments.interleaving import TEAM_A, TEAM_B, shopper_test
from shelfwise.experiments.simulate.world import examination
from sim_common import machine, setup
from simulate_interleaving import Pair, _clicks, _need

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "interleaving_statistics.json"
Z_ALPHA = float(sps.norm.ppf(0.975))
SHRINKS = (0.03, 0.05, 0.1)


def _t(x: np.ndarray) -> float:
    """One-sample t statistic of x against 0."""
    sd = float(x.std(ddof=1))
    return float(x.mean() / (sd / math.sqrt(x.size))) if sd > 0 else 0.0


def _sessions(
    world: Any, pair: Pair, n: int, rates: np.ndarray, rng: np.random.Generator, null: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One simulated test: per session its shopper (0..n-1), credited B-minus-A clicks,
    credited clicks and the coin covariate (all sign-flipped for swapped shoppers)."""
    shoppers = rng.integers(0, world.n_users, size=n)
    count = rng.poisson(rates[shoppers])
    owner = np.repeat(np.arange(n), count)
    su = shoppers[owner]
    flip = np.where((rng.random(n) < 0.5)[owner], -1, 1) if null else np.ones(su.size)
    which = rng.integers(0, len(pair.marginal), size=su.size)
    diff, clicks, coin = (np.zeros(su.size) for _ in range(3))
    look = examination(np.arange(pair.a.shape[1]), None, 1.0)
    for d in range(len(pair.marginal)):
        rows = np.flatnonzero(which == d)
        items, teams = pair.marginal[d][0][su[rows]], pair.marginal[d][1][su[rows]]
        seen = _clicks(world, su[rows], items, rng)
        on_a, on_b = (seen & (teams == TEAM_A)).sum(1), (seen & (teams == TEAM_B)).sum(1)
        diff[rows], clicks[rows] = on_b - on_a, on_a + on_b
        coin[rows] = (((teams == TEAM_B) * 1.0 - (teams == TEAM_A)) * look).sum(1)
    return owner, diff * flip, clicks, coin * flip


def analyses(owner: np.ndarray, diff: np.ndarray, clicks: np.ndarray, coin: np.ndarray,
             n: int) -> dict[str, float]:  # fmt: skip
    """Every analysis' z for B (> 0: B better) on one test's sessions."""
    count = np.bincount(owner, minlength=n).astype(float)
    keep = count > 0
    per = {name: np.bincount(owner, weights=x, minlength=n)[keep]
           for name, x in (("d", diff), ("c", clicks), ("k", (clicks > 0) * 1.0),
                           ("s", np.sign(diff)), ("x", coin))}  # fmt: skip
    cnt, d = count[keep], per["d"]
    z = {"sums": shopper_test(-diff, owner).z}
    for s in SHRINKS:
        z[f"shrink_{s:g}"] = shopper_test(-diff, owner, shrink=s).z
    z["means"] = _t(d / cnt)
    clicked = per["k"] > 0
    z["means_clicked"] = _t(d[clicked] / per["k"][clicked])
    z["click_share"] = _t(d[clicked] / per["c"][clicked])
    ratio = d.sum() / cnt.sum()
    se = math.sqrt(float((d - ratio * cnt).var(ddof=1)) / d.size) / cnt.mean()
    z["ratio_wald"] = ratio / se if se > 0 else 0.0
    z["sign_sums"] = _t(per["s"])
    x = per["x"] - per["x"].mean()
    theta = float(x @ (d - d.mean()) / (x @ x)) if x @ x > 0 else 0.0
    z["coin_adjusted"] = _t(d - theta * per["x"])
    return z


def true_preferences(world: Any, pair: Pair, moods: int, rng: np.random.Generator) -> np.ndarray:
    """Each shopper's expected credited B-minus-A clicks per session (drafts and moods
    averaged; the moods by Monte Carlo)."""
    users = np.arange(world.n_users)
    mu = np.zeros(world.n_users)
    for items, teams in pair.marginal:
        sign = (teams == TEAM_B) * 1.0 - (teams == TEAM_A)
        for _ in range(moods):
            p = world.click_probabilities(users, items, moods=world.visit_moods(users.size, rng))
            mu += (p * sign).sum(1) / (len(pair.marginal) * moods)
    return mu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--shoppers", type=int, default=700, help="shoppers per test")
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=8, help="team drafts per shopper")
    parser.add_argument("--test-days", type=int, default=14)
    parser.add_argument("--visit-sd", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0, c0 = time.perf_counter(), time.process_time()
    s = setup(args.items, args.users, args.days, models=("itemknn",))
    world, k = s.world, s.world.model.slate_size
    users = np.arange(world.n_users)
    knn = s.top("itemknn", users, k + 3)
    pair = Pair(knn[:, :k], knn[:, 3 : k + 3], k, args.draws, 0)
    rates = world.visit_rates(users, np.zeros(world.n_users)) * args.test_days
    n = args.shoppers
    results: dict[str, Any] = {}
    for visit_sd in args.visit_sd:
        world.model = world.model.model_copy(update={"visit_sd": visit_sd})
        rng = np.random.default_rng(5)
        runs = {null: [analyses(*_sessions(world, pair, n, rates, rng, null), n)
                       for _ in range(args.repeat)] for null in (False, True)}  # fmt: skip
        mu = true_preferences(world, pair, 16, np.random.default_rng(1))
        truth = float(np.sign(mu.mean()))
        boot = np.random.default_rng(11).integers(0, args.repeat, (args.bootstrap, args.repeat))
        z_all = {a: truth * np.array([r[a] for r in runs[False]]) for a in runs[False][0]}
        base = z_all["sums"]
        entry: dict[str, Any] = {}
        for name, z in z_all.items():
            null = np.array([r[name] for r in runs[True]])
            fp = int((np.abs(null) > Z_ALPHA).sum())
            ci = sps.binomtest(fp, null.size).proportion_ci(method="wilson")
            rel = [_need(n, z[i]) / _need(n, base[i]) for i in boot]
            entry[name] = {
                "z_mean": round(float(z.mean()), 3),
                "z_sd": round(float(z.std(ddof=1)), 3),
                "shoppers_needed": round(_need(n, z)),
                "need_vs_sums": round(_need(n, z) / _need(n, base), 3),
                "need_vs_sums_ci95": [round(float(x), 3) for x in np.percentile(rel, [2.5, 97.5])],
                "false_positive_rate_null": round(fp / null.size, 3),
                "false_positive_rate_null_ci95": [round(ci.low, 3), round(ci.high, 3)],
            }  # fmt: skip
        results[f"visit_sd={visit_sd:g}"] = {
            "true_preference_per_session": {"mean": round(float(mu.mean()), 5),
                                            "sd_over_shoppers": round(float(mu.std()), 5)},
            "analyses": entry,
        }  # fmt: skip
        print(f"visit_sd={visit_sd:g}: " + ", ".join(
            f"{a} {e['need_vs_sums']:.3f}" for a, e in entry.items()), flush=True)  # fmt: skip
    out = {
        "benchmark": "interleaving_statistics",
        "setup": {
            "demo": {"items": args.items, "users": args.users, "days": args.days, "seed": 42},
            "pair": "itemknn_vs_itemknn_minus_top3", "shoppers_per_test": n,
            "repeats": args.repeat, "bootstrap": args.bootstrap, "draws_per_shopper": args.draws,
            "sessions": f"the world's visit model over {args.test_days} days per shopper",
            "need_vs_sums": "shoppers needed relative to the plain shopper test on the same "
                            "tests (< 1: fewer)",
        },
        "results": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
        "machine": machine(),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
