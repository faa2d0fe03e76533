"""The data model: items, users and events, validated with pydantic.

Timestamps are normalised to timezone-aware UTC on the way in; a naive timestamp is read
as UTC. Stores keep them as UTC.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CATEGORY_SEPARATOR = " > "


class EventType(StrEnum):
    """What a user did."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    SEARCH = "search"


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def _from_unix(seconds: float) -> datetime:
    """Unix seconds as aware UTC; ValueError (not OverflowError/OSError) when out of range."""
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"timestamp {seconds:g} is out of range") from exc


def to_utc(value: Any) -> datetime:
    """Parse a datetime, an ISO-8601 string or unix seconds into aware UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool):
        raise ValueError("expected a timestamp, got a boolean")
    elif isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError as exc:
            raise ValueError("timestamp is out of range") from exc
        if not math.isfinite(seconds):
            raise ValueError("timestamp must be finite")
        dt = _from_unix(seconds)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("timestamp is empty")
        try:
            seconds = float(text)
        except ValueError:
            seconds = None
        if seconds is not None and math.isfinite(seconds):
            dt = _from_unix(seconds)
        else:
            try:
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(
                    f"'{value}' is not a timestamp (use ISO-8601 or unix seconds)"
                ) from exc
    else:
        raise ValueError(f"expected a timestamp, got {type(value).__name__}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def normalise_category(path: str) -> str:
    """`home>kitchen >  knives` -> `home > kitchen > knives` (levels trimmed, empties dropped)."""
    return CATEGORY_SEPARATOR.join(p.strip() for p in path.split(">") if p.strip())


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


def _identifier(value: Any, name: str) -> str:
    if value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise ValueError(f"{name} must not be empty")
    if len(text) > 256:
        raise ValueError(f"{name} is longer than 256 characters")
    return text


class Item(_Record):
    """A product in the catalog."""

    item_id: str
    title: str = Field(min_length=1, max_length=1000)
    description: str = Field(default="", max_length=100_000)
    category: str = Field(default="", max_length=1000, description="path, 'A > B > C'")
    brand: str = Field(default="", max_length=256)
    price: float | None = Field(default=None, ge=0)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    in_stock: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("item_id", mode="before")
    @classmethod
    def _check_id(cls, v: Any) -> str:
        return _identifier(v, "item_id")

    @field_validator("category", mode="after")
    @classmethod
    def _check_category(cls, v: str) -> str:
        return normalise_category(v)

    @field_validator("price", mode="after")
    @classmethod
    def _check_price(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("price must be a finite number")
        return v

    @field_validator("created_at", mode="before")
    @classmethod
    def _check_created(cls, v: Any) -> datetime:
        return to_utc(v) if v is not None else utcnow()

    @property
    def category_levels(self) -> list[str]:
        """The category path split into its levels."""
        return self.category.split(CATEGORY_SEPARATOR) if self.category else []


class User(_Record):
    """A shopper."""

    user_id: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("user_id", mode="before")
    @classmethod
    def _check_id(cls, v: Any) -> str:
        return _identifier(v, "user_id")

    @field_validator("created_at", mode="before")
    @classmethod
    def _check_created(cls, v: Any) -> datetime:
        return to_utc(v) if v is not None else utcnow()


class Event(_Record):
    """Something a user did, optionally with an item, a value and a query."""

    event_id: str | None = Field(default=None, max_length=256)
    user_id: str
    item_id: str | None = None
    type: Literal["view", "click", "add_to_cart", "purchase", "rating", "search"]
    value: float | None = None
    query: str | None = Field(default=None, max_length=1000)
    session_id: str | None = Field(default=None, max_length=256)
    timestamp: datetime = Field(default_factory=utcnow)

    @field_validator("user_id", mode="before")
    @classmethod
    def _check_user(cls, v: Any) -> str:
        return _identifier(v, "user_id")

    @field_validator("item_id", "event_id", "session_id", mode="before")
    @classmethod
    def _optional_id(cls, v: Any) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, float) and math.isnan(v):
            return None
        return _identifier(v, "id")

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() not in EVENT_TYPES:
            raise ValueError(f"'{v}' is not an event type; use one of {', '.join(EVENT_TYPES)}")
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("value", mode="after")
    @classmethod
    def _check_value(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    @field_validator("timestamp", mode="before")
    @classmethod
    def _check_ts(cls, v: Any) -> datetime:
        return to_utc(v) if v is not None else utcnow()

    @model_validator(mode="after")
    def _check_consistency(self) -> Event:
        if self.type == "search":
            if not self.query:
                raise ValueError("a search event needs a non-empty 'query'")
        elif self.item_id is None:
            raise ValueError(f"a {self.type} event needs an 'item_id'")
        if self.type == "rating" and self.value is None:
            raise ValueError("a rating event needs a 'value'")
        return self


RecordKind = Literal["items", "users", "events"]
MODELS: dict[str, type[Item] | type[User] | type[Event]] = {
    "items": Item,
    "users": User,
    "events": Event,
}
FIELDS: dict[str, tuple[str, ...]] = {k: tuple(m.model_fields) for k, m in MODELS.items()}
