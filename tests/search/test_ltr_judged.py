"""Learning to rank from graded judgements: a synthetic judged folder whose best ranking
needs a feature the first stage lacks, query-level cross-validation, the bundle's
re-ranker and `shelfwise evaluate-search --ltr-cv`."""

import json

import numpy as np
import pandas as pd
import pytest

from shelfwise.cli import main
from shelfwise.errors import ConfigError, DataError
from shelfwise.search.base import SearchContext
from shelfwise.search.build import build_search_service
from shelfwise.search.features import FeatureBuilder
from shelfwise.search.judged import (
    cross_validate_judged,
    evaluate_judged_search,
    load_judged_folder,
    train_judged_reranker,
)
from shelfwise.search.ltr import LTRConfig, PersonalisedReranker, service_candidates
from shelfwise.search.service import SearchService
from shelfwise.search.understanding import Understood
from shelfwise.types import Results

PAIRS = [
    ("velvet", "matte"), ("argan", "serum"), ("rose", "toner"), ("charcoal", "mask"),
    ("vanilla", "musk"), ("coconut", "scrub"), ("lavender", "balm"), ("jasmine", "mist"),
    ("cedar", "soap"), ("honey", "gloss"), ("almond", "butter"), ("ginger", "tonic"),
]  # fmt: skip
FILLER = "with gentle daily formula for every skin type"
SMALL = LTRConfig(n_estimators=60, min_data_in_leaf=5, num_leaves=7, learning_rate=0.1)


def _catalogue() -> tuple[pd.DataFrame, str, str]:
    """For each query "a b": three products with the phrase "a b" in a long title (grade
    3) and three short titles "b a" (grade 0), which BM25 ranks first (shorter fields);
    one short unjudged product per query too."""
    rows, queries, qrels = [], ["query_id\tquery\ttype"], ["query_id\tdoc_id\tgrade"]
    for q, (a, b) in enumerate(PAIRS):
        qid = f"q{q:02d}"
        queries.append(f"{qid}\t{a} {b}\t{'head' if q % 2 else 'attribute'}")
        for j in range(3):
            rows.append((f"R{q}-{j}", f"{a} {b} {FILLER} no{j}", 3))
            rows.append((f"I{q}-{j}", f"{b} {a} no{j}", 0))
        rows.append((f"U{q}", f"{b} {a} extra", None))
        qrels += [f"{qid}\t{i}\t{g}" for i, _, g in rows[-7:] if g is not None]
    items = pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "brand": "",
            "category": "Beauty > Skin",
        }
    )
    return items, "\n".join(queries) + "\n", "\n".join(qrels) + "\n"


@pytest.fixture()
def folder(tmp_path):
    items, queries, qrels = _catalogue()
    (tmp_path / "queries.tsv").write_text(queries)
    (tmp_path / "qrels.tsv").write_text(qrels)
    return tmp_path, items


def test_the_first_stage_ranks_the_phrase_products_last(folder):
    path, items = folder
    ds = load_judged_folder(path, corpus=items)
    service = SearchService.build(items)
    served = service_candidates(service, ds.queries["query"].tolist())
    for got, judged in zip(served, ds.judgements, strict=True):
        # every candidate both words match, in the service's order: shorter titles first
        assert got.rows.size == 7 and got.context is not None
        assert [judged.get(int(r), 0) for r in got.top[:4]] == [0, 0, 0, 0]  # U too
        assert got.top.tolist() == got.rows[:10].tolist()


