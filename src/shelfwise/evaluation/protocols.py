"""Evaluation protocols: a dataset's events -> aligned train / validation / test matrices.

Protocols (`PROTOCOLS`):

- `holdout`: `random_holdout(test_ratio=0.25, seed)`, a per-user stratified random 75/25
  split (Microsoft Recommenders' `python_stratified_split`); `split="per-item"` stratifies
  by item instead (their `filter_by="item"`, the split of their MovieLens benchmark).
- `temporal`: `temporal_split` (global time cut; the newest 20% of rows are test, rows of
  users or items unseen in train are dropped).
- `loo`: `leave_last_out` (per user: last event test, second-to-last validation).

Every matrix shares one vocabulary: the users and items of the full event data, so
indices line up across train, validation, test and the catalog.

Interaction weighting. Ranking evaluation defaults to `binary=True`: every (user, item)
pair the training part holds becomes 1, whatever its event type, value or count. That is
the implicit-feedback setting of the published benchmarks (Recommenders treats every
MovieLens rating as a positive; sequential papers treat every review as one). With
`binary=False` the training matrix uses the default `InteractionWeights` (event type
weights, ratings scaled by value). Relevance in validation/test is always binary: an item is
relevant to a user if the part holds an event of theirs on it, except items the user
already has in train (a model that excludes seen items could never rank those).

Order. `sequences` holds every user's training events as item indices in time order
(timestamp, then `seq` or row order), repeats included, and `validation_sequences` the
validation events likewise: sequential models train on the first and are scored from it
(the runner passes each test user's sequence along with their training row).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.sequences import Sequences
from shelfwise.data.splits import Split, leave_last_out, random_holdout, temporal_split
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, DataError

Protocol = Literal["holdout", "temporal", "loo"]
PROTOCOLS: tuple[str, ...] = ("holdout", "temporal", "loo")
SPLITS: tuple[str, ...] = ("per-user", "per-item")


@dataclass
class ProtocolData:
    """Aligned matrices of one split (users x items over the full vocabularies).

    `train` holds the (weighted or binary) training interactions; `validation` and `test`
    are binary relevance matrices with the user's training items removed. `test_users` are
    the row indices of users with at least one test item, ascending. `sequences` and
    `validation_sequences` are the training and validation events of every user in time
    order (None when the data was built without them).
    """

    protocol: str
    train: sp.csr_matrix
    validation: sp.csr_matrix
    test: sp.csr_matrix
    users: Vocabulary
    items: Vocabulary
    test_users: np.ndarray
    catalog: pd.DataFrame | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    sequences: Sequences | None = None
    validation_sequences: Sequences | None = None

    @property
    def n_users(self) -> int:
        """Rows of every matrix."""
        return int(self.train.shape[0])

    @property
    def n_items(self) -> int:
        """Columns of every matrix."""
        return int(self.train.shape[1])


def split_events(
    events: pd.DataFrame,
    protocol: str,
    seed: int = 42,
    test_ratio: float | None = None,
    split: str = "per-user",
) -> Split:
    """Split interaction events by protocol name (see the module doc); `split` (per-user or
    per-item) is the stratification of `holdout`, the only protocol that has a choice."""
    if split not in SPLITS:
        raise ConfigError(f"split: unknown {split!r}; choose one of {', '.join(SPLITS)}")
    if split != "per-user" and protocol != "holdout":
        raise ConfigError(f"split={split} applies to the holdout protocol only, not {protocol!r}")
    if protocol == "holdout":
        return random_holdout(
            events,
            test_ratio=0.25 if test_ratio is None else test_ratio,
            seed=seed,
            by="item" if split == "per-item" else "user",
        )
    if protocol == "temporal":
        return temporal_split(events, test_ratio=0.2 if test_ratio is None else test_ratio)
    if protocol == "loo":
        return leave_last_out(events)
    raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


def _interaction_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Rows naming both a user and an item (searches and the like are dropped)."""
    missing = [c for c in ("user_id", "item_id") if c not in events.columns]
    if missing:
        raise DataError(f"events lack column(s) {missing}; they have {list(events.columns)}")
    keep = events["user_id"].notna() & events["item_id"].notna()
    if "type" in events.columns:
        keep &= events["type"].fillna("") != "search"
    return events.loc[keep].reset_index(drop=True)


def _relevance(
    frame: pd.DataFrame, users: Vocabulary, items: Vocabulary, seen: sp.csr_matrix
) -> sp.csr_matrix:
    """Binary users x items matrix of `frame`'s pairs, minus the pairs in `seen`."""
    if len(frame) == 0:
        return sp.csr_matrix((len(users), len(items)), dtype=np.float32)
    rows = users.encode(frame["user_id"])
    cols = items.encode(frame["item_id"])
    m = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(len(users), len(items))
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    if seen.nnz:
        overlap = m.multiply(seen > 0)
        m = sp.csr_matrix(m - overlap)
    m.eliminate_zeros()
    m.sort_indices()
    return sp.csr_matrix(m, dtype=np.float32)


