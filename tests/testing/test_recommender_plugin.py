"""A plugin author's path through the recommender contract: a tiny third-party recommender
defined here passes it, and deliberately broken ones fail exactly the contract tests that
cover what they break (run in a pytest subprocess, read back from its JUnit XML)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import shelfwise
from shelfwise.recommenders import Popularity, Recommender, available, create
from shelfwise.recommenders.base import ModelConfig, as_csr
from shelfwise.testing import RecommenderContract, registered
from shelfwise.types import Results


class CooccurrenceConfig(ModelConfig):
    """`normalise`: cosine of the item columns instead of raw co-occurrence counts."""

    normalise: bool = True

    @classmethod
    def search_space(cls, trial: Any) -> CooccurrenceConfig:
        """Either scoring, from an Optuna trial."""
        return cls(normalise=trial.suggest_categorical("normalise", [False, True]))


class Cooccurrence(Recommender):
    """Items scored by how often they co-occur with the history's items (a third party's
    model: it knows shelfwise only through `Recommender`, `ModelConfig` and `as_csr`)."""

    name = "test-cooccurrence"
    Config = CooccurrenceConfig
    config: CooccurrenceConfig

    def __init__(self, config: CooccurrenceConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.similarity = np.zeros((0, 0), dtype=np.float32)

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> Cooccurrence:
        """Item x item co-occurrence of the binarised matrix, the diagonal zeroed."""
        x = (as_csr(interactions) > 0).astype(np.float32)
        sim = np.asarray((x.T @ x).toarray(), dtype=np.float64)
        if self.config.normalise:
            norms = np.sqrt(np.diag(sim))
            norms[norms == 0] = 1.0
            sim = sim / np.outer(norms, norms)
        np.fill_diagonal(sim, 0.0)
        self.similarity = sim.astype(np.float32)
        self.n_items = x.shape[1]
        return self

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """History rows times the similarity matrix."""
        self._check_fitted()
        return np.asarray(sp.csr_matrix(histories, dtype=np.float32) @ self.similarity)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"similarity": self.similarity}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self.similarity = arrays["similarity"].astype(np.float32)


class LeaksSeen(Cooccurrence):
    """Broken: recommends seen items whatever `exclude_seen` says."""

    name = "test-leaks-seen"

    def recommend(
        self,
        history: Sequence[int] | np.ndarray,
        k: int = 10,
        exclude_seen: bool = True,
        candidates: Sequence[int] | np.ndarray | None = None,
        weights: Sequence[float] | np.ndarray | None = None,
        exclude: Sequence[int] | np.ndarray | None = None,
        user: int | None = None,
    ) -> Results:
        return super().recommend(history, k, False, candidates, weights, exclude, user)


class ForgetsTheBatch(Cooccurrence):
    """Broken: scores only the first history row of a batch (wrong shape)."""

    name = "test-forgets-the-batch"

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        return super().score(sp.csr_matrix(histories)[:1], users)


# -- the plugin author's path: register, subclass, provide the fixture, run pytest ----------


@pytest.fixture(scope="module", autouse=True)
def _cooccurrence_registered() -> Iterator[None]:
    with registered(Cooccurrence):
        yield


class TestCooccurrenceContract(RecommenderContract):
    """The third-party model passes the whole contract."""

    @pytest.fixture()
    def model_name(self) -> str:
        return Cooccurrence.name


def test_registered_only_inside_the_block() -> None:
    # inside this module the autouse fixture holds Cooccurrence registered
    assert Cooccurrence.name in available()
    with registered(LeaksSeen):
        assert isinstance(create(LeaksSeen.name), LeaksSeen)
    assert LeaksSeen.name not in available()


def test_registered_restores_a_shipped_model_it_shadowed() -> None:
    class Impostor(Cooccurrence):
        name = "popularity"

    with registered(Impostor):
        assert type(create("popularity")) is Impostor
    assert type(create("popularity")) is Popularity


# -- broken models fail the contract tests that cover what they break ----------------------

_BROKEN_MODULE = """
import importlib.util

