"""Dense retrieval switched on in `SearchService`: search modes with known answers (the real
MiniLM model, offline), filters / facets / sorting / pages over dense candidates, live
updates of the dense index, and the on-disk embedding cache (reused, per text, resumable)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.errors import ConfigError
from shelfwise.search.semantic import EmbeddingCache, encode_cached, item_texts
from shelfwise.search.service import SearchService
from shelfwise.text.embeddings import SentenceEncoder

# No synonyms anywhere: "couch" shares no word (nor a typo) with any title, description
# or category below, so only the embeddings can find the sofa.
ROWS = [
    ("SOFA", "Grey Fabric Three-Seater Sofa", "Home > Living Room > Sofas", 499.0, "Lounger"),
    ("CHAIR", "Leather Armchair", "Home > Living Room > Chairs", 249.0, "Lounger"),
    ("TABLE", "Oak Dining Table", "Home > Dining > Tables", 399.0, "Woodly"),
    ("KNIFE", "Chef Knife 20 cm", "Home > Kitchen > Knives", 45.0, "Acme"),
    ("BOARD", "Bamboo Cutting Board", "Home > Kitchen > Boards", 18.0, "Acme"),
    ("KETTLE", "Electric Kettle 1.7 l", "Home > Kitchen > Kettles", 35.0, "Brewly"),
    ("PHONES", "Wireless Over-Ear Headphones", "Electronics > Audio > Headphones", 99.0, "Sonix"),
    ("BUDS", "Bluetooth Earbuds, Charging Case", "Electronics > Audio > Earbuds", 59.0, "Sonix"),
    ("SPEAKER", "Portable Bluetooth Speaker", "Electronics > Audio > Speakers", 60.0, "Sonix"),
    ("SHOES", "Running Shoes for Men", "Sports > Footwear > Running", 89.0, "Stride"),
    ("MAT", "Yoga Mat 6 mm", "Sports > Fitness > Yoga", 25.0, "Stride"),
    ("LAMP", "Brass Floor Lamp", "Home > Living Room > Lighting", 120.0, "Woodly"),
]


def catalog(rows: Sequence[tuple[str, str, str, float, str]] = ROWS) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [r[0] for r in rows],
            "title": [r[1] for r in rows],
            "category": [r[2] for r in rows],
            "price": [r[3] for r in rows],
            "brand": [r[4] for r in rows],
        }
    )


class CountingEncoder(SentenceEncoder):
    """The real MiniLM encoder, counting the texts it is asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False
    ) -> np.ndarray:
        self.texts += len(texts)
        return super().encode(texts, batch_size=batch_size, progress=progress)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embeddings")


@pytest.fixture(scope="module")
def service(cache_dir: Path) -> SearchService:
    service = SearchService.build(catalog())
    service.enable_dense(cache_dir=cache_dir)
    return service


def ids(res) -> list[str]:
    return [i["item_id"] for i in res.items]


def test_couch_finds_the_sofa_semantically_but_not_lexically(service: SearchService) -> None:
    lexical = service.search("couch", mode="lexical")
    assert lexical.total == 0 and lexical.query_info["mode"] == "lexical"
    hybrid = service.search("couch", mode="hybrid")
    assert hybrid.query_info["mode"] == "hybrid"
    assert hybrid.query_info["retrievers"] == ["bm25", "dense"]
    # the two living-room seats first (MiniLM over title + brand puts "Leather Armchair"
    # a little nearer "couch" than "Grey Fabric Three-Seater Sofa")
    assert set(ids(hybrid)[:2]) == {"SOFA", "CHAIR"}
    semantic = service.search("couch", mode="semantic")
    assert semantic.query_info["mode"] == "semantic"
    assert set(ids(semantic)[:2]) == {"SOFA", "CHAIR"}
    # the default with a dense index is hybrid
    assert service.search("couch").query_info["mode"] == "hybrid"
    # unrelated items stay out (below dense_min_similarity), so totals mean something
    assert "KNIFE" not in ids(semantic) and semantic.total < len(ROWS)


def test_hybrid_keeps_lexical_matches_first_for_exact_queries(service: SearchService) -> None:
    res = service.search("chef knife", mode="hybrid")
    assert ids(res)[0] == "KNIFE"
    assert set(ids(service.search("chef knife", mode="lexical"))) <= set(ids(res))


