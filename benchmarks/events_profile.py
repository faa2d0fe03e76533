"""Where one single-event `POST /v1/events` spends its time, with `--stored` events stored.

Two parts, on the store `events_load.py` fills (`--workdir`, reused):

1. The HTTP process. The API runs in this process (uvicorn on 127.0.0.1, production
   settings: API keys on, the request carries a `write` key) with cProfile on its event
   loop thread, while a client process posts `--requests` single events one after the
   other. The profile's own time is summed by package and by stage (HTTP parsing, routing
   and dependencies, auth, JSON parsing and validation, the hand-off to the writer, the
   ack's rendering, the middleware), per request.
2. The writer's database work, per group commit: `Store.append_event_records` for groups
   of 1 and 16 single events, CPU time of each part (lookup, insert, commit) from
   perf_counter / process_time spans around the store's statements.

    python benchmarks/events_profile.py                   # 1.3M stored, DuckDB
    python benchmarks/events_profile.py --stored 100000   # quicker

Writes benchmarks/results/events_profile.json (or `--out`) and prints both tables.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events_load import free_port, prepare  # the benchmarks folder is on sys.path
from load_test import make_key, revoke_key
from startup import machine

ROOT = Path(__file__).resolve().parents[1]

#: (stage, substrings of a profiled function's file path or name), first match wins.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("idle: waiting in epoll", ("select.epoll",)),
    ("this profiler's watcher task", ("events_profile.py",)),
    (
        "http parsing and writing (uvicorn, h11, httptools)",
        ("/h11/", "uvicorn/protocols", "httptools"),
    ),
    ("auth (key check, rate limit)", ("serve/security.py", "serve/deps.py", "fastapi/security")),
    ("json and pydantic validation", ("pydantic", "json/", "serve/schemas.py", "data/schemas.py")),
    ("hand-off to the writer and back", ("serve/writer.py", "concurrent/futures", "futures.py")),
    ("the events route and fast lane", ("routers/events.py", "serve/fastlane.py")),
    ("routing, dependencies, rendering (fastapi, starlette)", ("fastapi/", "starlette/")),
    ("middleware, metrics, access log", ("serve/middleware.py", "prometheus_client", "logging/")),
    ("event loop (asyncio, uvloop)", ("asyncio/", "uvloop")),
)


def stage_of(path: str) -> str:
    for stage, needles in STAGES:
        if any(n in path for n in needles):
            return stage
    return "other"


# ---- part 1: the HTTP process ---------------------------------------------------------------


def client_process(port: int, key: str, n: int, clients: int = 1) -> list[float]:
    """Post `n` single events from `clients` concurrent keep-alive clients (each waits for
    its answer before the next) in a fresh Python process; the latencies."""
    code = f"""
import asyncio, json, sys, time, uuid
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
from events_load import _client
out = {{"latencies": [], "acked": 0, "errors": 0}}
async def main():
    deadline = time.perf_counter() + 600
    tag = uuid.uuid4().hex[:8]
    tasks = [
        asyncio.ensure_future(
            _client({port}, {key!r}, f"prof-{{tag}}-{{c}}", 1, 50000, deadline, out)
        )
        for c in range({clients})
    ]
    while len(out["latencies"]) < {n} and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
asyncio.run(main())
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=900, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if out["errors"]:
        raise SystemExit(f"{out['errors']} requests failed")
    return [float(x) for x in out["latencies"]]


