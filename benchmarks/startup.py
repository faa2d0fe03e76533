"""Server start-up on the last good bundle: `shelfwise serve` as a user runs it, timed from
the process start to the first 200 of `/readyz` and to the first successful search.

    .venv/bin/python benchmarks/startup.py [--items 5000|100000] [--repeat 5]

The demo store (`shelfwise demo`'s generator: 5,000 items by default, 2,000 shoppers, 90
days) is ingested into a DuckDB file and its bundle built once (kept under
`var/bench-startup/`, reused by later runs). Then the store moves on, as it does in
production: 1,000 more events and 10 new catalogue items arrive after the build (whenever
the bundle is up to date), so the store's fingerprint no longer matches the bundle's.
Each repeat starts `python -m shelfwise serve --no-auth` on a free 127.0.0.1 port over
the same store and registry, polls `/readyz` every 20 ms (200 only after the warm-up:
search service prepared, one search, autocomplete, recommendation, similar and
bought-together answer), sends one `GET /v1/search?q=...`, one recommendations and one
similar-items request, a search for a new item, and stops the server. Nothing is rebuilt
(checked: the registry holds the same versions after the run). Reports the median and the
spread over the repeats; writes `benchmarks/results/startup.json` (`startup-<items>.json`
for other sizes).

The first start after a build reads the whole event log and saves the event replica
(`<artifacts>/replica.npz`); later starts read that snapshot and tail only the newer
events, so the first repeat can be slower than the rest.

Each start also reports where its time went, from the server's own log: `bundle_s` (the
registry's active bundle loaded and the engine wired, `serve.warmup.Readiness`), each
warm-up step, and `before_lifespan_s`, the rest (the interpreter, imports, the app).
`--store URL --artifacts DIR` starts on an existing store and registry instead (the load
test's 100,000-item store: `--store duckdb:///var/loadtest/store.duckdb --artifacts
var/loadtest/artifacts`). `--profile` makes one start in this process under cProfile
(import time of the server, then the bundle load and the warm-up) and prints the functions
that take the most cumulative time.
"""

from __future__ import annotations

import argparse
import ast
import cProfile
import io
import json
import os
import platform
import pstats
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from shelfwise.artifacts import Registry, ensure_bundle
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.store import Store, open_store

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "startup.json"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(
    work: Path, items: int, url: str | None = None, registry: Path | None = None
) -> tuple[str, Path, str, str]:
    """(store URL, registry, a query, a user id), building what is missing; `url` and
    `registry` name an existing store and its registry instead of the demo's under `work`."""
    if url is None or registry is None:
        work.mkdir(parents=True, exist_ok=True)
        url = f"duckdb:///{work / f'demo-{items}.duckdb'}"
        registry = work / f"artifacts-{items}"
    config = DemoConfig(n_items=items)
    with open_store(url) as store:
        if store.counts()["items"] == 0:
            demo = generate(config, progress=True)
            store.ingest(items=demo.items, users=demo.users, events=demo.events)
        t0 = time.perf_counter()
        bundle, built = ensure_bundle(store, registry, reuse_stale=True)
        if built:
            print(f"built the bundle in {time.perf_counter() - t0:.1f}s", flush=True)
        fresh = bundle.fingerprint == store.fingerprint()
        if fresh or not any(i.startswith(NEW_ITEM_PREFIX) for i in store.item_ids()):
            _move_on(store)  # (a store shared with the load test moved on without new items)
        events = store.events(types=["search"], limit=1)
        query = str(events["query"].dropna().iloc[0]) if len(events) else "shirt"
        user = str(store.events(limit=1)["user_id"].iloc[0])
    return url, registry, query, user


NEW_ITEM_PREFIX = "BENCH-NEW-"


def _move_on(store: Store) -> None:
    """1,000 events and 10 items arrive after the bundle was built (new ids each time)."""
    batch = sum(i.startswith(NEW_ITEM_PREFIX) for i in store.item_ids()) // 10
    items = store.items().head(10).copy()
    items["item_id"] = [f"{NEW_ITEM_PREFIX}{batch}-{i}" for i in range(len(items))]
    items["title"] = [f"Zyxwq Gadget {i}" for i in range(len(items))]
    events = store.events(newest_first=True, limit=1000).drop(columns=["seq"])
    events["event_id"] = [f"bench-late-{batch}-{i}" for i in range(len(events))]
    store.ingest(items=items, events=events)


