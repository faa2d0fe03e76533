"""EngineConfig: validated, recorded in the bundle manifest, read back, used by the engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from pydantic import ValidationError

from shelfwise.artifacts import build_bundle, ensure_bundle, load_bundle
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.errors import ConfigError
from shelfwise.serving import STEPS, Engine, EngineConfig
from shelfwise.serving.chain import StepName
from shelfwise.store import Store, open_store

from .conftest import ITEMS

MODELS = {"popularity": {}, "itemknn": {"neighbors": 10, "shrink": 0.0}, "tfidf": {}}
BASKETS = {"u0": ["K1", "K2"], "u1": ["K1", "K2", "B1"], "u2": ["H1", "H2"], "u3": ["K1"]}


def test_defaults_are_the_engine_constants() -> None:
    config = EngineConfig()
    assert config.recommend_steps == ("personalised", "session", "trending", "popular")
    assert config.similar_steps == ("similar", "content", "trending", "popular")
    assert config.bought_together_steps == ("bought_together", "similar", "trending", "popular")
    assert (config.session_gap_minutes, config.session_items) == (30.0, 10)
    assert (config.cold_min_similarity, config.content_weight) == (0.05, 0.3)
    assert (config.copurchase_shrink, config.history_limit) == (2.0, 200)
    assert config.basket_types == ("add_to_cart", "purchase")
    assert (config.personalisation_model, config.similarity_model) == ("itemknn", "itemknn")
    assert config.content_model is config.popularity_model is config.trending_model is None


def test_every_field_is_documented_and_every_step_buildable() -> None:
    undocumented = [n for n, f in EngineConfig.model_fields.items() if not f.description]
    assert undocumented == []
    assert set(STEPS) == set(get_args(StepName))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"recommend_steps": ("personalised", "nearby")}, "recommend_steps"),
        ({"similar_steps": ("similar", "similar")}, "similar appear more than once"),
        ({"basket_types": ("purchase", "wishlist")}, "wishlist not event types"),
        ({"content_weigth": 0.5}, "content_weigth"),
        ({"session_items": 0}, "session_items"),
    ],
)
def test_invalid_configurations_name_the_field(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EngineConfig(**fields)  # type: ignore[arg-type]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    """The tiny shop in a DuckDB store: its catalogue and one purchase session per basket."""
    t0 = datetime(2026, 5, 1, 8)
    items = [
        Item(item_id=r.item_id, title=r.title, category=r.category, price=r.price)
        for r in ITEMS.itertuples()
    ]
    events = [
        Event(
            user_id=user,
            item_id=item,
            type="purchase",
            session_id=f"s-{user}",
            timestamp=t0 + timedelta(minutes=i),
        )
        for user, basket in BASKETS.items()
        for i, item in enumerate(basket)
    ]
    with open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}") as opened:
        opened.ingest(
            items=records_to_frame("items", items), events=records_to_frame("events", events)
        )
        yield opened


def test_the_manifest_records_the_config_and_the_engine_serves_it(
    store: Store, tmp_path: Path
) -> None:
    config = EngineConfig(
        similar_steps=("content", "popular"), copurchase_shrink=0.5, history_limit=3
    )
    root = tmp_path / "artifacts"
    bundle = build_bundle(store, root, models=MODELS, search_rerank=False, engine=config)
    manifest = json.loads((bundle.directory / "manifest.json").read_text())
    assert manifest["engine"] == config.model_dump(mode="json")
    assert manifest["engine"]["similar_steps"] == ["content", "popular"]
    loaded = load_bundle(bundle.directory)
    assert loaded.engine == config and bundle.engine == config
    assert ensure_bundle(store, root)[0].engine == config  # reused: keeps its config

    engine = Engine(store, loaded)
    assert engine.config is loaded.engine and engine.log.limit == 3
    similar = engine.similar("K1", 5)
    assert similar.strategy == "content"
    assert {r["source"] for r in similar.items} <= {"content", "popular"}
    default = Engine(store, build_bundle(store, root, models=MODELS, search_rerank=False))
    assert [r["item_id"] for r in default.similar("K1", 2).items] == ["K2", "B1"]
    assert default.similar("K1", 2).strategy == "similar"
    # bought together with shrink 0.5: c(K1, K2) = 2 baskets of c(K1) = 3 -> 2 / 3.5
    together = engine.bought_together("K1", 1)
    assert together.items[0]["item_id"] == "K2"
    assert together.items[0]["score"] == pytest.approx(2 / 3.5, abs=1e-6)


def test_the_engine_bumps_the_catalogue_revision_on_every_change(
    store: Store, tmp_path: Path
) -> None:
    bundle = build_bundle(store, tmp_path / "a", models=MODELS, search_rerank=False)
    engine = Engine(store, bundle)
    start = engine.catalog.revision
    assert engine.refresh() == {"items": 0, "removed": 0, "reset": 0}
    assert engine.catalog.revision == start  # nothing changed: no new snapshot
    new = records_to_frame("items", [Item(item_id="K3", title="Santoku Knife")])
    store.upsert_items(new)
    assert engine.apply_items(store.items(["K3"])) == ["K3"]
    assert engine.catalog.revision == start + 1
    store.delete_item("H2")
    assert engine.remove_item("H2") and engine.catalog.revision == start + 2
    assert not engine.remove_item("H2") and engine.catalog.revision == start + 2
    engine.activate(bundle)  # the bundle's catalogue again, then K3 re-applied, H2 hidden
    assert engine.catalog.revision > start + 2
    assert engine.item_index("K3") is not None and not engine.catalog.alive[engine.item_index("H2")]


def test_old_manifests_get_the_defaults_and_bad_ones_are_refused(
    store: Store, tmp_path: Path
) -> None:
    bundle = build_bundle(store, tmp_path / "a", models=MODELS, search_rerank=False)
    path = bundle.directory / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["engine"]  # written before bundles recorded it
    path.write_text(json.dumps(manifest))
    assert load_bundle(bundle.directory).engine == EngineConfig()
    manifest["engine"] = {"session_gap": 30}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="session_gap"):
        load_bundle(bundle.directory)


def test_a_role_the_bundle_cannot_fill_is_refused_when_served(store: Store, tmp_path: Path) -> None:
    config = EngineConfig(content_model="itemknn")
    bundle = build_bundle(store, tmp_path / "a", models=MODELS, search_rerank=False, engine=config)
    with pytest.raises(ConfigError, match=r"engine\.content_model: .*'itemknn'.*\(tfidf\)"):
        Engine(store, bundle)
