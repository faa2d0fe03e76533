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

Per point, in this order, each stage in a child process (its output in the point's
`<stage>.log`) whose resident memory (with its children) is sampled every 0.2 s and which
is stopped, recorded as `"broke: <reason>"`, when it passes `--max-rss-gb` (default 12),
when the machine's available memory falls under `--min-free-gb` (default 1.5: the machine
is shared) or when it runs longer than `--max-stage-s`; every 30 s the parent logs the
stage's seconds, memory and an ETA (the previous point's time for the stage, scaled by
the events):

1. `generate`: the demo store generated and written as the files `shelfwise ingest` reads
   (`items.jsonl`, `users.jsonl`, `events.csv`; not a measurement of Shelfwise);
2. `ingest`: `shelfwise ingest --items --users --events` into a fresh DuckDB file, the bulk
   path an operator uses (every row validated: the event file by column, `shelfwise.data.bulk`,
   items and users row by row; then one transaction): seconds, events/s;
3. `build`: `ensure_bundle` (build seconds, per-model seconds from the log, and where
   the time went: a sampling profile of the stage, `profile`, seconds per function of
   Shelfwise on the stack, sampled every 0.5 s);
4. restart (the server's search mode `--search-mode`, default `lexical`: the dense modes
   embed the whole catalogue with MiniLM at the first start, a few items a second on this
   shared machine, so hours from 300,000 items): `benchmarks/startup.py`'s start
   (process start to `/readyz` and to the first search, on the bundle with 1,000 events
   and 10 items that arrived after it);
5. requests: `shelfwise serve` driven by `wrk` (`benchmarks/load_test.py`'s runner) on
   search and recommendations at `--connections` for `--duration` s each: req/s, p50,
   p99, and the server's resident memory after them.

A point whose stage broke keeps what it measured and says which stage broke and why
(`stopped_at`); later stages of that point are skipped, and so are the larger points
unless `--keep-going`. Stores live under `--work` (default `var/scale`, reused: a stage
already done is not redone, its figures are kept in the point's `stages.json`), and the
JSON is rewritten after every stage, so an interrupted curve resumes where it stopped.

    python benchmarks/scale_curve.py --points 12000,100000          # a short curve
    nice -n 19 python benchmarks/scale_curve.py --points 300000     # one point
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

STAGES = ("generate", "ingest", "build")


def _max_rss_mb() -> float:
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def files_of(directory: Path) -> dict[str, Path]:
    """The point's generated files, as `write_demo` names them."""
    return {
        "items": directory / "files" / "items.jsonl",
        "users": directory / "files" / "users.jsonl",
        "events": directory / "files" / "events.csv",
    }


def stage_generate(directory: Path, items: int, users: int) -> dict[str, Any]:
    """Generate the demo store and write it as the files `shelfwise ingest` reads."""
    from shelfwise.data.demo import DemoConfig, generate, write_demo

    t0 = time.perf_counter()
    demo = generate(DemoConfig(seed=SEED, n_items=items, n_users=users, days=DAYS), progress=True)
    generate_s = time.perf_counter() - t0
    counts = {"items": len(demo.items), "users": len(demo.users), "events": len(demo.events)}
    t0 = time.perf_counter()
    paths = write_demo(demo, directory / "files")
    return {
        "generate_s": round(generate_s, 1),
        "write_s": round(time.perf_counter() - t0, 1),
        "counts": counts,
        "files_mb": {k: round(v.stat().st_size / 2**20, 1) for k, v in paths.items()},
        "max_rss_mb": _max_rss_mb(),
    }


def ingest_command(directory: Path) -> list[str]:
    """`shelfwise ingest` of the point's files into its store, the summary as JSON."""
    files = files_of(directory)
    return [
        sys.executable, "-m", "shelfwise", "ingest", "--items", str(files["items"]),
        "--users", str(files["users"]), "--events", str(files["events"]),
        "--store", store_url(directory), "--json",
    ]  # fmt: skip


class StackSampler:
    """Where a stage's time goes: every `interval` s the main thread's stack; per function
    of Shelfwise on it (inclusive, once a sample), the seconds it was on the stack."""

    def __init__(self, interval: float = 0.5) -> None:
        import threading

        self.interval, self.samples = interval, 0
        self.counts: dict[str, int] = {}
        self._main = threading.main_thread().ident
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            frame = sys._current_frames().get(self._main or 0)
            seen: set[str] = set()
            while frame is not None:
                path = frame.f_code.co_filename
                if "shelfwise" in path and "scale_curve" not in path:
                    name = f"{path.split('shelfwise/')[-1]}:{frame.f_code.co_qualname}"
                    seen.add(name)
                frame = frame.f_back
            self.samples += 1
            for name in seen:
                self.counts[name] = self.counts.get(name, 0) + 1

    def __enter__(self) -> StackSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def top(self, n: int = 25) -> dict[str, float]:
        """The `n` functions longest on the stack, in seconds."""
        ranked = sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]
        return {name: round(count * self.interval, 1) for name, count in ranked}


def stage_build(directory: Path) -> dict[str, Any]:
    """Build the store's default bundle; the seconds of each trained model from the log,
    and a sampling profile of the build."""
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
    with open_store(store_url(directory)) as store, StackSampler() as sampler:
        t0 = time.perf_counter()
        bundle, _ = ensure_bundle(store, directory / "artifacts")
        build_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in bundle.directory.rglob("*") if f.is_file())
    return {
        "build_s": round(build_s, 1),
        "trained_s": trained,
        "seconds": bundle.manifest.get("seconds", {}),
        "bundle_mb": round(size / 2**20, 1),
        "max_rss_mb": _max_rss_mb(),
        "profile": sampler.top(),
    }


