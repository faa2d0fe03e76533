"""The event types and how a category path is written, in a module of their own so that
search and the settings, which only need these names, do not build the pydantic record
models of `shelfwise.data.schemas` (which re-exports them)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CATEGORY_SEPARATOR", "EVENT_TYPES", "EventType"]

CATEGORY_SEPARATOR = " > "
"""Between the levels of a category path: `"Beauty > Hair Care > Shampoos"`."""


class EventType(StrEnum):
    """What a user did."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    RATING = "rating"
    SEARCH = "search"


EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
