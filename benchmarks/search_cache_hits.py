"""The hit rate of the search answer cache (`serve.search.SearchCache`) on a store's own
search log: the logged searches, in time order, replayed through an LRU of each size as the
server keys it (the query text, the other parameters being the storefront's defaults), with
the catalogue unchanged. The cache holds only searches without a user, so this is the rate
for a storefront whose searches are anonymous; a personalised search is never a hit.

    python benchmarks/search_cache_hits.py --store duckdb:///var/loadtest/store.duckdb

Writes benchmarks/results/search_cache_hits.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def replay(queries: list[str], size: int) -> float:
    """The share of `queries` an LRU of `size` answers from memory."""
    lru: OrderedDict[str, None] = OrderedDict()
    hits = 0
    for q in queries:
        if q in lru:
            hits += 1
            lru.move_to_end(q)
        else:
            lru[q] = None
            if len(lru) > size:
                lru.popitem(last=False)
    return hits / len(queries) if queries else 0.0


def main() -> int:
    """Replay the store's search log through LRUs of several sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store", default=f"duckdb:///{ROOT / 'var' / 'loadtest' / 'store.duckdb'}"
    )
    parser.add_argument("--sizes", default="256,1024,4096,16384")
    parser.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "search_cache_hits.json")
    )
    args = parser.parse_args()

    from shelfwise.store import open_store

    with open_store(args.store) as store:
        log = store.events(types=["search"])
    log = log[log["query"].notna()].sort_values(["timestamp"], kind="stable")
    queries = [str(q) for q in log["query"] if str(q).strip()]
    distinct = len(set(queries))
    rates = {int(s): round(replay(queries, int(s)), 4) for s in args.sizes.split(",")}
    report = {
        "benchmark": "search_cache_hits",
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "searches": len(queries),
        "distinct_queries": distinct,
        # a cache with room for every query still misses each query's first search
        "unbounded_hit_rate": round(1 - distinct / len(queries), 4) if queries else 0.0,
        "hit_rate_by_size": rates,
    }
    print(json.dumps(report, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
