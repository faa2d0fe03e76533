"""Smart-push send times against a fixed hour and random hours, simulated for 14 days.

The shoppers of the default demo store (5,000 items, 2,000 shoppers, 90 days of history)
whom the project's smart-push planner (`shelfwise.profiles.push.plan_push`, from profiles
folded from the generated history, at midnight of day 0) would push to are split by a hash
of their id into send-time arms; everyone is pushed once a day the planner's items (from
ItemKNN's top 20, as the push-plan route asks), and only the hour differs:

* `smart`: the hour of the planner's `send_at` (the shopper's next peak hour out of the
  quiet hours);
* `fixed_10`: 10:00 UTC for everyone;
* `random`: a uniformly random hour outside the planner's quiet hours (08:00-21:00);
* `peak`: the shopper's truly most active hour outside the quiet hours (an oracle, the
  upper bound).

Shoppers open a push by how active they are at its hour and how many they have received
(`shelfwise.experiments.simulate.push`), and click its items by the simulator's choice model.
Repeated with several seeds and salts; open rate and click rate per push with 95% intervals
(delta method over shoppers) and every comparison.

    python benchmarks/simulate_push.py --repeat 5
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.experiments.simulate.push import (
    FixedHour,
    PeakHour,
    PlannedHour,
    PushModel,
    RandomHour,
    SendTimePolicy,
    activity_profiles,
    planned_pushes,
    push_report,
    simulate_push,
)
from shelfwise.profiles.push import PushConfig
from sim_common import parse_world_arguments, setup, write_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulate_push.json"


def main() -> None:
    args = parse_world_arguments(__doc__.split("\n\n")[0], RESULTS, repeat=5)

    t0 = time.perf_counter()
    s = setup(args.items, args.users, args.history_days, models=("itemknn",))
    world = s.world
    recs = s.top("itemknn", np.arange(world.n_users), 20)
    config = PushConfig()
    plans = planned_pushes(world, recs, config)
    users = np.flatnonzero(plans.send)
    print(f"planned {users.size} pushes of {world.n_users} shoppers "
          f"({time.perf_counter() - t0:.0f}s)", flush=True)  # fmt: skip
    profiles = activity_profiles(world.tastes.preferred_hour)
    allowed = tuple(h for h in range(24) if not config.quiet(h))
    policies: dict[str, SendTimePolicy] = {
        "fixed_10": FixedHour(10),
        "random": RandomHour(allowed),
        "smart": PlannedHour(plans.hours),
        "peak": PeakHour(profiles, allowed),
    }
    model = PushModel()
    runs: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        totals = simulate_push(world, policies, users, plans.items, args.days, model,
                               seed=rep, salt=f"push-{rep}", profiles=profiles)  # fmt: skip
        runs.append(push_report(totals, list(policies)))
        print(f"repeat {rep + 1}/{args.repeat} ({time.perf_counter() - t0:.0f}s)", flush=True)

    metrics = ("open_rate", "click_rate", "clicks_per_push", "true_open_rate",
               "mean_activity_share")  # fmt: skip
    summary = {
        arm: {m: round(float(np.mean([r["policies"][arm][m] for r in runs])), 6) for m in metrics}
        for arm in policies
    }
    targets: dict[str, Any] = {}
    for a, b in (("fixed_10", "smart"), ("random", "smart"), ("smart", "peak")):
        for metric in ("open_rate", "click_rate"):
            cs = [next(c for c in r["comparisons"] if (c["a"], c["b"], c["metric"]) ==
                       (a, b, metric)) for r in runs]  # fmt: skip
            targets[f"{b}_vs_{a}_{metric}"] = {
                "lift": [round(c["lift"], 4) for c in cs],
                "lift_ci95": [[round(x, 4) for x in c["lift_ci95"]] for c in cs],
                "p_value": [c["p_value"] for c in cs],
            }
    smart_hours = plans.hours[plans.send]
    peak_hours = PeakHour(profiles, allowed).hours(users, 0, np.random.default_rng(0))
    evening = (world.tastes.preferred_hour[users] >= 18) & (world.tastes.preferred_hour[users] < 23)
    out = {
        "benchmark": "simulate_push",
        "setup": {
            "demo": {
                "seed": 42,
                "items": args.items,
                "users": args.users,
                "days": args.history_days,
            },
            "test_days": args.days,
            "repeats": args.repeat,
            "push_model": model.model_dump(),
            "push_config": config.model_dump(),
            "recommender": "itemknn top 20",
            "pushed_shoppers": int(users.size),
            "planner_reasons": dict(Counter(plans.reasons).most_common()),
            "smart_hour_histogram": np.bincount(smart_hours, minlength=24).tolist(),
            "smart_hour_is_true_peak": round(float(np.mean(smart_hours == peak_hours)), 4),
            "evening_shoppers_pushed_before_17": round(
                float(np.mean(smart_hours[evening] < 17)), 4
            ),
        },
    }
    write_results(args.out, out, summary, targets, runs, t0)


if __name__ == "__main__":
    main()
