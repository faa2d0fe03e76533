"""Load test of `POST /v1/events`: acknowledged events per second and p50 / p99 latency.

A store with `--stored` synthetic events already in it (default 1.3M; numpy-generated
users, items, types and times, bulk-ingested in chunks; kept under `--workdir` and reused)
gets its default bundle built once, then a real `shelfwise serve` runs on 127.0.0.1 with
production settings: API keys required (the requests carry a `write` key made for the
run), rate limiting off. DuckDB runs in one process (one writer process per file);
PostgreSQL with `--pg-workers` worker processes (default 2), on a cluster the script starts
with durable settings (fsync and synchronous_commit on), or on `--postgres-url`.

Closed-loop clients (1, 4, 16 by default), each on its own keep-alive connection, post
either single events (`single`) or arrays of `--batch` events (`batch`) for `--duration`
seconds per level, each level `--repeats` times (the report gives every run and the
median, min and max). Every request has fresh `event_id`s; an event counts once the server
answered 200 with it accepted (the answer comes after the commit). The clients are plain
asyncio streams in one process beside the server, so on a small machine they take CPU
from it: the figures are a lower bound. `--client wrk` (or `python,wrk`) also drives the
single events with Debian's `wrk` (C, `benchmarks/events_wrk.lua`: a fresh event_id per
request, acked events counted from the answers), a far cheaper client; each run records
the client's CPU per request too. Each run also records the server's CPU time (all
its processes, from /proc) per request and per event, which a busy machine inflates far
less than the wall-clock figures, and the 1-minute load average. The store's event count
is checked against the acknowledged total at the end.

    python benchmarks/events_load.py --stored 100000 --duration 5 --repeats 1   # quick
    python benchmarks/events_load.py                                            # 1.3M

Writes benchmarks/results/events_load_<stored/1000>k.json (or `--out`) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import pwd
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from load_test import (  # the benchmarks folder is on sys.path
    make_key,
    revoke_key,
    start_server,
    stop_server,
)
from startup import _summary as spread
from startup import machine

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("events_load")


# ---- data -----------------------------------------------------------------------------------


def synthetic_events(n: int, n_users: int, n_items: int, seed: int, start: int = 0) -> pd.DataFrame:
    """`n` events in the canonical layout: Zipf-ish items, uniform users, 90 days."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2026-01-01T00:00:00", "us")
    offsets = np.sort(rng.integers(0, 90 * 86_400 * 10**6, n)).astype("timedelta64[us]")
    items = np.minimum(rng.zipf(1.3, n) - 1, n_items - 1)
    kinds = rng.choice(["view", "click", "add_to_cart", "purchase"], n, p=[0.7, 0.2, 0.07, 0.03])
    return pd.DataFrame(
        {
            "event_id": [f"pre-{i}" for i in range(start, start + n)],
            "user_id": [f"U{u:06d}" for u in rng.integers(0, n_users, n)],
            "item_id": [f"I{i:06d}" for i in items],
            "type": kinds,
            "value": np.nan,
            "query": None,
            "session_id": None,
            "timestamp": t0 + offsets,
        }
    )


NOUNS = ("knife", "board", "pan", "lamp", "mug")


def synthetic_items(n_items: int) -> pd.DataFrame:
    """A plain catalogue of `n_items` products in 20 categories."""
    ids = np.arange(n_items)
    return pd.DataFrame(
        {
            "item_id": [f"I{i:06d}" for i in ids],
            "title": [
                f"Product {i} {['knife', 'board', 'pan', 'lamp', 'mug'][i % 5]}" for i in ids
            ],
            "description": None,
            "category": [f"Home > Cat {i % 20}" for i in ids],
            "brand": [f"Brand {i % 50}" for i in ids],
            "price": 5.0 + (ids % 100),
            "currency": "EUR",
            "in_stock": True,
            "attributes": "{}",
            "created_at": pd.Timestamp("2025-12-01"),
        }
    )


