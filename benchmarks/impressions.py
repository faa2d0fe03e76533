"""What logging impressions costs: the request path's share, and the writer's throughput.

1. `served` (what a handler calls for every list it answers: a request id, exploration when
   the variant explores, the impression queued) timed alone, for 10-item lists, with and
   without an experiment deciding the variant;
2. the writer: how many impressions per second the background thread stores into a DuckDB
   file (batches of up to 2,000 rows), from a queue filled at once;
3. end to end: p50 / p99 of GET /v1/users/{id}/recommendations on a small demo store
   through the app (TestClient, in process), each answer logged as an impression, and
   whether the log kept up (nothing dropped, everything stored).

    python benchmarks/impressions.py                  # about a minute
    python benchmarks/impressions.py --calls 5000 --requests 500

Writes benchmarks/results/impressions.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.artifacts import ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.experiments.assignment import ExperimentSpec
from shelfwise.experiments.impressions import Impression, ImpressionLog, new_request_id
from shelfwise.experiments.live import LiveExperiments
from shelfwise.store import open_store
from startup import machine  # the benchmarks folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("impressions")


def _percentiles(seconds: list[float]) -> dict[str, float]:
    us = np.asarray(seconds) * 1e6
    return {
        "p50_us": round(float(np.percentile(us, 50)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
        "mean_us": round(float(us.mean()), 1),
    }


def time_served(work: Path, calls: int) -> dict[str, Any]:
    """The request path's cost of `LiveExperiments.served`, without and with a decision."""
    out: dict[str, Any] = {"calls": calls}
    with open_store(f"duckdb:///{work / 'served.duckdb'}") as store:
        live = LiveExperiments(store, seed=0)
        spec = ExperimentSpec.model_validate(
            {
                "experiment_id": "bench",
                "variants": [
                    {"name": "a"},
                    {"name": "b", "exploration": {"kind": "epsilon", "epsilon": 0.1}},
                ],
            }
        )
        live.create(spec)
        items = [f"SKU-{i:06d}" for i in range(10)]
        for label, decide in (("plain", False), ("experiment_and_exploration", True)):
            times = []
            for i in range(calls):
                user = f"user-{i}"
                t0 = time.perf_counter()
                decision = live.decide(user, "recommendations") if decide else None
                live.served("recommendations", items, items, user, decision, policy="bench")
                times.append(time.perf_counter() - t0)
            out[label] = _percentiles(times)
        live.log.flush(120)
        out["stored"] = len(store.impressions())
        live.close()
    return out


def writer_throughput(work: Path, n: int) -> dict[str, Any]:
    """Impressions per second the writer thread stores into a DuckDB file."""
    with open_store(f"duckdb:///{work / 'writer.duckdb'}") as store:
        impressions = [
            Impression(new_request_id(), "search", [f"SKU-{j:06d}" for j in range(20)], "u", "q")
            for _ in range(n)
        ]
        writer = ImpressionLog(store, flush_seconds=0.5, max_rows=2000, max_queue=n + 1)
        t0 = time.perf_counter()
        for imp in impressions:
            writer.log(imp)
        queued = time.perf_counter() - t0
        writer.flush(600)
        seconds = time.perf_counter() - t0
        stored = len(store.impressions())
        writer.close()
    return {
        "impressions": n,
        "items_per_list": 20,
        "queue_seconds": round(queued, 3),
        "total_seconds": round(seconds, 3),
        "per_second": round(n / seconds),
        "stored": stored,
    }


def end_to_end(work: Path, requests: int) -> dict[str, Any]:
    """p50 / p99 of recommendations through the app, every answer logged."""
    from fastapi.testclient import TestClient

    from shelfwise.serve import create_app
    from shelfwise.serve.measure import experiments_of
    from shelfwise.serving import Engine
    from shelfwise.settings import ServeSettings, Settings

    demo = generate(DemoConfig(seed=11, n_items=600, n_users=300, days=45))
    store = open_store(f"duckdb:///{work / 'demo.duckdb'}")
    try:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
        bundle, _ = ensure_bundle(store, work / "artifacts")
        engine = Engine(store, bundle)
        users = demo.users["user_id"].astype(str).tolist()
        settings = Settings(serve=ServeSettings(auth=False, rate_limit=0))
        with TestClient(create_app(engine, settings)) as client:
            for u in users[:50]:  # warm caches
                client.get(f"/v1/users/{u}/recommendations", params={"k": 10})
            times = []
            for i in range(requests):
                u = users[i % len(users)]
                t0 = time.perf_counter()
                r = client.get(f"/v1/users/{u}/recommendations", params={"k": 10})
                times.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"recommendations answered {r.status_code}: {r.text}")
            live = experiments_of(client.app.state.services)  # type: ignore[attr-defined]
            live.log.flush(60)
            stored = len(store.impressions())
            dropped = live.log.dropped
        ms = np.asarray(times) * 1e3
        return {
            "requests": requests,
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "impressions_stored": stored,
            "expected_impressions": requests + 50,
            "dropped": dropped,
        }
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--writer", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/impressions.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    with tempfile.TemporaryDirectory(prefix="shelfwise-impressions-") as tmp:
        work = Path(tmp)
        log.info("timing served() over %d calls", args.calls)
        served = time_served(work, args.calls)
        log.info("writer throughput over %d impressions", args.writer)
        writer = writer_throughput(work, args.writer)
        log.info("end to end over %d requests", args.requests)
        e2e = end_to_end(work, args.requests)
    result = {
        "benchmark": "impressions",
        "machine": machine(),
        "served": served,
        "writer": writer,
        "recommendations_end_to_end": e2e,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"served(): p50 {served['plain']['p50_us']} us plain, "
        f"{served['experiment_and_exploration']['p50_us']} us with an exploring variant; "
        f"writer {writer['per_second']:,} impressions/s; recommendations p50 "
        f"{e2e['p50_ms']} ms, p99 {e2e['p99_ms']} ms, {e2e['dropped']} dropped "
        f"(load average {result['machine']['load_avg_1m']})"
    )


if __name__ == "__main__":
    main()