def test_cross_validated_reranker_learns_the_phrase_feature(folder):
    path, items = folder
    ds = load_judged_folder(path, corpus=items)
    report = evaluate_judged_search(ds, ["default"], ltr_cv=3, ltr_seeds=(0, 1), ltr_config=SMALL)
    default, ltr = report["results"]["default"], report["results"]["ltr"]
    # default: the three grade-3 products at ranks 5-7 (after 3 grade-0 and 1 unjudged)
    dcg = sum(7 / np.log2(r + 1) for r in (5, 6, 7))
    ideal = sum(7 / np.log2(r + 1) for r in (1, 2, 3))
    assert default["ndcg@10"] == pytest.approx(dcg / ideal)
    assert default["mrr@10"] == pytest.approx(1 / 5)
    # out of fold, every query is ranked by a model that never saw it: phrase first
    assert ltr["ndcg@10"] == pytest.approx(1.0)
    assert ltr["mrr@10"] == pytest.approx(1.0)
    cv = report["ltr_cv"]
    assert cv["folds"] == 3 and cv["seeds"] == [0, 1] and cv["same_baseline"]
    assert cv["spread"]["ndcg@10"]["std"] == pytest.approx(0.0)
    assert cv["judged_candidates"] == pytest.approx(6 / 7, abs=1e-4)
    top = max(cv["feature_gain_share"], key=cv["feature_gain_share"].get)
    assert top in {"phrase_share", "title_coverage"} or top.startswith("bm25")
    assert set(report["by_type"]["ltr"]) == {"head", "attribute"}
    # per query, the mean over seeds; their mean is the reported one
    per_query = cv["per_query"]["ndcg@10"]
    assert len(per_query) == len(ds.queries)
    assert np.mean(per_query) == pytest.approx(ltr["ndcg@10"])


def test_folds_keep_every_copy_of_a_query_text_together(folder):
    """A text asked twice (different ids, different case) sits in one fold, so neither
    copy is scored by a model trained on the other."""
    path, items = folder
    ds = load_judged_folder(path, corpus=items)
    twins = ds.queries.assign(qid=ds.queries["qid"] + "x", query=ds.queries["query"].str.upper())
    twins["group"] = twins["query"].str.lower().str.strip()
    ds2 = type(ds)(
        name="twins",
        items=ds.items,
        queries=pd.concat([ds.queries, twins]).reset_index(drop=True),
        judgements=[*ds.judgements, *ds.judgements],
        relevant_grade=2,
    )
    from shelfwise.search.relevance import _fold_of_groups

    for seed in (0, 1, 2):
        fold = _fold_of_groups(ds2.queries["group"].tolist(), 3, seed)
        assert (fold[: len(PAIRS)] == fold[len(PAIRS) :]).all()
        assert sorted(np.bincount(fold).tolist()) == [8, 8, 8]
    cv = cross_validate_judged(ds2, SearchService.build(items), folds=3, config=SMALL)
    assert len(cv["runs"][0]) == 2 * len(PAIRS)


def test_unjudged_drop_learns_from_judged_candidates_only(folder):
    path, items = folder
    ds = load_judged_folder(path, corpus=items)
    service = SearchService.build(items)
    reranker = PersonalisedReranker.for_service(service, config=SMALL)
    served = service_candidates(service, ds.queries["query"].tolist())
    feats, grades, judged = reranker.judged_rows(served, ds.judgements)
    assert [int(j.sum()) for j in judged] == [6] * len(PAIRS)
    assert all(g.sum() == 9 for g in grades)  # the three grade-3 products
    reranker.fit(feats, grades, judged, unjudged="drop")
    report = evaluate_judged_search(ds, ["default"], ltr_cv=3, ltr_config=SMALL, unjudged="drop")
    assert report["ltr_cv"]["unjudged"] == "drop"
    assert report["results"]["ltr"]["ndcg@10"] == pytest.approx(1.0)


def test_trained_on_all_the_service_serves_it_and_it_round_trips(folder, tmp_path):
    path, items = folder
    service = build_search_service(items, None, rerank=False, judgements=path, ltr_config=SMALL)
    assert isinstance(service.reranker, PersonalisedReranker)
    res = service.search("velvet matte", per_page=3)
    assert sorted(i["item_id"] for i in res.items) == ["R0-0", "R0-1", "R0-2"]
    assert res.query_info["reranked"] is True
    service.save(tmp_path / "svc")
    again = SearchService.load(tmp_path / "svc")
    assert isinstance(again.reranker, PersonalisedReranker)
    assert [i["item_id"] for i in again.search("velvet matte", per_page=3).items] == [
        i["item_id"] for i in res.items
    ]