def _one_start(url: str, registry: Path, query: str, user: str, item: str) -> dict[str, float]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "shelfwise", "serve", "--store", url, "--artifacts",
        str(registry), "--host", "127.0.0.1", "--port", str(port), "--no-auth",
    ]  # fmt: skip
    env = {**os.environ, "SHELFWISE_SERVE__REFRESH_SECONDS": "0"}
    log_path = Path(tempfile.mkdtemp(prefix="shelfwise-startup-")) / "serve.log"
    t0 = time.perf_counter()
    with log_path.open("w") as sink:  # the server keeps its own copy of the descriptor
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, env=env)
    out: dict[str, float] = {}
    try:
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() - t0 < 300:
                if proc.poll() is not None:
                    err = log_path.read_text()
                    raise RuntimeError(f"the server exited with {proc.returncode}: {err[-2000:]}")
                try:
                    if client.get(f"{base}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.02)
            out["ready_s"] = time.perf_counter() - t0
            # CPU the server used until ready: on a shared machine, what the wall time would
            # be with a core to itself (less the I/O waits)
            times = psutil.Process(proc.pid).cpu_times()
            out["ready_cpu_s"] = times.user + times.system
            r = client.get(f"{base}/v1/search", params={"q": query})
            r.raise_for_status()
            out["first_search_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            client.get(f"{base}/v1/users/{user}/recommendations").raise_for_status()
            out["first_recommendations_ms"] = (time.perf_counter() - t1) * 1000
            t1 = time.perf_counter()
            client.get(f"{base}/v1/items/{item}/similar").raise_for_status()
            out["first_similar_ms"] = (time.perf_counter() - t1) * 1000
            t1 = time.perf_counter()
            client.get(f"{base}/v1/search", params={"q": query}).raise_for_status()
            out["second_search_ms"] = (time.perf_counter() - t1) * 1000
            new = client.get(f"{base}/v1/search", params={"q": "zyxwq gadget"}).json()
            if not any(i["item_id"].startswith(NEW_ITEM_PREFIX) for i in new["items"]):
                raise RuntimeError("an item added after the build is not searchable")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        text = log_path.read_text(errors="replace")
        log_path.unlink()
        log_path.parent.rmdir()
    out.update(phases(text, out.get("ready_s")))
    return out


WARMED = re.compile(r"warmed up in [0-9.]+s: (\{.*\})")


def phases(server_log: str, ready_s: float | None) -> dict[str, float]:
    """Where a start's time went, from the server log's warm-up line (the timings of
    `serve.warmup.Readiness`): `bundle_s`, `warm_<step>_s`, and `before_lifespan_s`, what
    is left of `ready_s` (interpreter, imports, app, the 20 ms polling)."""
    match = WARMED.search(server_log)
    if not match:
        return {}
    seconds: dict[str, float] = ast.literal_eval(match.group(1))
    out = {("bundle_s" if k == "bundle" else f"warm_{k}_s"): float(v) for k, v in seconds.items()}
    if ready_s is not None:
        out["before_lifespan_s"] = ready_s - sum(seconds.values())
    return out


def profile_start(url: str, registry: Path, top: int = 30) -> str:
    """One start in this process: the import time of the server module, then the bundle
    load, the services and the warm-up under cProfile; the top functions by cumulative time."""
    t0 = time.perf_counter()
    from shelfwise.serve import app as server
    from shelfwise.serve.middleware import Metrics
    from shelfwise.serve.warmup import Readiness, warm_up
    from shelfwise.settings import Settings

    imported = time.perf_counter() - t0
    settings = Settings().with_(
        store={"url": url}, paths={"artifacts": registry}, serve={"auth": False}
    )
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    store, engine = server._open_engine(settings)
    bundle_s = time.perf_counter() - t0
    server.build_services(engine, settings, Metrics())
    readiness = Readiness()
    readiness.done("bundle", bundle_s)
    warm_up(engine, settings, readiness)
    profiler.disable()
    store.close()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    head = (
        f"import shelfwise.serve.app: {imported:.2f}s; bundle + engine: {bundle_s:.2f}s; "
        f"steps: {readiness.seconds}\n"
    )
    return head + text.getvalue()


def machine() -> dict[str, Any]:
    """Python version, CPUs and the 1-minute load average while the benchmark ran."""
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench-startup")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--store", default=None, help="an existing store's URL (with --artifacts)")
    parser.add_argument("--artifacts", type=Path, default=None, help="its registry")
    parser.add_argument(
        "--profile", action="store_true", help="one start in this process under cProfile"
    )
    args = parser.parse_args()
    if (args.store is None) != (args.artifacts is None):
        parser.error("--store and --artifacts go together")
    if args.out is None:
        suffix = "" if args.items == 5000 else f"-{args.items}"
        args.out = RESULTS.with_name(f"startup{suffix}.json")
    url, registry, query, user = _prepare(args.work, args.items, args.store, args.artifacts)
    if args.profile:
        print(profile_start(url, registry))
        return
    with open_store(url) as store:
        item = str(store.items().iloc[0]["item_id"])
    versions = [v.version for v in Registry(registry).versions()]
    runs = []
    for i in range(args.repeat):
        run = _one_start(url, registry, query, user, item)
        runs.append(run)
        print(
            f"start {i + 1}/{args.repeat}: ready {run['ready_s']:.2f}s, first search "
            f"{run['first_search_s']:.2f}s",
            flush=True,
        )
    if [v.version for v in Registry(registry).versions()] != versions:
        raise RuntimeError("the server built a bundle: it must start on the last good one")
    report: dict[str, Any] = {
        "benchmark": "startup",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "items": args.items,
        "repeats": args.repeat,
        "target": "under 10 s from process start to the first search at 100k items, on the "
        "last good bundle with events and items that arrived after it was built",
        "stale_bundle": True,
        "summary": {
            key: _summary([r[key] for r in runs if key in r])
            for key in sorted({k for r in runs for k in r})
        },
        "runs": [{k: round(v, 3) for k, v in r.items()} for r in runs],
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
