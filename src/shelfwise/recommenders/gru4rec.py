"""GRU4Rec: session-based recommendations with recurrent neural networks (Hidasi et al.,
ICLR 2016; Hidasi & Karatzoglou, CIKM 2018).

The network reads a user's ordered history through an item embedding and a GRU; the score
of item i after position t is h_t . W_i + b_i, GRU4Rec's final feed-forward layer over
the items (a separate output table, not tied to the input embedding). Instead of the
original session-parallel mini-batches, each user's whole sequence is one sample (the
per-user variant used by the sequential-recommendation benchmarks such as RecBole's), and
every position predicts the next item with softmax cross entropy (`loss="ce"`; the official
implementation's `cross-entropy` loss, here over the whole catalog rather than in-batch and
sampled negatives), or binary cross entropy against sampled negatives (`loss="bce"`).

Rows are left-padded like every sequential model here; the GRU runs over packed,
right-aligned copies, so padding never moves its state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from shelfwise.data.sequences import Sequences
from shelfwise.recommenders.base import register
from shelfwise.recommenders.sequential import (
    NextItemTask,
    SequentialConfig,
    SequentialRecommender,
    SequentialTask,
)
from shelfwise.recommenders.space import Choice, FloatRange, IntRange, SearchSpace
from shelfwise.recommenders.torch_base import training_space
from shelfwise.types import Results


class GRU4RecNet(nn.Module):
    """Embedding -> GRU -> scores against an output item table plus a bias (GRU4Rec's final
    feed-forward layer), over left-padded token matrices (item + 1, 0 = padding)."""

    def __init__(
        self,
        n_items: int,
        embedding: int,
        hidden: int,
        layers: int,
        dropout_embed: float,
        dropout_hidden: float,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.item_emb = nn.Embedding(n_items + 1, embedding, padding_idx=0)
        self.embed_drop = nn.Dropout(dropout_embed)
        self.gru = nn.GRU(
            embedding,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout_hidden if layers > 1 else 0.0,
        )
        self.hidden_drop = nn.Dropout(dropout_hidden)
        self.out_emb = nn.Embedding(n_items, hidden)
        self.out_bias = nn.Embedding(n_items, 1)
        # small output weights, so the first softmax is near uniform (torch's N(0, 1)
        # embedding init would start the cross entropy far above log(n_items))
        nn.init.normal_(self.out_emb.weight, std=hidden**-0.5 / 4)
        nn.init.zeros_(self.out_bias.weight)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Hidden states (B, W, hidden) after every position of the left-padded `tokens`.

        The rows are shifted to right padding and packed, so the GRU never steps over
        padding (its state would drift on the biases), then shifted back.
        """
        w = tokens.shape[1]
        lengths = (tokens > 0).sum(dim=1)
        pads = w - lengths
        cols = torch.arange(w, device=tokens.device).unsqueeze(0)
        right_idx = (cols + pads.unsqueeze(1)).clamp(max=w - 1)
        right = torch.gather(tokens, 1, right_idx) * (cols < lengths.unsqueeze(1))
        x = self.embed_drop(self.item_emb(right))
        packed = pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        out, _ = self.gru(packed)
        states, _ = pad_packed_sequence(out, batch_first=True, total_length=w)
        left_idx = (cols - pads.unsqueeze(1)).clamp(min=0)
        states = torch.gather(states, 1, left_idx.unsqueeze(-1).expand(-1, -1, states.shape[2]))
        states = states * (tokens > 0).unsqueeze(-1).to(states.dtype)
        out_states: torch.Tensor = self.hidden_drop(states)
        return out_states

    def logits(self, states: torch.Tensor) -> torch.Tensor:
        """Scores of every item from hidden states (..., hidden) -> (..., n_items)."""
        return states @ self.out_emb.weight.T + self.out_bias.weight.squeeze(1)

    def logits_of(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (N, K) of K shared item indices for each of N states (N, hidden)."""
        return states @ self.out_emb(items).T + self.out_bias(items).squeeze(1)

    def score_last(self, tokens: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) after the newest position (last column)."""
        return self.logits(self.forward(tokens)[:, -1, :])

    def pair_logits(self, states: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of the given item indices (broadcast against `states` without its last
        axis)."""
        return (states * self.out_emb(items)).sum(dim=-1) + self.out_bias(items).squeeze(-1)


class GRU4RecConfig(SequentialConfig):
    """GRU4Rec's options plus every training option: `embedding` and `hidden` sizes,
    GRU `layers`, dropout on the embeddings and on the hidden states."""

    embedding: int = Field(default=64, ge=1)
    hidden: int = Field(default=64, ge=1)
    layers: int = Field(default=1, ge=1)
    dropout_embed: float = Field(default=0.25, ge=0.0, lt=1.0)
    dropout_hidden: float = Field(default=0.0, ge=0.0, lt=1.0)

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "embedding": Choice((32, 64, 128)),
        "hidden": Choice((32, 64, 128)),
        "layers": IntRange(1, 2),
        "dropout_embed": FloatRange(0.0, 0.5),
        "dropout_hidden": FloatRange(0.0, 0.5),
        **training_space(batch_sizes=(64, 128, 256)),
    }


@register
class GRU4Rec(SequentialRecommender):
    """GRU4Rec (see the module doc)."""

    name = "gru4rec"
    Config = GRU4RecConfig
    config: GRU4RecConfig

    def _make_module(self, n_items: int, n_users: int) -> nn.Module:
        c = self.config
        return GRU4RecNet(
            n_items, c.embedding, c.hidden, c.layers, c.dropout_embed, c.dropout_hidden
        )

    def _make_task(self, sequences: Sequences) -> SequentialTask:
        assert self.module is not None
        return NextItemTask(self, self.module, sequences)

    def similar_items(self, item: int, k: int = 10) -> Results:
        """Not supported: GRU4Rec's embeddings pass through the recurrent gates, so their
        cosines are no item similarity (on the contract data they mix unrelated groups);
        `recommend([item])` gives the items likely to come next instead."""
        raise NotImplementedError(
            "gru4rec has no item-item similarity; use recommend([item]) for what comes next"
        )

    def _score_tokens(self, tokens: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        net: Any = self.module
        scores: torch.Tensor = net.score_last(tokens)
        return scores
