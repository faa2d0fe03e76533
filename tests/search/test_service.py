import json

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.demo import DemoConfig, generate
from shelfwise.errors import ConfigError, DataError, NotFittedError, UnknownIdError
from shelfwise.search.base import SearchContext
from shelfwise.search.service import SearchConfig, SearchService
from shelfwise.types import Results

ITEMS = [
    # id, title, brand, category, price, in_stock, attributes, created
    (
        "S1",
        "Wireless Over-Ear Headphones",
        "Sonic",
        "Electronics > Audio > Headphones",
        99.0,
        True,
        {"colour": "Black"},
        "2026-01-05",
    ),
    (
        "S2",
        "Wireless Earbuds with Charging Case",
        "Sonic",
        "Electronics > Audio > Earbuds",
        59.0,
        True,
        {"colour": "White"},
        "2026-02-05",
    ),
    (
        "S3",
        "Studio Headphones Wired",
        "Audiox",
        "Electronics > Audio > Headphones",
        149.0,
        False,
        {"colour": "Black"},
        "2026-03-05",
    ),
    (
        "S4",
        "Stainless Steel Electric Kettle 1.7 l",
        "Brewly",
        "Home > Kitchen > Kettles",
        35.0,
        True,
        {"material": "Steel"},
        "2026-01-20",
    ),
    (
        "S5",
        "Glass Kettle with Blue Light",
        "Brewly",
        "Home > Kitchen > Kettles",
        29.0,
        True,
        {"material": "Glass"},
        "2026-04-01",
    ),
    (
        "S6",
        "Burr Coffee Grinder",
        "Brewly",
        "Home > Kitchen > Coffee",
        45.0,
        True,
        {"material": "Steel"},
        "2026-02-11",
    ),
    (
        "S7",
        "Espresso Coffee Machine",
        "Crema",
        "Home > Kitchen > Coffee",
        299.0,
        True,
        {"material": "Steel"},
        "2026-05-01",
    ),
    (
        "S8",
        "65 inch 4K Television",
        "Vista",
        "Electronics > TV",
        799.0,
        True,
        {"screen_size": "65 inch"},
        "2026-03-15",
    ),
    (
        "S9",
        "Leather Sofa Three Seater",
        "Nordhem",
        "Home > Living > Sofas",
        999.0,
        True,
        {"material": "Leather"},
        "2026-01-01",
    ),
    (
        "S10",
        "无线蓝牙耳机 降噪",
        "Sonic",
        "Electronics > Audio > Earbuds",
        79.0,
        True,
        {"colour": "Black"},
        "2026-05-10",
    ),
]


def items_frame(rows=ITEMS):
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "brand": [r[2] for r in rows],
            "category": [r[3] for r in rows],
            "price": [r[4] for r in rows],
            "in_stock": [r[5] for r in rows],
            "attributes": [json.dumps(r[6]) for r in rows],
            "created_at": pd.to_datetime([r[7] for r in rows]),
            "description": ["" for _ in rows],
        }
    )


def events_frame():
    rows = []
    ts = pd.Timestamp("2026-06-01")
    for item, n in (("S2", 6), ("S1", 3), ("S5", 2)):
        rows += [("U1", item, "purchase", None, ts)] * n
    for q, n in (("wireless headphones", 5), ("kettle", 3), ("wireles headphnes", 9)):
        rows += [("U2", None, "search", q, ts)] * n
    return pd.DataFrame(rows, columns=["user_id", "item_id", "type", "query", "timestamp"])


@pytest.fixture(scope="module")
def service():
    cfg = SearchConfig(synonyms=["sofa, couch", "tv, television"])
    return SearchService.build(items_frame(), events_frame(), cfg)


def ids(res):
    return [i["item_id"] for i in res.items]


def test_search_ranks_and_reports(service):
    res = service.search("wireless headphones")
    assert ids(res)[0] == "S1"
    assert res.total == 1  # two words: both must match
    assert res.items[0]["title"] == "Wireless Over-Ear Headphones"
    assert set(res.items[0]) >= {"item_id", "title", "brand", "category", "price", "score"}


def test_typos_prefix_and_synonyms(service):
    res = service.search("wireles headphnes")
    assert ids(res) == ["S1"]
    assert res.query_info["corrected"] == {"wireles": "wireless", "headphnes": "headphones"}
    res = service.search("espresso mach")
    assert ids(res) == ["S7"] and res.query_info["expanded"]["mach"] == ["machine"]
    assert ids(service.search("couch")) == ["S9"]
    assert ids(service.search("tv")) == ["S8"]
    assert service.search("couch").query_info["synonyms"] == {"couch": ["sofa"]}
    # numbers and units: "65 inch" finds "65 inch", "65inch" too
    assert ids(service.search("65inch tv")) == ["S8"]
    assert ids(service.search("耳机")) == ["S10"]


