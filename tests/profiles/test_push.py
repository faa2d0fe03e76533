"""The push planner: known decisions for each stage, timing and item choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shelfwise.profiles.profile import RFM, Affinity, PriceBand, UserProfile
from shelfwise.profiles.push import PushConfig, plan_push

NOW = datetime(2026, 6, 10, 14, 30, tzinfo=UTC)
RECS = [
    {"item_id": "lux", "category": "Home > Kitchen > Knives", "price": 900.0},
    {"item_id": "tv", "category": "Electronics > TV", "price": 40.0},
    {"item_id": "knife", "category": "Home > Kitchen > Knives", "price": 30.0},
    {"item_id": "board", "category": "Home > Kitchen > Boards", "price": 20.0},
]


def profile(stage: str, last_seen_hours: float = 48, peaks: list[int] | None = None) -> UserProfile:
    return UserProfile(
        user_id="u",
        events=10,
        sessions=3,
        first_seen=NOW - timedelta(days=60),
        last_seen=NOW - timedelta(hours=last_seen_hours),
        categories=[Affinity(name="Home > Kitchen", share=0.8), Affinity(name="Toys", share=0.2)],
        brands=[],
        price_band=PriceBand(low=20.0, median=30.0, high=40.0),
        rfm=RFM(recency_days=2, frequency=2, monetary=60.0),
        active_hours=[0.0] * 24,
        peak_hours=[20, 9] if peaks is None else peaks,
        lifecycle=stage,  # type: ignore[arg-type]
        as_of=NOW,
    )


def test_plan_for_an_at_risk_shopper() -> None:
    plan = plan_push(profile("at_risk"), RECS)
    assert plan.send and plan.message == "win_back"
    # in the price band (10..60), favourite category first; the 900 knife is out of band
    assert plan.items == ["knife", "board", "tv"]
    # next peak hour at least an hour away: 20:00 today beats 09:00 tomorrow
    assert plan.send_at == datetime(2026, 6, 10, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stage", "message"),
    [("prospect", "browse_reminder"), ("new", "next_purchase"), ("loyal", "new_for_you")],
)
def test_message_follows_the_stage(stage: str, message: str) -> None:
    assert plan_push(profile(stage), RECS).message == message


def test_no_push_to_churned_active_or_without_items() -> None:
    churned = plan_push(profile("churned"), RECS)
    assert not churned.send and "churned" in churned.reason
    busy = plan_push(profile("active", last_seen_hours=2), RECS)
    assert not busy.send and "active" in busy.reason
    assert not plan_push(profile("active"), [RECS[0]]).send  # only an out-of-band item


def test_quiet_hours_and_default_hour() -> None:
    night_owl = plan_push(profile("active", peaks=[23, 2]), RECS)
    assert night_owl.send_at == datetime(2026, 6, 10, 18, 0, tzinfo=UTC)  # both peaks quiet
    late = plan_push(profile("active", peaks=[]), RECS, now=NOW.replace(hour=19))
    assert late.send_at == datetime(2026, 6, 11, 18, 0, tzinfo=UTC)
    cfg = PushConfig(quiet_start=8, quiet_end=22)
    assert cfg.quiet(12) and not cfg.quiet(23)
    assert PushConfig().quiet(23) and PushConfig().quiet(3) and not PushConfig().quiet(12)


def test_send_hour_peak_waits_for_the_most_active_hour_next_peak_takes_the_soonest() -> None:
    morning_first = profile("at_risk", peaks=[9, 20])  # most active at 09:00, then 20:00
    peak = plan_push(morning_first, RECS, now=NOW)
    assert peak.send_at == datetime(2026, 6, 11, 9, 0, tzinfo=UTC)  # tomorrow's 09:00
    soonest = plan_push(morning_first, RECS, now=NOW, config=PushConfig(send_hour="next_peak"))
    assert soonest.send_at == datetime(2026, 6, 10, 20, 0, tzinfo=UTC)  # today's 20:00
