"""The registry: versions, activation, roll back, derived bundles, loading, best.toml, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.artifacts.registry import Registry, config_toml
from shelfwise.config_params import load_config
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, UnknownIdError
from shelfwise.recommenders import Recommender, create


def _fitted(l2: float) -> Recommender:
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32))
    return create("ease", l2=l2).fit(x)


def test_versions_activate_and_load(tmp_path: Path) -> None:
    store = Registry(tmp_path)
    assert store.versions() == [] and store.active() is None
    items = Vocabulary(["a", "b", "c"], name="item_id")
    v1 = store.save_model(_fitted(1.0), {"validation": {"ndcg@10": 0.3}}, dataset="toy",
                            items=items)  # fmt: skip
    v2 = store.save_model(_fitted(5.0), {"validation": {"ndcg@10": 0.4}}, activate=True)
    assert (v1, v2) == ("v0001", "v0002")
    assert [v.version for v in store.versions()] == ["v0001", "v0002"]
    active = store.active()
    assert active is not None and active.version == "v0002" and active.active
    assert active.metrics == {"validation": {"ndcg@10": 0.4}}
    assert store.get("v0001").dataset == "toy" and not store.get("v0001").active
    assert store.load_model().config.l2 == 5.0  # type: ignore[attr-defined]
    store.activate("v0001")
    loaded = store.load_model()
    assert loaded.config.l2 == 1.0  # type: ignore[attr-defined]
    row = sp.csr_matrix([[1, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(loaded.score(row), _fitted(1.0).score(row))
    assert store.vocabulary("v0001") == items and store.vocabulary("v0002") is None
    info = store.get("v0001").to_dict()
    assert json.loads(json.dumps(info))["version"] == "v0001"


def test_best_toml_reads_back_as_a_config_file(tmp_path: Path) -> None:
    store = Registry(tmp_path)
    version = store.save_model(_fitted(7.5), {}, dataset="toy")
    assert load_config(store.path(version) / "best.toml") == {
        "ease": {"l2": 7.5, "max_items": 50000}
    }
    text = config_toml("x", {"a": 1, "b": [1, 2], "c": 'q"s', "d": None, "e": True, "f": 0.5})
    assert 'c = "q\\"s"' in text and "d =" not in text and "e = true" in text


def test_unknown_versions_and_nothing_half_written(tmp_path: Path) -> None:
    store = Registry(tmp_path)
    with pytest.raises(UnknownIdError, match="none yet"):
        store.activate("v0009")
    with pytest.raises(UnknownIdError, match="no tuned model is served"):
        store.load_model()
    unfitted = create("ease")
    with pytest.raises(Exception):  # noqa: B017 - whatever save raises, nothing is left
        store.save_model(unfitted, {})
    assert store.versions() == []
    assert not [p for p in (tmp_path / "versions").iterdir()]
    store.save_model(_fitted(1.0), {})
    with pytest.raises(UnknownIdError, match="v0001"):
        store.get("../etc")


def _bundle(store: Registry, tag: str) -> str:
    with store.draft("bundle") as draft:
        (draft.path / "models").mkdir()
        (draft.path / "models" / "weights.bin").write_bytes(tag.encode())
        draft.manifest = {"counts": {"items": 3}, "metrics": {"seconds": {"total": 1.0}}}
    return draft.version


def test_bundles_and_models_share_one_sequence_and_one_pointer(tmp_path: Path) -> None:
    store = Registry(tmp_path)
    b1 = _bundle(store, "one")
    m2 = store.save_model(_fitted(2.0), {"validation": {"ndcg@10": 0.2}})
    assert (b1, m2) == ("v0001", "v0002")
    assert [v.version for v in store.versions("bundle")] == ["v0001"]
    assert [v.version for v in store.versions("model")] == ["v0002"]
    assert store.get(b1).manifest["version"] == b1 and store.get(b1).kind == "bundle"
    assert store.active() is None and store.champion() is None
    store.activate(b1)
    # promoting a tuned model over the served bundle writes a derived bundle naming it
    served = store.promote(m2)
    assert served.kind == "bundle" and served.version == "v0003"
    assert served.parent == b1 and served.serving_model == m2
    assert (served.path / "models" / "weights.bin").read_bytes() == b"one"
    assert (served.path / "models" / "weights.bin").stat().st_ino == (
        store.path(b1) / "models" / "weights.bin"
    ).stat().st_ino  # hard-linked, not copied
    assert store.champion() is not None and store.champion().version == m2  # type: ignore[union-attr]
    assert store.get(m2).active and store.get("v0003").active and not store.get(b1).active
    # a second model is derived from the original bundle, not from the derived one
    m4 = store.save_model(_fitted(4.0), {}, activate=True)
    active = store.active()
    assert active is not None and active.parent == b1 and active.serving_model == m4
    # roll back walks the activations back
    assert store.rollback().version == "v0003"
    assert store.rollback().version == b1
    with pytest.raises(ConfigError, match="nothing to roll back"):
        store.rollback()


def test_a_failed_draft_leaves_nothing(tmp_path: Path) -> None:
    store = Registry(tmp_path)
    with pytest.raises(RuntimeError), store.draft("bundle") as draft:
        (draft.path / "half.bin").write_bytes(b"x")
        raise RuntimeError("build failed")
    assert store.versions() == [] and not list((tmp_path / "versions").iterdir())
    with pytest.raises(ConfigError, match="unknown version kind"), store.draft("other"):
        pass
    # a model promoted with no bundle served is served itself
    version = store.save_model(_fitted(1.0), {}, activate=True)
    assert store.active() is not None and store.active().kind == "model"  # type: ignore[union-attr]
    assert store.champion() is not None and store.champion().version == version  # type: ignore[union-attr]
