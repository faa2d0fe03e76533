"""`TrainConfig`: how a torch model is trained, checked as a whole before any training.

Every field has a default; an unknown optimiser / schedule / initialisation, a negative
learning rate or a combination that cannot work (L-BFGS with single-sample batches, mixed
precision, L1 or gradient clipping; Nesterov without momentum; warm-up longer than the run)
raises `ConfigError` listing the valid choices, before a single batch is drawn.

The fields live on `TrainFields`, shared by `TrainConfig` and by the torch models' configs
(`shelfwise.recommenders.torch_base.TorchModelConfig`), so `--set sasrec.optimizer=adamw`
reaches the trainer without a second namespace.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shelfwise.errors import ConfigError
from shelfwise.train.choices import (
    DEVICES,
    INITS,
    OPTIMIZERS,
    SCHEDULES,
    DeviceName,
    InitName,
    OptimizerName,
    ScheduleName,
)

_CHOICES = {"optimizer": OPTIMIZERS, "schedule": SCHEDULES, "init": INITS, "device": DEVICES}


class TrainFields(BaseModel):
    """The training options (see the module doc); frozen, unknown keys rejected.

    - `optimizer`, `lr`, `momentum` (sgd-family momentum; rmsprop's too when > 0 and the
      optimiser is rmsprop), `weight_decay` (L2: coupled for every optimiser except adamw,
      where it is decoupled; added to the loss for lbfgs), `l1` (added to the loss).
    - `schedule` of the learning rate: `constant`; `step` (x `gamma` every `step_size`
      epochs); `exponential` (x `gamma` every epoch); `cosine` (to `min_lr` over the run,
      per batch); `warmup_cosine` / `warmup_linear` (linear warm-up over `warmup_epochs`,
      then cosine / linear decay to `min_lr`); `one_cycle` (torch's OneCycleLR with `lr`
      as the peak); `plateau` (x `gamma` after `plateau_patience` evaluations without
      improvement of `monitor`, or of the loss when there is no validation).
    - `epochs`, `batch_size` (0 = full batch, 1 = single sample), `grad_clip` (max global
      gradient norm), `ema_decay` (exponential moving average of the weights, used for
      validation and the final model), `patience` / `min_delta` / `monitor` (early stopping
      on a validation metric; patience 0 disables it), `restore_best` (end with the weights
      of the best validation epoch), `eval_every` (validate every n epochs, and after the
      last one), `init`, `init_std` (std of `normal`), `seed`, `device`, `amp`, `threads`
      (CPU threads torch may use while training and scoring; 0 = torch's default. Small
      models on a busy machine run far faster with 1), `time_budget` (seconds of training
      at most: `fit` starts no epoch that the mean epoch time so far says would end past it;
      None = no limit; the best epoch's weights are still restored).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    optimizer: OptimizerName = "adam"
    lr: float = Field(default=1e-3, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    l1: float = Field(default=0.0, ge=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    schedule: ScheduleName = "constant"
    warmup_epochs: int = Field(default=0, ge=0)
    step_size: int = Field(default=10, ge=1)
    gamma: float = Field(default=0.5, gt=0.0, le=1.0)
    min_lr: float = Field(default=0.0, ge=0.0)
    plateau_patience: int = Field(default=2, ge=0)
    epochs: int = Field(default=20, ge=1)
    batch_size: int = Field(default=1024, ge=0)
    grad_clip: float | None = Field(default=None, gt=0.0)
    ema_decay: float | None = Field(default=None, gt=0.0, lt=1.0)
    patience: int = Field(default=5, ge=0)
    min_delta: float = Field(default=0.0, ge=0.0)
    monitor: str = "ndcg@10"
    restore_best: bool = True
    eval_every: int = Field(default=1, ge=1)
    init: InitName = "default"
    init_std: float = Field(default=0.02, gt=0.0)
    seed: int = 42
    device: DeviceName = "auto"
    amp: bool = False
    threads: int = Field(default=0, ge=0)
    time_budget: float | None = Field(default=None, gt=0.0)

    @field_validator("optimizer", "schedule", "init", "device", mode="before")
    @classmethod
    def _check_choice(cls, value: Any, info: Any) -> Any:
        choices = _CHOICES[info.field_name]
        if isinstance(value, str):
            value = value.strip().lower()
        if value not in choices:
            raise ValueError(
                f"unknown {info.field_name} {value!r}; valid choices: {', '.join(choices)}"
            )
        return value

    @field_validator("lr", mode="before")
    @classmethod
    def _check_lr(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not value > 0:
            raise ValueError(f"the learning rate must be > 0, got {value}")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> TrainFields:
        problems = train_config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def train_fields(self) -> dict[str, Any]:
        """The training options as a plain dict (the `TrainConfig` fields only)."""
        return {name: getattr(self, name) for name in TrainFields.model_fields}


def train_config_problems(c: TrainFields) -> list[str]:
    """Combinations of otherwise valid options that cannot work together."""
    out: list[str] = []
    if c.optimizer == "lbfgs":
        if c.batch_size == 1:
            out.append(
                "optimizer 'lbfgs' needs full or mini batches (batch_size 0 or >= 2), not "
                "single samples; for single-sample training choose one of "
                f"{', '.join(o for o in OPTIMIZERS if o != 'lbfgs')}"
            )
        if c.amp:
            out.append("optimizer 'lbfgs' does not support amp=true (its line search needs "
                       "full precision); set amp=false or choose another optimizer")  # fmt: skip
        if c.l1 > 0:
            out.append("optimizer 'lbfgs' needs a smooth loss: set l1=0 (use weight_decay) or "
                       "choose another optimizer")  # fmt: skip
        if c.grad_clip is not None:
            out.append("optimizer 'lbfgs' does not support grad_clip (its line search sets the "
                       "step); leave grad_clip unset or choose another optimizer")  # fmt: skip
        if c.schedule == "one_cycle":
            out.append(
                "schedule 'one_cycle' does not suit optimizer 'lbfgs'; choose one of "
                f"{', '.join(s for s in SCHEDULES if s != 'one_cycle')}"
            )
    if c.optimizer == "nesterov" and c.momentum <= 0:
        out.append("optimizer 'nesterov' needs momentum > 0")
    if c.optimizer == "momentum" and c.momentum <= 0:
        out.append("optimizer 'momentum' needs momentum > 0 (or use optimizer 'sgd')")
    if c.schedule in ("warmup_cosine", "warmup_linear") and c.warmup_epochs >= c.epochs:
        out.append(
            f"warmup_epochs ({c.warmup_epochs}) must be smaller than epochs ({c.epochs}) "
            f"for schedule {c.schedule!r}"
        )
    if c.warmup_epochs and c.schedule not in ("warmup_cosine", "warmup_linear"):
        out.append(
            f"warmup_epochs={c.warmup_epochs} needs schedule 'warmup_cosine' or "
            f"'warmup_linear', not {c.schedule!r}"
        )
    if c.min_lr >= c.lr:
        out.append(f"min_lr ({c.min_lr}) must be smaller than lr ({c.lr})")
    if not c.monitor.strip():
        out.append("monitor must name a validation metric, e.g. 'ndcg@10'")
    return out


class TrainConfig(TrainFields):
    """The training options on their own; invalid values raise `ConfigError`."""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(f"invalid training configuration: {describe(exc)}") from exc


def describe(exc: ValidationError) -> str:
    """A pydantic error as one line per field: `field: message`."""
    parts = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = ", ".join(TrainFields.model_fields)
            msg = f"unknown option; valid options: {valid}"
        parts.append(f"{name}: {msg}" if name else msg)
    return "; ".join(parts)
