"""Sessions needed to tell two rankers apart: team-draft interleaving against A/B tests.

Pairs of rankers with a known difference (their true click-through per slot in an average
visit, from the simulator's choice model, is reported) are compared on simulated sessions
of the demo world's shoppers: each simulated test draws `n` shoppers from the world with
the sessions the world's visit model gives them over `--test-days` (heavy-tailed: a few
shoppers visit a lot), so every test sees the same kind of traffic. The tests, all on
clicks:

* `ab_users`: the A/B test a store runs (shoppers randomised, click-through per shopper
  by the delta method, `stats.compare_ratios`);
* `ab_sessions`: an A/B test randomising every session on its own (Welch on clicks per
  session): the most favourable case for A/B, which no store can run;
* `interleaving_sign`: team draft, the sign test on the per-session winner (valid only
  when no shopper prefers either ranker: sessions of one shopper are not independent);
* `interleaving_sign_marginal`: the same with marginalised credit (clicks on items whose
  team only a list-neutral coin decided are not credited, `team_draft(marginalize=True)`);
* `interleaving_shoppers`: marginalised credit, each shopper's click differences summed
  and t-tested over shoppers (`interleaving.shopper_test`; valid whatever the shoppers'
  preferences, like the A/B test by shopper);
* `interleaving_shoppers_shrunk`: the same with each shopper's sum weighed by
  1 / (1 + s n_u) (`shopper_test(..., shrink=s)`, `--shrink`, 0.03 by default: a heavy
  shopper's many sessions share one preference, so they count for less; the weights depend
  only on session counts, so the test stays valid). The headline figure. The 0.03 was
  chosen on prototype runs of this world (other seeds) among 0.03, 0.05 and 0.1; the
  moment estimate of tau^2 / sigma^2 here is 0.06-0.08.
* `interleaving_optimized`: optimized interleaving (Radlinski and Craswell 2013,
  `interleaving.optimized_interleaving`): each session shows one list of a distribution
  over the lists whose every prefix is a union of prefixes of A and B, solved so that a
  random clicker credits neither; a click credits the linear rank difference
  (r_A - r_B) / k, each shopper's credits summed, the shrunk shopper test (same `--shrink`).
  The credit (against 1 / r_B - 1 / r_A) and the LP's weights were chosen on a world of
  another seed (7).

Sessions needed (80% power, two-sided alpha 0.05) come from each test's z statistic,
oriented so that > 0 favours the truly better ranker: z grows like the square root of the
shoppers while its spread stays put, so from `--repeat` tests at a size n the need is
n ((1.96 + 0.84 sd z) / mean z)^2 shoppers, times the mean sessions per shopper. A pilot
gives a first n, a round of tests there a second, and the need reported comes from a
second round at that size, so it is measured near 80% power: the share of those repeats
that detect the right winner is reported beside it (the check of that scaling), with the
95% interval of the need and of every ratio by bootstrap over the repeats, and each
test's false-positive rate at that size on a null (the two rankers swapped for a random
half of each test's shoppers: no preference in expectation, strong ones per shopper).
The visit mood (`ShopperModel.visit_sd`) is swept: it sets how
unequal visits are. Target: interleaving needs at least 10x fewer sessions than the A/B
test.

    python benchmarks/simulate_interleaving.py --repeat 200
    python benchmarks/simulate_interleaving.py --repeat 200 --visit-sd 1 --merge  # one mood
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from shelfwise.experiments.interleaving import (
    credit,
    credit_difference,
    optimized_interleaving_batch,
    shopper_test,
    team_draft_batch,
)
from shelfwise.experiments.stats import compare_means, compare_ratios
from sim_common import machine, setup

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulate_interleaving.json"
POWER, ALPHA = 0.8, 0.05
Z_ALPHA, Z_POWER = float(sps.norm.ppf(1 - ALPHA / 2)), float(sps.norm.ppf(POWER))
TESTS = (
    "ab_users",
    "ab_sessions",
    "interleaving_sign",
    "interleaving_sign_marginal",
    "interleaving_shoppers",
    "interleaving_shoppers_shrunk",
    "interleaving_optimized",
)
HEADLINE = "interleaving_shoppers_shrunk"
OPTIMIZED = "interleaving_optimized"
PAIRED = "interleaving_shoppers"  # compared with the headline on the same sessions
MIN_SHOPPERS = 100.0  # below it the normal approximations of the tests are poor


class Pair:
    """Two rankings per shopper (A, B: users x k) and `draws` team drafts of them per
    shopper, plain and marginalised from the same coins (a session reuses one of its
    shopper's drafts), and as many optimized-interleaving lists with their credits."""

    def __init__(self, a: np.ndarray, b: np.ndarray, k: int, draws: int, seed: int) -> None:
        self.a, self.b = a, b
        self.plain, self.marginal, self.optimized = [], [], []
        solved: dict[Any, Any] = {}  # optimized interleaving: one programme per pattern
        for d in range(draws):
            self.plain.append(team_draft_batch(a, b, k, np.random.default_rng([seed, d])))
            rng = np.random.default_rng([seed, d])
            self.marginal.append(team_draft_batch(a, b, k, rng, marginalize=True))
            rng = np.random.default_rng([seed, d, 1])
            self.optimized.append(optimized_interleaving_batch(a, b, k, rng, solved))


def _clicks(world: Any, users: np.ndarray, slates: np.ndarray, rng: Any) -> np.ndarray:
    """Simulated clicks (sessions x positions) of sessions by `users` shown `slates`."""
    p = world.click_probabilities(users, slates, moods=world.visit_moods(users.size, rng))
    return np.asarray(rng.random(p.shape) < p)


def _sign_z(outcome: np.ndarray) -> float:
    """The sign test's z for B: (B's wins - A's wins) / sqrt(decided sessions)."""
    wins_a, wins_b = int((outcome > 0).sum()), int((outcome < 0).sum())
    decided = wins_a + wins_b
    return (wins_b - wins_a) / math.sqrt(decided) if decided else 0.0


def one_test(
    world: Any,
    pair: Pair,
    n: int,
    rates: np.ndarray,
    rng: np.random.Generator,
    tests: tuple[str, ...] = TESTS,
    null: bool = False,
    shrink: float = 0.0,
) -> dict[str, float]:
    """The z statistic for B (> 0: B better) of each of `tests` on one simulated test of
    `n` shoppers and their sessions. `null`: A and B swapped for a random half of these
    shoppers (no preference in expectation, strong ones per shopper)."""
    shoppers = rng.integers(0, world.n_users, size=n)
    count = rng.poisson(rates[shoppers])
    owner = np.repeat(np.arange(n), count)  # session -> shopper position
    su = shoppers[owner]
    swapped = (rng.random(n) < 0.5) if null else np.zeros(n, dtype=bool)
    z: dict[str, float] = {}
    if "ab_users" in tests:
        z["ab_users"] = _ab_users(world, pair, n, count, owner, su, swapped[owner], rng)
    if "ab_sessions" in tests:
        z["ab_sessions"] = _ab_sessions(world, pair, su, swapped[owner], rng)
    if any(t.startswith("interleaving") and t != OPTIMIZED for t in tests):
        z.update(_interleaving(world, pair, owner, su, swapped[owner], rng, shrink))
    if OPTIMIZED in tests:
        z[OPTIMIZED] = _optimized(world, pair, owner, su, swapped[owner], rng, shrink)
    return z


def _arms(pair: Pair, su: np.ndarray, swapped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lists of A and B for sessions of shoppers `su` (swapped where `swapped`)."""
    a, b = pair.a[su], pair.b[su]
    return np.where(swapped[:, None], b, a), np.where(swapped[:, None], a, b)


def _ab_users(
    world: Any,
    pair: Pair,
    n: int,
    count: np.ndarray,
    owner: np.ndarray,
    su: np.ndarray,
    swapped: np.ndarray,
    rng: np.random.Generator,
) -> float:
    """A/B by shopper: the arm of each shopper, all their sessions alike (delta method)."""
    k = pair.a.shape[1]
    in_b = rng.random(n) < 0.5
    sb = in_b[owner]
    a, b = _arms(pair, su, swapped)
    clicks = np.where(sb[:, None], _clicks(world, su, b, rng), _clicks(world, su, a, rng)).sum(
        axis=1
    )
    per_user = np.bincount(owner, weights=clicks, minlength=n)
    imps = count * k
    if not (2 <= in_b.sum() <= n - 2 and min(imps[in_b].sum(), imps[~in_b].sum()) > 0):
        return 0.0  # too few shoppers in an arm: nothing detected
    c = compare_ratios(per_user[~in_b], imps[~in_b], per_user[in_b], imps[in_b])
    return c.diff / c.se if c.se > 0 else 0.0


def _ab_sessions(
    world: Any, pair: Pair, su: np.ndarray, swapped: np.ndarray, rng: np.random.Generator
) -> float:
    """A/B by session: the same kind of sessions, each its own coin (Welch)."""
    coin = rng.random(su.size) < 0.5
    if min(coin.sum(), (~coin).sum()) < 2:
        return 0.0
    a, b = _arms(pair, su, swapped)
    m = compare_means(
        _clicks(world, su[~coin], a[~coin], rng).sum(axis=1),
        _clicks(world, su[coin], b[coin], rng).sum(axis=1),
    )
    return m.diff / m.se if m.se > 0 else 0.0


def _interleaving(
    world: Any,
    pair: Pair,
    owner: np.ndarray,
    su: np.ndarray,
    swapped: np.ndarray,
    rng: np.random.Generator,
    shrink: float = 0.0,
) -> dict[str, float]:
    """Every session shows one of its shopper's team drafts; the interleaving tests on the
    same clicks (`shrink`: the shrunk shopper test's). A swapped session's credit changes
    sign: a team draft of (B, A) is one of (A, B) with the teams' names exchanged (the coin
    is fair)."""
    which = rng.integers(0, len(pair.plain), size=su.size)
    plain = np.zeros(su.size, dtype=np.int64)
    marginal = np.zeros(su.size, dtype=np.int64)
    for d in range(len(pair.plain)):
        rows = np.flatnonzero(which == d)
        items, teams = pair.plain[d][0][su[rows]], pair.plain[d][1][su[rows]]
        seen = _clicks(world, su[rows], items, rng)  # the same clicks for both credits
        plain[rows] = credit(teams, seen)
        marginal[rows] = credit_difference(pair.marginal[d][1][su[rows]], seen)
    flip = np.where(swapped, -1, 1)
    plain, marginal = plain * flip, marginal * flip
    return {
        "interleaving_sign": _sign_z(plain),
        "interleaving_sign_marginal": _sign_z(np.sign(marginal)),
        "interleaving_shoppers": shopper_test(marginal, owner).z,
        "interleaving_shoppers_shrunk": shopper_test(marginal, owner, shrink=shrink).z,
    }


def _optimized(
    world: Any,
    pair: Pair,
    owner: np.ndarray,
    su: np.ndarray,
    swapped: np.ndarray,
    rng: np.random.Generator,
    shrink: float = 0.0,
) -> float:
    """Every session shows one of its shopper's optimized-interleaving lists; each click
    credits the linear rank difference (r_A - r_B) / k, summed per session, and the shrunk
    shopper test's z. A swapped session's credit changes sign (the lists of (A, B) with
    their credits negated are an optimal distribution for (B, A): the programme is
    symmetric)."""
    which = rng.integers(0, len(pair.optimized), size=su.size)
    diff = np.zeros(su.size)
    for d in range(len(pair.optimized)):
        rows = np.flatnonzero(which == d)
        items, credits = pair.optimized[d][0][su[rows]], pair.optimized[d][1][su[rows]]
        diff[rows] = -(credits * _clicks(world, su[rows], items, rng)).sum(axis=1)  # A - B
    return shopper_test(diff * np.where(swapped, -1, 1), owner, shrink=shrink).z


def _need(n: int, z: np.ndarray) -> float:
    """Shoppers for POWER from z statistics at n shoppers (z ~ sqrt(n), spread fixed)."""
    mean, sd = float(z.mean()), float(z.std(ddof=1))
    if mean <= 0:
        return math.inf
    return n * ((Z_ALPHA + Z_POWER * sd) / mean) ** 2


def _size(shoppers: float, most: int) -> int:
    """A number of shoppers to test at: `shoppers` within [MIN_SHOPPERS, most]."""
    return int(min(max(shoppers, MIN_SHOPPERS), most)) if math.isfinite(shoppers) else most


def _run(
    world: Any,
    pair: Pair,
    n: int,
    rates: np.ndarray,
    repeat: int,
    rng: np.random.Generator,
    tests: tuple[str, ...] = TESTS,
    null: bool = False,
    shrink: float = 0.0,
) -> dict[str, np.ndarray]:
    runs = [one_test(world, pair, n, rates, rng, tests, null, shrink) for _ in range(repeat)]
    return {t: np.array([r[t] for r in runs]) for t in tests}


def compare_pair(
    world: Any,
    pair: Pair,
    args: Any,
    label: str,
    t0: float,
    report: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Sessions needed by every test for one pair of rankers (see the module doc)."""
    rng = np.random.default_rng(7)
    users = np.arange(world.n_users)
    rates = world.visit_rates(users, np.zeros(world.n_users)) * args.test_days
    per_shopper = float(rates.mean())  # E[sessions] of a drawn shopper
    truth = np.sign(world.click_probabilities(users, pair.b).mean()
                    - world.click_probabilities(users, pair.a).mean())  # fmt: skip
    # pilots of growing size until every test's mean z passes 1.5: a rough need per test
    rough: dict[str, float] = {}
    shrink = args.shrink
    n = args.pilot
    while len(rough) < len(TESTS):
        todo = tuple(t for t in TESTS if t not in rough)
        pilot = _run(world, pair, n, rates, args.pilot_repeat, rng, todo, shrink=shrink)
        for test in todo:
            z = truth * pilot[test]
            if test not in rough and (z.mean() > 1.5 or 4 * n > args.max_users):
                rough[test] = _need(n, z)
        n *= 4
    entry: dict[str, Any] = {}
    boot = np.random.default_rng(11)
    needs: dict[str, np.ndarray] = {}
    for test in TESTS:
        # two rounds of --repeat tests: at the pilot's estimate, then at round one's
        n1 = _size(rough[test], args.max_users)
        z1 = truth * _run(world, pair, n1, rates, args.repeat, rng, (test,), shrink=shrink)[test]
        first = _need(n1, z1) * per_shopper
        n2 = _size(first / per_shopper, args.max_users)
        # the headline's tests also give the plain shopper test's z on the same sessions
        both = (test, PAIRED) if test == HEADLINE else (test,)
        round2 = _run(world, pair, n2, rates, args.repeat, rng, both, shrink=shrink)
        z = truth * round2[test]
        z_null = _run(world, pair, n2, rates, args.repeat, rng, (test,), True, shrink)[test]
        fp = int((np.abs(z_null) > Z_ALPHA).sum())
        fp_ci = sps.binomtest(fp, z_null.size).proportion_ci(method="wilson")
        need = _need(n2, z) * per_shopper
        idx = boot.integers(0, z.size, size=(args.bootstrap, z.size))
        needs[test] = spread = np.array([_need(n2, z[i]) for i in idx]) * per_shopper
        entry[test] = {
            "sessions_needed": round(need),
            "sessions_needed_ci95": [round(float(x)) for x in np.percentile(spread, [2.5, 97.5])],
            "shoppers_needed": round(need / per_shopper),
            "tested_at_shoppers": n2,
            "tested_at_sessions": round(n2 * per_shopper),
            "power_at_tested": round(float((z > Z_ALPHA).mean()), 3),
            "round1_tested_at_sessions": round(n1 * per_shopper),
            "round1_sessions_needed": round(first),
            # met at the smallest size tested: the need is extrapolated below it
            "below_smallest_tested": bool(n2 <= MIN_SHOPPERS and need < n2 * per_shopper),
            "z_mean": round(float(z.mean()), 3),
            "z_sd": round(float(z.std(ddof=1)), 3),
            "false_positive_rate_null": round(fp / z_null.size, 3),
            "false_positive_rate_null_ci95": [round(fp_ci.low, 3), round(fp_ci.high, 3)],
        }  # fmt: skip
        if test == HEADLINE:  # the gain over the plain shopper test on the same sessions
            z_plain = truth * round2[PAIRED]
            gain = np.array([_need(n2, z_plain[i]) / _need(n2, z[i]) for i in idx])
            entry[test][f"paired_vs_{PAIRED}"] = {
                "sessions_ratio": round(_need(n2, z_plain) / _need(n2, z), 3),
                "ci95": [round(float(x), 3) for x in np.percentile(gain, [2.5, 97.5])],
            }
        report(f"{label} {test}: n={n2} shoppers, power {entry[test]['power_at_tested']:.2f}, "
               f"need {need:,.0f} sessions, null FPR {entry[test]['false_positive_rate_null']:.2f} "
               f"({time.perf_counter() - t0:.0f}s)")  # fmt: skip
    ratios: dict[str, Any] = {}
    for ab in ("ab_users", "ab_sessions"):
        for il in TESTS[2:]:
            r = needs[ab] / needs[il]
            ratios[f"{ab}_vs_{il}"] = {
                "ratio": round(entry[ab]["sessions_needed"] / entry[il]["sessions_needed"], 1),
                "ci95": [round(float(x), 1) for x in np.percentile(r, [2.5, 97.5])],
            }
    return {"sessions_per_shopper": round(per_shopper, 3), "tests": entry, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=200, help="tests per size")
    parser.add_argument("--pilot", type=int, default=400, help="shoppers in the pilot tests")
    parser.add_argument("--pilot-repeat", type=int, default=12)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=8, help="team drafts per shopper")
    parser.add_argument("--max-users", type=int, default=200_000)
    parser.add_argument("--test-days", type=int, default=14, help="days the A/B test runs")
    parser.add_argument("--shrink", type=float, default=0.03,
                        help="the shrunk shopper test's weight 1 / (1 + shrink n_u)")  # fmt: skip
    parser.add_argument(
        "--visit-sd",
        type=float,
        nargs="+",
        default=[0.0, 1.0, 2.0],
        help="visit moods to compare (the spread of clicks per session)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--merge", action="store_true",
                        help="keep the moods of --out that this run does not measure")  # fmt: skip
    args = parser.parse_args()

    t0, c0 = time.perf_counter(), time.process_time()
    s = setup(args.items, args.users, args.days, models=("itemknn", "popularity"))
    world = s.world
    k = world.model.slate_size
    users = np.arange(world.n_users)
    knn = s.top("itemknn", users, k + 3)
    rankings = {
        # B = ItemKNN without its 3 best items: a small, known degradation
        "itemknn_vs_itemknn_minus_top3": (knn[:, :k], knn[:, 3 : k + 3]),
        "itemknn_vs_popularity": (knn[:, :k], s.top("popularity", users, k)),
    }
    pairs = {
        name: Pair(a, b, k, args.draws, i) for i, (name, (a, b)) in enumerate(rankings.items())
    }
    print(f"drafts ready ({time.perf_counter() - t0:.0f}s)", flush=True)
    results: dict[str, Any] = {}
    for visit_sd in args.visit_sd:
        world.model = world.model.model_copy(update={"visit_sd": visit_sd})
        mood = f"visit_sd={visit_sd:g}"
        results[mood] = {}
        for name, pair in pairs.items():
            ctr_a = float(world.click_probabilities(users, pair.a).mean())
            ctr_b = float(world.click_probabilities(users, pair.b).mean())
            entry = compare_pair(world, pair, args, f"{mood} {name}", t0,
                                 lambda line: print(line, flush=True))  # fmt: skip
            results[mood][name] = {
                "true_ctr_a_average_visit": round(ctr_a, 6),
                "true_ctr_b_average_visit": round(ctr_b, 6),
                "true_lift_b_vs_a": round(ctr_b / ctr_a - 1, 4),
                **entry,
            }
    out = {
        "benchmark": "simulate_interleaving",
        "setup": {
            "demo": {"items": args.items, "users": args.users, "days": args.days, "seed": 42},
            "slate_size": k, "repeats": args.repeat, "pilot_shoppers": args.pilot,
            "pilot_repeats": args.pilot_repeat, "bootstrap": args.bootstrap,
            "power_target": POWER, "alpha": ALPHA, "draws_per_shopper": args.draws,
            "sessions": f"the world's visit model over {args.test_days} days per shopper",
            "sessions_needed": "n ((z_alpha/2 + z_power sd z) / mean z)^2 shoppers x sessions "
                               "per shopper, from --repeat tests at n shoppers (n: the "
                               "need estimated by a first round of --repeat tests)",
            "ab_users": "shoppers randomised; click-through per shopper, delta method",
            "ab_sessions": "sessions randomised; clicks per session, Welch",
            "interleaving_sign": "team draft, sign test on the per-session winner",
            "interleaving_sign_marginal": "team draft with marginalised credit, sign test",
            "interleaving_shoppers": "team draft with marginalised credit, per-shopper sums "
                                     "of click differences, t-test over shoppers",
            "interleaving_shoppers_shrunk": "the same with shopper u's sum weighed by "
                                            f"1 / (1 + {args.shrink:g} n_u)",
            "interleaving_optimized": "optimized interleaving (prefix-constrained lists, "
                                      "credit (r_A - r_B) / k per click, LP unbiased for a "
                                      "random clicker), the shrunk shopper test",
            "shrink": args.shrink,
            "null": "A and B swapped for a random half of each test's shoppers; "
                    "false-positive rate at n",
        },
        "headline": HEADLINE,
        "pairs": results,
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
        "machine": machine(),
    }  # fmt: skip
    if args.merge and args.out.exists():  # the moods measured before, by earlier runs
        old = json.loads(args.out.read_text())
        kept = {m: v for m, v in old.get("pairs", {}).items() if m not in results}
        out["pairs"] = dict(sorted({**kept, **results}.items()))
        out["setup"] = {**old.get("setup", {}), **out["setup"]}  # e.g. how each mood ran
        this = {"visit_sd": " ".join(f"{v:g}" for v in args.visit_sd), "repeats": args.repeat,
                "tests": list(TESTS), "seconds": out["seconds"],
                "cpu_seconds": out["cpu_seconds"], "machine": out["machine"]}  # fmt: skip
        ran = {f"{v:g}" for v in args.visit_sd}
        earlier = [r for r in old.get("runs", []) if str(r.get("visit_sd")) not in ran]
        out["runs"] = [*earlier, this]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
