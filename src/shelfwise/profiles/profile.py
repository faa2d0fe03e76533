"""User profiles, folded incrementally from events.

A profile summarises what a shopper does, for personalisation and for planning messages:

- `categories` / `brands`: affinities, the share of the user's exponentially decayed event
  weight (half-life `HALF_LIFE_DAYS`; each event weighs its type's weight in
  `shelfwise.data.weights.EVENT_TYPE_WEIGHTS`, as in `InteractionWeights`) falling on each
  category path / brand, best first;
- `price_band`: the 25th, 50th and 75th percentiles of the prices of the items the user
  looked at or bought (the latest `PRICE_MEMORY`);
- `rfm`: recency (days since the last purchase), frequency (purchases) and monetary value
  (sum of purchase values; the item price times the quantity when the event has no value);
- `active_hours`: the share of events per UTC hour of day, and the peak hours;
- `lifecycle`: prospect (no purchase yet), new (first purchase within `NEW_DAYS`), active,
  loyal (`LOYAL_PURCHASES` or more), at_risk (no purchase for `AT_RISK_DAYS`), churned (no
  activity for `CHURN_DAYS`).

Incremental. `ProfileState.fold(events)` adds events to additive state: decayed sums are
kept at an anchor time and rescaled when a newer event arrives, so folding events one by one
or all at once gives the same profile. `ProfileService` keeps one state per user (LRU) with
the highest event `seq` it has folded; a request folds only the user's events stored since
then. A state is rebuilt from scratch after `FULL_REFRESH_SECONDS`, which also picks up
events that arrived more than a day late. Erasing a user drops the state.

"As of". Recency and lifecycle are measured at the newest event in the store (refreshed at
most once a minute), not the wall clock, so that a store loaded from history (the demo, a
public dataset) gets meaningful stages; never later than the wall clock, though.

Poison already stored. The write paths refuse absurd times, but a store may hold some from
before they did (or written around them): events more than `FUTURE_SLACK` after the wall
clock are ignored, by the service and by `ProfileState.fold` when given `until`, so one
event in the year 9999 neither breaks a profile nor makes every other user look churned.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from shelfwise.data.weights import EVENT_TYPE_WEIGHTS
from shelfwise.store import Store

HALF_LIFE_DAYS = 30.0
PRICE_MEMORY = 500
TOP = 10
NEW_DAYS = 30
AT_RISK_DAYS = 45
CHURN_DAYS = 90
LOYAL_PURCHASES = 5
FULL_REFRESH_SECONDS = 600.0
LATE_WINDOW = timedelta(days=1)
EVENT_LIMIT = 10_000
FUTURE_SLACK = timedelta(hours=1)

Lifecycle = Literal["prospect", "new", "active", "loyal", "at_risk", "churned"]
#: item ids -> (category paths, brands, prices); "" / NaN where unknown.
ItemLookup = Callable[[Sequence[str]], tuple[list[str], list[str], np.ndarray]]


class Affinity(BaseModel):
    """A category or brand and its share of the user's decayed attention."""

    name: str
    share: float = Field(ge=0, le=1)


class PriceBand(BaseModel):
    """Percentiles of the prices the user engaged with (None without priced items)."""

    low: float | None = None
    median: float | None = None
    high: float | None = None


class RFM(BaseModel):
    """Recency (days since the last purchase), frequency (purchases), monetary (sum)."""

    recency_days: float | None = None
    frequency: int = 0
    monetary: float = 0.0


class UserProfile(BaseModel):
    """What a user does, as of the store's newest event."""

    user_id: str
    events: int
    sessions: int
    first_seen: datetime | None
    last_seen: datetime | None
    categories: list[Affinity]
    brands: list[Affinity]
    price_band: PriceBand
    rfm: RFM
    active_hours: list[float] = Field(description="share of events per UTC hour, 0..23")
    peak_hours: list[int]
    lifecycle: Lifecycle
    as_of: datetime


def _naive(seconds: float) -> datetime:
    """Seconds since the epoch as a naive UTC datetime (the stores' convention)."""
    return datetime.fromtimestamp(seconds, tz=UTC).replace(tzinfo=None)


def _decay(days: float) -> float:
    return math.pow(0.5, days / HALF_LIFE_DAYS)