def prepare(url: str, artifacts: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Fill the store up to `--stored` events (once) and build its bundle (once)."""
    from shelfwise.artifacts import ensure_bundle
    from shelfwise.store import open_store

    with open_store(url) as store:
        counts = store.counts()
        if counts["items"] == 0:
            store.ingest(items=synthetic_items(args.items))
        have = store.counts()["events"]
        started = time.perf_counter()
        chunk = 200_000
        while have < args.stored:
            n = min(chunk, args.stored - have)
            store.ingest(events=synthetic_events(n, args.users, args.items, seed=have, start=have))
            have += n
            log.info("stored %d events", have)
        fill_s = time.perf_counter() - started
        started = time.perf_counter()
        _, built = ensure_bundle(store, artifacts)
        log.info(
            "bundle %s in %.0f s", "built" if built else "reused", time.perf_counter() - started
        )
        return {"events_stored": int(store.counts()["events"]), "fill_s": round(fill_s, 1)}


def event_count(url: str) -> int:
    """Events in the store now."""
    from shelfwise.store import open_store

    with open_store(url) as store:
        return int(store.counts()["events"])


# ---- PostgreSQL and the server --------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A durable PostgreSQL cluster (fsync on) in `root`, kept between runs."""

    def __init__(self, root: Path) -> None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not candidates:
            raise SystemExit("no /usr/lib/postgresql/*/bin/initdb: pass --postgres-url")
        self.bin = candidates[-1].parent
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.prefix: list[str] = []
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:  # initdb refuses root
            account = pwd.getpwnam("postgres")
            root.mkdir(parents=True, exist_ok=True)
            os.chown(root, account.pw_uid, account.pw_gid)
            self.prefix, self.user = ["runuser", "-u", "postgres", "--"], "postgres"

    def _run(self, *args: str) -> None:
        cmd = [*self.prefix, str(self.bin / args[0]), *args[1:]]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)

    def start(self) -> str:
        """Start (initialising on first use); returns the URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.data.exists():
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-locale")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        log_file = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log_file, "-w", "-o", options, "start")
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Stop the cluster (its data stays for the next run)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


# ---- the clients ----------------------------------------------------------------------------


async def _client(
    port: int, key: str, tag: str, batch: int, users: int, deadline: float, out: dict[str, Any]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rng = np.random.default_rng(abs(hash(tag)) % 2**32)
    n = 0
    try:
        while time.perf_counter() < deadline:
            events = [
                {
                    "event_id": f"{tag}-{n + j}",
                    "user_id": f"U{int(rng.integers(users)):06d}",
                    "item_id": f"I{int(rng.integers(1000)):06d}",
                    "type": "view",
                }
                for j in range(batch)
            ]
            n += batch
            body = json.dumps(events[0] if batch == 1 else events).encode()
            head = (
                "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nX-API-Key: {key}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            payload = await reader.readexactly(length)
            out["latencies"].append(time.perf_counter() - started)
            if header.startswith(b"HTTP/1.1 200"):
                out["acked"] += int(json.loads(payload)["accepted"])
            else:
                out["errors"] += 1
    finally:
        writer.close()


def server_cpu_seconds(session: int) -> float:
    """CPU seconds (user + system) used so far by every process of the server's session
    (`start_server` starts it in its own, so uvicorn's worker processes count too)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / tick


#: The data folder of the cluster this script started (its server's CPU is counted too).
PG_DATA: list[Path] = []


def db_server_cpu_seconds() -> float | None:
    """CPU seconds of the script's PostgreSQL cluster so far: the postmaster, its live
    processes and those that ended (their time is added to the postmaster's when it
    reaps them); None without one (DuckDB, or `--postgres-url`)."""
    if not PG_DATA:
        return None
    try:
        postmaster = int((PG_DATA[0] / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster:  # utime, stime, cutime, cstime
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == postmaster:  # field 4 of stat: the parent
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wait_until_quiet(session: int, limit_s: float = 300.0) -> float:
    """Wait until the server's processes use under 5% of a CPU for a second: /readyz
    answers from whichever worker got the request, while another may still be loading its
    bundle and event replica, which would be charged to the first runs. Returns the wait."""
    started = time.monotonic()
    before = server_cpu_seconds(session)
    while time.monotonic() - started < limit_s:
        time.sleep(1.0)
        now = server_cpu_seconds(session)
        if now - before < 0.05:
            break
        before = now
    return round(time.monotonic() - started, 1)


def commit_counters(port: int) -> tuple[float, float] | None:
    """(group commits, events written by them) from the server's /metrics, or None when it
    does not answer them (with several workers, whichever worker took the scrape: two
    scrapes may reach different ones, so the ratio is kept for one process only)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("shelfwise_event_commits_total", "shelfwise_event_commit_events_total"):
            values[name] = float(value)
    if len(values) < 2:
        return None
    return values["shelfwise_event_commits_total"], values["shelfwise_event_commit_events_total"]


WRK_SCRIPT = ROOT / "benchmarks" / "events_wrk.lua"


def run_wrk(port: int, key: str, clients: int, args: argparse.Namespace) -> dict[str, Any]:
    """`clients` wrk connections posting single events (`events_wrk.lua`: a fresh
    event_id per request) for `--duration` seconds; wrk's own summary (latencies in us)."""
    run_id = f"w{time.time_ns()}"
    cmd = [
        "wrk",
        f"-t{min(clients, args.wrk_threads)}",
        f"-c{clients}",
        f"-d{args.duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}",
        "--",
        key,
        run_id,
        str(args.users),
    ]
    done = subprocess.run(
        cmd, capture_output=True, text=True, timeout=args.duration + 60, check=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith('{"requests"')]
    if not lines:
        raise SystemExit(f"wrk printed no summary: {done.stdout}\n{done.stderr}")
    return dict(json.loads(lines[-1]))


def run_level(
    port: int,
    key: str,
    clients: int,
    batch: int,
    args: argparse.Namespace,
    session: int,
    client: str = "python",
) -> dict:
    """`clients` concurrent clients for `--duration` seconds; the run's figures. `client`:
    "python" (asyncio streams in this process) or "wrk" (single events only)."""
    out: dict[str, Any] = {"latencies": [], "acked": 0, "errors": 0}
    run_id = f"r{time.time_ns()}"

    async def main() -> float:
        start = time.perf_counter()
        deadline = start + args.duration
        await asyncio.gather(
            *(
                _client(port, key, f"{run_id}-{c}", batch, args.users, deadline, out)
                for c in range(clients)
            )
        )
        return time.perf_counter() - start

    commits_before = commit_counters(port)
    load_before = os.getloadavg()[0]
    cpu_before = server_cpu_seconds(session)
    db_before = db_server_cpu_seconds()
    own_before = os.times()
    if client == "wrk":
        if batch != 1:
            raise ValueError("the wrk client posts single events only")
        summary = run_wrk(port, key, clients, args)
        elapsed = summary["duration_us"] / 1e6
        n_requests = int(summary["requests"])
        out["acked"], out["errors"] = int(summary["acked"]), int(summary["non_200"])
        out["errors"] += int(summary["socket_errors"])
        p50, p99 = summary["p50_us"] / 1000, summary["p99_us"] / 1000
    else:
        elapsed = asyncio.run(main())
        lat = np.asarray(out["latencies"]) * 1000
        n_requests = len(lat)
        p50 = float(np.percentile(lat, 50)) if len(lat) else None
        p99 = float(np.percentile(lat, 99)) if len(lat) else None
    cpu = server_cpu_seconds(session) - cpu_before
    db_after = db_server_cpu_seconds()
    db_cpu = db_after - db_before if db_after is not None and db_before is not None else None
    own = os.times()
    commits_after = commit_counters(port)
    per_commit = None
    if commits_before and commits_after and commits_after[0] > commits_before[0]:
        per_commit = (commits_after[1] - commits_before[1]) / (commits_after[0] - commits_before[0])
    client_cpu = (own.user + own.system + own.children_user + own.children_system) - (
        own_before.user + own_before.system + own_before.children_user + own_before.children_system
    )
    requests = max(n_requests, 1)
    return {
        "client": client,
        "clients": clients,
        "events_per_request": batch,
        "requests": n_requests,
        "errors": out["errors"],
        "acked_events": out["acked"],
        "events_per_s": round(out["acked"] / elapsed, 1),
        "requests_per_s": round(n_requests / elapsed, 1),
        "p50_ms": round(p50, 2) if p50 is not None else None,
        "p99_ms": round(p99, 2) if p99 is not None else None,
        "client_cpu_ms_per_request": round(1000 * client_cpu / requests, 3),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_ms_per_request": round(1000 * cpu / requests, 3),
        "server_cpu_ms_per_event": round(1000 * cpu / max(out["acked"], 1), 4),
        # PostgreSQL's own processes (the script's cluster), and the two together
        "db_server_cpu_ms_per_event": (
            round(1000 * db_cpu / max(out["acked"], 1), 4) if db_cpu is not None else None
        ),
        "total_cpu_ms_per_event": round(1000 * (cpu + (db_cpu or 0.0)) / max(out["acked"], 1), 4),
        # events per group commit (one process only: see bench_backend)
        "events_per_commit": round(per_commit, 1) if per_commit is not None else None,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def summarise(runs: list[dict]) -> dict:
    """One level's repeats: median, min and max of each figure, and every run."""
    figures = (
        "events_per_s",
        "p50_ms",
        "p99_ms",
        "server_cpu_ms_per_request",
        "total_cpu_ms_per_event",
        "events_per_commit",
    )
    return {
        "client": runs[0].get("client", "python"),
        "clients": runs[0]["clients"],
        "events_per_request": runs[0]["events_per_request"],
        **{
            f: spread(values)
            if (values := [float(r[f]) for r in runs if r.get(f) is not None])
            else None
            for f in figures
        },
        "errors": sum(r["errors"] for r in runs),
        "acked_events": sum(r["acked_events"] for r in runs),
        "runs": runs,
    }


def bench_backend(name: str, url: str, artifacts: Path, args: argparse.Namespace) -> dict:
    """Prepare the store, serve it, run every level; the backend's section of the report."""
    info = prepare(url, artifacts, args)
    workers = 1 if name == "duckdb" else args.pg_workers
    key, key_id = make_key(url, "write", "events load test")
    before = event_count(url)
    port = free_port()
    proc = start_server(url, artifacts, port, workers, ready_within=600)
    log.info("server quiet after %.1f s more", wait_until_quiet(proc.pid))
    runs: dict[tuple[str, int, int], list[dict]] = {}
    plan = [(c, 1) for c in args.client] + [("python", args.batch)] * (args.batch > 1)
    try:
        for _ in range(args.repeats):  # repeats interleaved, so a busy spell hits one run
            for client, batch in plan:
                for clients in args.clients:
                    run = run_level(port, key, clients, batch, args, proc.pid, client)
                    if workers > 1:  # the scrapes reached whichever worker: not a ratio
                        run["events_per_commit"] = None
                    log.info("%s %s", name, run)
                    runs.setdefault((client, batch, clients), []).append(run)
    finally:
        stop_server(proc)
    levels = [summarise(r) for r in runs.values()]
    after = event_count(url)
    revoke_key(url, key_id)
    acked = sum(level["acked_events"] for level in levels)
    return {
        "backend": name,
        "workers": workers,
        **info,
        "levels": levels,
        "acked_total": acked,
        "store_grew_by": after - before,
        "all_acked_stored": after - before >= acked,
    }


def main() -> None:
    """Parse arguments, run each backend, write the JSON report and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=1_300_000, help="events stored first")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per level")
    parser.add_argument("--clients", default="1,4,16", help="concurrency levels")
    parser.add_argument(
        "--batch", type=int, default=50, help="events per batch request (1: no batch runs)"
    )
    parser.add_argument(
        "--client",
        default="python",
        help="single-event clients, comma-separated: python (asyncio, in this process), "
        "wrk (Debian's wrk with benchmarks/events_wrk.lua)",
    )
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads at most")
    parser.add_argument("--backends", default="duckdb,postgresql")
    parser.add_argument("--pg-workers", type=int, default=2)
    parser.add_argument("--postgres-url", default=None, help="else a cluster of the script's")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-events")
    parser.add_argument("--out", type=Path, default=None, help="default: results/events_load_<k>k")
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.client = [c.strip() for c in args.client.split(",") if c.strip()]
    if unknown := set(args.client) - {"python", "wrk"}:
        raise SystemExit(f"unknown --client {sorted(unknown)}: python or wrk")
    if args.out is None:
        args.out = ROOT / f"benchmarks/results/events_load_{args.stored // 1000}k.json"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("shelfwise").setLevel(logging.WARNING)
    work = args.workdir / f"stored-{args.stored}"
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.backends.split(","):
        if name == "duckdb":
            url = f"duckdb:///{work / 'events.duckdb'}"
            results.append(bench_backend(name, url, work / "artifacts-duckdb", args))
        elif name == "postgresql":
            cluster = None if args.postgres_url else Cluster(work / "pg")
            url = args.postgres_url or cluster.start()  # type: ignore[union-attr]
            PG_DATA[:] = [cluster.data] if cluster is not None else []
            try:
                results.append(bench_backend(name, url, work / "artifacts-pg", args))
            finally:
                if cluster is not None:
                    cluster.stop()
        else:
            raise SystemExit(f"unknown backend {name!r}: duckdb or postgresql")
    report = {
        "benchmark": "events_load",
        "command": " ".join(["python", "benchmarks/events_load.py", *sys.argv[1:]]),
        "machine": {**machine(), "platform": platform.platform()},
        "duration_s": args.duration,
        "repeats": args.repeats,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{'backend':<11} {'client':<6} {'clients':>7} {'ev/req':>6} {'events/s (min-max)':>22} "
        f"{'p50 ms':>7} {'p99 ms (min-max)':>18} {'cpu ms/req':>10} {'all cpu ms/ev':>13} "
        f"{'ev/commit':>9}"
    )
    for r in results:
        for level in r["levels"]:
            eps, p99 = level["events_per_s"], level["p99_ms"]
            print(
                f"{r['backend']:<11} {level['client']:<6} {level['clients']:>7} "
                f"{level['events_per_request']:>6} "
                f"{eps['median']:>8.0f} ({eps['min']:.0f}-{eps['max']:.0f}){'':>4} "
                f"{level['p50_ms']['median']:>7.1f} "
                f"{p99['median']:>7.1f} ({p99['min']:.0f}-{p99['max']:.0f}) "
                f"{level['server_cpu_ms_per_request']['median']:>10.2f} "
                f"{(level['total_cpu_ms_per_event'] or {}).get('median', float('nan')):>13.3f} "
                f"{(level['events_per_commit'] or {}).get('median', float('nan')):>9.1f}"
            )


if __name__ == "__main__":
    main()
