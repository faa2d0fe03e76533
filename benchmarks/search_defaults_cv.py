"""Which untuned search defaults transfer: nested query-level CV over a grid on a judged folder.

    python benchmarks/search_defaults_cv.py [--folder ../shared/data/beauty-search-dev]
                                            [--corpus amazon-beauty] [--seeds 0 1 2]
                                            [--cache-dir var/cache/embeddings]
                                            [--out benchmarks/results/search_defaults_cv.json]

The served default search (`SearchService` with MiniLM dense retrieval, hybrid) is scored
by nDCG@10 (`tuning.search.SearchEvaluator`, the scorer `shelfwise tune-search` uses) at
every point of `GRID`, the full product of a few values of BM25F k1, the category-mention
boost (`CATEGORY`: none, any mention, the mention holding the head word), the
lexical-confidence gate (`dense_confident_matches`), the proximity boost and
the category field weight; the defaults before this grid (`OLD_DEFAULTS`) are one point.

Nested cross-validation, query level: for each of `--seeds`, the queries are split into 5
folds (`tuning.search.query_folds`, whole query texts per fold); for each fold the grid
point with the best mean on the other 4 folds is chosen and scored on the held-out fold.
The report gives, per seed, the out-of-fold mean (the honest estimate of "pick the
defaults on judged queries, serve them on unseen ones"), the per-fold gain over the old
defaults (the spread), the per-fold choices, the per-type means, and the grid point that
is best on every query (the values `SearchConfig` now defaults to when the folds agree).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CATEGORY: dict[str, dict[str, Any]] = {
    "none": {"category_boost": 0.0, "category_head_only": False},
    "any": {"category_boost": 0.3, "category_head_only": False},
    "head": {"category_boost": 0.3, "category_head_only": True},
}
"""How a category mention boosts: not at all, any mention, only one holding the head word."""
GRID: dict[str, list[Any]] = {
    "bm25.k1": [1.2, 2.8],
    "category": list(CATEGORY),
    "dense_confident_matches": [10, 100],
    "proximity_boost": [0.1, 0.3],
    "bm25.fields.category": [0.75, 1.5],
}
"""The grid (every combination is scored)."""
OLD_DEFAULTS: dict[str, Any] = {
    "bm25.k1": 1.2,
    "category": "any",
    "dense_confident_matches": 10,
    "proximity_boost": 0.1,
    "bm25.fields.category": 1.5,
}
"""The values `SearchConfig` defaulted to before this grid (scored with today's mention
detection, which prefers the mention holding the head word; the benchmark
`search_relevance.json` of 2026-12-02 has the default before both: 0.8251)."""


def config_of(point: dict[str, Any]) -> dict[str, Any]:
    """The `SearchConfig` parameters of a grid point."""
    out = {k: v for k, v in point.items() if k != "category"}
    out.update(CATEGORY[point["category"]])
    return out


SERVED: dict[str, Any] = {
    "bm25.k1": 2.8,
    "category": "head",
    "dense_confident_matches": 100,
    "proximity_boost": 0.3,
    "bm25.fields.category": 1.5,
}
"""The grid point `SearchConfig` defaults to now: the values the folds chose for k1 and the
gate, and, where the folds split (the category boost, within 0.0005 of no boost on every
query), the one that keeps the demo store's category intent ("green tea" finds teas)."""
FOLDS = 5

log = logging.getLogger("search_defaults_cv")


def _by_type(types: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return {str(t): round(float(scores[types == t].mean()), 4) for t in sorted(set(types))}


def nested_cv(
    points: list[dict[str, Any]],
    scores: np.ndarray,
    groups: list[str],
    types: np.ndarray,
    base: int,
    seed: int,
) -> dict[str, Any]:
    """Per fold, the grid point best on the other folds, scored on this one."""
    from shelfwise.tuning.search import query_folds

    fold_of = query_folds(groups, FOLDS, seed)
    oof = np.zeros(scores.shape[1])
    folds: list[dict[str, Any]] = []
    gains: list[float] = []
    for f in range(FOLDS):
        train = fold_of != f
        pick = int(np.argmax(scores[:, train].mean(axis=1)))
        oof[~train] = scores[pick, ~train]
        gains.append(float(scores[pick, ~train].mean() - scores[base, ~train].mean()))
        folds.append(
            {
                "fold": f,
                "queries": int((~train).sum()),
                "chosen": points[pick],
                "held_out_ndcg": round(float(scores[pick, ~train].mean()), 4),
                "old_defaults_ndcg": round(float(scores[base, ~train].mean()), 4),
                "gain": round(gains[-1], 4),
            }
        )
    return {
        "seed": seed,
        "cv_ndcg": round(float(oof.mean()), 4),
        "old_defaults_ndcg": round(float(scores[base].mean()), 4),
        "gain_mean": round(float(np.mean(gains)), 4),
        "gain_min": round(float(np.min(gains)), 4),
        "gain_max": round(float(np.max(gains)), 4),
        "by_type": _by_type(types, oof),
        "folds": folds,
    }


def run(folder: Path, corpus: str, seeds: list[int], cache_dir: Path | None) -> dict[str, Any]:
    """Score the grid and cross-validate the choice (see the module doc)."""
    from shelfwise.search.judged import load_judged_folder
    from shelfwise.search.service import SearchService
    from shelfwise.tuning.search import Judged, SearchEvaluator, apply_params

    dataset = load_judged_folder(folder, corpus=corpus)
    service = SearchService.build(dataset.items)
    service.enable_dense(cache_dir=cache_dir)
    evaluator = SearchEvaluator(service, Judged.from_dataset(dataset))
    names = list(GRID)
    points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*GRID.values())]
    base = points.index(OLD_DEFAULTS)
    scores = np.zeros((len(points), len(dataset.queries)))
    t0 = time.perf_counter()
    for i, point in enumerate(points):
        scores[i] = evaluator.per_query(apply_params(service.config, config_of(point)))
        done = time.perf_counter() - t0
        eta = done / (i + 1) * (len(points) - i - 1)
        log.info("grid point %d/%d nDCG@10 %.4f, ETA %.0fs", i + 1, len(points),
                 scores[i].mean(), eta)  # fmt: skip
    types = dataset.queries["type"].astype(str).to_numpy()
    groups = dataset.queries["group"].astype(str).tolist()
    best = int(np.argmax(scores.mean(axis=1)))
    order = np.argsort(-scores.mean(axis=1), kind="stable")
    return {
        "folder": folder.name,
        "corpus": corpus,
        "queries": len(dataset.queries),
        "folds": FOLDS,
        "grid": GRID,
        "old_defaults": {
            "params": OLD_DEFAULTS,
            "ndcg@10": round(float(scores[base].mean()), 4),
            "by_type": _by_type(types, scores[base]),
        },
        "best_on_all_queries": {
            "params": points[best],
            "ndcg@10": round(float(scores[best].mean()), 4),
            "by_type": _by_type(types, scores[best]),
            "note": "chosen on every query (optimistic); read nested_cv for the honest number",
        },
        "nested_cv": [nested_cv(points, scores, groups, types, base, s) for s in seeds],
        "ranking": [
            {"params": points[j], "ndcg@10": round(float(scores[j].mean()), 4)}
            for j in order.tolist()
        ],
        "seconds": round(time.perf_counter() - t0, 1),
    }


