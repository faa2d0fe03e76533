"""Does the head-word boost transfer: nested query-level CV over its weight (and the brand boost).

    python benchmarks/search_head_cv.py [--folder ../shared/data/beauty-search-dev]
                                        [--corpus amazon-beauty] [--seeds 0 1 2]
                                        [--cache-dir var/cache/embeddings]
                                        [--out benchmarks/results/search_head_cv.json]

The served default search (`SearchService` with MiniLM dense retrieval, hybrid) is scored by
nDCG@10 (`tuning.search.SearchEvaluator`) at every point of `GRID`: `SearchConfig.head_boost`
(the query's head word against the product's head words, `search.understanding.product_heads`:
matches raised, products whose name holds the word only as a qualifier lowered) and
`brand_boost`. Nested CV as in `search_defaults_cv.py` (whose `nested_cv` this reuses): per
fold seed, each of 5 query folds is scored with the point best on the other 4; the
baseline is the served defaults before the head boost (`BASE`). The report also keeps each
point's per-type means on all queries and the judged fraction of the top 10 (a ranking
change that brings unjudged products up loses nDCG on these pooled judgements whether or not
they are relevant).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from search_defaults_cv import _by_type, cv_arguments, nested_cv

GRID: dict[str, list[Any]] = {
    "head_boost": [0.0, 0.1, 0.2, 0.35, 0.5],
    "brand_boost": [0.5, 1.0],
}
"""The grid (every combination is scored)."""
BASE: dict[str, Any] = {"head_boost": 0.0, "brand_boost": 0.5}
"""The served defaults before the head boost."""

log = logging.getLogger("search_head_cv")


def run(folder: Path, corpus: str, seeds: list[int], cache_dir: Path | None) -> dict[str, Any]:
    """Score the grid and cross-validate the choice (see the module doc)."""
    from shelfwise.search.judged import load_judged_folder
    from shelfwise.search.service import SearchService
    from shelfwise.tuning.search import Judged, SearchEvaluator, apply_params

    dataset = load_judged_folder(folder, corpus=corpus)
    service = SearchService.build(dataset.items)
    service.enable_dense(cache_dir=cache_dir)
    judged = Judged.from_dataset(dataset)
    evaluator = SearchEvaluator(service, judged)
    names = list(GRID)
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*GRID.values())]
    base = points.index(BASE)
    scores = np.zeros((len(points), len(dataset.queries)))
    judged_at = np.zeros(len(points))
    t0, c0 = time.perf_counter(), time.process_time()
    for i, point in enumerate(points):
        keep: dict[int, np.ndarray] = {}
        scores[i] = evaluator.per_query(apply_params(service.config, point), keep=keep)
        judged_at[i] = np.mean(
            [np.mean([int(r) in judged.judgements[q] for r in rows]) for q, rows in keep.items()]
        )
        log.info("point %d/%d %s nDCG@10 %.4f", i + 1, len(points), point, scores[i].mean())
    types = dataset.queries["type"].astype(str).to_numpy()
    groups = dataset.queries["group"].astype(str).tolist()
    return {
        "folder": folder.name,
        "corpus": corpus,
        "queries": len(dataset.queries),
        "grid": GRID,
        "base": BASE,
        "points": [
            {
                "params": p,
                "ndcg@10": round(float(scores[j].mean()), 4),
                "judged@10": round(float(judged_at[j]), 3),
                "by_type": _by_type(types, scores[j]),
            }
            for j, p in enumerate(points)
        ],
        "nested_cv": [nested_cv(points, scores, groups, types, base, s) for s in seeds],
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Run and write the JSON report."""
    args = cv_arguments(__doc__, "search_head_cv", argv)
    report = run(args.folder, args.corpus, args.seeds, args.cache_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for p in report["points"]:
        print(p["params"], p["ndcg@10"], p["judged@10"], p["by_type"])
    for cv in report["nested_cv"]:
        chosen = [f["chosen"] for f in cv["folds"]]
        print(f"seed {cv['seed']}: nested CV nDCG@10 {cv['cv_ndcg']:.4f} (base "
              f"{cv['old_defaults_ndcg']:.4f}; per-fold gain {cv['gain_min']:+.4f} .. "
              f"{cv['gain_max']:+.4f}) by type {cv['by_type']} chosen {chosen}")  # fmt: skip
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
