"""Hybrid search in `SearchService` with a known dense side: the fusion weight moves a
product the words miss from last to first, a confident lexical side is left alone, the
dense side embeds the corrected query, `mode="lexical"` per request, and `with_config`
(a tuned configuration over the same catalogue) re-indexes only for BM25 changes.

The dense retriever here is a fixed table of similarities (a `Retriever` with
`similarity`, as `DenseIndex` has), so every fused score is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError
from shelfwise.search.config import SearchConfig
from shelfwise.search.service import SearchService
from shelfwise.types import Results, top_k

TITLES = {
    "A": "Red Lipstick Matte",
    "B": "Red Lipstick Gloss",
    "C": "Velvet Lip Crayon in Scarlet",  # no query word: only the dense side finds it
    "D": "Blue Nail Polish",
    "E": "Green Eye Shadow",
}
#: cosine of the (corrected) query "red lipstick" with each item
SIMILARITY = {"A": 0.55, "B": 0.50, "C": 0.95, "D": 0.10, "E": 0.05}


class TableRetriever:
    """Dense retrieval from a fixed similarity table (one query's worth)."""

    def __init__(self, rows: dict[str, int]) -> None:
        self.sims = np.zeros(len(rows), dtype=np.float32)
        for item, row in rows.items():
            self.sims[row] = SIMILARITY[item]
        self.asked: list[str] = []

    def retrieve(self, query: str, k: int, mask: np.ndarray | None = None) -> Results:
        self.asked.append(query)
        scores = self.sims.copy()
        if mask is not None:
            scores[~mask] = -np.inf
        return top_k(scores, k)

    def similarity(self, query: str, ids: np.ndarray) -> np.ndarray:
        return self.sims[np.asarray(ids, dtype=np.int64)]


@pytest.fixture()
def service() -> SearchService:
    items = pd.DataFrame({"item_id": list(TITLES), "title": list(TITLES.values())})
    service = SearchService.build(items, config=SearchConfig(dense_min_similarity=0.3))
    service.enable_dense(TableRetriever(service.id_to_row))
    return service


def ids(service: SearchService, query: str, **kw: object) -> list[str]:
    return [i["item_id"] for i in service.search(query, facets=(), **kw).items]  # type: ignore[arg-type]


def configured(service: SearchService, **update: object) -> SearchService:
    return service.with_config(service.config.model_copy(update=update))


def test_the_fusion_weight_decides_where_the_dense_only_product_goes(
    service: SearchService,
) -> None:
    assert ids(service, "red lipstick", mode="lexical") == ["A", "B"]
    # default mode with a dense retriever: hybrid; two complete matches < 10: not confident
    res = service.search("red lipstick", facets=())
    assert res.query_info["mode"] == "hybrid"
    assert res.query_info["fusion"] == {
        "method": "score", "dense_weight": 0.4, "lexically_confident": False
    }  # fmt: skip
    # A: 0.6 * 1 + 0.4 * 0.1111 (min-max of 0.55 over 0.50..0.95); C: 0.6 * 0 + 0.4 * 1
    assert [i["item_id"] for i in res.items] == ["A", "B", "C"]  # D, E below the 0.3 floor
    assert res.items[0]["score"] == pytest.approx(0.6 + 0.4 * (0.05 / 0.45), abs=1e-5)
    assert res.items[2]["score"] == pytest.approx(0.4, abs=1e-5)
    assert ids(configured(service, fusion_weight=0.0), "red lipstick") == ["A", "B", "C"]
    assert ids(configured(service, fusion_weight=0.9), "red lipstick") == ["C", "A", "B"]
    # weighted RRF: at 0.9, A (lexical 1st, dense 2nd) still beats C (dense 1st only)
    assert ids(configured(service, fusion="rrf", fusion_weight=0.9), "red lipstick")[0] == "A"
    assert ids(configured(service, fusion="rrf", fusion_weight=1.0), "red lipstick")[0] == "C"


def test_a_confident_lexical_side_is_left_alone(service: SearchService) -> None:
    sure = configured(service, fusion_weight=0.9, dense_confident_matches=2)
    res = sure.search("red lipstick", facets=())
    assert [i["item_id"] for i in res.items] == ["A", "B"]  # no dense-only product
    assert res.query_info["fusion"]["lexically_confident"] is True
    assert res.query_info["fusion"]["dense_weight"] == 0.0
    # dense_confident_weight 1: a confident query is fused like any other
    always = configured(sure, dense_confident_weight=1.0)
    assert ids(always, "red lipstick") == ["C", "A", "B"]


def test_the_dense_side_embeds_the_corrected_query(service: SearchService) -> None:
    dense = service.dense
    assert isinstance(dense, TableRetriever)
    res = service.search("red lipstik", facets=())
    assert res.query_info["corrected"] == {"lipstik": "lipstick"}
    assert dense.asked[-1] == "red lipstick"
    assert res.query_info["fusion"]["dense_query"] == "red lipstick"
    assert [i["item_id"] for i in res.items] == ["A", "B", "C"]


def test_filters_and_lexical_mode_per_request(service: SearchService) -> None:
    assert ids(service, "red lipstick", mode="lexical") == ["A", "B"]
    assert "C" not in ids(service, "red lipstick", filters=["item_id=A,B"])


def test_with_config_reindexes_only_for_bm25_changes(service: SearchService) -> None:
    same = configured(service, phrase_boost=0.9)
    assert same.index is service.index and same.dense is service.dense
    assert same.config.phrase_boost == 0.9 and service.config.phrase_boost == 0.3
    bm25 = service.config.bm25.model_copy(update={"k1": 0.5})
    other = service.with_config(service.config.model_copy(update={"bm25": bm25}))
    assert other.index is not service.index and other.index.config.k1 == 0.5
    np.testing.assert_array_equal(other.index.alive, service.index.alive)
    assert ids(other, "red lipstick", mode="lexical") == ["A", "B"]
    with pytest.raises(ConfigError, match="language and stem"):
        service.with_config(service.config.model_copy(update={"stem": False}))
