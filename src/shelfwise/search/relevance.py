"""Search evaluation: labelled datasets, relevance metrics and a side-by-side runner.

Datasets (`load_search_dataset`), each a `SearchDataset` of a catalogue, queries and graded
judgements over catalogue rows:

* `wands` — Wayfair ANnotation DataSet (Chen et al., ECIR 2022): `query.csv`, `product.csv`,
  `label.csv` in `$SHELFWISE_DATA_DIR/wands`, TAB-separated; Exact = 2, Partial = 1,
  Irrelevant = 0.
* `esci` — an Amazon Shopping Queries (Reddy et al., 2022) sample in
  `$SHELFWISE_DATA_DIR/esci`: `shopping_queries_dataset_examples` and
  `shopping_queries_dataset_products` as .parquet or .csv; Exact = 3, Substitute = 2,
  Complement = 1, Irrelevant = 0; US locale, the test split when the sample has one.
* `demo` — the generated demo store's own searches. Events before a cut (two thirds into the
  window by default) are history (popularity, shopper profiles); every later search whose
  shopper then clicked, carted or bought something in the session is a query, labelled by
  `ltr.search_labels` (purchase 3 > add_to_cart 2 > click 1). Cross-validation folds group
  searches by their normalised text, so no query string is scored by a model that saw it.

Metrics (`evaluate_rankings`), averaged over the queries with at least one relevant item
(grade >= `relevant_grade`, default 1):

* nDCG@10 with graded gains (`evaluation.metrics.graded_ndcg`): DCG = sum_i grade_i /
  log2(i + 1), divided by the DCG of the ideal order of all the query's judgements (linear
  gains, as `trec_eval`'s `ndcg_cut`);
* MAP over the top 100 with binary relevance, each query's average precision divided by its
  number of relevant items (`evaluation.metrics.map_at_k`, `denominator="n_rel"`);
* P@10 and Recall@100 with binary relevance (`evaluation.metrics`).

`evaluate_search` runs BM25F, dense retrieval, hybrid fusion (RRF and weighted min-max
scores) and the LightGBM re-ranker over hybrid candidates on one dataset; the re-ranker is
scored with query-level k-fold cross-validation. Its report keeps, per method, the per-query
nDCG@10's `{"n", "mean", "sd"}` (`per_query_summary`, from `ndcg_per_query`: what the 95%
t interval over queries needs) and the paired test of each method against BM25 on the
same queries (`paired_vs_bm25`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from shelfwise.errors import ConfigError, DataError
from shelfwise.evaluation.metrics import graded_ndcg, map_at_k, precision_at_k, recall_at_k
from shelfwise.search.features import DEFAULT_FIELDS, FeatureBuilder, numeric_attributes
from shelfwise.search.fusion import reciprocal_rank_fusion, weighted_score_fusion
from shelfwise.search.ltr import LTRConfig, LTRReranker, search_labels
from shelfwise.search.semantic import DenseIndex, item_texts
from shelfwise.settings import data_dir
from shelfwise.text.embeddings import SentenceEncoder
from shelfwise.types import Results, top_k

log = logging.getLogger(__name__)

__all__ = [
    "LTR_VARIANTS",
    "METHODS",
    "SEARCH_DATASETS",
    "SearchDataset",
    "dataset_status",
    "evaluate_rankings",
    "evaluate_search",
    "load_demo",
    "load_esci",
    "load_search_dataset",
    "load_wands",
    "ndcg_per_query",
]

SEARCH_DATASETS = ("wands", "esci", "demo")
_POPULARITY = frozenset({"log_popularity", "log_purchases", "popularity_in_category"})
LTR_VARIANTS: dict[str, Callable[[str], bool]] = {
    "ltr": lambda name: False,
    "ltr-no-personal": lambda name: name.startswith("user_"),
    "ltr-no-popularity": lambda name: name in _POPULARITY or name.startswith("item_"),
    "ltr-text-only": lambda name: (
        name.startswith(("user_", "item_")) or name in _POPULARITY or "price" in name
    ),
}
"""Re-ranker variants: which features each leaves out (ablations of the full `ltr`)."""
METHODS = ("bm25", "dense", "hybrid", "hybrid-score", *LTR_VARIANTS)
"""`hybrid` is reciprocal rank fusion of bm25 and dense; `hybrid-score` a 50/50 weighted
sum of min-max normalised scores; `ltr` the re-ranker over the hybrid candidates, and
`ltr-no-personal`, `ltr-no-popularity`, `ltr-text-only` the same without the shopper's
affinities, without popularity and item statistics, or with query-item text features only."""

WANDS_GRADES = {"Exact": 2, "Partial": 1, "Irrelevant": 0}
ESCI_GRADES = {"E": 3, "S": 2, "C": 1, "I": 0}


@dataclass
class SearchDataset:
    """A catalogue (row = item index), queries and graded judgements per query."""

    name: str
    items: pd.DataFrame
    queries: pd.DataFrame
    """One row per query: `qid`, `query`, `user_id` (None if anonymous), `group` (the key
    cross-validation folds are grouped by)."""
    judgements: list[dict[int, int]]
    """Per query row: item index -> grade (unjudged items count as grade 0)."""
    history: pd.DataFrame | None = None
    item_features: dict[str, np.ndarray] = field(default_factory=dict)
    relevant_grade: int = 1
    note: str = ""

    def __post_init__(self) -> None:
        if len(self.judgements) != len(self.queries):
            raise DataError(
                f"{self.name}: {len(self.judgements)} judgement sets for "
                f"{len(self.queries)} queries"
            )


# ---- metrics ---------------------------------------------------------------------------


def as_ranked(ranked: Sequence[np.ndarray] | np.ndarray, depth: int) -> np.ndarray:
    out = np.full((len(ranked), depth), -1, dtype=np.int64)
    for i, row in enumerate(ranked):
        r = np.asarray(row, dtype=np.int64)[:depth]
        out[i, : r.size] = r
    return out


def evaluate_rankings(
    ranked: Sequence[np.ndarray] | np.ndarray,
    judgements: Sequence[Mapping[int, int]],
    k: int = 10,
    depth: int = 100,
    relevant_grade: int = 1,
) -> dict[str, float]:
    """nDCG@k, MAP (top `depth`), P@k and Recall@depth over the queries that have relevant
    items; also `queries`, how many were scored."""
    if len(ranked) != len(judgements):
        raise DataError(f"{len(ranked)} rankings for {len(judgements)} judgement sets")
    relevant = [
        np.array(sorted(i for i, g in j.items() if g >= relevant_grade), dtype=np.int64)
        for j in judgements
    ]
    scored = np.array([r.size > 0 for r in relevant], dtype=bool)
    if not scored.any():
        raise DataError("no query has a relevant item: nothing to evaluate")
    recs = as_ranked(ranked, max(depth, k))[scored]
    rel = [r for r, s in zip(relevant, scored, strict=True) if s]
    judged = [j for j, s in zip(judgements, scored, strict=True) if s]
    ndcg = graded_ndcg(recs, judged, k)
    return {
        f"ndcg@{k}": float(np.nanmean(ndcg)),
        "map": map_at_k(recs, rel, depth, denominator="n_rel"),
        f"p@{k}": precision_at_k(recs, rel, k),
        f"recall@{depth}": recall_at_k(recs, rel, depth),
        "queries": int(scored.sum()),
    }


def ndcg_per_query(
    ranked: Sequence[np.ndarray] | np.ndarray,
    judgements: Sequence[Mapping[int, int]],
    k: int = 10,
    relevant_grade: int = 1,
) -> np.ndarray:
    """nDCG@k of each query with a relevant item (grade >= `relevant_grade`), in query
    order: the values `evaluate_rankings` averages."""
    if len(ranked) != len(judgements):
        raise DataError(f"{len(ranked)} rankings for {len(judgements)} judgement sets")
    scored = np.array([any(g >= relevant_grade for g in j.values()) for j in judgements])
    if not scored.any():
        raise DataError("no query has a relevant item: nothing to evaluate")
    recs = as_ranked(ranked, k)[scored]
    judged = [j for j, s in zip(judgements, scored, strict=True) if s]
    values = np.asarray(graded_ndcg(recs, judged, k), dtype=np.float64)
    return values[np.isfinite(values)]


# ---- datasets --------------------------------------------------------------------------


def _root(directory: Path | None, name: str) -> Path:
    if directory is not None:
        return Path(directory)
    base = data_dir()
    if base is None:
        raise DataError(
            "no data directory: set SHELFWISE_DATA_DIR to the folder holding the datasets"
        )
    return base / name


def _find(directory: Path, stem: str, suffixes: Sequence[str]) -> Path | None:
    for suffix in suffixes:
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def load_wands(directory: Path | None = None, max_queries: int | None = None) -> SearchDataset:
    """WANDS from `directory` (default `$SHELFWISE_DATA_DIR/wands`).

    Raises DataError naming the missing files when `query.csv`, `product.csv` or
    `label.csv` (optionally gzipped) are not all there.
    """
    root = _root(directory, "wands")
    paths = {s: _find(root, s, (".csv", ".csv.gz")) for s in ("query", "product", "label")}
    missing = [f"{s}.csv" for s, p in paths.items() if p is None]
    if missing:
        where = f"{root} does not exist" if not root.is_dir() else f"{root} is incomplete"
        raise DataError(
            f"WANDS: {where}; missing {', '.join(missing)}. Get them from "
            "https://github.com/wayfair/WANDS (dataset/product.csv, dataset/label.csv) and "
            "put them there (gzipped is fine)"
        )
    queries, products, labels = (
        pd.read_csv(str(paths[s]), sep="\t", dtype=str, keep_default_na=False)
        for s in ("query", "product", "label")
    )
    for frame, cols, fname in (
        (queries, {"query_id", "query"}, "query.csv"),
        (products, {"product_id", "product_name"}, "product.csv"),
        (labels, {"query_id", "product_id", "label"}, "label.csv"),
    ):
        if not cols <= set(frame.columns):
            raise DataError(
                f"WANDS {fname} lacks columns {sorted(cols - set(frame.columns))} "
                "(is it TAB-separated?)"
            )
    cat_col = next((c for c in ("category hierarchy", "category_hierarchy") if c in products), None)
    category = products[cat_col] if cat_col else pd.Series("", index=products.index)
    pclass = products.get("product_class", pd.Series("", index=products.index))
    items = pd.DataFrame(
        {
            "item_id": products["product_id"].astype(str),
            "title": products["product_name"],
            "brand": "",
            "category": category.str.replace(" / ", " > ", regex=False),
            "description": products.get("product_description", ""),
            "attributes": (
                pclass.str.replace("|", " ", regex=False)
                + " "
                + products.get("product_features", pd.Series("", index=products.index))
                .str.replace("|", " ", regex=False)
                .str.replace(":", " ", regex=False)
            ),
        }
    )
    item_features = {
        c: pd.to_numeric(products[c], errors="coerce").fillna(0.0).to_numpy(np.float64)
        for c in ("rating_count", "average_rating", "review_count")
        if c in products
    }
    position = pd.Series(np.arange(len(items)), index=items["item_id"])
    bad = set(labels["label"]) - set(WANDS_GRADES)
    if bad:
        raise DataError(f"WANDS label.csv has unknown labels {sorted(bad)}")
    labels = labels[labels["product_id"].isin(position.index)]
    labels = labels.assign(
        item=position.reindex(labels["product_id"]).to_numpy(),
        grade=labels["label"].map(WANDS_GRADES).to_numpy(),
    )
    by_query = {
        str(q): dict(zip(g["item"].astype(int), g["grade"].astype(int), strict=True))
        for q, g in labels.groupby("query_id")
    }
    queries = queries[queries["query_id"].astype(str).isin(by_query)]
    if max_queries is not None:
        queries = queries.head(max_queries)
    qframe = pd.DataFrame(
        {
            "qid": queries["query_id"].astype(str).to_numpy(),
            "query": queries["query"].to_numpy(),
            "user_id": None,
            "group": queries["query"].str.lower().str.strip().to_numpy(),
        }
    )
    return SearchDataset(
        name="wands",
        items=items,
        queries=qframe,
        judgements=[by_query[q] for q in qframe["qid"]],
        item_features=item_features,
        note="Wayfair WANDS; Exact=2, Partial=1, Irrelevant=0",
    )


def _read_table(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def load_esci(
    directory: Path | None = None, max_queries: int | None = 2000, locale: str = "us"
) -> SearchDataset:
    """An Amazon Shopping Queries (ESCI) sample from `directory` (default
    `$SHELFWISE_DATA_DIR/esci`); the corpus is every product of the kept judgements."""
    root = _root(directory, "esci")
    suffixes = (".parquet", ".csv", ".csv.gz")
    ex_path = _find(root, "shopping_queries_dataset_examples", suffixes)
    pr_path = _find(root, "shopping_queries_dataset_products", suffixes)
    missing = [
        f"shopping_queries_dataset_{s}.parquet (or .csv)"
        for s, p in (("examples", ex_path), ("products", pr_path))
        if p is None
    ]
    if missing or ex_path is None or pr_path is None:
        where = f"{root} does not exist" if not root.is_dir() else f"{root} is incomplete"
        raise DataError(f"no Amazon ESCI sample: {where}; missing {', '.join(missing)}")
    examples, products = _read_table(ex_path), _read_table(pr_path)
    need = {"query_id", "query", "product_id", "esci_label"}
    if not need <= set(examples.columns):
        raise DataError(f"{ex_path.name} lacks columns {sorted(need - set(examples.columns))}")
    if "product_locale" in examples:
        examples = examples[examples["product_locale"] == locale]
    if "split" in examples and (examples["split"] == "test").any():
        examples = examples[examples["split"] == "test"]
    examples = examples[examples["esci_label"].isin(list(ESCI_GRADES))]
    if max_queries is not None:
        keep = pd.unique(examples["query_id"])[:max_queries]
        examples = examples[examples["query_id"].isin(keep)]
    if "product_locale" in products:
        products = products[products["product_locale"] == locale]
    products = products.drop_duplicates("product_id")
    products = products[products["product_id"].isin(set(examples["product_id"]))].reset_index(
        drop=True
    )

    def col(name: str) -> pd.Series:
        return (
            products[name].fillna("").astype(str)
            if name in products
            else pd.Series("", index=products.index)
        )

    items = pd.DataFrame(
        {
            "item_id": products["product_id"].astype(str),
            "title": col("product_title"),
            "brand": col("product_brand"),
            "category": "",
            "description": col("product_description").str.slice(0, 2000),
            "attributes": col("product_bullet_point").str.slice(0, 2000)
            + " "
            + col("product_color"),
        }
    )
    position = pd.Series(np.arange(len(items)), index=items["item_id"])
    examples = examples[examples["product_id"].astype(str).isin(position.index)]
    examples = examples.assign(
        item=position.reindex(examples["product_id"].astype(str)).to_numpy(),
        grade=examples["esci_label"].map(ESCI_GRADES).to_numpy(),
    )
    groups = examples.groupby("query_id", sort=False)
    qframe = pd.DataFrame(
        {
            "qid": [str(q) for q, _ in groups],
            "query": [str(g["query"].iloc[0]) for _, g in groups],
            "user_id": None,
        }
    )
    qframe["group"] = qframe["query"].str.lower().str.strip()
    judgements = [
        dict(zip(g["item"].astype(int), g["grade"].astype(int), strict=True)) for _, g in groups
    ]
    return SearchDataset(
        name="esci",
        items=items,
        queries=qframe,
        judgements=judgements,
        note="Amazon Shopping Queries sample; E=3, S=2, C=1, I=0",
    )


def load_demo(
    seed: int = 42,
    n_items: int = 5000,
    n_users: int = 2000,
    days: int = 90,
    history_fraction: float = 2 / 3,
    window_minutes: float = 30.0,
) -> SearchDataset:
    """The demo store's own searches, labelled by the shoppers' clicks, carts and purchases
    (see the module docstring)."""
    from shelfwise.data.demo import DemoConfig, generate

    if not 0.0 < history_fraction < 1.0:
        raise ConfigError(f"history_fraction must be in (0, 1), got {history_fraction}")
    store = generate(DemoConfig(seed=seed, n_items=n_items, n_users=n_users, days=days))
    events = store.events
    ts = pd.to_datetime(events["timestamp"])
    cut = ts.min() + (ts.max() - ts.min()) * history_fraction
    history = events[ts < cut]
    labels = search_labels(events, window_minutes=window_minutes)
    labels = labels[pd.to_datetime(labels["timestamp"]) >= cut]
    items = store.items.reset_index(drop=True)
    position = pd.Series(np.arange(len(items)), index=items["item_id"].astype(str))
    labels = labels.assign(item=position.reindex(labels["item_id"].astype(str)).to_numpy())
    labels = labels[labels["item"].notna()]
    groups = labels.groupby("search_id", sort=False)
    first = groups.first()
    qframe = pd.DataFrame(
        {
            "qid": first.index.astype(str),
            "query": first["query"].astype(str).to_numpy(),
            "user_id": first["user_id"].astype(str).to_numpy(),
        }
    )
    qframe["group"] = qframe["query"].str.lower().str.strip()
    judgements = [
        dict(zip(g["item"].astype(int), g["grade"].astype(int), strict=True)) for _, g in groups
    ]
    return SearchDataset(
        name="demo",
        items=items,
        queries=qframe,
        judgements=judgements,
        history=history,
        item_features=numeric_attributes(items),
        note=(
            f"demo store seed {seed}: {len(items)} items; history = events before {cut}; "
            f"labels from clicks/carts/purchases within {window_minutes:g} min of a search"
        ),
    )


def dataset_status() -> dict[str, str]:
    """For each search dataset: `present`, or why it cannot be loaded."""
    status: dict[str, str] = {"demo": "present (generated)"}
    base = data_dir()
    for name in ("wands", "esci"):
        if base is None:
            status[name] = "absent: no data directory (set SHELFWISE_DATA_DIR)"
            continue
        root = base / name
        if not root.is_dir():
            status[name] = f"absent: no folder {root}"
            continue
        try:
            if name == "wands":
                paths = [_find(root, s, (".csv", ".csv.gz")) for s in ("query", "product", "label")]
                missing = [
                    f"{s}.csv"
                    for s, p in zip(("query", "product", "label"), paths, strict=True)
                    if p is None
                ]
            else:
                sfx = (".parquet", ".csv", ".csv.gz")
                missing = [
                    s
                    for s in ("examples", "products")
                    if _find(root, f"shopping_queries_dataset_{s}", sfx) is None
                ]
        except OSError as exc:
            status[name] = f"absent: {exc}"
            continue
        status[name] = f"absent: {root} lacks {', '.join(missing)}" if missing else "present"
    return dict(sorted(status.items(), key=lambda kv: SEARCH_DATASETS.index(kv[0])))


def load_search_dataset(name: str, **options: Any) -> SearchDataset:
    """A search dataset by name (`wands`, `esci`, `demo`); options go to its loader."""
    loaders = {"wands": load_wands, "esci": load_esci, "demo": load_demo}
    if name not in loaders:
        raise ConfigError(
            f"unknown search dataset {name!r}; choose one of {', '.join(SEARCH_DATASETS)}"
        )
    loader: Any = loaders[name]
    dataset: SearchDataset = loader(**options)
    return dataset


# ---- the runner ------------------------------------------------------------------------


def _fold_of_groups(groups: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold per query, whole groups per fold, groups spread at random."""
    uniq, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    fold_of_group = np.empty(uniq.size, dtype=np.int64)
    fold_of_group[rng.permutation(uniq.size)] = np.arange(uniq.size) % folds
    return fold_of_group[inverse]


