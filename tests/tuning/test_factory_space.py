"""Samplers, pruners and storages by name; search-space replay and grid enumeration."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, ClassVar

import optuna
import pytest

from shelfwise.errors import ConfigError
from shelfwise.recommenders import ModelConfig, create
from shelfwise.recommenders.space import Choice, FloatRange, IntRange, SearchSpace, when
from shelfwise.tuning.factory import PRUNERS, SAMPLERS, make_pruner, make_sampler, open_storage
from shelfwise.tuning.objective import parse_metric, planned_epochs
from shelfwise.tuning.space import (
    PointListSampler,
    config_from_params,
    declared_space,
    default_params,
    distribution,
    enumerate_space,
    grid_points,
    numeric_points,
    pinned_config,
    search_space,
    space_points,
)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("tpe", optuna.samplers.TPESampler),
        ("random", optuna.samplers.RandomSampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("grid", PointListSampler),
    ],
)
def test_samplers_by_name(name: str, cls: type) -> None:
    sampler = make_sampler(name, seed=1, grid=[{"l2": 1.0}])
    assert isinstance(sampler, cls)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("none", optuna.pruners.NopPruner),
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
    ],
)
def test_pruners_by_name(name: str, cls: type) -> None:
    assert isinstance(make_pruner(name), cls)


def test_bad_names_list_the_choices() -> None:
    with pytest.raises(ConfigError) as exc:
        make_sampler("bayes")
    assert all(s in str(exc.value) for s in SAMPLERS)
    with pytest.raises(ConfigError) as exc:
        make_pruner("asha")
    assert all(p in str(exc.value) for p in PRUNERS)
    with pytest.raises(ConfigError, match="grid points"):
        make_sampler("grid")
    with pytest.raises(ConfigError, match="ndcg@K"):
        parse_metric("auc")
    with pytest.raises(ConfigError, match="positive integer"):
        parse_metric("ndcg@0")
    assert parse_metric("NDCG@5") == ("ndcg", 5)


def test_storage_journal_file_and_bad_url(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "s.journal"
    storage = open_storage(path)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    assert len(again.trials) == 2 and path.exists()
    with pytest.raises(ConfigError, match="postgresql"):
        open_storage("redis://localhost/0")


def test_numeric_points() -> None:
    assert numeric_points(1, 3, 5, False, 1, True) == [1, 2, 3]  # small int range: all
    assert numeric_points(10, 1000, 3, True, None, False) == [10.0, 100.0, 1000.0]
    assert numeric_points(0.0, 1.0, 3, False, None, False) == [0.0, 0.5, 1.0]
    pts = numeric_points(16, 256, 4, True, 1, True)
    assert pts[0] == 16 and pts[-1] == 256 and len(pts) == 4


def test_grid_walks_conditional_branches_without_duplicates() -> None:
    def space(trial: Any) -> Any:  # a: 2 choices; b only when a == "x"; c always
        a = trial.suggest_categorical("a", ["x", "y"])
        b = trial.suggest_int("b", 1, 3) if a == "x" else None
        c = trial.suggest_float("c", 0.0, 1.0)
        return a, b, c

    pts = enumerate_space(space, n_numeric=3)
    assert len(pts) == 3 * 3 + 3  # a=x: b (3) x c (3); a=y: c (3)
    assert {tuple(sorted(p.items())) for p in pts}.__len__() == len(pts)
    assert all(("b" in p) == (p["a"] == "x") for p in pts)


def test_model_grids_and_defaults() -> None:
    knn = grid_points("itemknn", 4)
    # neighbors x shrink x (none, tfidf, 4 x bm25_b)
    assert len(knn) == 4 * 4 * 6
    assert all(("bm25_b" in p) == (p["weighting"] == "bm25") for p in knn)
    assert len(grid_points("ease", 5)) == 5
    assert default_params("ease") == {"l2": 500.0}
    assert default_params("als", "als.") == {
        "als.factors": 32, "als.regularization": 10.0, "als.alpha": 2.0, "als.iterations": 15
    }  # fmt: skip
    with pytest.raises(ConfigError, match="no search space"):
        grid_points("popularity")


def test_config_from_params_replays_the_space() -> None:
    params = {"als.factors": 20, "als.regularization": 0.5, "als.alpha": 3.0, "als.iterations": 7}
    cfg = config_from_params("als", params, prefix="als.")
    assert (cfg.factors, cfg.iterations) == (20, 7)  # type: ignore[attr-defined]
    assert planned_epochs(create("als", **cfg.model_dump())) == 7
    assert planned_epochs(create("ease")) == 1


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "caser", "bprmf"])
def test_deep_models_search_their_training_options(model: str) -> None:
    """Optimiser, learning rate, schedule, weight decay and batch size are searched for every
    torch model, and its default configuration is a point of the space (queued first)."""
    defaults = default_params(model)
    assert defaults is not None
    assert {"optimizer", "lr", "schedule", "weight_decay", "batch_size"} <= set(defaults)
    cfg = create(model).config
    assert defaults["lr"] == cfg.lr and defaults["weight_decay"] == cfg.weight_decay  # type: ignore[attr-defined]
    warm = config_from_params(
        model, {**defaults, "schedule": "warmup_cosine", "warmup_epochs": 2, "optimizer": "adamw"}
    )
    assert (warm.schedule, warm.warmup_epochs, warm.optimizer) == ("warmup_cosine", 2, "adamw")  # type: ignore[attr-defined]
    # warm-up epochs are asked for warm-up schedules only (a FixedTrial fails on a missing
    # parameter that is asked for)
    assert "warmup_epochs" not in defaults
    with pytest.raises(ConfigError, match="warmup_epochs"):
        config_from_params(model, {**defaults, "schedule": "warmup_cosine"})


def test_sasrec_does_not_search_its_dominated_loss() -> None:
    """SASRec trains with full softmax (`ce`) in every trial; `bce` only when pinned."""
    defaults = default_params("sasrec")
    assert defaults is not None and "loss" not in defaults
    assert config_from_params("sasrec", defaults).loss == "ce"  # type: ignore[attr-defined]
    bce = pinned_config("sasrec", config_from_params("sasrec", defaults), {"loss": "bce"})
    assert bce.loss == "bce"  # type: ignore[attr-defined]


# -- search spaces as data -----------------------------------------------------------------------
def _crc_value(params: dict[str, Any]) -> float:
    """A deterministic objective value of a trial's params (TPE needs values to model)."""
    return zlib.crc32(repr(sorted((k, repr(v)) for k, v in params.items())).encode()) / 2**32


