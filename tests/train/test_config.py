"""TrainConfig: defaults, choices and the combinations refused before training."""

from __future__ import annotations

from typing import Any

import pytest

from shelfwise.config_params import validate_params
from shelfwise.errors import ConfigError
from shelfwise.recommenders import create
from shelfwise.train import INITS, OPTIMIZERS, SCHEDULES, TrainConfig


def test_defaults_are_valid() -> None:
    cfg = TrainConfig()
    assert (cfg.optimizer, cfg.schedule, cfg.monitor, cfg.init) == (
        "adam", "constant", "ndcg@10", "default",
    )  # fmt: skip
    assert OPTIMIZERS == (
        "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw", "adadelta", "lbfgs",
    )  # fmt: skip
    assert set(SCHEDULES) == {
        "constant", "step", "exponential", "cosine", "warmup_cosine", "warmup_linear",
        "one_cycle", "plateau",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("field", "choices"), [("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("init", INITS)]
)
def test_unknown_choice_lists_the_valid_ones(field: str, choices: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{field: "nope"})
    message = str(err.value)
    assert f"unknown {field} 'nope'" in message
    assert all(choice in message for choice in choices)


def test_choices_are_case_insensitive() -> None:
    assert TrainConfig(optimizer="AdamW").optimizer == "adamw"


@pytest.mark.parametrize("lr", [-0.1, 0.0])
def test_learning_rate_must_be_positive(lr: float) -> None:
    with pytest.raises(ConfigError, match="lr: the learning rate must be > 0"):
        TrainConfig(lr=lr)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"optimizer": "lbfgs", "batch_size": 1}, "single samples"),
        ({"optimizer": "lbfgs", "amp": True}, "amp"),
        ({"optimizer": "lbfgs", "l1": 0.1}, "smooth loss"),
        ({"optimizer": "lbfgs", "grad_clip": 1.0}, "grad_clip"),
        ({"optimizer": "lbfgs", "schedule": "one_cycle"}, "one_cycle"),
        ({"optimizer": "nesterov", "momentum": 0.0}, "momentum > 0"),
        ({"schedule": "warmup_cosine", "warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
        ({"schedule": "cosine", "warmup_epochs": 2}, "warmup_epochs"),
        ({"lr": 0.01, "min_lr": 0.1}, "min_lr"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"batch_size": -1}, "batch_size"),
    ],
)
def test_bad_combinations_fail(options: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(**options)


def test_lbfgs_error_lists_the_other_optimizers() -> None:
    with pytest.raises(ConfigError) as err:
        TrainConfig(optimizer="lbfgs", batch_size=1)
    assert "adamw" in str(err.value) and "sgd" in str(err.value)


def test_lbfgs_full_batch_is_fine() -> None:
    assert TrainConfig(optimizer="lbfgs", batch_size=0, lr=1.0).optimizer == "lbfgs"


def test_unknown_option_lists_the_options() -> None:
    with pytest.raises(ConfigError, match="unknown option; valid options: optimizer, lr"):
        TrainConfig(optimiser="adam")


def test_config_is_frozen() -> None:
    with pytest.raises(ValueError):
        TrainConfig().lr = 1.0  # type: ignore[misc]


def test_model_configs_carry_the_training_options() -> None:
    model = create("bprmf", optimizer="adamw", schedule="one_cycle", epochs=3, lr=0.01)
    cfg = model.config.train_config()  # type: ignore[attr-defined]
    assert isinstance(cfg, TrainConfig)
    assert (cfg.optimizer, cfg.schedule, cfg.epochs, cfg.lr) == ("adamw", "one_cycle", 3, 0.01)


def test_model_config_rejects_bad_training_options() -> None:
    with pytest.raises(ConfigError, match="valid choices: sgd, momentum"):
        create("bprmf", optimizer="nope")
    with pytest.raises(ConfigError, match="single samples"):
        create("bprmf", optimizer="lbfgs", batch_size=1)
    with pytest.raises(ConfigError, match="unknown parameter 'optimiser'"):
        validate_params({"bprmf": {"optimiser": "adam"}})
