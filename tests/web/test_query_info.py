"""The storefront says what the search changed: "Showing results for X — search instead for
Y" for corrected words and understood queries, and every detected filter as a chip whose ×
undoes it. Headless Chromium over the demo store (seed 11, 600 products), checked against
the API's own answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import httpx

from .conftest import DemoServer, screenshot
from .test_pages import _wait_ready


def _api(server: DemoServer, **params: Any) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url) as client:
        r = client.get("/v1/search", params={"per_page": 24, **params})
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body


def _params(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def _total(page: Any) -> int:
    return int(page.get_attribute("#total", "data-total"))


def _open(page: Any, query: str) -> None:
    page.goto(f"/search?q={quote(query)}")
    _wait_ready(page)


def test_corrected_words_show_what_was_searched_and_search_instead(
    page: Any, demo_server: DemoServer
) -> None:
    answer = _api(demo_server, q="wireles headphnes")
    assert answer["query_info"]["corrected"] == {"wireles": "wireless", "headphnes": "headphones"}
    _open(page, "wireles headphnes")
    assert page.text_content("#showing-for") == "wireless headphones"
    assert page.text_content("#search-instead") == "wireles headphnes"
    assert _total(page) == answer["total"] > 0
    screenshot(page, "search-showing-results-for")
    page.click("#search-instead")
    _wait_ready(page, 2)
    assert _params(page) == {"q": "wireles headphnes", "understand": "false", "correct": "false"}
    literal = _api(demo_server, q="wireles headphnes", correct="false", understand="false")
    assert literal["query_info"]["corrected"] == {} and literal["total"] == 0
    assert _total(page) == 0
    # nothing matched as typed: the service's suggestions are offered instead
    offered = page.eval_on_selector_all("#did-you-mean a", "els => els.map(e => e.textContent)")
    assert offered == literal["query_info"]["suggestions"][:5] and offered
    # a new query reads words again (the as-typed switches do not stick)
    page.fill("#q", "wireles headphnes")
    page.press("#q", "Enter")
    _wait_ready(page, 3)
    assert _params(page) == {"q": "wireles headphnes"}
    assert page.text_content("#showing-for") == "wireless headphones"


def test_a_detected_price_is_a_chip_that_undoes_the_filter(
    page: Any, demo_server: DemoServer
) -> None:
    answer = _api(demo_server, q="cheap shoes")
    price = answer["query_info"]["price"]
    assert price["applied"] == "filter" and price["preference"] == "cheap"
    _open(page, "cheap shoes")
    assert page.text_content("#showing-for") == "shoes"
    chip = page.locator('#detected [data-detected="price"]')
    assert chip.get_attribute("data-applied") == "filter"
    assert f"up to ${price['max']:.2f}" in chip.inner_text()
    # the category the words name is favoured, and says so
    assert "favouring category: Shoes" in page.inner_text('#detected [data-detected="category"]')
    cards = page.eval_on_selector_all("#results .card", "els => els.map(e => e.dataset.itemId)")
    assert cards == [i["item_id"] for i in answer["items"]]
    assert all(i["price"] <= price["max"] for i in answer["items"])
    screenshot(page, "search-detected-price")
    chip.locator("button").click()
    _wait_ready(page, 2)
    assert _params(page) == {"q": "shoes", "understand": "false"}
    undone = _api(demo_server, q="shoes", understand="false")
    assert _total(page) == undone["total"] > answer["total"]
    assert "price" not in undone["query_info"]
    assert page.locator("#detected").count() == 0


def test_a_brand_alone_is_a_brand_filter_chip(page: Any, demo_server: DemoServer) -> None:
    brand = str(demo_server.items["brand"].value_counts().index[0])
    expected = int((demo_server.items["brand"] == brand).sum())
    _open(page, brand.lower())
    chip = page.locator('#detected [data-detected="brand"]')
    assert chip.get_attribute("data-applied") == "filter"
    assert chip.inner_text().startswith(f"brand: {brand}")
    assert _total(page) == expected
    metas = page.eval_on_selector_all("#results .card .meta", "els => els.map(e => e.textContent)")
    assert metas and all(m.startswith(brand) for m in metas)
    chip.locator("button").click()
    _wait_ready(page, 2)
    assert _params(page) == {"q": brand.lower(), "understand": "false"}
    assert _total(page) == _api(demo_server, q=brand.lower(), understand="false")["total"]


def test_words_no_product_has_are_said_to_be_left_out(page: Any, demo_server: DemoServer) -> None:
    answer = _api(demo_server, q="nike shoes")
    assert answer["query_info"]["dropped"] == ["nike"]
    _open(page, "nike shoes")
    assert page.text_content("#showing-for") == "shoes"
    assert page.get_attribute("#dropped", "data-words") == "nike"
    assert _total(page) == answer["total"] > 0


def test_a_plain_query_shows_no_notice(page: Any, demo_server: DemoServer) -> None:
    answer = _api(demo_server, q="waterproof")
    info = answer["query_info"]
    assert not any(info.get(k) for k in ("corrected", "price", "brand", "category", "dropped"))
    _open(page, "waterproof")
    assert page.locator("#query-info").count() == 0
    assert _total(page) == answer["total"] > 0


def test_words_only_descriptions_hold_are_said(page: Any, demo_server: DemoServer) -> None:
    items = demo_server.items
    mentions = items[items["description"].str.contains(r"\bwine\b", case=False)]
    assert len(mentions) == 1 and not items["title"].str.contains("wine", case=False).any()
    _open(page, "wine")
    assert page.get_attribute("#matched-in", "data-fields") == "description"
    cards = page.eval_on_selector_all("#results .card", "els => els.map(e => e.dataset.itemId)")
    assert cards == list(mentions["item_id"])
