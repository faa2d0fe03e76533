"""Serving while background jobs run: request latency with a full job queue, against idle.

    .venv/bin/python benchmarks/jobs.py [--items 2000] [--jobs 8] [--seconds 20]

The demo store (`shelfwise demo`'s generator, `--items` items) is ingested into a DuckDB
file and its bundle built once (kept under `var/bench-jobs/`). `python -m shelfwise serve
--no-auth` then starts over it with `SHELFWISE_MAX_QUEUED_JOBS=--jobs`, and a client sends
`GET /v1/users/{id}/recommendations` and `GET /v1/search` back to back for `--seconds`
with no job (idle), then again right after queueing `--jobs` + 1 train jobs (one runs, the
rest fill the queue; one more POST must be answered 429). Every job is cancelled at the
end. Reports request latency (median, p95, max, in ms) of both phases and what the job
POSTs were answered; writes `benchmarks/results/jobs.json`. The issue's failure was about
20 queued jobs stalling the API for 30 s: the target is no request over 1 s while jobs run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from shelfwise.artifacts import ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.store import open_store
from startup import _free_port, machine  # the benchmarks folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "jobs.json"


def _prepare(work: Path, items: int) -> tuple[str, Path, str, str]:
    """(store URL, registry, a query, a user id), building what is missing."""
    work.mkdir(parents=True, exist_ok=True)
    url = f"duckdb:///{work / f'demo-{items}.duckdb'}"
    registry = work / f"artifacts-{items}"
    with open_store(url) as store:
        if store.counts()["items"] == 0:
            demo = generate(DemoConfig(n_items=items, n_users=max(200, items // 2)))
            store.ingest(items=demo.items, users=demo.users, events=demo.events)
        ensure_bundle(store, registry)
        events = store.events(types=["search"])
        query = str(events["query"].dropna().iloc[0]) if len(events) else "shirt"
        user = str(store.events()["user_id"].iloc[0])
    return url, registry, query, user


def _latencies(
    client: httpx.Client, base: str, query: str, user: str, seconds: float
) -> list[float]:
    out = []
    end = time.perf_counter() + seconds
    paths = [(f"{base}/v1/users/{user}/recommendations", {}), (f"{base}/v1/search", {"q": query})]
    i = 0
    while time.perf_counter() < end:
        path, params = paths[i % 2]
        t0 = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
        i += 1
    return out


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "requests": len(values),
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=8, help="serve.max_queued_jobs")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench-jobs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    url, registry, query, user = _prepare(args.work, args.items)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "shelfwise", "serve", "--store", url, "--artifacts",
        str(registry), "--host", "127.0.0.1", "--port", str(port), "--no-auth",
    ]  # fmt: skip
    env = {
        **os.environ,
        "SHELFWISE_SERVE__REFRESH_SECONDS": "0",
        "SHELFWISE_SERVE__RATE_LIMIT": "0",
        "SHELFWISE_SERVE__MAX_QUEUED_JOBS": str(args.jobs),
    }
    log_file = (args.work / "server.log").open("w")  # a pipe never read would fill and block
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file, env=env)
    try:
        with httpx.Client(timeout=120) as client:
            deadline = time.perf_counter() + 300
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    err = (args.work / "server.log").read_text()
                    raise RuntimeError(f"the server exited with {proc.returncode}: {err[-2000:]}")
                try:
                    if client.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
            _latencies(client, base, query, user, 2.0)  # warm up
            idle = _latencies(client, base, query, user, args.seconds)
            answers: list[int] = []
            ids: list[str] = []
            for _ in range(args.jobs + 2):
                r = client.post(f"{base}/v1/jobs", json={"kind": "train", "activate": False})
                answers.append(r.status_code)
                if r.status_code == 202:
                    ids.append(r.json()["job_id"])
                time.sleep(0.2)  # the first is taken off the queue before the queue fills
            busy = _latencies(client, base, query, user, args.seconds)
            states = [client.get(f"{base}/v1/jobs/{i}").json() for i in ids]
            for i in ids:
                client.post(f"{base}/v1/jobs/{i}/cancel")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()
    report: dict[str, Any] = {
        "benchmark": "jobs",
        "command": (
            f"python benchmarks/jobs.py --items {args.items} --jobs {args.jobs} "
            f"--seconds {args.seconds:g}"
        ),
        "target": "no request over 1 s while a full queue of train jobs runs",
        "idle": _summary(idle),
        "with_jobs": _summary(busy),
        "job_posts": answers,
        "job_states_after": [s["status"] for s in states],
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("idle", "with_jobs", "job_posts")}, indent=2))


if __name__ == "__main__":
    main()