import pytest

from shelfwise.testing import RecommenderContract, registered

_spec = importlib.util.spec_from_file_location("plugin_models", {path!r})
plugin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin)


@pytest.fixture(scope="module", autouse=True)
def _broken_registered():
    with registered(plugin.LeaksSeen), registered(plugin.ForgetsTheBatch):
        yield


class TestLeaksSeen(RecommenderContract):
    @pytest.fixture()
    def model_name(self):
        return plugin.LeaksSeen.name


class TestForgetsTheBatch(RecommenderContract):
    @pytest.fixture()
    def model_name(self):
        return plugin.ForgetsTheBatch.name
"""


@pytest.fixture(scope="module")
def broken_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    """{class: {test: "passed" | "failed" | "skipped"}} of the contract run on the broken
    models in a fresh pytest process."""
    root = tmp_path_factory.mktemp("broken-plugin")
    (root / "pytest.ini").write_text("[pytest]\n")  # its own rootdir: no repository conftest
    test_file = root / "test_broken_plugin.py"
    test_file.write_text(textwrap.dedent(_BROKEN_MODULE.format(path=str(Path(__file__)))))
    report = root / "report.xml"
    env = dict(os.environ)
    # the shelfwise this process imported, whether installed or from PYTHONPATH=src
    src = str(Path(shelfwise.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-c", str(root / "pytest.ini"), f"--junitxml={report}", str(test_file)]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert report.is_file(), f"pytest wrote no report (rc {result.returncode}):\n{result.stdout}"
    assert result.returncode == 1, f"expected failures (rc 1):\n{result.stdout[-3000:]}"
    outcomes: dict[str, dict[str, str]] = {}
    for case in ET.parse(report).iter("testcase"):
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        tags = {child.tag for child in case}
        state = "failed" if tags & {"failure", "error"} else "skipped" if "skipped" in tags else ""
        outcomes.setdefault(cls, {})[case.get("name", "")] = state or "passed"
    return outcomes


def failed(outcomes: dict[str, str]) -> set[str]:
    """The names of the failed tests."""
    return {name for name, state in outcomes.items() if state == "failed"}


def test_leaking_seen_items_fails_the_seen_item_tests(
    broken_outcomes: dict[str, dict[str, str]],
) -> None:
    outcomes = broken_outcomes["TestLeaksSeen"]
    # test_history_gets_its_own_group still passes: a seen item co-occurs with two of the
    # three history items (its own similarity is 0), an unseen one with all three, so the
    # leaked items rank below the top 5
    assert failed(outcomes) == {
        "test_exclude_seen",
        "test_candidates_restrict",
        "test_exclude_list",
        # the batch path excludes seen items, so one row alone no longer agrees with it
        "test_batch_equals_single[False]",
        "test_batch_equals_single[True]",
    }
    # what does not depend on recommend's seen-item handling still passes
    for name in ("test_score_shape_and_finite", "test_save_load_roundtrip", "test_bad_config"):
        assert outcomes[name] == "passed", name


def test_scoring_one_row_fails_the_shape_and_batch_tests(
    broken_outcomes: dict[str, dict[str, str]],
) -> None:
    outcomes = broken_outcomes["TestForgetsTheBatch"]
    assert failed(outcomes) == {
        "test_score_shape_and_finite",
        "test_batch_equals_single[False]",
        "test_batch_equals_single[True]",
        "test_batch_shape_and_padding",
        "test_unknown_user_empty_history",
    }
    # one history at a time is still answered correctly
    for name in ("test_exclude_seen", "test_candidates_restrict", "test_similar_items"):
        assert outcomes[name] == "passed", name


def test_import_shelfwise_does_not_import_the_contracts() -> None:
    # the contracts need pytest, a dev dependency; the package must work without it
    code = (
        "import sys, shelfwise; "
        "print(sorted(m for m in sys.modules "
        "if m == 'pytest' or m.startswith('shelfwise.testing')))"
    )
    env = dict(os.environ)
    src = str(Path(shelfwise.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
