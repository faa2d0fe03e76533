"""Our BM25 against bm25s and rank_bm25, side by side on the same corpus and tokens.

    python benchmarks/bm25_compare.py [--sizes 10000,100000,amazon-beauty] [--queries 2000]
                                      [--rank-bm25-queries 200]
                                      [--out benchmarks/results/bm25_compare.json]

Corpus: the demo store generator (`shelfwise.data.demo`) at each size; every product is
one document (title, category path and description in one field), queries are the demo
store's search events. `--sizes amazon-beauty` runs on the 12,101 real Amazon Beauty titles
instead (a natural vocabulary), with 1-3 consecutive title words as queries (seeded).
Everything is tokenised once with Shelfwise's analyzer, and all three engines index and
search those same token lists, so only the BM25 engines differ.

Variants, chosen so that the scores must agree exactly:

* ours (one field, boost 1, `idf="lucene"`) vs `bm25s.BM25(method="lucene")`:
  `idf = ln(1 + (N - df + .5) / (df + .5))`, `tf / (tf + k1 (1 - b + b dl / avgdl))`;
* ours (`idf="robertson"`) vs `rank_bm25.BM25Okapi(epsilon=0)`: rank_bm25 uses
  `idf = ln((N - df + .5) / (df + .5))`, replaces negative idf by `epsilon * mean idf`
  (0 with epsilon=0, as our floor at 0) and multiplies by `k1 + 1`, so its scores are ours
  times `k1 + 1`.

Agreement is checked per query on the top-10: the 10 scores must match within 1e-4 at every
rank and the ids must be the same, except among documents tied with the 10th score (the
demo's templated titles produce exact ties, which every engine may cut differently).

Speed, one thread (`OMP_NUM_THREADS=1`): latency per query (p50/p99) searching one query
at a time, and throughput both one at a time and in one batch call (ours: a sparse
matrix product; bm25s: `retrieve` on the list). Build time is indexing from tokens;
build memory is tracemalloc's peak during a separate build (numpy allocations included);
index size is the bytes of the resulting arrays. rank_bm25 computes every document's score
in Python for each query, so it runs on the first `--rank-bm25-queries` queries only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import bm25s
import numpy as np
import pandas as pd
import rank_bm25

from shelfwise.data.datasets import load_dataset
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.search.analysis import Analyzer
from shelfwise.search.bm25 import BM25Config, BM25Index
from shelfwise.search.service import SearchService
from shelfwise.types import Results

K1, B, K = 1.2, 0.75, 10


def corpus(size: str, seed: int = 7) -> tuple[list[str], list[str], pd.DataFrame, pd.DataFrame]:
    """(documents, queries, items, events): a demo store with `size` products, or the
    Amazon Beauty titles (`size="amazon-beauty"`) with 1-3 word queries drawn from titles
    (the dataset has no search log)."""
    if size == "amazon-beauty":
        ds = load_dataset("amazon-beauty")
        titles = ds.items["title"].tolist()
        rng = np.random.default_rng(seed)
        queries = []
        for i in rng.choice(len(titles), 5000).tolist():
            words = titles[i].split()
            n = min(len(words), int(rng.integers(1, 4)))
            start = int(rng.integers(0, len(words) - n + 1))
            queries.append(" ".join(words[start : start + n]))
        return titles, queries, ds.items, ds.events
    store = generate(DemoConfig(seed=seed, n_items=int(size), n_users=3000, days=30))
    items = store.items
    docs = (items["title"] + " " + items["category"] + " " + items["description"]).tolist()
    ev = store.events
    queries = ev.loc[(ev["type"] == "search") & ev["query"].notna(), "query"].tolist()
    return docs, [str(q) for q in queries], items, ev


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def peak_mb(fn: Callable[[], Any]) -> float:
    """tracemalloc's peak while `fn` runs, in MB."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    obj = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del obj
    return peak / 2**20