def test_matching_last_drops_words_from_the_end(service):
    last = SearchService.build(items_frame(), None, SearchConfig(matching="last"))
    res = last.search("kettle leather")
    assert set(ids(res)) == {"S4", "S5"} and res.query_info["dropped"] == ["leather"]
    # the default (should) says nothing matches both and suggests each word alone
    res = service.search("kettle leather")
    assert res.total == 0 and res.query_info["suggestions"] == ["leather", "kettle"]
    # a word the catalog does not know at all is reported and ignored
    res = service.search("kettle qzxv")
    assert res.total == 2 and res.query_info["unknown"] == ["qzxv"]
    strict = SearchService.build(items_frame(), None, SearchConfig(matching="all"))
    assert strict.search("kettle leather").total == 0
    loose = SearchService.build(items_frame(), None, SearchConfig(matching="any"))
    assert loose.search("kettle coffee").total == 4


def test_filters_facets_sorting_pages(service):
    res = service.search("", filters=["category=Home > Kitchen"], sort="price_asc", per_page=2)
    assert res.total == 4 and ids(res) == ["S5", "S4"]
    assert res.query_info["mode"] == "browse"
    page2 = service.search(
        "", filters=["category=Home > Kitchen"], sort="price_asc", per_page=2, page=2
    )
    assert ids(page2) == ["S6", "S7"]
    assert {f["value"]: f["count"] for f in res.facets["brand"]} == {"Brewly": 3, "Crema": 1}
    res = service.search("headphones", filters={"in_stock": True})
    assert ids(res) == ["S1"]
    res = service.search("wireless", filters=["brand=sonic", "price=..80"], sort="price_desc")
    assert ids(res) == ["S2"]
    res = service.search("steel", facets=["material", "in_stock"])
    assert res.facets["material"] == [{"value": "Steel", "count": 3}]
    assert service.search("", sort="newest", per_page=1).items[0]["item_id"] == "S10"
    # browse by popularity: events made S2 the most popular
    assert ids(service.search("", sort="popularity", per_page=2)) == ["S2", "S1"]
    assert service.search("", per_page=1).items[0]["item_id"] == "S2"


def test_bad_requests_raise_config_errors(service):
    with pytest.raises(ConfigError, match="unknown sort 'cheap'; choose one of relevance"):
        service.search("kettle", sort="cheap")
    with pytest.raises(ConfigError, match="min_price=50 is greater than max_price=10"):
        service.search("kettle", filters=["price=50..10"])
    with pytest.raises(ConfigError, match="per_page"):
        service.search("kettle", per_page=0)
    with pytest.raises(ConfigError, match="unknown facet"):
        service.search("kettle", facets=["weight"])
    with pytest.raises(ConfigError, match="k must be"):
        service.autocomplete("ke", k=0)
    with pytest.raises(NotFittedError):
        SearchService().search("x")
    with pytest.raises(DataError, match="item_id"):
        SearchService.build(pd.DataFrame({"title": ["x"]}))


def test_autocomplete_uses_titles_categories_and_known_past_queries(service):
    got = [s.text for s in service.autocomplete("wirel", k=5)]
    assert got[0] == "wireless headphones"
    assert "wireles headphnes" not in got  # a past query with typos is never suggested
    assert "Home > Kitchen > Kettles" in [s.text for s in service.autocomplete("kett", k=5)]
    service.record_queries(["glass kettle"] * 3)
    assert service.autocomplete("glass k", k=1)[0].text == "glass kettle"


