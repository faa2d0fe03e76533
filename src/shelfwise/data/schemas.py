"""The data model: items, users and events, validated with pydantic.

Timestamps are normalised to timezone-aware UTC on the way in; a naive timestamp is read
as UTC. Stores keep them as UTC.

Poison is refused here, naming the field: NUL bytes and lone surrogates in any text (ids,
titles, queries, attribute keys and values), non-finite numbers (`NaN`, `Infinity`, `1e309`
anywhere, attributes included) and ids that are lists, objects or booleans. Records built
with `strict_ids` (the HTTP request models) also refuse numbers as ids: JSON has strings
for them, and `5` is not the id `"5"`. How far from now an event's time may be is not a
property of one record: `TimeBounds.problem` is checked at the write edges (the HTTP API
and `load_records`) with the bounds of the `ingest` settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

# defined in `data.names` (search and the settings read them without these models);
# the names stay importable from here
from shelfwise.data.names import CATEGORY_SEPARATOR as CATEGORY_SEPARATOR
from shelfwise.data.names import EVENT_TYPES as EVENT_TYPES
from shelfwise.data.names import EventType as EventType


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
                    f"{shown(value)} is not a timestamp (use ISO-8601 or unix seconds)"
                ) from exc
    else:
        raise ValueError(f"expected a timestamp, got {type(value).__name__}")
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
DEFAULT_MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_MAX_FUTURE_SECONDS = 300.0


def shown(value: str, limit: int = 60) -> str:
    """A value quoted for an error message, unprintable characters escaped (a lone surrogate
    or a NUL in a message would break the error itself), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def text_problem(value: str) -> str | None:
    """Why a text cannot be stored (a NUL byte, a lone surrogate), or None."""
    found = _BAD_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return f"contains a NUL byte at position {found.start()}"
    return f"contains a lone surrogate (U+{ord(char):04X}) at position {found.start()}"


def poison_problem(value: Any, where: str = "") -> str | None:
    """Why a value (text, number, or nested lists and objects) cannot be stored, or None:
    NUL bytes, lone surrogates, non-finite numbers. `where` prefixes the nested path."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{where}{' ' if where else ''}{problem}" if problem else None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}{' ' if where else ''}is {value!r}; numbers must be finite"
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            problem = text_problem(name) if isinstance(key, str) else None
            if problem:
                return f"{where or 'a'} key {problem}"
            found = poison_problem(item, f"{where}.{name}" if where else name)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = poison_problem(item, f"{where}[{i}]")
            if found:
                return found
    return None


@dataclass(frozen=True)
class TimeBounds:
    """The event times a write accepts: not before `min_timestamp`, and not more than
    `max_future_seconds` after the current time (clock skew of the sender). The values come
    from the `ingest` settings (`Settings.ingest.time_bounds()`)."""

    max_future_seconds: float = DEFAULT_MAX_FUTURE_SECONDS
    min_timestamp: datetime = DEFAULT_MIN_TIMESTAMP

    def problem(self, timestamp: datetime, now: datetime | None = None) -> str | None:
        """Why `timestamp` is refused, or None when it is inside the bounds."""
        at = to_utc(timestamp)
        floor = to_utc(self.min_timestamp)
        if at < floor:
            return (
                f"timestamp {at.isoformat()} is before {floor.isoformat()}, the earliest "
                "accepted (setting ingest.min_timestamp)"
            )
        now = now or utcnow()
        if at > now + timedelta(seconds=self.max_future_seconds):
            return (
                f"timestamp {at.isoformat()} is more than {self.max_future_seconds:g} seconds "
                "in the future (setting ingest.max_future_seconds)"
            )
        return None


def normalise_category(path: str) -> str:
    """`home>kitchen >  knives` -> `home > kitchen > knives` (levels trimmed, empties dropped)."""
    return CATEGORY_SEPARATOR.join(p.strip() for p in path.split(">") if p.strip())


class _Record(BaseModel):
    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, frozen=True, allow_inf_nan=False
    )
    #: Refuse numbers as ids (the HTTP request models); files may carry numeric id columns.
    strict_ids: ClassVar[bool] = False

    @field_validator("*", mode="before")
    @classmethod
    def _no_poison(cls, v: Any) -> Any:
        if isinstance(v, float):  # top-level numbers: allow_inf_nan and the fields' checks
            return v
        problem = poison_problem(v)
        if problem:
            raise ValueError(problem)
        return v


def _identifier(value: Any, name: str, strict: bool = False) -> str:
    if value is None:
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if strict and not isinstance(value, str):
        raise ValueError(f'{name} must be a string, got a number (send "{value}")')
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a string, got {value!r}")
        if value.is_integer():
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
        return _identifier(v, "item_id", cls.strict_ids)

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
        return _identifier(v, "user_id", cls.strict_ids)

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
    request_id: str | None = Field(
        default=None,
        max_length=64,
        description="the request_id of the served list (search, recommendations, ...) that "
        "led to this event: attributes the outcome to that impression",
    )

    @field_validator("user_id", mode="before")
    @classmethod
    def _check_user(cls, v: Any) -> str:
        return _identifier(v, "user_id", cls.strict_ids)

    @field_validator("item_id", "event_id", "session_id", "request_id", mode="before")
    @classmethod
    def _optional_id(cls, v: Any, info: ValidationInfo) -> str | None:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        if isinstance(v, float) and math.isnan(v) and not cls.strict_ids:
            return None  # a missing cell of a file
        return _identifier(v, str(info.field_name), cls.strict_ids)

    @field_validator("type", mode="before")
    @classmethod
    def _check_type(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lower() not in EVENT_TYPES:
            raise ValueError(
                f"{shown(v)} is not an event type; use one of {', '.join(EVENT_TYPES)}"
            )
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
