"""The torch training toolkit: configuration, optimisers and schedules by name,
initialisation, the trainer (early stopping, EMA, AMP, checkpoints) and curves.

Importing this package imports torch; the classic models never do.
"""

from shelfwise.train.config import INITS, OPTIMIZERS, SCHEDULES, TrainConfig, TrainFields
from shelfwise.train.init import apply_init
from shelfwise.train.metrics import topk_validation
from shelfwise.train.optim import Schedule, build_optimizer, build_scheduler
from shelfwise.train.trainer import (
    EMA,
    Trainer,
    TrainHistory,
    TrainTask,
    index_batches,
    n_batches,
    resolve_device,
    torch_threads,
)

__all__ = [
    "EMA",
    "INITS",
    "OPTIMIZERS",
    "SCHEDULES",
    "Schedule",
    "TrainConfig",
    "TrainFields",
    "TrainHistory",
    "TrainTask",
    "Trainer",
    "apply_init",
    "build_optimizer",
    "build_scheduler",
    "index_batches",
    "n_batches",
    "resolve_device",
    "topk_validation",
    "torch_threads",
]