def store_url(directory: Path) -> str:
    """The point's DuckDB store."""
    return f"duckdb:///{(directory / 'store.duckdb').resolve()}"


# ---- the parent: watch the stages, restart, requests ---------------------------------------


def watch(
    command: list[str],
    log_path: Path,
    limits: argparse.Namespace,
    label: str,
    expected_s: float | None = None,
) -> dict[str, Any]:
    """Run `command` (stdout and stderr into `log_path`), sampling the resident memory of
    it and its children; stop it past `limits.max_rss_gb`, when the machine's available
    memory falls under `limits.min_free_gb`, or past `limits.max_stage_s`. Every 30 s logs
    progress with an ETA from `expected_s`. Its JSON answer (last stdout line) plus
    `peak_rss_mb`, `wall_s` and `stopped` (None, or "broke: why")."""
    import psutil

    max_rss_mb, min_free_mb = limits.max_rss_gb * 1024, limits.min_free_gb * 1024
    t0 = time.perf_counter()
    with log_path.open("w") as sink:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True)
    root = psutil.Process(proc.pid)
    peak, stopped, last_log = 0.0, None, t0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            rss = 0
        peak = max(peak, rss / 2**20)
        wall = time.perf_counter() - t0
        free = psutil.virtual_memory().available / 2**20
        if peak > max_rss_mb:
            stopped = f"resident memory passed {limits.max_rss_gb:g} GB after {wall:.0f} s"
        elif free < min_free_mb:
            stopped = (
                f"the machine's available memory fell to {free / 1024:.1f} GB after "
                f"{wall:.0f} s (the stage held {rss / 2**30:.1f} GB)"
            )
        elif wall > limits.max_stage_s:
            stopped = f"still running after {limits.max_stage_s:.0f} s"
        if stopped:
            stopped = f"broke: {stopped}"
            log.warning("stopping %s: %s", label, stopped)
            proc.kill()
            break
        if time.perf_counter() - last_log >= 30:
            last_log = time.perf_counter()
            eta = (
                f", ETA about {max(expected_s - wall, 0):.0f} s (expected {expected_s:.0f} s)"
                if expected_s
                else ""
            )
            log.info(
                "%s: %.0f s, %.1f GB resident (peak %.1f)%s, load %.1f",
                label, wall, rss / 2**30, peak / 1024, eta, os.getloadavg()[0],
            )  # fmt: skip
        time.sleep(0.2)
    proc.wait()
    out = log_path.read_text(errors="replace").strip().splitlines()
    result: dict[str, Any] = {}
    if proc.returncode == 0 and out:
        result = json.loads(out[-1])
    elif not stopped:
        tail = "\n".join(out[-15:])[-1500:]
        stopped = f"broke: failed with exit code {proc.returncode}: {tail}"
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
    """Search and recommendations under `wrk` at `connections` (load_test.py's runner),
    and the server's resident memory after them."""
    import psutil

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
        procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children(True)]
        out["server_rss_mb"] = round(sum(p.memory_info().rss for p in procs) / 2**20, 1)
    finally:
        load_test.stop_server(server)
        load_test.revoke_key(url, key_id)
    return out


