"""The learned re-ranker: labels from search -> click events, candidate features with known
values, and a LightGBM lambdarank model that learns a planted signal and round-trips."""

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.evaluation.metrics import graded_ndcg
from shelfwise.search.documents import attribute_text, item_documents
from shelfwise.search.features import FeatureBuilder
from shelfwise.search.ltr import LTRConfig, LTRReranker, PersonalisedReranker, search_labels
from shelfwise.search.semantic import DenseIndex
from shelfwise.types import Results

T0 = pd.Timestamp("2026-10-01 12:00:00")


def ev(event_id, user, kind, item=None, query=None, session=None, seconds=0):
    return {
        "event_id": event_id,
        "user_id": user,
        "item_id": item,
        "type": kind,
        "query": query,
        "session_id": session,
        "timestamp": T0 + pd.Timedelta(seconds=seconds),
    }


def test_search_labels_known_answer():
    events = pd.DataFrame(
        [
            ev("e1", "U1", "search", query="red dress", session="S1", seconds=0),
            ev("e2", "U1", "click", "A", session="S1", seconds=10),
            ev("e3", "U1", "view", "A", session="S1", seconds=11),
            ev("e4", "U1", "add_to_cart", "A", session="S1", seconds=30),
            ev("e5", "U1", "click", "B", session="S1", seconds=40),
            ev("e6", "U1", "purchase", "A", session="S1", seconds=100),
            ev("e7", "U1", "click", "C", session="S1", seconds=31 * 60),  # too late
            ev("e8", "U2", "click", "D", session="S2", seconds=0),  # before any search
            ev("e9", "U2", "search", query="shoes", session="S2", seconds=5),
            ev("e10", "U2", "click", "E", session="S2", seconds=60),
            ev("e11", "U2", "search", query="boots", session="S2", seconds=120),
            ev("e12", "U2", "click", "F", session="S2", seconds=180),
            ev("e13", "U3", "search", query="hat", seconds=0),  # no session: by shopper
            ev("e14", "U3", "click", "G", seconds=60),
            ev("e15", "U4", "search", query="  ", session="S4", seconds=0),  # empty query
            ev("e16", "U4", "click", "H", session="S4", seconds=10),
            ev("e17", "U5", "click", "A", session="S5", seconds=10),  # other session
        ]
    )
    labels = search_labels(events.sample(frac=1.0, random_state=1), window_minutes=30)
    got = {(r.search_id, r.item_id): r.grade for r in labels.itertuples()}
    assert got == {
        ("e1", "A"): 3,
        ("e1", "B"): 1,
        ("e9", "E"): 1,
        ("e11", "F"): 1,
        ("e13", "G"): 1,
    }
    row = labels[labels["search_id"] == "e1"].iloc[0]
    assert (row["user_id"], row["query"], row["timestamp"]) == ("U1", "red dress", T0)
    # a shorter window drops the late purchase's credit but keeps the click and cart
    short = search_labels(events, window_minutes=1)
    assert {(r.search_id, r.item_id): r.grade for r in short.itertuples()}[("e1", "A")] == 2


def test_search_labels_errors_and_empty():
    with pytest.raises(DataError, match="query"):
        search_labels(pd.DataFrame({"event_id": [], "type": []}))
    events = pd.DataFrame([ev("e1", "U1", "click", "A", session="S1")])
    assert search_labels(events).empty
    with pytest.raises(ConfigError):
        search_labels(events, window_minutes=0)


ITEMS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Red Summer Dress", "Red Shoes", "Blue Summer Dress", "Green Hat"],
        "brand": ["Xeno", "Yola", "Xeno", ""],
        "category": ["Fashion > Dresses", "Fashion > Shoes", "Fashion > Dresses", "Home > Hats"],
        "description": ["A light dress.", "Shoes in red.", "A blue dress.", "A hat."],
        "price": [40.0, 80.0, 10.0, 20.0],
        "attributes": ['{"colour": "red", "rating_count": 3}', "{}", "{}", None],
    }
)
HISTORY = pd.DataFrame(
    {
        "user_id": ["U1", "U1", "U2", "U2"],
        "item_id": ["a", "b", "a", "zzz"],  # an unknown item is ignored
        "type": ["purchase", "view", "click", "click"],
    }
)


@pytest.fixture(scope="module")
def builder():
    return FeatureBuilder(ITEMS, history=HISTORY, item_features={"stars": np.arange(4.0)})


def column(builder, rows, name):
    return rows[:, builder.names.index(name)]


