"""Serving-time recency (`EngineConfig.history_half_life_days`): an established shopper who
turns to a new category sees it in the next recommendations, without retraining.

The shop: eight scooter items (A1..A8) that other shoppers buy in overlapping pairs, four
tent items (B1..B4) that others buy together; no shopper mixes the two. The established
shopper bought A1..A4 twice each sixty days ago, then views B1 and B2 now. Item-kNN scores
an unseen item by the history's weights times its neighbour cosines: without a decay the
eight old purchases (5 each) outweigh two views (1 each) and A5..A8 fill the top 3; with the
default two-week half-life the purchases count 5 * 2**(-60/14) ~ 0.26 each and B3, B4 lead.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from shelfwise.artifacts import build_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.serving import Engine, EngineConfig
from shelfwise.store import open_store

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
NOW = T0 + timedelta(days=60)
A = [f"A{i}" for i in range(1, 9)]
B = [f"B{i}" for i in range(1, 5)]


def _items() -> pd.DataFrame:
    rows = [
        Item(item_id=i, title=f"Scooter {i}", category="Sports > Scooters", price=100.0) for i in A
    ] + [Item(item_id=i, title=f"Tent {i}", category="Outdoor > Tents", price=80.0) for i in B]
    return records_to_frame("items", rows)


def _event(n: int, user: str, item: str, kind: str, at: datetime) -> Event:
    return Event(
        event_id=f"e{n}",
        user_id=user,
        item_id=item,
        type=kind,
        timestamp=at,
        session_id=f"{user}-{at:%j}",
    )


def _history() -> pd.DataFrame:
    rows: list[Event] = []
    for u in range(8):  # scooter shoppers: A_u with A_{u+1}, A_{u+2} (neighbours overlap)
        for j in range(3):
            rows.append(_event(len(rows), f"a{u}", A[(u + j) % 8], "purchase", T0))
    for u in range(4):  # tent shoppers buy the whole range
        for item in B:
            rows.append(_event(len(rows), f"b{u}", item, "purchase", T0))
    for _ in range(2):  # the established shopper, sixty days ago
        for item in A[:4]:
            rows.append(_event(len(rows), "shopper", item, "purchase", T0))
    return records_to_frame("events", rows)


def _top(engine: Engine, k: int = 3) -> list[str]:
    return [i["item_id"] for i in engine.recommend("shopper", k=k).items]


def test_recent_views_of_a_new_category_lead_the_recommendations(tmp_path: Path) -> None:
    with open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}") as store:
        store.ingest(items=_items(), events=_history())
        bundle = build_bundle(
            store,
            tmp_path / "artifacts",
            models={"popularity": {}, "itemknn": {"neighbors": 20, "shrink": 0.0}},
            search_rerank=False,
        )
        assert bundle.engine.history_half_life_days == 14.0  # the default, in the manifest
        assert bundle.manifest["engine"]["history_half_life_days"] == 14.0
        recent = Engine(store, bundle)
        plain = Engine(
            store,
            dataclasses.replace(bundle, engine=EngineConfig(history_half_life_days=None)),
        )
        before = _top(recent)
        assert set(before) <= set(A[4:])  # scooters only
        # two views of tents, now; no retraining
        views = records_to_frame(
            "events", [_event(1000 + n, "shopper", i, "view", NOW) for n, i in enumerate(B[:2])]
        )
        store.append_events(views)
        recent.log.mark_dirty()
        plain.log.mark_dirty()
        after = _top(recent)
        assert set(after[:2]) == {"B3", "B4"}, after
        assert set(_top(plain)) <= set(A[4:])  # without the half-life the old purchases win
