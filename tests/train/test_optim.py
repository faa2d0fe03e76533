"""Optimisers by name and the learning-rate each schedule gives, step by step."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from shelfwise.train import OPTIMIZERS, TrainConfig, build_optimizer, build_scheduler


def params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.zeros(3))]


@pytest.mark.parametrize(
    ("name", "cls", "extra"),
    [
        ("sgd", torch.optim.SGD, {"momentum": 0, "nesterov": False}),
        ("momentum", torch.optim.SGD, {"momentum": 0.9, "nesterov": False}),
        ("nesterov", torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
        ("adagrad", torch.optim.Adagrad, {}),
        ("rmsprop", torch.optim.RMSprop, {}),
        ("adam", torch.optim.Adam, {}),
        ("adamw", torch.optim.AdamW, {}),
        ("adadelta", torch.optim.Adadelta, {}),
        ("lbfgs", torch.optim.LBFGS, {"line_search_fn": "strong_wolfe"}),
    ],
)
def test_build_optimizer(name: str, cls: type, extra: dict[str, Any]) -> None:
    wd = 0.0 if name == "lbfgs" else 0.01
    opt = build_optimizer(params(), TrainConfig(optimizer=name, lr=0.3, weight_decay=wd))
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.3
    if name != "lbfgs":
        assert group["weight_decay"] == 0.01
    for key, value in extra.items():
        assert group[key] == value


def test_every_optimizer_is_covered() -> None:
    assert len(OPTIMIZERS) == 9


def lrs(steps_per_epoch: int = 4, **options: Any) -> list[list[float]]:
    """The lr of every batch, epoch by epoch (metric 0 every epoch for plateau)."""
    cfg = TrainConfig(**options)
    opt = build_optimizer(params(), cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs):
        epoch = []
        for _ in range(steps_per_epoch):
            epoch.append(sched.lr)
            opt.step()
            sched.step_batch()
        out.append(epoch)
        sched.step_epoch(0.0)
    return out


def test_constant() -> None:
    assert {lr for e in lrs(epochs=5, lr=0.1) for lr in e} == {0.1}


def test_step() -> None:
    got = lrs(epochs=7, lr=0.1, schedule="step", step_size=3, gamma=0.5)
    assert [e[0] for e in got] == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025])
    assert all(len(set(e)) == 1 for e in got)


def test_exponential() -> None:
    got = lrs(epochs=4, lr=0.1, schedule="exponential", gamma=0.9)
    assert [e[0] for e in got] == pytest.approx([0.1 * 0.9**i for i in range(4)])


def test_cosine_per_batch() -> None:
    flat = [lr for e in lrs(epochs=10, lr=0.1, schedule="cosine", min_lr=0.01) for lr in e]
    total = len(flat)
    expected = [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * s / total)) for s in range(total)]
    assert flat == pytest.approx(expected)


def test_warmup_linear() -> None:
    flat = [lr for e in lrs(epochs=6, lr=0.1, schedule="warmup_linear", warmup_epochs=2)
            for lr in e]  # fmt: skip
    assert flat[:8] == pytest.approx([0.1 * (s + 1) / 8 for s in range(8)])
    decay = flat[8:]  # 16 steps from 0.1 down towards 0
    assert decay == pytest.approx([0.1 * (1 - s / 16) for s in range(16)])


def test_warmup_cosine_peaks_after_warmup() -> None:
    flat = [lr for e in lrs(epochs=6, lr=0.1, schedule="warmup_cosine", warmup_epochs=1)
            for lr in e]  # fmt: skip
    assert max(flat) == pytest.approx(0.1)
    assert flat.index(max(flat)) in (3, 4)
    assert flat[-1] < 0.01


def test_one_cycle() -> None:
    flat = [lr for e in lrs(epochs=10, lr=0.1, schedule="one_cycle") for lr in e]
    assert flat[0] == pytest.approx(0.1 / 25)
    peak = flat.index(max(flat))
    assert max(flat) == pytest.approx(0.1, rel=1e-3)
    assert 0.2 * len(flat) <= peak <= 0.4 * len(flat)
    assert flat[-1] < 1e-4


def test_plateau_reduces_after_patience() -> None:
    got = lrs(epochs=6, lr=0.1, schedule="plateau", plateau_patience=1, gamma=0.5)
    # metric stays at 0: epoch 1 sets the best, epochs 2 and 3 do not improve -> halve
    assert [e[0] for e in got] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])


def test_schedule_state_roundtrip() -> None:
    cfg = TrainConfig(lr=0.1, schedule="one_cycle", epochs=4)
    opt = build_optimizer(params(), cfg)
    sched = build_scheduler(opt, cfg, 5)
    for _ in range(7):
        opt.step()
        sched.step_batch()
    state, opt_state = sched.state_dict(), opt.state_dict()
    opt2 = build_optimizer(params(), cfg)
    sched2 = build_scheduler(opt2, cfg, 5)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(state)
    for _ in range(5):
        assert sched2.lr == pytest.approx(sched.lr)
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step_batch()
