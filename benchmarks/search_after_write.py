"""The next search after a catalogue write, against an ordinary search: GET /v1/search on
the demo store through the FastAPI app (TestClient, in process), lexical, with the bundle's
learned re-ranker and a shopper's history (personalised re-ranking).

    .venv/bin/python benchmarks/search_after_write.py [--writes 50] [--items 5000]

The demo store (`shelfwise demo`'s generator: 5,000 items, 2,000 shoppers, 90 days) is
ingested into a DuckDB store and a bundle built from it. Then, with a warm server:

* `ordinary`: a search with no write since the previous one;
* `after_write`: `PUT /v1/items/X` (alternately an in-place change of an existing item's
  title and price, and a new item), then the next search, timed alone.

The two kinds alternate, `--writes` of each (ordinary, PUT, after-write, ordinary, ...),
so that a busy machine slows both alike; queries and users are the demo shoppers'. The report holds
p50/p90/p99 per kind, the ratio of the p50s and p99s (target: within 2x), the PUT
latencies, and how often the re-ranker rebuilt its whole feature state during the writes
(`reranker_full_builds`, 0 expected: it follows the service's revision row by row).
Writes `benchmarks/results/search_after_write.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.artifacts import build_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.serve.app import create_app
from shelfwise.serving import Engine
from shelfwise.settings import SearchSettings, ServeSettings, Settings
from shelfwise.store import open_store

RESULTS = Path(__file__).resolve().parent / "results" / "search_after_write.json"


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=np.float64)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
        "requests": int(a.size),
    }


def _search(client: Any, query: str, user: str) -> tuple[float, dict[str, Any]]:
    params = {"q": query, "user": user, "per_page": 20}
    t0 = time.perf_counter()
    res = client.get("/v1/search", params=params)
    ms = (time.perf_counter() - t0) * 1000.0
    if res.status_code != 200:
        raise RuntimeError(f"{params}: {res.status_code} {res.text}")
    return ms, res.json()


def main() -> int:
    """Build, serve, measure and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writes", type=int, default=50, help="PUTs, each followed by a search")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--work", default="var/bench/search_after_write", help="scratch folder")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in (
        "shelfwise.serving",
        "shelfwise.artifacts",
        "shelfwise.recommenders",
        "shelfwise.access",
        "httpx",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from fastapi.testclient import TestClient

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    demo = generate(DemoConfig(seed=args.seed, n_items=args.items, n_users=args.users))
    timings["generate_s"] = round(time.perf_counter() - t0, 1)
    store = open_store(f"duckdb:///{(work / 'shop.duckdb').resolve()}")
    store.upsert_items(demo.items)
    store.append_events(demo.events)
    t0 = time.perf_counter()
    bundle = build_bundle(store, work / "artifacts", search_dense=False)
    timings["bundle_build_s"] = round(time.perf_counter() - t0, 1)
    if bundle.search_reranker is None:
        raise RuntimeError("the demo bundle has no search re-ranker: nothing to measure")

    events = demo.events
    searches = events[(events["type"] == "search") & events["query"].notna()]
    searches = searches.sample(n=3 * args.writes, random_state=args.seed, replace=True)
    pairs = list(zip(searches["query"].astype(str), searches["user_id"].astype(str), strict=True))
    items = demo.items.reset_index(drop=True)
    settings = Settings(
        serve=ServeSettings(auth=False, rate_limit=0, refresh_seconds=0),
        search=SearchSettings(mode="lexical"),
    )
    t0 = time.perf_counter()
    with TestClient(create_app(Engine(store, bundle), settings)) as client:
        timings["app_start_s"] = round(time.perf_counter() - t0, 2)
        for query, user in pairs[: args.writes]:  # warm every code path and the re-ranker
            _search(client, query, user)
        reranker = bundle.search.reranker
        builds_before = reranker.full_builds
        ordinary: list[float] = []
        after, puts, engines = [], [], set()
        plain = pairs[args.writes : 2 * args.writes]
        for n, (query, user) in enumerate(pairs[2 * args.writes :]):
            ordinary.append(_search(client, *plain[n])[0])
            row = items.iloc[(n * 97) % len(items)]
            if n % 2 == 0:  # an in-place change of an existing item
                item_id = str(row["item_id"])
                body = {"title": f"{row['title']} (v{n})", "price": float(row["price"]) + 1.0}
            else:  # a new item
                item_id = f"BENCH-{n:04d}"
                body = {"title": f"Bench Lamp {n}", "category": str(row["category"]), "price": 9.5}
            t1 = time.perf_counter()
            put = client.put(f"/v1/items/{item_id}", json=body)
            puts.append((time.perf_counter() - t1) * 1000.0)
            if put.status_code != 200:
                raise RuntimeError(f"PUT {item_id}: {put.status_code} {put.text}")
            ms, answer = _search(client, query, user)
            after.append(ms)
            engines.add(answer["engine"])
        full_builds = reranker.full_builds - builds_before
        check = client.get("/v1/search", params={"q": "Bench Lamp 1", "per_page": 50}).json()
    store.close()
    o, a = _percentiles(ordinary), _percentiles(after)
    report = {
        "benchmark": "search_after_write",
        "items": len(items),
        "writes": args.writes,
        "ordinary": o,
        "after_write": a,
        "ratio_p50": round(a["p50_ms"] / o["p50_ms"], 2),
        "ratio_p99": round(a["p99_ms"] / o["p99_ms"], 2),
        "put": _percentiles(puts),
        "engines": sorted(engines),
        "reranker_full_builds": int(full_builds),
        "new_item_found": "BENCH-0001" in [i["item_id"] for i in check["items"]],
        "seconds": timings,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    logging.info(
        "wrote %s: %s", out, json.dumps({k: report[k] for k in ("ratio_p50", "ratio_p99")})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
