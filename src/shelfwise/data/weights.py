"""How much one event of each type says about a shopper's taste: the only such table.

Every place that turns events into a number per (user, item) or per item reads
`EVENT_TYPE_WEIGHTS`: the interaction matrix models train on (`InteractionWeights`'
defaults), user profiles (`shelfwise.profiles`), the search re-ranker's popularity and
shopper features (`shelfwise.search.features`) and the search service's popularity
(`SearchConfig.popularity`'s default). A view or a click counts 1, adding to the cart 3, a
purchase 5, a rating 1 and a search 0 (a search names no item, so it says nothing about one).

A rating's 1 is per unit of its value where the value is used (`InteractionWeights.use_value`
scales ratings by their stars, so a 5-star rating weighs like a purchase); the profile and
search features count a rating event once, like a view.

Not the same concept: `shelfwise.search.ltr.GRADES` (click 1 < add_to_cart 2 < purchase 3)
is an ordinal relevance label for the learning-to-rank objective and the graded nDCG of
search, which needs small integers, not a weight that is summed over events.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shelfwise.data.names import EVENT_TYPES

__all__ = ["EVENT_TYPE_WEIGHTS", "weighted_types"]

EVENT_TYPE_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "view": 1.0,
        "click": 1.0,
        "add_to_cart": 3.0,
        "purchase": 5.0,
        "rating": 1.0,
        "search": 0.0,
    }
)
"""`{event type: weight}` for every event type (read-only: copy it to change a value)."""

if tuple(EVENT_TYPE_WEIGHTS) != EVENT_TYPES:  # pragma: no cover - guards a future edit
    raise RuntimeError(
        f"EVENT_TYPE_WEIGHTS must name every event type in order {EVENT_TYPES}, "
        f"got {tuple(EVENT_TYPE_WEIGHTS)}"
    )


def weighted_types() -> dict[str, float]:
    """The types whose weight is above 0 with their weights (a fresh, editable dict)."""
    return {t: w for t, w in EVENT_TYPE_WEIGHTS.items() if w > 0}
