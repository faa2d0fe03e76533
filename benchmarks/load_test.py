"""Load test of the HTTP API: throughput and p50 / p99 latency of search and recommendations.

A demo store of 100,000 items and 50,000 users (the `shelfwise.data.demo` generator, scaled)
is ingested into DuckDB, the default bundle is built, and `shelfwise serve` runs on
127.0.0.1 with production settings (no reload, no access log, API keys required: the
requests carry a `read` key made for the run; one worker process, since the embedded DuckDB
store allows a single writer process; rate limiting off, so that the test measures the
service rather than the limiter). `wrk` then drives each endpoint over varied requests (real
search queries of the generated shoppers; known and unknown user ids) at increasing
concurrency, one fixed-length run per level, and the report gives the highest throughput
whose p99 latency stays under the target (50 ms).

Debian's `wrk` is closed-loop (each connection waits for its answer), so a sweep over
connections replaces a fixed request rate; the latencies are those of requests actually
sent at that throughput. Without `wrk`, a Python asyncio + httpx client does the same sweep
(slower: it needs a CPU of its own on a 2-core machine).

    python benchmarks/load_test.py                       # prepare once (minutes), then measure
    python benchmarks/load_test.py --duration 10 --connections 1,2,4,8,16

Writes benchmarks/results/load_test.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("load_test")

WRK_SCRIPT = r"""
-- Cycles through the request paths in WRK_PATHS (one per line) from a random start per thread,
-- and writes a JSON summary to WRK_OUT when done.
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local i = 0
local headers = {}
local key = os.getenv("WRK_API_KEY")
if key and key ~= "" then headers["X-API-Key"] = key end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  i = math.random(#paths)
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], headers)
end

function done(summary, latency, requests)
  local e = summary.errors
  local f = io.open(os.getenv("WRK_OUT"), "w")
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"min": %d, "mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
  f:close()
