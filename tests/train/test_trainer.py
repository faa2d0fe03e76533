"""The Trainer on a known-answer task: linear regression y = X w + b (w, b known)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from shelfwise.errors import ConfigError
from shelfwise.train import (
    EMA,
    OPTIMIZERS,
    TrainConfig,
    Trainer,
    TrainHistory,
    TrainTask,
    index_batches,
)
from shelfwise.train.curves import plot_comparison, plot_curves

W_TRUE = torch.tensor([1.0, -2.0, 0.5, 3.0])
B_TRUE = 0.7
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Regression:
    """64 samples, 4 features; MSE loss; validation score = -MSE on 32 fresh samples."""

    def __init__(self, dropout: float = 0.0, n: int = 64) -> None:
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ W_TRUE + B_TRUE
        self.vx = torch.randn(32, 4, generator=g)
        self.vy = self.vx @ W_TRUE + B_TRUE
        self.module: nn.Module = nn.Sequential(nn.Dropout(dropout), nn.Linear(4, 1))
        self.device = torch.device("cpu")
        self.losses = 0
        self.batch_sizes: list[int] = []

    def batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterator[Any]:
        return index_batches(self.x.shape[0], batch_size, generator)

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        self.losses += 1
        self.batch_sizes.append(int(batch.numel()))
        pred = self.module(self.x[batch].to(self.device)).squeeze(-1)
        return ((pred - self.y[batch]) ** 2).mean()

    def mse(self) -> float:
        with torch.no_grad():
            return float(((self.module(self.vx).squeeze(-1) - self.vy) ** 2).mean())

    def validate(self) -> dict[str, float]:
        return {"score": -self.mse()}


class Scripted(Regression):
    """Validation scores read from a list; the weights at each validation are recorded."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores
        self.seen: list[torch.Tensor] = []

    def validate(self) -> dict[str, float]:
        self.seen.append(self.module[1].weight.detach().clone())
        return {"score": self.scores[len(self.seen) - 1]}


def weights(task: Regression) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in task.module.parameters()])


def cfg(**options: Any) -> TrainConfig:
    base: dict[str, Any] = {"monitor": "score", "patience": 0, "device": "cpu", "threads": 1}
    base.update(options)
    return TrainConfig(**base)


def test_task_satisfies_the_protocol() -> None:
    assert isinstance(Regression(), TrainTask)


LRS = {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.5, "rmsprop": 0.03,
       "adam": 0.05, "adamw": 0.05, "adadelta": 20.0, "lbfgs": 1.0}  # fmt: skip


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_fits(optimizer: str) -> None:
    task = Regression()
    start = task.mse()
    batch = 0 if optimizer == "lbfgs" else 16
    epochs = 3 if optimizer == "lbfgs" else 40
    history = Trainer(
        task, cfg(optimizer=optimizer, lr=LRS[optimizer], batch_size=batch, epochs=epochs),
        progress=False,
    ).fit()  # fmt: skip
    assert len(history.epochs) == epochs
    assert task.mse() < 0.01 * start


def test_lbfgs_recovers_the_weights() -> None:
    task = Regression()
    Trainer(task, cfg(optimizer="lbfgs", lr=1.0, batch_size=0, epochs=2), progress=False).fit()
    linear = task.module[1]
    assert torch.allclose(linear.weight.detach().squeeze(), W_TRUE, atol=1e-3)
    assert linear.bias.item() == pytest.approx(B_TRUE, abs=1e-3)


@pytest.mark.parametrize(("batch_size", "steps", "size"), [(0, 1, 64), (1, 64, 1), (16, 4, 16)])
def test_batch_modes(batch_size: int, steps: int, size: int) -> None:
    task = Regression()
    trainer = Trainer(task, cfg(batch_size=batch_size, epochs=2, lr=0.01), progress=False)
    assert trainer.steps_per_epoch == steps
    trainer.train_epoch()
    assert task.losses == steps and set(task.batch_sizes) == {size}


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    runs = []
    for seed in (1, 1, 2):
        task = Regression(dropout=0.3)
        Trainer(task, cfg(seed=seed, epochs=5, batch_size=8, init="xavier_uniform"),
                progress=False).fit()  # fmt: skip
        runs.append(weights(task))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


