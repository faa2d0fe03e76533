"""Initialisation schemes: the right spread, zero biases, norms and padding untouched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from shelfwise.errors import ConfigError
from shelfwise.train import apply_init


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(500, 64, padding_idx=0)
        self.linear = nn.Linear(400, 300)
        self.norm = nn.LayerNorm(300)
        self.gru = nn.GRU(16, 32)


def fresh(name: str, std: float = 0.02) -> Net:
    torch.manual_seed(0)
    net = Net()
    with torch.no_grad():
        net.norm.weight.fill_(2.0)
        net.linear.bias.fill_(1.0)
    return apply_init(net, name, std)  # type: ignore[return-value]


def test_normal_uses_std() -> None:
    net = fresh("normal", std=0.05)
    assert net.linear.weight.std().item() == pytest.approx(0.05, rel=0.05)
    assert net.embed.weight[1:].std().item() == pytest.approx(0.05, rel=0.05)


def test_xavier_uniform_bound() -> None:
    net = fresh("xavier_uniform")
    bound = math.sqrt(6 / (400 + 300))
    w = net.linear.weight
    assert w.abs().max().item() <= bound
    assert w.abs().max().item() > 0.95 * bound


def test_xavier_normal_std() -> None:
    net = fresh("xavier_normal")
    assert net.linear.weight.std().item() == pytest.approx(math.sqrt(2 / 700), rel=0.05)


def test_kaiming_normal_std() -> None:
    net = fresh("kaiming_normal")
    assert net.linear.weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.05)


def test_kaiming_uniform_bound() -> None:
    net = fresh("kaiming_uniform")
    bound = math.sqrt(6 / 400)
    assert 0.95 * bound < net.linear.weight.abs().max().item() <= bound


@pytest.mark.parametrize("name", ["normal", "xavier_uniform", "kaiming_normal"])
def test_biases_zero_norms_and_padding_kept(name: str) -> None:
    net = fresh(name)
    assert torch.all(net.linear.bias == 0)
    assert torch.all(net.gru.bias_ih_l0 == 0)
    assert torch.all(net.norm.weight == 2.0)  # normalisation layers keep their values
    assert torch.all(net.embed.weight[0] == 0)
    assert net.gru.weight_hh_l0.std().item() > 0


def test_default_changes_nothing() -> None:
    torch.manual_seed(0)
    a = Net()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    apply_init(a, "default")
    assert all(torch.equal(before[k], v) for k, v in a.state_dict().items())


def test_seeded_init_is_reproducible() -> None:
    assert torch.equal(fresh("xavier_normal").linear.weight, fresh("xavier_normal").linear.weight)


def test_unknown_init() -> None:
    with pytest.raises(ConfigError, match="valid choices: default, normal"):
        apply_init(Net(), "glorot")
