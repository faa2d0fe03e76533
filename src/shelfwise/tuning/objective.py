"""The objective: build a model from a trial, fit it on the tuning folds, score validation.

Nothing here knows a model. A model is created from the registry with the config its own
`Config.search_space(trial)` returns. If the model is *iterative* (it has `start(...)` and
`train_epoch()`, see `Iterative`), a single-fold run trains epoch by epoch and reports the
validation metric after every epoch (`trial.report(value, epoch)`), so a pruner can stop
it early; otherwise the model's plain `fit` is used. With several folds (cross-validation)
the running mean is reported after each fold instead.

The number of epochs is read from the config's `epochs` or `iterations` field (the same
number `fit` trains for). After the epochs the model's `finish()` (or its trainer's) runs if
it has one, and a model or trainer whose `should_stop` turns true ends the epochs early, so
early stopping and restore-best behave as in `fit`.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.sequences import OrderedInteractions
from shelfwise.errors import ConfigError
from shelfwise.evaluation.metrics import ranking_metrics
from shelfwise.recommenders.base import ModelConfig, Recommender, create
from shelfwise.tuning.data import Fold
from shelfwise.tuning.space import PrefixedTrial, has_search_space, pinned_config, search_space

log = logging.getLogger("shelfwise.tuning")

REPEATS_TO_STOP = 20
"""The tuner stops a study once this many trials in a row repeated earlier configurations."""

METRICS: tuple[str, ...] = ("ndcg", "recall", "precision", "map", "map_nrel", "hr", "mrr", "f1")


@runtime_checkable
class Iterative(Protocol):
    """A model that can be trained one epoch at a time (ALS, the torch models)."""

    def start(self, interactions: Any, *args: Any, **kwargs: Any) -> Any:
        """Prepare training on `interactions` without training."""

    def train_epoch(self) -> Any:
        """Train one more epoch (may return a record such as `{"loss": ...}`)."""


def parse_metric(metric: str) -> tuple[str, int]:
    """`"ndcg@10"` -> ("ndcg", 10); `ConfigError` naming the valid metrics."""
    name, sep, k_text = metric.strip().lower().partition("@")
    valid = ", ".join(f"{m}@K" for m in METRICS)
    if not sep or name not in METRICS:
        raise ConfigError(f"--metric {metric!r}: expected one of {valid} (e.g. ndcg@10)")
    try:
        k = int(k_text)
    except ValueError as exc:
        raise ConfigError(f"--metric {metric!r}: K must be a positive integer") from exc
    if k < 1:
        raise ConfigError(f"--metric {metric!r}: K must be a positive integer")
    return name, k


def planned_epochs(model: Any) -> int:
    """Epochs a model's `fit` would train: its config's `epochs` or `iterations` (else 1)."""
    config = getattr(model, "config", None)
    for name in ("epochs", "iterations"):
        value = getattr(config, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return 1


def _accepts(fn: Any, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False


def fit_model(
    model: Recommender,
    train: Any,
    catalog: pd.DataFrame | None,
    validation: sp.csr_matrix | None = None,
) -> Recommender:
    """`fit(train, catalog)`, with `validation=` when the model's fit takes it (as the
    evaluation runner does)."""
    if validation is not None and _accepts(model.fit, "validation"):
        model.fit(train, catalog, validation=validation)  # type: ignore[call-arg]
    else:
        model.fit(train, catalog)
    return model


def _ordered(model: Any, fold: Fold) -> bool:
    """True when a sequential model gets the fold's time-ordered sequences."""
    return bool(getattr(model, "sequential", False)) and fold.sequences is not None


def training_input(model: Any, fold: Fold) -> Any:
    """The fold's training matrix, with its ordered sequences for a sequential model."""
    if not _ordered(model, fold):
        return fold.train
    return OrderedInteractions(fold.train, fold.sequences)


def _start(model: Any, train: Any, catalog: pd.DataFrame | None, fold: Fold) -> None:
    kwargs: dict[str, Any] = {}
    if _accepts(model.start, "items"):
        kwargs["items"] = catalog
    if _accepts(model.start, "validation"):
        kwargs["validation"] = fold.relevance
    model.start(train, **kwargs)


def _flag(model: Any, name: str) -> Any:
    """`model.<name>`, else `model.trainer.<name>` (None when neither exists)."""
    if hasattr(model, name):
        return getattr(model, name)
    trainer = getattr(model, "trainer", None)
    return getattr(trainer, name, None) if trainer is not None else None


def score_fold(model: Recommender, fold: Fold, metric: str, k: int) -> float:
    """The metric of `model`'s top-k (training items excluded) against the fold's relevance."""
    users = fold.users
    if _ordered(model, fold):
        recs = model.recommend_batch(  # type: ignore[call-arg,unused-ignore]
            fold.train[users], k=k, users=users, sequences=fold.sequences.rows(users)
        )
    else:
        recs = model.recommend_batch(fold.train[users], k=k, users=users)
    return float(ranking_metrics(recs.ids, fold.relevance[users], k)[f"{metric}@{k}"])


class TimeBudgetExceededError(Exception):
    """Raised between epochs when the study's deadline has passed."""


