"""The live catalogue: immutable snapshots, a revision per change, category masks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import UnknownIdError
from shelfwise.serving import Catalog

from .conftest import B1, H1, H2, ITEMS, K1, K2


def test_build_marks_alive_and_servable() -> None:
    frame = ITEMS.copy()
    frame.loc[H2, "in_stock"] = False  # out of stock: has a page, not recommendable
    frame.loc[B1, "title"] = None  # a placeholder row (events but no catalogue row)
    cat = Catalog.build(frame, alive=np.array([True, False, True, True, True]))
    assert cat.alive.tolist() == [True, False, False, True, True]
    assert cat.servable.tolist() == [True, False, False, True, False]
    assert cat.revision == 0 and len(cat) == 5
    assert cat.describe(K1, 0.1234567, "popular") == {
        "item_id": "K1",
        "title": "Chef Knife",
        "category": "Home > Kitchen > Knives",
        "brand": "Acme",
        "price": 40.0,
        "score": 0.123457,
        "source": "popular",
    }
    assert cat.describe(H2, 1.0, "x")["brand"] is None


def test_every_change_bumps_the_revision_and_leaves_the_old_snapshot_alone() -> None:
    first = Catalog.build(ITEMS, revision=7)
    added = pd.DataFrame({"item_id": ["K3", "K1"], "title": ["Santoku Knife", "Chef's Knife"]})
    second, new = first.with_items(added)
    assert second.revision == 8
    assert new["item_id"].tolist() == ["K3"]  # K1 was known: changed, not new
    assert second.item_id.tolist() == ["K1", "K2", "B1", "H1", "H2", "K3"]
    assert second.title[K1] == "Chef's Knife" and first.title[K1] == "Chef Knife"
    alive = second.alive.copy()
    alive[K2] = False
    third = second.with_alive(alive)
    assert third.revision == 9 and not third.alive[K2] and second.alive[K2]
    fourth, _ = third.with_items(ITEMS.iloc[[K2]])  # upserting a deleted item restores it
    assert fourth.revision == 10 and fourth.alive[K2]


def test_lookups() -> None:
    cat = Catalog.build(ITEMS, alive=np.array([True, True, True, True, False]))
    assert cat.index("H1") == H1 and cat.index("nope") is None
    assert cat.index("H2") == H2  # deleted items keep their index
    assert cat.known_item("K2") == K2
    with pytest.raises(UnknownIdError, match="H2"):
        cat.known_item("H2")
    with pytest.raises(UnknownIdError, match="nope"):
        cat.known_item("nope")


def test_in_category_takes_the_path_and_everything_below_it() -> None:
    cat = Catalog.build(ITEMS)
    assert cat.in_category("Home").tolist() == [True, True, True, False, False]
    assert cat.in_category("Home > Kitchen > Knives").tolist() == [True, True, False, False, False]
    assert cat.in_category("Electronics > Audio").tolist() == [False, False, False, True, True]
    assert not cat.in_category("Home > Kit").any()  # a path prefix, not a string prefix
    assert not cat.in_category("Garden").any()
    mask = cat.in_category("Home")
    assert cat.in_category("Home") is mask  # cached
    with pytest.raises(ValueError):
        mask[0] = False  # read-only: every reader shares it


def test_differing_finds_new_and_changed_rows() -> None:
    cat = Catalog.build(ITEMS)
    stored = ITEMS.iloc[[K1, K2]].copy()
    stored.loc[K2, "price"] = 20.0
    stored = pd.concat([stored, pd.DataFrame({"item_id": ["N1"], "title": ["New"]})])
    assert cat.differing(stored)["item_id"].tolist() == ["K2", "N1"]
    assert cat.differing(ITEMS)["item_id"].tolist() == []
