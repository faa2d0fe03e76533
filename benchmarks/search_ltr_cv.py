"""Learning to rank from graded judgements, scored out of fold, on a judged folder.

    python benchmarks/search_ltr_cv.py [--folder ../shared/data/beauty-search-dev]
                                       [--corpus amazon-beauty] [--folds 5] [--seeds 0,1,2]
                                       [--no-dense] [--cache-dir var/cache/embeddings]
                                       [--out benchmarks/results/search_ltr_cv.json]

The LightGBM lambdarank re-ranker (`search.ltr.PersonalisedReranker`, default
`LTRConfig`) learns from the folder's graded judgements over the candidates Shelfwise's own
`SearchService` hands its re-ranker (the best `rerank_depth` = 100 of a mode, after query
understanding), and is scored with `--folds`-fold query-level cross-validation
(`search.judged.cross_validate_judged`: folds grouped by normalised query text, so no query
is ranked by a model that saw its judgements), once per seed of `--seeds`. Each row gives
the mean over seeds of nDCG@10, Recall@10, MRR@10 and judged@10 beside the un-reranked
baseline of the same candidates, the spread over seeds (sd, min, max), per query type, and
the features' share of the gain. Intervals are over the queries: each row keeps the
per-query nDCG@10 of the baseline and of the re-ranker (out of fold, averaged over the
seeds) as `per_query`, and the paired difference ltr - baseline (`paired_ndcg@10`).

Setups:

* `lexical`: the service without dense retrieval (its default mode is then lexical);
  unjudged candidates count as grade 0 in training (`unjudged="zero"`);
* `lexical-drop`: the same, unjudged candidates left out of training;
* `hybrid+dense`: dense retrieval on (the default mode is hybrid), the re-ranker with the
  dense-similarity features;
* `lexical+dense`: lexical candidates, the re-ranker with the dense-similarity features.

The dense setups need the packaged MiniLM and embed the catalogue once into `--cache-dir`
(minutes on a busy 2-core machine; later runs read the cache); `--no-dense` skips them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render_tables import QUERY_NOTE, per_query_cell  # noqa: E402
from startup import machine  # noqa: E402  (the benchmarks folder is on sys.path)

SETUPS: dict[str, dict[str, Any]] = {
    "lexical": {"dense": False, "unjudged": "zero", "ltr_mode": None},
    "lexical-drop": {"dense": False, "unjudged": "drop", "ltr_mode": None},
    "hybrid+dense": {"dense": True, "unjudged": "zero", "ltr_mode": None},
    "lexical+dense": {"dense": True, "unjudged": "zero", "ltr_mode": "lexical"},
}


def _row(report: dict[str, Any], dataset: Any) -> dict[str, Any]:
    """One setup's JSON row; `baseline` and `ltr` keep their per-query nDCG@10
    (`per_query`, query order; ltr's the mean over seeds) and `paired_ndcg@10` pairs them
    query by query (`stats.paired_test`, ltr - baseline)."""
    from shelfwise.evaluation.stats import paired_test
    from shelfwise.search.judged import judged_metrics

    cv = report["ltr_cv"]
    base = cv["baseline"]
    types = sorted(report["by_type"].get("ltr", {}))
    base_q = judged_metrics(report["runs"][base], dataset.judgements, 10, dataset.relevant_grade)
    base_ndcg = [round(float(v), 4) for v in base_q["ndcg"]]
    ltr_ndcg = [round(float(v), 4) for v in cv["per_query"]["ndcg@10"]]
    paired = paired_test(cv["per_query"]["ndcg@10"], base_q["ndcg"].to_numpy())
    return {
        "candidates_from": cv["candidates_from"],
        "dense_features": cv["dense_features"],
        "unjudged": cv["unjudged"],
        "candidates_per_query": cv["candidates"],
        "judged_share_of_candidates": cv["judged_candidates"],
        "baseline": {
            **{k: round(v, 4) for k, v in report["results"][base].items()},
            "per_query": {"ndcg@10": base_ndcg},
        },
        "ltr": {
            **{k: round(v, 4) for k, v in report["results"]["ltr"].items()},
            "per_query": {"ndcg@10": ltr_ndcg},
        },
        "paired_ndcg@10": {
            "mean_diff": round(paired["mean_diff"], 4),
            "ci95": [round(x, 4) for x in paired["ci95"]],
            "p_value_t": paired["p_value_t"],
            "p_value_wilcoxon": paired["p_value_wilcoxon"],
            "n_pairs": paired["n_pairs"],
        },
        "spread": {m: {k: round(v, 4) for k, v in row.items()} for m, row in cv["spread"].items()},
        "per_seed": {
            s: {k: round(v, 4) for k, v in row.items()} for s, row in cv["per_seed"].items()
        },
        "by_type_ndcg@10": {
            t: {
                "n": report["by_type"]["ltr"][t]["n"],
                "baseline": round(report["by_type"][base][t]["ndcg@10"], 4),
                "ltr": round(report["by_type"]["ltr"][t]["ndcg@10"], 4),
            }
            for t in types
        },
        "feature_gain_share": {k: v for k, v in cv["feature_gain_share"].items() if v > 0},
    }


def table(d: dict[str, Any]) -> str:
    """Markdown: one row per setup (baseline, out-of-fold mean, spread), then nDCG@10 per
    query type."""
    lines = [
        "| setup | candidates | unjudged in training | baseline nDCG@10 | ltr nDCG@10 "
        "(mean) | ltr - baseline [95% CI], p | sd | min-max | ltr Recall@10 | ltr MRR@10 "
        "| judged@10 baseline / ltr |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in d["setups"].items():
        sd = r["spread"]["ndcg@10"]
        dense = " + dense features" if r["dense_features"] else ""
        pair = r.get("paired_ndcg@10")
        diff = (
            f"{pair['mean_diff']:+.4f} [{pair['ci95'][0]:+.4f}, {pair['ci95'][1]:+.4f}], "
            f"p {pair['p_value_t']:.2g}"
            if pair
            else ""
        )
        lines.append(
            f"| `{name}` | {r['candidates_from']}{dense} | {r['unjudged']} "
            f"| {per_query_cell(r['baseline'], d['queries'])} "
            f"| **{per_query_cell(r['ltr'], d['queries'])}** | {diff} "
            f"| {sd['std']:.4f} | {sd['min']:.4f}-{sd['max']:.4f} "
            f"| {r['ltr']['recall@10']:.4f} | {r['ltr']['mrr@10']:.4f} "
            f"| {r['baseline']['judged@10']:.3f} / {r['ltr']['judged@10']:.3f} |"
        )
    types = sorted({t for r in d["setups"].values() for t in r["by_type_ndcg@10"]})
    names = list(d["setups"])
    lines += [
        "",
        "| type (n) | " + " | ".join(f"`{n}` baseline / ltr" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for t in types:
        cells = []
        n_q = ""
        for n in names:
            row = d["setups"][n]["by_type_ndcg@10"].get(t)
            if row is None:
                cells.append("")
                continue
            n_q = str(row["n"])
            cells.append(f"{row['baseline']:.3f} / {row['ltr']:.3f}")
        lines.append(f"| {t} ({n_q}) | " + " | ".join(cells) + " |")
    lines.append(
        f"\n{d['queries']} queries, {d['items']:,} items; {d['folds']}-fold query-level "
        f"cross-validation, seeds {', '.join(str(s) for s in d['seeds'])}; sd and min-max "
        "over the seeds. ltr nDCG@10: the interval over queries of each query's out-of-fold "
        "nDCG@10 averaged over the seeds; ltr - baseline: paired t over the same queries. "
        f"{QUERY_NOTE}"
    )
    notes = {r.get("defaults") for r in d["setups"].values()}
    if len(notes) > 1:
        lines.append("")
        lines += [f"- `{n}`: {r['defaults']}." for n, r in d["setups"].items() if r.get("defaults")]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--folder", type=Path, default=ROOT.parent / "shared" / "data" / "beauty-search-dev"
    )
    parser.add_argument("--corpus", default="amazon-beauty")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-dense", action="store_true")
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "cache" / "embeddings")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the setups of --out that this run does not score (each row says its defaults)",
    )
    parser.add_argument(
        "--kept-note",
        default="the earlier run's search defaults",
        help="with --merge: the `defaults` note of kept rows that have none",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_ltr_cv.json"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")

    from shelfwise.search.judged import evaluate_judged_search, load_judged_folder

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    names = [s for s in args.setups.split(",") if s in SETUPS]
    if args.no_dense:
        names = [s for s in names if not SETUPS[s]["dense"]]
    dataset = load_judged_folder(args.folder, corpus=args.corpus)
    from shelfwise.search.config import SearchConfig

    cfg = SearchConfig()
    defaults = (
        f"SearchConfig defaults of this run (k1 {cfg.bm25.k1:g}, dense_confident_matches "
        f"{cfg.dense_confident_matches}, proximity_boost {cfg.proximity_boost:g}, "
        f"category_boost {cfg.category_boost:g})"
    )
    kept: dict[str, Any] = {}
    if args.merge and args.out.is_file():
        kept = {
            k: {**v, "defaults": v.get("defaults", args.kept_note)}
            for k, v in json.loads(args.out.read_text())["setups"].items()
            if k not in names
        }
    rows: dict[str, Any] = {}
    loads: list[float] = []
    for name in names:
        t0 = time.perf_counter()
        setup = SETUPS[name]
        report = evaluate_judged_search(
            dataset,
            ["default"],
            cache_dir=args.cache_dir,
            ltr_cv=args.folds,
            ltr_seeds=seeds,
            unjudged=setup["unjudged"],
            dense=setup["dense"],
            ltr_mode=setup["ltr_mode"],
        )
        rows[name] = {
            **_row(report, dataset),
            "seconds": round(time.perf_counter() - t0, 1),
            "defaults": defaults,
        }
        loads.append(machine()["load_avg_1m"])
        b, r, sd = rows[name]["baseline"], rows[name]["ltr"], rows[name]["spread"]["ndcg@10"]
        print(
            f"{name:<14} baseline nDCG@10 {b['ndcg@10']:.4f}  ltr {r['ndcg@10']:.4f} "
            f"(sd {sd['std']:.4f}, {sd['min']:.4f}-{sd['max']:.4f})  "
            f"judged@10 {b['judged@10']:.3f} -> {r['judged@10']:.3f}  "
            f"[{rows[name]['seconds']:.0f}s]",
            flush=True,
        )
    out = {
        "benchmark": "search_ltr_cv",
        "folder": str(args.folder),
        "corpus": args.corpus,
        "queries": len(dataset.queries),
        "items": len(dataset.items),
        "folds": args.folds,
        "seeds": seeds,
        "metric_note": (
            "nDCG@10 gain 2^grade-1, Recall@10 / MRR@10 relevant = grade >= 2, judged@10 the "
            "judged share of the returned top 10; ltr = mean over seeds of the out-of-fold "
            "figures (query-level folds grouped by query text)"
        ),
        "setups": {k: (rows.get(k) or kept[k]) for k in SETUPS if k in rows or k in kept},
        "machine": {**machine(), "load_avg_1m_after_each_setup": loads},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
