"""The torch side of the sequential recommenders (GRU4Rec, Caser, SASRec): their training
samples, negatives, shared config, task and base class.

The data they read lives in `shelfwise.data.sequences`: `Sequences` (each user's items oldest
-> newest), `OrderedInteractions` (a training matrix with its sequences) and the token
convention of `pad_left` (item `i` is token `i + 1`, 0 is padding, left-padded so the newest
item is the last column).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from shelfwise.data.sequences import (
    Sequences,
    check_sequences,
    leave_last_out_sequences,
    pad_left,
    sequences_of,
)
from shelfwise.errors import ConfigError, DataError
from shelfwise.recommenders.base import as_csr
from shelfwise.recommenders.torch_base import TorchModelConfig, TorchRecommender
from shelfwise.train.metrics import topk_validation
from shelfwise.train.trainer import TrainTask, torch_threads


def next_item_pairs(sequences: Sequence[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) token matrices for next-item training, as in SASRec: a sequence
    s_1..s_n becomes inputs s_1..s_{n-1} and targets s_2..s_n, both left-truncated to the
    newest `max_len` positions and left-padded (target 0 = no loss at that position)."""
    inputs = pad_left([np.asarray(s)[:-1] for s in sequences], max_len)
    width = inputs.shape[1]
    targets = pad_left([np.asarray(s)[1:] for s in sequences], max_len, width=width)
    return inputs, targets


