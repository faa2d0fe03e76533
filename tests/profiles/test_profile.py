"""Profiles: known answers for affinities, RFM, hours and lifecycle; incremental folding
equals folding all at once; the service folds new events and forgets erased users."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event
from shelfwise.profiles import ProfileService, ProfileState
from shelfwise.profiles.profile import HALF_LIFE_DAYS
from shelfwise.store import open_store

T0 = datetime(2026, 2, 1, 9, tzinfo=UTC)
CATALOG = {
    "K1": ("Home > Kitchen > Knives", "Acme", 40.0),
    "K2": ("Home > Kitchen > Knives", "Acme", 20.0),
    "H1": ("Electronics > Audio", "Sonix", 100.0),
}


def lookup(ids: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
    rows = [CATALOG.get(i, ("", "", math.nan)) for i in ids]
    return [r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows])


def events(*specs: tuple[str, str | None, str, float, float | None]) -> pd.DataFrame:
    """(user, item, type, days after T0, value) -> an events frame with seq."""
    records = [
        Event(
            user_id=u,
            item_id=i,
            type=t,
            value=v,
            query="q" if t == "search" else None,
            session_id=f"s{int(d)}",
            timestamp=T0 + timedelta(days=d),
        )
        for u, i, t, d, v in specs
    ]
    frame = records_to_frame("events", records)
    frame["seq"] = np.arange(1, len(frame) + 1)
    return frame


SPECS = [
    ("a", "K1", "view", 0.0, None),
    ("a", "K1", "purchase", 0.0, 80.0),  # two at 40
    ("a", "H1", "view", 30.0, None),
    ("a", None, "search", 30.0, None),
    ("a", "K2", "purchase", 30.0, None),  # no value: the price, 20
]


def test_known_answers() -> None:
    state = ProfileState("a")
    state.fold(events(*SPECS), lookup)
    now = (T0 + timedelta(days=40)).timestamp()
    p = state.profile(now)
    assert p.events == 5 and p.sessions == 2
    # K1's weight (1 + 5) decays one half-life by day 30; K2 adds 5, H1 adds 1
    half = 0.5 ** (30 / HALF_LIFE_DAYS)
    knives, audio = 6 * half + 5, 1.0
    assert p.categories[0].name == "Home > Kitchen > Knives"
    assert p.categories[0].share == pytest.approx(knives / (knives + audio), abs=1e-4)
    assert p.brands[0].name == "Acme"
    assert p.rfm.frequency == 2 and p.rfm.monetary == 100.0
    assert p.rfm.recency_days == pytest.approx(10.0)
    # prices seen: 40, 40, 100, 20 -> linear percentiles 35, 40, 55
    assert (p.price_band.low, p.price_band.median, p.price_band.high) == (35.0, 40.0, 55.0)
    assert p.peak_hours == [9] and p.active_hours[9] == 1.0
    assert p.lifecycle == "active"  # first purchase 40 days ago, last 10, two purchases


def test_folding_in_pieces_equals_folding_at_once() -> None:
    frame = events(*SPECS)
    whole = ProfileState("a")
    whole.fold(frame, lookup)
    pieces = ProfileState("a")
    for i in range(len(frame)):
        pieces.fold(frame.iloc[[i]], lookup)
    now = (T0 + timedelta(days=31)).timestamp()
    a, b = whole.profile(now), pieces.profile(now)
    assert a.model_dump(exclude={"categories", "brands"}) == b.model_dump(
        exclude={"categories", "brands"}
    )
    for x, y in zip(a.categories + a.brands, b.categories + b.brands, strict=True):
        assert x.name == y.name and x.share == pytest.approx(y.share, abs=1e-4)
    assert pieces.last_seq == 5


@pytest.mark.parametrize(
    ("specs", "days", "stage"),
    [
        ([("a", "K1", "view", 0.0, None)], 10, "prospect"),
        ([("a", "K1", "purchase", 0.0, None)], 10, "new"),
        ([("a", "K1", "purchase", 0.0, None)], 60, "at_risk"),
        ([("a", "K1", "purchase", 0.0, None)], 100, "churned"),
        ([("a", "K1", "purchase", float(d), None) for d in range(5)], 10, "loyal"),
        ([("a", "K1", "purchase", 0.0, None), ("a", "K1", "purchase", 35.0, None)], 40, "active"),
    ],
)
def test_lifecycle(specs: list, days: int, stage: str) -> None:  # type: ignore[type-arg]
    state = ProfileState("a")
    state.fold(events(*specs), lookup)
    assert state.lifecycle((T0 + timedelta(days=days)).timestamp()) == stage


def test_service_folds_new_events_and_forgets(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with open_store(f"duckdb:///{tmp_path / 'p.duckdb'}") as store:
        store.append_events(events(*SPECS[:2]).drop(columns=["seq"]))
        service = ProfileService(store, lookup)
        assert service.get("nobody") is None
        first = service.get("a")
        assert first is not None and first.events == 2 and first.rfm.frequency == 1
        store.append_events(events(*SPECS[2:]).drop(columns=["seq"]))
        second = service.get("a")
        assert second is not None and second.events == 5 and second.rfm.monetary == 100.0
        assert second.as_of == T0 + timedelta(days=30)  # the store's newest event
        store.erase_user("a")
        service.forget("a")
        assert service.get("a") is None
