"""Profiles and push plans stay right when the store already holds absurd timestamps
(written before the write paths refused them): future events are ignored, `as_of` is never
later than the wall clock, and nothing raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from shelfwise.data.frames import conform
from shelfwise.profiles import ProfileService
from shelfwise.profiles.push import plan_push
from shelfwise.store import Store

from .test_profile import lookup

NOW = datetime.now(UTC).replace(microsecond=0)


def _frame(rows: list[tuple[str, str, str, datetime]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp"])
    for column in ("event_id", "query", "session_id"):
        frame[column] = None
    frame["value"] = np.nan
    return conform("events", frame)


def test_future_events_in_the_store_are_ignored(store: Store) -> None:
    ten_days = NOW - timedelta(days=10)
    store.ingest(
        events=_frame(
            [
                ("a", "K1", "purchase", ten_days),
                ("a", "H1", "view", NOW - timedelta(days=2)),
                ("a", "K2", "view", datetime(9999, 12, 31, 23, 59, 59)),  # poison
                ("b", "K1", "purchase", NOW - timedelta(days=3)),
                ("z", "K1", "view", datetime(2200, 1, 1)),  # only poison
            ]
        )
    )
    service = ProfileService(store, lookup)
    a = service.get("a")
    assert a is not None
    assert a.events == 2 and a.lifecycle == "new"  # one purchase, 10 days ago
    assert a.last_seen == NOW - timedelta(days=2)
    # as of the newest plausible event in the store (not the year 9999): 8 days after the purchase
    assert a.as_of == NOW - timedelta(days=2)
    assert a.rfm.recency_days == 8.0
    b = service.get("b")  # not churned by someone else's event in the year 9999
    assert b is not None and b.lifecycle == "new" and b.events == 1
    assert service.get("z") is None  # no plausible event: like a user without events
    plan = plan_push(a, [{"item_id": "K2", "category": "", "price": None}], now=NOW)
    assert plan.send and plan.items == ["K2"] and plan.send_at is not None
    assert plan.send_at <= datetime.now(UTC) + timedelta(days=1, hours=2)
    # a second read folds incrementally and still ignores the poison
    again = service.get("a")
    assert again is not None and again.events == 2


def test_a_push_plan_from_a_profile_dated_in_the_far_future_does_not_raise(store: Store) -> None:
    store.ingest(events=_frame([("a", "K1", "purchase", NOW - timedelta(days=10))]))
    profile = ProfileService(store, lookup).get("a")
    assert profile is not None
    far = profile.model_copy(update={"as_of": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)})
    plan = plan_push(far, [{"item_id": "K2", "category": "", "price": None}])
    assert plan.send and plan.send_at is not None
    assert plan.send_at <= datetime.now(UTC) + timedelta(days=1, hours=2)