end
"""


WRK_EVENTS_SCRIPT = r"""
-- POSTs one view event per request with a fresh event_id (WRK_RUN plus a counter), for a
-- user and an item drawn from WRK_USERS / WRK_ITEMS (one id per line); summary as above.
local users, items = {}, {}
for line in io.lines(os.getenv("WRK_USERS")) do users[#users + 1] = line end
for line in io.lines(os.getenv("WRK_ITEMS")) do items[#items + 1] = line end
local run = os.getenv("WRK_RUN")
local n = 0
local headers = {["Content-Type"] = "application/json"}
local key = os.getenv("WRK_API_KEY")
if key and key ~= "" then headers["X-API-Key"] = key end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  n = n + 1
  local body = string.format(
    '{"event_id": "%s-%d", "user_id": "%s", "item_id": "%s", "type": "view"}',
    run, n, users[math.random(#users)], items[math.random(#items)])
  return wrk.format("POST", "/v1/events", headers, body)
end
""" + WRK_SCRIPT[WRK_SCRIPT.index("function done") :]


# ---- preparation ----------------------------------------------------------------------------


def prepare(args: argparse.Namespace) -> tuple[str, Path, dict[str, Any]]:
    """The store (generated + ingested once) and its bundle; returns (url, artifacts, info)."""
    from shelfwise.artifacts import ensure_bundle
    from shelfwise.data.demo import DemoConfig, generate
    from shelfwise.store import open_store

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    store_url = f"duckdb:///{(directory / 'store.duckdb').resolve()}"
    artifacts = directory / "artifacts"
    info: dict[str, Any] = {}
    with open_store(store_url) as store:
        counts = store.counts()
        # at least: the start-up benchmark adds a few items and events to a store it shares
        if counts["items"] < args.items or counts["users"] < args.users:
            if counts["items"]:
                raise SystemExit(
                    f"{store_url} holds another store ({counts}); remove {directory} first"
                )
            t0 = time.perf_counter()
            demo = generate(
                DemoConfig(seed=args.seed, n_items=args.items, n_users=args.users, days=args.days),
                progress=True,
            )
            info["generate_s"] = round(time.perf_counter() - t0, 1)
            t0 = time.perf_counter()
            store.ingest(items=demo.items, users=demo.users, events=demo.events)
            info["ingest_s"] = round(time.perf_counter() - t0, 1)
            counts = store.counts()
        t0 = time.perf_counter()
        # the last good bundle, as a server starts on it: the events scenario and the
        # start-up benchmark move the store on, which must not retrain it
        bundle, built = ensure_bundle(store, artifacts, reuse_stale=True)
        if built:
            info["build_s"] = round(time.perf_counter() - t0, 1)
        info["counts"] = counts
        info["bundle"] = bundle.manifest["version"]
        info["bundle_models"] = sorted(bundle.manifest["models"])
        write_request_files(store, directory, args.seed)
    return store_url, artifacts, info


def make_key(store_url: str, scopes: str = "read", name: str = "load test") -> tuple[str, str]:
    """An API key with `scopes` for this run: (key, key_id)."""
    from shelfwise.serve.security import create_key
    from shelfwise.store import open_store

    with open_store(store_url) as store:
        key, record = create_key(store, scopes, name)
    return key, record.key_id


def revoke_key(store_url: str, key_id: str) -> None:
    """Revoke the run's key once the server has stopped."""
    from shelfwise.store import open_store

    with open_store(store_url) as store:
        store.revoke_api_key(key_id)


def write_request_files(store: Any, directory: Path, seed: int, n: int = 5000) -> None:
    """Request paths per scenario: real shoppers' queries, known and unknown user ids."""
    rng = random.Random(seed)
    searches = store.events(types=["search"])
    queries = sorted({str(q) for q in searches["query"].dropna() if str(q).strip()})
    users = store.users()["user_id"].astype(str).tolist()
    items = store.items()["item_id"].astype(str).tolist()
    if not queries or not users:
        raise SystemExit("the store has no search events or users to build requests from")
    quote = urllib.parse.quote
    search = [f"/v1/search?q={quote(rng.choice(queries))}&k=10" for _ in range(n)]
    recs = []
    for i in range(n):
        # one request in ten is for a shopper the store has never seen (popular fallback)
        user = f"new-visitor-{i}" if rng.random() < 0.1 else rng.choice(users)
        recs.append(f"/v1/users/{quote(user)}/recommendations?k=10")
    similar = [f"/v1/items/{quote(rng.choice(items))}/similar?k=10" for _ in range(n)]
    # what a shopper has typed so far: 1 to 8 characters of a real query
    typed = [rng.choice(queries) for _ in range(n)]
    autocomplete = [
        f"/v1/autocomplete?q={quote(q[: rng.randint(1, min(8, len(q)))])}&k=8" for q in typed
    ]
    # /healthz: the HTTP stack alone (uvicorn, middleware, auth), for scale
    health = ["/healthz"] * 10
    for name, paths in (
        ("search", search),
        ("recommendations", recs),
        ("similar", similar),
        ("autocomplete", autocomplete),
        ("healthz", health),
    ):
        (directory / f"paths_{name}.txt").write_text("\n".join(paths) + "\n")
    # the search log in time order, repeats kept: what the search cache sees in a shop
    # (`search` above draws from the distinct queries, so nearly every request is new)
    logged = searches[searches["query"].notna()].sort_values("timestamp", kind="stable")
    log_paths = [f"/v1/search?q={quote(str(q))}&k=10" for q in logged["query"] if str(q).strip()]
    (directory / "paths_search_log.txt").write_text("\n".join(log_paths) + "\n")
    # the events scenario draws known users and items (its wrk script makes the bodies)
    (directory / "event_users.txt").write_text(
        "\n".join(rng.sample(users, min(5000, len(users)))) + "\n"
    )
    (directory / "event_items.txt").write_text(
        "\n".join(rng.sample(items, min(5000, len(items)))) + "\n"
    )
    # a stand-in for `paths_events.txt`, so that every scenario has a request file
    (directory / "paths_events.txt").write_text("/v1/events\n")


# ---- server ---------------------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    store_url: str,
    artifacts: Path,
    port: int,
    workers: int,
    ready_within: float = 300,
    env_extra: dict[str, str] | None = None,
    args_extra: tuple[str, ...] = (),
) -> subprocess.Popen[str]:
    """`shelfwise serve` in its own process group; waits (up to `ready_within` seconds)
    until /readyz answers. `env_extra` overrides settings (e.g. the rate limit), and
    `args_extra` are further `shelfwise serve` options (e.g. `--no-auth`)."""
    env = {
        **os.environ,
        "SHELFWISE_SERVE__RATE_LIMIT": "0",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        **(env_extra or {}),
    }
    cmd = [
        sys.executable,
        "-m",
        "shelfwise",
        "serve",
        "--store",
        store_url,
        "--artifacts",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    cmd += list(args_extra)
    log.info("starting %s", " ".join(cmd))
    logfile = Path(tempfile.mkdtemp(prefix="shelfwise-load-")) / "serve.log"
    with logfile.open("w") as sink:
        proc = subprocess.Popen(
            cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
    log.info("server log: %s", logfile)
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = logfile.read_text()[-3000:]
            raise SystemExit(f"server exited with {proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"server did not become ready within {ready_within:.0f} s")


def stop_server(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the server's process group, then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# ---- load generators ------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its descendants (the server's workers)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def children_cpu_seconds() -> float:
    """CPU seconds of this process's finished children (wrk runs), user + system."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    base: str,
    paths: Path,
    connections: int,
    duration: int,
    script: Path,
    key: str,
    env_extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One closed-loop wrk run; the Lua script writes its summary as JSON. `client_cpu` is
    the share of one core that wrk itself used (from its rusage)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    env = {
        **os.environ,
        "WRK_PATHS": str(paths),
        "WRK_OUT": str(out_path),
        "WRK_API_KEY": key,
        **(env_extra or {}),
    }
    cmd = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        base,
    ]
    cpu0 = children_cpu_seconds()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    client_cpu = children_cpu_seconds() - cpu0
    raw = json.loads(out_path.read_text())
    out_path.unlink()
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    lat = raw["latency_us"]
    return {
        "connections": connections,
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "rps": round(raw["requests"] / seconds, 1),
        "errors": errors,
        "error_detail": raw["errors"],
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "mean_ms": round(lat["mean"] / 1000, 2),
        "ok_rps": round((raw["requests"] - raw["errors"]["status"]) / seconds, 1),
        "client_cpu": round(client_cpu / seconds, 3),
    }


async def _httpx_run(
    base: str, paths: list[str], connections: int, duration: float, key: str
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration

    async def worker(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < stop:
            i = (i + 1) % len(paths)
            t0 = time.perf_counter()
            try:
                r = await client.get(paths[i])
                if r.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    started = time.perf_counter()
    cpu0 = time.process_time()
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=5.0, headers=headers
    ) as client:
        await asyncio.gather(
            *(worker(client, random.randrange(len(paths))) for _ in range(connections))
        )
    seconds = time.perf_counter() - started
    return closed_loop_summary(connections, latencies, errors, seconds, time.process_time() - cpu0)


def closed_loop_summary(
    connections: int, latencies: list[float], errors: int, seconds: float, cpu_s: float
) -> dict[str, Any]:
    """One closed-loop run's figures from its latencies (seconds); `client_cpu` is the
    client's CPU seconds per wall second (1.0 = one core busy)."""
    latencies = sorted(latencies)

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "connections": connections,
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "rps": round(len(latencies) / seconds, 1),
        "ok_rps": round((len(latencies) - errors) / seconds, 1),
        "errors": errors,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "client_cpu": round(cpu_s / seconds, 3),
    }


def run_threaded_httpx(
    base: str, paths: Path, connections: int, duration: int, key: str, pooled: bool
) -> dict[str, Any]:
    """Closed loop with `connections` threads of synchronous httpx: one `httpx.Client` per
    thread kept open (`pooled`, keep-alive) or a new `httpx.Client` for every request (a
    new TCP connection, and the client's own set-up, each time), as scripts often do."""
    import threading

    import httpx

    lines = [p for p in paths.read_text().splitlines() if p]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.perf_counter() + duration
    headers = {"X-API-Key": key}

    def get(client: httpx.Client, path: str) -> bool:
        try:
            return client.get(path).status_code < 400
        except httpx.HTTPError:
            return False

    def worker(offset: int) -> None:
        nonlocal errors
        i = offset
        mine: list[float] = []
        bad = 0
        client = httpx.Client(base_url=base, headers=headers, timeout=5.0) if pooled else None
        while time.perf_counter() < stop:
            i = (i + 1) % len(lines)
            t0 = time.perf_counter()
            if client is not None:
                ok = get(client, lines[i])
            else:
                with httpx.Client(base_url=base, headers=headers, timeout=5.0) as once:
                    ok = get(once, lines[i])
            bad += not ok
            mine.append(time.perf_counter() - t0)
        if client is not None:
            client.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    started, cpu0 = time.perf_counter(), time.process_time()
    threads = [
        threading.Thread(target=worker, args=(random.randrange(len(lines)),))
        for _ in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    return closed_loop_summary(connections, latencies, errors, seconds, time.process_time() - cpu0)


async def _fixed_rate(
    base: str, paths: list[str], rate: float, duration: float, key: str, max_in_flight: int
) -> dict[str, Any]:
    """Open loop: request i is due at start + i / rate whatever happened before; its latency
    runs from when it was due (as wrk2 measures), so a stalled server cannot hide behind
    requests that were never sent (coordinated omission)."""
    import httpx

    latencies: list[float] = []
    errors = 0
    dropped = 0
    n = max(1, int(rate * duration))
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    in_flight = 0
    offset = random.randrange(len(paths))

    async def one(client: httpx.AsyncClient, path: str, due: float) -> None:
        nonlocal errors, in_flight
        try:
            r = await client.get(path)
            if r.status_code >= 400:
                errors += 1
        except httpx.HTTPError:
            errors += 1
        finally:
            in_flight -= 1
        latencies.append(time.perf_counter() - due)

    tasks = []
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=5.0, headers={"X-API-Key": key}
    ) as client:
        start = time.perf_counter() + 0.05
        for i in range(n):
            due = start + i / rate
            delay = due - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))  # also lets answers in when behind
            if in_flight >= max_in_flight:
                dropped += 1  # counted as an error: the server is too far behind
                continue
            in_flight += 1
            path = paths[(offset + i) % len(paths)]
            tasks.append(asyncio.create_task(one(client, path, due)))
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return float("nan")
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "rate": rate,
        "requests": len(latencies),
        "seconds": round(seconds, 2),
        "rps": round(len(latencies) / seconds, 1),
        "errors": errors + dropped,
        "dropped": dropped,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
    }


def run_fixed_rate(base: str, paths: Path, rate: float, duration: int, key: str) -> dict[str, Any]:
    """One open-loop run at `rate` requests a second (asyncio + httpx)."""
    lines = [p for p in paths.read_text().splitlines() if p]
    return asyncio.run(_fixed_rate(base, lines, rate, duration, key, max_in_flight=64))


def run_httpx(base: str, paths: Path, connections: int, duration: int, key: str) -> dict[str, Any]:
    """The same closed-loop run with an asyncio httpx client (when wrk is missing)."""
    lines = [p for p in paths.read_text().splitlines() if p]
    return asyncio.run(_httpx_run(base, lines, connections, duration, key))


ROUTES = {
    "search": "/v1/search",
    # the store's own search log replayed in time order (its repeats as shoppers made them)
    "search_log": "/v1/search",
    "recommendations": "/v1/users/{user_id}/recommendations",
    "similar": "/v1/items/{item_id}/similar",
    "autocomplete": "/v1/autocomplete",
    "events": "/v1/events",
    "healthz": "/healthz",
}


def server_time(base: str, route: str) -> tuple[float, float, float]:
    """(requests, seconds, requests <= 50 ms) the server has counted for `route` so far,
    from its Prometheus latency histogram at /metrics."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    count = total = fast = 0.0
    label = f'route="{route}"'
    for line in text.splitlines():
        if label not in line or line.startswith("#"):
            continue
        name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
        if name.endswith("_duration_seconds_count"):
            count += value
        elif name.endswith("_duration_seconds_sum"):
            total += value
        elif name.endswith("_duration_seconds_bucket") and 'le="0.05"' in line:
            fast += value
    return count, total, fast


def search_cache_counts(base: str) -> tuple[float, float]:
    """(hits, misses) of the server's search cache so far (summed over the worker that
    answered /metrics only: with several workers a share of the searches)."""
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    counts = {"hits": 0.0, "misses": 0.0}
    for line in text.splitlines():
        for name in counts:
            if line.startswith(f"shelfwise_search_cache_{name}_total "):
                counts[name] = float(line.rsplit(" ", 1)[1])
    return counts["hits"], counts["misses"]


def server_side(
    before: tuple[float, float, float], after: tuple[float, float, float]
) -> dict[str, float | None]:
    """Mean server time and share answered within 50 ms over one run (histogram deltas)."""
    n = after[0] - before[0]
    if n <= 0:
        return {"server_mean_ms": None, "server_share_le_50ms": None}
    return {
        "server_mean_ms": round((after[1] - before[1]) / n * 1000, 2),
        "server_share_le_50ms": round((after[2] - before[2]) / n, 4),
    }


def probe(base: str, paths: Path, key: str, n: int = 300) -> dict[str, Any]:
    """Status codes of the first `n` requests sent one by one, with a few non-2xx details."""
    codes: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    for path in paths.read_text().splitlines()[:n]:
        request = urllib.request.Request(base + path, headers={"X-API-Key": key})
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                status, detail = r.status, ""
        except urllib.error.HTTPError as exc:
            status, detail = exc.code, exc.read()[:300].decode("utf-8", "replace")
        codes[str(status)] = codes.get(str(status), 0) + 1
        if status >= 300 and len(examples) < 5:
            examples.append({"path": path, "status": status, "detail": detail})
    return {"codes": codes, "non_2xx_examples": examples}


# ---- main -----------------------------------------------------------------------------------


def median_run(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """One level's result: the median of each figure over its repeats (errors summed), with
    the repeats kept; on a shared machine one run's p99 can be a neighbour's hiccup."""
    if len(repeats) == 1:
        return {**repeats[0], "repeats": repeats}
    out: dict[str, Any] = dict(repeats[0])
    for key, value in repeats[0].items():
        if key in ("connections", "rate"):
            continue
        if key == "errors":
            out[key] = sum(r[key] for r in repeats)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values = [r[key] for r in repeats if isinstance(r.get(key), int | float)]
            out[key] = round(statistics.median(values), 2)
    out["p99_ms_max"] = max(r["p99_ms"] for r in repeats)
    out["repeats"] = repeats
    return out


def best_under(runs: list[dict[str, Any]], target_ms: float) -> dict[str, Any] | None:
    """The run with the highest throughput whose p99 is under the target and had no errors."""
    ok = [r for r in runs if r["p99_ms"] < target_ms and r["errors"] == 0]
    return max(ok, key=lambda r: r["rps"]) if ok else None


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (closed-loop sweep, then open-loop rates)."""
    target = report["target_p99_ms"]
    lines = [
        "| endpoint | load | req/s | p50 ms | p99 ms | errors | server mean ms | 1-min load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, body in report["results"].items():
        best = [body.get("best_under_target"), body.get("best_fixed_rate_under_target")]
        runs = [(f"{r['connections']} conn", r) for r in body["runs"]]
        runs += [(f"{r['rate']:g} req/s fixed", r) for r in body.get("fixed_rate_runs", [])]
        for label, r in runs:
            mark = "**" if any(r is b or r == b for b in best if b) else ""
            lines.append(
                f"| {scenario} | {label} | {mark}{r['rps']:.0f}{mark} | {r['p50_ms']:.1f} | "
                f"{mark}{r['p99_ms']:.1f}{mark} | {r['errors']} | "
                f"{r.get('server_mean_ms') or ''} | {r.get('load_avg_1m', '')} |"
            )
    lines.append("")
    repeat, duration = report.get("repeat", 1), report["duration_s"]
    each = f"the median of {repeat} runs of {duration} s" if repeat > 1 else f"one {duration} s run"
    lines.append(
        f"Each row is {each}. Bold: the highest throughput of each kind (closed-loop "
        f"connections, open-loop fixed rate) with p99 < {target:g} ms and no errors."
    )
    return "\n".join(lines)


class Target:
    """Where a run's requests go: the server process, its base URL, the key and the files."""

    def __init__(
        self, proc: subprocess.Popen[str], base: str, key: str, directory: Path, script: Path
    ) -> None:
        self.proc, self.base, self.key = proc, base, key
        self.directory, self.script = directory, script
        self.events_script = directory / "wrk_events.lua"
        self.events_script.write_text(WRK_EVENTS_SCRIPT)

    def wrk(self, scenario: str, connections: int, duration: int) -> dict[str, Any]:
        """One wrk run of `scenario` (the events scenario POSTs fresh events)."""
        paths = self.directory / f"paths_{scenario}.txt"
        if scenario != "events":
            return run_wrk(self.base, paths, connections, duration, self.script, self.key)
        env = {
            "WRK_USERS": str(self.directory / "event_users.txt"),
            "WRK_ITEMS": str(self.directory / "event_items.txt"),
            "WRK_RUN": f"load-{time.time_ns()}",
        }
        return run_wrk(self.base, paths, connections, duration, self.events_script, self.key, env)


def measured(target: Target, route: str, run: Any) -> dict[str, Any]:
    """`run()`'s figures plus what the server saw meanwhile: its mean time per request
    (Prometheus histogram deltas), the CPU its processes used (share of one core) and the
    1-minute load average."""
    before = server_time(target.base, route)
    cached = search_cache_counts(target.base)
    cpu0, t0 = tree_cpu_seconds(target.proc.pid), time.perf_counter()
    one: dict[str, Any] = run()
    wall = time.perf_counter() - t0
    cpu = tree_cpu_seconds(target.proc.pid) - cpu0
    hits, misses = (a - b for a, b in zip(search_cache_counts(target.base), cached, strict=True))
    if hits + misses > 0:  # searches without a user answered from the server's cache
        one["search_cache_hit_rate"] = round(hits / (hits + misses), 4)
    one["server_cpu"] = round(cpu / wall, 3)
    # CPU the server spent per request: load-independent, unlike the wall times on a
    # shared machine; 1000 / it is what one core of the server's own could answer a second
    one["server_cpu_ms_per_request"] = round(cpu / max(one["requests"], 1) * 1000, 2)
    one.update(server_side(before, server_time(target.base, route)))
    one["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return one


def sweep(
    target: Target, scenario: str, args: argparse.Namespace, levels: list[int], rates: list[float]
) -> dict[str, Any]:
    """The closed-loop levels (and open-loop rates) of one scenario, with a warm-up first."""
    route = ROUTES[scenario]
    paths = target.directory / f"paths_{scenario}.txt"
    if args.client == "wrk":  # warm-up: caches, lazily built structures, the page cache
        target.wrk(scenario, 2, 3)
    else:
        run_httpx(target.base, paths, 2, 3, target.key)
    runs = []
    for c in levels:
        repeats = []
        for _ in range(args.repeat):
            if args.client == "wrk":
                one = measured(target, route, lambda c=c: target.wrk(scenario, c, args.duration))
            else:
                one = measured(
                    target,
                    route,
                    lambda c=c: run_httpx(target.base, paths, c, args.duration, target.key),
                )
            repeats.append(one)
        run = median_run(repeats)
        runs.append(run)
        log.info(
            "%-14s c=%-3d %8.1f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d  "
            "server cpu %.2f  client cpu %.2f",
            scenario, c, run["rps"], run["p50_ms"], run["p99_ms"], run["errors"],
            run["server_cpu"], run.get("client_cpu", 0.0),
        )  # fmt: skip
    fixed = []
    for rate in rates:
        repeats = [
            measured(
                target,
                route,
                lambda rate=rate: run_fixed_rate(
                    target.base, paths, rate, args.duration, target.key
                ),
            )
            for _ in range(args.repeat)
        ]
        fixed.append(median_run(repeats))
    body: dict[str, Any] = {
        "runs": runs,
        "best_under_target": best_under(runs, args.target_p99_ms),
        "fixed_rate_runs": fixed,
        "best_fixed_rate_under_target": best_under(fixed, args.target_p99_ms),
    }
    if scenario != "events":
        body["status_probe"] = probe(target.base, paths, target.key)
    return body


#: The client variants of `--compare-clients`: (label, what it is).
CLIENTS = {
    "wrk": "wrk (C, epoll, one thread, keep-alive), its own process",
    "httpx_async_pooled": "asyncio + one httpx.AsyncClient (keep-alive pool), in this process",
    "httpx_sync_pooled": "a thread per connection, each with one httpx.Client kept open",
    "httpx_client_per_request": "a thread per connection, a new httpx.Client (and TCP "
    "connection) for every request",
}


def compare_clients(
    target: Target, scenario: str, connections: list[int], duration: int
) -> list[dict[str, Any]]:
    """The same scenario driven by each client of `CLIENTS` at each connection count."""
    route = ROUTES[scenario]
    paths = target.directory / f"paths_{scenario}.txt"
    base, key = target.base, target.key
    runners = {
        "wrk": lambda c: target.wrk(scenario, c, duration),
        "httpx_async_pooled": lambda c: run_httpx(base, paths, c, duration, key),
        "httpx_sync_pooled": lambda c: run_threaded_httpx(base, paths, c, duration, key, True),
        "httpx_client_per_request": lambda c: run_threaded_httpx(
            base, paths, c, duration, key, False
        ),
    }
    out = []
    for name, runner in runners.items():
        for c in connections:
            one = measured(target, route, lambda runner=runner, c=c: runner(c))
            one["client"] = name
            out.append(one)
            log.info(
                "%-26s c=%-3d %7.1f req/s (%7.1f ok)  p50 %6.2f  p99 %7.2f  server cpu %.2f  "
                "client cpu %.2f",
                name, c, one["rps"], one["ok_rps"], one["p50_ms"], one["p99_ms"],
                one["server_cpu"], one["client_cpu"],
            )  # fmt: skip
    return out


def postgres_copy(
    duck_url: str, artifacts: Path, work: Path, postgres_url: str | None
) -> tuple[str, Path, Any]:
    """The DuckDB store copied into PostgreSQL (once) and its registry beside it (hard links:
    the same bundle, which a server on either store starts on): (url, artifacts, cluster)."""
    from events_load import Cluster  # the benchmarks folder is on sys.path
    from shelfwise.store import open_store

    cluster = None if postgres_url else Cluster(work / "pg")
    url = postgres_url or cluster.start()  # type: ignore[union-attr]
    with open_store(url) as pg, open_store(duck_url) as duck:
        if pg.counts()["items"] == 0:
            t0 = time.perf_counter()
            events = duck.events()
            events = events.drop(columns=[c for c in ("seq",) if c in events.columns])
            pg.ingest(items=duck.items(), users=duck.users(), events=events)
            log.info("copied %s into PostgreSQL in %.0f s", duck.counts(), time.perf_counter() - t0)
    target = work / "artifacts-pg"
    if not target.exists():
        shutil.copytree(artifacts, target, copy_function=os.link)
    return url, target, cluster


def profile_handlers(
    store_url: str, artifacts: Path, directory: Path, scenarios: list[str], n: int, top: int = 25
) -> dict[str, Any]:
    """cProfile of the route handlers themselves, called in this process on the scenario's
    requests (after a warm-up, as a served app would be): ms per call, and the functions
    with the most own time. The HTTP stack (uvicorn, middleware, auth) is what `healthz`
    measures."""
    import cProfile
    import io
    import pstats

    from shelfwise.search.filters import Filters
    from shelfwise.serve import app as server
    from shelfwise.serve.middleware import Metrics
    from shelfwise.serve.routers import recommendations as rec_routes
    from shelfwise.serve.routers import search as search_routes
    from shelfwise.serve.warmup import Readiness, warm_up
    from shelfwise.serving import RecContext
    from shelfwise.settings import Settings

    settings = Settings().with_(
        store={"url": store_url}, paths={"artifacts": artifacts}, serve={"auth": False}
    )
    store, engine = server._open_engine(settings)
    services = server.build_services(engine, settings, Metrics())
    warm_up(engine, settings, Readiness())

    def handler(path: str) -> Any:
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.split("/")]
        if url.path == "/v1/search":
            return lambda: search_routes.search_body(
                services, query["q"], Filters(), "relevance", 1, 10, [], None, None, None, True
            )
        if url.path == "/v1/autocomplete":
            return lambda: search_routes.autocomplete_body(services, query["q"], 8)
        if url.path.endswith("/recommendations"):
            return lambda: rec_routes.recommendations_body(
                services, parts[3], 10, RecContext(), (), None
            )
        if url.path.endswith("/similar"):
            return lambda: rec_routes.related_body(services, "similar", parts[3], 10)
        raise SystemExit(f"no handler to profile for {path}")

    out: dict[str, Any] = {}
    try:
        for scenario in scenarios:
            lines = [p for p in (directory / f"paths_{scenario}.txt").read_text().splitlines() if p]
            calls = [handler(p) for p in lines[: 2 * n]]
            for call in calls[n:]:  # warm-up on other requests
                call()
            profiler = cProfile.Profile()
            t0 = time.perf_counter()
            profiler.enable()
            for call in calls[:n]:
                call()
            profiler.disable()
            ms = (time.perf_counter() - t0) / n * 1000
            text = io.StringIO()
            stats = pstats.Stats(profiler, stream=text)
            stats.sort_stats("tottime").print_stats(top)
            stats.sort_stats("cumulative").print_stats(top)
            out[scenario] = {
                "calls": n,
                "ms_per_call_profiled": round(ms, 2),
                "text": text.getvalue(),
            }
            log.info("%s: %.2f ms a call (profiled)\n%s", scenario, ms, text.getvalue())
    finally:
        store.close()
    return out


def main() -> int:
    """Prepare, serve, sweep (or compare clients), write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(ROOT / "var" / "loadtest"))
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=int, default=15, help="seconds per run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per level; the median of each figure counts"
    )
    parser.add_argument("--connections", default="1,4,16")
    parser.add_argument(
        "--rates",
        default="",
        help="also run open-loop fixed request rates (req/s, comma-separated), wrk2-style",
    )
    parser.add_argument("--scenarios", default="search,recommendations,similar,autocomplete,events")
    parser.add_argument("--backend", choices=("duckdb", "postgresql"), default="duckdb")
    parser.add_argument(
        "--workers", type=int, default=None, help="server processes (default: 1 DuckDB, 2 PG)"
    )
    parser.add_argument("--postgres-url", default=None, help="else a cluster of the script's")
    parser.add_argument("--target-p99-ms", type=float, default=50.0)
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="scheduling priority of this script, the server and wrk (inherited); a negative "
        "value (root only) shields the measurement from other jobs on a shared machine",
    )
    parser.add_argument("--client", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--compare-clients",
        default="",
        metavar="SCENARIO",
        help="instead of the sweep: drive SCENARIO with each client of CLIENTS (and the server "
        "with auth off, and with the default rate limit) at --connections",
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="SCENARIOS",
        help="instead of the sweep: cProfile the route handlers of these scenarios in this "
        "process (comma-separated); writes the profiles beside the store (--dir)",
    )
    parser.add_argument("--profile-calls", type=int, default=300)
    parser.add_argument("--prepare-only", action="store_true", help="build the store and stop")
    parser.add_argument(
        "--markdown", action="store_true", help="print the --out JSON as a Markdown table, no run"
    )
    parser.add_argument("--out", default=None, help="default benchmarks/results/load_test*.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.out is None:
        name = "load_test"
        if args.compare_clients:
            name += "_clients"
        elif args.backend == "postgresql":
            name += "_postgresql"
        args.out = str(ROOT / "benchmarks" / "results" / f"{name}.json")
    if args.markdown:
        print(markdown(json.loads(Path(args.out).read_text())))
        return 0
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "httpx"
    if args.client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk, or use --client httpx")
    if args.compare_clients and not shutil.which("wrk"):
        raise SystemExit("--compare-clients needs wrk: apt-get install wrk")
    levels = [int(c) for c in args.connections.split(",") if c.strip()]
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(scenarios) - set(ROUTES))
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}: choose from {sorted(ROUTES)}")
    if "events" in scenarios and args.client != "wrk":
        raise SystemExit("the events scenario needs wrk (apt-get install wrk)")
    workers = args.workers or (2 if args.backend == "postgresql" else 1)

    if args.nice:
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    t0 = time.perf_counter()
    store_url, artifacts, info = prepare(args)
    info["prepare_s"] = round(time.perf_counter() - t0, 1)
    directory = Path(args.dir)
    cluster = None
    if args.backend == "postgresql":
        store_url, artifacts, cluster = postgres_copy(
            store_url, artifacts, directory, args.postgres_url
        )
    log.info("prepared: %s", info)
    try:
        if args.prepare_only:
            return 0
        if args.profile:
            profiles = profile_handlers(
                store_url,
                artifacts,
                directory,
                [x for x in args.profile.split(",") if x],
                args.profile_calls,
            )
            target = directory / f"profile_{args.backend}.json"
            target.write_text(json.dumps(profiles, indent=2) + "\n")
            print({k: v["ms_per_call_profiled"] for k, v in profiles.items()}, "->", target)
            return 0
        script = directory / "wrk_paths.lua"
        script.write_text(WRK_SCRIPT)
        key, key_id = make_key(store_url, "read,write")
        results: dict[str, Any] = {}
        variants: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {"default": ({}, ())}
        if args.compare_clients:
            variants["auth_off"] = ({}, ("--no-auth",))
            variants["rate_limit_default"] = ({"SHELFWISE_SERVE__RATE_LIMIT": "100"}, ())
        try:
            for variant, (env_extra, args_extra) in variants.items():
                port = free_port()
                proc = start_server(store_url, artifacts, port, workers, 600, env_extra, args_extra)
                target = Target(proc, f"http://127.0.0.1:{port}", key, directory, script)
                try:
                    if not args.compare_clients:
                        for scenario in scenarios:
                            results[scenario] = sweep(target, scenario, args, levels, rates)
                    elif variant == "default":
                        target.wrk(args.compare_clients, 2, 3)  # warm-up
                        results[variant] = compare_clients(
                            target, args.compare_clients, levels, args.duration
                        )
                    else:  # the server's settings, with the fastest client
                        target.wrk(args.compare_clients, 2, 3)
                        route = ROUTES[args.compare_clients]
                        results[variant] = []
                        for c in levels:
                            one = measured(
                                target,
                                route,
                                lambda c=c, target=target: target.wrk(
                                    args.compare_clients, c, args.duration
                                ),
                            )
                            one["client"] = "wrk"
                            results[variant].append(one)
                            log.info("%s c=%d %s", variant, c, one)
                finally:
                    stop_server(proc)
        finally:
            revoke_key(store_url, key_id)
    finally:
        if cluster is not None:
            cluster.stop()

    report = {
        "benchmark": "load_test_clients" if args.compare_clients else "load_test",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "client": args.client,
        "clients": CLIENTS if args.compare_clients else None,
        "server": {
            "command": "shelfwise serve",
            "backend": args.backend,
            "workers": workers,
            "host": "127.0.0.1",
            "auth": "read,write key (X-API-Key)",
            "rate_limit": "off",
            "nice": args.nice,
        },
        "duration_s": args.duration,
        "repeat": args.repeat,
        "target_p99_ms": args.target_p99_ms,
        "data": {
            "items": args.items,
            "users": args.users,
            "days": args.days,
            "seed": args.seed,
            **info,
        },
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.compare_clients:
        print(markdown(report))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