def test_documents_and_attributes():
    # the string values are the words; numbers are features, keys are not searched
    assert attribute_text('{"colour": "red", "rating_count": 3, "fit_type": "slim"}') == (
        "red slim"
    )
    assert attribute_text(None) == "" and attribute_text("plain words") == "plain words"
    docs = item_documents(ITEMS)
    assert docs["attributes"] == ["red", "", "", ""]
    assert docs["title"][3] == "Green Hat"


def test_features_known_values(builder):
    rows = builder.features("red dress", np.array([0, 1, 2, 3]), "U1")
    assert rows.shape == (4, len(builder.names)) and rows.dtype == np.float32
    np.testing.assert_allclose(column(builder, rows, "title_coverage"), [1.0, 0.5, 0.5, 0.0])
    bm25 = column(builder, rows, "bm25")
    assert bm25[0] > bm25[1] > 0 and bm25[0] > bm25[2] > 0 and bm25[3] == 0
    # title BM25 alone: "red" and "dress" each in 2 of 4 items (any field), idf ln 2;
    # title length 3 against an average of 2.5: 2 ln 2 / (1 + 1.2 (0.25 + 0.75 * 3 / 2.5))
    title = column(builder, rows, "bm25_title")
    assert title[0] == pytest.approx(2 * np.log(2) / (1 + 1.2 * 1.15), rel=1e-5)
    assert title[3] == 0.0
    # history: U1 purchase a (5) + view b (1) -> 6; U2 click a (1)
    np.testing.assert_allclose(
        column(builder, rows, "log_popularity"), np.log1p([6.0, 1.0, 0.0, 0.0]), rtol=1e-6
    )
    np.testing.assert_allclose(column(builder, rows, "popularity_in_category"), [1, 1, 0, 0])
    np.testing.assert_allclose(column(builder, rows, "log_purchases"), np.log1p([1, 0, 0, 0]))
    share = [5 / 6, 1 / 6, 5 / 6, 0]
    np.testing.assert_allclose(column(builder, rows, "user_category_share"), share)
    np.testing.assert_allclose(column(builder, rows, "user_top_share"), [1, 1, 1, 0])
    np.testing.assert_allclose(column(builder, rows, "user_brand_share"), share)
    np.testing.assert_allclose(
        column(builder, rows, "user_item_affinity"), np.log1p([5, 1, 0, 0]), rtol=1e-6
    )
    np.testing.assert_allclose(column(builder, rows, "user_log_events"), np.log1p(2.0))
    # dresses: 40 and 10 around a median of 20 (log): a at +log 2, c at -log 2
    np.testing.assert_allclose(
        column(builder, rows, "price_vs_category"), [np.log(2), 0, -np.log(2), 0], atol=1e-6
    )
    # U1's price band: weighted mean of a (+log 2, weight 5) and b (0, weight 1)
    band = 5 * np.log(2) / 6
    np.testing.assert_allclose(
        column(builder, rows, "user_price_gap"),
        [abs(np.log(2) - band), band, abs(-np.log(2) - band), band],
        rtol=1e-5,
    )
    np.testing.assert_allclose(column(builder, rows, "item_stars"), [0, 1, 2, 3])
    np.testing.assert_allclose(column(builder, rows, "log_rank"), np.log1p([0, 1, 2, 3]))
    # top-10 of this order: 2 dresses, 1 shoe, 1 hat
    np.testing.assert_allclose(
        column(builder, rows, "category_share_top10"), [0.5, 0.25, 0.5, 0.25]
    )
    # no dense index: semantic columns are zero
    assert not column(builder, rows, "dense_sim").any()


def test_anonymous_and_unknown_shoppers_get_zero_personal_features(builder):
    personal = [n for n in builder.names if n.startswith("user_")]
    for user in (None, "nobody"):
        rows = builder.features("dress", np.array([0, 2]), user)
        assert not rows[:, [builder.names.index(n) for n in personal]].any()


def test_feature_errors(builder):
    with pytest.raises(DataError, match="candidate ids"):
        builder.features("dress", np.array([7]))
    with pytest.raises(DataError, match="item feature"):
        FeatureBuilder(ITEMS, item_features={"x": np.zeros(3)})
    with pytest.raises(DataError, match="unknown search fields"):
        FeatureBuilder(ITEMS, fields={"colour": 1.0})


def planted(rng, n_queries, n_cands=20):
    """Features where column 0 decides the grade; columns 1-2 are noise."""
    x = rng.random((n_queries * n_cands, 3)).astype(np.float32)
    y = np.where(x[:, 0] > 0.9, 2, np.where(x[:, 0] > 0.7, 1, 0))
    return x, y, np.full(n_queries, n_cands)


