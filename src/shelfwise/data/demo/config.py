"""What to generate (`DemoConfig`), what comes out (`DemoStore`) and the shared clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd

from shelfwise.data.demo.lexicon import LEAVES
from shelfwise.errors import ConfigError

__all__ = ["DAY", "DemoConfig", "DemoStore", "epoch"]

DAY = 86_400
"""Seconds in a day."""


@dataclass(frozen=True)
class DemoConfig:
    """What to generate. Everything, `seed` included, determines the output exactly."""

    seed: int = 42
    n_items: int = 5000
    n_users: int = 2000
    days: int = 90
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    """The last day of activity (its date counts; a naive datetime is read as UTC)."""
    sessions_per_user_day: float = 0.11
    """Mean sessions per user per day; individual users vary heavy-tailed around it."""
    search_rate: float = 0.35
    """Share of sessions that start with a search."""
    cart_rate: float = 0.10
    """Mean share of views that are added to the cart."""
    purchase_rate: float = 0.5
    """Mean share of carted items that are bought."""
    rating_rate: float = 0.35
    """Share of purchases rated later."""
    repeat_rate: float = 0.5
    """Chance that a purchase of a consumable is bought again after its cycle."""

    def __post_init__(self) -> None:
        def fail(message: str) -> None:
            raise ConfigError(f"DemoConfig: {message}")

        for name in ("seed", "n_items", "n_users", "days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                fail(f"{name} must be an integer, got {value!r}")
        if self.seed < 0:
            fail(f"seed must be >= 0, got {self.seed}")
        if self.n_items < len(LEAVES):
            fail(f"n_items must be >= {len(LEAVES)} (one per category), got {self.n_items}")
        if not 1 <= self.n_users <= 10_000_000:
            fail(f"n_users must be between 1 and 10,000,000, got {self.n_users}")
        if self.n_items > 10_000_000:
            fail(f"n_items must be <= 10,000,000, got {self.n_items}")
        if not 1 <= self.days <= 3650:
            fail(f"days must be between 1 and 3650, got {self.days}")
        if not isinstance(self.end, datetime):
            fail(f"end must be a datetime, got {self.end!r}")
        if self.end.tzinfo is None:
            object.__setattr__(self, "end", self.end.replace(tzinfo=UTC))
        if not 0 < self.sessions_per_user_day <= 20:
            fail(f"sessions_per_user_day must be in (0, 20], got {self.sessions_per_user_day}")
        for name in ("search_rate", "cart_rate", "purchase_rate", "rating_rate", "repeat_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                fail(f"{name} must be between 0 and 1, got {value}")

    @property
    def first_day(self) -> date:
        """The first day of activity."""
        return self.last_day - timedelta(days=self.days - 1)

    @property
    def last_day(self) -> date:
        """The last day of activity."""
        return self.end.astimezone(UTC).date()


@dataclass(frozen=True, eq=False)
class DemoStore:
    """A generated store: canonical item, user and event frames plus the hidden tastes.

    `latent` holds numpy arrays: `top_categories`, `leaves`, `brands` (names, the column
    order of the matrices), per user (rows in `users` order) `top_preference` (users x top
    categories), `leaf_preference` (users x leaves), `brand_affinity` (users x brands),
    `favourite_brands` (users x 3 brand indices), `price_preference` (log offset from each
    leaf's median price), `activity` (mean sessions a day) and `preferred_hour`, and per
    item (rows in `items` order) `item_leaf`, `item_brand`, `item_popularity` (share within
    its leaf) and `item_quality`.
    """

    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    config: DemoConfig = field(default_factory=DemoConfig)
    latent: dict[str, np.ndarray] = field(default_factory=dict)


def epoch(day: date) -> int:
    """Unix seconds at midnight UTC of `day`."""
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
