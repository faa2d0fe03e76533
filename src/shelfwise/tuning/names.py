"""The sampler and pruner names `shelfwise.tuning.factory` builds, without importing Optuna
(the command line lists them when it builds its parser)."""

from __future__ import annotations

__all__ = ["PRUNERS", "SAMPLERS"]

SAMPLERS: tuple[str, ...] = ("tpe", "random", "grid", "cmaes")
PRUNERS: tuple[str, ...] = ("none", "median", "hyperband", "successive_halving")
