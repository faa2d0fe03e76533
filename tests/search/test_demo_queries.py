"""The shopper queries of issue 17 on the generated demo store (`shelfwise generate-demo`:
seed 42, 5,000 products), through `SearchService`: each returns related products, or
`query_info` says what it changed (words left out, nothing found with suggestions, a price
read as a filter, words found only in descriptions)."""

from __future__ import annotations

from typing import Any

import pytest

from shelfwise.data.demo import DemoConfig, generate
from shelfwise.search.service import SearchService


@pytest.fixture(scope="module")
def demo() -> Any:
    return generate(DemoConfig())  # what `shelfwise generate-demo` writes


@pytest.fixture(scope="module")
def service(demo: Any) -> SearchService:
    return SearchService.build(demo.items, demo.events)


def related(word: str, item: dict[str, Any]) -> bool:
    """The word is in the product's title or category path (case-insensitive)."""
    return word in f"{item['title']} {item['category']}".lower()


def top(service: SearchService, query: str, k: int = 10) -> tuple[list[dict[str, Any]], Any]:
    res = service.search(query, per_page=k, facets=[])
    return res.items, res


def test_a_brand_the_store_does_not_sell_is_left_out_and_said(service: SearchService) -> None:
    items, res = top(service, "nike shoes")
    assert res.query_info["dropped"] == ["nike"] and res.query_info["unknown"] == ["nike"]
    assert items and all("shoes" in i["title"].lower() for i in items)


@pytest.mark.parametrize(
    ("query", "suggested"),
    [("lego", "leg"), ("air fryer", "air dryer"), ("red wine", "wine")],
)
def test_nothing_related_is_nothing_found_with_suggestions(
    service: SearchService, query: str, suggested: str
) -> None:
    """No jeans for "lego" (via "leg"), no hair dryers for "air fryer": an empty answer that
    says so and suggests, never a known word turned into another."""
    items, res = top(service, query)
    assert res.total == 0 and items == []
    assert res.query_info["notice"].startswith(f"no product matches {query!r}")
    assert suggested in res.query_info["suggestions"]
    assert res.query_info["corrected"] == {}


def test_wine_finds_descriptions_that_mention_it_and_says_so(
    service: SearchService, demo: Any
) -> None:
    """No product is wine, but detergents lift wine stains: the description field is
    searched (weight > 0) and the answer says that only descriptions matched."""
    assert service.config.bm25.fields["description"] > 0
    mentions = demo.items[demo.items["description"].str.contains(r"\bwine\b", case=False)]
    assert len(mentions) > 0
    assert not demo.items["title"].str.contains(r"\bwine\b", case=False).any()
    items, res = top(service, "wine", k=100)
    assert {i["item_id"] for i in items} == set(mentions["item_id"])
    assert res.query_info["matched_in"]["title"] == 0
    assert res.query_info["matched_in"]["description"] == len(mentions)
    assert "showing products whose description mentions it" in res.query_info["notice"]


def test_green_tea_ranks_teas_first(service: SearchService) -> None:
    items, res = top(service, "green tea")
    assert all("green tea" in i["title"].lower() for i in items)
    teas = [i["category"].endswith("> Tea") for i in items]
    assert teas[:5] == [True] * 5 and teas == sorted(teas, reverse=True)
    assert res.query_info["category"]["value"] == "Grocery > Coffee & Tea > Tea"
    assert "matched_in" not in res.query_info  # the best matches are named so: no notice


@pytest.mark.parametrize(
    ("query", "bound", "word"),
    [("tv under 500", 500.0, "tv"), ("headphones under 50", 50.0, "headphones")],
)
def test_a_stated_price_bound_holds_for_every_result(
    service: SearchService, query: str, bound: float, word: str
) -> None:
    items, res = top(service, query, k=100)
    price = res.query_info["price"]
    assert price == {"max": bound, "source": query.split(" ", 1)[1], "applied": "filter"}
    assert items and all(i["price"] <= bound for i in items)
    assert all(related(word, i) for i in items)
    unbounded = service.search(word, per_page=1, understand=False)
    assert unbounded.total > res.total  # the bound did cut


@pytest.mark.parametrize("word", ["headphones", "tv", "shoes"])
def test_cheap_is_a_price_filter_that_is_reported(service: SearchService, word: str) -> None:
    items, res = top(service, f"cheap {word}", k=100)
    price = res.query_info["price"]
    assert price["preference"] == "cheap" and price["applied"] == "filter"
    assert res.query_info["removed"] == ["cheap"]
    assert items and all(i["price"] <= price["max"] for i in items)
    assert all(related(word, i) for i in items)
    everything = service.search(word, per_page=100, understand=False)
    assert max(i["price"] for i in everything.items) > price["max"]


def test_correct_false_searches_the_words_as_typed(service: SearchService) -> None:
    """What the storefront's "search instead for" link asks for."""
    fixed = service.search("wireles headphnes", facets=[])
    assert fixed.query_info["corrected"] == {"wireles": "wireless", "headphnes": "headphones"}
    assert fixed.query_info["correct"] is True and fixed.total > 0
    typed = service.search("wireles headphnes", facets=[], correct=False)
    assert typed.query_info["corrected"] == {} and typed.query_info["correct"] is False
    assert typed.total == 0
    assert "wireless headphnes" in typed.query_info["suggestions"]
    # words the catalogue knows are searched the same either way
    plain = service.search("wireless headphones", facets=[], correct=False)
    assert [i["item_id"] for i in plain.items] == [
        i["item_id"] for i in service.search("wireless headphones", facets=[]).items
    ]