def test_lambdarank_learns_planted_signal_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x, y, sizes = planted(rng, 150)
    model = LTRReranker(LTRConfig(n_estimators=60, min_data_in_leaf=10)).fit(
        x, y, sizes, ["signal", "noise1", "noise2"]
    )
    xt, yt, _ = planted(rng, 50)
    scores = model.predict(xt)
    ranked, judged, random_ranked = [], [], []
    for q in range(50):
        rows = slice(q * 20, (q + 1) * 20)
        judged.append({i: int(g) for i, g in enumerate(yt[rows])})
        ranked.append(np.argsort(-scores[rows], kind="stable"))
        random_ranked.append(rng.permutation(20))
    learned = np.nanmean(graded_ndcg(ranked, judged, 10))
    assert learned > 0.95
    assert learned > np.nanmean(graded_ndcg(random_ranked, judged, 10)) + 0.3
    importance = model.feature_importance()
    assert next(iter(importance)) == "signal"

    model.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"ltr.model.txt", "ltr.json"}
    assert json.loads((tmp_path / "ltr.json").read_text())["feature_names"][0] == "signal"
    loaded = LTRReranker.load(tmp_path)
    np.testing.assert_allclose(loaded.predict(xt), scores, rtol=1e-6)


def test_rerank_with_builder(builder):
    # train on the builder's own rows: grade follows the title-coverage feature
    names = builder.names
    rows = np.vstack([builder.features(q, np.arange(4), "U1") for q in ["red dress"] * 30])
    grades = (column(builder, rows, "title_coverage") * 2).astype(int)
    model = LTRReranker(LTRConfig(n_estimators=20, min_data_in_leaf=1)).fit(
        rows, grades, [4] * 30, names
    )
    first_stage = Results(np.array([3, 2, 1, 0]), np.array([4.0, 3.0, 2.0, 1.0], np.float32))
    out = model.rerank(builder, "red dress", first_stage, "U1")
    assert out.ids[0] == 0 and out.ids[-1] == 3
    assert model.rerank(builder, "red dress", first_stage, "U1", k=2).ids.size == 2
    other = FeatureBuilder(ITEMS)  # no item features: different columns
    with pytest.raises(ConfigError, match="retrain"):
        model.rerank(other, "red dress", first_stage)


def test_ltr_errors(tmp_path):
    with pytest.raises(NotFittedError):
        LTRReranker().predict(np.zeros((1, 3)))
    with pytest.raises(NotFittedError):
        LTRReranker().save(tmp_path)
    with pytest.raises(DataError, match="nothing to learn"):
        LTRReranker().fit(np.zeros((4, 2)), np.zeros(4), [2, 2])
    with pytest.raises(DataError, match="group sizes"):
        LTRReranker().fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]), [2, 3])
    with pytest.raises(DataError, match="grades"):
        LTRReranker().fit(np.zeros((2, 2)), np.array([0, 99]), [2])
    with pytest.raises(DataError, match="missing"):
        LTRReranker.load(tmp_path)
    rng = np.random.default_rng(1)
    x, y, sizes = planted(rng, 20)
    model = LTRReranker(LTRConfig(n_estimators=5, min_data_in_leaf=5)).fit(x, y, sizes)
    with pytest.raises(DataError, match="3 feature columns"):
        model.predict(np.zeros((2, 4)))
    with pytest.raises(Exception):  # noqa: B017 - pydantic rejects unknown options
        LTRConfig(trees=5)  # type: ignore[call-arg]


