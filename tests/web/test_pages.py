"""The storefront and admin pages, end to end in headless Chromium over a real demo store."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from .conftest import TUNING_TRIALS, DemoServer, screenshot


def _wait_ready(page: Any, at_least: int = 1) -> None:
    """Wait until the page script has finished rendering `at_least` times."""
    page.wait_for_function(
        "n => Number(document.body.dataset.ready || 0) >= n", arg=at_least, timeout=10_000
    )


def _flush(page: Any) -> None:
    """Wait until every event the page posted has been acknowledged."""
    page.evaluate("() => window.shelfwise.flushed()")


def _card_categories(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.category)")


def _top(category: str) -> str:
    return category.split(" > ")[0]


def _events_of(server: DemoServer, user_id: str, wait_for: int = 1) -> Any:
    """The stored events of a visitor (the API acknowledges only after writing them)."""
    events = server.store.events(user_id=user_id)
    deadline = time.monotonic() + 5
    while len(events) < wait_for and time.monotonic() < deadline:
        time.sleep(0.1)
        events = server.store.events(user_id=user_id)
    return events


def test_pages_and_static_files_are_served(demo_server: DemoServer) -> None:
    with httpx.Client(base_url=demo_server.base_url) as c:
        for path in ("/", "/search?q=x", "/product/SKU-000001", "/admin"):
            r = c.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith("text/html")
            assert 'id="shelfwise-config"' in r.text and "<!--shelfwise-config-->" not in r.text
            assert "script-src 'self'" in r.headers["content-security-policy"]
        js = c.get("/static/storefront.js")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
        assert c.get("/static/shelfwise.css").headers["content-type"].startswith("text/css")
        # only shipped files: no traversal, no unknown names
        assert c.get("/static/nope.js").status_code == 404
        assert c.get("/static/..%2Fweb.py").status_code == 404
        assert c.get("/static/%2E%2E/app.py").status_code == 404
        # the pages are not part of the API schema
        paths = c.get("/openapi.json").json()["paths"]
        assert not {"/", "/admin", "/search"} & set(paths)


def _broad_word(items: Any) -> str:
    """The title word found in the most top-level categories (then in the most titles)."""
    tops: dict[str, set[str]] = {}
    counts: Counter[str] = Counter()
    for title, category in zip(items["title"], items["category"], strict=True):
        for word in set(re.findall(r"[a-z]{6,}", title.lower())):
            tops.setdefault(word, set()).add(_top(category))
            counts[word] += 1
    return min(tops, key=lambda w: (-len(tops[w]), -counts[w], w))


def test_search_with_autocomplete_then_facet_filter_narrows(
    page: Any, demo_server: DemoServer
) -> None:
    word = _broad_word(demo_server.items)
    prefix = word[:5]
    page.goto("/")
    _wait_ready(page)
    page.type("#q", prefix, delay=30)
    suggestions = page.locator("#suggest li")
    suggestions.first.wait_for(state="visible")
    # (completions of a shorter prefix may show while typing; wait for the whole prefix's)
    page.wait_for_function(
        """p => [...document.querySelectorAll('#suggest li')].every(
               li => li.innerText.toLowerCase().includes(p))""",
        arg=prefix,
    )
    texts = suggestions.all_inner_texts()
    assert texts and all(prefix in t.lower() for t in texts), texts
    screenshot(page, "autocomplete")
    # keyboard choice of the first suggestion runs that search
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q="))
    _wait_ready(page)
    assert page.input_value("#q") == texts[0].split("\n")[0]
    assert page.locator("#results .card").count() > 0

    # a broad query over several categories; a category facet narrows it
    page.fill("#q", word)
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(rf"q={word}$"))
    _wait_ready(page, 2)
    before = int(page.get_attribute("#total", "data-total") or 0)
    assert before > 0
    facet = page.locator('#facets a[data-facet="category"]')
    assert facet.count() >= 2, "a word used across categories has several category facets"
    value = facet.first.get_attribute("data-value") or ""
    assert " > " not in value, "without a category filter the top level is shown"
    facet.first.click()
    page.wait_for_url(re.compile(r"category="))
    _wait_ready(page, 3)
    after = int(page.get_attribute("#total", "data-total") or 0)
    assert 0 < after < before
    cats = _card_categories(page, "#results .card")
    assert cats and all(c.startswith(value) for c in cats), (value, cats)
    assert page.locator('#facets a.on[data-facet="category"]').count() <= 1
    assert page.locator('.chip[data-filter="category"]').count() == 1
    screenshot(page, "search")

    # the searches were recorded as this visitor's events
    visitor = page.evaluate("() => window.shelfwise.visitorId()")
    _flush(page)
    events = _events_of(demo_server, visitor, wait_for=2)
    assert {texts[0].split("\n")[0], word} <= set(events.loc[events["type"] == "search", "query"])


def test_product_page_shows_similar_items_and_stores_a_view(
    page: Any, demo_server: DemoServer
) -> None:
    counts = demo_server.store.interactions()["item_id"].value_counts()
    item_id = str(counts.index[0])
    page.goto(f"/product/{item_id}")
    _wait_ready(page)
    assert page.get_attribute("#product", "data-item-id") == item_id
    similar = page.locator("#row-similar .card")
    assert similar.count() > 0
    assert item_id not in page.eval_on_selector_all(
        "#row-similar .card", "els => els.map(e => e.dataset.itemId)"
    )
    screenshot(page, "product", full_page=True)

    visitor = page.evaluate("() => window.shelfwise.visitorId()")
    _flush(page)
    events = _events_of(demo_server, visitor)
    views = events[events["type"] == "view"]
    assert views["item_id"].tolist() == [item_id]
    assert views["session_id"].notna().all()

    # a click on a similar item posts a click event and opens that product
    target = similar.first.get_attribute("data-item-id")
    similar.first.click()
    page.wait_for_url(f"**/product/{target}")
    _wait_ready(page)
    _flush(page)
    events = _events_of(demo_server, visitor, wait_for=3)
    assert {"click", "view"} <= set(events["type"])
    assert target in set(events.loc[events["type"] == "click", "item_id"])


def test_browsing_one_category_turns_the_home_page_towards_it(
    page: Any, demo_server: DemoServer
) -> None:
    page.goto("/")
    _wait_ready(page)
    before = [_top(c) for c in _card_categories(page, "#row-personal .card")]
    assert len(before) >= 8
    assert page.locator("#row-because").count() == 0
    # the top category least present in the anonymous (popular) row
    items = demo_server.items
    tops = items["category"].map(_top)
    shares = Counter(before)
    target = min(sorted(set(tops)), key=lambda t: shares.get(t, 0))
    popular = demo_server.store.interactions()["item_id"].value_counts()
    in_target = [
        i for i in popular.index if _top(items.set_index("item_id").at[i, "category"]) == target
    ]
    for item_id in in_target[:4]:
        page.goto(f"/product/{item_id}")
        _wait_ready(page)
        _flush(page)

    page.goto("/")
    _wait_ready(page)
    after = [_top(c) for c in _card_categories(page, "#row-personal .card")]
    share_before = before.count(target) / len(before)
    share_after = after.count(target) / max(1, len(after))
    assert share_after >= 0.5 > share_before, (target, before, after)
    because = page.locator("#row-because .card")
    assert because.count() > 0
    assert page.locator("#row-because h2").inner_text().startswith("Because you viewed")
    screenshot(page, "home")


def test_admin_page_counts_match_the_store(page: Any, demo_server: DemoServer) -> None:
    page.goto("/admin")
    _wait_ready(page)
    counts = demo_server.store.counts()
    for key in ("items", "users", "events"):
        text = page.inner_text(f'#counts .stat[data-key="{key}"] .n')
        assert int(text.replace(",", "")) == counts[key], key
    for event_type, n in demo_server.store.event_type_counts().items():
        text = page.inner_text(f'#event-types .stat[data-key="type-{event_type}"] .n')
        assert int(text.replace(",", "")) == n, event_type
    assert page.locator("#models-table tbody tr.active").count() == 1
    # the bundle's held-out metric is a column, beside the tuned version's metrics
    assert page.locator('#models-table th[data-metric="holdout.ndcg@10"]').count() == 1
    # the tuning run's trials, each a dot, and the best-so-far line
    chart = page.locator(f'#tuning figure.chart[data-trials="{TUNING_TRIALS}"]')
    assert chart.count() == 1
    assert chart.locator("circle.trial").count() == TUNING_TRIALS
    assert chart.locator("path.best").count() == 1
    assert "ndcg@10" in chart.locator("figcaption").inner_text()
    screenshot(page, "admin", full_page=True)


@pytest.mark.parametrize("path", ["/product/NO-SUCH-ITEM"])
def test_unknown_product_says_so(page: Any, path: str) -> None:
    page.goto(path)
    _wait_ready(page)
    assert page.locator("h1").inner_text() == "Product not found"


def test_a_search_without_results_offers_popular_items(page: Any) -> None:
    page.goto("/search?q=qqqzzzxxyy")
    _wait_ready(page)
    assert page.get_attribute("#total", "data-total") == "0"
    assert page.locator("#results .card").count() == 0
    assert page.locator("#row-instead .card").count() > 0
    assert page.locator("#facets [data-facet]").count() == 0
