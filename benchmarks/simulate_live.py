"""A live experiment on a real server, driven by simulated shoppers, against the simulator.

1. The demo store (`shelfwise generate-demo`'s defaults unless given, its history ending
   yesterday) is ingested into a fresh DuckDB store and `shelfwise serve` is started on it
   (its own process, a real port).
2. A live experiment is created through `POST /v1/experiments`: variant `tfidf` serves the
   bundle's TF-IDF content model, variant `knn` its ItemKNN, equal weights, salt `--salt`.
   (Both personalise: a variant naming the popularity model would not serve popularity,
   since the server's chain skips a model that does not personalise and its session step
   fills the list from ItemKNN's neighbours.)
3. The simulator's shoppers use the API for `--days` simulated days (`HttpDriver`, every
   list from the server, events posted back with the lists' request ids, stamped with the
   real time so the experiment counts them); the server assigns each shopper a variant.
4. The experiment's own results (`GET /v1/experiments/{id}/results`) are read back.
5. The same test is simulated in-process (the same world and salt, so the same split, and
   another random seed; histories weighted by recency like the server's): its 95% intervals
   of the lift are the simulator's prediction. One difference stays: the server sees the
   14 simulated days within minutes, so their events are equally recent to it.

Target: the live experiment's measured lift of click-through (lists clicked / lists shown)
and conversion (share of exposed shoppers who bought) falls within the simulator's 95%
interval. The simulator's own record of the HTTP run (what it clicked and bought) is
reported beside the server's numbers, which checks the server's attribution.

    python benchmarks/simulate_live.py --days 14
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from load_test import make_key, revoke_key, start_server, stop_server
from shelfwise.artifacts import ensure_bundle
from shelfwise.data.demo import DemoConfig
from shelfwise.experiments.simulate.http import HttpDriver
from shelfwise.experiments.simulate.report import report
from shelfwise.experiments.simulate.run import library_driver, simulate
from shelfwise.experiments.simulate.world import World
from shelfwise.store import open_store
from sim_common import machine
from startup import _free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "simulate_live.json"
# the live experiment's metric name -> the simulator's metric of the same definition
SAME_METRIC = {"ctr": "list_ctr", "conversion_rate": "user_conversion_rate"}


def _lift(comparisons: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    for c in comparisons:
        if c["metric"] == metric and (c["a"], c["b"]) == ("tfidf", "knn"):
            return c
    raise KeyError(metric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--history-days", type=int, default=90)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--salt", default="live-check")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="shelfwise-sim-live-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # the history ends yesterday: the server weighs it by its age relative to the events the
    # shoppers post now, as the simulator does relative to its day 0
    end = datetime.now(UTC) - timedelta(days=1)
    demo = DemoConfig(seed=42, n_items=args.items, n_users=args.users, days=args.history_days,
                      end=end)  # fmt: skip
    world = World.generate(demo)
    url = f"duckdb:///{work / 'live.duckdb'}"
    with open_store(url) as store:
        store.ingest(items=world.store.items, users=world.store.users, events=world.store.events)
        ensure_bundle(store, work / "artifacts")
    key, key_id = make_key(url, "read,write,admin", "simulate_live")
    port = _free_port()
    proc = start_server(url, work / "artifacts", port, workers=1)
    prepared = time.perf_counter() - t0
    try:
        base = f"http://127.0.0.1:{port}"
        variants = [{"name": "tfidf", "model": "tfidf"}, {"name": "knn", "model": "itemknn"}]
        experiment = {"experiment_id": args.salt, "salt": args.salt, "variants": variants}
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as admin:
            created = admin.post("/v1/experiments", json=experiment)
            created.raise_for_status()
        # both arms ask for the server's default: the experiment decides what each shopper sees
        driver = HttpDriver.connect(
            world, {"tfidf": "default", "knn": "default"}, base, key, concurrency=4, clock="now"
        )
        driver.check()
        t1 = time.perf_counter()
        http_result = simulate(world, driver, ["tfidf", "knn"], days=args.days, seed=1,
                               salt=args.salt, progress=True)  # fmt: skip
        driver.close()
        http_seconds = time.perf_counter() - t1
        with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as admin:
            live = admin.get(f"/v1/experiments/{args.salt}/results").json()
    finally:
        stop_server(proc)
        revoke_key(url, key_id)

    arms = {"tfidf": "tfidf", "knn": "default"}  # default: ItemKNN with the bundle's parameters
    offline = library_driver(world, arms)  # histories weighted by recency like the server
    predicted = report(simulate(world, offline, ["tfidf", "knn"], days=args.days, seed=2,
                                salt=args.salt))  # fmt: skip
    recorded = report(http_result)

    checks: dict[str, Any] = {}
    live_comparisons = {c["metric"]: c for c in live.get("comparisons", [])}
    for live_metric, sim_metric in SAME_METRIC.items():
        lc = live_comparisons.get(live_metric)
        sim = _lift(predicted["comparisons"], sim_metric)
        rec = _lift(recorded["comparisons"], sim_metric)
        lo, hi = sim["lift_ci95"]
        lift = None if lc is None else lc.get("lift")
        checks[live_metric] = {
            "live_lift": lift,
            "live_lift_ci95": None if lc is None else lc.get("lift_ci95"),
            "live_p_value": None if lc is None else lc.get("p_value"),
            "simulator_metric": sim_metric,
            "simulated_lift": sim["lift"],
            "simulated_lift_ci95": [lo, hi],
            "recorded_lift_of_the_http_run": rec["lift"],
            "live_within_simulated_interval": None if lift is None else bool(lo <= lift <= hi),
        }
    out = {
        "benchmark": "simulate_live",
        "setup": {
            "demo": {
                "seed": 42,
                "items": args.items,
                "users": args.users,
                "days": args.history_days,
            },
            "test_days": args.days,
            "salt": args.salt,
            "experiment": experiment,
            "server": "shelfwise serve, 1 worker, DuckDB",
        },
        "checks": checks,
        "live_results": live,
        "simulated": {"policies": predicted["policies"]},
        "recorded_http_run": {"policies": recorded["policies"]},
        "http": {
            "requests": driver.requests,
            "events_posted": driver.posted,
            "request_ids": driver.request_ids_seen,
            "seconds": round(http_seconds, 1),
        },
        "prepare_seconds": round(prepared, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps(checks, indent=2))
    print(f"wrote {args.out}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
