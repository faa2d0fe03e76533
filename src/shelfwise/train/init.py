"""Weight initialisation by name: normal, Xavier (Glorot) and He (Kaiming).

`apply_init(module, name)` visits every sub-module and re-initialises its own parameters:
matrices and higher (Linear / Conv / Embedding weights, RNN and attention projections) get
the named scheme, vectors that are biases get zeros; normalisation layers (LayerNorm,
BatchNorm, ...) keep their torch defaults (weight 1, bias 0). An Embedding's `padding_idx`
row is zeroed again afterwards. `default` leaves torch's own initialisation untouched.
"""

from __future__ import annotations

import torch
from torch import nn

from shelfwise.errors import ConfigError
from shelfwise.train.config import INITS

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.RMSNorm)


def init_tensor(tensor: torch.Tensor, name: str, std: float = 0.02) -> None:
    """Initialise one weight tensor (2-D or more) in place with the named scheme."""
    if name == "normal":
        nn.init.normal_(tensor, mean=0.0, std=std)
    elif name == "xavier_uniform":
        nn.init.xavier_uniform_(tensor)
    elif name == "xavier_normal":
        nn.init.xavier_normal_(tensor)
    elif name == "kaiming_uniform":
        nn.init.kaiming_uniform_(tensor, nonlinearity="relu")
    elif name == "kaiming_normal":
        nn.init.kaiming_normal_(tensor, nonlinearity="relu")
    else:
        raise ConfigError(f"unknown init {name!r}; valid choices: {', '.join(INITS)}")


@torch.no_grad()
def apply_init(module: nn.Module, name: str, std: float = 0.02) -> nn.Module:
    """Re-initialise `module`'s weights with scheme `name` (see the module doc); returns it.

    Draws from torch's global generator, so seed it first for reproducible weights.
    """
    if name not in INITS:
        raise ConfigError(f"unknown init {name!r}; valid choices: {', '.join(INITS)}")
    if name == "default":
        return module
    for sub in module.modules():
        if isinstance(sub, _NORMS):
            continue
        for pname, param in sub.named_parameters(recurse=False):
            if param.dim() >= 2:
                init_tensor(param, name, std)
            elif "bias" in pname:
                nn.init.zeros_(param)
        if isinstance(sub, nn.Embedding) and sub.padding_idx is not None:
            sub.weight[sub.padding_idx].zero_()
    return module