def _grades(cands: np.ndarray, judged: Mapping[int, int]) -> np.ndarray:
    return np.array([max(judged.get(int(i), 0), 0) for i in cands], dtype=np.int64)


def evaluate_search(
    dataset: SearchDataset,
    methods: Sequence[str] = METHODS,
    k: int = 10,
    depth: int = 100,
    folds: int = 5,
    seed: int = 0,
    ltr_config: LTRConfig | None = None,
    progress: bool = False,
    encoder: SentenceEncoder | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Score `methods` on `dataset`; returns `{"dataset", "results": {method: metrics}, ...}`.

    `ltr` re-ranks the union of the bm25 and dense top-`depth` lists (ordered by RRF) and is
    scored with `folds`-fold cross-validation over query groups: every query is ranked by a
    model trained on the other folds only. `encoder` replaces the packaged MiniLM (anything
    with the `SentenceEncoder` interface); its embeddings are cached in `cache_dir`.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"methods: unknown {', '.join(unknown) or '(none given)'}; choose from "
            f"{', '.join(METHODS)}"
        )
    if k < 1 or depth < k:
        raise ConfigError(f"need 1 <= k <= depth, got k={k}, depth={depth}")
    if any(m in LTR_VARIANTS for m in methods) and folds < 2:
        raise ConfigError(f"ltr needs at least 2 cross-validation folds, got {folds}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    needs_dense = any(m != "bm25" for m in methods)
    dense: DenseIndex | None = None
    if needs_dense:
        dense = DenseIndex(encoder=encoder).index(
            item_texts(dataset.items), progress=progress, cache_dir=cache_dir
        )
        timings["dense_index"] = round(time.perf_counter() - t0, 2)
    t1 = time.perf_counter()
    builder = FeatureBuilder(
        dataset.items,
        history=dataset.history,
        dense=dense,
        item_features=dataset.item_features,
        fields={f: w for f, w in DEFAULT_FIELDS.items()},
    )
    timings["bm25_and_features_index"] = round(time.perf_counter() - t1, 2)
    queries = dataset.queries["query"].astype(str).tolist()
    n_q = len(queries)

    t1 = time.perf_counter()
    bm25_lists: list[Results] = []
    for q in tqdm(queries, desc="bm25", disable=not progress):
        scores = builder.bm25.score(q)
        scores[scores <= 0] = -np.inf
        bm25_lists.append(top_k(scores, depth))
    timings["bm25_search"] = round(time.perf_counter() - t1, 2)
    dense_lists: list[Results] = []
    q_vectors = np.zeros((n_q, 1), dtype=np.float32)
    if dense is not None:
        t1 = time.perf_counter()
        q_vectors = dense.encode_queries(queries)
        res = dense.search_vectors(q_vectors, depth)
        dense_lists = [
            Results(res.ids[i][res.ids[i] >= 0], res.scores[i][res.ids[i] >= 0]) for i in range(n_q)
        ]
        timings["dense_search"] = round(time.perf_counter() - t1, 2)

    runs: dict[str, list[np.ndarray]] = {}
    if "bm25" in methods:
        runs["bm25"] = [r.ids for r in bm25_lists]
    if "dense" in methods:
        runs["dense"] = [r.ids for r in dense_lists]
    if "hybrid" in methods:
        runs["hybrid"] = [
            reciprocal_rank_fusion([b, d], limit=depth).ids
            for b, d in zip(bm25_lists, dense_lists, strict=True)
        ]
    if "hybrid-score" in methods:
        runs["hybrid-score"] = [
            weighted_score_fusion([b, d], weights=[0.5, 0.5], limit=depth).ids
            for b, d in zip(bm25_lists, dense_lists, strict=True)
        ]
    extra: dict[str, Any] = {}
    variants = [m for m in methods if m in LTR_VARIANTS]
    if variants:
        t1 = time.perf_counter()
        data = _ltr_features(dataset, builder, bm25_lists, dense_lists, q_vectors, progress)
        extra["ltr_mean_candidates"] = round(float(np.mean([c.size for c in data[0]])), 1)
        for m in variants:
            keep = [i for i, n in enumerate(builder.names) if not LTR_VARIANTS[m](n)]
            runs[m], share = _cross_validated_ltr(
                dataset, data, [builder.names[i] for i in keep], np.array(keep), depth, folds,
                seed, ltr_config or LTRConfig(seed=seed),
            )  # fmt: skip
            if m == "ltr":
                extra["ltr_feature_gain_share"] = share
        timings["ltr_cv"] = round(time.perf_counter() - t1, 2)

    results = {
        m: evaluate_rankings(
            runs[m], dataset.judgements, k=k, depth=depth, relevant_grade=dataset.relevant_grade
        )
        for m in methods
    }
    from shelfwise.evaluation.stats import paired_test, unit_summary  # evaluation sits above

    per_query = {
        m: ndcg_per_query(runs[m], dataset.judgements, k, dataset.relevant_grade) for m in methods
    }
    summaries = {m: {f"ndcg@{k}": unit_summary(v)} for m, v in per_query.items()}
    if "bm25" in per_query:
        extra["paired_vs_bm25"] = {
            m: {f"ndcg@{k}": paired_test(v, per_query["bm25"])}
            for m, v in per_query.items()
            if m != "bm25"
        }
    n_scored = next(iter(results.values()))["queries"]
    for r in results.values():
        r.pop("queries")
    return {
        "dataset": dataset.name,
        "results": results,
        "k": k,
        "depth": depth,
        "queries": int(n_scored),
        "items": len(dataset.items),
        "folds": folds if variants else None,
        "note": dataset.note,
        "seconds": timings,
        "per_query_summary": summaries,
        **extra,
    }


_Features = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]


