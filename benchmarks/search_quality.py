"""Search relevance side by side: BM25F, dense (MiniLM + faiss), hybrid fusion and the
LightGBM re-ranker, on every labelled search dataset present plus the demo store.

    .venv/bin/python benchmarks/search_quality.py [--methods ...] [--folds 5] [--out FILE]

Writes `benchmarks/results/search_quality.json`: per dataset the metrics of each method
(nDCG@10, MAP, P@10, Recall@100), the LTR cross-validation's feature gain shares, timings,
and which datasets were absent and why. Item embeddings are cached under
`var/cache/embeddings`, so only the first run pays for embedding the catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from shelfwise.cli.evaluate_search import format_search_table
from shelfwise.errors import DataError
from shelfwise.search.relevance import (
    METHODS,
    SEARCH_DATASETS,
    dataset_status,
    evaluate_search,
    load_search_dataset,
)
from shelfwise.settings import data_dir

RESULTS = Path(__file__).resolve().parent / "results" / "search_quality.json"


def main() -> int:
    """Run the comparison and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for embedding")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    status = dataset_status()
    runs: list[dict[str, Any]] = []
    for name in SEARCH_DATASETS:
        options: dict[str, Any] = {"seed": args.seed} if name == "demo" else {}
        try:
            dataset = load_search_dataset(name, **options)
        except DataError as exc:
            print(f"note: {name} skipped: {exc}", flush=True)
            continue
        t0 = time.perf_counter()
        report = evaluate_search(dataset, methods, folds=args.folds, seed=args.seed)
        report["wall_seconds"] = round(time.perf_counter() - t0, 1)
        runs.append(report)
        print(format_search_table(report), flush=True)
        print(flush=True)
    out = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "data_dir": str(data_dir()),
        "datasets": status,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch_threads": args.threads,
        },
        "runs": runs,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