def expected_seconds(stage: str, items: int, previous: list[dict[str, Any]]) -> float | None:
    """The largest smaller point's seconds for `stage`, scaled by its events (or items)."""
    done = [
        p for p in previous
        if p["items"] < items and p.get(stage) and not p[stage].get("stopped")
    ]  # fmt: skip
    if not done:
        return None
    ref = max(done, key=lambda p: p["items"])
    ratio = POINTS.get(items, items // 2) / POINTS.get(ref["items"], ref["items"] // 2)
    if ratio == 1:
        ratio = items / ref["items"]
    return float(ref[stage]["wall_s"]) * ratio


def run_point(
    items: int,
    args: argparse.Namespace,
    previous: list[dict[str, Any]],
    on_stage: Any = None,
) -> dict[str, Any]:
    """Every stage of one point (those already done are read back from `stages.json`);
    `on_stage(point)` after each stage (the caller rewrites the curve's JSON)."""
    users = POINTS.get(items, max(1, items // 2))
    directory = args.work / str(items)
    directory.mkdir(parents=True, exist_ok=True)
    saved = directory / "stages.json"
    point: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}
    point.update(items=items, users=users, days=DAYS)

    def save() -> None:
        saved.write_text(json.dumps(point, indent=2) + "\n")
        if on_stage is not None:
            on_stage(point)

    me = [sys.executable, str(Path(__file__).resolve()), "--point-dir", str(directory)]
    for stage in STAGES:
        if point.get(stage) and not point[stage].get("stopped"):
            continue
        if stage == "ingest" and (directory / "store.duckdb").exists():
            (directory / "store.duckdb").unlink()  # a stopped ingest leaves half a store
        if stage in ("ingest", "build") and (directory / "artifacts").exists():
            shutil.rmtree(directory / "artifacts")
        for later in STAGES[STAGES.index(stage) + 1 :]:
            point.pop(later, None)  # redone after this one
        point.pop("restart", None)
        point.pop("requests", None)
        log.info("%d items: %s ...", items, stage)
        if stage == "ingest":
            command = ingest_command(directory)
        else:
            command = [*me, "--items", str(items), "--users", str(users), "--stage", stage]
        point[stage] = watch(
            command,
            directory / f"{stage}.log",
            args,
            f"{items} items {stage}",
            expected_seconds(stage, items, previous),
        )
        if stage == "ingest":
            point[stage]["path"] = (
                "shelfwise ingest (CLI: events validated by column, items and users row by row)"
            )
        if stage == "ingest" and not point[stage]["stopped"]:
            point[stage]["ingest_events_per_s"] = round(
                point[stage]["events"] / max(point[stage]["seconds"], 1e-9)
            )
        point[stage]["load_avg_1m"] = round(os.getloadavg()[0], 2)
        point["stopped_at"] = None
        if point[stage]["stopped"]:
            point["stopped_at"] = f"{stage}: {point[stage]['stopped']}"
        save()
        log.info("%d items: %s %s", items, stage, point[stage])
        if point["stopped_at"] or (args.until == stage):
            return point
    point.pop("stopped_at", None)
    if args.until == "build":
        return point
    for stage, measure in (
        ("restart", lambda: restart(directory, items)),
        ("requests", lambda: requests(directory, args.connections, args.duration)),
    ):
        if args.redo_serving or stage not in point:
            t0 = time.perf_counter()
            try:
                point[stage] = measure()
            except Exception as exc:  # recorded: the curve goes on to write what it has
                point[stage] = {
                    "stopped": f"broke: {type(exc).__name__}: {str(exc)[-1500:]}",
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
                point["stopped_at"] = f"{stage}: {point[stage]['stopped']}"
            point[stage]["load_avg_1m"] = round(os.getloadavg()[0], 2)
            save()
            if point.get("stopped_at"):
                return point
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
    stages = (("ingest", "ingest (before: + generate)"), ("build", "bundle build"))
    for stage, label in stages:
        ax.plot(*series(finished(stage)), "o-", label=label)
        xs, ys = series(lambda p, s=stage: p[s]["wall_s"] if p[s]["stopped"] else None)
        if xs:
            ax.plot(xs, ys, "x", color="red", markersize=10, label=f"{label} stopped")
    ax.set(title="Build (s)", ylabel="seconds")
    ax = axes[0][1]
    for stage in STAGES:
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
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "scale")
    parser.add_argument("--max-rss-gb", type=float, default=12.0)
    parser.add_argument(
        "--min-free-gb", type=float, default=1.5, help="stop a stage below this available"
    )
    parser.add_argument("--max-stage-s", type=float, default=1800.0)
    parser.add_argument(
        "--search-mode",
        default="lexical",
        help="the server's search mode (SHELFWISE_SEARCH__MODE); any but lexical embeds "
        "the whole catalogue with MiniLM at the first start",
    )
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8, help="seconds per request run")
    parser.add_argument("--keep-going", action="store_true", help="after a stopped point too")
    parser.add_argument("--redo-serving", action="store_true", help="restart and requests again")
    parser.add_argument(
        "--until", choices=STAGES, help="stop each point after this stage (serving later)"
    )
    parser.add_argument("--replot", action="store_true", help="the plot from the JSON, no run")
    parser.add_argument(
        "--collect",
        action="store_true",
        help="no run: the points' stages.json under --work into the JSON (runs of single "
        "points in parallel)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    # the child's arguments
    parser.add_argument("--stage", choices=("generate", "build"), help=argparse.SUPPRESS)
    parser.add_argument("--point-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

    if args.stage:  # the child: one stage, its JSON on the last stdout line
        logging.getLogger().setLevel(logging.WARNING)
        if args.stage == "generate":
            result = stage_generate(args.point_dir, args.items, args.users)
        else:
            result = stage_build(args.point_dir)
        print(json.dumps(result))
        return 0
    plot_path = PLOT if args.out == RESULTS else args.out.with_suffix(".png")
    if args.replot:
        plot(json.loads(args.out.read_text()), plot_path)
        return 0

    from startup import machine

    os.environ["SHELFWISE_SEARCH__MODE"] = args.search_mode  # the servers started below

    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    done = {p["items"]: p for p in previous.get("points", [])}
    report: dict[str, Any] = {
        "benchmark": "scale_curve",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "store": "DuckDB, one server process",
        "search_mode": args.search_mode,
        "max_rss_gb": args.max_rss_gb,
        "min_free_gb": args.min_free_gb,
        "max_stage_s": args.max_stage_s,
        "connections": args.connections,
        "duration_s": args.duration,
        "points": [],
    }

    def write(point: dict[str, Any]) -> None:
        if args.out.exists():  # points another run (another size) wrote meanwhile
            for other in json.loads(args.out.read_text()).get("points", []):
                if other["items"] != point["items"]:
                    done[other["items"]] = other
        done[point["items"]] = point
        report["points"] = [done[k] for k in sorted(done)]
        report["machine"] = machine()
        report["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        plot(report, plot_path)

    for items in sorted(int(p) for p in args.points.split(",") if p.strip()):
        if args.collect:
            saved = args.work / str(items) / "stages.json"
            if saved.exists():
                write(json.loads(saved.read_text()))
            continue
        point = run_point(items, args, list(done.values()), on_stage=write)
        write(point)
        if point.get("stopped_at") and not args.keep_going:
            log.warning("%d items stopped (%s): the larger points are not run", items,
                        point["stopped_at"])  # fmt: skip
            break
    log.info("written %s and %s", args.out, plot_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