def test_judged_training_errors(folder):
    path, items = folder
    ds = load_judged_folder(path, corpus=items)
    service = SearchService.build(items)
    with pytest.raises(ConfigError, match="at least 2 folds"):
        cross_validate_judged(ds, service, folds=1)
    with pytest.raises(ConfigError, match="unjudged must be one of"):
        cross_validate_judged(ds, service, folds=2, unjudged="skip")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cannot fill 20 folds"):
        cross_validate_judged(ds, service, folds=20)
    other = SearchService.build(items.iloc[:10])
    with pytest.raises(DataError, match="the judgements are over 84 items"):
        train_judged_reranker(other, ds)
    with pytest.raises(DataError, match="queries for"):
        PersonalisedReranker.train_judged(service, ["a"], [])


def test_understanding_features_known_values():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["acme cream", "other cream", "acme lotion", "plain cream"],
            "brand": ["Acme", "Other", "ACME ", ""],
            "category": ["Beauty > Skin > Cream", "Beauty > Hair", "Beauty > Skin", ""],
            "price": [10.0, 30.0, 20.0, None],
        }
    )
    builder = FeatureBuilder(items)
    read = Understood(
        query="acme cream under 25",
        text="acme cream",
        max_price=25.0,
        brand="Acme",
        category=["Beauty > Skin"],
    )
    cand = np.array([0, 1, 2, 3])
    x = builder.features("acme cream", cand, understood=read, first_stage=np.array([4, 2, 1, 0]))
    col = {n: x[:, i].tolist() for i, n in enumerate(builder.names)}
    assert col["brand_match"] == [1, 0, 1, 0]
    assert col["category_match"] == [1, 0, 1, 0]
    assert col["price_match"] == [1, 0, 1, 0]
    assert col["price_rank"] == pytest.approx([0.0, 1.0, 0.5, 0.5])
    assert col["first_stage_score"] == pytest.approx([1.0, 0.5, 0.25, 0.0])
    assert col["coverage"] == pytest.approx([1.0, 0.5, 0.5, 0.5])
    assert col["phrase_share"] == pytest.approx([1.0, 0.0, 0.0, 0.0])
    none = builder.features("acme cream", cand)
    cols = {n: none[:, i].tolist() for i, n in enumerate(builder.names)}
    assert cols["brand_match"] == [0, 0, 0, 0] and cols["first_stage_score"] == [0, 0, 0, 0]
    with pytest.raises(DataError, match="3 first-stage scores for 4 candidates"):
        builder.features("acme cream", cand, first_stage=np.ones(3))


def test_phrase_and_proximity_known_values():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": [
                "rose water toner",
                "toner with rose water",
                "rose petal extract with water",
                "water",
            ],
        }
    )
    builder = FeatureBuilder(items)
    x = builder.features("rose water toner", np.arange(4))
    col = {n: x[:, i].tolist() for i, n in enumerate(builder.names)}
    # pairs (rose, water), (water, toner)
    assert col["phrase_share"] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert col["proximity_share"] == pytest.approx([1.0, 1.0, 0.5, 0.0])
    assert col["coverage"] == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])


def test_the_context_carries_what_understanding_read(folder):
    _, items = folder
    branded = items.assign(brand=np.where(items["item_id"].str.endswith("-0"), "Acme", "Other"))
    service = SearchService.build(branded)
    got = service_candidates(service, ["acme velvet matte under 20"])[0]
    assert isinstance(got.context, SearchContext)
    read = got.context.understood
    assert read is not None and read.brand == "Acme" and read.max_price == 20.0
    assert got.context.query == "acme velvet matte"  # the price phrase is a filter now
    reranker = PersonalisedReranker.for_service(service)
    x = reranker.features(Results(got.rows, got.scores), got.context)
    brand = x[:, reranker.model.feature_names.index("brand_match")]
    expected = [service.items["brand"].iloc[int(r)] == "Acme" for r in got.rows]
    assert brand.tolist() == [float(e) for e in expected] and 0 < sum(expected) < len(expected)