def profile_http(url: str, artifacts: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Serve in this process with cProfile on the loop thread; per-request stage times."""
    import uvicorn

    from shelfwise.serve import create_app
    from shelfwise.settings import Settings

    key, key_id = make_key(url, "write", "events profile")
    os.environ.update({"SHELFWISE_SERVE__RATE_LIMIT": "0"})
    settings = Settings().with_(store={"url": url}, paths={"artifacts": artifacts})
    app = create_app(settings=settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    config.load()  # resolves http="auto" (httptools where installed), as `serve` does
    server = uvicorn.Server(config)
    profile = cProfile.Profile()
    box: dict[str, Any] = {}

    def run() -> None:  # on the event loop `shelfwise serve` gets (uvloop where installed)
        factory = config.get_loop_factory()
        with asyncio.Runner(loop_factory=factory) as runner:
            box["loop"] = type(runner.get_loop()).__module__
            runner.run(serve_profiled(server, profile, box))

    thread = threading.Thread(target=run, name="uvicorn")
    thread.start()
    while not server.started:
        time.sleep(0.1)
    import httpx

    while httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=30).status_code != 200:
        time.sleep(0.5)
    client_process(port, key, 50)  # warm: first requests, caches
    levels = {}
    for clients in args.clients:
        cpu0, load0 = time.process_time(), os.getloadavg()[0]
        plain = client_process(port, key, args.requests, clients)  # not profiled: the CPU
        cpu = time.process_time() - cpu0
        profile.clear()
        box["on"] = True
        latencies = client_process(port, key, args.requests, clients)
        box["on"] = False
        time.sleep(0.05)
        level = summarise_profile(profile, latencies)
        level["unprofiled"] = {
            "requests": len(plain),
            "p50_ms": round(1000 * statistics.median(plain), 3),
            "p99_ms": round(1000 * sorted(plain)[int(0.99 * (len(plain) - 1))], 3),
            "process_cpu_ms_per_request": round(1000 * cpu / len(plain), 3),
            "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
        }
        levels[f"clients_{clients}"] = level
    report: dict[str, Any] = dict(levels)
    report["event_loop"] = box.get("loop", "?")
    report["http_protocol"] = getattr(config.http_protocol_class, "__module__", "?")
    server.should_exit = True
    thread.join(60)
    revoke_key(url, key_id)
    return report


def summarise_profile(profile: cProfile.Profile, latencies: list[float]) -> dict[str, Any]:
    """Per-request figures of one profiled level: latency, CPU, profiled time by stage."""
    n = len(latencies)
    stats = pstats.Stats(profile)
    by_stage: dict[str, float] = defaultdict(float)
    by_function: list[tuple[float, float, str]] = []
    for (path, line, name), (_cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_stage[stage_of(f"{path}:{name}")] += tt
        by_function.append((tt, ct, f"{path.replace(str(ROOT), '.')}:{line}({name})"))
    by_function.sort(reverse=True)
    idle = sum(v for k, v in by_stage.items() if k.startswith(("idle", "this profiler")))
    busy = sum(by_stage.values()) - idle
    return {
        "requests": n,
        "profiled_latency_ms": {
            "p50": round(1000 * statistics.median(latencies), 3),
            "p99": round(1000 * sorted(latencies)[int(0.99 * (n - 1))], 3),
        },
        "loop_thread_busy_ms_per_request": round(1000 * busy / n, 3),
        "loop_thread_ms_per_request_by_stage": {
            k: round(1000 * v / n, 3) for k, v in sorted(by_stage.items(), key=lambda kv: -kv[1])
        },
        "top_functions_self_ms_per_request": [
            {"function": f, "self_ms": round(1000 * tt / n, 4), "cum_ms": round(1000 * ct / n, 4)}
            for tt, ct, f in by_function[:25]
        ],
        "note": "cProfile on the event loop thread only (the writer thread's database work is "
        "part 2); cProfile's own overhead inflates the Python-heavy stages; 'other' holds "
        "waits for the interpreter lock (SimpleQueue.put, socket.send) while the writer "
        "thread runs",
    }


async def serve_profiled(server: Any, profile: cProfile.Profile, box: dict[str, Any]) -> None:
    """Run the uvicorn server; profile the loop while `box["on"]` (a watcher task)."""

    async def watch() -> None:
        profiling = False
        while not server.should_exit:
            if box.get("on") and not profiling:
                profile.enable()
                profiling = True
            elif not box.get("on") and profiling:
                profile.disable()
                profiling = False
            await asyncio.sleep(0.005)
        if profiling:
            profile.disable()

    watcher = asyncio.ensure_future(watch())
    await server.serve()
    await watcher


# ---- part 2: the writer's database work -----------------------------------------------------


def profile_store(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """CPU per group commit and per part, from spans around the store's statements."""
    from shelfwise.data.schemas import Event
    from shelfwise.store import open_store

    out: dict[str, Any] = {}
    with open_store(url) as store:
        spans: dict[str, list[float]] = defaultdict(list)
        names = {"_begin": "begin", "_commit": "commit", "_execute": "execute"}
        originals = {n: getattr(store, n) for n in (*names, "_fetchall")}

        def timed(name: str) -> Any:
            fn = originals[name]

            def wrapper(*a: Any, **k: Any) -> Any:
                c = time.process_time()
                try:
                    return fn(*a, **k)
                finally:
                    sql = str(a[0]) if a else ""
                    label = names.get(name) or ("select" if sql.startswith("SELECT") else "update")
                    if sql.startswith("INSERT INTO events"):
                        label = "insert events"
                    elif "next_seq" in sql or "revision" in sql:
                        label = "meta counters"
                    elif " UNION ALL " in sql or "IN (" in sql:
                        label = "lookup ids and users"
                    spans[label].append(time.process_time() - c)

            return wrapper

        for name in originals:  # spans around the backend hooks of this one object
            setattr(store, name, timed(name))
        for group in (1, 16):
            spans.clear()
            cpu: list[float] = []
            wall: list[float] = []
            for r in range(args.groups):
                events = [
                    Event(
                        event_id=f"prof-{uuid.uuid4().hex}",
                        user_id=f"U{(r * group + j) % args.users:06d}",
                        item_id="I000001",
                        type="view",
                        timestamp=datetime.now(UTC),
                    )
                    for j in range(group)
                ]
                w, c = time.perf_counter(), time.process_time()
                store.append_event_records(events, [1] * group)
                wall.append(time.perf_counter() - w)
                cpu.append(time.process_time() - c)
            out[f"group_of_{group}"] = {
                "cpu_ms_per_group": round(1000 * statistics.median(cpu), 3),
                "wall_ms_per_group": round(1000 * statistics.median(wall), 3),
                "cpu_ms_per_event": round(1000 * statistics.median(cpu) / group, 3),
                "cpu_ms_by_part": {
                    k: round(1000 * sum(v) / args.groups, 3) for k, v in sorted(spans.items())
                },
            }
    return out


def main() -> None:
    """Parse arguments, run both parts, write the JSON report and print it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=1_300_000)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=1000, help="profiled requests a level")
    parser.add_argument("--clients", default="1,16", help="concurrent clients, one level each")
    parser.add_argument("--groups", type=int, default=60, help="group commits per size")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-events")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/events_profile.json")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    work = args.workdir / f"stored-{args.stored}"
    work.mkdir(parents=True, exist_ok=True)
    url = f"duckdb:///{work / 'events.duckdb'}"
    info = prepare(url, work / "artifacts-duckdb", args)
    load = [round(os.getloadavg()[0], 2)]
    http = profile_http(url, work / "artifacts-duckdb", args)
    load.append(round(os.getloadavg()[0], 2))
    store = profile_store(url, args)
    load.append(round(os.getloadavg()[0], 2))
    report = {
        "benchmark": "events_profile",
        "command": " ".join(["python", "benchmarks/events_profile.py", *sys.argv[1:]]),
        "machine": machine(),
        "load_avg_1m": load,
        **info,
        "http_process": http,
        "writer_store_work": store,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
