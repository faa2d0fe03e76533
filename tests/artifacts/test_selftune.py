"""Self-tuning builds on block data, where PureSVD's default rank is clearly wrong.

Users of block b (6 blocks of 10 items) buy items of block b only, so the interactions have
rank 6: a few factors find the blocks, the default 20 factors fit noise. On this data the
default scores about 0.52 nDCG@10 on validation and 8 factors about 0.62 (known from the
tuner's own runs; the test asserts a margin of 0.05)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.artifacts import Registry, build_bundle
from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError
from shelfwise.recommenders import create
from shelfwise.settings import Settings, TuningSettings
from shelfwise.store import Store, open_store

N_USERS, N_ITEMS, BLOCKS, PER_USER = 120, 60, 6, 8


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    size = N_ITEMS // BLOCKS
    rows = []
    for u in range(N_USERS):
        b = u % BLOCKS
        picked = rng.choice(np.arange(b * size, (b + 1) * size), size=PER_USER, replace=False)
        for j, i in enumerate(picked):
            ts = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=j * 100 + u)
            rows.append((f"u{u}", f"i{i}", "purchase", ts))
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp"])
    ids = [f"i{i}" for i in range(N_ITEMS)]
    items = pd.DataFrame({"item_id": ids, "title": [f"item {i}" for i in range(N_ITEMS)]})
    return events, items


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    from shelfwise.data.io import load_records

    events, items = _frames()
    events["timestamp"] = events["timestamp"].map(lambda t: t.isoformat())
    events.to_csv(tmp_path / "events.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    st = open_store(f"duckdb:///{tmp_path / 'blocks.duckdb'}")
    st.ingest(
        items=load_records(tmp_path / "items.csv", "items"),
        events=load_records(tmp_path / "events.csv", "events"),
    )
    yield st
    st.close()


TUNING = TuningSettings(build_budget_seconds=60, build_model="svd", trials=8, sampler="random")


def test_build_serves_the_tuned_config_refitted_on_all_data(store: Store, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "artifacts")
    bundle = build_bundle(store, registry, search_rerank=False, tuning=TUNING)
    record = bundle.manifest["tuning"]
    assert record["model"] == "svd" and record["reused_from"] is None
    assert record["trials"] == 8 and record["store"] == store.url
    default = record["default_validation"]["svd"]
    assert record["validation"] > default + 0.05  # the tuned rank beats the default 20
    assert record["config"]["factors"] < 20
    # the bundle personalises with it, under its own name, recorded for the admin page
    assert bundle.engine.personalisation_model == "svd"
    assert bundle.manifest["models"]["svd"] == record["config"]
    assert bundle.manifest["metrics"]["tuning"]["ndcg@10"] == record["validation"]
    assert bundle.manifest["metrics"]["tuning"]["default_ndcg@10"] == default
    assert bundle.manifest["metrics"]["holdout"]["model"] == "svd"
    # refitted on ALL the interactions: the served factors are those of a fit on the store
    served = bundle.models["svd"]
    vocab = Vocabulary(bundle.items["item_id"].astype(str).tolist())
    full = build_interactions(store.interactions(), InteractionWeights(), items=vocab)
    assert full.nnz == N_USERS * PER_USER and served.n_items == full.n_items == N_ITEMS
    refit = create("svd", **record["config"]).fit(full)
    np.testing.assert_allclose(served.item_factors, refit.item_factors, atol=1e-5)
    partial = build_interactions(
        store.interactions().sample(frac=0.75, random_state=0), InteractionWeights(), items=vocab
    )
    other = create("svd", **record["config"]).fit(partial)
    assert not np.allclose(served.item_factors, other.item_factors, atol=1e-3)
    # a restart loads the same thing
    loaded = registry.get(bundle.version)
    assert loaded.manifest["engine"]["personalisation_model"] == "svd"


def test_second_build_reuses_the_choice_unless_retune(store: Store, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "artifacts")
    first = build_bundle(store, registry, search_rerank=False, tuning=TUNING)
    assert "tuning" in first.manifest["seconds"]
    second = build_bundle(store, registry, search_rerank=False, tuning=TUNING)
    record = second.manifest["tuning"]
    assert record["reused_from"] == first.version
    assert record["config"] == first.manifest["tuning"]["config"]
    assert "tuning" not in second.manifest["seconds"]  # no study ran
    assert second.engine.personalisation_model == "svd"
    third = build_bundle(store, registry, search_rerank=False, tuning=TUNING)
    assert third.manifest["tuning"]["reused_from"] == first.version  # the origin, not second
    registry.derive(first.version)  # a derived bundle (a promotion) copies the record
    derived = build_bundle(store, registry, search_rerank=False, tuning=TUNING)
    assert derived.manifest["tuning"]["reused_from"] == first.version
    again = build_bundle(store, registry, search_rerank=False, tuning=TUNING, retune=True)
    assert again.manifest["tuning"]["reused_from"] is None
    assert "tuning" in again.manifest["seconds"]
    # another search (auto over other candidates) is not the same choice: it tunes
    other = TUNING.model_copy(update={"build_model": "auto", "build_candidates": ("itemknn",)})
    fourth = build_bundle(store, registry, search_rerank=False, tuning=other)
    assert fourth.manifest["tuning"]["reused_from"] is None
    assert fourth.manifest["tuning"]["model"] == "itemknn"


def test_no_budget_builds_the_defaults(store: Store, tmp_path: Path) -> None:
    bundle = build_bundle(
        store, tmp_path / "artifacts", search_rerank=False, tuning=TuningSettings()
    )
    assert bundle.manifest["tuning"] is None
    assert bundle.engine.personalisation_model == "itemknn"
    assert "tuning" not in bundle.manifest["metrics"]


def test_unknown_build_model_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    bad = TUNING.model_copy(update={"build_model": "nosuch"})
    with pytest.raises(ConfigError, match="unknown model 'nosuch'"):
        build_bundle(store, tmp_path / "artifacts", search_rerank=False, tuning=bad)
    assert Registry(tmp_path / "artifacts").versions() == []  # nothing half written


def test_settings_carry_the_build_tuning_to_child_processes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings().with_(
        tuning={"build_budget_seconds": 30, "build_candidates": ["ease", "itemknn"]}
    )
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    again = Settings()
    assert again.tuning.build_budget_seconds == 30
    assert again.tuning.build_candidates == ("ease", "itemknn")
    assert TuningSettings().build_budget_seconds == 0  # the library and `shelfwise build`
    assert TuningSettings().demo_budget_seconds == 180  # `shelfwise demo`


def test_cli_build_tunes_then_reuses_then_retunes(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from shelfwise.cli import main

    url = store.url
    store.close()  # the command opens the store file itself
    monkeypatch.setenv("SHELFWISE_TUNING__TRIALS", "3")
    monkeypatch.setenv("SHELFWISE_TUNING__BUILD_MODEL", "svd")
    base = ["build", "--store", url, "--artifacts", str(tmp_path / "reg")]
    assert main([*base, "--tune-budget", "60"]) == 0
    assert "personalisation: svd" in capsys.readouterr().out
    assert main([*base, "--tune-budget", "60", "--rebuild"]) == 0
    assert "(reused from v0001;" in capsys.readouterr().out
    assert main([*base, "--tune-budget", "60", "--retune"]) == 0
    out = capsys.readouterr().out
    assert "(tuned;" in out and "3 trials" in out
    assert main([*base]) == 0  # no budget: the store has not changed, the bundle is reused
    assert "up to date" in capsys.readouterr().out
    assert main([*base, "--tune-budget", "-1"]) == 2
    assert "--tune-budget must be >= 0 seconds, got -1" in capsys.readouterr().err


def test_a_train_job_keeps_the_tuned_model(store: Store, tmp_path: Path) -> None:
    """The train job's child rebuilds with the served bundle's models and roles: a tuned
    personalisation model stays the one personalising (and is refitted, not tuned again)."""
    import json

    from shelfwise.serve.jobs import _train_child

    registry = Registry(tmp_path / "artifacts")
    served = build_bundle(store, registry, search_rerank=False, tuning=TUNING)
    path = store.url.removeprefix("duckdb:///")
    store.close()
    out = tmp_path / "result.json"
    _train_child(
        f"duckdb:///{path}", str(registry.root), (served.fingerprint, served.manifest["store"]),
        served.engine.model_dump(mode="json"), None, False, None, served.manifest["models"],
        str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())["result"]
    manifest = registry.get(result["version"]).manifest
    assert manifest["engine"]["personalisation_model"] == "svd"
    assert manifest["models"]["svd"] == served.manifest["tuning"]["config"]
    assert manifest["metrics"]["holdout"]["model"] == "svd"
