"""Search relevance on judged folders.

Judged folders (`load_judged_folder`, `evaluate_judged_search`): a folder holding
`queries.tsv` (query_id, query, type) and `qrels.tsv` (query_id, doc_id, grade; TREC-style
pooled judgements such as `beauty-search-dev`) over a corpus (a dataset name such as
`amazon-beauty`, or an items frame). `evaluate_judged_search` asks the product's own
`SearchService` (default mode and `lexical` / `semantic` / `hybrid`) for the top 10 of every
query and reports, as the folder's `eval.py` does:

* nDCG@10 with exponential gains `2 ** grade - 1`, log2 discount and the ideal from all the
  query's judgements (`evaluation.metrics.graded_ndcg(gain="exponential")`);
* Recall@10 and MRR@10 with relevant = grade >= 2;
* judged@10: the share of the returned top-10 documents that carry a judgement (pooled over
  all queries); unjudged documents count as irrelevant, so read every score beside it;

means over every query of the qrels (an unanswered query scores 0), overall and per query
type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.errors import ConfigError, DataError
from shelfwise.evaluation.metrics import graded_ndcg
from shelfwise.search.relevance import SearchDataset, as_ranked

log = logging.getLogger(__name__)

__all__ = [
    "JUDGED_METHODS",
    "evaluate_judged_search",
    "judged_metrics",
    "load_judged_folder",
    "write_trec_run",
]

JUDGED_METHODS = ("default", "lexical", "semantic", "hybrid")
"""Methods for a judged folder: the `SearchService` in its default mode (what `shelfwise
search` answers with) and in each search mode."""


def _read_tsv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path} is missing: a judged folder holds queries.tsv and qrels.tsv")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: needs the TAB-separated columns {', '.join(columns)}; "
            f"missing {', '.join(missing)}"
        )
    return frame


def load_judged_folder(
    folder: Path,
    corpus: str | pd.DataFrame = "amazon-beauty",
    data_dir: Path | None = None,
) -> SearchDataset:
    """Queries and graded judgements of a judged folder over `corpus` (a dataset name read by
    `data.datasets.load_dataset`, or an items frame); judgements map catalogue rows to grades.

    Raises DataError naming the file and line for a grade that is not an integer, a judged
    query missing from queries.tsv or a doc_id that is not in the corpus."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"judged folder {folder} does not exist")
    queries = _read_tsv(folder / "queries.tsv", ("query_id", "query"))
    qrels = _read_tsv(folder / "qrels.tsv", ("query_id", "doc_id", "grade"))
    grades = pd.to_numeric(qrels["grade"], errors="coerce")
    bad = np.flatnonzero(grades.isna().to_numpy() | (grades % 1 != 0).to_numpy())
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{folder / 'qrels.tsv'}, line {row + 2}: grade {qrels['grade'].iloc[row]!r} "
            "is not an integer"
        )
    if isinstance(corpus, pd.DataFrame):
        items, corpus_name = corpus.reset_index(drop=True), "items"
    else:
        from shelfwise.data.datasets import load_dataset

        items, corpus_name = load_dataset(corpus, data_dir).items.reset_index(drop=True), corpus
    position = {str(i): r for r, i in enumerate(items["item_id"].astype(str).tolist())}
    known_q = set(queries["query_id"])
    judgements: dict[str, dict[int, int]] = {}
    for n, (qid, doc, grade) in enumerate(
        zip(qrels["query_id"], qrels["doc_id"], grades.astype(int).tolist(), strict=True)
    ):
        if qid not in known_q:
            raise DataError(
                f"{folder / 'qrels.tsv'}, line {n + 2}: query {qid!r} is not in queries.tsv"
            )
        pos = position.get(str(doc))
        if pos is None:
            raise DataError(
                f"{folder / 'qrels.tsv'}, line {n + 2}: doc {doc!r} is not in the corpus "
                f"{corpus_name!r} (is it the corpus these judgements were made on?)"
            )
        judgements.setdefault(qid, {})[pos] = grade  # a repeated pair: the last line wins
    judged = queries[queries["query_id"].isin(judgements)].reset_index(drop=True)
    qtype = judged["type"] if "type" in judged else pd.Series("", index=judged.index)
    frame = pd.DataFrame(
        {
            "qid": judged["query_id"].astype(str),
            "query": judged["query"].astype(str),
            "user_id": None,
            "group": judged["query"].str.lower().str.strip(),
            "type": qtype.astype(str),
        }
    )
    return SearchDataset(
        name=folder.name,
        items=items,
        queries=frame,
        judgements=[judgements[q] for q in frame["qid"]],
        relevant_grade=2,
        note=f"{folder}: {len(frame)} judged queries, {len(qrels)} judgements over {corpus_name}",
    )