def ours_index(tokens: list[list[str]], idf: str) -> BM25Index:
    cfg = BM25Config(k1=K1, b=B, fields={"text": 1.0}, idf=idf)  # type: ignore[arg-type]
    return BM25Index(cfg).index_terms({"text": tokens})


def bm25s_index(tokens: list[list[str]]) -> bm25s.BM25:
    model = bm25s.BM25(method="lucene", k1=K1, b=B)
    model.index(tokens, show_progress=False)
    return model


def rank_index(tokens: list[list[str]]) -> rank_bm25.BM25Okapi:
    return rank_bm25.BM25Okapi(tokens, k1=K1, b=B, epsilon=0.0)


def ours_top(index: BM25Index, ids: list[int]) -> Results:
    from shelfwise.search.bm25 import _positive_top_k

    return _positive_top_k(index.score_terms(ids), K)


def agree(
    ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray], tol: float = 1e-4
) -> tuple[bool, bool, float]:
    """(identical ids, equal up to ties at the cut, max |score diff|) of two top-10s."""
    o_ids, o_sc = ours
    t_ids, t_sc = theirs
    keep = t_sc > 0
    t_ids, t_sc = t_ids[keep], t_sc[keep]
    if o_ids.size != t_ids.size:
        return False, False, float("inf")
    if o_ids.size == 0:
        return True, True, 0.0
    diff = float(np.abs(o_sc - t_sc).max())
    identical = bool(np.array_equal(o_ids, t_ids)) and diff <= tol
    cut = o_sc[-1]
    o_set = {i for i, s in zip(o_ids.tolist(), o_sc.tolist(), strict=True) if s > cut + tol}
    t_set = {i for i, s in zip(t_ids.tolist(), t_sc.tolist(), strict=True) if s > cut + tol}
    same_order = True
    for a, b, sa, sb in zip(o_ids, t_ids, o_sc, t_sc, strict=True):
        if sa > cut + tol and a != b and abs(sa - sb) > tol:
            same_order = False
    equivalent = diff <= tol and o_set == t_set and same_order
    return identical, equivalent, diff


def latency(fn: Callable[[Any], Any], queries: list[Any]) -> dict[str, float]:
    times = np.empty(len(queries))
    t_all = time.perf_counter()
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        fn(q)
        times[i] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    return {
        "qps_single": round(len(queries) / total, 1),
        "p50_ms": round(float(np.percentile(times, 50)) * 1000, 4),
        "p99_ms": round(float(np.percentile(times, 99)) * 1000, 4),
    }


def index_bytes_ours(index: BM25Index) -> int:
    s = index.scores
    assert s is not None
    return int(s.data.nbytes + s.indices.nbytes + s.indptr.nbytes)


def index_bytes_bm25s(model: bm25s.BM25) -> int:
    return int(sum(v.nbytes for v in model.scores.values() if isinstance(v, np.ndarray)))