def test_filters_apply_to_dense_candidates(service: SearchService) -> None:
    res = service.search("couch", mode="hybrid", filters=["category=Electronics"])
    assert "SOFA" not in ids(res)
    assert all(i["category"].startswith("Electronics") for i in res.items)
    cheap = service.search("couch", mode="semantic", filters=["price=..300"])
    assert "SOFA" not in ids(cheap) and all(i["price"] <= 300 for i in cheap.items)
    living = service.search("couch", mode="hybrid", filters={"category": "Home > Living Room"})
    assert set(ids(living)[:2]) == {"SOFA", "CHAIR"}
    assert all(i["category"].startswith("Home > Living Room") for i in living.items)


def test_facets_sorting_and_pages_in_hybrid_mode(service: SearchService) -> None:
    full = service.search("sofa armchair lamp couch", mode="hybrid", per_page=100)
    assert full.total == len(full.items) >= 3
    counts = {f["value"]: f["count"] for f in full.facets["brand"]}
    assert sum(counts.values()) == full.total
    by_price = service.search(
        "sofa armchair lamp couch", mode="hybrid", sort="price_asc", per_page=100
    )
    prices = [i["price"] for i in by_price.items]
    assert prices == sorted(prices) and by_price.total == full.total
    pages = [
        ids(service.search("sofa armchair lamp couch", mode="hybrid", page=p, per_page=2))
        for p in range(1, (full.total + 1) // 2 + 1)
    ]
    assert [i for page in pages for i in page] == ids(full)


def test_bad_mode_and_fallback_without_dense(service: SearchService) -> None:
    with pytest.raises(ConfigError, match=r"unknown mode 'fuzzy'.*lexical, semantic, hybrid"):
        service.search("couch", mode="fuzzy")
    plain = SearchService.build(catalog())
    res = plain.search("couch", mode="semantic")
    assert res.query_info["mode"] == "lexical" and "not enabled" in res.query_info["notice"]
    assert plain.search("knife").query_info["mode"] == "lexical"


def test_cache_is_reused_and_updates_embed_only_new_texts(cache_dir: Path) -> None:
    frame = catalog()
    first = SearchService.build(frame)
    first.enable_dense(cache_dir=cache_dir)  # the module fixture filled the cache already
    encoder = CountingEncoder()
    cache = EmbeddingCache(cache_dir, encoder=encoder)
    again = cache.encode(item_texts(frame))
    assert encoder.texts == 0 and cache.encoded == 0 and cache.hits == len(frame)
    assert again.shape == (len(frame), 384)

    # a service whose dense index embeds through the counting encoder's cache
    service = SearchService.build(frame)
    from shelfwise.search.semantic import DenseIndex

    dense = DenseIndex(encoder=encoder)
    dense.cache = cache
    dense.index_vectors(dense.embed(item_texts(frame)), np.arange(len(frame)))
    service.enable_dense(dense)
    assert encoder.texts == 0
    # an upsert of an unchanged item embeds nothing; a new item embeds one text
    service.upsert_items(frame.iloc[[0]])
    assert encoder.texts == 0
    loveseat = catalog([("LOVE", "Velvet Loveseat", "Home > Living Room > Sofas", 350.0, "Lux")])
    service.upsert_items(loveseat)
    assert encoder.texts == 1
    res = service.search("loveseat", mode="semantic", per_page=3)
    assert ids(res)[0] == "LOVE"
    service.delete_items(["LOVE"])
    assert "LOVE" not in ids(service.search("loveseat", mode="semantic"))


def test_cache_segments_merge_and_resume(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    texts = [f"{title} ({cat})" for _, title, cat, _, _ in ROWS]
    cache = EmbeddingCache(tmp_path, chunk_size=3, log_every_s=0.0, max_segments=2)
    with caplog.at_level(logging.INFO, logger="shelfwise.search.semantic"):
        first = cache.encode(texts, what="items")
    assert cache.encoded == len(texts)
    assert any("ETA" in r.getMessage() for r in caplog.records)  # progress for long runs
    # more segments than max_segments were merged into one, without losing a vector
    assert len(list(cache.directory.glob("*.keys.npy"))) <= 2
    fresh = EmbeddingCache(tmp_path)
    np.testing.assert_allclose(fresh.encode(texts), first, atol=1e-6)
    assert fresh.encoded == 0 and len(fresh) == len(texts)
    # a catalogue embedded by `encode_cached` before the per-text cache existed is adopted
    legacy = tmp_path / "legacy"
    old = encode_cached(texts[:5], cache_dir=legacy)
    adopt = EmbeddingCache(legacy, chunk_size=2)
    np.testing.assert_allclose(adopt.encode(texts[:5]), old, atol=1e-6)
    assert adopt.encoded == 0
