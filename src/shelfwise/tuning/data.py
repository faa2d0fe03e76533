"""What the tuner fits and scores on: validation folds carved from the training part only.

The evaluation protocol (`shelfwise.evaluation.protocols.prepare`) gives train / validation /
test matrices. Tuning never looks at test. Its folds are:

- `loo`: fit on train, score on the protocol's validation part (each user's second-to-last
  item).
- `holdout`: the protocol's validation part is empty, so a validation holdout is carved from
  the training matrix: a random 25% of each user's training cells, rounded, at least one and
  never all, for users with 3 or more cells (`data.splits.carve_validation`, seeded; the
  per-user counts are those of the outer 75/25 `random_holdout`: 3 -> 1, 6 -> 2, 8 -> 2).
- `temporal`: the training events are split again in time (`temporal_split`, newest 20%
  of the training rows) and mapped onto the protocol's vocabularies.
- `--cv K` (any protocol): K folds of the training cells, each user's cells spread at random
  over the folds; fold f is scored after fitting on the other K - 1.

Every fold's relevance excludes the items its training matrix holds, as in `prepare`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.splits import carve_validation, temporal_split
from shelfwise.errors import ConfigError, DataError
from shelfwise.evaluation.protocols import ProtocolData, split_events

VALIDATION_RATIO = 0.25
# users with 1 or 2 training cells keep them all, as the outer 75/25 holdout rounds them
HOLDOUT_MIN_INTERACTIONS = 3


@dataclass(frozen=True)
class Fold:
    """One fit / score pair: a training matrix and binary relevance for `users`.

    `sequences` (optional) are the training events of every user in time order, exactly
    the cells of `train`; sequential models train and score from them. Only the `loo` fold
    has them (the protocol's own training sequences); other folds re-cut the cells.
    """

    train: sp.csr_matrix
    relevance: sp.csr_matrix
    users: np.ndarray
    sequences: Any = None


def _users_with_items(relevance: sp.csr_matrix, max_users: int | None, seed: int) -> np.ndarray:
    users = np.flatnonzero(np.diff(relevance.indptr) > 0).astype(np.int64)
    if max_users is not None and users.size > max_users:
        rng = np.random.default_rng(seed)
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    return users


def _minus(m: sp.csr_matrix, seen: sp.csr_matrix) -> sp.csr_matrix:
    """Binary `m` without the cells stored in `seen`."""
    out = sp.csr_matrix(m, dtype=np.float32, copy=True)
    out.data[:] = 1.0
    if seen.nnz:
        out = sp.csr_matrix(out - out.multiply(seen > 0))
    out.eliminate_zeros()
    out.sort_indices()
    return out


def _cells(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    coo = sp.coo_matrix(matrix)
    order = np.lexsort((coo.col, coo.row))
    return coo.row[order], coo.col[order], coo.data[order]


def _from_cells(
    rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    m = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=shape)
    m.sort_indices()
    return m


def holdout_fold(train: sp.csr_matrix, seed: int = 42, max_users: int | None = None) -> Fold:
    """`VALIDATION_RATIO` of each training user's cells held out at random (users with
    `HOLDOUT_MIN_INTERACTIONS` or more; `data.splits.carve_validation`)."""
    fit, rel = carve_validation(
        train, VALIDATION_RATIO, seed, min_interactions=HOLDOUT_MIN_INTERACTIONS
    )
    return Fold(fit, rel, _users_with_items(rel, max_users, seed))


def temporal_fold(
    data: ProtocolData,
    events: pd.DataFrame,
    seed: int = 42,
    max_users: int | None = None,
    binary: bool = True,
) -> Fold:
    """The newest 20% of the protocol's training events as validation (see module doc)."""
    frame = events.loc[events["user_id"].notna() & events["item_id"].notna()]
    if "type" in frame.columns:
        frame = frame.loc[frame["type"].fillna("") != "search"]
    outer = split_events(frame.reset_index(drop=True), "temporal", seed=seed)
    inner = temporal_split(outer.train, test_ratio=0.2)
    if len(inner.train) == 0 or len(inner.test) == 0:
        raise DataError("too few training events to carve a temporal validation split")
    weights = InteractionWeights(binary=True) if binary else InteractionWeights()
    fit = build_interactions(inner.train, weights, users=data.users, items=data.items).matrix
    val = build_interactions(
        inner.test, InteractionWeights(binary=True), users=data.users, items=data.items
    ).matrix
    rel = _minus(val, fit)
    return Fold(sp.csr_matrix(fit, dtype=np.float32), rel, _users_with_items(rel, max_users, seed))


def cv_folds(
    train: sp.csr_matrix, k: int, seed: int = 42, max_users: int | None = None
) -> list[Fold]:
    """K folds of the training cells; each user's cells are dealt round-robin over the folds
    in a random order, so every fold holds about 1/K of every user's cells."""
    if k < 2:
        raise ConfigError(f"--cv must be >= 2 for cross-validation, got {k}")
    rows, cols, vals = _cells(train)
    if rows.size < k:
        raise DataError(f"{rows.size} training cells cannot make {k} folds")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows.size)
    order = perm[np.argsort(rows[perm], kind="stable")]  # random order within each user
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    lengths = np.diff(np.r_[starts, sorted_rows.size])
    rank = np.arange(sorted_rows.size) - np.repeat(starts, lengths)
    offset = rng.integers(0, k, size=starts.size)  # so small users do not all land in fold 0
    fold_of = np.empty(rows.size, dtype=np.int64)
    fold_of[order] = (rank + np.repeat(offset, lengths)) % k
    folds = []
    for f in range(k):
        held = fold_of == f
        fit = _from_cells(rows[~held], cols[~held], vals[~held], train.shape)
        rel = _from_cells(rows[held], cols[held], np.ones(int(held.sum())), train.shape)
        folds.append(Fold(fit, rel, _users_with_items(rel, max_users, seed + f)))
    return folds


def validation_folds(
    data: ProtocolData,
    events: pd.DataFrame | None = None,
    cv: int = 1,
    seed: int = 42,
    max_users: int | None = None,
    binary: bool = True,
) -> list[Fold]:
    """The tuning folds of a protocol split (see the module doc); never the test part."""
    if cv > 1:
        return cv_folds(data.train, cv, seed, max_users)
    if cv < 1:
        raise ConfigError(f"--cv must be >= 1, got {cv}")
    if data.protocol == "loo":
        rel = _minus(data.validation, data.train)
        sequences = getattr(data, "sequences", None)
        fold = Fold(data.train, rel, _users_with_items(rel, max_users, seed), sequences)
    elif data.protocol == "temporal":
        if events is None:
            raise ConfigError("the temporal protocol needs the events to carve validation")
        fold = temporal_fold(data, events, seed, max_users, binary)
    else:
        fold = holdout_fold(data.train, seed, max_users)
    if fold.users.size == 0:
        raise DataError(
            f"the {data.protocol} validation split has no user with a held-out item; the data "
            "is too small to tune on"
        )
    return [fold]