def judged_metrics(
    ranked: Sequence[np.ndarray],
    judgements: Sequence[Mapping[int, int]],
    k: int = 10,
    relevant_grade: int = 2,
) -> pd.DataFrame:
    """Per query: `ndcg` (exponential gains, `evaluation.metrics.graded_ndcg`), `recall`
    and `mrr` (relevant = grade >= `relevant_grade`; recall NaN without a relevant item),
    `returned` and `judged` counts of the top k."""
    if len(ranked) != len(judgements):
        raise DataError(f"{len(ranked)} rankings for {len(judgements)} judgement sets")
    tops: list[list[int]] = []
    for row in ranked:
        seen: list[int] = []
        for i in np.asarray(row, dtype=np.int64).tolist():
            if i >= 0 and i not in seen:
                seen.append(i)
            if len(seen) == k:
                break
        tops.append(seen)
    padded = as_ranked([np.array(t, dtype=np.int64) for t in tops], k)
    ndcg = np.nan_to_num(graded_ndcg(padded, judgements, k, gain="exponential"), nan=0.0)
    rows = []
    for top, judged, nd in zip(tops, judgements, ndcg.tolist(), strict=True):
        hits = [judged.get(i, 0) >= relevant_grade for i in top]
        n_rel = sum(g >= relevant_grade for g in judged.values())
        first = hits.index(True) + 1 if any(hits) else 0
        rows.append(
            {
                "ndcg": nd,
                "recall": sum(hits) / n_rel if n_rel else np.nan,
                "mrr": 1.0 / first if first else 0.0,
                "returned": len(top),
                "judged": sum(i in judged for i in top),
            }
        )
    return pd.DataFrame(rows)


def _summary(frame: pd.DataFrame, k: int) -> dict[str, float]:
    returned = int(frame["returned"].sum())
    return {
        f"ndcg@{k}": float(frame["ndcg"].mean()),
        f"recall@{k}": float(frame["recall"].mean()),
        f"mrr@{k}": float(frame["mrr"].mean()),
        f"judged@{k}": float(frame["judged"].sum() / returned) if returned else float("nan"),
    }


def _service_rankings(
    dataset: SearchDataset, methods: Sequence[str], k: int, cache_dir: Path | None
) -> dict[str, list[np.ndarray]]:
    from shelfwise.search.service import SearchService

    service = SearchService.build(dataset.items)
    if any(m in ("semantic", "hybrid") for m in methods):
        service.enable_dense(cache_dir=cache_dir)
    runs: dict[str, list[np.ndarray]] = {}
    queries = dataset.queries["query"].astype(str).tolist()
    for method in methods:
        mode = None if method == "default" else method
        runs[method] = [
            np.asarray(service.search(q, per_page=k, facets=(), mode=mode).rows, dtype=np.int64)
            for q in queries
        ]
    return runs


def evaluate_judged_search(
    dataset: SearchDataset,
    methods: Sequence[str] = ("default",),
    k: int = 10,
    cache_dir: Path | None = None,
    runs: Mapping[str, Sequence[np.ndarray]] | None = None,
) -> dict[str, Any]:
    """nDCG@k, Recall@k, MRR@k and judged@k of `methods` (see `JUDGED_METHODS`) on a judged
    folder's dataset, overall (`results`) and per query type (`by_type`: method -> type ->
    metrics plus `n`). `runs` gives rankings (catalogue rows per query) to score instead of
    running the search service. The report keeps the rankings under `runs`."""
    if runs is None:
        unknown = [m for m in methods if m not in JUDGED_METHODS]
        if unknown or not methods:
            raise ConfigError(
                f"methods: unknown {', '.join(unknown) or '(none given)'} for a judged folder; "
                f"choose from {', '.join(JUDGED_METHODS)}"
            )
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        runs = _service_rankings(dataset, methods, k, cache_dir)
    results: dict[str, dict[str, float]] = {}
    by_type: dict[str, dict[str, dict[str, float]]] = {}
    types = dataset.queries.get("type")
    for method, ranked in runs.items():
        per_query = judged_metrics(ranked, dataset.judgements, k, dataset.relevant_grade)
        results[method] = _summary(per_query, k)
        if types is not None:
            per_query["type"] = types.to_numpy()
            by_type[method] = {
                str(t): {"n": len(g), **_summary(g, k)}
                for t, g in per_query.groupby("type", sort=True)
            }
    return {
        "dataset": dataset.name,
        "results": results,
        "by_type": by_type,
        "k": k,
        "queries": len(dataset.queries),
        "items": len(dataset.items),
        "note": dataset.note,
        "runs": {m: [np.asarray(r).tolist() for r in ranked] for m, ranked in runs.items()},
    }


def write_trec_run(
    path: Path, dataset: SearchDataset, ranked: Sequence[Sequence[int]], tag: str, k: int = 10
) -> Path:
    """Rankings (catalogue rows per query) as a TREC run file (`query_id Q0 doc_id rank score
    tag`, score = k + 1 - rank), the format the judged folders' eval.py reads."""
    ids = dataset.items["item_id"].astype(str).tolist()
    lines = []
    for qid, row in zip(dataset.queries["qid"], ranked, strict=True):
        for rank, i in enumerate([int(x) for x in row if int(x) >= 0][:k], start=1):
            lines.append(f"{qid} Q0 {ids[i]} {rank} {k + 1 - rank} {tag}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
