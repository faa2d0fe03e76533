"""Start-up of the `shelfwise` commands that do not train: each one run as a user runs it,
one fresh process per call, timed in wall and CPU time (user + system, from `wait4`).

    .venv/bin/python benchmarks/cli_startup.py --store duckdb:////tmp/cli-store/store.duckdb \\
        --artifacts /tmp/cli-store/artifacts [--repeat 5] [--compare /path/to/other/src]

The store and registry are those of `benchmarks/cli_search.py` (its docstring says how to
make them). The commands: `--help`, `--version`, `datasets`, `stats`, `versions list`,
`search` with `--store` and `--artifacts`, `search` with both from the environment
(`SHELFWISE_STORE`, `SHELFWISE_PATHS__ARTIFACTS`) and `tune --help`. `--compare SRC` times
the same commands with `PYTHONPATH=SRC` too (another checkout's `src`, e.g. the code before a
change), call by call in turn so that both see the same load. One untimed round first
writes the byte code. The target (issue 15): under 2 s each. Writes
`benchmarks/results/cli_startup.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from cli_search import timed_process
from startup import _summary, machine  # the benchmarks folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "cli_startup.json"
TARGET_S = 2.0


def _commands(store: str, artifacts: str) -> dict[str, list[str]]:
    s, a = ["--store", store], ["--artifacts", artifacts]
    return {
        "--help": ["--help"],
        "--version": ["--version"],
        "datasets": ["datasets"],
        "stats": ["stats", *s],
        "versions list": ["versions", "list", *a],
        "search (flags)": ["search", "shampoo", "--json", *s, *a],
        "search (environment)": ["search", "shampoo", "--json"],
        "tune --help": ["tune", "--help"],
    }


def _call(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one `python -m shelfwise ARGV` process."""
    run = timed_process([sys.executable, "-m", "shelfwise", *argv], env)
    return run["wall_s"], run["cpu_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--compare", default=None, help="another src folder to time as well")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    commands = _commands(args.store, args.artifacts)
    trees = {"this": str(ROOT / "src")}
    if args.compare:
        trees["compare"] = str(Path(args.compare).resolve())
    base = dict(os.environ)
    base.pop("PYTHONDONTWRITEBYTECODE", None)
    base.update(SHELFWISE_STORE=args.store, SHELFWISE_PATHS__ARTIFACTS=args.artifacts)
    times: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {tree: [] for tree in trees} for name in commands
    }
    load_before = round(os.getloadavg()[0], 2)
    for round_ in range(args.repeat + 1):
        for name, argv in commands.items():
            for tree, src in trees.items():
                timing = _call(argv, {**base, "PYTHONPATH": src})
                if round_:  # the first round writes the byte code
                    times[name][tree].append(timing)
    report: dict[str, Any] = {
        "benchmark": "cli_startup",
        "command": " ".join(["python benchmarks/cli_startup.py", *sys.argv[1:]]),
        "repeats": args.repeat,
        "target": f"under {TARGET_S} s per non-training command, start-up included",
        "commands": {},
        "load_avg_1m_before": load_before,
        "machine": machine(),
    }
    for name, argv in commands.items():
        entry: dict[str, Any] = {"argv": argv}
        for tree in trees:
            runs = times[name][tree]
            entry[tree] = {
                "wall_s": _summary([w for w, _ in runs]),
                "cpu_s": _summary([c for _, c in runs]),
            }
        report["commands"][name] = entry
        shown = "  ".join(
            f"{tree}: {entry[tree]['cpu_s']['median']:.3f} s CPU, "
            f"{entry[tree]['wall_s']['median']:.2f} s wall"
            for tree in trees
        )
        print(f"{name:<22} {shown}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
