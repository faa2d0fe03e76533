"""The base of every torch recommender: config with the training options, fit through the
shared `Trainer`, epoch-by-epoch training for the tuner, npz save / load, chunked scoring.

A torch model subclasses `TorchModelConfig` (its own fields, plus every training option of
`shelfwise.train.config.TrainFields` flat, so `--set bprmf.optimizer=adamw` or
`--set sasrec.epochs=5` work like any model parameter) and `TorchRecommender`, and
implements:

- `_build(interactions, items, validation)` (what `fit` got): prepare the training data and create
  `self.module` (torch is seeded with `seed` first, so the module's initial weights are
  reproducible);
- `_task()`: the `TrainTask` (batches, loss, validate) over what `_build` prepared;
- `_new_module(arrays)`: an untrained module shaped like the saved arrays (for `load`);
- `_score_block(histories, users)`: scores of a block of rows (eval mode, no grad).

Validation during fit. `fit(..., validation=matrix)` uses the given held-out matrix (the
evaluation runner passes the protocol's validation part). Without one (or when it is
empty), models hold out a random `val_fraction` of each user's training interactions
(`data.splits.carve_validation` with `min_interactions=2`: users with at least 2
interactions hold out at least one and keep at least one) to drive early stopping and
restore-best, and train on the rest; `val_fraction=0` trains on everything,
without validation (then the run lasts `epochs` epochs and EMA, if set, gives the final
weights).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from shelfwise.errors import NotFittedError
from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr
from shelfwise.recommenders.space import Choice, FloatRange, IntRange, SearchSpace, when
from shelfwise.train.config import TrainConfig, TrainFields
from shelfwise.train.trainer import Trainer, TrainHistory, TrainTask, torch_threads

MODULE_PREFIX = "module."


def training_space(
    *,
    lr: tuple[float, float] = (1e-4, 1e-2),
    batch_sizes: tuple[int, ...] = (64, 128, 256),
    optimizers: tuple[str, ...] = ("adam", "adamw", "adagrad", "rmsprop"),
    schedules: tuple[str, ...] = ("constant", "cosine", "warmup_cosine", "one_cycle"),
    weight_decays: tuple[float, ...] = (0.0, 1e-6, 1e-5, 1e-4, 1e-3),
) -> SearchSpace:
    """The training part of a torch model's search space: schedule, optimiser, learning
    rate, weight decay, batch size, and the warm-up epochs of a warm-up schedule. A model's
    `SEARCH_SPACE` puts its own fields (sizes, depth, dropout) before these.

    Weight decay is a categorical over values that include 0 (a log range cannot), so a
    model's default configuration stays a point of its space and is queued as the first
    trial.
    """
    warmups = tuple(s for s in schedules if s.startswith("warmup"))
    return {
        "schedule": Choice(schedules),
        "optimizer": Choice(optimizers),
        "lr": FloatRange(lr[0], lr[1], log=True),
        "weight_decay": Choice(weight_decays),
        "batch_size": Choice(batch_sizes),
        "warmup_epochs": IntRange(1, 3, when=when("schedule", *warmups)),
    }


class TorchModelConfig(ModelConfig, TrainFields):
    """A torch model's config: its own fields plus every training option (`TrainFields`).

    `val_fraction`: the share of each user's interactions held out for validation when
    `fit` gets no validation matrix (0 disables). `score_chunk`: rows scored per forward
    pass.
    """

    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    score_chunk: int = Field(default=1024, ge=1)

    def train_config(self) -> TrainConfig:
        """The training options as a `TrainConfig`."""
        return TrainConfig(**self.train_fields())


class TorchRecommender(Recommender):
    """A recommender trained by `shelfwise.train.Trainer` (see the module doc)."""

    config: TorchModelConfig

    def __init__(self, config: TorchModelConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.module: nn.Module | None = None
        self.trainer: Trainer | None = None
        self.history: TrainHistory | None = None

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    def _build(self, interactions: Any, items: pd.DataFrame | None, validation: Any | None) -> None:
        """Prepare the training data and create `self.module` (torch already seeded).

        `interactions` is what `fit` was given: a CSR matrix, an `Interactions`, or (for
        sequential models) an object carrying ordered sequences besides `.matrix`.
        """

    @abstractmethod
    def _task(self) -> TrainTask:
        """The trainer's task over the data `_build` prepared."""

    @abstractmethod
    def _new_module(self, arrays: dict[str, np.ndarray]) -> nn.Module:
        """An untrained module whose parameter shapes match the saved `arrays`."""

    @abstractmethod
    def _score_block(self, histories: sp.csr_matrix, users: np.ndarray | None) -> Any:
        """Scores (rows x n_items, tensor or array) of one block; eval mode, no grad."""

    def _extra_arrays(self) -> dict[str, np.ndarray]:
        """Learned or derived arrays besides the module's state (saved with it)."""
        return {}

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what `_extra_arrays` saved."""

    # -- training ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """Where the module's parameters live."""
        if self.module is None:
            return torch.device("cpu")
        first = next(self.module.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def start(
        self,
        interactions: Any,
        items: pd.DataFrame | None = None,
        validation: Any | None = None,
        checkpoint_dir: Path | str | None = None,
        resume: bool = False,
        progress: bool = False,
    ) -> TorchRecommender:
        """Prepare the data, the module and the trainer without training (see `train_epoch`).

        `validation` is a users x items matrix of held-out items (or what the model's
        `_build` accepts); empty or None means the model's internal hold-out.
        """
        cfg = self.config.train_config()
        x = as_csr(interactions)
        if isinstance(validation, sp.spmatrix | sp.sparray) and validation.nnz == 0:
            validation = None
        torch.manual_seed(cfg.seed)
        self._build(interactions, items, validation)
        if self.module is None:
            raise NotFittedError(f"{self.name}: _build() did not create a module")
        self.n_items = int(x.shape[1])
        self.trainer = Trainer(self._task(), cfg, checkpoint_dir, progress=progress, resume=resume)
        self.history = self.trainer.history
        return self

    def train_epoch(self) -> dict[str, float]:
        """One more epoch after `start` (or `fit`); returns its record (loss, lr, seconds and
        the validation metrics), so a tuner can report every epoch and prune."""
        if self.trainer is None:
            raise NotFittedError(f"{self.name}: call start() or fit() before train_epoch()")
        row = self.trainer.train_epoch()
        self.history = self.trainer.history
        return row

    def fit(
        self,
        interactions: Any,
        items: pd.DataFrame | None = None,
        validation: Any | None = None,
        checkpoint_dir: Path | str | None = None,
        resume: bool = False,
        progress: bool = False,
    ) -> TorchRecommender:
        """`start`, then train until `epochs` or early stopping; the best (or averaged)
        weights are kept and the per-epoch records are in `self.history`."""
        self.start(interactions, items, validation, checkpoint_dir, resume, progress)
        assert self.trainer is not None
        self.history = self.trainer.fit()
        return self

    # -- scoring -------------------------------------------------------------------------
    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Scores of every item for each row, in eval mode without gradients, in chunks of
        `score_chunk` rows."""
        self._check_fitted()
        assert self.module is not None
        histories = sp.csr_matrix(histories, dtype=np.float32)
        n = histories.shape[0]
        out = np.empty((n, self.n_items), dtype=np.float32)
        users_arr = None if users is None else np.asarray(users, dtype=np.int64)
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad(), torch_threads(self.config.threads):
                step = self.config.score_chunk
                for start in range(0, n, step):
                    block_users = None if users_arr is None else users_arr[start : start + step]
                    s = self._score_block(histories[start : start + step], block_users)
                    if isinstance(s, torch.Tensor):
                        s = s.detach().float().cpu().numpy()
                    out[start : start + step] = s
        finally:
            self.module.train(was_training)
        return out

    # -- persistence ---------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        if self.module is None:
            raise NotFittedError(f"{self.name}: nothing to save")
        arrays = {
            MODULE_PREFIX + k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()
        }
        arrays.update(self._extra_arrays())
        return arrays

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        module = self._new_module(arrays)
        state = {
            k[len(MODULE_PREFIX) :]: torch.from_numpy(np.ascontiguousarray(v))
            for k, v in arrays.items()
            if k.startswith(MODULE_PREFIX)
        }
        module.load_state_dict(state)
        module.eval()
        self.module = module
        self._restore_extra(arrays)
