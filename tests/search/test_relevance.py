"""Search evaluation: graded metrics by hand, the WANDS / ESCI / demo loaders, and the
side-by-side runner on a small demo store."""

import math
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError, DataError
from shelfwise.search.ltr import LTRConfig
from shelfwise.search.relevance import (
    dataset_status,
    evaluate_rankings,
    evaluate_search,
    load_demo,
    load_esci,
    load_search_dataset,
    load_wands,
    ndcg_per_query,
)
from shelfwise.settings import data_dir


def test_evaluate_rankings_known_answer():
    ranked = [np.array([5, 1, 7]), np.array([2]), np.array([3])]
    judged = [{1: 2, 7: 1, 8: 1}, {2: 0}, {3: 1}]  # query 2 has no relevant item: skipped
    m = evaluate_rankings(ranked, judged, k=2, depth=3)
    assert m["queries"] == 2
    # query 1: hits at ranks 2 and 3 of 3 relevant; query 3: hit at rank 1 of 1
    ap1 = (1 / 2 + 2 / 3) / 3
    assert m["map"] == pytest.approx((ap1 + 1.0) / 2)
    assert m["p@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert m["recall@3"] == pytest.approx((2 / 3 + 1) / 2)
    ndcg1 = (2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert m["ndcg@2"] == pytest.approx((ndcg1 + 1.0) / 2)
    # a higher relevance threshold drops the Partial-only judgements
    strict = evaluate_rankings(ranked, judged, k=2, depth=3, relevant_grade=2)
    assert strict["queries"] == 1 and strict["recall@3"] == pytest.approx(1.0)
    with pytest.raises(DataError, match="no query"):
        evaluate_rankings([np.array([1])], [{1: 0}])
    # the per-query values that nDCG@2 averages, queries without a relevant item left out
    assert ndcg_per_query(ranked, judged, k=2) == pytest.approx([ndcg1, 1.0])
    assert ndcg_per_query(ranked, judged, k=2, relevant_grade=2) == pytest.approx([ndcg1])


def write_tsv(path, frame):
    frame.to_csv(path, sep="\t", index=False)


def test_wands_missing_files_named(tmp_path):
    write_tsv(tmp_path / "query.csv", pd.DataFrame({"query_id": [0], "query": ["sofa"]}))
    with pytest.raises(DataError, match=r"missing product\.csv, label\.csv"):
        load_wands(tmp_path)


@pytest.mark.realdata
def test_wands_in_shared_data_is_reported():
    base = data_dir()
    if base is None or not (base / "wands").is_dir():
        pytest.skip("no wands folder in the data dir")
    status = dataset_status()["wands"]
    if (base / "wands" / "label.csv").exists() or (base / "wands" / "label.csv.gz").exists():
        assert status == "present"
    else:
        assert "label.csv" in status
        with pytest.raises(DataError, match=r"label\.csv"):
            load_wands()


def test_wands_loader_on_a_tiny_copy(tmp_path):
    write_tsv(
        tmp_path / "query.csv",
        pd.DataFrame({"query_id": [0, 1, 2], "query": ["Salon Chair", "rug", "lamp"],
                      "query_class": ["Chairs", "Rugs", ""]}),
    )  # fmt: skip
    write_tsv(
        tmp_path / "product.csv",
        pd.DataFrame(
            {
                "product_id": [10, 11, 12],
                "product_name": ["salon chair", "shag rug", "desk lamp"],
                "product_class": ["Chairs|Salon", "Rugs", "Lamps"],
                "category hierarchy": ["Furniture / Chairs", "Decor / Rugs", "Lighting / Lamps"],
                "product_description": ["a chair", "a rug", "a lamp"],
                "product_features": ["color:black|material:steel", "", "bulb:led"],
                "rating_count": [3, "", 10],
                "average_rating": [4.5, "", 3.0],
                "review_count": [1, 0, 2],
            }
        ),
    )
    write_tsv(
        tmp_path / "label.csv",
        pd.DataFrame(
            {"id": [1, 2, 3, 4], "query_id": [0, 0, 1, 1], "product_id": [10, 11, 11, 12],
             "label": ["Exact", "Irrelevant", "Partial", "Irrelevant"]}
        ),
    )  # fmt: skip
    ds = load_wands(tmp_path)
    assert ds.queries["qid"].tolist() == ["0", "1"]  # query 2 has no judgements
    assert ds.judgements == [{0: 2, 1: 0}, {1: 1, 2: 0}]
    assert ds.items["category"].tolist()[0] == "Furniture > Chairs"
    assert "color black material steel" in ds.items["attributes"][0]
    np.testing.assert_allclose(ds.item_features["rating_count"], [3, 0, 10])
    report = evaluate_search(ds, ["bm25"], k=2, depth=3)
    assert report["results"]["bm25"]["ndcg@2"] == pytest.approx(1.0)
    assert report["per_query_summary"]["bm25"]["ndcg@2"] == {"n": 2, "mean": 1.0, "sd": 0.0}
    write_tsv(
        tmp_path / "label.csv",
        pd.DataFrame({"id": [1], "query_id": [0], "product_id": [10], "label": ["Great"]}),
    )
    with pytest.raises(DataError, match="unknown labels"):
        load_wands(tmp_path)


def test_esci_loader_on_a_tiny_sample(tmp_path):
    with pytest.raises(DataError, match="examples"):
        load_esci(tmp_path)
    pd.DataFrame(
        {
            "example_id": range(5),
            "query": ["usb cable", "usb cable", "usb cable", "tea", "tea"],
            "query_id": [1, 1, 1, 2, 2],
            "product_id": ["P1", "P2", "P3", "P4", "P5"],
            "product_locale": ["us", "us", "us", "us", "jp"],
            "esci_label": ["E", "S", "I", "C", "E"],
            "split": ["test"] * 5,
        }
    ).to_csv(tmp_path / "shopping_queries_dataset_examples.csv", index=False)
    pd.DataFrame(
        {
            "product_id": ["P1", "P2", "P3", "P4", "P5"],
            "product_title": ["USB-C cable", "Lightning cable", "Tea kettle", "Mug", "Matcha"],
            "product_brand": ["Anker", "Apple", "Fellow", "Yeti", "Ito"],
            "product_locale": ["us", "us", "us", "us", "jp"],
        }
    ).to_csv(tmp_path / "shopping_queries_dataset_products.csv", index=False)
    ds = load_esci(tmp_path)
    assert ds.queries["query"].tolist() == ["usb cable", "tea"]
    assert ds.judgements == [{0: 3, 1: 2, 2: 0}, {3: 1}]
    assert ds.items["title"].tolist() == ["USB-C cable", "Lightning cable", "Tea kettle", "Mug"]


def test_load_search_dataset_by_name():
    with pytest.raises(ConfigError, match="unknown search dataset"):
        load_search_dataset("msmarco")
    assert set(dataset_status()) == {"wands", "esci", "demo"}


@pytest.fixture(scope="module")
def small_demo():
    return load_demo(n_items=300, n_users=300, days=60)


def test_demo_labels_come_after_the_history(small_demo):
    ds = small_demo
    assert len(ds.queries) > 100 and len(ds.items) == 300
    assert ds.history is not None and not ds.history.empty
    assert (ds.history["type"] != "search").any()
    # every query has a positive grade and its shopper
    assert all(max(j.values()) >= 1 for j in ds.judgements)
    assert ds.queries["user_id"].notna().all()
    assert {"rating_avg", "rating_count"} <= set(ds.item_features)
    with pytest.raises(ConfigError):
        load_demo(n_items=300, n_users=50, history_fraction=1.0)


class TrigramEncoder:
    """A fast stand-in for MiniLM (the runner, not the embedding, is under test here):
    hashed character trigrams of the lower-cased text, L2-normalised."""

    dim = 384
    max_length = 256
    model_path = Path("trigram-hash")

    def encode(self, texts, batch_size=64, progress=False):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            t = f"  {text.lower()} "
            for j in range(len(t) - 2):
                out[i, zlib.crc32(t[j : j + 3].encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def test_runner_on_a_small_demo_store(small_demo, tmp_path):
    report = evaluate_search(
        small_demo,
        ["bm25", "hybrid", "ltr"],
        folds=3,
        encoder=TrigramEncoder(),
        ltr_config=LTRConfig(n_estimators=60),
        cache_dir=tmp_path,
    )
    results = report["results"]
    assert set(results) == {"bm25", "hybrid", "ltr"}
    for row in results.values():
        assert set(row) == {"ndcg@10", "map", "p@10", "recall@100"}
        assert all(0.0 <= v <= 1.0 for v in row.values())
    # the re-ranker sees popularity and the shoppers' tastes, which BM25 cannot
    assert results["ltr"]["ndcg@10"] > results["bm25"]["ndcg@10"] + 0.05
    assert report["queries"] == len(small_demo.queries)
    assert report["ltr_feature_gain_share"]
    with pytest.raises(ConfigError, match="unknown"):
        evaluate_search(small_demo, ["bm25", "magic"])
    with pytest.raises(ConfigError, match="folds"):
        evaluate_search(small_demo, ["ltr"], folds=1)
