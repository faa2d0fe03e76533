"""Ordered histories: per-user item sequences, and a training matrix paired with them.

A users x items CSR matrix forgets the order of a user's events; sequential models (GRU4Rec,
Caser, SASRec) need it. `Sequences` keeps every user's item indices oldest -> newest in a
ragged CSR-like layout (`indptr`, `items`, and a time key per event so two parts of a split
can be merged back in time order). `OrderedInteractions` pairs a training matrix with its
sequences: classic models read `.matrix` (as `as_csr` does) and ignore the order, sequential
models read `.sequences`.

Token convention (shared by the sequential models and the ONNX export, see `pad_left`): item
`i` is token `i + 1`, token `PAD` (0) is padding, sequences are left-truncated to their newest
`max_len` items and left-padded, so the newest item is always the last column.

Pure numpy: nothing here imports torch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.vocab import UnknownPolicy, Vocabulary
from shelfwise.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PAD = 0
"""The padding token (item `i` is token `i + 1`)."""


@dataclass(frozen=True)
class Sequences:
    """Per-user item sequences, oldest -> newest, as CSR-style ragged arrays.

    Row `u` is `items[indptr[u]:indptr[u + 1]]` (dense item indices). `times` holds an int64
    time key per event (nanoseconds, or any monotone key): `merge` uses it to interleave two
    parts of a split; sequences built without times get their position as key.
    """

    indptr: np.ndarray
    items: np.ndarray
    times: np.ndarray

    def __post_init__(self) -> None:
        if self.indptr.ndim != 1 or self.indptr.size == 0 or self.indptr[0] != 0:
            raise DataError("Sequences.indptr must be 1-D and start at 0")
        if int(self.indptr[-1]) != self.items.size or self.items.size != self.times.size:
            raise DataError(
                f"Sequences: indptr ends at {int(self.indptr[-1])} but there are "
                f"{self.items.size} items and {self.times.size} time keys"
            )
        if np.any(np.diff(self.indptr) < 0):
            raise DataError("Sequences.indptr must be non-decreasing")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_lists(cls, sequences: Sequence[Sequence[int] | np.ndarray]) -> Sequences:
        """One sequence (oldest -> newest item indices) per user."""
        arrays = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
        lengths = np.array([a.size for a in arrays], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        items = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        times = np.arange(items.size, dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        return cls(indptr, items.astype(np.int64), times)

    @classmethod
    def from_csr(cls, matrix: sp.csr_matrix) -> Sequences:
        """A matrix's rows as sequences in column order (the matrix holds no time order)."""
        m = sp.csr_matrix(matrix)
        m.sort_indices()
        lengths = np.diff(m.indptr).astype(np.int64)
        indptr = m.indptr.astype(np.int64)
        times = np.arange(m.indices.size, dtype=np.int64) - np.repeat(indptr[:-1], lengths)
        return cls(indptr, m.indices.astype(np.int64), times)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        users: Vocabulary,
        items: Vocabulary,
        drop_unknown: bool = False,
    ) -> Sequences:
        """Events (`user_id`, `item_id`, optional `timestamp` and `seq`) -> one sequence per
        vocabulary user, ordered by (timestamp, seq), else (timestamp, row position); a frame
        without timestamps is taken in row order.

        Rows without an item are skipped; with `drop_unknown`, rows whose user or item is
        not in the vocabularies are dropped, otherwise they raise `UnknownIdError`.
        """
        missing = [c for c in ("user_id", "item_id") if c not in frame.columns]
        if missing:
            raise DataError(f"events lack column(s) {missing}; they have {list(frame.columns)}")
        frame = frame.loc[frame["item_id"].notna() & frame["user_id"].notna()]
        policy: UnknownPolicy = "minus_one" if drop_unknown else "error"
        rows = users.encode(frame["user_id"], unknown=policy)
        cols = items.encode(frame["item_id"], unknown=policy)
        if "timestamp" in frame.columns:
            ts = pd.to_datetime(frame["timestamp"], utc=True)
            if ts.isna().any():
                raise DataError(f"{int(ts.isna().sum()):,} events have no timestamp")
            times = (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ns")
            times_arr = times.to_numpy(dtype=np.int64)
        else:
            times_arr = np.zeros(len(frame), dtype=np.int64)
        if "seq" in frame.columns:
            tiebreak = pd.to_numeric(frame["seq"]).to_numpy(dtype=np.int64)
        else:
            tiebreak = np.arange(len(frame), dtype=np.int64)
        keep = (rows >= 0) & (cols >= 0)
        rows, cols, times_arr, tiebreak = rows[keep], cols[keep], times_arr[keep], tiebreak[keep]
        order = np.lexsort((tiebreak, times_arr, rows))
        counts = np.bincount(rows, minlength=len(users)).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, cols[order].astype(np.int64), times_arr[order])

    # -- access ----------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Number of rows (users)."""
        return int(self.indptr.size - 1)

    def __len__(self) -> int:
        return self.n_users

    @property
    def lengths(self) -> np.ndarray:
        """Events per user."""
        return np.diff(self.indptr)

    def row(self, user: int) -> np.ndarray:
        """User `user`'s items, oldest -> newest."""
        return self.items[self.indptr[user] : self.indptr[user + 1]]

    def rows(self, users: Sequence[int] | np.ndarray | None = None) -> list[np.ndarray]:
        """The sequences of `users` (all users when None)."""
        index = range(self.n_users) if users is None else np.asarray(users, dtype=np.int64)
        return [self.row(int(u)) for u in index]

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.rows())

    def to_csr(self, n_items: int) -> sp.csr_matrix:
        """Binary users x items matrix of the sequences (order and repeats dropped)."""
        m = sp.csr_matrix(
            (np.ones(self.items.size, np.float32), self.items, self.indptr),
            shape=(self.n_users, n_items),
        )
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def merge(self, other: Sequences) -> Sequences:
        """Both parts' events per user, in time order; at equal times `self`'s come first.

        Used to fold a split's validation events back into the training history.
        """
        if other.n_users != self.n_users:
            raise DataError(f"cannot merge sequences of {self.n_users} and {other.n_users} users")
        users = np.concatenate(
            [
                np.repeat(np.arange(self.n_users), self.lengths),
                np.repeat(np.arange(other.n_users), other.lengths),
            ]
        )
        items = np.concatenate([self.items, other.items])
        times = np.concatenate([self.times, other.times])
        part = np.concatenate(
            [np.zeros(self.items.size, np.int8), np.ones(other.items.size, np.int8)]
        )
        order = np.lexsort((part, times, users))
        counts = self.lengths + other.lengths
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Sequences(indptr, items[order], times[order])


