"""`EngineConfig`: how the serving engine answers (the fallback chains' steps and order,
weights, thresholds, model roles). A leaf module (pydantic and the event types only), so
`shelfwise.settings` can hold it as its `engine` section and a bundle manifest can record it
without importing the engine."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shelfwise.data.names import EVENT_TYPES

__all__ = ["EngineConfig", "StepName"]

StepName = Literal[
    "personalised", "session", "trending", "popular", "similar", "content", "bought_together"
]
"""The steps a chain can hold (each step's `source` label)."""


class EngineConfig(BaseModel):
    """How the engine answers: the fallback chains' steps and order, their weights and
    thresholds, and which bundle model plays which role. The defaults are the engine's
    behaviour before it was configurable; a bundle's manifest records its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    recommend_steps: tuple[StepName, ...] = ("personalised", "session", "trending", "popular")
    """The steps of a user's recommendations, in order."""
    similar_steps: tuple[StepName, ...] = ("similar", "content", "trending", "popular")
    """The steps of an item's similar items, in order."""
    bought_together_steps: tuple[StepName, ...] = (
        "bought_together",
        "similar",
        "trending",
        "popular",
    )
    """The steps of the items bought with an item, in order."""
    session_gap_minutes: float = Field(default=30.0, gt=0)
    """Without session ids, a session ends after this many quiet minutes."""
    session_items: int = Field(default=10, ge=1)
    """The latest items of the session that drive the session step."""
    cold_min_similarity: float = Field(default=0.05, ge=0)
    """Items added after training join a personalised list when their content cosine with
    the user's profile reaches this."""
    content_weight: float = Field(default=0.3, ge=0)
    """Weight of content similarity against collaborative similarity in the session step."""
    copurchase_shrink: float = Field(default=2.0, ge=0)
    """Bought together: c_ij / (c_i + shrink), so rarely bought items do not dominate."""
    basket_types: tuple[str, ...] = ("add_to_cart", "purchase")
    """The event types that put an item in a basket (for bought together)."""
    history_limit: int = Field(default=200, ge=1)
    """Events kept per user in the in-memory replica: what a request reads."""
    history_half_life_days: float | None = Field(default=14.0, gt=0)
    """Serving-time recency: a user's event this many days older than their newest counts
    half in the history a request scores (the personalised step, personalised search),
    so a shopper who turns to a new category sees it at once. Two weeks: a
    shopping interest (a project, a season, a gift) lasts days to weeks, so the last
    visits lead while a month-old purchase still counts a quarter. The bundle's models
    are trained without it (their `InteractionWeights` decide); null: weigh the history as
    the models were trained."""
    personalisation_model: str = "itemknn"
    """The bundle model that personalises (a request or a tuned serving model may override)."""
    similarity_model: str | None = "itemknn"
    """The bundle model whose item-to-item scores make the session and similar steps; null:
    none."""
    content_model: str | None = None
    """The bundle model with content vectors (cold-start items, content neighbours); null:
    the first bundle model that has them."""
    popularity_model: str | None = None
    """The bundle model with popularity counts; null: the first bundle model that has them."""
    trending_model: str | None = None
    """The bundle model with trend scores; null: the first bundle model that has them."""

    @field_validator("recommend_steps", "similar_steps", "bought_together_steps")
    @classmethod
    def _distinct(cls, steps: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({s for s in steps if steps.count(s) > 1})
        if repeated:
            raise ValueError(f"step(s) {', '.join(repeated)} appear more than once; list each once")
        return steps

    @field_validator("basket_types")
    @classmethod
    def _event_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in types if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} not event types; use some of {', '.join(EVENT_TYPES)}"
            )
        return types