def _ltr_features(
    dataset: SearchDataset,
    builder: FeatureBuilder,
    bm25_lists: list[Results],
    dense_lists: list[Results],
    q_vectors: np.ndarray,
    progress: bool,
) -> _Features:
    """(candidates, feature rows, grades) per query; candidates are the RRF-ordered union of
    the bm25 and dense lists."""
    queries = dataset.queries["query"].astype(str).tolist()
    users = dataset.queries["user_id"].tolist()
    cands: list[np.ndarray] = []
    feats: list[np.ndarray] = []
    grades: list[np.ndarray] = []
    for i in tqdm(range(len(queries)), desc="ltr features", disable=not progress):
        c = reciprocal_rank_fusion([bm25_lists[i], dense_lists[i]]).ids
        user = None if users[i] is None or pd.isna(users[i]) else str(users[i])
        cands.append(c)
        feats.append(builder.features(queries[i], c, user, query_vector=q_vectors[i]))
        grades.append(_grades(c, dataset.judgements[i]))
    return cands, feats, grades


def _cross_validated_ltr(
    dataset: SearchDataset,
    data: _Features,
    names: list[str],
    columns: np.ndarray,
    depth: int,
    folds: int,
    seed: int,
    config: LTRConfig,
) -> tuple[list[np.ndarray], dict[str, float]]:
    """Rankings of every query by a model trained on the other folds; feature gain shares."""
    cands, feats, grades = data
    fold = _fold_of_groups(dataset.queries["group"].tolist(), folds, seed)
    ranked: list[np.ndarray] = [np.empty(0, np.int64)] * len(cands)
    importance: dict[str, float] = {}
    for f in range(folds):
        train = np.flatnonzero((fold != f) & np.array([c.size > 0 for c in cands]))
        test = np.flatnonzero(fold == f)
        model = LTRReranker(config).fit(
            np.vstack([feats[i][:, columns] for i in train]),
            np.concatenate([grades[i] for i in train]),
            [cands[i].size for i in train],
            names,
        )
        for name, gain in model.feature_importance().items():
            importance[name] = importance.get(name, 0.0) + gain / folds
        for i in test.tolist():
            if cands[i].size == 0:
                continue
            s = model.predict(feats[i][:, columns])
            order = np.lexsort((np.arange(s.size), -s))[:depth]
            ranked[i] = cands[i][order]
    total = sum(importance.values()) or 1.0
    share = {n: round(g / total, 4) for n, g in sorted(importance.items(), key=lambda p: -p[1])}
    return ranked, share


# ---- judged folders (queries.tsv + qrels.tsv) ------------------------------------------