RESUME = {"epochs": 6, "batch_size": 8, "init": "xavier_uniform", "lr": 0.05,
          "schedule": "cosine", "ema_decay": 0.8, "patience": 3, "optimizer": "adamw",
          "weight_decay": 0.01}  # fmt: skip


def test_resume_continues_exactly(tmp_path: Path) -> None:
    full = Regression(dropout=0.2)
    expected = Trainer(full, cfg(**RESUME), checkpoint_dir=tmp_path / "a", progress=False).fit()
    assert (tmp_path / "a" / "checkpoint.pt").is_file()

    interrupted = Regression(dropout=0.2)
    first = Trainer(interrupted, cfg(**RESUME), checkpoint_dir=tmp_path / "b", progress=False)
    for _ in range(3):
        first.train_epoch()
    del first  # the process "dies" after epoch 3

    resumed_task = Regression(dropout=0.2)
    resumed = Trainer(
        resumed_task, cfg(**RESUME), checkpoint_dir=tmp_path / "b", progress=False, resume=True
    )
    assert resumed.epoch == 3
    history = resumed.fit()
    assert torch.equal(weights(resumed_task), weights(full))
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in history.epochs]
    want = [{k: v for k, v in e.items() if k != "seconds"} for e in expected.epochs]
    assert strip == want
    assert history.best_epoch == expected.best_epoch


def test_resume_refuses_other_options(tmp_path: Path) -> None:
    Trainer(Regression(), cfg(epochs=2), checkpoint_dir=tmp_path, progress=False).fit()
    with pytest.raises(ConfigError, match=r"lr: checkpoint 0\.001, now 0\.5"):
        Trainer(Regression(), cfg(epochs=4, lr=0.5), checkpoint_dir=tmp_path, resume=True)
    # a longer run of the same options may continue
    trainer = Trainer(Regression(), cfg(epochs=4), checkpoint_dir=tmp_path, resume=True,
                      progress=False)  # fmt: skip
    assert trainer.epoch == 2 and len(trainer.fit().epochs) == 4


def test_resume_without_checkpoint_starts_afresh(tmp_path: Path) -> None:
    trainer = Trainer(Regression(), cfg(epochs=1), checkpoint_dir=tmp_path, resume=True)
    assert trainer.epoch == 0


def test_early_stopping_restores_the_best_weights() -> None:
    task = Scripted([0.1, 0.3, 0.2, 0.25, 0.9])
    trainer = Trainer(task, cfg(epochs=5, patience=2, lr=0.05), progress=False)
    history = trainer.fit()
    assert trainer.should_stop and history.stopped_early
    assert len(history.epochs) == 4  # epochs 3 and 4 did not beat epoch 2
    assert (history.best_epoch, history.best_value) == (2, 0.3)
    assert torch.equal(task.module[1].weight.detach(), task.seen[1])
    assert not torch.equal(task.seen[1], task.seen[3])


def test_min_delta_and_no_restore() -> None:
    task = Scripted([0.1, 0.105, 0.108, 0.5])
    history = Trainer(
        task, cfg(epochs=4, patience=2, min_delta=0.01, restore_best=False), progress=False
    ).fit()
    assert history.best_epoch == 1 and len(history.epochs) == 3
    assert torch.equal(task.module[1].weight.detach(), task.seen[-1])


def test_eval_every() -> None:
    history = Trainer(Regression(), cfg(epochs=5, eval_every=2), progress=False).fit()
    assert [("score" in e) for e in history.epochs] == [False, True, False, True, True]


def test_monitor_must_be_a_validation_metric() -> None:
    with pytest.raises(ConfigError, match="monitor 'ndcg@10' is not among"):
        Trainer(Regression(), cfg(epochs=2, monitor="ndcg@10"), progress=False).fit()


