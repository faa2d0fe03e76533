"""Optimisers and learning-rate schedules by name, on top of `torch.optim`.

`build_optimizer(params, cfg)` maps `cfg.optimizer` to a torch optimiser:

=========  ===============================================================
sgd        `SGD(lr, weight_decay)` (no momentum)
momentum   `SGD(lr, momentum, weight_decay)` (heavy ball)
nesterov   `SGD(lr, momentum, nesterov=True, weight_decay)`
adagrad    `Adagrad(lr, weight_decay)`
rmsprop    `RMSprop(lr, weight_decay)`
adam       `Adam(lr, weight_decay)` (L2 coupled into the gradient)
adamw      `AdamW(lr, weight_decay)` (decoupled weight decay)
adadelta   `Adadelta(lr, weight_decay)` (lr 1.0 is the classic setting)
lbfgs      `LBFGS(lr, history_size=10, line_search_fn="strong_wolfe")`; it needs a closure
           (the trainer provides one) and has no weight decay of its own, so the trainer
           adds `weight_decay / 2 * ||w||^2` to its loss instead
=========  ===============================================================

`build_scheduler(optimizer, cfg, steps_per_epoch)` returns a `Schedule`: the trainer calls
`step_batch()` after every optimiser step and `step_epoch(metric)` after every epoch, and
the schedule forwards to the torch scheduler at the right granularity (see `TrainFields`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import lr_scheduler

from shelfwise.errors import ConfigError
from shelfwise.train.config import OPTIMIZERS, SCHEDULES, TrainFields

__all__ = ["OPTIMIZERS", "SCHEDULES", "Schedule", "build_optimizer", "build_scheduler"]


def build_optimizer(params: Iterable[Any], cfg: TrainFields) -> torch.optim.Optimizer:
    """A torch optimiser for `params` (tensors or parameter groups) as `cfg` says."""
    params = list(params)
    lr, wd = cfg.lr, cfg.weight_decay
    name = cfg.optimizer
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=wd)
    if name == "nesterov":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=True, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "adadelta":
        return torch.optim.Adadelta(params, lr=lr, weight_decay=wd)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, history_size=10, line_search_fn="strong_wolfe")
    raise ConfigError(f"unknown optimizer {name!r}; valid choices: {', '.join(OPTIMIZERS)}")


class Schedule:
    """A learning-rate schedule stepped per batch and per epoch (see `build_scheduler`)."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: str,
        per_batch: lr_scheduler.LRScheduler | None = None,
        per_epoch: lr_scheduler.LRScheduler | None = None,
        plateau: lr_scheduler.ReduceLROnPlateau | None = None,
        total_steps: int = 0,
    ) -> None:
        self.optimizer = optimizer
        self.name = name
        self.per_batch = per_batch
        self.per_epoch = per_epoch
        self.plateau = plateau
        self.total_steps = total_steps
        self.steps = 0

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group now."""
        return float(self.optimizer.param_groups[0]["lr"])

    def step_batch(self) -> None:
        """After each optimiser step (per-batch schedules advance here)."""
        self.steps += 1
        # one-cycle refuses to go past its total; a run longer than planned keeps the last lr
        if self.per_batch is not None and (not self.total_steps or self.steps < self.total_steps):
            self.per_batch.step()

    def step_epoch(self, metric: float | None = None) -> None:
        """After each epoch; `metric` (higher is better) drives `plateau`."""
        if self.per_epoch is not None:
            self.per_epoch.step()
        if self.plateau is not None and metric is not None and math.isfinite(metric):
            self.plateau.step(metric)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the schedule after a resume."""
        out: dict[str, Any] = {"steps": self.steps}
        for key in ("per_batch", "per_epoch", "plateau"):
            sched = getattr(self, key)
            if sched is not None:
                out[key] = sched.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()` output."""
        self.steps = int(state["steps"])
        for key in ("per_batch", "per_epoch", "plateau"):
            sched = getattr(self, key)
            if sched is not None and key in state:
                sched.load_state_dict(state[key])


def _warmup_decay(warmup: int, total: int, floor: float, cosine: bool) -> Callable[[int], float]:
    """The multiplier of linear warm-up over `warmup` steps then decay to `floor` at `total`."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        span = max(1, total - warmup)
        progress = min(1.0, (step - warmup) / span)
        shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if cosine else 1.0 - progress
        return floor + (1.0 - floor) * shape

    return factor


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainFields, steps_per_epoch: int
) -> Schedule:
    """The schedule `cfg.schedule` for `cfg.epochs` epochs of `steps_per_epoch` steps."""
    name = cfg.schedule
    steps_per_epoch = max(1, int(steps_per_epoch))
    total = cfg.epochs * steps_per_epoch
    floor = cfg.min_lr / cfg.lr
    if name == "constant":
        return Schedule(optimizer, name)
    if name == "step":
        return Schedule(
            optimizer, name, per_epoch=lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
        )
    if name == "exponential":
        return Schedule(optimizer, name, per_epoch=lr_scheduler.ExponentialLR(optimizer, cfg.gamma))
    if name == "cosine":
        sched = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=cfg.min_lr)
        return Schedule(optimizer, name, per_batch=sched, total_steps=total)
    if name in ("warmup_cosine", "warmup_linear"):
        factor = _warmup_decay(
            cfg.warmup_epochs * steps_per_epoch, total, floor, cosine=name == "warmup_cosine"
        )
        return Schedule(optimizer, name, per_batch=lr_scheduler.LambdaLR(optimizer, factor))
    if name == "one_cycle":
        defaults = optimizer.defaults
        cycle_momentum = "betas" in defaults or float(defaults.get("momentum", 0.0)) > 0
        cycle = lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=total, cycle_momentum=cycle_momentum
        )
        return Schedule(optimizer, name, per_batch=cycle, total_steps=total)
    if name == "plateau":
        plateau = lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="max",
            factor=cfg.gamma if cfg.gamma < 1.0 else 0.5,
            patience=cfg.plateau_patience,
            min_lr=cfg.min_lr,
        )
        return Schedule(optimizer, name, plateau=plateau)
    raise ConfigError(f"unknown schedule {name!r}; valid choices: {', '.join(SCHEDULES)}")
