"""`TreeEnsemble` scores exactly as LightGBM's own `Booster.predict` on the same text model."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from shelfwise.search.trees import TreeEnsemble


def _data(seed: int, n: int = 600, d: int = 6, nan_share: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 2] = np.round(x[:, 2])  # many exact zeros
    x[rng.random(size=x.shape) < nan_share] = np.nan
    return x


def _fit(params: dict[str, object], x: np.ndarray, y: np.ndarray, **kw: object) -> lgb.Booster:
    base = {"verbosity": -1, "num_threads": 1, "deterministic": True, "seed": 0}
    return lgb.train({**base, **params}, lgb.Dataset(x, label=y, **kw), num_boost_round=40)


def _same(booster: lgb.Booster, tmp_path, rows: np.ndarray) -> TreeEnsemble:
    path = tmp_path / "model.txt"
    booster.save_model(str(path))
    ours = TreeEnsemble.from_model_file(path)
    assert ours is not None
    theirs = lgb.Booster(model_file=str(path)).predict(rows)
    assert np.array_equal(ours.predict(rows), theirs)  # bit for bit, not approximately
    return ours


def test_lambdarank_with_missing_values_scores_as_lightgbm(tmp_path) -> None:
    x = _data(0)
    rng = np.random.default_rng(1)
    y = np.clip(np.nan_to_num(x[:, 0]) * 1.5 + rng.normal(size=len(x)), 0, 3).astype(int)
    booster = _fit({"objective": "lambdarank", "num_leaves": 15}, x, y, group=[20] * 30)
    ours = _same(booster, tmp_path, _data(7))  # other rows, NaNs included
    # the model file's own importances
    assert np.allclose(ours.feature_importance("gain"), booster.feature_importance("gain"))
    assert np.array_equal(ours.feature_importance("split"), booster.feature_importance("split"))
    assert ours.n_trees == booster.num_trees()


def test_zero_as_missing_and_single_leaf_trees(tmp_path) -> None:
    x = _data(2, nan_share=0.0)
    y = (np.nan_to_num(x[:, 2]) != 0).astype(float) + 0.1 * x[:, 1]
    booster = _fit({"objective": "regression", "zero_as_missing": True}, x, y)
    rows = _data(3, nan_share=0.05)
    rows[:50, 2] = 0.0
    _same(booster, tmp_path, rows)
    # a leaf needs more rows than there are: every tree is one leaf
    stump = _fit({"objective": "regression", "min_data_in_leaf": 10_000}, x, y)
    assert _same(stump, tmp_path, rows).feature.size == 0


def test_models_it_does_not_implement_are_left_to_lightgbm(tmp_path) -> None:
    x = _data(4, nan_share=0.0)
    y = (x[:, 0] > 0).astype(int)
    path = tmp_path / "binary.txt"
    _fit({"objective": "binary"}, x, y).save_model(str(path))  # a sigmoid on the output
    assert TreeEnsemble.from_model_file(path) is None
    cats = x.copy()
    cats[:, 3] = np.abs(np.round(cats[:, 3] * 3))
    path = tmp_path / "categorical.txt"
    _fit({"objective": "regression"}, cats, x[:, 3], categorical_feature=[3]).save_model(str(path))
    assert TreeEnsemble.from_model_file(path) is None
    ours = TreeEnsemble.from_model_file(_save(tmp_path, x))
    assert ours is not None
    with pytest.raises(ValueError, match="feature columns"):
        ours.predict(x[:, :3])


def _save(tmp_path, x: np.ndarray):
    path = tmp_path / "plain.txt"
    _fit({"objective": "regression"}, x, x[:, 0]).save_model(str(path))
    return path


def test_the_numpy_walk_is_asked_for_and_ends_with_its_block(tmp_path) -> None:
    from shelfwise.search.trees import load_booster, scoring_without_lightgbm

    path = _save(tmp_path, _data(5, nan_share=0.0))
    assert isinstance(load_booster(path), lgb.Booster)  # a server's default
    with scoring_without_lightgbm():
        assert isinstance(load_booster(path), TreeEnsemble)
        binary = tmp_path / "binary.txt"
        x = _data(6, nan_share=0.0)
        _fit({"objective": "binary"}, x, (x[:, 0] > 0).astype(int)).save_model(str(binary))
        assert isinstance(load_booster(binary), lgb.Booster)  # not implemented: LightGBM
    assert isinstance(load_booster(path), lgb.Booster)