def window_samples(
    sequences: Sequences, window: int, targets: int, users: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Caser's training samples: every (user, `window` previous items, `targets` next items)
    of a sliding window over each sequence (Tang & Wang 2018, section 3.1).

    Returns (user indices, previous tokens n x window, target tokens n x targets), tokens
    being item + 1 with 0 for padding. A block of `targets` items starts at every position
    after the first, until a block reaches the end of the sequence; windows near the start
    are left-padded, and the one block of a sequence shorter than targets + 1 right-padded.
    Users with fewer than 2 events give no sample.
    """
    if window < 1 or targets < 1:
        raise ConfigError(f"window and targets must be >= 1, got {window} and {targets}")
    all_users = np.arange(sequences.n_users) if users is None else users
    u_out, prev_out, tgt_out = [], [], []
    for u in all_users:
        seq = sequences.row(int(u)) + 1
        if seq.size < 2:
            continue
        padded = np.concatenate([np.zeros(window, np.int64), seq])
        # a sample for each start of a targets-long block after at least one item
        for end in range(window + 1, padded.size + 1):
            prev = padded[end - 1 - window : end - 1]
            tgt = padded[end - 1 : end - 1 + targets]
            if not prev.any():
                continue
            if tgt.size < targets:
                tgt = np.concatenate([tgt, np.zeros(targets - tgt.size, np.int64)])
            u_out.append(int(u))
            prev_out.append(prev)
            tgt_out.append(tgt)
            if end - 1 + targets >= padded.size:
                break
    if not u_out:
        return (
            np.zeros(0, np.int64),
            np.zeros((0, window), np.int64),
            np.zeros((0, targets), np.int64),
        )
    return np.asarray(u_out, np.int64), np.vstack(prev_out), np.vstack(tgt_out)


class NegativeSampler:
    """Uniform negatives that avoid each user's own items (rejection, a few rounds).

    Membership is tested on sorted (user * n_items + item) keys, so one batch is a single
    vectorised `searchsorted`; after `rounds` redraws the rare remaining collisions are kept.
    """

    def __init__(self, sequences: Sequences, n_items: int, rounds: int = 5) -> None:
        users = np.repeat(np.arange(sequences.n_users, dtype=np.int64), sequences.lengths)
        self.keys = np.unique(users * n_items + sequences.items)
        self.n_items = n_items
        self.rounds = rounds

    def _seen(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.searchsorted(self.keys, keys)
        pos = np.minimum(pos, self.keys.size - 1)
        return np.asarray(self.keys[pos] == keys) if self.keys.size else np.zeros_like(keys, bool)

    def sample(
        self, users: np.ndarray, shape: tuple[int, ...], rng: np.random.Generator
    ) -> np.ndarray:
        """Item indices of `shape` whose leading axis matches `users`."""
        u = np.broadcast_to(users.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
        out = rng.integers(0, self.n_items, size=shape)
        for _ in range(self.rounds):
            bad = self._seen(u, out)
            if not bad.any():
                break
            out[bad] = rng.integers(0, self.n_items, size=int(bad.sum()))
        return out


# -- the torch side: a base for GRU4Rec, Caser and SASRec ----------------------------------------
class SequentialConfig(TorchModelConfig):
    """Options shared by the sequential models, plus every training option.

    - `max_len`: the newest events of a history the model reads (older ones are dropped).
    - `loss`: `ce` (softmax cross entropy over all items), `sce` (sampled softmax: cross
      entropy of the true item against `negatives` uniformly drawn items shared by the batch,
      SASRec+ with sampled negatives in Klenitskiy & Vasilev, RecSys 2023 - far cheaper than
      `ce` on a large catalog) or `bce` (binary cross entropy of the true next item against
      `negatives` sampled items the user never had, per position: SASRec's paper loss).
    - `val_fraction` (inherited): when `fit` gets no validation matrix, the last event of
      this share of the users (those with >= 3 events) is held out to drive early stopping.
    """

    max_len: int = Field(default=50, ge=1)
    loss: Literal["ce", "sce", "bce"] = "ce"
    negatives: int = Field(default=1, ge=1)
    batch_size: int = Field(default=128, ge=0)
    epochs: int = Field(default=200, ge=1)
    patience: int = Field(default=10, ge=0)


def _numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A numpy generator drawn from the trainer's torch generator (so epochs reproduce)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return np.random.default_rng(seed)


class SequentialTask:
    """The parts of a `TrainTask` every sequential model shares: the device, shuffled index
    batches over `n_samples`, and validation by full-ranking NDCG/HR@10 of each held-out
    next item given the user's training sequence (training items excluded)."""

    def __init__(self, model: SequentialRecommender, module: nn.Module, n_samples: int) -> None:
        self.model = model
        self.module = module
        self.n_samples = n_samples
        self.device = torch.device("cpu")

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches per epoch."""
        size = self.n_samples if batch_size == 0 else batch_size
        return max(1, -(-self.n_samples // max(1, size)))

    def batches(self, epoch: int, batch_size: int, generator: torch.Generator) -> Iterable[Any]:
        """Shuffled sample indices (numpy) plus a numpy generator for negatives."""
        rng = _numpy_rng(generator)
        order = rng.permutation(self.n_samples)
        size = self.n_samples if batch_size == 0 else batch_size
        for start in range(0, self.n_samples, max(1, size)):
            yield order[start : start + size], rng

    @abstractmethod
    def loss(self, batch: Any) -> torch.Tensor:
        """The loss of one batch."""

    def validate(self) -> dict[str, float]:
        """Full-ranking metrics of the held-out next items (empty without validation)."""
        m = self.model
        if m._val is None or m._val.nnz == 0:
            return {}
        users = np.flatnonzero(np.diff(m._val.indptr) > 0)
        seqs = m._train_sequences
        assert seqs is not None

        def score_rows(block: np.ndarray) -> np.ndarray:
            return m._score_sequences_eval(seqs.rows(block), block)

        return topk_validation(score_rows, users, seqs.to_csr(m.n_items), m._val, k=10)


class SequentialRecommender(TorchRecommender):
    """Base of GRU4Rec, Caser and SASRec: trained on each user's ordered history and scored
    from an ordered history (`score_sequences`, `recommend(history)` oldest first).

    `fit` reads the order from `OrderedInteractions` (from a plain matrix it falls back to
    item index order, with a warning). `score(matrix)` has no order to read either and
    scores each row's items in index order; use `score_sequences` / `recommend_batch(...,
    sequences=...)` with real histories. `similar_items(item)` is the base behaviour: the
    items most likely to come next after `item` alone.
    """

    sequential: ClassVar[bool] = True
    config: SequentialConfig

    def __init__(self, config: SequentialConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self._train_sequences: Sequences | None = None
        self._val: sp.csr_matrix | None = None
        self.n_users = 0

    # -- to implement --------------------------------------------------------------------
    @abstractmethod
    def _make_module(self, n_items: int, n_users: int) -> nn.Module:
        """A fresh network for `n_items` items and `n_users` training users."""

    @abstractmethod
    def _make_task(self, sequences: Sequences) -> SequentialTask:
        """The training task over the training sequences."""

    @abstractmethod
    def _score_tokens(self, tokens: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) from left-padded tokens (B, W) and user indices (B,; -1 =
        unknown); eval mode and no grad are set by the caller."""

    # -- training ------------------------------------------------------------------------
    def _build(self, interactions: Any, items: pd.DataFrame | None, validation: Any | None) -> None:
        matrix = as_csr(interactions)
        n_items = int(matrix.shape[1])
        seqs = sequences_of(interactions)
        if seqs.n_users != matrix.shape[0]:
            raise DataError(f"{seqs.n_users} sequences for a matrix of {matrix.shape[0]} users")
        if seqs.items.size and int(seqs.items.max()) >= n_items:
            raise DataError(f"sequences name items outside 0..{n_items - 1}")
        if validation is None and self.config.val_fraction > 0:
            seqs, val = leave_last_out_sequences(
                seqs, n_items, self.config.val_fraction, self.config.seed
            )
        else:
            val = None if validation is None else sp.csr_matrix(validation, dtype=np.float32)
            if val is not None:
                val.eliminate_zeros()  # a stored 0 is no held-out item
            if val is not None and val.shape != (seqs.n_users, n_items):
                raise DataError(
                    f"validation matrix {val.shape} does not match {seqs.n_users} users x "
                    f"{n_items} items"
                )
        self._train_sequences = seqs
        self._val = val
        self.n_items = n_items
        self.n_users = seqs.n_users
        self.module = self._make_module(n_items, seqs.n_users)

    def _task(self) -> TrainTask:
        assert self._train_sequences is not None
        task: TrainTask = self._make_task(self._train_sequences)
        return task

    def fit(
        self,
        interactions: Any,
        items: pd.DataFrame | None = None,
        validation: Any | None = None,
        checkpoint_dir: Path | str | None = None,
        resume: bool = False,
        progress: bool = False,
    ) -> SequentialRecommender:
        """Train on the ordered histories (see `TorchRecommender.fit`); the module is left
        in eval mode."""
        super().fit(interactions, items, validation, checkpoint_dir, resume, progress)
        if self.module is not None:
            self.module.eval()
        return self

    # -- scoring -------------------------------------------------------------------------
    def _score_sequences_eval(
        self, sequences: Sequence[np.ndarray], users: np.ndarray | None
    ) -> np.ndarray:
        """Scores in chunks; the caller has set eval mode and no grad."""
        assert self.module is not None
        n = len(sequences)
        out = np.empty((n, self.n_items), dtype=np.float32)
        device = self.device
        step = self.config.score_chunk
        for start in range(0, n, step):
            block = sequences[start : start + step]
            tokens = torch.from_numpy(pad_left(block, self.config.max_len)).to(device)
            if users is None:
                u = torch.full((len(block),), -1, dtype=torch.long, device=device)
            else:
                u = torch.as_tensor(
                    np.asarray(users[start : start + step], dtype=np.int64), device=device
                )
            scores = self._score_tokens(tokens, u)
            out[start : start + len(block)] = scores.detach().float().cpu().numpy()
        return out

    def score_sequences(
        self, sequences: Sequence[np.ndarray], users: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores (n x n_items) of the item to come after each ordered history."""
        self._check_fitted()
        assert self.module is not None
        seqs = check_sequences(sequences, self.n_items)
        if users is not None and len(users) != len(seqs):
            raise ValueError(f"{len(users)} users for {len(seqs)} sequences")
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad(), torch_threads(self.config.threads):
                return self._score_sequences_eval(seqs, users)
        finally:
            self.module.train(was_training)

    def _score_block(self, histories: sp.csr_matrix, users: np.ndarray | None) -> Any:
        """A matrix has no order: each row's items in index order (see the class doc)."""
        return self._score_sequences_eval(Sequences.from_csr(histories).rows(), users)

    # -- persistence ---------------------------------------------------------------------
    def _extra_arrays(self) -> dict[str, np.ndarray]:
        return {
            "n_users": np.array([self.n_users], dtype=np.int64),
            "n_items": np.array([self.n_items], dtype=np.int64),
        }

    def _restore_extra(self, arrays: dict[str, np.ndarray]) -> None:
        self.n_users = int(arrays["n_users"][0]) if "n_users" in arrays else 0

    def _new_module(self, arrays: dict[str, np.ndarray]) -> nn.Module:
        n_users = int(arrays["n_users"][0]) if "n_users" in arrays else 0
        n_items = int(arrays["n_items"][0]) if "n_items" in arrays else 0
        if not n_items:
            raise DataError(f"{self.name}: saved arrays lack n_items")
        return self._make_module(n_items, n_users)


def sampled_softmax(
    net: Any,
    states: torch.Tensor,
    targets: torch.Tensor,
    n_items: int,
    n_negatives: int,
    rng: np.random.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Cross entropy of each target against `n_negatives` uniform items shared by the batch
    (a negative equal to the row's target is masked out). The network scores a row's own
    item with `pair_logits(states, items)` and shared items with `logits_of(states, items)`;
    states (N, H), targets (N,) item indices."""
    negatives = torch.from_numpy(rng.integers(0, n_items, size=n_negatives)).to(device)
    pos = net.pair_logits(states, targets)  # N
    neg = net.logits_of(states, negatives)  # N x n_negatives
    neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), float("-inf"))
    logits = torch.cat([pos.unsqueeze(1), neg], dim=1)
    zeros = torch.zeros(logits.shape[0], dtype=torch.long, device=device)
    return nn.functional.cross_entropy(logits, zeros)


class NextItemTask(SequentialTask):
    """Next-item training over whole user sequences (SASRec, GRU4Rec): one sample per user
    with >= 2 events, inputs s_1..s_{n-1} and targets s_2..s_n (the newest `max_len`),
    batches cut to their longest sequence.

    The network gives `forward(tokens) -> states (B, W, H)`, `logits(states) -> (..., n_items)`
    and `pair_logits(states, items) -> (...)` for given item indices (BCE).
    """

    def __init__(self, model: SequentialRecommender, module: nn.Module, sequences: Sequences):
        keep = np.flatnonzero(sequences.lengths >= 2)
        super().__init__(model, module, int(keep.size))
        if keep.size == 0:
            raise DataError(f"{model.name}: no user has 2 or more events to learn an order from")
        inputs, targets = next_item_pairs(sequences.rows(keep), model.config.max_len)
        self.users = keep
        self.inputs = torch.from_numpy(inputs)
        self.targets = torch.from_numpy(targets)
        self.loss_name = model.config.loss
        self.n_negatives = model.config.negatives
        self.sampler = (
            NegativeSampler(sequences, model.n_items) if self.loss_name == "bce" else None
        )
        self.n_items = model.n_items

    def loss(self, batch: Any) -> torch.Tensor:
        """CE over all items, sampled-softmax CE, or BCE against sampled negatives, at every
        real position."""
        index, rng = batch
        inputs, targets = self.inputs[index], self.targets[index]
        width = int((inputs > 0).sum(dim=1).max())
        inputs, targets = inputs[:, -width:], targets[:, -width:]
        inputs, targets = inputs.to(self.device), targets.to(self.device)
        net: Any = self.module
        states = net(inputs)
        mask = targets > 0
        if self.loss_name == "ce":
            logits = net.logits(states[mask])
            return nn.functional.cross_entropy(logits, targets[mask] - 1)
        if self.loss_name == "sce":
            return sampled_softmax(
                net, states[mask], targets[mask] - 1, self.n_items, self.n_negatives, rng,
                self.device,
            )  # fmt: skip
        assert self.sampler is not None  # loss == "bce"
        shape = (*targets.shape, self.n_negatives)
        neg = self.sampler.sample(self.users[index], shape, rng)
        neg_t = torch.from_numpy(neg).to(self.device)
        pos_logits = net.pair_logits(states, (targets - 1).clamp(min=0))[mask]
        neg_logits = net.pair_logits(states.unsqueeze(2), neg_t)[mask]
        bce = nn.functional.binary_cross_entropy_with_logits
        return bce(pos_logits, torch.ones_like(pos_logits)) + bce(
            neg_logits, torch.zeros_like(neg_logits)
        )
