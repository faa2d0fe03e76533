"""The storefront sends the request id of the list a product was opened from with the click
and with the events on the product page, so they are attributed to that impression."""

from __future__ import annotations

import time
from typing import Any

from .conftest import DemoServer


def _stored_events(server: DemoServer, user: str, n: int) -> Any:
    deadline = time.monotonic() + 5
    events = server.store.events(user_id=user)
    while len(events) < n and time.monotonic() < deadline:
        time.sleep(0.1)
        events = server.store.events(user_id=user)
    return events


def test_a_click_on_a_similar_item_names_its_list(page: Any, demo_server: DemoServer) -> None:
    item_id = str(demo_server.store.interactions()["item_id"].value_counts().index[0])
    page.goto(f"/product/{item_id}")
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 1")
    card = page.locator("#row-similar .card").first
    target = card.get_attribute("data-item-id")
    card.click()
    page.wait_for_url(f"**/product/{target}")
    page.wait_for_function("() => Number(document.body.dataset.ready || 0) >= 1")
    page.evaluate("() => window.shelfwise.flushed()")
    page.click("#add-to-cart")
    page.evaluate("() => window.shelfwise.flushed()")
    visitor = page.evaluate("() => window.shelfwise.visitorId()")
    events = _stored_events(demo_server, visitor, 4)
    click = events[(events["type"] == "click") & (events["item_id"] == target)]
    assert len(click) == 1
    request_id = click["request_id"].iloc[0]
    assert isinstance(request_id, str) and len(request_id) == 32
    on_target = events[(events["item_id"] == target) & events["type"].isin(["view", "add_to_cart"])]
    assert set(on_target["type"]) == {"view", "add_to_cart"}
    assert set(on_target["request_id"]) == {request_id}
    first_view = events[(events["item_id"] == item_id) & (events["type"] == "view")]
    assert first_view["request_id"].isna().all()  # opened by URL, from no list
    deadline = time.monotonic() + 5
    shown = demo_server.store.impressions()
    while request_id not in set(shown["request_id"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        shown = demo_server.store.impressions()
    row = shown.set_index("request_id").loc[request_id]
    assert row["list_type"] == "similar" and target in row["items"]
