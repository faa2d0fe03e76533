"""A small smart-push planner: what to send whom, and when.

From a user's profile and their recommendations, `plan_push` decides

- **whether**: never to churned users (leave them to win-back e-mail), never to someone
  active in the last `active_hours` hours (they are shopping; a push would interrupt), and
  not without at least `min_items` suitable items;
- **what**: the message follows the lifecycle stage (prospect -> browse reminder, new ->
  next purchase, active and loyal -> new for you, at_risk -> win back), with up to
  `max_items` recommended items, preferring the user's top categories and prices inside
  their band (between half the 25th and 1.5 times the 75th percentile);
- **when**: the user's peak hour (the hour of day they are most often active; with
  `send_hour="next_peak"` the soonest of their three peak hours) at its next occurrence at
  least `min_delay_hours` from now, quiet hours left out; 18:00 UTC without peak hours.

Hours are UTC, as profiles record them. `now` is never later than the wall clock (a
profile's `as_of` or a `now` past it, e.g. from an absurd stored timestamp, is clamped), so a
plan is always a time that can be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shelfwise.profiles.profile import UserProfile

Message = Literal["browse_reminder", "next_purchase", "new_for_you", "win_back"]
MESSAGES: dict[str, Message] = {
    "prospect": "browse_reminder",
    "new": "next_purchase",
    "active": "new_for_you",
    "loyal": "new_for_you",
    "at_risk": "win_back",
}
DEFAULT_HOUR = 18


class PushConfig(BaseModel):
    """The planner's rules (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_start: int = Field(default=22, ge=0, le=23, description="first quiet hour (UTC)")
    quiet_end: int = Field(default=8, ge=0, le=23, description="first hour after quiet")
    active_hours: float = Field(default=6.0, ge=0)
    min_delay_hours: float = Field(default=1.0, ge=0)
    max_items: int = Field(default=3, ge=1, le=20)
    min_items: int = Field(default=1, ge=1, le=20)
    top_categories: int = Field(default=3, ge=1)
    send_hour: Literal["peak", "next_peak"] = Field(
        default="peak",
        description="`peak`: the user's most active hour that is not quiet, at its next "
        "occurrence; `next_peak`: the soonest of their (up to three) peak hours. The shopper "
        "simulator measured `peak` nearer the best hour's open rate "
        "(docs/benchmarks/simulator.md)",
    )

    def quiet(self, hour: int) -> bool:
        """Whether an hour of day is in the quiet window (which may wrap past midnight)."""
        if self.quiet_start == self.quiet_end:
            return False
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= hour < self.quiet_end
        return hour >= self.quiet_start or hour < self.quiet_end


class PushPlan(BaseModel):
    """The decision for one user."""

    user_id: str
    send: bool
    reason: str
    message: Message | None = None
    send_at: datetime | None = None
    items: list[str] = Field(default_factory=list)
    lifecycle: str


def _send_time(profile: UserProfile, now: datetime, config: PushConfig) -> datetime:
    earliest = now + timedelta(hours=config.min_delay_hours)
    hours = [h for h in profile.peak_hours if not config.quiet(h)] or (
        [DEFAULT_HOUR] if not config.quiet(DEFAULT_HOUR) else [config.quiet_end]
    )
    if config.send_hour == "peak":
        hours = hours[:1]  # peak hours come most active first
    best: datetime | None = None
    for hour in hours:
        at = earliest.replace(hour=hour, minute=0, second=0, microsecond=0)
        if at < earliest:
            at += timedelta(days=1)
        if best is None or at < best:
            best = at
    assert best is not None
    return best


def _suitable(
    profile: UserProfile, recommendations: Sequence[dict[str, Any]], config: PushConfig
) -> list[str]:
    """Recommended items in the user's price band, top categories first, best first."""
    band = profile.price_band
    low = band.low * 0.5 if band.low is not None else None
    high = band.high * 1.5 if band.high is not None else None
    top = [a.name for a in profile.categories[: config.top_categories]]

    def in_band(item: dict[str, Any]) -> bool:
        price = item.get("price")
        if price is None or low is None or high is None:
            return True
        return bool(low <= float(price) <= high)

    def favourite(item: dict[str, Any]) -> bool:
        category = str(item.get("category") or "")
        return any(category == c or category.startswith(c + " > ") for c in top)

    candidates = [r for r in recommendations if in_band(r)]
    ranked = [r for r in candidates if favourite(r)] + [r for r in candidates if not favourite(r)]
    return [str(r["item_id"]) for r in ranked[: config.max_items]]


def plan_push(
    profile: UserProfile,
    recommendations: Sequence[dict[str, Any]],
    now: datetime | None = None,
    config: PushConfig | None = None,
) -> PushPlan:
    """Decide whether, what and when to push to one user (see the module doc).

    `recommendations` are result dicts (item_id, category, price), best first; `now`
    defaults to the profile's `as_of`, and is at most the wall clock.
    """
    config = config or PushConfig()
    now = now or profile.as_of
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = min(now, datetime.now(UTC))
    user, stage = profile.user_id, profile.lifecycle
    message = MESSAGES.get(stage)
    if message is None:
        return PushPlan(
            user_id=user, lifecycle=stage, send=False, reason="churned: left to win-back e-mail"
        )
    if profile.last_seen is not None and now - profile.last_seen < timedelta(
        hours=config.active_hours
    ):
        reason = f"active in the last {config.active_hours:g} hours"
        return PushPlan(user_id=user, lifecycle=stage, send=False, reason=reason)
    items = _suitable(profile, recommendations, config)
    if len(items) < config.min_items:
        return PushPlan(user_id=user, lifecycle=stage, send=False, reason="no suitable items")
    return PushPlan(
        user_id=user,
        lifecycle=stage,
        send=True,
        reason=f"{stage} shopper",
        message=message,
        send_at=_send_time(profile, now, config),
        items=items,
    )
