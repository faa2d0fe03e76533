"""The promotion gate: a bundle's held-out metric, and whether a new bundle may replace the
served one.

`holdout_metrics` is computed while a bundle is built and recorded in its manifest under
`metrics["holdout"]`: the bundle's personalisation model (its configuration, refitted)
measured leave-last-out on a fixed-seed sample of users (`sample_users`, at most
`HOLDOUT_USERS`): each sampled user's last item event is held out, the model is fitted on
the rest, and nDCG@10 ranks the held-out item among the user's unseen items. Users with
fewer than three events stay in training only. It is small and fast (one extra fit on the
sample), and None when the store has no user to hold out.

`gate(candidate, champion)` says whether a candidate bundle may be served instead of the
champion (the served bundle): yes when its held-out metric is not worse than the
champion's, or when the champion records none; no when the candidate records none while
the champion does. The two were measured on the store as it was at each build, so a
candidate is compared with what the champion scored on the (smaller) store of its day.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from shelfwise.errors import ShelfwiseError

log = logging.getLogger(__name__)

HOLDOUT_USERS = 500
"""Most users the held-out metric samples."""
HOLDOUT_SEED = 42
"""Seed of the user sample and the split (fixed: two builds of one store measure alike)."""
GATE_METRIC = "ndcg@10"
"""The metric of `metrics["holdout"]` the gate compares."""

__all__ = ["GATE_METRIC", "GateDecision", "gate", "holdout_metrics", "holdout_value"]


def holdout_metrics(
    events: pd.DataFrame,
    model: str,
    params: Mapping[str, Any],
    users: int = HOLDOUT_USERS,
    seed: int = HOLDOUT_SEED,
    k: int = 10,
) -> dict[str, Any] | None:
    """Leave-last-out metrics of `model` (with `params`, refitted) on a seeded sample of at
    most `users` users of `events` (user_id, item_id, type, value, timestamp[, seq]); None
    when no sampled user has an event to hold out or the model cannot be measured."""
    from shelfwise.data.splits import sample_users
    from shelfwise.evaluation.protocols import prepare
    from shelfwise.evaluation.runner import evaluate_model

    frame = events[events["user_id"].notna() & events["item_id"].notna()]
    if frame.empty:
        return None
    sample = sample_users(frame, users, seed=seed)
    try:
        data = prepare(sample, "loo", seed=seed)
    except ShelfwiseError as exc:
        log.info("no held-out metric: %s", exc)
        return None
    if data.test_users.size == 0:
        return None
    run = evaluate_model(model, data, k=k, params=dict(params))
    if run.error is not None or not run.metrics:
        log.warning("no held-out metric for %s: %s", model, run.error)
        return None
    value = float(run.metrics.get(f"ndcg@{k}", math.nan))
    if math.isnan(value):
        return None
    return {
        f"ndcg@{k}": round(value, 6),
        f"recall@{k}": round(float(run.metrics.get(f"recall@{k}", 0.0)), 6),
        "protocol": "loo",
        "model": model,
        "users": int(data.test_users.size),
        "seed": seed,
    }


def holdout_value(metrics: Mapping[str, Any] | None, metric: str = GATE_METRIC) -> float | None:
    """The held-out `metric` a manifest's `metrics` record, or None."""
    holdout = (metrics or {}).get("holdout")
    if not isinstance(holdout, Mapping):
        return None
    value = holdout.get(metric)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None
    return float(value)


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate bundle may be served, with both metrics and the reason."""

    passed: bool
    reason: str
    candidate: float | None
    champion: float | None
    metric: str = GATE_METRIC

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (a job's result records it under "gate")."""
        return {
            "passed": self.passed,
            "reason": self.reason,
            "metric": f"holdout {self.metric}",
            "candidate": self.candidate,
            "champion": self.champion,
        }


def gate(
    candidate: Mapping[str, Any] | None,
    champion: Mapping[str, Any] | None,
    metric: str = GATE_METRIC,
) -> GateDecision:
    """May the bundle whose manifest `metrics` are `candidate` replace the one whose
    `metrics` are `champion`? See the module doc."""
    new, old = holdout_value(candidate, metric), holdout_value(champion, metric)
    if old is None:
        return GateDecision(True, "the champion records no held-out metric", new, old, metric)
    if new is None:
        return GateDecision(
            False,
            f"the new bundle records no held-out {metric} (too few users with 3+ events?) "
            f"while the champion scored {old:.4f}",
            new,
            old,
            metric,
        )
    if new >= old:
        return GateDecision(
            True,
            f"held-out {metric} {new:.4f} is not worse than the champion's {old:.4f}",
            new,
            old,
            metric,
        )
    return GateDecision(
        False,
        f"held-out {metric} {new:.4f} is worse than the champion's {old:.4f}",
        new,
        old,
        metric,
    )
