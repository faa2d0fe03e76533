"""Caser: personalized top-N sequential recommendation via convolutional sequence embedding
(Tang & Wang, WSDM 2018).

The previous `window` (L) items of a user form an L x d image of their embeddings. Horizontal
filters of every height 1..L (ReLU, max-pooled over time) capture union- and point-level
sequential patterns; vertical filters (L x 1) take weighted sums of the L rows. Their
concatenation, after dropout, goes through a fully-connected ReLU layer to z; [z, P_u] (with
the user embedding P_u) is scored against an output item table W' and a bias b'.

Training samples are the sliding windows of each user's ordered history: the L items before
a position and the `targets` (T) items from it. `loss="bce"` is the paper's objective (the
T targets against `negatives` items the user never had, sampled per window); `loss="ce"`
is softmax cross entropy of each target over all items, `loss="sce"` against `negatives`
uniformly drawn items shared by the batch. Defaults follow the paper and its
code (graytowne/caser_pytorch): d 50, L 5, T 3, 4 vertical and 16 horizontal filters per
height, dropout 0.5, Adam at 1e-3 with L2 1e-6, batch 512, 3 negatives.

The user embedding needs a training user: a history scored without one (a new visitor, or
`recommend(history)` without `user=`) gets the mean of the learned user embeddings, an
average user, so the sequence decides (`user_embedding=False` trains without P_u).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from torch import nn

from shelfwise.data.sequences import Sequences
from shelfwise.recommenders.base import register
from shelfwise.recommenders.sequential import (
    NegativeSampler,
    SequentialConfig,
    SequentialRecommender,
    SequentialTask,
    sampled_softmax,
    window_samples,
)
from shelfwise.recommenders.space import Choice, FloatRange, IntRange, SearchSpace
from shelfwise.recommenders.torch_base import training_space


class CaserNet(nn.Module):
    """Caser's network: the L x d embedding matrix of the previous L items is read by
    horizontal filters (heights 1..L, ReLU, max-pooled over time) and by vertical filters
    (weighted sums of the L rows); their concatenation goes through dropout and a ReLU
    fully-connected layer to z, which is concatenated with the user embedding P_u and
    scored against an output item table plus a bias."""

    def __init__(
        self,
        n_items: int,
        n_users: int,
        window: int,
        dim: int,
        n_vertical: int,
        n_horizontal: int,
        dropout: float,
        user_embedding: bool,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.window = window
        self.use_user = user_embedding
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.user_emb = nn.Embedding(max(n_users, 1), dim)
        self.conv_v = nn.Conv2d(1, n_vertical, (window, 1))
        self.conv_h = nn.ModuleList(
            [nn.Conv2d(1, n_horizontal, (height, dim)) for height in range(1, window + 1)]
        )
        self.fc = nn.Linear(n_vertical * dim + n_horizontal * window, dim)
        self.drop = nn.Dropout(dropout)
        out_dim = 2 * dim if user_embedding else dim
        self.out_emb = nn.Embedding(n_items, out_dim)
        self.out_bias = nn.Embedding(n_items, 1)
        # the reference code's initialisation: embeddings N(0, 1/d), output N(0, 1/out_dim)
        nn.init.normal_(self.item_emb.weight, std=1.0 / dim)
        nn.init.normal_(self.user_emb.weight, std=1.0 / dim)
        nn.init.normal_(self.out_emb.weight, std=1.0 / out_dim)
        nn.init.zeros_(self.out_bias.weight)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def forward(self, users: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Representations (B, out_dim) from user indices (B,; -1 = unknown: the mean user
        embedding) and the previous `window` tokens (B, window), left-padded."""
        e = self.item_emb(tokens).unsqueeze(1)  # B x 1 x L x d
        out_v = self.conv_v(e).flatten(1)
        pooled = [
            torch.relu(conv(e).squeeze(3)).amax(dim=2) for conv in self.conv_h
        ]  # each B x n_h
        z = torch.relu(self.fc(self.drop(torch.cat([out_v, *pooled], dim=1))))
        if not self.use_user:
            return z
        known = (users >= 0).unsqueeze(1)
        mean_user = self.user_emb.weight.mean(dim=0, keepdim=True)
        p = torch.where(known, self.user_emb(users.clamp(min=0)), mean_user)
        return torch.cat([z, p], dim=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of every item (B, n_items)."""
        return x @ self.out_emb.weight.T + self.out_bias.weight.squeeze(1)

    def logits_of(self, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (B, K) of K shared item indices for each row of x (B, out_dim)."""
        return x @ self.out_emb(items).T + self.out_bias(items).squeeze(1)

    def pair_logits(self, x: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of the given item indices, broadcast against `x` without its last axis
        (x (B, 1, out_dim) with items (B, K) gives (B, K))."""
        return (x * self.out_emb(items)).sum(dim=-1) + self.out_bias(items).squeeze(-1)


class CaserTask(SequentialTask):
    """Sliding-window samples (user, previous L tokens, next T tokens) of every sequence."""

    def __init__(self, model: Caser, module: nn.Module, sequences: Sequences) -> None:
        c = model.config
        users, prev, targets = window_samples(sequences, c.window, c.targets)
        super().__init__(model, module, int(users.size))
        if users.size == 0:
            raise ValueError("caser: no user has 2 or more events to learn an order from")
        self.users_np = users
        self.users = torch.from_numpy(users)
        self.prev = torch.from_numpy(prev)
        self.targets = torch.from_numpy(targets)
        self.loss_name = c.loss
        self.n_negatives = c.negatives
        self.sampler = NegativeSampler(sequences, model.n_items) if c.loss == "bce" else None
        self.n_items = model.n_items

    def loss(self, batch: Any) -> torch.Tensor:
        """BCE of the T targets against sampled negatives, or CE of each target."""
        index, rng = batch
        users = self.users[index].to(self.device)
        prev = self.prev[index].to(self.device)
        targets = self.targets[index].to(self.device)
        net: Any = self.module
        x = net(users, prev)
        mask = targets > 0
        if self.loss_name == "sce":
            rows = torch.arange(x.shape[0], device=self.device).unsqueeze(1).expand_as(targets)
            return sampled_softmax(
                net, x[rows[mask]], targets[mask] - 1, self.n_items, self.n_negatives, rng,
                self.device,
            )  # fmt: skip
        if self.sampler is None:
            logits = net.logits(x)  # B x n_items
            logp = torch.log_softmax(logits, dim=1)
            picked = torch.gather(logp, 1, (targets - 1).clamp(min=0))
            return -(picked[mask]).mean()
        neg = self.sampler.sample(self.users_np[index], (len(index), self.n_negatives), rng)
        neg_t = torch.from_numpy(np.asarray(neg)).to(self.device)
        pos_logits = net.pair_logits(x.unsqueeze(1), (targets - 1).clamp(min=0))[mask]
        neg_logits = net.pair_logits(x.unsqueeze(1), neg_t)
        bce = nn.functional.binary_cross_entropy_with_logits
        return bce(pos_logits, torch.ones_like(pos_logits)) + bce(
            neg_logits, torch.zeros_like(neg_logits)
        )


class CaserConfig(SequentialConfig):
    """Caser's options (defaults: the paper's) plus every training option: `window` L,
    `targets` T, embedding `dim` d, `n_vertical` and `n_horizontal` filters, `dropout`,
    `user_embedding`."""

    window: int = Field(default=5, ge=1)
    targets: int = Field(default=3, ge=1)
    dim: int = Field(default=50, ge=1)
    n_vertical: int = Field(default=4, ge=1)
    n_horizontal: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    user_embedding: bool = True
    negatives: int = Field(default=3, ge=1)
    batch_size: int = Field(default=512, ge=0)
    weight_decay: float = Field(default=1e-6, ge=0.0)

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "window": IntRange(2, 9),
        "targets": IntRange(1, 3),
        "dim": Choice((32, 50, 100)),
        "dropout": FloatRange(0.1, 0.7),
        "loss": Choice(("bce", "ce")),
        **training_space(batch_sizes=(256, 512, 1024)),
    }


@register
class Caser(SequentialRecommender):
    """Caser (see the module doc)."""

    name = "caser"
    Config = CaserConfig
    config: CaserConfig

    def _make_module(self, n_items: int, n_users: int) -> nn.Module:
        c = self.config
        return CaserNet(
            n_items,
            n_users,
            c.window,
            c.dim,
            c.n_vertical,
            c.n_horizontal,
            c.dropout,
            c.user_embedding,
        )

    def _make_task(self, sequences: Sequences) -> SequentialTask:
        assert self.module is not None
        return CaserTask(self, self.module, sequences)

    def _score_tokens(self, tokens: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        net: Any = self.module
        window = self.config.window
        if tokens.shape[1] < window:
            pad = torch.zeros(
                tokens.shape[0], window - tokens.shape[1], dtype=tokens.dtype, device=tokens.device
            )
            tokens = torch.cat([pad, tokens], dim=1)
        users = torch.where(users < self.n_users, users, torch.full_like(users, -1))
        scores: torch.Tensor = net.logits(net(users, tokens[:, -window:]))
        return scores
