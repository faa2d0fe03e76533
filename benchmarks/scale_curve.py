"""How far one machine goes: ingest, build, memory, restart and request latency as the
catalogue and the event log grow.

Each point is a demo store (`shelfwise.data.demo`'s generator, 30 days; the number of
shoppers sets the number of events, about 26 a shopper) ingested into DuckDB, its default
bundle built, then served:

| items | shoppers | events (about) |
|---:|---:|---:|
| 12,000 | 50,000 | 1.3M |
| 100,000 | 50,000 | 1.3M |
| 300,000 | 115,000 | 3M |
| 1,000,000 | 385,000 | 10M |

Per point, in this order, each stage in a child process whose resident memory (with its
children) is sampled every 0.2 s and which is stopped when it passes `--max-rss-gb`
(default 10) or runs longer than `--max-stage-s`:

1. `ingest`: generate the store and ingest it (generation and ingest seconds, events/s);
2. `build`: `ensure_bundle` (build seconds, per-model seconds from the log);
3. restart: `benchmarks/startup.py`'s start (process start to `/readyz` and to the first
   search, on the bundle with 1,000 events and 10 items that arrived after it);
4. requests: `shelfwise serve` driven by `wrk` (`benchmarks/load_test.py`'s runner) on
   search and recommendations at `--connections` for `--duration` s each: req/s, p50, p99.

A point whose stage was stopped keeps what it measured and says which stage stopped and
why; later stages of that point are skipped, and so are the larger points unless
`--keep-going`. Stores live under `--work` (default `/tmp/loadscale/scale`, reused: a
stage already done is not redone, its figures are kept in the point's `stages.json`).

    python benchmarks/scale_curve.py --points 12000,100000          # a short curve
    python benchmarks/scale_curve.py                                # every point, small first
    python benchmarks/scale_curve.py --replot                       # the plot from the JSON

Writes benchmarks/results/scale_curve.json and docs/benchmarks/img/scale_curve.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale_curve.json"
PLOT = ROOT / "docs" / "benchmarks" / "img" / "scale_curve.png"
log = logging.getLogger("scale_curve")

#: items -> shoppers (30 days of the demo generator: about 26 events a shopper)
POINTS: dict[int, int] = {12_000: 50_000, 100_000: 50_000, 300_000: 115_000, 1_000_000: 385_000}
DAYS, SEED = 30, 7


# ---- stages (run in a child process: `scale_curve.py --stage NAME --point-dir DIR`) ------


def _max_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stage_ingest(directory: Path, items: int, users: int) -> dict[str, Any]:
    """Generate the demo store and ingest it into DuckDB."""
    from shelfwise.data.demo import DemoConfig, generate
    from shelfwise.store import open_store

    t0 = time.perf_counter()
    demo = generate(DemoConfig(seed=SEED, n_items=items, n_users=users, days=DAYS))
    generate_s = time.perf_counter() - t0
    with open_store(store_url(directory)) as store:
        t0 = time.perf_counter()
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
        ingest_s = time.perf_counter() - t0
        counts = store.counts()
    return {
        "generate_s": round(generate_s, 1),
        "ingest_s": round(ingest_s, 1),
        "ingest_events_per_s": round(counts["events"] / ingest_s),
        "counts": counts,
        "max_rss_mb": _max_rss_mb(),
    }


def stage_build(directory: Path) -> dict[str, Any]:
    """Build the store's default bundle; the seconds of each trained model from the log."""
    from shelfwise.artifacts import ensure_bundle
    from shelfwise.store import open_store

    trained: dict[str, float] = {}

    class Timings(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            match = re.match(r"trained (.+) in ([0-9.]+)s", record.getMessage())
            if match:
                trained[match.group(1)] = float(match.group(2))

    logging.getLogger("shelfwise").addHandler(Timings())
    logging.getLogger("shelfwise").setLevel(logging.INFO)
    with open_store(store_url(directory)) as store:
        t0 = time.perf_counter()
        bundle, _ = ensure_bundle(store, directory / "artifacts")
        build_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in bundle.directory.rglob("*") if f.is_file())
    return {
        "build_s": round(build_s, 1),
        "trained_s": trained,
        "bundle_mb": round(size / 2**20, 1),
        "max_rss_mb": _max_rss_mb(),
    }


def store_url(directory: Path) -> str:
    """The point's DuckDB store."""
    return f"duckdb:///{(directory / 'store.duckdb').resolve()}"


# ---- the parent: watch the stages, restart, requests ---------------------------------------


