"""BPR matrix factorisation in torch (Rendle et al. 2009), trained by the shared `Trainer`.

Score x_ui = p_u . q_i + b_i. Each training example is a (user, positive item, negative
item) triple: every stored cell of the training matrix is a positive; `neg_samples`
negatives per positive are drawn uniformly from the items the user has not interacted with
(rejection sampling against the sorted positive keys, a few rounds, on the training device).
The loss is the BPR criterion, mean over the batch of -log sigmoid(x_ui - x_uj), plus
`reg` times the mean squared norm of the embeddings the batch touched (the per-example L2
of the paper; the trainer's `weight_decay` adds a global one on top, if set). `dropout`
drops user-vector components during training.

Being a plain, convex-in-each-factor problem it is the reference model of the optimiser
study (`benchmarks/optimizer_study.py`): every optimiser, schedule, initialisation and
batch mode of `shelfwise.train` applies to it.

Validation (early stopping) ranks all items for the validation users with their learned
factors, training items excluded, and reports NDCG@10 / HR@10 / recall@10; see
`shelfwise.recommenders.torch_base` for where validation data comes from.

A row whose training user index is given in `users` is scored with the learned user
vector. Any other row (a new user, or `users` omitted) is folded in by the least-squares
projection of its history onto the item factors, x = (Q^T Q + fold_in_l2 I)^-1 Q^T h, and
scored Q x without the item bias (the projection lives on the 0/1 scale of h; the same
fold-in as the `bpr` model, see `shelfwise.recommenders.bpr`). The default ridge is large:
as it grows, x tends to Q^T h / fold_in_l2, i.e. items are ranked by the factor-space
similarity of the history's items, which on MovieLens-100K (holdout, precision@10) gives
0.35 against 0.20 at fold_in_l2=10, where the projection overfits the 0/1 history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional

from shelfwise.data.splits import carve_validation
from shelfwise.errors import DataError
from shelfwise.recommenders.als import similar_by_factors
from shelfwise.recommenders.base import as_csr, register
from shelfwise.recommenders.space import FloatRange, IntRange, SearchSpace
from shelfwise.recommenders.torch_base import (
    MODULE_PREFIX,
    TorchModelConfig,
    TorchRecommender,
    training_space,
)
from shelfwise.train.config import InitName, OptimizerName, ScheduleName
from shelfwise.train.metrics import topk_validation
from shelfwise.train.trainer import TrainTask, index_batches, n_batches
from shelfwise.types import Results


class BPRMFConfig(TorchModelConfig):
    """Factors, per-example L2 (`reg`), negatives per positive, item bias, dropout and the
    fold-in ridge, plus every training option (defaults tuned on MovieLens-100K).

    `threads` defaults to 1: the batches are small matrix products, for which torch's
    thread pool costs more than it gains (and much more on a busy machine).
    """

    factors: int = Field(default=64, ge=1)
    reg: float = Field(default=1e-2, ge=0.0)
    neg_samples: int = Field(default=1, ge=1)
    item_bias: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    fold_in_l2: float = Field(default=1e4, gt=0.0)
    optimizer: OptimizerName = "adam"
    lr: float = Field(default=5e-3, gt=0.0)
    epochs: int = Field(default=60, ge=1)
    batch_size: int = Field(default=2048, ge=0)
    patience: int = Field(default=5, ge=0)
    init: InitName = "normal"
    init_std: float = Field(default=0.1, gt=0.0)
    schedule: ScheduleName = "constant"
    threads: int = Field(default=1, ge=0)

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "factors": IntRange(16, 256, log=True),
        "reg": FloatRange(1e-5, 1e-1, log=True),
        "dropout": FloatRange(0.0, 0.5),
        **training_space(
            lr=(1e-4, 5e-2),
            batch_sizes=(512, 1024, 2048, 4096),
            optimizers=("adam", "adamw", "adagrad", "rmsprop"),
        ),
    }


class BPRMFModule(nn.Module):
    """User and item embeddings plus an item bias vector."""

    def __init__(self, n_users: int, n_items: int, factors: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users, factors)
        self.item = nn.Embedding(n_items, factors)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.dropout = nn.Dropout(dropout)

    def pair_scores(
        self, users: torch.Tensor, items: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_ui for users (B) x items (B, n), user vectors, item vectors)."""
        p = self.dropout(self.user(users))
        q = self.item(items)
        return (p.unsqueeze(1) * q).sum(-1) + self.item_bias[items], p, q

    def full_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for the given users."""
        return self.user(users) @ self.item.weight.T + self.item_bias


class BPRTask:
    """Triples (user, positive, negatives) from a CSR matrix; BPR loss; top-10 validation."""

    def __init__(
        self,
        module: BPRMFModule,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None,
        config: BPRMFConfig,
    ) -> None:
        self.module = module
        self.device = torch.device("cpu")
        self.config = config
        self.train = train
        self.validation = validation
        self.n_items = int(train.shape[1])
        coo = train.tocoo()
        self._users = torch.as_tensor(coo.row, dtype=torch.long)
        self._items = torch.as_tensor(coo.col, dtype=torch.long)
        self._keys = torch.sort(self._users * self.n_items + self._items).values
        self._val_users = (
            np.flatnonzero(np.diff(validation.indptr) > 0) if validation is not None else None
        )

    def _on(self, device: torch.device) -> None:
        if self._users.device != device:
            self._users = self._users.to(device)
            self._items = self._items.to(device)
            self._keys = self._keys.to(device)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch."""
        return n_batches(int(self._users.numel()), batch_size)

    def _is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        pos = torch.searchsorted(self._keys, keys).clamp_(max=self._keys.numel() - 1)
        return self._keys[pos] == keys

    def batches(
        self, epoch: int, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Shuffled positives with freshly drawn negatives."""
        self._on(generator.device)
        k = self.config.neg_samples
        for idx in index_batches(int(self._users.numel()), batch_size, generator):
            u, i = self._users[idx], self._items[idx]
            uu = u.unsqueeze(1).expand(-1, k)
            j = torch.randint(self.n_items, uu.shape, generator=generator, device=generator.device)
            for _ in range(5):  # resample negatives that hit a positive
                bad = self._is_positive(uu, j)
                if not bool(bad.any()):
                    break
                fresh = torch.randint(
                    self.n_items, uu.shape, generator=generator, device=generator.device
                )
                j = torch.where(bad, fresh, j)
            yield u, i, j

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """BPR loss plus per-example L2 on the touched embeddings."""
        u, i, j = (t.to(self.device) for t in batch)
        m = self.module
        p = m.dropout(m.user(u))
        qi, qj = m.item(i), m.item(j)  # (B, f), (B, k, f)
        xi = (p * qi).sum(-1) + m.item_bias[i]
        xj = (p.unsqueeze(1) * qj).sum(-1) + m.item_bias[j]
        loss = -functional.logsigmoid(xi.unsqueeze(1) - xj).mean()
        reg = self.config.reg
        if reg > 0:
            norms = p.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1).mean(-1)
            loss = loss + reg * norms.mean()
        return loss

    def validate(self) -> dict[str, float]:
        """NDCG@10, HR@10 and recall@10 of the held-out items (training items excluded)."""
        if self.validation is None or self._val_users is None or self._val_users.size == 0:
            return {}
        module = self.module

        def score_rows(users: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(users, dtype=torch.long, device=self.device)
            return module.full_scores(t).float().cpu().numpy()

        return topk_validation(score_rows, self._val_users, self.train, self.validation, k=10)


@register
class BPRMF(TorchRecommender):
    """BPR-MF in torch: any optimiser / schedule / regulariser of `shelfwise.train`."""

    name = "bprmf"
    Config = BPRMFConfig
    config: BPRMFConfig

    def __init__(self, config: BPRMFConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self._train: sp.csr_matrix | None = None
        self._validation: sp.csr_matrix | None = None

    @property
    def n_users(self) -> int:
        """Number of training users with learned vectors."""
        if self.module is None:
            return 0
        return int(self._mf.user.weight.shape[0])

    @property
    def _mf(self) -> BPRMFModule:
        assert isinstance(self.module, BPRMFModule), "fit() or load() first"
        return self.module

    def _build(self, interactions: Any, items: pd.DataFrame | None, validation: Any | None) -> None:
        c = self.config
        train = as_csr(interactions)
        train.sort_indices()
        if validation is not None:
            val: sp.csr_matrix | None = sp.csr_matrix(validation, dtype=np.float32)
            if val is not None and val.shape != train.shape:
                raise DataError(
                    f"bprmf: the validation matrix is {val.shape[0]} x {val.shape[1]} but the "
                    f"training matrix is {train.shape[0]} x {train.shape[1]}; give one over "
                    "the same users and items"
                )
        elif c.val_fraction > 0:
            train, val = carve_validation(train, c.val_fraction, c.seed, min_interactions=2)
        else:
            val = None
        self._train, self._validation = train, val
        n_users, n_items = train.shape
        self.module = BPRMFModule(n_users, n_items, c.factors, c.dropout)

    def _task(self) -> TrainTask:
        assert isinstance(self.module, BPRMFModule) and self._train is not None
        return BPRTask(self.module, self._train, self._validation, self.config)

    def _new_module(self, arrays: dict[str, np.ndarray]) -> nn.Module:
        n_users, factors = arrays[MODULE_PREFIX + "user.weight"].shape
        n_items = arrays[MODULE_PREFIX + "item.weight"].shape[0]
        return BPRMFModule(int(n_users), int(n_items), int(factors), self.config.dropout)

    # -- scoring -------------------------------------------------------------------------
    def item_factors(self) -> np.ndarray:
        """Item embeddings (n_items x factors) as numpy."""
        return self._mf.item.weight.detach().float().cpu().numpy()

    def fold_in(self, histories: sp.csr_matrix) -> np.ndarray:
        """User vectors projected from history rows (see the module doc)."""
        q = self.item_factors().astype(np.float64)
        gram = q.T @ q + self.config.fold_in_l2 * np.eye(q.shape[1])
        rhs = np.asarray(sp.csr_matrix(histories, dtype=np.float64) @ q)
        return np.linalg.solve(gram, rhs.T).T

    def _score_block(self, histories: sp.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        m = self._mf
        out = np.empty((histories.shape[0], self.n_items), dtype=np.float32)
        known = np.zeros(histories.shape[0], dtype=bool)
        if users is not None:
            known = (users >= 0) & (users < self.n_users)
        if users is not None and known.any():
            idx = torch.as_tensor(users[known], dtype=torch.long, device=self.device)
            out[known] = m.full_scores(idx).float().cpu().numpy()
        unknown = np.flatnonzero(~known)
        if unknown.size:
            x = self.fold_in(histories[unknown])
            out[unknown] = (x @ self.item_factors().astype(np.float64).T).astype(np.float32)
        return out

    def similar_items(self, item: int, k: int = 10) -> Results:
        """Items by cosine of their embeddings (itself excluded)."""
        self._check_fitted()
        return similar_by_factors(self.item_factors(), item, k)
