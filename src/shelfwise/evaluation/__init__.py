"""Offline evaluation: ranking metrics, split protocols, a runner and reports.

`metrics` holds pure numpy metric functions; `protocols` turns a dataset into aligned
train / validation / test matrices; `runner` fits and scores models on them; `report`
renders the results as JSON, a terminal table or a self-contained HTML page.
"""

from shelfwise.evaluation.metrics import (
    catalog_coverage,
    f1_at_k,
    hit_rate_at_k,
    intra_list_diversity,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    novelty,
    popularity_bias,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

__all__ = [
    "catalog_coverage",
    "f1_at_k",
    "hit_rate_at_k",
    "intra_list_diversity",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "popularity_bias",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]
