"""The API's CPU per request in-process: the whole ASGI app (middleware, auth, FastAPI's
validation and serialisation, the route), without sockets or an HTTP parser.

The load test's store and bundle (`load_test.py --prepare-only`, under `var/loadtest/`)
are served by `create_app(engine)` with API keys on (a `read` key made for the run) and
the default rate limit off; each scenario's request paths (`paths_<scenario>.txt`) are sent
one after the other straight into the ASGI callable, after as many warm-up requests. It
reports CPU milliseconds per request (every thread of this process: `time.process_time`)
and wall milliseconds, repeated `--repeat` times; with `--profile` it also runs cProfile
(which sees the event loop's thread only: routes that run in the thread pool show up as
waiting there) and writes the top functions.

    python benchmarks/asgi_profile.py --requests 2000 --repeat 3
    python benchmarks/asgi_profile.py --scenarios recommendations --profile

Writes benchmarks/results/asgi_profile.json (or --out).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("search", "recommendations", "similar", "autocomplete", "healthz")


class Client:
    """Sends GET requests straight into an ASGI app (no sockets)."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.headers = [(b"host", b"bench"), (b"x-api-key", key.encode())]

    async def get(self, target: str) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": _unquote(path),
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = 0
        chunks: list[bytes] = []
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)  # a client that stays connected
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


def _cache_counts(app: Any) -> tuple[int, int]:
    """(hits, misses) of the app's search cache so far."""
    cache = app.state.services.extra.get("search_cache")
    return (0, 0) if cache is None else (cache.hits, cache.misses)


def _unquote(path: str) -> str:
    from urllib.parse import unquote

    return unquote(path)


async def _run(client: Client, paths: list[str]) -> tuple[float, float, dict[int, int]]:
    codes: dict[int, int] = {}
    cpu0, t0 = time.process_time(), time.perf_counter()
    for path in paths:
        status, _ = await client.get(path)
        codes[status] = codes.get(status, 0) + 1
    return time.process_time() - cpu0, time.perf_counter() - t0, codes


def main() -> int:
    """Serve the load test's bundle in-process and time each scenario's requests."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(ROOT / "var" / "loadtest"))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--requests", type=int, default=2000, help="per scenario and repeat")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also cProfile one more round")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--no-fast-reads",
        action="store_true",
        help="every request through FastAPI (serve.fast_reads off: no `serve.readlane`)",
    )
    parser.add_argument(
        "--in-order",
        action="store_true",
        help="warm up on the first --requests lines and time the next ones (for a log in "
        "time order, e.g. the search_log scenario); default: time the first, warm on the next",
    )
    parser.add_argument(
        "--search-cache",
        type=int,
        default=None,
        help="serve.search_cache entries (0: off; default: the setting's). The timed requests "
        "are repeated, so with the cache on the repeats after the first are mostly hits",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "asgi_profile.json"))
    args = parser.parse_args()

    from shelfwise.serve import app as server
    from shelfwise.serve.security import create_key
    from shelfwise.settings import Settings

    directory = Path(args.dir)
    settings = Settings().with_(
        store={"url": f"duckdb:///{(directory / 'store.duckdb').resolve()}"},
        paths={"artifacts": directory / "artifacts"},
        serve={
            "rate_limit": 0,
            "refresh_seconds": 0,
            "fast_reads": not args.no_fast_reads,
            **({} if args.search_cache is None else {"search_cache": args.search_cache}),
        },
    )
    store, engine = server._open_engine(settings)
    key, record = create_key(store, "read", "asgi profile")
    app = server.create_app(engine=engine, settings=settings)
    results: dict[str, Any] = {}

    async def session() -> None:
        async with app.router.lifespan_context(app):
            client = Client(app, key)
            for scenario in [s for s in args.scenarios.split(",") if s]:
                lines = (directory / f"paths_{scenario}.txt").read_text().splitlines()
                lines = [p for p in lines if p]
                while len(lines) < 2 * args.requests:
                    lines = lines + lines
                warm, timed = lines[args.requests : 2 * args.requests], lines[: args.requests]
                if args.in_order:  # a log replayed as it happened: the warm-up comes first
                    warm, timed = timed, warm
                await _run(client, warm)
                runs: list[dict[str, Any]] = []
                for _ in range(args.repeat):
                    before = _cache_counts(app)
                    cpu, wall, codes = await _run(client, timed)
                    hits, misses = (a - b for a, b in zip(_cache_counts(app), before, strict=True))
                    runs.append(
                        {
                            "cpu_ms_per_request": round(cpu / len(timed) * 1000, 3),
                            "wall_ms_per_request": round(wall / len(timed) * 1000, 3),
                            "codes": {str(k): v for k, v in sorted(codes.items())},
                            "load_avg_1m": round(os.getloadavg()[0], 2),
                            **(
                                {"search_cache_hit_rate": round(hits / (hits + misses), 4)}
                                if hits + misses
                                else {}
                            ),
                        }
                    )
                cpu_ms: list[float] = [r["cpu_ms_per_request"] for r in runs]
                body: dict[str, Any] = {
                    "requests": len(timed),
                    "cpu_ms_per_request_median": round(statistics.median(cpu_ms), 3),
                    "cpu_ms_per_request_min": min(cpu_ms),
                    "cpu_ms_per_request_max": max(cpu_ms),
                    "runs": runs,
                }
                if args.profile:
                    profiler = cProfile.Profile()
                    profiler.enable()
                    await _run(client, timed)
                    profiler.disable()
                    text = io.StringIO()
                    stats = pstats.Stats(profiler, stream=text)
                    stats.sort_stats("tottime").print_stats(args.top)
                    stats.sort_stats("cumulative").print_stats(args.top)
                    body["profile"] = text.getvalue()
                results[scenario] = body
                print(
                    f"{scenario:16s} CPU ms/request {body['cpu_ms_per_request_median']:.3f} "
                    f"({min(cpu_ms):.3f}-{max(cpu_ms):.3f}) codes {runs[-1]['codes']} "
                    f"load {runs[-1]['load_avg_1m']} "
                    f"cache hits {[r.get('search_cache_hit_rate') for r in runs]}",
                    flush=True,
                )

    try:
        asyncio.run(session())
    finally:
        store.revoke_api_key(record.key_id)
        store.close()
    report = {
        "benchmark": "asgi_profile",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "fast_reads": not args.no_fast_reads,
        "search_cache": args.search_cache,
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