def update_latency(index: BM25Index, docs: list[str]) -> dict[str, float]:
    """Milliseconds until an added / changed / deleted document is (not) found."""
    n = index.n_docs
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    index.upsert([n], {"text": ["zyxwarble gadget deluxe"]})
    hit = ours_top(index, index.query_terms("zyxwarble")).ids.tolist()
    out["add_1"] = (time.perf_counter() - t0) * 1000
    assert hit == [n], hit
    t0 = time.perf_counter()
    index.upsert(np.arange(n + 1, n + 101), {"text": docs[:100]})
    out["add_100"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    index.upsert([0], {"text": ["qwombat teapot"]})
    hit = ours_top(index, index.query_terms("qwombat")).ids.tolist()
    out["update_1"] = (time.perf_counter() - t0) * 1000
    assert hit == [0], hit
    t0 = time.perf_counter()
    index.delete([n])
    gone = n not in ours_top(index, index.query_terms("zyxwarble")).ids.tolist()
    out["delete_1"] = (time.perf_counter() - t0) * 1000
    assert gone
    q = index.query_terms("coffee stainless steel")
    t0 = time.perf_counter()
    for _ in range(50):
        ours_top(index, q)
    out["query_with_delta"] = (time.perf_counter() - t0) * 1000 / 50
    t0 = time.perf_counter()
    index.merge()
    out["merge"] = (time.perf_counter() - t0) * 1000
    return {k: round(v, 3) for k, v in out.items()}


def service_latency(
    items: pd.DataFrame, events: pd.DataFrame, queries: list[str]
) -> dict[str, Any]:
    """The full SearchService (5 fields, typos, prefix, facets) on the raw queries."""
    service, build_s = timed(lambda: SearchService.build(items, events))
    lat = latency(lambda q: service.search(q, per_page=20), queries)
    filtered = latency(
        lambda q: service.search(q, filters=["price=..100", "in_stock=true"], sort="price_asc"),
        queries[:500],
    )
    prefixes = [q[: max(2, len(q) // 2)] for q in queries[:1000]]
    ac = latency(lambda p: service.autocomplete(p, 8), prefixes)
    return {
        "build_s": round(build_s, 2),
        "search": lat,
        "search_filtered_sorted": filtered,
        "autocomplete": ac,
    }


def run_size(size: str, n_queries: int, n_rank: int) -> dict[str, Any]:
    print(f"\n== {size} ==", flush=True)
    docs, raw_queries, items, events = corpus(size)
    analyzer = Analyzer()
    tokens, tok_s = timed(lambda: [analyzer.terms(d) for d in docs])
    print(f"tokenised {len(docs):,} documents in {tok_s:.1f}s (shared by all engines)")

    ours, ours_build = timed(lambda: ours_index(tokens, "lucene"))
    ours_rob = ours_index(tokens, "robertson")
    ref, bm25s_build = timed(lambda: bm25s_index(tokens))
    okapi, rank_build = timed(lambda: rank_index(tokens))
    mem = {
        "ours": peak_mb(lambda: ours_index(tokens, "lucene")),
        "bm25s": peak_mb(lambda: bm25s_index(tokens)),
        "rank_bm25": peak_mb(lambda: rank_index(tokens)),
    }

    # queries: analysed the same way; those with no indexed term are skipped for everyone
    q_tokens: list[list[str]] = []
    for q in raw_queries:
        toks = [t for t in analyzer.terms(q) if t in ours.vocab]
        if toks:
            q_tokens.append(toks)
        if len(q_tokens) == n_queries:
            break
    q_ids = [[ours.vocab[t] for t in toks] for toks in q_tokens]
    print(f"{len(q_tokens):,} queries with at least one indexed term")

    # agreement
    stats = {
        "bm25s": {"identical": 0, "equivalent": 0, "max_abs_diff": 0.0},
        "rank_bm25": {"identical": 0, "equivalent": 0, "max_abs_diff": 0.0},
    }
    for i, (toks, ids) in enumerate(zip(q_tokens, q_ids, strict=True)):
        res = ours_top(ours, ids)
        docs_, scores_ = ref.retrieve([toks], k=K, show_progress=False, n_threads=0)
        ident, equiv, diff = agree((res.ids, res.scores), (docs_[0], scores_[0]))
        s = stats["bm25s"]
        s["identical"] += ident
        s["equivalent"] += equiv
        s["max_abs_diff"] = max(s["max_abs_diff"], diff)
        if i < n_rank:
            rob = ours_top(ours_rob, ids)
            full = okapi.get_scores(toks) / (K1 + 1.0)
            top = np.argsort(-full, kind="stable")[:K]
            ident, equiv, diff = agree((rob.ids, rob.scores), (top, full[top]))
            s = stats["rank_bm25"]
            s["identical"] += ident
            s["equivalent"] += equiv
            s["max_abs_diff"] = max(s["max_abs_diff"], diff)
    stats["bm25s"]["queries"] = len(q_tokens)
    stats["rank_bm25"]["queries"] = min(n_rank, len(q_tokens))

    # speed
    def bm25s_scores_only(toks: list[str]) -> np.ndarray:
        scores = ref.get_scores_from_ids(ref.get_tokens_ids(toks))
        return np.argpartition(-scores, K)[:K]

    speed = {
        "ours": latency(lambda ids: ours_top(ours, ids), q_ids),
        "bm25s_scores": latency(bm25s_scores_only, q_tokens),
        "bm25s": latency(
            lambda toks: ref.retrieve([toks], k=K, show_progress=False, n_threads=0), q_tokens
        ),
        "rank_bm25": latency(
            lambda toks: np.argpartition(-okapi.get_scores(toks), K)[:K], q_tokens[:n_rank]
        ),
    }
    _, t = timed(lambda: ours.retrieve_many(q_ids, K))
    speed["ours"]["qps_batch"] = round(len(q_ids) / t, 1)
    _, t = timed(lambda: ref.retrieve(q_tokens, k=K, show_progress=False, n_threads=0))
    speed["bm25s"]["qps_batch"] = round(len(q_tokens) / t, 1)

    engines: dict[str, dict[str, Any]] = {
        "ours": {
            "build_s": round(ours_build, 3),
            "build_peak_mb": round(mem["ours"], 1),
            "index_mb": round(index_bytes_ours(ours) / 2**20, 1),
            **speed["ours"],
        },
        "bm25s": {
            "build_s": round(bm25s_build, 3),
            "build_peak_mb": round(mem["bm25s"], 1),
            "index_mb": round(index_bytes_bm25s(ref) / 2**20, 1),
            **speed["bm25s"],
        },
        "bm25s_scores": {
            "note": "bm25s.get_scores_from_ids + np.argpartition (skips bm25s's own top-k)",
            **speed["bm25s_scores"],
        },
        "rank_bm25": {
            "build_s": round(rank_build, 3),
            "build_peak_mb": round(mem["rank_bm25"], 1),
            "index_mb": None,
            **speed["rank_bm25"],
        },
    }
    for name, e in engines.items():
        print(
            f"{name:<12} build {e.get('build_s', 0):7.2f}s  "
            f"peak {e.get('build_peak_mb', 0):8.1f} MB  "
            f"qps(1) {e['qps_single']:9.1f}  qps(batch) {e.get('qps_batch', '-')!s:>9}  "
            f"p50 {e['p50_ms']:8.3f} ms  p99 {e['p99_ms']:8.3f} ms"
        )
    for name, s in stats.items():
        print(
            f"agreement vs {name}: {s['equivalent']}/{s['queries']} equal top-10 "
            f"({s['identical']} identical id order incl. ties), max |diff| "
            f"{s['max_abs_diff']:.2e}"
        )
    updates = update_latency(ours, docs)
    print("updates (ms):", json.dumps(updates))
    service = service_latency(items, events, raw_queries[:n_queries])
    print("search service:", json.dumps(service))
    return {
        "corpus": "amazon-beauty titles" if size == "amazon-beauty" else "demo store",
        "products": len(docs),
        "queries": len(q_tokens),
        "rank_bm25_queries": stats["rank_bm25"]["queries"],
        "tokenise_s": round(tok_s, 2),
        "vocabulary": ours.n_terms,
        "engines": engines,
        "agreement": stats,
        "updates_ms": updates,
        "service": service,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="demo store sizes, and/or amazon-beauty (its 12k titles), comma separated",
    )
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--rank-bm25-queries", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/results/bm25_compare.json")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    results = [run_size(n, args.queries, args.rank_bm25_queries) for n in sizes]
    payload = {
        "benchmark": "bm25_compare",
        "command": "python benchmarks/bm25_compare.py " + " ".join(argv or sys.argv[1:]),
        "k1": K1,
        "b": B,
        "k": K,
        "threads": 1,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or "?"},
        "versions": {"bm25s": bm25s.__version__, "rank_bm25": "0.2.2", "numpy": np.__version__},
        "results": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
