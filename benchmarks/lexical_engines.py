"""Lexical engines side by side: Shelfwise's BM25F index (exhaustive and pruned top-k), the
full `SearchService` lexical path and tantivy, one process, one thread, same corpus, same
queries.

    python benchmarks/lexical_engines.py [--sizes 12k,100k,1m] [--ngrams 500] [--repeats 3]
                                         [--k 10] [--seed 7] [--no-hybrid] [--slowest 20]
                                         [--out benchmarks/results/lexical_engines.json]

**Corpus.** `12k` is the 12,101 real Amazon Beauty products (`load_dataset("amazon-beauty")`:
title, brand, category path, price). Larger sizes (`100k`, `1m`, or any integer) are
synthesised by `synthesise(items, n, seed)`: each product's title length is drawn from the
Beauty titles' empirical length distribution and its words are drawn independently from the
Beauty titles' word frequencies (whitespace-split surface words, so the vocabulary and its
Zipf curve are the real one); brand, category path and price are drawn from their empirical
distributions. Words are independent given the length, so real co-occurrence ("eye" next to
"liner") is lost: multi-word queries match fewer products than on a real catalogue of that
size, which favours no engine in particular.

**Queries.** The 61 judged `beauty-search-dev` queries plus `--ngrams` title n-grams (1-3
consecutive words of a random product's title of the corpus at that size, seeded), one
query list per size used by every engine.

**Engines** (top `--k`, one query at a time):

* `own-exhaustive`: `BM25Index` as before this change: every posting of every query term is
  added into a dense array as long as the catalogue, then a top-k over its non-zeros;
* `own-pruned`: `BM25Index.top_k`, the default lexical path (`search.topk`: impact-ordered
  head for one term, the compiled MaxScore kernel when numba is installed), checked against
  `own-exhaustive` on every query (same ids, bit-identical scores);
* `own-pruned-numpy`: the same without the numba kernel (measured when numba is installed,
  so that both run in one process);
* `service`: `SearchService.search(q, mode="lexical", per_page=k)` end to end (query
  understanding, typo/prefix/split-join parsing, min-should-match, proximity rescoring,
  the default facets and total; the dense retriever and re-ranker are off);
* `service-nofacets`: the same with `facets=()`;
* `service-hybrid` (unless `--no-hybrid`): `SearchService.search(q, mode="hybrid")` with a
  dense side of `DenseIndex` of the kind the service builds (`--dense-kind auto`: exact
  `flat` up to 50,000 items, `hnsw` above; every request passes the filter mask, which a
  flat index answers by brute force over the stored vectors and an hnsw index, when most
  items are allowed, by its over-fetched ANN answer filtered)
  over one **random unit vector per product** (seeded), not MiniLM embeddings of the
  synthetic titles (100k of them take tens of minutes on two CPU cores), and
  `dense_min_similarity=-1`, so that every one of the `dense_depth` dense candidates enters
  score fusion: the dense side does all the work it can do. The query *is* embedded with
  the real MiniLM encoder on every call (its query cache is emptied before each search), so
  the figure includes encoding; `service-hybrid-cached` keeps the encoder's query cache
  (a repeated query), and `query-encoder` times MiniLM on one query alone, as the service
  runs it (ONNX Runtime when the export works, `SentenceEncoder(backend="auto")`), and
  `query-encoder-torch` the same model through torch;
* `tantivy` (`tantivy==0.27.0`, `count=False`, so it may stop early with block-max WAND)
  and `tantivy-count` (`count=True`, the total hit count as the service reports it).

Both indexes hold the same terms: Shelfwise's analyzer runs once per field and tantivy
indexes the analysed terms with its `whitespace` tokenizer (one text field per catalogue
field, positions off); a tantivy query is a disjunction of term queries per field, boosted by
Shelfwise's field boosts. Own and tantivy timings start from the analysed query terms
(analysis excluded from both); the service's timing is the whole call. BM25 variants differ
(Shelfwise BM25F with saturation after the field sum; tantivy a sum of per-field BM25s), so
the top-k lists are compared for overlap only.

Each engine runs the query list `--repeats` times (after one warm-up pass); q/s is queries
over the pass's wall time, p50/p99 over the pass's per-query latencies; the JSON keeps every
pass and the spread (min..max). `cpu_p50_ms` / `cpu_p99_ms` are the same over each query's
CPU time (`time.thread_time`), which a machine shared with other jobs inflates less than
wall time (a preempted query waits without using CPU). `--slowest N` keeps the service's
N slowest queries by median CPU time (`service_slowest`: with and without facets, the match
count, and the mean cumulative CPU time of each service stage in 5 more, profiled, calls). Writes
`benchmarks/results/lexical_engines.json`.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from shelfwise.data.datasets import load_dataset
from shelfwise.search import topk_kernel
from shelfwise.search.analysis import Analyzer
from shelfwise.search.bm25 import BM25Config, BM25Index, Group, _positive_top_k
from shelfwise.search.config import SearchConfig
from shelfwise.search.service import SearchService
from startup import machine  # the benchmarks folder is on sys.path

RESULTS = Path(__file__).resolve().parent / "results" / "lexical_engines.json"
DEV = Path(os.environ.get("SHELFWISE_DATA_DIR", "../shared/data")) / "beauty-search-dev"
FIELDS = ("title", "brand", "category")
log = logging.getLogger("lexical_engines")


def parse_size(text: str) -> int:
    """'12k' -> the real catalogue (0), '100k' -> 100_000, '1m' -> 1_000_000."""
    t = text.strip().lower()
    if t == "12k":
        return 0
    mult = 1_000_000 if t.endswith("m") else 1000 if t.endswith("k") else 1
    return int(float(t.rstrip("mk")) * mult)


def synthesise(items: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """`n` products whose titles draw words from `items`' title vocabulary with its
    frequencies (lengths, brands, categories and prices from their empirical distributions)."""
    rng = np.random.default_rng(seed)
    titles = items["title"].fillna("").astype(str).tolist()
    split = [t.split() for t in titles]
    words, counts = np.unique(np.fromiter((w for s in split for w in s), dtype=object), True)
    p = counts / counts.sum()
    lengths = np.array([max(len(s), 1) for s in split])
    n_words = rng.choice(lengths, size=n)
    flat = rng.choice(len(words), size=int(n_words.sum()), p=p)
    ends = np.cumsum(n_words)
    starts = ends - n_words
    out_titles = [" ".join(words[flat[a:b]].tolist()) for a, b in zip(starts, ends, strict=True)]
    pick = rng.integers(0, len(items), size=(3, n))
    frame = pd.DataFrame(
        {
            "item_id": [f"S{i:07d}" for i in range(n)],
            "title": out_titles,
            "brand": items["brand"].to_numpy()[pick[0]],
            "category": items["category"].to_numpy()[pick[1]],
            "price": items["price"].to_numpy()[pick[2]],
        }
    )
    return frame


def tile(items: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first `n` rows of `items` repeated (copy c of item i is item `i~c`): a catalogue
    of real product texts, each `n / len(items)` times."""
    copies = -(-n // len(items))
    frame = pd.concat([items] * copies, ignore_index=True).iloc[:n].copy()
    copy = np.repeat(np.arange(copies), len(items))[:n]
    frame["item_id"] = [f"{i}~{c}" for i, c in zip(frame["item_id"], copy, strict=True)]
    return frame.reset_index(drop=True)


def catalogue(size: int, seed: int, corpus: str = "synthetic") -> pd.DataFrame:
    beauty = load_dataset("amazon-beauty").items
    cols = ["item_id", "title", "brand", "category", "price"]
    if size == 0:
        return beauty[cols].reset_index(drop=True)
    if corpus == "tiled":
        return tile(beauty[cols], size)
    return synthesise(beauty, size, seed)


def queries(items: pd.DataFrame, n_ngrams: int, seed: int) -> list[str]:
    """The judged dev queries, then `n_ngrams` seeded 1-3 word title n-grams."""
    dev = pd.read_csv(DEV / "queries.tsv", sep="\t")["query"].astype(str).tolist()
    rng = np.random.default_rng(seed + 1)
    titles = items["title"].fillna("").astype(str).tolist()
    out: list[str] = []
    while len(out) < n_ngrams:
        words = titles[int(rng.integers(len(titles)))].split()
        if not words:
            continue
        n = min(len(words), int(rng.integers(1, 4)))
        start = int(rng.integers(0, len(words) - n + 1))
        out.append(" ".join(words[start : start + n]))
    return dev + out


def variant_queries(qs: Sequence[str], seed: int) -> list[str]:
    """The queries with a typo or an unfinished last word, as shoppers type them: in turn,
    one letter dropped from the longest word (of 5+ letters), or the last word cut to its
    first 3-5 letters (words of 6+ letters); queries without such a word are left out."""
    rng = np.random.default_rng(seed + 3)
    out: list[str] = []
    for i, q in enumerate(qs):
        words = q.split()
        if not words:
            continue
        if i % 2 == 0:
            at = max(range(len(words)), key=lambda j: len(words[j]))
            w = words[at]
            if len(w) < 5 or not w.isalpha():
                continue
            cut = int(rng.integers(1, len(w) - 1))
            words[at] = w[:cut] + w[cut + 1 :]
        else:
            w = words[-1]
            if len(w) < 6 or not w.isalpha():
                continue
            words[-1] = w[: int(rng.integers(3, 6))]
        out.append(" ".join(words))
    return out


def timed_passes(
    fn: Callable[[Any], Any],
    inputs: Sequence[Any],
    repeats: int,
    cpu_times: list[np.ndarray] | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Run `fn` on every input `repeats` times after a warm-up pass; q/s and latency
    (each pass's per-query CPU seconds appended to `cpu_times` when given)."""
    outputs = [fn(x) for x in inputs]  # warm-up, and the answers
    passes = []
    for _ in range(repeats):
        lat = np.empty(len(inputs))
        cpu = np.empty(len(inputs))
        gc.collect()
        t_all = time.perf_counter()
        for i, x in enumerate(inputs):
            t0 = time.perf_counter()
            c0 = time.thread_time()
            fn(x)
            cpu[i] = time.thread_time() - c0
            lat[i] = time.perf_counter() - t0
        wall = time.perf_counter() - t_all
        if cpu_times is not None:
            cpu_times.append(cpu)
        passes.append(
            {
                "qps": round(len(inputs) / wall, 1),
                "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 4),
                "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 4),
                "mean_ms": round(float(lat.mean()) * 1e3, 4),
                "cpu_p50_ms": round(float(np.percentile(cpu, 50)) * 1e3, 4),
                "cpu_p99_ms": round(float(np.percentile(cpu, 99)) * 1e3, 4),
            }
        )
    summary: dict[str, Any] = {}
    for key in ("qps", "p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms"):
        vals = [p[key] for p in passes]
        summary[key] = float(np.median(vals))
        summary[f"{key}_spread"] = [min(vals), max(vals)]
    summary["passes"] = passes
    return summary, outputs


def field_terms(index: BM25Index, field: str) -> list[list[str]]:
    """Each row's analysed terms of one field, as the index holds them (term counts kept,
    order lost: BM25 does not read positions)."""
    m = index._tf[field]
    names = np.asarray(index.terms_list, dtype=object)
    out: list[list[str]] = []
    for row in range(m.shape[0]):
        lo, hi = m.indptr[row], m.indptr[row + 1]
        cols, counts = m.indices[lo:hi], m.data[lo:hi].astype(np.int64)
        out.append(names[np.repeat(cols, counts)].tolist() if hi > lo else [])
    return out


def tantivy_engine(
    analysed: dict[str, list[list[str]]], boosts: dict[str, float]
) -> tuple[
    Callable[[list[str]], list[Any]],
    Callable[[list[str]], list[Any]],
    Callable[[list[Any]], list[int]],
    Callable[[list[tuple[str, float]]], list[Any]],
]:
    """(search, search with count, hits -> rows, search of weighted terms) over an in-RAM
    tantivy index of the analysed terms."""
    import tantivy

    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("row", stored=True)
    for f in analysed:
        builder.add_text_field(f, stored=False, tokenizer_name="whitespace", index_option="freq")
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer(heap_size=500_000_000, num_threads=1)
    n = len(next(iter(analysed.values())))
    for row in range(n):
        writer.add_document(
            tantivy.Document(row=row, **{f: " ".join(analysed[f][row]) for f in analysed})  # type: ignore[arg-type]
        )
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    searcher = index.searcher()
    occur = tantivy.Occur.Should
    fields = list(analysed)

    def build(terms: list[str]) -> Any:
        subs = []
        for f in fields:
            for t in dict.fromkeys(terms):
                q = tantivy.Query.term_query(schema, f, t, index_option="freq")
                subs.append((occur, tantivy.Query.boost_query(q, boosts[f])))
        return tantivy.Query.boolean_query(subs)

    def search(terms: list[str], count: bool = False) -> list[Any]:
        if not terms:
            return []
        return list(searcher.search(build(terms), 10, count=count).hits)

    def rows(hits: list[Any]) -> list[int]:
        return [int(searcher.doc(a)["row"][0]) for _, a in hits]

    def weighted(pairs: list[tuple[str, float]]) -> list[Any]:
        """A disjunction of the terms per field, each boosted by field boost x weight (the
        typo and prefix variants of a parsed query)."""
        if not pairs:
            return []
        subs = []
        for f in fields:
            for t, w in pairs:
                q = tantivy.Query.term_query(schema, f, t, index_option="freq")
                subs.append((occur, tantivy.Query.boost_query(q, boosts[f] * w)))
        return list(searcher.search(tantivy.Query.boolean_query(subs), 10).hits)

    return search, lambda terms: search(terms, True), rows, weighted


def plain_index(label: str, size: int, args: argparse.Namespace) -> tuple[BM25Index, list[str]]:
    """The index SearchService would build over `FIELDS` (its analyzer and field boosts)
    and the query list, from `--index-dir/<label>-<seed>-<ngrams>` when an earlier run
    saved them there (a 1M-product build takes minutes on a loaded machine)."""
    name = f"{label}-{args.seed}-{args.ngrams}" + ("-tiled" if args.corpus == "tiled" else "")
    cache = args.index_dir / name if args.index_dir else None
    if cache is not None and (cache / "bm25.json").exists():
        qs = json.loads((cache / "queries.json").read_text())
        return BM25Index.load(cache), qs
    items = catalogue(size, args.seed, args.corpus)
    qs = queries(items, args.ngrams, args.seed)
    cfg = SearchConfig()
    index = BM25Index(
        BM25Config(fields={f: cfg.bm25.fields[f] for f in FIELDS}),
        Analyzer(stem=cfg.stem, language=cfg.language),
    ).index({f: items[f].fillna("").astype(str).tolist() for f in FIELDS})
    if cache is not None:
        index.save(cache)
        (cache / "queries.json").write_text(json.dumps(qs))
    return index, qs


def run_size(label: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    config = SearchConfig(mode="lexical")
    service: SearchService | None = None
    if (size or 12_101) <= args.service_max:
        items = catalogue(size, args.seed, args.corpus)
        qs = queries(items, args.ngrams, args.seed)
        service = SearchService.build(items, None, config)
        index: BM25Index = service.index
    else:
        index, qs = plain_index(label, size, args)
    build_s = time.perf_counter() - t0
    log.info("%s: %d products, %d queries, built in %.1fs", label, index.n_docs, len(qs), build_s)
    analyser = index.analyzer
    term_lists = [analyser.terms(q) for q in qs]
    id_lists = [
        list(dict.fromkeys(index.vocab[t] for t in ts if t in index.vocab)) for ts in term_lists
    ]
    groups_list: list[list[Group]] = [[[[(t, 1.0)]] for t in ids] for ids in id_lists]
    k = args.k
    out: dict[str, Any] = {
        "products": index.n_docs,
        "queries": len(qs),
        "terms": index.n_terms,
        "build_s": round(build_s, 2),
        "built": "SearchService.build" if service is not None else "BM25Index over FIELDS",
        "engines": {},
    }
    engines: dict[str, Any] = out["engines"]

    def exhaustive(groups: list[Group]) -> Any:
        return _positive_top_k(index.score_groups(groups), k)

    engines["own-exhaustive"], exh = timed_passes(exhaustive, groups_list, args.repeats)
    log.info("%s: own-exhaustive %s", label, _brief(engines["own-exhaustive"]))
    t0 = time.perf_counter()
    index.impacts()
    out["impacts_build_s"] = round(time.perf_counter() - t0, 2)
    out["impacts_mb"] = round(index.impacts().nbytes / 2**20, 1)
    plans = [("own-pruned", topk_kernel.AVAILABLE)]
    if topk_kernel.AVAILABLE:
        plans.append(("own-pruned-numpy", False))
    for name, kernel in plans:
        topk_kernel.AVAILABLE = kernel
        engines[name], pruned = timed_passes(lambda g: index.top_k(g, k), groups_list, args.repeats)
        same = sum(
            bool(np.array_equal(a.ids, b.ids) and np.array_equal(a.scores, b.scores))
            for a, b in zip(exh, pruned, strict=True)
        )
        engines[name]["identical_to_exhaustive"] = f"{same}/{len(qs)}"
        engines[name]["numba_kernel"] = kernel
        log.info("%s: %s %s, identical %d/%d", label, name, _brief(engines[name]), same, len(qs))
    topk_kernel.AVAILABLE = plans[0][1]
    variant_groups = variant_engines(index, service, qs, args, engines, out, label)

    if service is not None:
        svc = service

        def serve(q: str) -> Any:
            return svc.search(q, mode="lexical", per_page=k)

        def serve_nofacets(q: str) -> Any:
            return svc.search(q, mode="lexical", per_page=k, facets=())

        cpu: list[np.ndarray] = []
        engines["service"], _ = timed_passes(serve, qs, args.repeats, cpu)
        log.info("%s: service %s", label, _brief(engines["service"]))
        cpu_nofacets: list[np.ndarray] = []
        engines["service-nofacets"], _ = timed_passes(
            serve_nofacets, qs, args.repeats, cpu_nofacets
        )
        log.info("%s: service-nofacets %s", label, _brief(engines["service-nofacets"]))
        if args.slowest:
            out["service_slowest"] = slowest_queries(
                svc, qs, np.median(cpu, axis=0), np.median(cpu_nofacets, axis=0), args
            )
            for row in out["service_slowest"]:
                log.info("%s: slow %s", label, row)
        if args.hybrid:
            out["hybrid_dense_side"] = hybrid_engines(svc, qs, args, engines, label)
    else:
        out["service"] = f"skipped above --service-max {args.service_max} products"

    t0 = time.perf_counter()
    analysed = {f: field_terms(index, f) for f in FIELDS}
    search, search_count, to_rows, search_weighted = tantivy_engine(
        analysed, {f: config.bm25.fields[f] for f in FIELDS}
    )
    del analysed
    out["tantivy_build_s"] = round(time.perf_counter() - t0, 2)
    engines["tantivy"], tan = timed_passes(search, term_lists, args.repeats)
    log.info("%s: tantivy %s", label, _brief(engines["tantivy"]))
    engines["tantivy-count"], _ = timed_passes(search_count, term_lists, args.repeats)
    log.info("%s: tantivy-count %s", label, _brief(engines["tantivy-count"]))
    names = index.terms_list
    weighted = [
        [(names[t], w) for g in groups for alt in g for t, w in alt] for groups in variant_groups
    ]
    engines["tantivy-variants"], _ = timed_passes(search_weighted, weighted, args.repeats)
    log.info("%s: tantivy-variants %s", label, _brief(engines["tantivy-variants"]))
    tan_rows = [to_rows(h) for h in tan]
    overlap = [
        len(set(a.ids.tolist()) & set(b)) / max(min(len(b), k), 1)
        for a, b in zip(exh, tan_rows, strict=True)
        if len(b)
    ]
    out["top10_overlap_own_vs_tantivy"] = round(float(np.mean(overlap)), 3) if overlap else None
    base = engines["tantivy"]["qps"]
    out["qps_vs_tantivy"] = {name: round(e["qps"] / base, 2) for name, e in engines.items()}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


#: the service's stages that `slowest_queries` times (cumulative, from one profiled call)
STAGES = {
    "understand": ("service.py", "_understand"),
    "parse": ("query.py", "parse"),
    "score_and_match": ("bm25.py", "score_and_match_rows"),
    "check_splits": ("service.py", "_check_splits"),
    "proximity": ("service.py", "_proximity"),
    "matched_in": ("service.py", "_matched_in"),
    "lexical": ("service.py", "_lexical"),
    "order": ("filters.py", "order"),
    "facets": ("filters.py", "facets"),
    "describe": ("service.py", "describe"),
    "search": ("service.py", "search"),
}


PROFILED_CALLS = 5


def slowest_queries(
    service: SearchService,
    qs: Sequence[str],
    cpu: np.ndarray,
    cpu_nofacets: np.ndarray,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """The `--slowest` queries by median CPU time of the `service` row, each with its
    median CPU ms with and without facets, the match count, and a breakdown: the
    cumulative CPU ms of the service's stages (`STAGES`), the mean of `PROFILED_CALLS`
    more calls under cProfile (the profiler inflates them; read them as shares)."""
    import cProfile
    import pstats

    out: list[dict[str, Any]] = []
    for i in np.argsort(-cpu, kind="stable")[: args.slowest].tolist():
        q = qs[i]
        profile = cProfile.Profile(time.thread_time)  # CPU time, as the rows report
        profile.enable()
        for _ in range(PROFILED_CALLS):
            response = service.search(q, mode="lexical", per_page=args.k)
        profile.disable()
        stats: dict[Any, Any] = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        stages: dict[str, float] = {}
        for (path, _, func), (_, _, _, cumulative, _) in stats.items():
            for name, (file, wanted) in STAGES.items():
                if func == wanted and path.endswith(file):
                    ms = cumulative * 1e3 / PROFILED_CALLS
                    stages[name] = round(stages.get(name, 0.0) + ms, 3)
        parsed = service.parse(q)
        out.append(
            {
                "query": q,
                "cpu_ms": round(float(cpu[i]) * 1e3, 3),
                "cpu_nofacets_ms": round(float(cpu_nofacets[i]) * 1e3, 3),
                "total": response.total,
                "alternatives": sum(map(len, parsed.groups)),
                "split_groups": len(parsed.split_groups),
                "profiled_ms": stages,
            }
        )
    return out


def variant_engines(
    index: BM25Index,
    service: SearchService | None,
    qs: list[str],
    args: argparse.Namespace,
    engines: dict[str, Any],
    out: dict[str, Any],
    label: str,
) -> list[list[Group]]:
    """Time the typo and prefix queries (`variant_queries`) as the service parses them
    (exact word, typo and prefix variants as weighted alternatives; split and joined forms
    as two-term alternatives), exhaustive and pruned; returns their groups."""
    from shelfwise.search.query import QueryParser
    from shelfwise.search.typo import TypoIndex

    if service is not None:
        parser = service.parser
    else:
        words = TypoIndex(dict(index.surface_count))
        words.prepare()
        parser = QueryParser(index, words, None, SearchConfig().query_options())
    texts = variant_queries(qs[-args.ngrams :], args.seed)  # the n-grams, not the judged
    groups_list = [list(parser.parse(q).groups) for q in texts]
    groups_list = [g for g in groups_list if g]
    k = args.k
    kernel = sum(all(len(a) == 1 for g in gs for a in g) for gs in groups_list)
    out["variant_queries"] = {
        "queries": len(groups_list),
        "with_variants": sum(any(len(g) > 1 for g in gs) for gs in groups_list),
        "kernel_eligible": kernel,
        "mean_alternatives": round(float(np.mean([sum(map(len, gs)) for gs in groups_list])), 2),
        "examples": texts[:6],
    }
    engines["own-exhaustive-variants"], exh = timed_passes(
        lambda g: index.top_k(g, k, exhaustive=True), groups_list, args.repeats
    )
    log.info("%s: own-exhaustive-variants %s", label, _brief(engines["own-exhaustive-variants"]))
    engines["own-pruned-variants"], pruned = timed_passes(
        lambda g: index.top_k(g, k), groups_list, args.repeats
    )
    same = sum(
        bool(np.array_equal(a.ids, b.ids) and np.array_equal(a.scores, b.scores))
        for a, b in zip(exh, pruned, strict=True)
    )
    engines["own-pruned-variants"]["identical_to_exhaustive"] = f"{same}/{len(groups_list)}"
    log.info(
        "%s: own-pruned-variants %s, identical %d/%d",
        label,
        _brief(engines["own-pruned-variants"]),
        same,
        len(groups_list),
    )
    return groups_list


def hybrid_engines(
    service: SearchService,
    qs: list[str],
    args: argparse.Namespace,
    engines: dict[str, Any],
    label: str,
) -> dict[str, Any]:
    """Time hybrid search over a dense side of random unit vectors (see the module doc) and
    the MiniLM query encoder alone; returns how the dense side was made."""
    from shelfwise.search.semantic import DenseConfig, DenseIndex
    from shelfwise.text.embeddings import EMBEDDING_DIM

    t0 = time.perf_counter()
    rows = np.flatnonzero(service.index.alive)
    if args.dense == "embeddings":
        from shelfwise.search.documents import item_texts
        from shelfwise.search.semantic import EmbeddingCache

        cache = EmbeddingCache(args.embedding_cache)
        vectors = cache.encode(item_texts(service.items.iloc[rows]), what="items")
        min_similarity = service.config.dense_min_similarity
        made = (
            f"{rows.size} all-MiniLM-L6-v2 embeddings of the products' title + brand "
            f"({cache.hits} from the cache {args.embedding_cache}, {cache.encoded} embedded)"
        )
    else:
        rng = np.random.default_rng(args.seed + 2)
        vectors = rng.standard_normal((rows.size, EMBEDDING_DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        min_similarity = -1.0
        made = f"{rows.size} random unit vectors (seed {args.seed + 2}), not embeddings"
    dense = DenseIndex(DenseConfig(kind=args.dense_kind)).index_vectors(vectors, rows)
    del vectors
    hybrid = service.with_config(
        service.config.model_copy(update={"mode": "hybrid", "dense_min_similarity": min_similarity})
    )
    hybrid.enable_dense(dense=dense)
    k = args.k

    def serve(q: str) -> Any:
        dense._query_cache.clear()  # embed the query on every call, as for a new query
        return hybrid.search(q, mode="hybrid", per_page=k)

    def serve_cached(q: str) -> Any:
        return hybrid.search(q, mode="hybrid", per_page=k)

    def encode(q: str) -> Any:
        return dense.encoder.encode([q])

    from shelfwise.text.embeddings import SentenceEncoder

    torch_encoder = SentenceEncoder(dense.encoder.model_path, backend="torch")

    def encode_torch(q: str) -> Any:
        return torch_encoder.encode([q])

    setup_s = round(time.perf_counter() - t0, 2)
    backend = dense.encoder.active_backend
    for name, fn in (
        ("query-encoder", encode),
        ("query-encoder-torch", encode_torch),
        ("service-hybrid", serve),
        ("service-hybrid-cached", serve_cached),
    ):
        engines[name], _ = timed_passes(fn, qs, args.repeats)
        log.info("%s: %s %s", label, name, _brief(engines[name]))
    return {
        "vectors": made,
        "index": (
            f"DenseIndex {dense.kind} (--dense-kind {args.dense_kind}; the service passes a "
            "filter mask: exact over the stored vectors for flat, post-filtered ANN for hnsw "
            "when most items are allowed)"
        ),
        "dense_min_similarity": min_similarity,
        "query_encoder": f"all-MiniLM-L6-v2 (real, {backend}), on every service-hybrid call",
        "query_encoder_backend": backend,
        "setup_s": setup_s,
    }


def _brief(e: dict[str, Any]) -> str:
    return (
        f"{e['qps']:.0f} q/s {e['qps_spread']}, p50 {e['p50_ms']:.3f} ms, p99 {e['p99_ms']:.3f}"
        f" ms (cpu p99 {e['cpu_p99_ms']:.3f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="12k,100k,1m")
    parser.add_argument("--ngrams", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--service-max",
        type=int,
        default=2_000_000,
        help="sizes above this skip the SearchService rows (and build the index alone)",
    )
    parser.add_argument(
        "--index-dir", type=Path, default=None, help="cache of indexes built without the service"
    )
    parser.add_argument(
        "--update", action="store_true", help="add the sizes to an existing --out file"
    )
    parser.add_argument(
        "--no-hybrid",
        dest="hybrid",
        action="store_false",
        help="skip the hybrid rows (random-vector dense side, real query encoder)",
    )
    parser.add_argument(
        "--corpus",
        choices=("synthetic", "tiled"),
        default="synthetic",
        help="sizes above 12k: synthetic titles (default) or the real products repeated "
        "(`tile`), whose real MiniLM embeddings --dense embeddings can read from a cache",
    )
    parser.add_argument(
        "--dense",
        choices=("random", "embeddings"),
        default="random",
        help="the hybrid rows' item vectors: random unit vectors (default) or MiniLM "
        "embeddings of the products through an EmbeddingCache (--embedding-cache)",
    )
    parser.add_argument(
        "--embedding-cache",
        type=Path,
        default=None,
        help="EmbeddingCache folder for --dense embeddings (default: var/cache/embeddings)",
    )
    parser.add_argument(
        "--dense-kind",
        default="auto",
        choices=("auto", "flat", "hnsw", "ivf"),
        help="the hybrid rows' DenseIndex kind (auto: what the service builds, flat up to "
        "50,000 items, else hnsw)",
    )
    parser.add_argument(
        "--slowest",
        type=int,
        default=0,
        help="keep the N slowest SearchService queries (median CPU) with a stage breakdown",
    )
    parser.add_argument(
        "--label-suffix", default="", help="appended to each size's key in --out (e.g. -tiled)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = " ".join(["python", *sys.argv])
    result: dict[str, Any] = {"k": args.k, "seed": args.seed, "sizes": {}}
    if args.update and args.out.exists():
        result = json.loads(args.out.read_text())
    for label in args.sizes.split(","):
        start = machine()
        entry = run_size(label, parse_size(label), args)
        entry.update(
            command=command, numba=topk_kernel.AVAILABLE, machine_start=start, machine_end=machine()
        )
        entry.update(corpus=args.corpus if parse_size(label) else "real", dense=args.dense)
        result["sizes"][label + args.label_suffix] = entry
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
