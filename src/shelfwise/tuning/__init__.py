"""Automatic tuning on Optuna: a generic objective over the model registry, samplers and
pruners by name, resumable / shared study storage, champion-challenger promotion, reports.

Entry points: `tune(data, TuneSettings(...), storage, study_name)` and the
`shelfwise tune` command (`shelfwise.cli.tune`).
"""

from shelfwise.tuning.data import Fold, cv_folds, validation_folds
from shelfwise.tuning.factory import PRUNERS, SAMPLERS, make_pruner, make_sampler, open_storage
from shelfwise.tuning.objective import Iterative, Objective, parse_metric
from shelfwise.tuning.promotion import Decision, challenge
from shelfwise.tuning.space import config_from_params, grid_points
from shelfwise.tuning.tuner import AUTO, AUTO_MODELS, Tuned, TuneResult, TuneSettings, tune

__all__ = [
    "AUTO",
    "AUTO_MODELS",
    "PRUNERS",
    "SAMPLERS",
    "Decision",
    "Fold",
    "Iterative",
    "Objective",
    "TuneResult",
    "TuneSettings",
    "Tuned",
    "challenge",
    "config_from_params",
    "cv_folds",
    "grid_points",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "parse_metric",
    "tune",
    "validation_folds",
]
