"""Every endpoint's happy path and 4xx paths, over a real DuckDB store (no mocks)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.artifacts import ensure_bundle

from .conftest import AppFactory


def ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


# -- search ------------------------------------------------------------------------------------
def test_search_finds_titles_with_facets_and_filters(client: TestClient) -> None:
    body = client.get("/v1/search", params={"q": "knife", "facets": ["brand"]}).json()
    assert set(ids(body)) == {"K1", "K2"} and body["total"] == 2
    assert body["facets"]["brand"] == [{"value": "Acme", "count": 2}]
    assert all(i["score"] > 0 and i["title"] for i in body["items"])
    cheap = client.get("/v1/search", params={"q": "knife", "price_max": 30}).json()
    assert ids(cheap) == ["K2"]
    by_price = client.get("/v1/search", params={"q": "knife", "sort": "price_asc"}).json()
    assert ids(by_price) == ["K2", "K1"]
    paged = client.get("/v1/search", params={"q": "knife", "per_page": 1, "page": 2}).json()
    assert len(paged["items"]) == 1 and paged["total"] == 2
    headphones = client.get("/v1/search", params={"q": "headphones"}).json()
    assert ids(headphones)[0] == "H1" and "H2" in ids(headphones)
    assert client.get("/v1/search", params={"q": "zzzzqqq"}).json()["items"] == []


def test_search_reads_price_phrases_and_can_be_told_not_to(client: TestClient) -> None:
    body = client.get("/v1/search", params={"q": "knife under 30"}).json()
    assert ids(body) == ["K2"]
    assert body["query_info"]["price"]["max"] == 30.0
    raw = client.get("/v1/search", params={"q": "knife under 30", "understand": "false"}).json()
    assert set(ids(raw)) == {"K1", "K2"} and "price" not in raw["query_info"]


def test_search_validation_names_the_field(client: TestClient) -> None:
    for params, field in (
        ({"q": "knife", "per_page": 0}, "per_page"),
        ({"q": "knife", "sort": "cheapest"}, "sort"),
        ({"q": "x" * 501}, "q"),
        ({"q": "knife", "price_min": -1}, "price_min"),
        ({"q": "knife", "facets": "colour"}, "facets"),
    ):
        r = client.get("/v1/search", params=params)
        assert r.status_code == 422, params
        assert field in r.json()["detail"][0]["loc"]
    r = client.get("/v1/search", params={"q": "knife", "price_min": 50, "price_max": 10})
    assert r.status_code == 400 and "min_price" in r.json()["detail"]


def test_autocomplete(client: TestClient) -> None:
    body = client.get("/v1/autocomplete", params={"q": "kni"}).json()
    assert body["prefix"] == "kni"
    assert any("knife" in s.lower() for s in body["suggestions"])
    assert client.get("/v1/autocomplete", params={"q": ""}).status_code == 422


# -- recommendations ---------------------------------------------------------------------------
def test_recommendations_personalised_then_fallback(client: TestClient) -> None:
    body = client.get("/v1/users/u3/recommendations", params={"k": 2}).json()
    assert body["strategy"] == "personalised" and body["model_version"]
    assert ids(body)[0] == "B1"  # co-bought with K1 and K2
    assert set(ids(body)).isdisjoint({"K1", "K2"})  # already bought
    assert body["items"][0]["source"] == "personalised"
    full = client.get("/v1/users/u3/recommendations", params={"k": 4}).json()
    assert len(full["items"]) == 4 and len(set(ids(full))) == 4  # filled by later steps
    assert full["items"][-1]["source"] != "personalised"


def test_unknown_user_gets_popular_items(client: TestClient) -> None:
    body = client.get("/v1/users/nobody/recommendations", params={"k": 3}).json()
    assert body["strategy"] == "popular" and ids(body)[0] == "K1"
    assert len(body["items"]) == 3


def test_context_drives_session_and_category_steps(client: TestClient) -> None:
    # an unknown user on H1's page: items bought with H1 come from the session step
    body = client.get(
        "/v1/users/anon-1/recommendations", params={"item": "H1", "page_type": "product", "k": 2}
    ).json()
    assert body["strategy"] == "session" and ids(body)[0] == "H2" and "H1" not in ids(body)
    # a category page: what trends in that category, S1 (recently viewed) first
    body = client.get(
        "/v1/users/anon-2/recommendations", params={"category": "Electronics > Audio", "k": 3}
    ).json()
    assert body["strategy"] == "trending" and ids(body)[0] == "S1"
    assert {"S1", "H1", "H2"} == set(ids(body))
    # the exclude list is honoured; unknown context items and categories are no error
    body = client.get(
        "/v1/users/nobody/recommendations",
        params={"exclude": ["K1", "H1"], "item": "nope", "category": "No > Such"},
    ).json()
    assert not {"K1", "H1"} & set(ids(body)) and body["items"]


def test_recommendation_parameters(client: TestClient) -> None:
    popular = client.get("/v1/users/u3/recommendations", params={"model": "popularity"}).json()
    assert popular["strategy"] != "personalised"
    r = client.get("/v1/users/u3/recommendations", params={"model": "nope"})
    assert r.status_code == 400 and "choose one of" in r.json()["detail"]
    for params in ({"k": 0}, {"k": 101}, {"page_type": "moon"}):
        r = client.get("/v1/users/u3/recommendations", params=params)
        assert r.status_code == 422, params


def test_event_changes_the_next_recommendation(client: TestClient, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    assert client.get("/v1/users/newbie/recommendations").json()["strategy"] == "popular"
    r = client.post("/v1/events", json={"user_id": "newbie", "item_id": "H1", "type": "view"})
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0}
    assert len(store.events(user_id="newbie")) == 1  # durable before the answer
    body = client.get("/v1/users/newbie/recommendations", params={"k": 1}).json()
    assert body["strategy"] == "personalised" and ids(body) == ["H2"]


def test_similar_and_bought_together(client: TestClient) -> None:
    body = client.get("/v1/items/H1/similar", params={"k": 3}).json()
    assert body["strategy"] == "similar" and ids(body)[0] == "H2" and "H1" not in ids(body)
    body = client.get("/v1/items/K1/bought-together", params={"k": 2}).json()
    # baskets with K1: u1, u2, u3 add K2, u1, u2 add B1, u6 adds H1
    assert body["strategy"] == "bought_together" and ids(body) == ["K2", "B1"]
    body = client.get("/v1/items/S1/bought-together", params={"k": 2}).json()
    assert body["strategy"] != "bought_together" and len(body["items"]) == 2  # never bought
    assert client.get("/v1/items/nope/similar").status_code == 404
    assert client.get("/v1/items/nope/bought-together").status_code == 404


# -- events ------------------------------------------------------------------------------------
def test_event_batches_duplicates_and_validation(client: TestClient, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    batch = {
        "events": [
            {"event_id": "e1", "user_id": "w", "item_id": "K1", "type": "click"},
            {"event_id": "e2", "user_id": "w", "type": "search", "query": "bread knife"},
            {"event_id": "u1-0", "user_id": "u1", "item_id": "K1", "type": "purchase"},
        ]
    }
    assert client.post("/v1/events", json=batch).json() == {"accepted": 2, "duplicates": 1}
    assert len(store.events(user_id="w")) == 2
    bad = client.post("/v1/events", json={"user_id": "w", "item_id": "K1", "type": "like"})
    assert bad.status_code == 422 and "type" in str(bad.json()["detail"])
    r = client.post("/v1/events", json={"user_id": "w", "type": "view"})  # no item
    assert r.status_code == 422 and "item_id" in str(r.json()["detail"])
    r = client.post("/v1/events", json={"user_id": "w", "item_id": "K1", "type": "view", "x": 1})
    assert r.status_code == 422
    r = client.post("/v1/events", json={"events": []})
    assert r.status_code == 422
    r = client.post(
        "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert len(store.events(user_id="w")) == 2  # nothing half applied


# -- catalogue ---------------------------------------------------------------------------------
def test_new_item_is_searchable_and_recommendable_at_once(client: TestClient) -> None:
    item = {
        "title": "Santoku Knife",
        "brand": "Acme",
        "category": "Home > Kitchen > Knives",
        "price": 55,
        "description": "a japanese chef knife",
    }
    r = client.put("/v1/items/K3", json=item)
    assert r.status_code == 200 and r.json() == {"upserted": 1, "new": 1, "item_ids": ["K3"]}
    assert "K3" in ids(client.get("/v1/search", params={"q": "santoku"}).json())
    assert client.get("/v1/items/K3").json()["title"] == "Santoku Knife"
    similar = client.get("/v1/items/K3/similar", params={"k": 2}).json()
    assert similar["strategy"] == "content" and set(ids(similar)) == {"K1", "K2"}
    # a knife buyer's personalised list picks the new knife by its content
    recs = client.get("/v1/users/u3/recommendations", params={"k": 3}).json()
    assert "K3" in ids(recs)
    # a change is served at once too
    r = client.put("/v1/items/K3", json={**item, "title": "Santoku Knife Deluxe"})
    assert r.json()["new"] == 0
    assert client.get("/v1/items/K3").json()["title"] == "Santoku Knife Deluxe"
    found = client.get("/v1/search", params={"q": "deluxe"}).json()
    assert ids(found) == ["K3"]


def test_batch_upsert_delete_and_validation(client: TestClient) -> None:
    batch = {
        "items": [
            {"item_id": "P1", "title": "Pepper Mill"},
            {"item_id": "P2", "title": "Salt Mill"},
        ]
    }
    assert client.post("/v1/items:batch", json=batch).json()["new"] == 2
    assert set(ids(client.get("/v1/search", params={"q": "mill"}).json())) == {"P1", "P2"}
    assert client.delete("/v1/items/K2").json() == {"deleted": {"items": 1}}
    assert "K2" not in ids(client.get("/v1/search", params={"q": "knife"}).json())
    assert "K2" not in ids(client.get("/v1/users/u7/recommendations", params={"k": 6}).json())
    assert client.get("/v1/items/K2").status_code == 404
    assert client.delete("/v1/items/K2").status_code == 404
    for body, field in (
        ({"title": ""}, "title"),
        ({"title": "x", "price": -3}, "price"),
        ({"title": "x", "currency": "dollars"}, "currency"),
        ({"title": "x", "colour": "red"}, "colour"),
    ):
        r = client.put("/v1/items/Z1", json=body)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == field, body
    assert client.get("/v1/items/Z1").status_code == 404


# -- users -------------------------------------------------------------------------------------
def test_profile(client: TestClient) -> None:
    body = client.get("/v1/users/u1/profile").json()
    assert body["events"] == 3 and body["sessions"] == 1
    assert body["categories"][0]["name"] == "Home > Kitchen > Knives"
    assert body["categories"][0]["share"] == pytest.approx(2 / 3, abs=1e-3)
    assert body["brands"] == [{"name": "Acme", "share": 1.0}]
    assert body["rfm"]["frequency"] == 3 and body["rfm"]["monetary"] == 30.0
    assert body["price_band"]["median"] == 25.0
    assert body["peak_hours"] == [12] and len(body["active_hours"]) == 24
    assert body["lifecycle"] == "new"
    client.post("/v1/events", json={"user_id": "u1", "item_id": "H1", "type": "view"})
    assert client.get("/v1/users/u1/profile").json()["events"] == 4  # folded incrementally
    assert client.get("/v1/users/nobody/profile").status_code == 404


def test_erase_user_everywhere(client: TestClient, shop) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    assert client.get("/v1/users/u1/profile").status_code == 200  # cached now
    before = client.get("/v1/users/u1/recommendations").json()
    assert before["strategy"] == "personalised"
    r = client.delete("/v1/users/u1")
    # the recommendations list served above was logged as an impression, erased too
    assert r.json() == {"deleted": {"events": 3, "users": 1, "impressions": 1}}
    assert store.events(user_id="u1").empty
    assert "u1" not in set(store.users()["user_id"])
    assert client.get("/v1/users/u1/profile").status_code == 404
    after = client.get("/v1/users/u1/recommendations").json()
    assert after["strategy"] == "popular"
    # the co-purchase counts forgot u1's basket: K1 with B1 only in u2's now
    body = client.get("/v1/items/B1/bought-together", params={"k": 3}).json()
    assert body["items"][0]["score"] == pytest.approx(1 / (1 + 2), abs=1e-4)
    erased = client.delete("/v1/users/u1").json()["deleted"]
    assert erased["events"] == 0 and erased["users"] == 0


# -- models and jobs ---------------------------------------------------------------------------
def test_models_jobs_and_activation(client: TestClient, shop) -> None:  # type: ignore[no-untyped-def]
    _, engine = shop
    listing = client.get("/v1/models").json()
    first = listing["active"]
    assert [v["version"] for v in listing["versions"] if v["active"]] == [first]
    assert client.post("/v1/models/v9999/activate").status_code == 404
    job = client.post("/v1/jobs", json={"kind": "train"})
    assert job.status_code == 202 and job.json()["status"] in ("queued", "running")
    job_id = job.json()["job_id"]
    for _ in range(600):
        state = client.get(f"/v1/jobs/{job_id}").json()
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert state["status"] == "succeeded", state
    second = state["result"]["version"]
    assert second != first and engine.model_version == first  # not activated by itself
    assert {v["version"] for v in client.get("/v1/models").json()["versions"]} >= {first, second}
    activated = client.post(f"/v1/models/{second}/activate").json()
    assert activated["active"] and engine.model_version == second
    assert client.get("/v1/users/u3/recommendations").json()["model_version"] == second
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.post("/v1/jobs", json={"kind": "dance"}).status_code == 422
    assert client.get("/v1/admin/summary").json()["jobs"][0]["job_id"] == job_id


# -- ops -------------------------------------------------------------------------------------------
def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["items"] == 6 and ready["events"] == 19
    client.get("/v1/users/someone/recommendations")
    client.get("/v1/items/nope/similar")
    text = client.get("/metrics").text
    assert (
        'shelfwise_http_requests_total{method="GET",route="/v1/users/{user_id}/recommendations",'
        'status="200"} 1.0' in text
    )
    assert 'route="/v1/items/{item_id}/similar",status="404"' in text
    assert "shelfwise_http_request_duration_seconds_bucket" in text
    assert (
        f'shelfwise_model_info{{serving="itemknn",version="{ready["model_version"]}"}} 1.0' in text
    )
    assert "someone" not in text


def test_logs_carry_no_personal_data(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get("/v1/users/alice-secret-42/recommendations")
        client.get("/v1/search", params={"q": "private query text", "user": "alice-secret-42"})
        client.post(
            "/v1/events", json={"user_id": "alice-secret-42", "item_id": "K1", "type": "view"}
        )
        client.delete("/v1/users/alice-secret-42")
    # what the server logged (the test client's own httpx log shows the URLs it sent)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("shelfwise"))
    assert "/v1/users/{user_id}/recommendations" in text  # the route template is logged
    assert "alice-secret-42" not in text and "private query" not in text


def test_openapi_documents_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/search",
        "/v1/autocomplete",
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/items/{item_id}/bought-together",
        "/v1/events",
        "/v1/items/{item_id}",
        "/v1/items:batch",
        "/v1/users/{user_id}/profile",
        "/v1/users/{user_id}",
        "/v1/models",
        "/v1/models/{version}/activate",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    schemes = spec["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)


def test_bundle_reused_until_store_changes(shop, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store, _ = shop
    assert not ensure_bundle(store, tmp_path / "artifacts")[1]
    store.append_events(store.events(limit=1).drop(columns=["seq"]).assign(event_id="new-1"))
    assert ensure_bundle(store, tmp_path / "artifacts")[1]


def test_service_over_an_unstarted_app_is_503(make_client: AppFactory, shop) -> None:  # type: ignore[no-untyped-def]
    from shelfwise.serve import create_app

    _, engine = shop
    plain = TestClient(create_app(engine))  # lifespan not run: no services yet
    assert plain.get("/v1/users/x/recommendations").status_code == 503
    assert plain.get("/readyz").status_code == 503
    assert plain.get("/healthz").status_code == 200


def test_push_plan(client: TestClient) -> None:
    plan = client.get("/v1/users/u1/push-plan").json()
    # u1 bought knives and a board at 12:00 twenty days before the store's newest event
    assert plan["send"] and plan["lifecycle"] == "new" and plan["message"] == "next_purchase"
    assert plan["send_at"].startswith("2026-01-22T12:00")  # next 12:00 at least an hour on
    assert plan["items"] and not {"K1", "K2", "B1"} & set(plan["items"])
    assert client.get("/v1/users/nobody/push-plan").status_code == 404