def test_upsert_and_delete_are_live_and_all_or_nothing():
    svc = SearchService.build(items_frame(), events_frame())
    new = items_frame(
        [
            (
                "S11",
                "Cordless Gooseneck Kettle",
                "Brewly",
                "Home > Kitchen > Kettles",
                55.0,
                True,
                {"material": "Steel"},
                "2026-06-01",
            )
        ]
    )
    assert svc.upsert_items(new) == {"inserted": 1, "updated": 0}
    assert ids(svc.search("gooseneck")) == ["S11"]
    assert "S11" in ids(svc.search("kettle"))
    assert svc.search("", filters=["brand=Brewly"]).total == 4
    changed = items_frame([ITEMS[4]]).assign(
        title="Glass Teapot", category="Home > Kitchen > Teapots", price=19.0
    )
    assert svc.upsert_items(changed) == {"inserted": 0, "updated": 1}
    assert "S5" not in ids(svc.search("kettle"))
    assert ids(svc.search("teapot")) == ["S5"]
    assert svc.search("teapot").items[0]["price"] == 19.0
    with pytest.raises(UnknownIdError, match="NOPE"):
        svc.delete_items(["S4", "NOPE"])
    assert "S4" in ids(svc.search("kettle"))  # nothing was applied
    assert svc.autocomplete("stainless", k=3)[0].text.startswith("Stainless Steel")
    assert svc.delete_items(["S4"]) == 1
    assert "S4" not in ids(svc.search("kettle"))
    assert svc.autocomplete("stainless", k=3) == []  # its title is no longer suggested
    assert [s.text for s in svc.autocomplete("glass t", k=3)] == ["Glass Teapot"]
    assert svc.autocomplete("glass kettl", k=3) == []  # the renamed item's old title
    assert svc.search("", filters=["category=Home > Kitchen > Kettles"]).total == 1  # S11
    # a deleted item can come back under its id
    assert svc.upsert_items(items_frame([ITEMS[3]])) == {"inserted": 1, "updated": 0}
    assert "S4" in ids(svc.search("kettle"))
    with pytest.raises(DataError, match="repeats"):
        svc.upsert_items(pd.concat([new, new]))


def test_save_and_load_round_trip(tmp_path, service):
    svc = SearchService.build(items_frame(), events_frame(), SearchConfig(synonyms=["sofa, couch"]))
    svc.upsert_items(
        items_frame(
            [
                (
                    "S12",
                    "Velvet Couch",
                    "Nordhem",
                    "Home > Living > Sofas",
                    500.0,
                    True,
                    {},
                    "2026-06-02",
                )
            ]
        )
    )
    svc.delete_items(["S3"])
    svc.save(tmp_path / "search")
    loaded = SearchService.load(tmp_path / "search")
    for q in ["couch", "headphones", "kettle", "wireles", ""]:
        a, b = svc.search(q), loaded.search(q)
        assert ids(a) == ids(b) and a.total == b.total and a.facets == b.facets
    assert [s.text for s in loaded.autocomplete("wire", 3)] == [
        s.text for s in svc.autocomplete("wire", 3)
    ]
    loaded.upsert_items(
        items_frame(
            [("S13", "Oak Coffee Table", "Nordhem", "Home > Living", 150.0, True, {}, "2026-06-03")]
        )
    )
    assert ids(loaded.search("oak")) == ["S13"]
    with pytest.raises(NotFittedError):
        SearchService.load(tmp_path / "nothing")


class FixedDense:
    """A stand-in dense retriever: always proposes rows 8 then 0 (sofa, headphones)."""

    def retrieve(self, query, k, mask=None):
        rows = np.array([8, 0])
        if mask is not None:
            rows = rows[mask[rows]]
        return Results(rows[:k], np.linspace(0.9, 0.8, rows.size)[:k].astype(np.float32))


class ReverseReranker:
    def __init__(self):
        self.seen: SearchContext | None = None

    def rerank(self, candidates, context):
        self.seen = context
        return Results(candidates.ids[::-1], np.arange(candidates.ids.size, dtype=np.float32))


def test_dense_fusion_and_reranker_hooks():
    svc = SearchService.build(items_frame(), events_frame())
    svc.dense = FixedDense()
    res = svc.search("kettle")
    assert set(ids(res)) == {"S4", "S5", "S9", "S1"}
    assert res.query_info["retrievers"] == ["bm25", "dense"]
    assert "S9" not in ids(svc.search("kettle", filters=["category=Home > Kitchen"]))
    svc.dense = None
    reranker = ReverseReranker()
    svc.reranker = reranker
    plain = SearchService.build(items_frame(), events_frame())
    before = ids(plain.search("coffee"))
    after = svc.search("coffee", user="U1", history=np.array([5]))
    assert ids(after) == before[::-1] and after.query_info["reranked"]
    assert reranker.seen is not None and reranker.seen.user == "U1"
    assert reranker.seen.history.tolist() == [5] and reranker.seen.service is svc
    svc.search("coffee", history_ids=["S6", "GONE", "S1"], history_weights=[2.0, 1.0, 1.0])
    assert reranker.seen.history.tolist() == [5, 0]
    assert reranker.seen.history_weights.tolist() == [2.0, 1.0]
    # other sorts are not re-ranked
    assert ids(svc.search("coffee", sort="price_asc")) == ["S6", "S7"]


def test_field_scores_for_learning_to_rank(service):
    scores = service.field_scores("sonic headphones", np.array([0, 2, 3]))
    assert set(scores) == {"title", "brand", "category", "description", "attributes"}
    assert scores["brand"][0] > 0 and scores["brand"][1] == 0
    assert scores["title"][1] > 0 and scores["title"][2] == 0


