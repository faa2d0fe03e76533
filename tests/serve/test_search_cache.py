"""The cache of non-personalised search answers (`serve.search.SearchCache`): a hit gives
the uncached answer, every catalogue change empties it, personalised searches bypass it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from shelfwise.serve.routers.search import search_cache
from shelfwise.serve.search import SearchCache

from .conftest import AppFactory

QUERIES = [
    {"q": "knife"},
    {"q": "chef knife", "k": "5"},
    {"q": "headphones", "facets": "brand"},
    {"q": "wireles headphnes"},  # typo corrections
    {"q": "knife", "brand": "Acme", "sort": "price_asc"},
    {"q": "headphones", "correct": "false"},
    {"q": ""},  # browse by popularity
    {"q": "board", "page": "2", "per_page": "1"},
]


def _stable(body: dict[str, Any]) -> dict[str, Any]:
    """The answer without what differs per request (request id, timing, the cache flag)."""
    info = {k: v for k, v in body["query_info"].items() if k not in ("took_ms", "cached")}
    return {**{k: v for k, v in body.items() if k != "request_id"}, "query_info": info}


def _cache(client: TestClient) -> SearchCache:
    return search_cache(client.app.state.services)  # type: ignore[attr-defined]


def _ids(body: dict[str, Any]) -> list[str]:
    return [i["item_id"] for i in body["items"]]


def test_cached_answers_are_the_uncached_ones(make_client: AppFactory) -> None:
    cached, uncached = make_client(), make_client(search_cache=0)
    for params in QUERIES:
        want = uncached.get("/v1/search", params=params)
        first = cached.get("/v1/search", params=params)
        again = cached.get("/v1/search", params=params)
        assert want.status_code == first.status_code == again.status_code == 200, params
        assert _stable(first.json()) == _stable(want.json()) == _stable(again.json()), params
        assert again.json()["query_info"]["cached"] is True
        assert "cached" not in first.json()["query_info"]
        assert again.json()["request_id"] != first.json()["request_id"]  # logged per request
    # another page size is another answer (a miss), the same one a hit
    assert _ids(cached.get("/v1/search", params={"q": "chef knife"}).json())[0] == "K1"
    assert _ids(cached.get("/v1/search", params={"q": "knife"}).json())[:2] == ["K1", "K2"]
    stats = _cache(cached).stats()
    assert stats["misses"] == len(QUERIES) + 1
    assert stats["hits"] == len(QUERIES) + 1
    assert _cache(uncached).stats()["entries"] == 0  # size 0: nothing kept


def test_an_item_upsert_or_delete_empties_the_cache(make_client: AppFactory) -> None:
    client = make_client()
    assert _ids(client.get("/v1/search", params={"q": "damascus"}).json()) == []
    assert _ids(client.get("/v1/search", params={"q": "knife"}).json())[:2] == ["K1", "K2"]
    assert client.get("/v1/search", params={"q": "knife"}).json()["query_info"]["cached"]
    put = client.put("/v1/items/K1", json={"title": "Chef Knife Damascus", "price": 90})
    assert put.status_code == 200
    body = client.get("/v1/search", params={"q": "damascus"}).json()
    assert _ids(body) == ["K1"] and body["items"][0]["price"] == 90.0
    assert "cached" not in body["query_info"]
    knife = client.get("/v1/search", params={"q": "knife"}).json()
    prices = {i["item_id"]: i["price"] for i in knife["items"]}
    assert "cached" not in knife["query_info"] and prices["K1"] == 90.0
    assert _cache(client).stats()["invalidations"] == 1
    client.put("/v1/items/N1", json={"title": "Damascus Paring Knife"})
    assert set(_ids(client.get("/v1/search", params={"q": "damascus"}).json())) == {"K1", "N1"}
    assert client.delete("/v1/items/N1").status_code == 200
    assert _ids(client.get("/v1/search", params={"q": "damascus"}).json()) == ["K1"]


def test_personalised_searches_are_not_cached(make_client: AppFactory) -> None:
    client = make_client()
    for _ in range(2):
        body = client.get("/v1/search", params={"q": "knife", "user": "u4"}).json()
        assert "cached" not in body["query_info"]
    assert _cache(client).stats() | {"hit_rate": 0} == {
        "hits": 0,
        "misses": 0,
        "hit_rate": 0,
        "entries": 0,
        "size": 4096,
        "invalidations": 0,
    }


def test_the_counters_are_at_metrics(make_client: AppFactory) -> None:
    client = make_client()
    for _ in range(3):
        assert client.get("/v1/search", params={"q": "knife"}).status_code == 200
    text = client.get("/metrics").text
    assert "shelfwise_search_cache_hits_total 2.0" in text
    assert "shelfwise_search_cache_misses_total 1.0" in text
    assert "shelfwise_search_cache_entries 1.0" in text