def prepare(
    events: pd.DataFrame,
    protocol: str,
    seed: int = 42,
    binary: bool = True,
    items: pd.DataFrame | None = None,
    test_ratio: float | None = None,
    split: str = "per-user",
) -> ProtocolData:
    """Split `events` by `protocol` and build aligned train / validation / test matrices.

    `items` (the catalog) is aligned to the item vocabulary (`catalog`, one row per
    column; items without a catalog row get empty fields) for content-based models.
    """
    frame = _interaction_rows(events)
    if frame.empty:
        raise DataError("no interaction events (rows naming both a user and an item)")
    parts = split_events(frame, protocol, seed=seed, test_ratio=test_ratio, split=split)
    user_vocab = Vocabulary.from_values(frame["user_id"], name="user_id")
    item_vocab = Vocabulary.from_values(frame["item_id"], name="item_id")
    weights = InteractionWeights(binary=True) if binary else InteractionWeights()
    train = build_interactions(parts.train, weights, users=user_vocab, items=item_vocab).matrix
    validation = _relevance(parts.validation, user_vocab, item_vocab, train)
    test = _relevance(parts.test, user_vocab, item_vocab, train)
    test_users = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int64)
    catalog = align_catalog(items, item_vocab) if items is not None else None
    sequences = Sequences.from_frame(parts.train, user_vocab, item_vocab)
    validation_sequences = Sequences.from_frame(parts.validation, user_vocab, item_vocab)
    summary = parts.summary()
    summary["matrix"] = {
        "users": len(user_vocab),
        "items": len(item_vocab),
        "train_nnz": int(train.nnz),
        "validation_nnz": int(validation.nnz),
        "test_nnz": int(test.nnz),
        "test_users": int(test_users.size),
        "binary": binary,
    }
    return ProtocolData(
        protocol=protocol,
        train=train,
        validation=validation,
        test=test,
        users=user_vocab,
        items=item_vocab,
        test_users=test_users,
        catalog=catalog,
        summary=summary,
        sequences=sequences,
        validation_sequences=validation_sequences,
    )


def fold_validation(data: ProtocolData) -> ProtocolData:
    """The split with its validation part folded into the training history (the matrix,
    validation cells weighing 1, and the time-ordered sequences), as the sequential papers'
    test step: each test item is predicted from everything before it. Test pairs already in
    that history are dropped; the validation part becomes empty."""
    train = sp.csr_matrix(data.train + data.validation, dtype=np.float32)
    test = sp.csr_matrix(data.test - data.test.multiply(train > 0), dtype=np.float32)
    test.eliminate_zeros()
    test_users = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int64)
    sequences = None
    if data.sequences is not None and data.validation_sequences is not None:
        sequences = data.sequences.merge(data.validation_sequences)
    return replace(
        data,
        train=train,
        validation=sp.csr_matrix(data.validation.shape, dtype=np.float32),
        test=test,
        test_users=test_users,
        sequences=sequences,
        validation_sequences=None,
    )


def align_catalog(items: pd.DataFrame, item_vocab: Vocabulary) -> pd.DataFrame:
    """The catalog with one row per vocabulary item, in vocabulary order (`item_id` kept).

    Items that have events but no catalog row get a row of missing values.
    """
    if "item_id" not in items.columns:
        raise DataError(f"the catalog has no item_id column; it has {list(items.columns)}")
    catalog = items.drop_duplicates("item_id", keep="last").set_index("item_id")
    aligned = catalog.reindex(pd.Index(item_vocab.ids, name="item_id"))
    return aligned.reset_index()


def sample_negatives(
    interacted: sp.csr_matrix, users: np.ndarray, n: int, seed: int = 42
) -> np.ndarray:
    """`n` distinct items per user (rows of `users`) that the user never interacted with.

    Drawn uniformly without replacement with `np.random.default_rng(seed)`, user by user in
    the given order, so the same inputs always give the same negatives. A user who has
    fewer than `n` such items gets all of them, padded with -1.
    """
    if n < 1:
        raise ConfigError(f"the number of sampled negatives must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    n_items = interacted.shape[1]
    out = np.full((users.size, n), -1, dtype=np.int64)
    indptr, indices = interacted.indptr, interacted.indices
    for row, user in enumerate(users):
        seen = indices[indptr[user] : indptr[user + 1]]
        free = n_items - np.unique(seen).size
        if free <= n:
            mask = np.ones(n_items, dtype=bool)
            mask[seen] = False
            pool = np.flatnonzero(mask)
            out[row, : pool.size] = rng.permutation(pool)
            continue
        chosen: list[np.ndarray] = []
        have = 0
        seen_set = np.unique(seen)
        while have < n:
            draw = rng.integers(0, n_items, size=2 * (n - have) + 8)
            draw = draw[~np.isin(draw, seen_set)]
            if chosen:
                draw = draw[~np.isin(draw, np.concatenate(chosen))]
            _, first = np.unique(draw, return_index=True)
            draw = draw[np.sort(first)][: n - have]
            chosen.append(draw)
            have += draw.size
        out[row] = np.concatenate(chosen)
    return out
