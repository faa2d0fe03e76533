"""`shelfwise search` from the command line, timed as a user runs it: one process per query,
start-up included, answering from the served bundle's persisted search index.

    .venv/bin/python benchmarks/cli_search.py --store duckdb:////tmp/cli-store/store.duckdb \\
        --artifacts /tmp/cli-store/artifacts [--query shampoo] [--repeat 5]

The store and its bundle are made beforehand, e.g. for the 12,101 Amazon Beauty products:

    SHELFWISE_DATA_DIR=/work/shared/data shelfwise ingest --dataset amazon-beauty \\
        --store duckdb:////tmp/cli-store/store.duckdb
    shelfwise build --store duckdb:////tmp/cli-store/store.duckdb \\
        --artifacts /tmp/cli-store/artifacts

Each repeat runs `python -m shelfwise search QUERY --json` in a fresh process and records
its wall time and its CPU time (user + system, from `wait4`): on a shared machine the wall
time grows with the load while the CPU time stays what the call costs, so both are kept,
with the 1-minute load average before and after. One untimed call first writes the byte
code (an installed package has it; `--no-bytecode` times calls that compile every module,
as with PYTHONDONTWRITEBYTECODE=1 and no cache). Checks that every call answered from the
bundle (exit 0, results, no rebuild). Writes `benchmarks/results/cli_search.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from startup import _summary, machine  # the benchmarks folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cli_search.json"
TARGET_S = 1.5


def timed_process(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `command` to its end: its wall time, CPU time (user + system, from `wait4`),
    peak memory, stdout and stderr; an error naming the command when it fails. The output
    goes to files, so a process that writes much cannot block on a full pipe."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` exited {proc.returncode}: {stderr[-2000:]}")
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
        "stdout": stdout,
        "stderr": stderr.strip(),
    }


def _one_call(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """(wall s, cpu s, the JSON answer) of one `shelfwise search` process."""
    run = timed_process(command, env)
    if "indexing the store" in run["stderr"]:
        raise RuntimeError("the call built the index from the store: no served bundle")
    return {**run, "body": json.loads(run.pop("stdout"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="store URL the bundle was built from")
    parser.add_argument("--artifacts", required=True, type=Path, help="the registry")
    parser.add_argument("--query", default="shampoo")
    parser.add_argument("--bundle", default="", help="a label for the docs table")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-bytecode", action="store_true", help="compile every call")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    command = [
        sys.executable, "-m", "shelfwise", "search", args.query, "--json",
        "--store", args.store, "--artifacts", str(args.artifacts),
    ]  # fmt: skip
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.no_bytecode:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="shelfwise-nocache-")
    else:
        _one_call(command, env)  # writes the byte code, as an install does
    load_before = round(os.getloadavg()[0], 2)
    runs = []
    for i in range(args.repeat):
        run = _one_call(command, env)
        runs.append(run)
        print(
            f"call {i + 1}/{args.repeat}: {run['wall_s']:.2f}s wall, {run['cpu_s']:.2f}s cpu, "
            f"{run['body']['total']} results",
            flush=True,
        )
    first = runs[0]["body"]
    report: dict[str, Any] = {
        "benchmark": "cli_search",
        "command": " ".join(["python benchmarks/cli_search.py", *sys.argv[1:]]),
        "query": args.query,
        "bundle": args.bundle,
        "items": None,
        "repeats": args.repeat,
        "bytecode_cached": not args.no_bytecode,
        "target": f"under {TARGET_S} s per `shelfwise search` call at 12k products, "
        "start-up included",
        "summary": {key: _summary([r[key] for r in runs]) for key in ("wall_s", "cpu_s")},
        "max_rss_mb": round(max(r["max_rss_mb"] for r in runs), 1),
        "runs": [{k: round(r[k], 3) for k in ("wall_s", "cpu_s")} for r in runs],
        "answer": {
            "total": first["total"],
            "top": [i["item_id"] for i in first["items"][:3]],
            "took_ms": first["query_info"].get("took_ms"),
            "reranked": bool(first["query_info"].get("reranked")),
            "stderr": runs[0]["stderr"],
        },
        "load_avg_1m_before": load_before,
        "machine": machine(),
    }
    report["items"] = _items(args.artifacts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


def _items(artifacts: Path) -> int | None:
    """Products in the served bundle (its manifest's counts)."""
    from shelfwise.artifacts.registry import Registry

    active = Registry(artifacts).active()
    if active is None:
        return None
    directory = active.path
    manifest = json.loads((directory / "manifest.json").read_text())
    return int(manifest.get("counts", {}).get("items", 0)) or None


if __name__ == "__main__":
    main()