def test_monitor_loss_without_validation() -> None:
    class NoValidation(Regression):
        def validate(self) -> dict[str, float]:
            return {}

    history = Trainer(NoValidation(), cfg(epochs=4, monitor="loss", lr=0.05), progress=False).fit()
    losses = [e["loss"] for e in history.epochs]
    assert history.best_value == min(losses)


def test_ema_math() -> None:
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA(lin, 0.5)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema.update(lin)
    ema.update(lin)
    assert ema.shadow["weight"].item() == pytest.approx(0.75)
    assert ema.state(lin)["weight"].item() == pytest.approx(0.75)


def test_ema_weights_are_the_final_weights() -> None:
    task = Regression()
    trainer = Trainer(task, cfg(epochs=3, ema_decay=0.9, lr=0.05, restore_best=False),
                      progress=False)  # fmt: skip
    trainer.fit()
    assert trainer.ema is not None
    assert torch.equal(task.module[1].weight.detach(), trainer.ema.shadow["1.weight"])


def test_grad_clip_bounds_the_step() -> None:
    task = Regression()
    before = weights(task).clone()
    trainer = Trainer(task, cfg(optimizer="sgd", lr=1.0, grad_clip=0.01, batch_size=0, epochs=1),
                      progress=False)  # fmt: skip
    trainer.train_epoch()
    step = (weights(task) - before).norm().item()
    assert 0 < step <= 0.01 + 1e-6


def test_l1_and_lbfgs_weight_decay_shrink() -> None:
    norms = {}
    for name, options in {
        "plain": {"optimizer": "adam", "lr": 0.05},
        "l1": {"optimizer": "adam", "lr": 0.05, "l1": 2.0},
        "lbfgs_l2": {"optimizer": "lbfgs", "lr": 1.0, "batch_size": 0, "weight_decay": 10.0},
    }.items():
        task = Regression()
        Trainer(task, cfg(epochs=30, batch_size=options.pop("batch_size", 16), **options),
                progress=False).fit()  # fmt: skip
        norms[name] = task.module[1].weight.abs().sum().item()
    assert norms["plain"] == pytest.approx(W_TRUE.abs().sum().item(), rel=0.02)
    assert norms["l1"] < 0.8 * norms["plain"]
    assert norms["lbfgs_l2"] < 0.8 * norms["plain"]


def test_divergence_stops_without_raising() -> None:
    task = Regression()
    history = Trainer(task, cfg(optimizer="sgd", lr=1e4, epochs=10), progress=False).fit()
    assert history.diverged and len(history.epochs) < 10


def test_amp_on_cpu_trains() -> None:
    task = Regression()
    start = task.mse()
    Trainer(task, cfg(amp=True, lr=0.05, epochs=20, batch_size=16), progress=False).fit()
    assert math.isfinite(task.mse()) and task.mse() < 0.1 * start


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="torch sees no GPU"):
        Trainer(Regression(), cfg(device="cuda"))


def test_progress_bar_shows_loss_lr_and_metric(capsys: pytest.CaptureFixture[str]) -> None:
    Trainer(Regression(), cfg(epochs=2), progress=True).fit()
    err = capsys.readouterr().err
    assert "loss=" in err and "lr=" in err and "score=" in err and "2/2" in err


def test_history_json_and_curves(tmp_path: Path) -> None:
    history = Trainer(Regression(), cfg(epochs=3, lr=0.05), progress=False).fit()
    assert set(history.epochs[0]) == {"epoch", "loss", "lr", "seconds", "score"}
    history.to_json(tmp_path / "curves.json")
    back = TrainHistory.from_json(tmp_path / "curves.json")
    assert back == history
    assert json.loads((tmp_path / "curves.json").read_text())["monitor"] == "score"
    png = plot_curves(history, tmp_path / "curves.png", title="regression")
    assert png.read_bytes()[:8] == PNG_MAGIC
    other = plot_comparison({"a": history, "b": back}, tmp_path / "cmp.png", metric="score")
    assert other.read_bytes()[:8] == PNG_MAGIC