def _seeded_study(model: str, n_trials: int) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=make_sampler("tpe", seed=7), direction="maximize")
    space = search_space(model)

    def objective(trial: optuna.Trial) -> float:
        space(trial)
        return _crc_value(trial.params)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=n_trials)
    return [t.params for t in study.trials]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            "itemknn",
            [
                {"bm25_b": 0.23198226423069995, "neighbors": 62, "shrink": 73.76802492460303,
                 "weighting": "bm25"},
                {"neighbors": 406, "shrink": 12.1407286265296, "weighting": "tfidf"},
                {"neighbors": 126, "shrink": 0.6369350175601087, "weighting": "tfidf"},
            ],
        ),
        (
            "trending",
            [
                {"by_category": True, "category_boost": 0.10493708018134983,
                 "half_life_days": 1.2434330697051696},
                {"by_category": True, "category_boost": 25.136863807033397,
                 "half_life_days": 4.191866573445254},
                {"by_category": False, "half_life_days": 235.86242052038827},
            ],
        ),
    ],
)  # fmt: skip
def test_seeded_tpe_draws_what_the_define_by_run_spaces_drew(
    model: str, expected: list[dict[str, Any]]
) -> None:
    """Trials 5-7 of a seeded TPE study (past its 5 random start-up trials), recorded with
    the search spaces as they were written before they became data: the sampler sees the
    same distributions in the same order, so a seeded study repeats."""
    got = _seeded_study(model, 8)[5:]
    assert [sorted(p) for p in got] == [sorted(p) for p in expected]
    for g, e in zip(got, expected, strict=True):
        for name, value in e.items():
            assert g[name] == (pytest.approx(value, rel=1e-9) if type(value) is float else value)


@pytest.mark.parametrize("model", ["itemknn", "trending", "hybrid", "lsa", "ease", "sasrec"])
def test_trials_record_the_declared_distributions_in_order(model: str) -> None:
    space = declared_space(model)
    assert space is not None
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(lambda t: _crc_value(search_space(model)(t).model_dump()), n_trials=12)
    for trial in study.trials:
        drawn: dict[str, Any] = {}
        for name, param in space.items():
            if param.active(drawn):
                drawn[name] = trial.params[name]
        assert list(trial.distributions) == list(drawn)  # asked in declaration order
        assert trial.distributions == {name: distribution(space[name]) for name in drawn}


def test_defaults_are_read_from_the_space() -> None:
    # a pinned value decides the conditions: bm25 asks for bm25_b, pinned fields are left out
    assert default_params("itemknn", "itemknn.", {"weighting": "bm25"}) == {
        "itemknn.neighbors": 100, "itemknn.shrink": 10.0, "itemknn.bm25_b": 0.8
    }  # fmt: skip
    assert default_params("trending") == {"by_category": False, "half_life_days": 7.0}
    assert default_params("trending", pinned={"by_category": True}) == {
        "category_boost": 4.0, "half_life_days": 7.0
    }  # fmt: skip
    assert default_params("tfidf") is None  # ngram_max is no field: the default is not a point
    assert default_params("ease", pinned={"l2": 30.0}) == {}
    assert default_params("ease", pinned={"max_items": 10}) == {"l2": 500.0}
    assert default_params("hybrid") == {"method": "weighted", "normalise": "minmax"}


def test_grid_of_a_space_skips_inactive_parameters_and_pins() -> None:
    space = {
        "a": Choice(("x", "y")),
        "b": IntRange(1, 3, when=when("a", "x")),
        "c": FloatRange(0.0, 1.0),
    }
    pts = space_points(space, n_numeric=3)
    assert len(pts) == 3 * 3 + 3  # a=x: b (3) x c (3); a=y: c (3)
    assert pts[0] == {"a": "x", "b": 1, "c": 0.0} and pts[-1] == {"a": "y", "c": 1.0}
    assert space_points(space, 2, prefix="m.", pinned={"a": "y"}) == [{"m.c": 0.0}, {"m.c": 1.0}]
    assert len(space_points(space, 2, pinned={"a": "x"})) == 2 * 2
    with pytest.raises(ConfigError, match="more than 5 points"):
        space_points(space, 3, limit=5)


def test_spaces_are_checked_when_the_config_class_is_made() -> None:
    with pytest.raises(ValueError, match="'b' depends on 'a', which must be an earlier"):

        class BadConfig(ModelConfig):
            b: int = 1
            a: str = "x"
            SEARCH_SPACE: ClassVar[SearchSpace] = {
                "b": IntRange(1, 3, when=when("a", "x")),
                "a": Choice(("x", "y")),
            }

    with pytest.raises(ValueError, match="log range"):
        FloatRange(0.0, 1.0, log=True)


def test_a_config_without_a_space_has_no_search_space_function() -> None:
    assert getattr(create("popularity").Config, "search_space", None) is None
    assert declared_space("popularity") is None