class TrigramEncoder:
    """A fast stand-in for MiniLM (hashed character trigrams, L2-normalised): the service
    wiring is under test here, not the embedding."""

    dim = 384
    max_length = 256
    model_path = Path("trigram-hash")

    def encode(self, texts, batch_size=64, progress=False):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            t = f"  {text.lower()} "
            for j in range(len(t) - 2):
                out[i, zlib.crc32(t[j : j + 3].encode()) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_personalised_reranker_in_the_search_service(tmp_path):
    from shelfwise.data.demo import DemoConfig, generate
    from shelfwise.search.fusion import RRFFusion
    from shelfwise.search.service import SearchService

    store = generate(DemoConfig(n_items=300, n_users=300, days=60))
    items, events = store.items, store.events
    service = SearchService.build(items, events)
    dense = DenseIndex.from_items(service.items, encoder=TrigramEncoder())
    reranker = PersonalisedReranker.train(
        items, events, dense, LTRConfig(n_estimators=30, min_data_in_leaf=5)
    )
    assert reranker.model.feature_names[-1] == "user_price_gap"
    service.dense, service.fusion, service.reranker = dense, RRFFusion(), reranker

    query = items["title"].iloc[0].split(",")[0]
    plain = service.search(query, per_page=40)
    assert plain.query_info["reranked"] and plain.query_info["retrievers"] == ["bm25", "dense"]
    # a shopper who bought only from a brand ranked low for everyone sees it higher
    brands = [it["brand"] for it in plain.items]
    brand = brands[-1]
    rows = np.flatnonzero(service.items["brand"].to_numpy() == brand)[:5]
    fan = service.search(
        query, per_page=40, user="U-x", history=rows, history_weights=np.ones(rows.size)
    )

    def share(res):
        return np.mean([it["brand"] == brand for it in res.items[:10]])

    assert share(fan) > share(plain)

    # live catalogue changes reach the dense index; the service saves and loads every part
    new = service.items.iloc[[0]].copy()
    new["item_id"], new["title"] = "SKU-NEW", "Zebra Striped Unicorn Lamp"
    service.upsert_items(new)
    assert service.search("zebra unicorn lamp", per_page=1).items[0]["item_id"] == "SKU-NEW"
    assert service.dense is dense and len(service.items) - 1 in dense
    service.delete_items(["SKU-NEW"])
    assert len(service.items) - 1 not in dense

    reranker.save(tmp_path / "r")
    again = PersonalisedReranker.load(tmp_path / "r")
    x = np.random.default_rng(0).random((3, len(reranker.model.feature_names)))
    np.testing.assert_allclose(again.model.predict(x), reranker.model.predict(x), rtol=1e-6)
    assert again.item_ids == reranker.item_ids

    # the whole service, components included, round-trips; answers stay the same
    service.save(tmp_path / "service")
    loaded = SearchService.load(tmp_path / "service")
    assert isinstance(loaded.dense, DenseIndex) and isinstance(loaded.fusion, RRFFusion)
    assert isinstance(loaded.reranker, PersonalisedReranker)
    loaded.dense._encoder = TrigramEncoder()  # the stand-in encoder is not persisted
    before = [it["item_id"] for it in service.search(query, per_page=10).items]
    after = [it["item_id"] for it in loaded.search(query, per_page=10).items]
    assert after == before


def test_personalised_reranker_needs_labelled_searches():
    events = pd.DataFrame([ev("e1", "U1", "click", "a", session="S1", seconds=s) for s in (0, 9)])
    with pytest.raises(DataError, match="nothing to learn"):
        PersonalisedReranker.train(ITEMS, events)
    with pytest.raises(ConfigError):
        PersonalisedReranker.train(ITEMS, events, history_fraction=0.0)


# -- the re-ranker's feature state follows the service's catalogue revision ----------------


def _reranker_over(service):
    """A small PersonalisedReranker whose model fits the service's feature columns."""
    from shelfwise.search.ltr import PersonalisedReranker

    names = FeatureBuilder(service.items, index=service.index).names
    x = np.random.default_rng(4).random((80, len(names))).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(int)
    model = LTRReranker(LTRConfig(n_estimators=3, min_data_in_leaf=1)).fit(x, y, [4] * 20, names)
    ids = service.items["item_id"].tolist()
    return PersonalisedReranker(model, ids, np.arange(len(ids), dtype=float), np.zeros(len(ids)))


def _fresh(reranker, service):
    """The feature state built from scratch over the service as it is now."""
    frame = service.items
    pop, buys, attrs = reranker._stats(frame)
    return FeatureBuilder(
        frame, item_features=attrs, popularity=pop, purchases=buys, index=service.index
    )


def test_reranker_features_follow_an_in_place_update():
    from shelfwise.search.service import SearchService

    service = SearchService.build(ITEMS)
    reranker = _reranker_over(service)
    service.reranker = reranker
    builder = reranker.builder_for(service)
    a = 0
    before = builder.features("red dress", np.array([a, 1]))
    assert column(builder, before, "title_coverage")[0] == 1.0
    assert column(builder, before, "log_price")[0] == pytest.approx(np.log(40.0))

    changed = ITEMS.iloc[[a]].assign(title="Green Wool Coat", price=80.0)
    service.upsert_items(changed)
    again = reranker.builder_for(service)
    assert again is builder and reranker.full_builds == 1  # updated, not rebuilt
    after = again.features("red dress", np.array([a, 1]))
    assert column(again, after, "title_coverage")[0] == 0.0  # the old title is gone
    assert column(again, after, "log_price")[0] == pytest.approx(np.log(80.0))
    # the dresses category now holds 80 and 10: the median moved for both
    assert column(again, after, "price_vs_category")[0] == pytest.approx(np.log(80 / np.sqrt(800)))
    coat = again.features("wool coat", np.array([a]))
    assert column(again, coat, "bm25_title")[0] > 0 and column(again, coat, "bm25")[0] > 0
    # exactly what a fresh build over the updated service computes
    for query in ("red dress", "wool coat", "hat"):
        np.testing.assert_allclose(
            again.features(query, np.arange(4)),
            _fresh(reranker, service).features(query, np.arange(4)),
            rtol=1e-6,
        )
    # and the re-ranked search answers with the new title
    res = service.search("wool coat", per_page=5)
    assert res.query_info["reranked"] and res.items[0]["title"] == "Green Wool Coat"


def test_upserting_one_item_does_not_rebuild_the_feature_state():
    from shelfwise.search.service import SearchService

    service = SearchService.build(ITEMS)
    reranker = _reranker_over(service)
    service.reranker = reranker
    builder = reranker.builder_for(service)
    computed = builder.rows_computed
    assert computed == 4
    titles = list(builder._title_terms)
    new = pd.DataFrame(
        {
            "item_id": ["e"],
            "title": ["Yellow Rain Boots"],
            "category": ["Fashion > Shoes"],
            "brand": ["Yola"],
            "price": [60.0],
        }
    )
    service.upsert_items(new)
    service.search("boots")  # the re-ranker catches up inside the search
    assert reranker.builder_for(service) is builder and reranker.full_builds == 1
    assert builder.rows_computed == computed + 1  # the new row only
    assert builder.n_items == 5
    assert all(builder._title_terms[i] is titles[i] for i in range(4))  # untouched rows
    assert service.search("rain boots").items[0]["item_id"] == "e"
    # a deletion is one changed row too; the answers match a fresh build
    service.delete_items(["b"])
    reranker.builder_for(service)
    assert reranker.full_builds == 1 and builder.rows_computed == computed + 2
    np.testing.assert_allclose(
        builder.features("red shoes", np.arange(5)),
        _fresh(reranker, service).features("red shoes", np.arange(5)),
        rtol=1e-6,
    )
    # a service the state was not built for gets a state of its own
    other = SearchService.build(ITEMS)
    reranker.builder_for(other)
    assert reranker.full_builds == 2


def test_feature_builder_update_matches_a_fresh_build():
    items = ITEMS.copy()
    b = FeatureBuilder(items, history=HISTORY, item_features={"stars": np.arange(4.0)})
    # c leaves the dresses for the hats and gets dearer; a new shoe joins
    items.loc[2, ["category", "price", "title"]] = ["Home > Hats", 30.0, "Blue Sun Hat"]
    items = pd.concat(
        [items, ITEMS.iloc[[1]].assign(item_id="f", title="Red Boots", price=120.0)],
        ignore_index=True,
    )
    b.bm25 = FeatureBuilder(items).bm25  # the index is the caller's to update
    b.update(items, np.array([2, 4]), item_features={"stars": np.array([9.0, 7.0])})
    fresh = FeatureBuilder(items, history=HISTORY, item_features={"stars": [0, 1, 9, 3, 7.0]})
    history = (np.array([0, 2]), np.array([5.0, 1.0]))  # what a request carries
    for query in ("red", "hat", "dress"):
        np.testing.assert_allclose(
            b.features(query, np.arange(5), history=history),
            fresh.features(query, np.arange(5), history=history),
        )
    with pytest.raises(DataError, match="shrank"):
        b.update(items.iloc[:3], np.array([0]))


def test_personalised_reranker_learns_from_a_fixed_sample_of_at_most_max_queries(caplog):
    from shelfwise.data.demo import DemoConfig, generate

    store = generate(DemoConfig(n_items=300, n_users=300, days=60))
    config = LTRConfig(n_estimators=10, min_data_in_leaf=5)

    def trained_on(max_queries):
        caplog.clear()
        with caplog.at_level("INFO", logger="shelfwise.search.ltr"):
            reranker = PersonalisedReranker.train(
                store.items, store.events, config=config, max_queries=max_queries
            )
        logged = [r.getMessage() for r in caplog.records if "training lambdarank" in r.message]
        return reranker, int(logged[-1].split(" on ")[1].split()[0])

    _, all_queries = trained_on(None)
    assert all_queries > 40
    first, sampled = trained_on(40)
    again, _ = trained_on(40)
    assert 0 < sampled <= 40 < all_queries
    x = np.random.default_rng(1).random((5, len(first.model.feature_names)))
    np.testing.assert_array_equal(first.model.predict(x), again.model.predict(x))  # fixed
