"""ModelStore: versions, activation, loading, best.toml and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shelfwise.config_params import load_config
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import UnknownIdError
from shelfwise.modelstore import ModelStore, config_toml
from shelfwise.recommenders import Recommender, create


def _fitted(l2: float) -> Recommender:
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32))
    return create("ease", l2=l2).fit(x)


def test_versions_activate_and_load(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    assert store.versions() == [] and store.active() is None
    items = Vocabulary(["a", "b", "c"], name="item_id")
    v1 = store.save_version(_fitted(1.0), {"validation": {"ndcg@10": 0.3}}, dataset="toy",
                            items=items)  # fmt: skip
    v2 = store.save_version(_fitted(5.0), {"validation": {"ndcg@10": 0.4}}, activate=True)
    assert (v1, v2) == ("v0001", "v0002")
    assert [v.version for v in store.versions()] == ["v0001", "v0002"]
    active = store.active()
    assert active is not None and active.version == "v0002" and active.active
    assert active.metrics == {"validation": {"ndcg@10": 0.4}}
    assert store.get("v0001").dataset == "toy" and not store.get("v0001").active
    assert store.load().config.l2 == 5.0  # type: ignore[attr-defined]
    store.activate("v0001")
    loaded = store.load()
    assert loaded.config.l2 == 1.0  # type: ignore[attr-defined]
    row = sp.csr_matrix([[1, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(loaded.score(row), _fitted(1.0).score(row))
    assert store.vocabulary("v0001") == items and store.vocabulary("v0002") is None
    info = store.get("v0001").to_dict()
    assert json.loads(json.dumps(info))["version"] == "v0001"


def test_best_toml_reads_back_as_a_config_file(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    version = store.save_version(_fitted(7.5), {}, dataset="toy")
    assert load_config(store.path(version) / "best.toml") == {
        "ease": {"l2": 7.5, "max_items": 50000}
    }
    text = config_toml("x", {"a": 1, "b": [1, 2], "c": 'q"s', "d": None, "e": True, "f": 0.5})
    assert 'c = "q\\"s"' in text and "d =" not in text and "e = true" in text


def test_unknown_versions_and_nothing_half_written(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(UnknownIdError, match="none yet"):
        store.activate("v0009")
    with pytest.raises(UnknownIdError, match="no active model"):
        store.load()
    unfitted = create("ease")
    with pytest.raises(Exception):  # noqa: B017 - whatever save raises, nothing is left
        store.save_version(unfitted, {})
    assert store.versions() == []
    assert not [p for p in (tmp_path / "versions").iterdir()]
    store.save_version(_fitted(1.0), {})
    with pytest.raises(UnknownIdError, match="v0001"):
        store.get("../etc")
