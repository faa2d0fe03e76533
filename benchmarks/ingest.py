"""Ingest and training throughput of the foundation, per dataset and store backend.

    python benchmarks/ingest.py [--datasets demo,movielens-100k,amazon-beauty]
                                [--postgres URL] [--out benchmarks/results/ingest.json]

For each dataset: load (and, for the demo, validate every row from the files) -> ingest into
DuckDB (and PostgreSQL when --postgres or $SHELFWISE_BENCH_POSTGRES_URL is given) -> read the
interactions back -> build the CSR matrix -> fit item-kNN -> build the BM25 index. Prints a
table and writes JSON. Peak memory is the process's max RSS after each dataset.

    python benchmarks/ingest.py --paths [ingest_paths.py's options]

compares the two validation paths of `shelfwise ingest --events FILE.csv` instead (row by
row with pydantic, and by column: `shelfwise.data.bulk`) on the scale curve's 1.3M-event
demo file, and times the whole CLI ingest (see benchmarks/ingest_paths.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from shelfwise.data.datasets import is_available, load_dataset
from shelfwise.data.demo import DemoConfig, generate, write_demo
from shelfwise.data.io import load_records
from shelfwise.data.matrix import build_interactions
from shelfwise.recommenders import create
from shelfwise.search.bm25 import BM25Index
from shelfwise.store import open_store


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def frames_for(name: str, workdir: Path) -> tuple[dict[str, Any], float]:
    t0 = time.perf_counter()
    if name == "demo":
        files = write_demo(generate(DemoConfig()), workdir / "demo")
        frames = {k: load_records(p, k) for k, p in files.items()}
    else:
        ds = load_dataset(name)
        frames = {"items": ds.items, "users": ds.users, "events": ds.events}
    return frames, time.perf_counter() - t0


def fresh_postgres(admin_url: str) -> tuple[str, str]:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {db}")
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{db}", db


def drop_postgres(admin_url: str, db: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as con:
        con.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def run_one(name: str, url: str, frames: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    with open_store(url) as store:
        t0 = time.perf_counter()
        report = store.ingest(**frames)
        out["ingest_s"] = time.perf_counter() - t0
        out["events_per_s"] = report.events / out["ingest_s"]
        t0 = time.perf_counter()
        inter = store.interactions()
        out["read_interactions_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = store.ingest(**frames)
        out["reingest_noop_s"] = time.perf_counter() - t0
        assert again.events == 0, "re-ingest must add nothing"
    t0 = time.perf_counter()
    data = build_interactions(inter)
    out["matrix_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    create("itemknn").fit(data)
    out["itemknn_fit_s"] = time.perf_counter() - t0
    items = frames["items"]
    t0 = time.perf_counter()
    BM25Index().index(
        {f: items[f].fillna("").tolist() for f in ("title", "brand", "category", "description")}
    )
    out["bm25_index_s"] = time.perf_counter() - t0
    return {k: round(v, 3) for k, v in out.items()}


def main() -> int:
    if "--paths" in sys.argv:
        sys.argv.remove("--paths")
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import ingest_paths

        return ingest_paths.main()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="demo,movielens-100k,amazon-beauty")
    parser.add_argument("--postgres", default=os.environ.get("SHELFWISE_BENCH_POSTGRES_URL"))
    parser.add_argument("--out", default="benchmarks/results/ingest.json")
    args = parser.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0], "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in args.datasets.split(","):
            if name != "demo" and not is_available(name):
                print(f"skip {name}: not found")
                continue
            frames, load_s = frames_for(name, workdir)
            entry: dict[str, Any] = {
                "rows": {k: len(v) for k, v in frames.items()},
                "load_and_validate_s": round(load_s, 3),
                "backends": {},
            }
            url = f"duckdb:///{workdir / (name + '.duckdb')}"
            entry["backends"]["duckdb"] = run_one(name, url, frames)
            if args.postgres:
                pg_url, db = fresh_postgres(args.postgres)
                try:
                    entry["backends"]["postgresql"] = run_one(name, pg_url, frames)
                finally:
                    drop_postgres(args.postgres, db)
            entry["max_rss_mb"] = round(max_rss_mb(), 1)
            results["datasets"][name] = entry
            for backend, r in entry["backends"].items():
                print(
                    f"{name:<16} {backend:<10} events {entry['rows']['events']:>7,}  "
                    f"load {load_s:6.2f}s  ingest {r['ingest_s']:6.2f}s "
                    f"({r['events_per_s']:>9,.0f} ev/s)  read {r['read_interactions_s']:5.2f}s  "
                    f"matrix {r['matrix_s']:5.2f}s  itemknn {r['itemknn_fit_s']:5.2f}s  "
                    f"bm25 {r['bm25_index_s']:5.2f}s  rss {entry['max_rss_mb']:.0f} MB",
                    flush=True,
                )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