def watch(command: list[str], max_rss_mb: float, max_seconds: float) -> dict[str, Any]:
    """Run `command`, sampling the resident memory of it and its children; stop it past
    `max_rss_mb` or `max_seconds`. Its JSON answer (last stdout line) plus `peak_rss_mb`,
    `wall_s` and `stopped` (None, or why it was stopped)."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(proc.pid)
    peak, stopped = 0.0, None
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            rss = 0
        peak = max(peak, rss / 2**20)
        wall = time.perf_counter() - t0
        if peak > max_rss_mb:
            stopped = f"resident memory passed {max_rss_mb / 1024:.0f} GB after {wall:.0f} s"
        elif wall > max_seconds:
            stopped = f"still running after {max_seconds:.0f} s"
        if stopped:
            log.warning("stopping %s: %s", command[-1], stopped)
            proc.kill()
            break
        time.sleep(0.2)
    out, err = proc.communicate()
    result: dict[str, Any] = {}
    if proc.returncode == 0 and out.strip():
        result = json.loads(out.strip().splitlines()[-1])
    elif not stopped:
        stopped = f"failed with exit code {proc.returncode}: {err[-1500:]}"
    result.update(
        peak_rss_mb=round(peak, 1), wall_s=round(time.perf_counter() - t0, 1), stopped=stopped
    )
    return result


def restart(directory: Path, items: int) -> dict[str, Any]:
    """One start of `shelfwise serve` on the point's bundle (startup.py's measurement)."""
    import startup  # the benchmarks folder is on sys.path
    from shelfwise.store import open_store

    url, registry, query, user = startup._prepare(
        directory, items, store_url(directory), directory / "artifacts"
    )
    with open_store(url) as store:
        item = str(store.items().iloc[0]["item_id"])
    run = startup._one_start(url, registry, query, user, item)
    return {k: round(v, 3) for k, v in run.items()}


def requests(directory: Path, connections: int, duration: int) -> dict[str, Any]:
    """Search and recommendations under `wrk` at `connections` (load_test.py's runner)."""
    import load_test
    from shelfwise.store import open_store

    url = store_url(directory)
    with open_store(url) as store:
        load_test.write_request_files(store, directory, SEED)
    script = directory / "wrk_paths.lua"
    script.write_text(load_test.WRK_SCRIPT)
    key, key_id = load_test.make_key(url, "read", "scale curve")
    port = load_test.free_port()
    base = f"http://127.0.0.1:{port}"
    server = load_test.start_server(url, directory / "artifacts", port, 1, ready_within=600)
    out: dict[str, Any] = {}
    try:
        for scenario in ("search", "recommendations"):
            paths = directory / f"paths_{scenario}.txt"
            load_test.run_wrk(base, paths, 2, 3, script, key)  # warm-up
            run = load_test.run_wrk(base, paths, connections, duration, script, key)
            run["load_avg_1m"] = round(os.getloadavg()[0], 2)
            out[scenario] = run
            log.info("%s: %s", scenario, run)
    finally:
        load_test.stop_server(server)
        load_test.revoke_key(url, key_id)
    return out


def run_point(items: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every stage of one point (those already done are read back from `stages.json`)."""
    users = POINTS.get(items, max(1, items // 2))
    directory = args.work / str(items)
    directory.mkdir(parents=True, exist_ok=True)
    saved = directory / "stages.json"
    point: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}
    point.update(items=items, users=users, days=DAYS)

    def save() -> None:
        saved.write_text(json.dumps(point, indent=2) + "\n")

    me = [sys.executable, str(Path(__file__).resolve()), "--point-dir", str(directory)]
    for stage in ("ingest", "build"):
        if point.get(stage) and not point[stage].get("stopped"):
            continue
        if stage == "ingest" and (directory / "store.duckdb").exists():
            (directory / "store.duckdb").unlink()  # a stopped ingest leaves half a store
        if stage == "build" and (directory / "artifacts").exists():
            shutil.rmtree(directory / "artifacts")
        log.info("%d items: %s ...", items, stage)
        point[stage] = watch(
            [*me, "--items", str(items), "--users", str(users), "--stage", stage],
            args.max_rss_gb * 1024,
            args.max_stage_s,
        )
        point[stage]["load_avg_1m"] = round(os.getloadavg()[0], 2)
        save()
        log.info("%d items: %s %s", items, stage, point[stage])
        if point[stage]["stopped"]:
            point["stopped_at"] = f"{stage}: {point[stage]['stopped']}"
            save()
            return point
    point.pop("stopped_at", None)
    if args.build_only:
        return point
    if args.redo_serving or "restart" not in point:
        point["restart"] = restart(directory, items)
        point["restart"]["load_avg_1m"] = round(os.getloadavg()[0], 2)
        save()
    if args.redo_serving or "requests" not in point:
        point["requests"] = requests(directory, args.connections, args.duration)
        save()
    return point


# ---- the plot --------------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path) -> None:
    """Four panels against the catalogue size: times, memory, restart, p99."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = report["points"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))

    def series(fn: Any) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for p in points:
            try:
                value = fn(p)
            except (KeyError, TypeError):
                continue
            if value is not None:
                xs.append(p["items"])
                ys.append(value)
        return xs, ys

    def finished(stage: str) -> Any:
        return lambda p: p[stage]["wall_s"] if not p[stage]["stopped"] else None

    ax = axes[0][0]
    for stage, label in (("ingest", "generate + ingest"), ("build", "bundle build")):
        ax.plot(*series(finished(stage)), "o-", label=label)
        xs, ys = series(lambda p, s=stage: p[s]["wall_s"] if p[s]["stopped"] else None)
        if xs:
            ax.plot(xs, ys, "x", color="red", markersize=10, label=f"{label} stopped")
    ax.set(title="Build (s)", ylabel="seconds")
    ax = axes[0][1]
    for stage in ("ingest", "build"):
        ax.plot(*series(lambda p, s=stage: p[s]["peak_rss_mb"] / 1024), "o-", label=stage)
    ax.axhline(report["max_rss_gb"], color="red", linestyle="--", label="stop limit")
    ax.axhline(24, color="black", linestyle=":", label="machine (24 GB)")
    ax.set(title="Peak resident memory (GB)", ylabel="GB")
    ax = axes[1][0]
    ax.plot(*series(lambda p: p["restart"]["first_search_s"]), "o-", label="to first search")
    ax.plot(*series(lambda p: p["restart"]["ready_cpu_s"]), "s--", label="server CPU s to ready")
    ax.axhline(10, color="red", linestyle="--", label="target 10 s")
    ax.set(title="Restart on the last bundle (s)", ylabel="seconds")
    ax = axes[1][1]
    for scenario in ("search", "recommendations"):
        ax.plot(*series(lambda p, s=scenario: p["requests"][s]["p99_ms"]), "o-", label=scenario)
    ax.axhline(50, color="red", linestyle="--", label="target 50 ms")
    ax.set(title=f"p99 at {report['connections']} connections (ms)", ylabel="ms")
    sizes = [p["items"] for p in points]
    for ax in axes.ravel():
        ax.set_xscale("log")
        ax.set_xlim(min(sizes) / 2, max(sizes) * 2)
        ax.set_ylim(bottom=0)
        ax.set_xlabel("catalogue items")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Scale curve, one {report['machine']['cpus']}-core machine (shared)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> int:
    """Run the points (or one stage, as the child), write the JSON and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", default=",".join(str(p) for p in POINTS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/loadscale/scale"))
    parser.add_argument("--max-rss-gb", type=float, default=10.0)
    parser.add_argument("--max-stage-s", type=float, default=1800.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8, help="seconds per request run")
    parser.add_argument("--keep-going", action="store_true", help="after a stopped point too")
    parser.add_argument("--redo-serving", action="store_true", help="restart and requests again")
    parser.add_argument(
        "--build-only", action="store_true", help="ingest and build; restart and requests later"
    )
    parser.add_argument("--replot", action="store_true", help="the plot from the JSON, no run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    # the child's arguments
    parser.add_argument("--stage", choices=("ingest", "build"), help=argparse.SUPPRESS)
    parser.add_argument("--point-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if args.stage:  # the child: one stage, its JSON on the last stdout line
        logging.getLogger().setLevel(logging.WARNING)
        if args.stage == "ingest":
            result = stage_ingest(args.point_dir, args.items, args.users)
        else:
            result = stage_build(args.point_dir)
        print(json.dumps(result))
        return 0
    if args.replot:
        plot(json.loads(args.out.read_text()), PLOT)
        return 0

    from startup import machine

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    done = {p["items"]: p for p in previous.get("points", [])}
    report: dict[str, Any] = {
        "benchmark": "scale_curve",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "store": "DuckDB, one server process",
        "max_rss_gb": args.max_rss_gb,
        "max_stage_s": args.max_stage_s,
        "connections": args.connections,
        "duration_s": args.duration,
        "points": [],
    }
    for items in sorted(int(p) for p in args.points.split(",") if p.strip()):
        point = run_point(items, args)
        done[items] = point
        report["points"] = [done[k] for k in sorted(done)]
        report["machine"] = machine()
        report["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        plot(report, PLOT)
        if point.get("stopped_at") and not args.keep_going:
            log.warning("%d items stopped (%s): the larger points are not run", items,
                        point["stopped_at"])  # fmt: skip
            break
    log.info("written %s and %s", args.out, PLOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