def test_demo_store_searches_find_the_clicked_item():
    store = generate(DemoConfig(seed=3, n_items=400, n_users=300, days=20))
    svc = SearchService.build(store.items, store.events)
    ev = store.events.sort_values(["session_id", "timestamp"])
    searches = ev[ev["type"] == "search"]
    clicks = ev[ev["type"] == "click"].groupby("session_id")["item_id"].first()
    hits = total = 0
    for sid, query in zip(searches["session_id"], searches["query"], strict=True):
        if sid not in clicks.index:
            continue
        total += 1
        hits += clicks[sid] in ids(svc.search(query, per_page=50))
    assert total > 50
    assert hits / total > 0.5


def test_rows_without_title_are_not_served():
    frame = items_frame()
    frame.loc[2, "title"] = None
    svc = SearchService.build(frame)
    assert "S3" not in ids(svc.search("studio"))
    assert svc.search("", per_page=100).total == 9
    assert svc.n_items == 9


def test_concurrent_searches_and_updates():
    import threading

    svc = SearchService.build(items_frame(), events_frame())
    errors: list[BaseException] = []

    def reader():
        try:
            for _ in range(60):
                res = svc.search("kettle", per_page=5)
                assert res.total >= 2
                svc.autocomplete("ket", 3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer():
        try:
            for i in range(30):
                svc.upsert_items(
                    items_frame(
                        [
                            (
                                f"N{i}",
                                f"Copper Kettle {i}",
                                "Brewly",
                                "Home > Kitchen > Kettles",
                                40.0,
                                True,
                                {},
                                "2026-06-01",
                            )
                        ]
                    )
                )
                if i % 3 == 0:
                    svc.delete_items([f"N{i}"])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert svc.search("copper").total == 20


def test_revision_and_changes_since():
    svc = SearchService.build(items_frame())
    assert svc.revision == 0 and svc.changes_since(0).size == 0
    svc.upsert_items(items_frame(ITEMS[:1]).assign(title="Wireless Headphones Pro"))
    new = items_frame(ITEMS[:1]).assign(item_id="N1", title="Walnut Desk")
    svc.upsert_items(new)
    svc.delete_items(["S4"])
    assert svc.revision == 3
    assert svc.changes_since(0).tolist() == [0, 3, 10]  # S1 in place, S4, N1 appended
    assert svc.changes_since(2).tolist() == [3]
    assert svc.changes_since(3).size == 0
    assert svc.changes_since(7) is None  # a revision the service never had


def test_sync_catalog_follows_a_catalogue_row_for_row():
    svc = SearchService.build(items_frame())
    catalogue = items_frame().copy()
    catalogue.loc[0, "title"] = "Wireless Over-Ear Headphones Deluxe"  # changed in place
    catalogue.loc[4, "price"] = 19.0
    extra = items_frame(ITEMS[:2]).assign(item_id=["N1", "N2"], title=["Walnut Desk", None])
    catalogue = pd.concat([catalogue, extra], ignore_index=True)  # N2: an untitled row
    alive = np.ones(len(catalogue), dtype=bool)
    alive[7] = False  # S8 deleted from the catalogue
    assert svc.sync_catalog(catalogue, alive) == {"upserted": 4, "deleted": 1}
    # row i of the catalogue is row i of the service; dead rows are never returned
    assert svc.items["item_id"].tolist() == catalogue["item_id"].tolist()
    assert ids(svc.search("deluxe")) == ["S1"] and ids(svc.search("walnut desk")) == ["N1"]
    assert svc.search("walnut desk").rows.tolist() == [10]
    assert "S8" not in ids(svc.search("television")) and not svc.alive[11]
    assert svc.search("kettle", filters=["price=..20"]).total == 1
    # nothing changed: nothing done, no new revision
    revision = svc.revision
    assert svc.sync_catalog(catalogue, alive) == {"upserted": 0, "deleted": 0}
    assert svc.revision == revision
    # following one change looks at that row (and rows appended) only
    catalogue.loc[5, "title"] = "Conical Burr Coffee Grinder"
    assert svc.sync_catalog(catalogue, alive, rows=np.array([5])) == {"upserted": 1, "deleted": 0}
    assert ids(svc.search("conical")) == ["S6"]
    with pytest.raises(DataError, match="other items"):
        svc.sync_catalog(catalogue.iloc[::-1].reset_index(drop=True))
    with pytest.raises(DataError, match="build the search service"):
        svc.sync_catalog(catalogue.iloc[:3])


def test_history_rows_of_dead_items_are_skipped(service):
    rows, weights = service._live_history(np.array([0, 99, -1, 2]), np.array([1.0, 2, 3, 4]))
    assert rows.tolist() == [0, 2] and weights.tolist() == [1.0, 4.0]
