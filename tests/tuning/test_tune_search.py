"""`shelfwise tune-search` and `shelfwise.tuning.search`: parameters addressed by name,
query-level folds, click-log judgements with known grades, and a tiny judged shop whose
default field weights rank the wrong products first: tuning finds the better weight,
cross-validated, writes it into a new bundle version, and the bundle's search service
(what the server loads) answers with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from shelfwise.artifacts import Registry, build_bundle, load_bundle
from shelfwise.artifacts.tuned_search import derive_tuned_search
from shelfwise.cli import main
from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event, Item
from shelfwise.errors import ConfigError, DataError
from shelfwise.recommenders.space import FloatRange
from shelfwise.search.config import SearchConfig
from shelfwise.search.judged import load_judged_folder
from shelfwise.search.service import SearchService
from shelfwise.store import open_store
from shelfwise.tuning.search import (
    Judged,
    SearchEvaluator,
    SearchTuneSettings,
    apply_params,
    click_judgements,
    config_params,
    query_folds,
    tune_search,
)

WORDS = ["vegan", "organic", "matte", "waterproof", "unscented", "travel"]
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def shop_items() -> list[Item]:
    """Per word: two products described by it (what a shopper asking for it wants) and two
    whose title only names it on a label accessory (what default title weights prefer)."""
    items = []
    for n, word in enumerate(WORDS):
        for j in range(2):
            items.append(Item(item_id=f"R{n}{j}", title=f"Plain product {n}{j}",
                              description=f"{word} formula", price=10.0 + j))  # fmt: skip
            items.append(Item(item_id=f"I{n}{j}", title=f"{word} label sticker {j}",
                              description="paper accessory", price=2.0 + j))  # fmt: skip
    return items


def judged_folder(root: Path) -> Path:
    folder = root / "judged"
    folder.mkdir()
    queries = ["query_id\tquery\ttype"] + [f"q{n}\t{w}\thead" for n, w in enumerate(WORDS)]
    qrels = ["query_id\tdoc_id\tgrade"]
    for n in range(len(WORDS)):
        qrels += [f"q{n}\tR{n}0\t3", f"q{n}\tR{n}1\t3", f"q{n}\tI{n}0\t0", f"q{n}\tI{n}1\t0"]
    (folder / "queries.tsv").write_text("\n".join(queries) + "\n")
    (folder / "qrels.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def frame() -> pd.DataFrame:
    return records_to_frame("items", shop_items())


SPACE = {"bm25.fields.description": FloatRange(0.5, 12.0)}


def test_params_are_addressed_by_dotted_names() -> None:
    config = SearchConfig()
    tuned = apply_params(config, {"bm25.k1": 0.9, "bm25.fields.title": 5.0, "fusion_weight": 0.4})
    assert (tuned.bm25.k1, tuned.bm25.fields["title"], tuned.fusion_weight) == (0.9, 5.0, 0.4)
    assert tuned.bm25.fields["brand"] == config.bm25.fields["brand"]  # the rest kept
    assert config_params(tuned, {"bm25.k1": SPACE["bm25.fields.description"]}) == {"bm25.k1": 0.9}
    with pytest.raises(ConfigError, match=r"'bm25\.kone' is not a SearchConfig field"):
        apply_params(config, {"bm25.kone": 1.0})
    with pytest.raises(ConfigError, match="fusion_weight"):
        apply_params(config, {"fusion_weight": 2.0})  # outside 0..1
    with pytest.raises(ConfigError, match="'nope' is not a SearchConfig field"):
        config_params(config, {"nope": SPACE["bm25.fields.description"]})


def test_folds_keep_a_query_group_on_one_side() -> None:
    groups = ["a", "b", "a", "c", "d", "b", "e", "c"]
    folds = query_folds(groups, 3, seed=1)
    for g in set(groups):
        assert len({int(f) for f, x in zip(folds, groups, strict=True) if x == g}) == 1
    assert set(folds.tolist()) == {0, 1, 2}
    with pytest.raises(ConfigError, match="cannot fill 9 folds"):
        query_folds(groups, 9)


def test_click_log_grades_are_the_strongest_action_per_query() -> None:
    events = []
    log: list[tuple[str, str, Literal["click", "add_to_cart", "purchase"]]] = [
        ("Vegan", "R00", "click"),
        ("vegan ", "R00", "purchase"),
        ("vegan", "R01", "click"),
        ("matte", "I20", "add_to_cart"),
    ]
    for n, (query, item, kind) in enumerate(log):
        at = T0 + timedelta(hours=n)
        events.append(Event(event_id=f"s{n}", user_id="u", type="search", query=query,
                            session_id=f"x{n}", timestamp=at))  # fmt: skip
        events.append(Event(event_id=f"e{n}", user_id="u", type=kind, item_id=item,
                            session_id=f"x{n}", timestamp=at + timedelta(minutes=2)))  # fmt: skip
    rows = {f"R{n}{j}": 10 * n + j for n in range(3) for j in range(2)} | {"I20": 99}
    judged = click_judgements(records_to_frame("events", events), rows)
    assert judged.queries == ["matte", "vegan"]
    assert judged.judgements == [{99: 2}, {0: 3, 1: 1}]
    assert click_judgements(records_to_frame("events", events), rows, min_searches=2).queries == [
        "vegan"
    ]
    with pytest.raises(DataError, match="no search followed by a click"):
        click_judgements(records_to_frame("events", events[:1]), rows)


def test_tuning_finds_the_better_field_weight_out_of_fold(tmp_path: Path) -> None:
    service = SearchService.build(frame())
    dataset = load_judged_folder(judged_folder(tmp_path), corpus=service.items)
    judged = Judged.from_dataset(dataset)
    default = SearchEvaluator(service, judged).per_query(service.config)
    assert np.all(default < 0.7)  # the label stickers come first
    result = tune_search(service, judged, SearchTuneSettings(trials=8, folds=3), space=SPACE)
    weight = result.params["bm25.fields.description"]
    assert weight > service.config.bm25.fields["title"]
    assert result.cv["default"] == pytest.approx(float(default.mean()), abs=1e-4)
    assert result.cv["tuned"] > 0.95 > result.cv["default"]
    assert len(result.cv["folds"]) == 3
    assert sum(f["queries"] for f in result.cv["folds"]) == len(WORDS)
    assert result.cv["by_type"]["head"]["tuned"] == result.cv["tuned"]
    assert result.config.bm25.fields["description"] == pytest.approx(weight, abs=1e-4)


def test_tune_search_writes_a_bundle_the_server_answers_with(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    store.ingest(items=frame())
    try:
        root = tmp_path / "artifacts"
        parent = build_bundle(store, root, search_rerank=False)
    finally:
        store.close()
    assert [i["item_id"] for i in parent.search.search("vegan").items][:2] == ["I00", "I01"]
    folder = judged_folder(tmp_path)
    out = tmp_path / "report.json"
    params = "bm25.fields.description,bm25.fields.title"
    code = main(["tune-search", "--judgements", str(folder), "--artifacts", str(root),
                 "--mode", "lexical", "--folds", "3", "--trials", "8",
                 "--params", params, "--json", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    registry = Registry(root)
    active = registry.active()
    assert active is not None and active.version == report["bundle"]["version"]
    assert active.parent == parent.version
    assert active.manifest["search"]["tuned"]["params"] == report["params"]
    served = load_bundle(active.path)  # what the server loads
    fields = served.search.config.bm25.fields
    assert fields["description"] == pytest.approx(
        report["params"]["bm25.fields.description"], abs=1e-4
    )
    assert fields["description"] > fields["title"]
    assert {i["item_id"] for i in served.search.search("vegan").items[:2]} == {"R00", "R01"}
    # the parent bundle is untouched (its files were linked, the search folder rewritten)
    again = load_bundle(parent.directory)
    assert again.search.config.bm25.fields == SearchConfig().bm25.fields
    assert [i["item_id"] for i in again.search.search("vegan").items][:2] == ["I00", "I01"]
    assert registry.rollback().version == parent.version


def test_derive_tuned_search_without_activation_and_bad_input(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    store.ingest(items=frame())
    try:
        parent = build_bundle(store, tmp_path / "a", search_rerank=False)
    finally:
        store.close()
    registry = Registry(tmp_path / "a")
    config = apply_params(SearchConfig(), {"phrase_boost": 0.9})
    version = derive_tuned_search(registry, parent.version, config, {"params": {}}, False)
    active = registry.active()
    assert active is not None and active.version == parent.version  # not activated
    assert load_bundle(registry.path(version)).search.config.phrase_boost == 0.9
    with pytest.raises(ConfigError, match="cannot replace"):
        registry.derive(parent.version, replace={"manifest.json": lambda p: None})
    code = main(["tune-search", "--artifacts", str(tmp_path / "none")])
    assert code == 2  # no bundle served there: a clear error, not a traceback


def test_a_build_with_judgements_and_a_budget_serves_tuned_search(tmp_path: Path) -> None:
    from shelfwise.search.build import build_search_service
    from shelfwise.settings import TuningSettings

    folder = judged_folder(tmp_path)
    items = frame()
    service = build_search_service(items, None, rerank=False, judgements=folder, tune_budget=20)
    report = service.tuned
    assert report is not None and len(report["cv"]["folds"]) == 5
    assert report["cv"]["tuned"] >= report["cv"]["default"] - 1e-9
    tuned_k1 = report["params"]["bm25.k1"]
    assert service.config.bm25.k1 == pytest.approx(tuned_k1, abs=1e-4)
    assert report["final"]["ndcg"] >= report["final"]["default_ndcg"]
    plain = build_search_service(items, None, rerank=False, judgements=folder)
    assert plain.tuned is None and plain.config == SearchConfig()  # no budget: untuned
    store = open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    store.ingest(items=items)
    try:
        bundle = build_bundle(
            store, tmp_path / "art", search_rerank=False, judgements=folder,
            tuning=TuningSettings(build_budget_seconds=20),
        )  # fmt: skip
    finally:
        store.close()
    tuned = bundle.manifest["search"]["tuned"]
    served = load_bundle(bundle.directory).search  # what the server loads
    assert served.config.bm25.k1 == pytest.approx(tuned["params"]["bm25.k1"], abs=1e-4)
    assert served.config.bm25.fields["description"] == pytest.approx(
        tuned["params"]["bm25.fields.description"], abs=1e-4
    )