@dataclass(frozen=True)
class OrderedInteractions:
    """A training matrix with the ordered sequences it was built from (same users, rows).

    `matrix` makes it acceptable wherever an `Interactions` is (`as_csr` reads `.matrix`).
    """

    matrix: sp.csr_matrix
    sequences: Sequences

    def __post_init__(self) -> None:
        if self.matrix.shape[0] != self.sequences.n_users:
            raise DataError(
                f"matrix has {self.matrix.shape[0]} rows but there are "
                f"{self.sequences.n_users} sequences"
            )

    @property
    def n_users(self) -> int:
        """Rows of the matrix."""
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        """Columns of the matrix."""
        return int(self.matrix.shape[1])


def sequences_of(interactions: Any) -> Sequences:
    """The ordered sequences of training data: `.sequences` when present, else the matrix's
    rows in column order (logged: the model then learns no real order)."""
    seqs = getattr(interactions, "sequences", None)
    if isinstance(seqs, Sequences):
        return seqs
    log.warning(
        "training data carries no event order; sequences follow item index order "
        "(pass OrderedInteractions to train on the real order)"
    )
    matrix = getattr(interactions, "matrix", interactions)
    return Sequences.from_csr(sp.csr_matrix(matrix))


def check_sequences(sequences: Sequence[np.ndarray], n_items: int) -> list[np.ndarray]:
    """Validate item indices (0..n_items-1) and return int64 arrays."""
    out = []
    for i, seq in enumerate(sequences):
        arr = np.asarray(seq, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= n_items):
            raise ValueError(f"sequence {i} has item indices outside 0..{n_items - 1}")
        out.append(arr)
    return out


def pad_left(sequences: Sequence[np.ndarray], max_len: int, width: int | None = None) -> np.ndarray:
    """Token matrix (n x width): each sequence's newest `max_len` items as tokens (item + 1),
    left-padded with 0. `width` defaults to the longest kept sequence (at least 1)."""
    if max_len < 1:
        raise ConfigError(f"max_len must be >= 1, got {max_len}")
    kept = [np.asarray(s, dtype=np.int64)[-max_len:] for s in sequences]
    if width is None:
        width = max([k.size for k in kept], default=0) or 1
    out = np.zeros((len(kept), width), dtype=np.int64)
    for r, k in enumerate(kept):
        k = k[-width:]
        if k.size:
            out[r, width - k.size :] = k + 1
    return out


def leave_last_out_sequences(
    sequences: Sequences, n_items: int, fraction: float, seed: int
) -> tuple[Sequences, sp.csr_matrix]:
    """(training sequences, validation matrix): the last event of a random `fraction` of the
    users with at least 3 events is held out (the sequential analogue of a hold-out)."""
    rng = np.random.default_rng(seed)
    lengths = sequences.lengths
    eligible = np.flatnonzero(lengths >= 3)
    take = rng.random(eligible.size) < fraction
    held_users = eligible[take]
    drop = np.zeros(sequences.items.size, dtype=bool)
    drop[sequences.indptr[held_users + 1] - 1] = True
    new_lengths = lengths.copy()
    new_lengths[held_users] -= 1
    indptr = np.concatenate([[0], np.cumsum(new_lengths)]).astype(np.int64)
    train = Sequences(indptr, sequences.items[~drop], sequences.times[~drop])
    targets = sequences.items[drop]
    val = sp.csr_matrix(
        (np.ones(held_users.size, np.float32), (held_users, targets)),
        shape=(sequences.n_users, n_items),
    )
    seen = train.to_csr(n_items)
    val = sp.csr_matrix(val - val.multiply(seen > 0))
    val.eliminate_zeros()
    return train, val
