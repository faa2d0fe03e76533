"""The promotion gate and the held-out metric a bundle records (known answers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from shelfwise.artifacts.gate import gate, holdout_metrics, holdout_value

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _metrics(value: float | None) -> dict[str, object]:
    return {} if value is None else {"holdout": {"ndcg@10": value, "protocol": "loo"}}


@pytest.mark.parametrize(
    ("candidate", "champion", "passed", "words"),
    [
        (0.30, None, True, "records no held-out metric"),
        (None, None, True, "records no held-out metric"),
        (0.50, 0.40, True, "0.5000 is not worse than the champion's 0.4000"),
        (0.40, 0.40, True, "not worse"),
        (0.39, 0.40, False, "0.3900 is worse than the champion's 0.4000"),
        (None, 0.40, False, "the new bundle records no held-out ndcg@10"),
    ],
)
def test_gate_decisions(
    candidate: float | None, champion: float | None, passed: bool, words: str
) -> None:
    decision = gate(_metrics(candidate), _metrics(champion))
    assert decision.passed is passed
    assert words in decision.reason
    assert decision.as_dict()["candidate"] == candidate
    assert decision.as_dict()["champion"] == champion


def test_holdout_value_ignores_what_is_not_a_number() -> None:
    assert holdout_value({"holdout": {"ndcg@10": 0.25}}) == 0.25
    assert holdout_value({"holdout": {"ndcg@10": "high"}}) is None
    assert holdout_value({"holdout": {"ndcg@10": float("nan")}}) is None
    assert holdout_value({"validation": {"ndcg@10": 0.9}}) is None
    assert holdout_value(None) is None


def _events(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "item_id": [i for _, i in rows],
            "type": "purchase",
            "value": 1.0,
            "timestamp": [T0 + timedelta(minutes=n) for n in range(len(rows))],
        }
    )


def test_holdout_metric_leaves_the_last_event_out() -> None:
    # u1 buys A, then V (validation), then C (held out). In training u1 has only A, and A
    # co-occurs only with C (f1; f2 pairs B with D): C is u1's top item, nDCG@10 = 1
    events = _events(
        [("f1", "A"), ("f1", "C"), ("f2", "B"), ("f2", "D"), ("u1", "A"), ("u1", "V"), ("u1", "C")]
    )
    metrics = holdout_metrics(events, "itemknn", {"neighbors": 10, "shrink": 0.0})
    assert metrics is not None
    assert metrics["ndcg@10"] == pytest.approx(1.0)
    assert metrics["recall@10"] == pytest.approx(1.0)
    assert metrics["users"] == 1 and metrics["protocol"] == "loo" and metrics["model"] == "itemknn"


def test_no_holdout_metric_without_a_user_to_hold_out() -> None:
    # nobody has three events: everyone stays in training, there is nothing to measure
    events = _events([("a", "X"), ("a", "Y"), ("b", "X")])
    assert holdout_metrics(events, "itemknn", {}) is None
    assert holdout_metrics(events.iloc[0:0], "itemknn", {}) is None
