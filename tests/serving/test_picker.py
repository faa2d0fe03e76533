"""The picker: k slots from successive steps, only allowed items, never one twice."""

from __future__ import annotations

import numpy as np

from shelfwise.serving import Catalog, Picker

from .conftest import H2, ITEMS, K1


def _ids(picker: Picker) -> list[str]:
    return [row["item_id"] for row in picker.items]


def test_takes_the_best_positive_allowed_scores_in_order() -> None:
    frame = ITEMS.copy()
    frame.loc[H2, "in_stock"] = False
    cat = Catalog.build(frame)
    blocked = np.zeros(len(cat), dtype=bool)
    blocked[K1] = True
    pick = Picker(cat, k=3, blocked=blocked)
    # K1 blocked, H2 out of stock, B1 not positive, H1 not finite
    pick.take(np.array([9.0, 2.0, 0.0, np.inf, 8.0]), "first")
    assert _ids(pick) == ["K2"] and pick.strategy == "first"
    assert not pick.full
    pick.take(np.array([5.0, 5.0, 0.0, 1.0, 5.0]), "second", positive_only=False)
    # K2 already taken: never repeated; with positive_only off B1 (0) counts
    assert _ids(pick) == ["K2", "H1", "B1"]
    assert [row["source"] for row in pick.items] == ["first", "second", "second"]
    assert pick.full and pick.strategy == "first"
    pick.take(np.array([1.0, 1.0, 1.0, 1.0, 1.0]), "third")  # full: nothing more
    assert len(pick.items) == 3


def test_short_or_empty_scores_and_the_strategy() -> None:
    cat = Catalog.build(ITEMS)
    pick = Picker(cat, k=10, blocked=np.zeros(len(cat), dtype=bool))
    pick.take(np.zeros(0), "empty")  # a step that does not apply
    pick.take(np.array([0.0, 0.0]), "zeros")  # nothing positive: contributes nothing
    assert pick.items == [] and pick.strategy == ""
    pick.take(np.array([0.0, 0.5]), "short")  # shorter than the catalogue: the rest is out
    assert _ids(pick) == ["K2"] and pick.strategy == "short"
    pick.take(np.array([3.0, 0.0, 2.0, 1.0, 1.0, 7.0]), "long")  # longer: cut to the catalogue
    assert _ids(pick) == ["K2", "K1", "B1", "H1", "H2"]
    assert pick.items[1]["score"] == 3.0


def test_ties_keep_catalogue_order() -> None:
    cat = Catalog.build(ITEMS)
    pick = Picker(cat, k=2, blocked=np.zeros(len(cat), dtype=bool))
    pick.take(np.full(len(cat), 1e-9), "popular", positive_only=False)
    assert _ids(pick) == ["K1", "K2"]