def test_cli_ltr_cv_on_a_judged_folder(folder, tmp_path, capsys):
    path, items = folder
    corpus = tmp_path / "items.jsonl"
    items.to_json(corpus, orient="records", lines=True)
    out = tmp_path / "report.json"
    code = main(
        [
            "evaluate-search", "--dataset", str(path), "--corpus", str(corpus),
            "--ltr-cv", "3", "--ltr-seeds", "0,1", "--json", str(out),
            "--ltr-params", '{"n_estimators": 60, "min_data_in_leaf": 5, "num_leaves": 7}',
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "ltr: 3-fold query-level cross-validation, seeds 0,1" in printed
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"default", "ltr"}
    assert report["results"]["ltr"]["ndcg@10"] == pytest.approx(1.0)
    assert report["results"]["default"]["ndcg@10"] < 0.6
    assert main(["evaluate-search", "--dataset", str(path), "--ltr-cv", "1"]) == 2
    assert "--ltr-cv: needs at least 2 folds" in capsys.readouterr().err
    assert main(["evaluate-search", "--dataset", str(path), "--ltr-seeds", "a,b"]) == 2
    assert "--ltr-seeds: comma-separated integers" in capsys.readouterr().err
    bad = ["--ltr-cv", "2", "--ltr-params", '{"num_leaves": 1}']
    assert main(["evaluate-search", "--dataset", str(path), *bad]) == 2
    assert "--ltr-params: num_leaves: Input should be greater than or equal to 2" in (
        capsys.readouterr().err
    )


def test_a_bundle_built_with_judgements_serves_their_reranker(folder, tmp_path):
    from shelfwise.artifacts import ensure_bundle
    from shelfwise.artifacts.bundle import current_bundle_dir, load_bundle
    from shelfwise.data.frames import records_to_frame
    from shelfwise.data.schemas import Event, Item
    from shelfwise.store import open_store

    path, items = folder
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(6)],
            "user_id": ["u1", "u2", "u3"] * 2,
            "item_id": ["I0-0", "I1-0", "R2-0", "I0-1", "R1-1", "I2-1"],
            "type": "purchase",
            "timestamp": pd.Timestamp("2026-01-01", tz="UTC"),
        }
    )
    with open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}") as store:
        store.ingest(
            items=records_to_frame("items", [Item(**r) for r in items.to_dict("records")]),
            events=records_to_frame("events", [Event(**r) for r in events.to_dict("records")]),
        )
        plain, built = ensure_bundle(store, tmp_path / "art")
        assert built and plain.manifest["search"]["reranker_source"] is None  # no searches
        judged, built = ensure_bundle(store, tmp_path / "art", judgements=path)
        assert built  # asked for judgements the served bundle was not trained on
        _, built = ensure_bundle(store, tmp_path / "art", judgements=path)
        assert not built
    # `shelfwise build --judgements` (the store closed, as the command opens it itself)
    code = main(
        [
            "build", "--store", f"duckdb:///{tmp_path / 'shop.duckdb'}",
            "--artifacts", str(tmp_path / "cli-art"), "--judgements", str(path),
        ]
    )  # fmt: skip
    assert code == 0
    cli = load_bundle(current_bundle_dir(tmp_path / "cli-art"))
    assert cli.manifest["search"]["reranker_source"] == "judgements"
    assert main(["build", "--store", f"duckdb:///{tmp_path / 'shop.duckdb'}",
                 "--artifacts", str(tmp_path / "bad-art"),
                 "--judgements", str(tmp_path / "nowhere")]) == 2  # fmt: skip
    assert not (tmp_path / "bad-art").exists()  # refused before training anything
    manifest = judged.manifest["search"]
    assert manifest["reranker_source"] == "judgements"
    assert manifest["judgements"] == str(path.resolve())
    loaded = load_bundle(judged.directory)
    assert isinstance(loaded.search_reranker, PersonalisedReranker)
    for q, (a, b) in enumerate(PAIRS[:4]):
        top = loaded.search.search(f"{a} {b}", per_page=3).items
        assert sorted(i["item_id"] for i in top) == [f"R{q}-{j}" for j in range(3)]
