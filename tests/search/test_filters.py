import json

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError
from shelfwise.search.filters import (
    FilterIndex,
    Filters,
    coerce_filters,
    page_slice,
    parse_filters,
)


def catalog():
    rows = [
        ("A1", "Home > Kitchen > Knives", "Acme", 20.0, True, {"colour": "Red", "rating": 4.5}),
        ("A2", "Home > Kitchen > Pans", "acme", 55.0, True, {"colour": "Blue", "rating": 3.0}),
        ("A3", "Home > Garden", "Bolt", 7.5, False, {"colour": "Red"}),
        ("A4", "Toys > Puzzles", "Cora", None, True, {"pieces": 500}),
        ("A5", "Home > Kitchenware", "Bolt", 120.0, True, {"colour": "red"}),
    ]
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "title": [f"item {r[0]}" for r in rows],
            "category": [r[1] for r in rows],
            "brand": [r[2] for r in rows],
            "price": [r[3] for r in rows],
            "in_stock": [r[4] for r in rows],
            "attributes": [json.dumps(r[5]) for r in rows],
            "created_at": pd.to_datetime(
                ["2026-01-01", "2026-03-01", "2026-02-01", "2026-05-01", "2026-04-01"]
            ),
        }
    )


def rows(index, *specs):
    return np.flatnonzero(index.mask(parse_filters(specs))).tolist()


def test_parse_filters_syntax():
    f = parse_filters(
        ["brand=Acme|Bolt", "price=10..50", "in_stock=yes", "colour=Red", "attr.rating=4.."]
    )
    assert f.brand == ("Acme", "Bolt") and (f.min_price, f.max_price) == (10, 50)
    assert f.in_stock is True and f.attributes == {"colour": ("Red",)}
    assert f.attribute_ranges == {"rating": (4.0, None)}
    assert parse_filters(["price=..30"]).min_price is None
    assert parse_filters(["category=Home > Kitchen"]).category == "Home > Kitchen"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("price=50..10", "min_price=50 is greater than max_price=10"),
        ("brand", "not key=value"),
        ("price=cheap", "'cheap' is not a number"),
        ("in_stock=maybe", "not true/false"),
        ("min_price=-5", "min_price must be >= 0"),
        ("attr.rating=5..1", "attr.rating"),
    ],
)
def test_bad_filters_name_the_field(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_filters([spec])


def test_coerce_accepts_models_dicts_and_strings():
    assert coerce_filters(None).empty
    assert coerce_filters({"brand": "Acme"}).brand == ("Acme",)
    assert coerce_filters("brand=Acme").brand == ("Acme",)
    assert coerce_filters({"attributes": {"colour": "Red"}}).attributes == {"colour": ("Red",)}
    with pytest.raises(ConfigError, match="min_price"):
        coerce_filters({"min_price": 9, "max_price": 1})
    with pytest.raises(ConfigError, match="Filter fields"):
        coerce_filters({"colour": "red"})
    with pytest.raises(ConfigError, match="min_price"):
        coerce_filters(Filters(min_price=3, max_price=2))


def test_masks():
    index = FilterIndex.build(catalog())
    assert index.mask(Filters()) is None
    assert rows(index, "category=home > kitchen") == [0, 1]  # subtree, not "Kitchenware"
    assert rows(index, "category=Home") == [0, 1, 2, 4]
    assert rows(index, "brand=ACME") == [0, 1]
    assert rows(index, "brand=Bolt|Cora") == [2, 3, 4]
    assert rows(index, "price=10..60") == [0, 1]
    assert rows(index, "max_price=20") == [0, 2]  # no price never passes a price filter
    assert rows(index, "in_stock=false") == [2]
    assert rows(index, "colour=red") == [0, 2, 4]
    assert rows(index, "colour=red", "brand=bolt", "in_stock=true") == [4]
    assert rows(index, "attr.rating=4..") == [0]
    assert rows(index, "pieces=500") == [3]
    assert rows(index, "material=wood") == []
    assert rows(index, "brand=Nope") == []


def test_facets_count_the_whole_result_set():
    index = FilterIndex.build(catalog())
    f = index.facets(np.array([0, 1, 2, 4]), ["brand", "category", "price", "in_stock", "colour"])
    assert f["brand"] == [
        {"value": "Bolt", "count": 2},
        {"value": "Acme", "count": 1},
        {"value": "acme", "count": 1},
    ]
    cats = {c["value"]: c["count"] for c in f["category"]}
    assert cats == {
        "Home": 4,
        "Home > Kitchen": 2,
        "Home > Garden": 1,
        "Home > Kitchenware": 1,
        "Home > Kitchen > Knives": 1,
        "Home > Kitchen > Pans": 1,
    }
    assert [(p["value"], p["count"]) for p in f["price"]] == [
        ("0-10", 1),
        ("10-25", 1),
        ("50-100", 1),
        ("100-250", 1),
    ]
    assert f["in_stock"] == [{"value": True, "count": 3}, {"value": False, "count": 1}]
    assert f["colour"] == [
        {"value": "Red", "count": 2},
        {"value": "Blue", "count": 1},
        {"value": "red", "count": 1},
    ]
    with pytest.raises(ConfigError, match="unknown facet 'size'; choose from brand"):
        index.facets(np.array([0]), ["size"])


def test_sorting_and_pagination():
    index = FilterIndex.build(catalog())
    rows_ = np.arange(5)
    rel = np.array([1.0, 3.0, 2.0, 5.0, 4.0])
    pop = np.array([0.0, 0.0, 9.0, 1.0, 0.0])
    assert index.order(rows_, rel, "relevance", pop).tolist() == [3, 4, 1, 2, 0]
    assert index.order(rows_, rel, "price_asc", pop).tolist() == [2, 0, 1, 4, 3]
    assert index.order(rows_, rel, "price_desc", pop).tolist() == [4, 1, 0, 2, 3]
    assert index.order(rows_, rel, "popularity", pop).tolist() == [2, 3, 4, 1, 0]
    assert index.order(rows_, rel, "newest", pop).tolist() == [3, 4, 1, 2, 0]
    with pytest.raises(ConfigError, match="choose one of relevance, price_asc"):
        index.order(rows_, rel, "cheapest", pop)
    assert page_slice(45, 3, 20) == slice(40, 45)
    assert page_slice(45, 9, 20) == slice(45, 45)
    with pytest.raises(ConfigError, match="per_page"):
        page_slice(10, 1, 101)
    with pytest.raises(ConfigError, match="page must be"):
        page_slice(10, 0, 10)


def test_rows_can_be_updated_and_appended():
    index = FilterIndex.build(catalog())
    extra = catalog().iloc[[0]].assign(brand="Dune", price=1.0)
    index.set_rows(np.array([5]), extra)
    assert rows(index, "brand=dune") == [5]
    index.set_rows(np.array([0]), extra)
    assert rows(index, "brand=dune") == [0, 5]
    assert rows(index, "price=..1") == [0, 5]
