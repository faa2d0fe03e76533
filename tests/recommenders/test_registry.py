"""The lazy model registry: listing, creating and using the classic models never imports
torch (checked in fresh interpreters, since this test process may hold torch already)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import shelfwise
import shelfwise.recommenders as recommenders
from shelfwise.errors import ConfigError
from shelfwise.recommenders import MODELS, available, create, model_class, needs_torch
from shelfwise.recommenders.base import ModelConfig, Recommender, register

SRC = str(Path(shelfwise.__file__).resolve().parents[1])
TORCH_FREE = [name for name in available() if not needs_torch(name)]


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` in a fresh interpreter importing this checkout's shelfwise."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_the_table_declares_which_models_need_torch() -> None:
    torch_models = {name for name, entry in MODELS.items() if entry.torch}
    assert torch_models == {"bprmf", "caser", "embedding", "gru4rec", "sasrec"}
    assert set(TORCH_FREE) == set(MODELS) - torch_models


def test_import_loads_no_model_and_no_torch() -> None:
    done = run_python(
        """
        import sys
        import shelfwise, shelfwise.recommenders as r
        r.available()
        loaded = sorted(m for m in sys.modules if m.startswith("shelfwise.recommenders."))
        assert loaded == ["shelfwise.recommenders.base", "shelfwise.recommenders.space"], loaded
        assert "torch" not in sys.modules
        """
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", TORCH_FREE)
def test_creating_a_classic_model_does_not_import_torch(name: str) -> None:
    done = run_python(
        f"import sys, shelfwise.recommenders as r; r.create({name!r}); "
        "assert 'torch' not in sys.modules"
    )
    assert done.returncode == 0, done.stderr


def test_fitting_and_scoring_the_classic_models_does_not_import_torch() -> None:
    """fit, recommend, similar_items, save and load_model of every torch-free model."""
    done = run_python(
        f"""
        import sys, tempfile
        from pathlib import Path
        import numpy as np, pandas as pd, scipy.sparse as sp
        import shelfwise.recommenders as r

        x = sp.csr_matrix(np.kron(np.eye(2), np.ones((3, 3))), dtype=np.float32)
        x[0, 0] = 0.0
        x.eliminate_zeros()
        texts = ["steel chef knife", "paring knife steel", "bread knife",
                 "wireless headphones", "earbuds wireless", "studio headphones"]
        items = pd.DataFrame({{
            "item_id": [f"i{{i}}" for i in range(6)], "title": texts,
            "description": [""] * 6, "category": ["Home"] * 3 + ["Audio"] * 3,
            "brand": [""] * 6, "attributes": [{{}}] * 6,
        }})
        params = {{"svd": {{"factors": 2}}, "als": {{"factors": 2, "iterations": 2}},
                   "bpr": {{"factors": 2, "iterations": 2}}, "lsa": {{"n_components": 2}},
                   "lda": {{"n_topics": 2, "max_iter": 2}}}}
        for name in {TORCH_FREE!r}:
            model = r.create(name, **params.get(name, {{}})).fit(x, items)
            assert model.recommend([1], k=2).ids.shape == (2,), name
            with tempfile.TemporaryDirectory() as tmp:
                model.save(Path(tmp))
                again = r.load_model(Path(tmp))
            np.testing.assert_allclose(again.score(x[:2]), model.score(x[:2]), rtol=1e-5)
            assert "torch" not in sys.modules, f"{{name}} imported torch"
        """
    )
    assert done.returncode == 0, done.stderr


def test_classes_by_name_are_the_registered_ones() -> None:
    from shelfwise.recommenders import ItemKNN

    assert ItemKNN is model_class("itemknn") is type(create("itemknn"))
    for name, entry in MODELS.items():
        if not entry.torch:
            cls = getattr(recommenders, entry.class_name)
            assert (cls.name, cls.__name__, cls.__module__) == (
                name,
                entry.class_name,
                entry.module,
            )
    with pytest.raises(AttributeError, match="NoSuchModel"):
        _ = recommenders.NoSuchModel  # type: ignore[attr-defined]


def test_unknown_names_list_the_models() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'; choose one of als, bpr"):
        create("nope")
    with pytest.raises(ConfigError, match="unknown model"):
        needs_torch("nope")


def test_registered_classes_join_the_built_ins() -> None:
    class EchoConfig(ModelConfig):
        pass

    class Echo(Recommender):
        name = "echo-test"
        Config = EchoConfig

    register(Echo)
    try:
        assert "echo-test" in available() and model_class("echo-test") is Echo
        assert needs_torch("echo-test") is False
    finally:
        from shelfwise.recommenders import base

        base._REGISTRY.pop("echo-test")
