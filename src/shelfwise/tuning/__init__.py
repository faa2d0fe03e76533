"""Automatic tuning on Optuna: a generic objective over the model registry, samplers and
pruners by name, resumable / shared study storage, champion-challenger promotion, reports.

Entry points: `tune(data, TuneSettings(...), storage, study_name)` and the
`shelfwise tune` command (`shelfwise.cli.tune`). The names below are imported on first use,
so `shelfwise.tuning.runs` (what the API reads) does not pull Optuna in.
"""

from __future__ import annotations

from shelfwise._lazy import lazy_exports

_EXPORTS = {
    "Fold": "data",
    "cv_folds": "data",
    "validation_folds": "data",
    "PRUNERS": "factory",
    "SAMPLERS": "factory",
    "make_pruner": "factory",
    "make_sampler": "factory",
    "open_storage": "factory",
    "Iterative": "objective",
    "Objective": "objective",
    "parse_metric": "objective",
    "Decision": "promotion",
    "challenge": "promotion",
    "config_from_params": "space",
    "grid_points": "space",
    "AUTO": "tuner",
    "AUTO_MODELS": "tuner",
    "Tuned": "tuner",
    "TuneResult": "tuner",
    "TuneSettings": "tuner",
    "tune": "tuner",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
