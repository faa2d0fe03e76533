"""The names a `TrainConfig` accepts (optimisers, schedules, initialisations, devices), in a
module of their own so that `shelfwise train --help` lists them without building the
pydantic models of `shelfwise.train.config`."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "DEVICES",
    "INITS",
    "OPTIMIZERS",
    "SCHEDULES",
    "DeviceName",
    "InitName",
    "OptimizerName",
    "ScheduleName",
]

OptimizerName = Literal[
    "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "adadelta", "lbfgs"
]
ScheduleName = Literal[
    "constant", "step", "exponential", "cosine", "warmup_cosine", "warmup_linear", "one_cycle",
    "plateau",
]  # fmt: skip
InitName = Literal[
    "default", "normal", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"
]
DeviceName = Literal["auto", "cpu", "cuda"]

OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)
INITS: tuple[str, ...] = get_args(InitName)
DEVICES: tuple[str, ...] = get_args(DeviceName)
