"""The admin page's Experiments and Search analytics tabs in headless Chromium, over the demo
server: an experiment run through the API shows its variants, comparisons and charts over
time; searches and clicks show up as search analytics."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import DemoServer, screenshot

SPEC = {
    "experiment_id": "web-understand",
    "variants": [{"name": "control"}, {"name": "literal", "understand": False}],
}
NO_RESULTS = "qqqzzzxxv"


def _wait(page: Any, key: str) -> None:
    page.wait_for_function(f"() => Number(document.body.dataset.{key} || 0) >= 1", timeout=15_000)


def test_experiment_and_search_analytics_tabs(page: Any, demo_server: DemoServer) -> None:
    word = str(demo_server.items["title"].iloc[0]).split()[0].lower()
    with httpx.Client(base_url=demo_server.base_url, timeout=30) as api:
        assert api.post("/v1/experiments", json=SPEC).status_code == 201
        try:
            for i in range(16):
                user = f"web-exp-{i}"
                body = api.get("/v1/search", params={"q": word, "user": user}).json()
                if i % 2 == 0 and body["items"]:
                    click = {
                        "user_id": user,
                        "item_id": body["items"][0]["item_id"],
                        "type": "click",
                        "request_id": body["request_id"],
                    }
                    assert api.post("/v1/events", json=click).status_code == 200
            api.get("/v1/search", params={"q": NO_RESULTS, "user": "web-exp-0"})
            results = api.get(f"/v1/experiments/{SPEC['experiment_id']}/results").json()
            page.goto("/admin#experiments")
            _wait(page, "experimentsReady")
            row = page.locator('#experiments-table tr[data-experiment="web-understand"]')
            assert row.count() == 1 and row.get_attribute("data-status") == "running"
            for name, values in results["variants"].items():
                cells = page.locator(f'#variants-table tr[data-variant="{name}"] td')
                assert cells.nth(1).inner_text() == str(values["users"])
            assert sum(v["users"] for v in results["variants"].values()) == 16
            n_comparisons = page.locator("#comparisons-table tbody tr").count()
            assert n_comparisons == len(results["comparisons"]) > 0
            charts = page.locator("#experiment-charts figure.chart")
            assert charts.count() == 5
            conversion = page.locator('#experiment-charts figure[data-metric="ctr"]')
            assert conversion.locator("path.series").count() == 2  # one line per variant
            screenshot(page, "admin-experiments", full_page=True)
        finally:
            api.post(f"/v1/experiments/{SPEC['experiment_id']}/stop")
    page.click('button[data-tab="search-analytics"]')
    _wait(page, "searchanalyticsReady")
    top = page.locator(f'#top-queries tr[data-query="{word}"] td')
    assert int(top.nth(1).inner_text()) >= 16
    assert page.locator(f'#zero-queries tr[data-query="{NO_RESULTS}"]').count() == 1
    assert page.locator('#sa-charts figure[data-chart="ctr-position"] circle.point').count() > 0
    assert page.locator('#sa-summary .stat[data-key="searches"]').count() == 1
    screenshot(page, "admin-search-analytics", full_page=True)