@dataclass
class _Decayed:
    """Exponentially decayed sums per key, held at `anchor` (seconds)."""

    sums: dict[str, float] = field(default_factory=dict)
    anchor: float = -math.inf

    def add(self, key: str, weight: float, at: float) -> None:
        if at > self.anchor:
            if self.sums and math.isfinite(self.anchor):
                factor = _decay((at - self.anchor) / 86_400)
                for k in self.sums:
                    self.sums[k] *= factor
            self.anchor = at
        else:
            weight *= _decay((self.anchor - at) / 86_400)
        self.sums[key] = self.sums.get(key, 0.0) + weight

    def top(self, n: int) -> list[Affinity]:
        total = sum(self.sums.values())
        if total <= 0:
            return []
        best = sorted(self.sums.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [Affinity(name=k, share=round(v / total, 4)) for k, v in best if v > 0]


@dataclass
class ProfileState:
    """Additive state behind one profile; `fold` events in any number of calls."""

    user_id: str
    events: int = 0
    sessions: set[str] = field(default_factory=set)
    first_seen: float = math.inf
    last_seen: float = -math.inf
    categories: _Decayed = field(default_factory=_Decayed)
    brands: _Decayed = field(default_factory=_Decayed)
    prices: deque[float] = field(default_factory=lambda: deque(maxlen=PRICE_MEMORY))
    purchases: int = 0
    monetary: float = 0.0
    first_purchase: float = math.inf
    last_purchase: float = -math.inf
    hours: np.ndarray = field(default_factory=lambda: np.zeros(24, dtype=np.int64))
    last_seq: int = -1
    built_at: float = field(default_factory=time.monotonic)

    def fold(self, events: pd.DataFrame, lookup: ItemLookup, until: float | None = None) -> None:
        """Add events (canonical layout; `seq` optional) to the state, oldest first; with
        `until` (seconds since the epoch), events later than that are ignored."""
        if "seq" in events.columns and len(events):
            self.last_seq = max(self.last_seq, int(events["seq"].max()))
        if until is not None and len(events):
            stamps = pd.to_datetime(events["timestamp"]).astype("datetime64[us]").astype("int64")
            events = events[stamps.to_numpy() <= until * 1e6]
        if events.empty:
            return
        ev = events.sort_values(["timestamp", "seq"] if "seq" in events else ["timestamp"])
        seconds = pd.to_datetime(ev["timestamp"]).astype("datetime64[us]").astype("int64") / 1e6
        item_ids = ev["item_id"].where(ev["item_id"].notna(), "").astype(str).tolist()
        cats, brands, prices = lookup(item_ids)
        types = ev["type"].astype(str).tolist()
        values = pd.to_numeric(ev["value"], errors="coerce").to_numpy(dtype=np.float64)
        sessions = ev["session_id"].tolist()
        hours = pd.to_datetime(ev["timestamp"]).dt.hour.to_numpy()
        for i, at in enumerate(seconds.tolist()):
            kind = types[i]
            self.events += 1
            self.first_seen = min(self.first_seen, at)
            self.last_seen = max(self.last_seen, at)
            self.hours[int(hours[i])] += 1
            if isinstance(sessions[i], str):
                self.sessions.add(sessions[i])
            weight = EVENT_TYPE_WEIGHTS.get(kind, 0.0)
            if item_ids[i] and weight > 0:
                if cats[i]:
                    self.categories.add(cats[i], weight, at)
                if brands[i]:
                    self.brands.add(brands[i], weight, at)
                if np.isfinite(prices[i]) and kind in ("view", "click", "add_to_cart", "purchase"):
                    self.prices.append(float(prices[i]))
            if kind == "purchase":
                self.purchases += 1
                value = values[i]
                if not np.isfinite(value):
                    value = prices[i] if np.isfinite(prices[i]) else 0.0
                self.monetary += float(value)
                self.first_purchase = min(self.first_purchase, at)
                self.last_purchase = max(self.last_purchase, at)

    def lifecycle(self, now: float) -> Lifecycle:
        """The stage at time `now` (seconds); see the module doc."""
        day = 86_400.0
        if self.events == 0 or now - self.last_seen > CHURN_DAYS * day:
            return "churned"
        if self.purchases == 0:
            return "prospect"
        if now - self.last_purchase > AT_RISK_DAYS * day:
            return "at_risk"
        if self.purchases >= LOYAL_PURCHASES:
            return "loyal"
        if now - self.first_purchase <= NEW_DAYS * day:
            return "new"
        return "active"

    def profile(self, now: float) -> UserProfile:
        """The profile as of `now` (seconds since the epoch)."""

        def stamp(seconds: float) -> datetime | None:
            return datetime.fromtimestamp(seconds, tz=UTC) if math.isfinite(seconds) else None

        prices = np.asarray(self.prices, dtype=np.float64)
        band = PriceBand()
        if prices.size:
            low, mid, high = np.percentile(prices, [25, 50, 75])
            band = PriceBand(low=round(low, 2), median=round(mid, 2), high=round(high, 2))
        total = int(self.hours.sum())
        shares = (self.hours / total).round(4).tolist() if total else [0.0] * 24
        peaks = [int(h) for h in np.argsort(-self.hours, kind="stable")[:3] if self.hours[h] > 0]
        recency = (now - self.last_purchase) / 86_400 if math.isfinite(self.last_purchase) else None
        return UserProfile(
            user_id=self.user_id,
            events=self.events,
            sessions=len(self.sessions),
            first_seen=stamp(self.first_seen),
            last_seen=stamp(self.last_seen),
            categories=self.categories.top(TOP),
            brands=self.brands.top(TOP),
            price_band=band,
            rfm=RFM(
                recency_days=None if recency is None else round(max(recency, 0.0), 2),
                frequency=self.purchases,
                monetary=round(self.monetary, 2),
            ),
            active_hours=shares,
            peak_hours=peaks,
            lifecycle=self.lifecycle(now),
            as_of=datetime.fromtimestamp(now, tz=UTC),
        )


class ProfileService:
    """Profiles of the store's users, cached and folded incrementally (see the module doc)."""

    def __init__(self, store: Store, lookup: ItemLookup, max_cached: int = 10_000) -> None:
        self.store = store
        self.lookup = lookup
        self.max_cached = max_cached
        self._states: OrderedDict[str, ProfileState] = OrderedDict()
        self._lock = threading.Lock()
        self._clock: tuple[float, float] | None = None  # (checked at, newest event seconds)

    def now(self) -> float:
        """The store's newest event time in seconds, at most the wall clock (the wall clock
        for an empty store)."""
        checked = time.monotonic()
        if self._clock is None or checked - self._clock[0] > 60:
            wall = time.time()
            newest = self.store.events(
                until=_naive(wall + FUTURE_SLACK.total_seconds()), limit=1, newest_first=True
            )
            if newest.empty:
                value = wall
            else:
                stamp = pd.Timestamp(newest["timestamp"].iloc[0])  # naive UTC
                value = min((stamp - pd.Timestamp(0)).total_seconds(), wall)
            self._clock = (checked, value)
        return self._clock[1]

    @staticmethod
    def _until() -> float:
        return time.time() + FUTURE_SLACK.total_seconds()

    def _fresh(self, user_id: str) -> ProfileState:
        state = ProfileState(user_id)
        until = self._until()
        events = self.store.events(
            user_id=user_id, until=_naive(until), limit=EVENT_LIMIT, newest_first=True
        )
        state.fold(events, self.lookup, until)
        return state

    def get(self, user_id: str) -> UserProfile | None:
        """The user's profile, or None when the store has no events of the user."""
        with self._lock:  # one fold at a time, so no event is counted twice
            state = self._states.get(user_id)
            if state is None or time.monotonic() - state.built_at > FULL_REFRESH_SECONDS:
                state = self._fresh(user_id)
            else:
                since = datetime.fromtimestamp(state.last_seen, tz=UTC) - LATE_WINDOW
                recent = self.store.events(user_id=user_id, since=since)
                state.fold(recent[recent["seq"] > state.last_seq], self.lookup, self._until())
            if state.events == 0:
                self._states.pop(user_id, None)
                return None
            self._states[user_id] = state
            self._states.move_to_end(user_id)
            while len(self._states) > self.max_cached:
                self._states.popitem(last=False)
            now = max(self.now(), state.last_seen)
            return state.profile(now)

    def forget(self, user_id: str) -> None:
        """Drop the cached state of a user (after erasure)."""
        with self._lock:
            self._states.pop(user_id, None)

    def clear(self) -> None:
        """Drop every cached state."""
        with self._lock:
            self._states.clear()