@dataclass
class Objective:
    """Callable for Optuna: trial -> mean validation metric over the folds.

    `models` are the candidate registry names: one name tunes that model; several add a
    categorical `model` parameter and namespace each model's parameters (`ease.l2`).
    """

    models: Sequence[str]
    folds: Sequence[Fold]
    metric: str = "ndcg@10"
    catalog: pd.DataFrame | None = None
    deadline: float | None = None
    pinned: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Fixed parameters per model (`--set sasrec.epochs=20`): never searched, always set."""
    repeats_in_a_row: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("no model to tune")
        for name in self.models:
            search_space(name)  # ConfigError for a model without a space
        if not self.folds:
            raise ConfigError("no validation fold to score on")
        self.metric_name, self.k = parse_metric(self.metric)

    @property
    def multi(self) -> bool:
        """True when the study also chooses the model type."""
        return len(self.models) > 1

    def suggest(self, trial: Any) -> tuple[str, ModelConfig]:
        """(model name, config) drawn from the trial."""
        if self.multi:
            name = str(trial.suggest_categorical("model", list(self.models)))
            prefix = f"{name}."
        else:
            name, prefix = self.models[0], ""
        pinned = self.pinned.get(name, {})
        scoped = PrefixedTrial(trial, prefix, pinned) if prefix or pinned else trial
        return name, pinned_config(name, search_space(name)(scoped), pinned)

    def default_config(self, name: str) -> ModelConfig:
        """The model's default configuration with the pinned fields set."""
        return create(name, **dict(self.pinned.get(name, {}))).config

    def config_of(self, params: Mapping[str, Any]) -> tuple[str, ModelConfig]:
        """(model name, config) of a finished trial's params."""
        return self.suggest(optuna.trial.FixedTrial(dict(params)))

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TimeBudgetExceededError

    def evaluate(self, name: str, config: ModelConfig, trial: Any | None = None) -> float:
        """Fit on every fold and return the mean validation metric (reporting as it goes)."""
        values: list[float] = []
        for f, fold in enumerate(self.folds):
            model = create(name, **config.model_dump())
            if len(self.folds) == 1 and isinstance(model, Iterative):
                # the same epoch loop with or without a trial, so a default or a champion
                # scores exactly as it would as a trial
                values.append(self._epochs(model, fold, trial))
                continue
            fit_model(model, training_input(model, fold), self.catalog)
            values.append(score_fold(model, fold, self.metric_name, self.k))
            if trial is not None and len(self.folds) > 1:
                trial.report(float(np.mean(values)), f + 1)
                # a trial with every fold scored is complete: never thrown away by a pruner
                if f + 1 < len(self.folds) and trial.should_prune():
                    raise optuna.TrialPruned(f"fold {f + 1}: mean {np.mean(values):.4f}")
                if f + 1 < len(self.folds):
                    self._check_deadline()
        return float(np.mean(values))

    def _epochs(self, model: Any, fold: Fold, trial: Any | None) -> float:
        epochs = planned_epochs(model)
        _start(model, training_input(model, fold), self.catalog, fold)
        value = float("nan")
        for epoch in range(1, epochs + 1):
            record = model.train_epoch()
            if isinstance(record, Mapping):
                log.debug("trial %s epoch %d: %s", getattr(trial, "number", "?"), epoch, record)
            value = score_fold(model, fold, self.metric_name, self.k)
            if trial is not None:
                trial.report(value, epoch)
                # after the last epoch the trial is complete: never thrown away by a pruner
                if epoch < epochs and trial.should_prune():
                    raise optuna.TrialPruned(f"epoch {epoch}: {value:.4f}")
            if _flag(model, "should_stop"):
                break
            if trial is not None and epoch < epochs:
                self._check_deadline()
        finish = _flag(model, "finish")
        if callable(finish):
            finish()
            value = score_fold(model, fold, self.metric_name, self.k)
        return value

    def __call__(self, trial: optuna.Trial) -> float:
        name, config = self.suggest(trial)
        dumped = config.model_dump(mode="json")
        trial.set_user_attr("model", name)
        trial.set_user_attr("config", dumped)
        earlier = same_configuration(trial, name, dumped)
        if earlier is None:
            self.repeats_in_a_row = 0
            return self.evaluate(name, config, trial)
        self.repeats_in_a_row += 1
        return repeat_outcome(trial, earlier)

    @property
    def converged(self) -> bool:
        """True once `REPEATS_TO_STOP` trials in a row repeated configurations already
        tried: the sampler has nothing new to propose (a small discrete space is exhausted),
        so the tuner stops the study."""
        return self.repeats_in_a_row >= REPEATS_TO_STOP


def same_configuration(
    trial: Any, name: str, config: Mapping[str, Any]
) -> optuna.trial.FrozenTrial | None:
    """The earliest finished trial of `trial`'s study that trained the same model with the
    same configuration (after pins and rounding), or None. Trials the objective did not
    build (no `config` attribute) never match."""
    study = getattr(trial, "study", None)
    if study is None:
        return None
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for done in study.get_trials(deepcopy=False, states=states):
        attrs = done.user_attrs
        if attrs.get("model") == name and attrs.get("config") == config:
            return done
    return None


def repeat_outcome(trial: Any, earlier: optuna.trial.FrozenTrial) -> float:
    """Answer a repeated configuration from the trial that already trained it: its value,
    or pruned again, at no training cost."""
    trial.set_user_attr("repeat_of", earlier.number)
    log.info("trial %d repeats trial %d's configuration", trial.number, earlier.number)
    if earlier.state == optuna.trial.TrialState.PRUNED:
        raise optuna.TrialPruned(f"same configuration as trial {earlier.number} (pruned)")
    return float(earlier.value)  # type: ignore[arg-type]


def tunable_models(names: Sequence[str]) -> list[str]:
    """The names among `names` that are registered and declare a search space."""
    return [n for n in names if has_search_space(n)]
