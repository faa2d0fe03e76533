"""The one event-type weight table and the places that read it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.schemas import EVENT_TYPES
from shelfwise.data.weights import EVENT_TYPE_WEIGHTS, weighted_types
from shelfwise.profiles.profile import ProfileState
from shelfwise.search.features import EVENT_WEIGHTS
from shelfwise.search.service import SearchConfig, event_popularity


def test_table_values_and_order() -> None:
    assert tuple(EVENT_TYPE_WEIGHTS) == EVENT_TYPES
    assert dict(EVENT_TYPE_WEIGHTS) == {
        "view": 1.0,
        "click": 1.0,
        "add_to_cart": 3.0,
        "purchase": 5.0,
        "rating": 1.0,
        "search": 0.0,
    }
    assert weighted_types() == {
        "view": 1.0,
        "click": 1.0,
        "add_to_cart": 3.0,
        "purchase": 5.0,
        "rating": 1.0,
    }


def test_table_is_read_only_and_weighted_types_is_a_copy() -> None:
    with pytest.raises(TypeError):
        EVENT_TYPE_WEIGHTS["view"] = 2.0  # type: ignore[index]
    copy = weighted_types()
    copy["view"] = 7.0
    assert EVENT_TYPE_WEIGHTS["view"] == 1.0 and weighted_types()["view"] == 1.0


def test_every_reader_uses_the_table() -> None:
    assert InteractionWeights().type_weights == dict(EVENT_TYPE_WEIGHTS)
    assert weighted_types() == EVENT_WEIGHTS
    assert SearchConfig().popularity == weighted_types()


EVENTS = pd.DataFrame(
    {
        "user_id": ["u", "u", "u", "u", "v"],
        "item_id": ["a", "a", "a", "b", "b"],
        "type": ["view", "add_to_cart", "purchase", "rating", "click"],
        "value": [None, 1.0, 20.0, 4.0, None],
        "timestamp": pd.to_datetime(["2024-01-01"] * 5),
    }
)


def test_matrix_weighs_by_the_table() -> None:
    m = build_interactions(EVENTS).to_frame()
    got = {(r.user_id, r.item_id): r.weight for r in m.itertuples()}
    # view 1 + cart 3 + purchase 5 (value ignored); a 4-star rating is 1 per star
    assert got == {("u", "a"): 9.0, ("u", "b"): 4.0, ("v", "b"): 1.0}


def test_search_popularity_weighs_by_the_table() -> None:
    pop = event_popularity(EVENTS, {"a": 0, "b": 1}, 2, SearchConfig().popularity, None)
    # a rating counts once in popularity, whatever its stars
    assert pop.tolist() == [9.0, 2.0]


def test_profile_affinity_weighs_by_the_table() -> None:
    items = {"a": ("Home > Kitchen", "acme", 10.0), "b": ("Garden", "zen", 5.0)}

    def lookup(ids: Sequence[str]) -> tuple[list[str], list[str], np.ndarray]:
        rows = [items[i] for i in ids]
        return [r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows])

    state = ProfileState("u")
    state.fold(EVENTS[EVENTS["user_id"] == "u"].assign(session_id="s", seq=range(4)), lookup)
    profile = state.profile(state.last_seen)
    # one timestamp, so no decay: Home > Kitchen gets 1 + 3 + 5, Garden the rating's 1
    assert [(a.name, a.share) for a in profile.categories] == [
        ("Home > Kitchen", 0.9),
        ("Garden", 0.1),
    ]
