"""The torch training toolkit: configuration, optimisers and schedules by name,
initialisation, the trainer (early stopping, EMA, AMP, checkpoints) and curves.

The names below are imported on first use, so `shelfwise.train.config` (what the CLI's
parser reads) does not import torch; the trainer, optimisers and initialisation do.
"""

from __future__ import annotations

from shelfwise._lazy import lazy_exports

_EXPORTS = {
    "INITS": "config",
    "OPTIMIZERS": "config",
    "SCHEDULES": "config",
    "TrainConfig": "config",
    "TrainFields": "config",
    "apply_init": "init",
    "topk_validation": "metrics",
    "Schedule": "optim",
    "build_optimizer": "optim",
    "build_scheduler": "optim",
    "EMA": "trainer",
    "Trainer": "trainer",
    "TrainHistory": "trainer",
    "TrainTask": "trainer",
    "index_batches": "trainer",
    "n_batches": "trainer",
    "resolve_device": "trainer",
    "torch_threads": "trainer",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
