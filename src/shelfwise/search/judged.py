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

Learning to rank from the judgements (`ltr_cv=K`, `cross_validate_judged`): the
LightGBM lambdarank re-ranker (`search.ltr.PersonalisedReranker`) over the candidates the
service hands its re-ranker in its default mode, scored out of fold: queries are split
into K folds grouped by their normalised text (seeded), and every query is ranked by a
model trained on the other folds only, so no query is scored by a model that saw its
judgements. Repeated for each seed; the report gives the mean over seeds beside the
un-reranked default and the spread (`ltr_cv`). `train_judged_reranker` trains on every
query, for a bundle to serve.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from shelfwise.errors import ConfigError, DataError
from shelfwise.evaluation.metrics import graded_ndcg
from shelfwise.search.relevance import SearchDataset, _fold_of_groups, as_ranked

if TYPE_CHECKING:
    from shelfwise.search.ltr import LTRConfig, PersonalisedReranker
    from shelfwise.search.service import SearchService

log = logging.getLogger(__name__)

__all__ = [
    "JUDGED_METHODS",
    "cross_validate_judged",
    "evaluate_judged_search",
    "judged_metrics",
    "load_judged_folder",
    "train_judged_reranker",
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
    A named corpus's events become the dataset's `history` (the re-ranker's popularity).

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
        events = None
    else:
        from shelfwise.data.datasets import load_dataset

        loaded = load_dataset(corpus, data_dir)
        items, corpus_name, events = loaded.items.reset_index(drop=True), corpus, loaded.events
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
        history=events,
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


def _service(dataset: SearchDataset, dense: bool, cache_dir: Path | None) -> SearchService:
    """The search service over the dataset's corpus, dense retrieval on when asked."""
    from shelfwise.search.service import SearchService

    service = SearchService.build(dataset.items)
    if dense:
        service.enable_dense(cache_dir=cache_dir)
    return service


def _service_rankings(
    service: SearchService, dataset: SearchDataset, methods: Sequence[str], k: int
) -> dict[str, list[np.ndarray]]:
    runs: dict[str, list[np.ndarray]] = {}
    queries = dataset.queries["query"].astype(str).tolist()
    for method in methods:
        mode = None if method == "default" else method
        runs[method] = [
            np.asarray(service.search(q, per_page=k, facets=(), mode=mode).rows, dtype=np.int64)
            for q in queries
        ]
    return runs


def _score(
    dataset: SearchDataset, ranked: Sequence[np.ndarray], k: int
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(overall summary, per-type summaries) of one method's rankings."""
    per_query = judged_metrics(ranked, dataset.judgements, k, dataset.relevant_grade)
    by_type: dict[str, dict[str, float]] = {}
    types = dataset.queries.get("type")
    if types is not None:
        per_query["type"] = types.to_numpy()
        by_type = {
            str(t): {"n": len(g), **_summary(g, k)} for t, g in per_query.groupby("type", sort=True)
        }
    return _summary(per_query, k), by_type


def _spread(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def cross_validate_judged(
    dataset: SearchDataset,
    service: SearchService,
    folds: int = 5,
    seeds: Sequence[int] = (0,),
    k: int = 10,
    config: LTRConfig | None = None,
    unjudged: Literal["zero", "drop"] = "zero",
    mode: str | None = None,
) -> dict[str, Any]:
    """Out-of-fold rankings of the judged re-ranker over `service`'s candidates in `mode`
    (None: its default mode; see the module docstring), for each seed.

    Returns `{"default": un-reranked top-k per query, "runs": {seed: top-k per query},
    "feature_gain_share": {feature: share}, "candidates": mean candidates per query,
    "judged_candidates": the judged share of the candidates}`. A query whose text leaves
    nothing to re-rank keeps the service's answer."""
    from shelfwise.search.ltr import UNJUDGED, LTRConfig, PersonalisedReranker, service_candidates

    if folds < 2:
        raise ConfigError(f"ltr_cv needs at least 2 folds, got {folds}")
    if not seeds:
        raise ConfigError("seeds: give at least one cross-validation seed")
    if unjudged not in UNJUDGED:
        raise ConfigError(f"unjudged must be one of {', '.join(UNJUDGED)}, got {unjudged!r}")
    groups = dataset.queries["group"].astype(str).tolist()
    if len(set(groups)) < folds:
        raise ConfigError(f"{len(set(groups))} distinct queries cannot fill {folds} folds")
    queries = dataset.queries["query"].astype(str).tolist()
    served = service_candidates(service, queries, k=k, mode=mode)
    reranker = PersonalisedReranker.for_service(service, dataset.history, config)
    feats, grades, judged = reranker.judged_rows(served, dataset.judgements)
    base = config or LTRConfig()
    runs: dict[int, list[np.ndarray]] = {}
    gain: dict[str, float] = {}
    fits = 0
    for seed in seeds:
        fold = _fold_of_groups(groups, folds, seed)
        ranked = [got.top for got in served]
        for f in range(folds):
            train = np.flatnonzero(fold != f).tolist()
            reranker.model.config = base.model_copy(update={"seed": int(seed)})
            reranker.fit(
                [feats[i] for i in train],
                [grades[i] for i in train],
                [judged[i] for i in train],
                unjudged,
            )
            fits += 1
            for name, g in reranker.model.feature_importance().items():
                gain[name] = gain.get(name, 0.0) + g
            for i in np.flatnonzero(fold == f).tolist():
                if served[i].context is None or served[i].rows.size == 0:
                    continue
                scores = reranker.model.predict(feats[i])
                order = np.lexsort((np.arange(scores.size), -scores))[:k]
                ranked[i] = served[i].rows[order]
        runs[int(seed)] = ranked
    total = sum(gain.values()) or 1.0
    sizes = [got.rows.size for got in served]
    return {
        "default": [got.top for got in served],
        "runs": runs,
        "feature_gain_share": {
            n: round(g / total, 4) for n, g in sorted(gain.items(), key=lambda p: -p[1])
        },
        "candidates": round(float(np.mean(sizes)), 1) if sizes else 0.0,
        "judged_candidates": round(
            float(sum(int(j.sum()) for j in judged) / max(sum(sizes), 1)), 4
        ),
        "fits": fits,
    }


def train_judged_reranker(
    service: SearchService,
    dataset: SearchDataset,
    config: LTRConfig | None = None,
    unjudged: Literal["zero", "drop"] = "zero",
) -> PersonalisedReranker:
    """The judged re-ranker trained on every query of `dataset` (a judged folder over
    `service`'s rows), over the candidates `service` hands its re-ranker; popularity from
    the dataset's `history` events. Set it as `service.reranker` to serve it."""
    from shelfwise.search.ltr import PersonalisedReranker

    if len(dataset.items) != len(service.items):
        raise DataError(
            f"the judgements are over {len(dataset.items)} items but the service holds "
            f"{len(service.items)}: load the folder with the service's items as the corpus"
        )
    return PersonalisedReranker.train_judged(
        service,
        dataset.queries["query"].astype(str).tolist(),
        dataset.judgements,
        events=dataset.history,
        config=config,
        unjudged=unjudged,
    )


def evaluate_judged_search(
    dataset: SearchDataset,
    methods: Sequence[str] = ("default",),
    k: int = 10,
    cache_dir: Path | None = None,
    runs: Mapping[str, Sequence[np.ndarray]] | None = None,
    ltr_cv: int = 0,
    ltr_seeds: Sequence[int] = (0,),
    ltr_config: LTRConfig | None = None,
    unjudged: Literal["zero", "drop"] = "zero",
    dense: bool | None = None,
    ltr_mode: str | None = None,
) -> dict[str, Any]:
    """nDCG@k, Recall@k, MRR@k and judged@k of `methods` (see `JUDGED_METHODS`) on a judged
    folder's dataset, overall (`results`) and per query type (`by_type`: method -> type ->
    metrics plus `n`). `runs` gives rankings (catalogue rows per query) to score instead of
    running the search service. The report keeps the rankings under `runs`.

    The service has dense retrieval when `dense` says so (None: when a method needs it; the
    default mode is then hybrid). With `ltr_cv` K >= 2 the judged re-ranker is scored out
    of fold over the default mode's candidates (`cross_validate_judged`, once per seed of
    `ltr_seeds`): method `ltr` holds the mean over seeds (and the first seed's rankings),
    `ltr_cv` the folds, seeds, per-seed figures, their spread, the feature gain shares and
    `per_query` (`{"ndcg@k": per query, its mean over the seeds}`, in query order);
    `default` is added to the methods as the baseline. `ltr_mode` takes the candidates from
    another search mode (`lexical` with `dense`: lexical candidates, dense features); the
    un-reranked baseline of that mode is then `default` when the mode is the default one,
    else the method of that name (added to the methods)."""
    extra: dict[str, Any] = {}
    if runs is None:
        unknown = [m for m in methods if m not in JUDGED_METHODS]
        if unknown or not methods:
            raise ConfigError(
                f"methods: unknown {', '.join(unknown) or '(none given)'} for a judged folder; "
                f"choose from {', '.join(JUDGED_METHODS)}"
            )
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        if ltr_cv and ltr_cv < 2:
            raise ConfigError(f"ltr_cv needs at least 2 folds, got {ltr_cv}")
        if dense is None:
            dense = any(m in ("semantic", "hybrid") for m in methods)
        service = _service(dataset, dense, cache_dir)
        if ltr_mode is not None and ltr_mode not in JUDGED_METHODS[1:]:
            raise ConfigError(
                f"ltr_mode: unknown {ltr_mode!r}; choose from {', '.join(JUDGED_METHODS[1:])}"
            )
        if ltr_cv:
            base = "default" if ltr_mode is None else ltr_mode
            methods = list(dict.fromkeys(["default", base, *methods]))
        runs = _service_rankings(service, dataset, [m for m in methods], k)
        if ltr_cv:
            cv = cross_validate_judged(
                dataset, service, ltr_cv, ltr_seeds, k, ltr_config, unjudged, ltr_mode
            )
            runs = {**runs, "ltr": cv["runs"][int(ltr_seeds[0])]}
            extra["ltr_cv"] = {
                "folds": ltr_cv,
                "seeds": [int(x) for x in ltr_seeds],
                "unjudged": unjudged,
                "candidates_from": service.resolve_mode(ltr_mode)[0],
                "dense_features": bool(service.dense is not None),
                "candidates": cv["candidates"],
                "judged_candidates": cv["judged_candidates"],
                "feature_gain_share": cv["feature_gain_share"],
                "baseline": base,
                "same_baseline": all(
                    np.array_equal(a, b) for a, b in zip(cv["default"], runs[base], strict=True)
                ),
                "_seed_runs": cv["runs"],
            }
    results: dict[str, dict[str, float]] = {}
    by_type: dict[str, dict[str, dict[str, float]]] = {}
    for method, ranked in runs.items():
        results[method], per_type = _score(dataset, ranked, k)
        if per_type:
            by_type[method] = per_type
    if "ltr_cv" in extra:
        info = extra["ltr_cv"]
        seed_runs = info.pop("_seed_runs")
        per_seed = {s: _score(dataset, r, k) for s, r in seed_runs.items()}
        info["per_seed"] = {str(s): overall for s, (overall, _) in per_seed.items()}
        info["per_query"] = {  # per query, the mean over seeds (its mean: results["ltr"])
            f"ndcg@{k}": np.mean(
                [
                    judged_metrics(r, dataset.judgements, k, dataset.relevant_grade)["ndcg"]
                    for r in seed_runs.values()
                ],
                axis=0,
            ).tolist()
        }
        metrics = list(results["ltr"])
        info["spread"] = {
            m: _spread([overall[m] for overall, _ in per_seed.values()]) for m in metrics
        }
        results["ltr"] = {m: info["spread"][m]["mean"] for m in metrics}
        if by_type.get("ltr"):
            by_type["ltr"] = {
                t: {
                    "n": row["n"],
                    **{
                        m: float(np.mean([pt[t][m] for _, pt in per_seed.values()]))
                        for m in metrics
                    },
                }
                for t, row in by_type["ltr"].items()
            }
    return {
        "dataset": dataset.name,
        "results": results,
        "by_type": by_type,
        "k": k,
        "queries": len(dataset.queries),
        "items": len(dataset.items),
        "note": dataset.note,
        **extra,
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
