"""`tune_dataset` saves (and promotes) the winner refitted on all the data set's interactions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shelfwise.artifacts.registry import Registry
from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.recommenders import create
from shelfwise.tuning.run import tune_dataset
from shelfwise.tuning.tuner import TuneSettings

from .conftest import N_USERS, PER_USER, block_events


def test_promoted_model_is_fitted_on_every_interaction(block_store: Path, tmp_path: Path) -> None:
    settings = TuneSettings(model="ease", n_trials=2, sampler="random")
    run = tune_dataset(str(block_store), settings, tmp_path / "models")
    assert run.decision is not None and run.decision.promoted
    registry = Registry(tmp_path / "models")
    info = registry.get(str(run.result.version))
    assert info.extra["fitted_on"] == {"part": "all", "interactions": N_USERS * PER_USER}
    served = registry.load_model(info.version)
    vocab = registry.vocabulary(info.version, "items")
    users = registry.vocabulary(info.version, "users")
    assert vocab is not None and users is not None
    full = build_interactions(
        block_events(), InteractionWeights(binary=True), users=users, items=vocab
    )
    assert full.nnz == N_USERS * PER_USER
    expected = create("ease", **info.config).fit(full.matrix)
    np.testing.assert_allclose(served.weights, expected.weights, atol=1e-5)  # type: ignore[attr-defined]
    # not the model scored on test (fitted without the test part)
    assert not np.allclose(served.weights, run.tuned.model.weights, atol=1e-4)  # type: ignore[attr-defined]
