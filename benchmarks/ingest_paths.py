"""The two validation paths of `shelfwise ingest --events FILE.csv`, on the same file:
row by row (pydantic per record, `load_records(..., bulk=False)`, the path before) and by
column (`shelfwise.data.bulk`, the default now), and the whole CLI ingest into DuckDB.

    nice -n 19 python benchmarks/ingest_paths.py                 # 1.3M events (12k items)
    python benchmarks/ingest_paths.py --users 2000 --items 5000  # a quick one

The demo store (`--items`, `--users`, `--days`, seed 7: the scale curve's 12k point, about
1.3M events) is generated once into `--work` as `shelfwise ingest` reads it. Per path:
wall and CPU seconds (`time.process_time`, the process: Arrow's reader uses threads) per
repeat, events a second, and whether both paths gave equal frames (`assert_frame_equal`).
Then `shelfwise ingest --items --users --events` into a fresh DuckDB file in a child
process: wall seconds, events a second, its peak RSS. Every figure comes with the load
average (1 min) when it was taken: the machine is shared.

Writes benchmarks/results/ingest_paths.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from shelfwise.data.demo import DemoConfig, generate, write_demo
from shelfwise.data.io import load_records

ROOT = Path(__file__).resolve().parents[1]


def files(work: Path, items: int, users: int, days: int) -> dict[str, Path]:
    directory = work / f"demo-{items}-{users}-{days}"
    done = directory / "done"
    paths = {k: directory / f"{k}.{'csv' if k == 'events' else 'jsonl'}" for k in
             ("items", "users", "events")}  # fmt: skip
    if not done.exists():
        demo = generate(DemoConfig(seed=7, n_items=items, n_users=users, days=days), progress=True)
        write_demo(demo, directory)
        done.write_text("")
    return paths


def timed(fn: Any) -> tuple[Any, dict[str, float]]:
    load = os.getloadavg()[0]
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, {
        "wall_s": round(time.perf_counter() - w0, 2),
        "cpu_s": round(time.process_time() - c0, 2),
        "load_avg_1m": round(load, 2),
    }


def summary(runs: list[dict[str, float]], events: int) -> dict[str, Any]:
    walls = [r["wall_s"] for r in runs]
    return {
        "runs": runs,
        "wall_s_median": round(statistics.median(walls), 2),
        "wall_s_spread": [min(walls), max(walls)],
        "events_per_s_wall": round(events / statistics.median(walls)),
        "events_per_s_cpu": round(events / statistics.median(r["cpu_s"] for r in runs)),
    }


def cli_ingest(paths: dict[str, Path], work: Path) -> dict[str, Any]:
    store = work / "cli.duckdb"
    for leftover in (store, store.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    command = [sys.executable, "-m", "shelfwise", "ingest", "--json", "--store",
               f"duckdb:///{store}"]  # fmt: skip
    for kind, path in paths.items():
        command += [f"--{kind}", str(path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    store.unlink(missing_ok=True)
    return {
        "command": " ".join(command[1:]),
        "wall_s": round(wall, 1),
        "cpu_s": round(child.ru_utime + child.ru_stime, 1),
        "events": report["events"],
        "events_per_s": round(report["events"] / wall),
        "peak_rss_mb": round(child.ru_maxrss / 1024),
        "load_avg_1m": round(load, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=12_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "ingest_paths")
    parser.add_argument("--repeats", type=int, default=3, help="of the bulk path")
    parser.add_argument("--row-repeats", type=int, default=1, help="of the per-row path")
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/ingest_paths.json")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    paths = files(args.work, args.items, args.users, args.days)
    events = paths["events"]
    result: dict[str, Any] = {
        "benchmark": "ingest_paths",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "file": {"name": events.name, "mb": round(events.stat().st_size / 2**20, 1)},
        "cpus": os.cpu_count(),
    }
    bulk_runs, frame = [], None
    for _ in range(args.repeats):
        frame, run = timed(lambda: load_records(events, "events"))
        bulk_runs.append(run)
        print("bulk", run, flush=True)
    assert frame is not None
    n = len(frame)
    result["events"] = n
    result["bulk"] = summary(bulk_runs, n)
    row_runs, rows = [], None
    for _ in range(args.row_repeats):
        rows, run = timed(lambda: load_records(events, "events", bulk=False))
        row_runs.append(run)
        print("per-row", run, flush=True)
    if row_runs:
        result["per_row"] = summary(row_runs, n)
        assert rows is not None
        pd.testing.assert_frame_equal(frame, rows)
        result["frames_equal"] = True
        result["speedup_wall"] = round(
            result["per_row"]["wall_s_median"] / result["bulk"]["wall_s_median"], 1
        )
    del frame, rows
    if not args.no_cli:
        result["cli_ingest_duckdb"] = cli_ingest(paths, args.work)
        print("cli", result["cli_ingest_duckdb"], flush=True)
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