def table(report: dict[str, Any]) -> str:
    """Markdown: per seed, the nested-CV nDCG@10 beside the old defaults, the per-fold gain
    range and how often each value was chosen; then the old defaults and the best point on
    every query, by type."""
    lines = [
        "| fold seed | nested CV nDCG@10 | old defaults | per-fold gain (min .. max) | "
        "chosen k1 2.8 | chosen gate 100 | chosen category (none / any / head) |",
        "|---:|---:|---:|---|---:|---:|---|",
    ]
    for cv in report["nested_cv"]:
        chosen = [f["chosen"] for f in cv["folds"]]
        k1 = sum(c["bm25.k1"] == 2.8 for c in chosen)
        gate = sum(c["dense_confident_matches"] == 100 for c in chosen)
        cats = " / ".join(str(sum(c["category"] == k for c in chosen)) for k in CATEGORY)
        lines.append(
            f"| {cv['seed']} | {cv['cv_ndcg']:.4f} | {cv['old_defaults_ndcg']:.4f} | "
            f"{cv['gain_min']:+.4f} .. {cv['gain_max']:+.4f} | {k1}/{len(chosen)} | "
            f"{gate}/{len(chosen)} | {cats} |"
        )
    types = sorted(report["old_defaults"]["by_type"])
    lines += ["", "| point | nDCG@10 | " + " | ".join(types) + " |",
              "|---|---:|" + "---:|" * len(types)]  # fmt: skip
    for name, key in (
        ("old defaults", "old_defaults"),
        ("best on every query", "best_on_all_queries"),
    ):
        r = report[key]
        params = ", ".join(f"{k} {v}" for k, v in r["params"].items())
        cells = " | ".join(f"{r['by_type'][t]:.3f}" for t in types)
        lines.append(f"| {name}: {params} | {r['ndcg@10']:.4f} | {cells} |")
    served = next(r for r in report["ranking"] if r["params"] == SERVED)
    params = ", ".join(f"{k} {v}" for k, v in SERVED.items())
    lines.append(f"| served defaults: {params} | {served['ndcg@10']:.4f} | "
                 + " | ".join("" for _ in types) + " |")  # fmt: skip
    return "\n".join(lines)


def cv_arguments(doc: str | None, name: str, argv: list[str] | None) -> argparse.Namespace:
    """The options of a nested-CV script over the judged queries (this one's and
    `search_head_cv.py`'s): --folder (beauty-search-dev under the data directory), --corpus,
    --seeds, --cache-dir, --out (benchmarks/results/NAME.json); sets up logging."""
    from shelfwise.settings import data_dir

    ap = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    base = data_dir()
    ap.add_argument("--folder", type=Path,
                    default=base / "beauty-search-dev" if base is not None else None)  # fmt: skip
    ap.add_argument("--corpus", default="amazon-beauty")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--cache-dir", type=Path, default=None, help="embedding cache folder")
    ap.add_argument("--out", type=Path, default=Path(f"benchmarks/results/{name}.json"))
    args = ap.parse_args(argv)
    if args.folder is None:
        ap.error("--folder: no data directory found (set SHELFWISE_DATA_DIR)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run and write the JSON report."""
    args = cv_arguments(__doc__, "search_defaults_cv", argv)
    report = run(args.folder, args.corpus, args.seeds, args.cache_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for cv in report["nested_cv"]:
        print(f"seed {cv['seed']}: nested CV nDCG@10 {cv['cv_ndcg']:.4f} (old defaults "
              f"{cv['old_defaults_ndcg']:.4f}; per-fold gain {cv['gain_min']:+.4f} .. "
              f"{cv['gain_max']:+.4f})")  # fmt: skip
    print(f"best on all queries: {report['best_on_all_queries']}")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
