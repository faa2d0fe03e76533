"""Validation folds, pruning, resume and champion/challenger on small block data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import scipy.sparse as sp
from optuna.trial import TrialState

from shelfwise.artifacts.registry import Registry
from shelfwise.errors import ConfigError
from shelfwise.evaluation.protocols import ProtocolData, prepare
from shelfwise.tuning.data import cv_folds, validation_folds
from shelfwise.tuning.factory import open_storage
from shelfwise.tuning.promotion import challenge, decide, save_and_promote
from shelfwise.tuning.tuner import AUTO_MODELS, TuneSettings, tune

N_USERS_LOO = 80  # every block user has 8 events: one validation item each


def cells(m: sp.csr_matrix) -> set[tuple[int, int]]:
    coo = sp.coo_matrix(m)
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def test_holdout_fold_splits_train_only(holdout: ProtocolData) -> None:
    (fold,) = validation_folds(holdout)
    train, rel = cells(fold.train), cells(fold.relevance)
    assert train | rel == cells(holdout.train) and not train & rel
    assert not rel & cells(holdout.test)  # the test part is never looked at
    # 8 events a user: 6 in train (round(0.75 * 8)), of which round(0.75 * 6) = 4 stay for
    # fitting and 2 are validation (numpy rounds 4.5 to 4, as random_holdout documents)
    assert np.diff(fold.relevance.indptr).tolist() == [2] * 80
    assert set(fold.users.tolist()) == {u for u, _ in rel}


def test_loo_fold_is_the_validation_part(events: pd.DataFrame) -> None:
    data = prepare(events, "loo")
    (fold,) = validation_folds(data)
    assert cells(fold.relevance) == cells(data.validation)
    assert fold.train is data.train


def test_temporal_fold_is_older_than_its_validation(events: pd.DataFrame) -> None:
    data = prepare(events, "temporal")
    (fold,) = validation_folds(data, events)
    assert cells(fold.train) < cells(data.train)
    assert not cells(fold.relevance) & cells(fold.train)
    with pytest.raises(ConfigError, match="needs the events"):
        validation_folds(data)


def test_cv_folds_partition_the_training_cells(holdout: ProtocolData) -> None:
    folds = cv_folds(holdout.train, 3, seed=1)
    held = [cells(f.relevance) for f in folds]
    assert set().union(*held) == cells(holdout.train)
    assert sum(len(h) for h in held) == len(cells(holdout.train))  # disjoint
    for f, h in zip(folds, held, strict=True):
        assert cells(f.train) == cells(holdout.train) - h
    with pytest.raises(ConfigError, match="--cv"):
        cv_folds(holdout.train, 1)


def test_iterative_model_reports_epochs_and_gets_pruned(
    holdout: ProtocolData, tmp_path: Path
) -> None:
    settings = TuneSettings(model="als", n_trials=7, sampler="random", pruner="median")
    tuned = tune(holdout, settings, str(tmp_path / "s.journal"), "als", final=False)
    trials = tuned.study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [t.state for t in trials]
    for t in pruned:  # stopped before the epochs its config asked for, one report each
        assert t.last_step is not None and t.last_step < t.params["iterations"]
        assert sorted(t.intermediate_values) == list(range(1, t.last_step + 1))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    for t in complete:  # one report per epoch
        assert sorted(t.intermediate_values) == list(range(1, t.params["iterations"] + 1))
    assert tuned.result.n_pruned == len(pruned)
    # trial 0 is the default configuration, queued first
    assert trials[0].params == {"factors": 32, "regularization": 10.0, "alpha": 2.0,
                                "iterations": 15}  # fmt: skip


def test_interrupted_study_resumes_from_its_file(holdout: ProtocolData, tmp_path: Path) -> None:
    path = str(tmp_path / "resume.journal")
    settings = TuneSettings(model="ease", n_trials=3, sampler="random", pruner="none")
    first = tune(holdout, settings, path, "r", final=False)
    before = [(t.number, t.params) for t in first.study.trials]
    assert len(before) == 3
    # what a killed worker leaves behind: a trial that is RUNNING forever
    study = optuna.load_study(study_name="r", storage=open_storage(path))
    study.ask()
    resumed = tune(holdout, TuneSettings(**{**settings.__dict__, "n_trials": 6}), path, "r",
                   final=False)  # fmt: skip
    trials = resumed.study.trials
    assert [(t.number, t.params) for t in trials[:3]] == before
    assert trials[3].state == TrialState.FAIL  # the stale one
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6
    assert len({t.params["l2"] for t in complete}) == 6  # the resumed sampler moved on


def test_study_rejects_a_different_task(holdout: ProtocolData, tmp_path: Path) -> None:
    path = str(tmp_path / "x.journal")
    tune(holdout, TuneSettings(model="ease", n_trials=1, pruner="none"), path, "x", final=False)
    with pytest.raises(ConfigError, match="different task"):
        tune(holdout, TuneSettings(model="ease", n_trials=2, metric="recall@5"), path, "x",
             final=False)  # fmt: skip


def test_decide_known_answers() -> None:
    assert decide(0.5, None, None) == (True, "no active model yet")
    assert decide(0.5, 0.4, "v1")[0] is True
    assert decide(0.4, 0.4, "v1")[0] is False  # a tie keeps the champion
    assert decide(0.3, 0.4, "v1")[0] is False
    assert decide(0.41, 0.4, "v1", min_gain=0.05)[0] is False
    assert decide(0.5, float("nan"), "v1")[0] is False


def _tune_and_offer(
    data: ProtocolData,
    store: Registry,
    model: str,
    tmp_path: Path,
    candidates: tuple[str, ...] = (),
) -> tuple[float, str, bool, float | None]:
    settings = TuneSettings(model=model, n_trials=3, sampler="random", pruner="none",
                            candidates=tuple(candidates) or AUTO_MODELS)  # fmt: skip
    tuned = tune(data, settings, str(tmp_path / f"{model}.journal"), model)
    decision = challenge(store, tuned.objective, tuned.result.best_value)
    version = save_and_promote(
        store, tuned.model, decision, {"validation": {"ndcg@10": tuned.result.best_value}},
        data, "blocks", {"study": model},
    )  # fmt: skip
    return tuned.result.best_value, version, decision.promoted, decision.champion_value


def test_champion_challenger_promotes_only_when_better(
    holdout: ProtocolData, tmp_path: Path
) -> None:
    store = Registry(tmp_path / "models")
    # 1. trending (popularity with recency) into an empty store: promoted
    weak, v1, promoted, champ = _tune_and_offer(holdout, store, "trending", tmp_path)
    assert (v1, promoted, champ) == ("v0001", True, None)
    # 2. auto over EASE and item-kNN finds the blocks: better, promoted
    strong, v2, promoted, champ = _tune_and_offer(
        holdout, store, "auto", tmp_path, candidates=("ease", "itemknn")
    )
    assert strong > weak + 0.1
    assert promoted and champ == pytest.approx(weak)  # the champion re-fitted on the same folds
    assert store.active() is not None and store.active().version == v2  # type: ignore[union-attr]
    # 3. trending again: worse than the active model, saved but not promoted
    again, _, promoted, champ = _tune_and_offer(holdout, store, "trending", tmp_path)
    assert not promoted and champ == pytest.approx(strong)
    assert store.active().version == v2  # type: ignore[union-attr]
    assert [v.version for v in store.versions()] == ["v0001", "v0002", "v0003"]
    # the active model loads and recommends block items to a block user
    model = store.load_model()
    user = 0  # u0 is in block 0 (items i0..i9)
    recs = model.recommend(holdout.train[user].indices, k=3).ids
    block = {holdout.items.index(f"i{i}") for i in range(10)}
    assert set(recs.tolist()) <= block
    assert np.isfinite(again)


def test_pinned_parameters_are_set_in_every_trial_and_never_searched(
    holdout: ProtocolData, tmp_path: Path
) -> None:
    settings = TuneSettings(model="als", n_trials=4, sampler="random", pruner="none",
                            pinned={"als": {"iterations": 3, "factors": 8}})  # fmt: skip
    tuned = tune(holdout, settings, str(tmp_path / "p.journal"), "p")
    for t in tuned.study.trials:
        assert "iterations" not in t.params and "factors" not in t.params
        assert (t.user_attrs["config"]["iterations"], t.user_attrs["config"]["factors"]) == (3, 8)
        assert sorted(t.intermediate_values) == [1, 2, 3]  # three epochs, as pinned
    # the default trial is the default config with the pins, and so is the default on test
    assert tuned.study.trials[0].params == {"regularization": 10.0, "alpha": 2.0}
    assert tuned.result.best_config["iterations"] == 3
    assert tuned.objective.default_config("als").iterations == 3  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="ease is not tuned in this run"):
        TuneSettings(model="als", pinned={"ease": {"l2": 1.0}}).check()
    with pytest.raises(ConfigError, match="factors"):
        tune(holdout, TuneSettings(model="als", n_trials=1, pinned={"als": {"factors": 0}}),
             str(tmp_path / "bad.journal"), "bad", final=False)  # fmt: skip


def test_sampler_seed_changes_the_draws_not_the_validation_split(holdout: ProtocolData) -> None:
    def run(sampler_seed: int) -> tuple[list[int], list[float]]:
        settings = TuneSettings(model="ease", n_trials=3, sampler="random", pruner="none",
                                sampler_seed=sampler_seed, enqueue_defaults=False)  # fmt: skip
        tuned = tune(holdout, settings, optuna.storages.InMemoryStorage(), "s", final=False)
        return tuned.folds[0].users.tolist(), [t.params["l2"] for t in tuned.study.trials]

    users_a, draws_a = run(1)
    users_b, draws_b = run(2)
    assert users_a == users_b  # the same validation fold (seed 42 carves it)
    assert draws_a != draws_b
    assert run(1)[1] == draws_a  # and a sampler seed replays


def test_final_model_is_refitted_on_train_and_validation(
    events: pd.DataFrame, holdout: ProtocolData
) -> None:
    """After tuning on the validation part, the test step fits on training + validation
    (leave-last-out: each test item predicted from everything before it); a protocol
    without a validation part fits on its training part."""
    from shelfwise.tuning.tuner import score_on_test

    loo = prepare(events, "loo")
    assert loo.validation.nnz == N_USERS_LOO
    model, metrics = score_on_test("popularity", {}, loo, 10)
    counts = np.asarray((loo.train + loo.validation).sum(axis=0)).ravel()
    assert np.allclose(model.popularity, counts)  # type: ignore[attr-defined]
    assert not np.allclose(counts, np.asarray(loo.train.sum(axis=0)).ravel())
    assert 0.0 <= metrics["ndcg@10"] <= 1.0
    model, _ = score_on_test("popularity", {}, holdout, 10)
    assert holdout.validation.nnz == 0
    assert np.allclose(model.popularity, np.asarray(holdout.train.sum(axis=0)).ravel())  # type: ignore[attr-defined]


def test_score_on_test_gives_the_per_user_values_behind_its_means(
    holdout: ProtocolData,
) -> None:
    """`per_user` receives one value per test user for every metric, whose means are the
    returned metrics (what the tuned-versus-default intervals are computed from)."""
    from shelfwise.tuning.tuner import score_on_test

    per_user: dict[str, np.ndarray] = {}
    _, metrics = score_on_test("popularity", {}, holdout, 10, per_user=per_user)
    assert set(per_user) == {key for key in metrics if key != "fit_seconds"}
    for key, values in per_user.items():
        assert values.shape == (holdout.test_users.size,)
        assert float(values.mean()) == pytest.approx(metrics[key])
    assert set(np.unique(per_user["hr@10"])) <= {0.0, 1.0}


def test_a_repeated_configuration_is_answered_from_the_earlier_trial(
    holdout: ProtocolData,
) -> None:
    from shelfwise.tuning.objective import REPEATS_TO_STOP, Objective
    from shelfwise.tuning.report import trials_frame
    from shelfwise.tuning.tuner import run_trials

    class Counting(Objective):
        fits = 0

        def evaluate(self, name, config, trial=None):  # type: ignore[no-untyped-def]
            Counting.fits += 1
            return super().evaluate(name, config, trial)

    objective = Counting(models=["ease"], folds=validation_folds(holdout))
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"l2": 458.6})
    study.enqueue_trial({"l2": 461.0})  # the same model: l2 rounds to 460 in both
    study.enqueue_trial({"l2": 120.0})
    study.optimize(objective, n_trials=3)
    first, repeat, other = study.trials
    assert first.user_attrs["config"]["l2"] == repeat.user_attrs["config"]["l2"] == 460.0
    assert repeat.value == first.value and repeat.user_attrs["repeat_of"] == 0
    assert "repeat_of" not in other.user_attrs and other.user_attrs["config"]["l2"] == 120.0
    assert Counting.fits == 2
    frame = trials_frame(study)  # the trials CSV says which trial each repeat copies
    assert frame["repeat_of"].isna().tolist() == [True, False, True]
    assert frame.loc[1, "repeat_of"] == 0
    # a sampler that proposes nothing new for REPEATS_TO_STOP trials in a row ends the study
    for _ in range(50):
        study.enqueue_trial({"l2": 120.0})
    run_trials(study, objective, 50, None, lambda _msg: None)
    assert Counting.fits == 2 and objective.converged
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 3 + REPEATS_TO_STOP  # the queued rest never ran


def test_a_repeat_of_a_pruned_configuration_is_pruned(holdout: ProtocolData) -> None:
    from shelfwise.tuning.objective import Objective

    objective = Objective(models=["als"], folds=validation_folds(holdout),
                          pinned={"als": {"iterations": 4}})  # fmt: skip
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=0.99)
    )  # every ALS trial is pruned after its first epoch
    params = {"factors": 16, "regularization": 1.0, "alpha": 1.0}
    study.enqueue_trial(params)
    study.enqueue_trial(params)
    study.optimize(objective, n_trials=2)
    first, repeat = study.trials
    assert first.state == repeat.state == TrialState.PRUNED
    assert first.last_step == 1 and repeat.last_step is None
    assert repeat.user_attrs["repeat_of"] == 0
