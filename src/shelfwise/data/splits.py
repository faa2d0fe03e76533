"""Evaluation splits of an interaction frame: train / validation / test.

Every splitter returns a `Split` whose frames are row subsets of the input (same columns,
rows in input order, index reset); every input row lands in exactly one part, except the
cold rows `temporal_split` drops on request. Time order is (timestamp, seq): the `seq`
column (insertion order, as the store returns it) breaks timestamp ties; without it the
frame's row order does.

Rounding of ratio splits (`random_holdout`, `temporal_split`): with
`c_train = 1 - test_ratio - validation_ratio` and `c_val = 1 - test_ratio`, a group of `n`
rows (one user's, or the whole frame) puts its first `round(c_train * n)` rows (in random or
time order) in train, the next `round(c_val * n) - round(c_train * n)` in validation and the
rest in test, where `round` is numpy's round-half-to-even (2.5 -> 2, 3.5 -> 4). This is the
rule of Microsoft Recommenders' `python_stratified_split`.

Validation carved from a training matrix (`carve_validation`): the one per-user carving
that models (early stopping, hybrid weight fitting) and the tuner's holdout fold use; see
its docstring for the eligibility rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.time import micros, point_micros
from shelfwise.errors import ConfigError, DataError

PARTS: tuple[str, ...] = ("train", "validation", "test")
_TRAIN, _VALIDATION, _TEST, _DROPPED = 0, 1, 2, -1


@dataclass(frozen=True)
class Split:
    """Train, validation and test frames (validation may be empty), plus how they were made.

    `info` holds the `method`, its `params` and method-specific counts (`dropped_cold`,
    `users_all_train`); `summary()` adds per-part sizes.
    """

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """`info` plus rows / users / items (and time range) of each part."""
        out: dict[str, Any] = dict(self.info)
        for name in PARTS:
            out[name] = _describe(getattr(self, name))
        return out


def _describe(frame: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(frame)}
    for column, key in (("user_id", "users"), ("item_id", "items")):
        if column in frame.columns:
            out[key] = int(frame[column].nunique())
    if "timestamp" in frame.columns and len(frame):
        ts = pd.to_datetime(frame["timestamp"])
        out["start"] = ts.min().isoformat()
        out["end"] = ts.max().isoformat()
    return out


# -- shared helpers ------------------------------------------------------------------------
def _require(frame: pd.DataFrame, columns: tuple[str, ...], method: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{method} needs column(s) {missing}; the frame has {list(frame.columns)}")


def _check_ratios(test_ratio: float, validation_ratio: float) -> tuple[float, float]:
    """Validate the ratios -> the cumulative thresholds (c_train, c_val)."""
    for name, value in (("test_ratio", test_ratio), ("validation_ratio", validation_ratio)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
    if test_ratio + validation_ratio >= 1:
        raise ConfigError(
            f"test_ratio + validation_ratio must be below 1 (something must be left to "
            f"train on), got {test_ratio} + {validation_ratio}"
        )
    return 1 - test_ratio - validation_ratio, 1 - test_ratio


def _check_min(min_interactions: int) -> None:
    if isinstance(min_interactions, bool) or not isinstance(min_interactions, int | np.integer):
        raise ConfigError(f"min_interactions must be an integer, got {min_interactions!r}")
    if min_interactions < 1:
        raise ConfigError(f"min_interactions must be >= 1, got {min_interactions}")


def _user_codes(frame: pd.DataFrame, column: str = "user_id") -> tuple[np.ndarray, np.ndarray]:
    """(dense code of `column` per row, rows per code)."""
    codes, _ = pd.factorize(frame[column], use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64)
    if (codes < 0).any():
        raise DataError(f"{int((codes < 0).sum()):,} rows have no {column}; drop them first")
    counts = np.bincount(codes) if codes.size else np.zeros(0, dtype=np.int64)
    return codes, counts


def _time_order(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(timestamp micros, tie-breaker) per row: `seq` if present, else the row position."""
    ts = micros(frame["timestamp"])
    if "seq" in frame.columns:
        seq = pd.to_numeric(frame["seq"], errors="coerce")
        if seq.isna().any():
            raise DataError("the 'seq' column has missing values")
        tiebreak = seq.to_numpy(dtype=np.int64)
    else:
        tiebreak = np.arange(len(frame), dtype=np.int64)
    return ts, tiebreak


def _seen_in(column: pd.Series, mask: np.ndarray) -> np.ndarray:
    """Per row: does the row's value occur among the rows selected by `mask`?"""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    table = np.zeros(len(uniques) + 1, dtype=bool)  # last slot: missing values
    table[codes[mask]] = True
    return np.asarray(table[codes])


def _rank_in_group(sorted_codes: np.ndarray) -> np.ndarray:
    """0-based position of each element within its run of equal codes (input sorted)."""
    n = sorted_codes.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)


def _ratio_labels(rank: np.ndarray, size: np.ndarray, c_train: float, c_val: float) -> np.ndarray:
    """Labels for 0-based `rank` among `size` ordered rows (round-half-to-even cuts)."""
    train_cut = np.round(c_train * size)
    val_cut = np.round(c_val * size)
    position = rank + 1
    return np.where(
        position <= train_cut, _TRAIN, np.where(position <= val_cut, _VALIDATION, _TEST)
    ).astype(np.int8)


def _make_split(frame: pd.DataFrame, labels: np.ndarray, info: dict[str, Any]) -> Split:
    parts = [
        frame.iloc[np.flatnonzero(labels == label)].reset_index(drop=True)
        for label in (_TRAIN, _VALIDATION, _TEST)
    ]
    return Split(parts[0], parts[1], parts[2], info)


# -- splitters -----------------------------------------------------------------------------
def random_holdout(
    frame: pd.DataFrame,
    test_ratio: float = 0.25,
    validation_ratio: float = 0.0,
    seed: int = 42,
    min_interactions: int = 1,
    by: str = "user",
) -> Split:
    """Per-user random split (stratified by user), as Recommenders' `python_stratified_split`.

    `by="item"` stratifies by item instead (Recommenders' `filter_by="item"`, what their
    MovieLens benchmark notebook splits with): every item's rows are cut 75/25, so a user's
    test share varies. Everything below holds with "user" read as "item".

    Each row of an eligible user (one with at least `min_interactions` rows) draws a key from
    `np.random.RandomState(seed).rand(n_eligible_rows)`, in input order; each user's rows
    are ordered by that key and cut with the module's rounding rule: `round(c_train * n)`
    rows to train, `round(c_val * n) - round(c_train * n)` to validation, the rest to test
    (`c_train = 1 - test_ratio - validation_ratio`, `c_val = 1 - test_ratio`, numpy
    round-half-to-even). E.g. with test_ratio=0.25 a user with 2 rows keeps both in train,
    4 -> 3 + 1, 6 -> 4 + 2, 10 -> 8 + 2. With the same input rows in the same order and
    `min_interactions=1` the train/test row sets equal those of
    `python_stratified_split(frame, ratio=1 - test_ratio, seed=seed)`.

    Users with fewer than `min_interactions` rows go entirely to train (Recommenders drops
    them instead). Same seed and input -> the same split.
    """
    c_train, c_val = _check_ratios(test_ratio, validation_ratio)
    _check_min(min_interactions)
    if by not in ("user", "item"):
        raise ConfigError(f"random_holdout: by must be 'user' or 'item', got {by!r}")
    column = f"{by}_id"
    _require(frame, (column,), "random_holdout")
    codes, counts = _user_codes(frame, column)
    labels = np.full(len(frame), _TRAIN, dtype=np.int8)
    eligible = np.flatnonzero(counts[codes] >= min_interactions)
    if eligible.size:
        keys = np.random.RandomState(seed).rand(eligible.size)
        group = codes[eligible]
        order = np.lexsort((keys, group))
        sorted_group = group[order]
        labels[eligible[order]] = _ratio_labels(
            _rank_in_group(sorted_group), counts[sorted_group], c_train, c_val
        )
    info = {
        "method": "random_holdout",
        "params": {
            "test_ratio": test_ratio,
            "validation_ratio": validation_ratio,
            "seed": seed,
            "min_interactions": min_interactions,
            "by": by,
        },
        f"{by}s_all_train": int((counts < min_interactions).sum()),
    }
    return _make_split(frame, labels, info)


def temporal_split(
    frame: pd.DataFrame,
    test_ratio: float = 0.2,
    validation_ratio: float = 0.0,
    filter_unseen: bool = True,
    cutoff: datetime | pd.Timestamp | str | None = None,
    validation_cutoff: datetime | pd.Timestamp | str | None = None,
) -> Split:
    """Global temporal split: the newest rows are test, the ones before them validation.

    By ratio: rows ordered by (timestamp, seq) are cut with the module's rounding rule over
    the whole frame (the last `n - round((1 - test_ratio) * n)` rows are test). By time:
    with `cutoff`, rows at or after it are test and the ratios are ignored; with
    `validation_cutoff` as well (<= cutoff), rows in [validation_cutoff, cutoff) are
    validation. Naive cutoffs are UTC.

    With `filter_unseen`, validation and test rows whose user or item never appears in
    train are dropped (a model cannot score them); `summary()["dropped_cold"]` counts them.
    """
    c_train, c_val = _check_ratios(test_ratio, validation_ratio)
    _require(frame, ("user_id", "item_id", "timestamp"), "temporal_split")
    ts, tiebreak = _time_order(frame)
    n = len(frame)
    params: dict[str, Any] = {"filter_unseen": filter_unseen}
    info: dict[str, Any] = {"method": "temporal", "params": params}
    if cutoff is None:
        if validation_cutoff is not None:
            raise ConfigError("validation_cutoff needs cutoff (the start of the test period)")
        order = np.lexsort((tiebreak, ts))
        labels = np.empty(n, dtype=np.int8)
        labels[order] = _ratio_labels(
            np.arange(n, dtype=np.int64), np.full(n, n, dtype=np.int64), c_train, c_val
        )
        params.update(test_ratio=test_ratio, validation_ratio=validation_ratio)
    else:
        if validation_ratio:
            raise ConfigError(
                "with cutoff, give the validation period as validation_cutoff, not validation_ratio"
            )
        test_start = point_micros(cutoff, "cutoff")
        labels = np.where(ts >= test_start, _TEST, _TRAIN).astype(np.int8)
        params["cutoff"] = pd.Timestamp(test_start, unit="us").isoformat()
        if validation_cutoff is not None:
            val_start = point_micros(validation_cutoff, "validation_cutoff")
            if val_start > test_start:
                raise ConfigError(
                    f"validation_cutoff ({validation_cutoff}) is after cutoff ({cutoff})"
                )
            labels[(ts >= val_start) & (ts < test_start)] = _VALIDATION
            params["validation_cutoff"] = pd.Timestamp(val_start, unit="us").isoformat()
    dropped = {"validation": 0, "test": 0}
    if filter_unseen:
        in_train = labels == _TRAIN
        seen = _seen_in(frame["user_id"], in_train) & _seen_in(frame["item_id"], in_train)
        for label, name in ((_VALIDATION, "validation"), (_TEST, "test")):
            cold = (labels == label) & ~seen
            dropped[name] = int(cold.sum())
            labels[cold] = _DROPPED
    info["dropped_cold"] = dropped
    return _make_split(frame, labels, info)


def leave_last_out(
    frame: pd.DataFrame, min_interactions: int = 3, validation: bool = True
) -> Split:
    """Per user, in (timestamp, seq) order: the last row is test, the second-to-last
    validation (train with `validation=False`), the rest train.

    Users with fewer than `min_interactions` rows go entirely to train.
    """
    _check_min(min_interactions)
    _require(frame, ("user_id", "timestamp"), "leave_last_out")
    codes, counts = _user_codes(frame)
    ts, tiebreak = _time_order(frame)
    order = np.lexsort((tiebreak, ts, codes))
    sorted_codes = codes[order]
    size = counts[sorted_codes]
    from_end = size - 1 - _rank_in_group(sorted_codes)
    sorted_labels = np.full(len(frame), _TRAIN, dtype=np.int8)
    eligible = size >= min_interactions
    sorted_labels[eligible & (from_end == 0)] = _TEST
    if validation:
        sorted_labels[eligible & (from_end == 1)] = _VALIDATION
    labels = np.empty(len(frame), dtype=np.int8)
    labels[order] = sorted_labels
    info = {
        "method": "leave_last_out",
        "params": {"min_interactions": min_interactions, "validation": validation},
        "users_all_train": int((counts < min_interactions).sum()),
    }
    return _make_split(frame, labels, info)


def sample_users(frame: pd.DataFrame, n: int, seed: int = 0) -> pd.DataFrame:
    """The events of `n` users drawn at random (seeded, without replacement) with all of
    their events: a smaller dataset with the same per-user history lengths, e.g. to tune a
    slow model on a CPU. `n` at least the number of users (or 0) keeps every user."""
    _require(frame, ("user_id",), "sample_users")
    if n < 0:
        raise ConfigError(f"sample_users: n must be >= 0, got {n}")
    ids = np.sort(frame["user_id"].unique())
    if n == 0 or n >= ids.size:
        return frame
    keep = np.random.default_rng(seed).choice(ids, size=n, replace=False)
    return frame[frame["user_id"].isin(keep)].reset_index(drop=True)


def carve_validation(
    matrix: sp.spmatrix, fraction: float, seed: int, *, min_interactions: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Per-user validation carved out of a users x items matrix: `(rest, held)`.

    Eligibility: a user (row) with at least `min_interactions` stored cells (>= 2, so one
    always stays); other users keep every cell. An eligible user with n cells holds out
    `min(n - 1, max(1, round(fraction * n)))` of them (Python's round-half-to-even), so every
    eligible user has something to validate on and something left to train on. The held
    cells are `numpy.random.default_rng(seed).choice(n, size, replace=False)` positions
    among the user's cells in column order, drawn user by user in row order: the same
    matrix and seed give the same split.

    `rest` keeps the matrix values of the other cells; `held` is binary (1 per held cell);
    both are float32 CSR with sorted indices, of the matrix's shape. Duplicate entries are
    summed first. Callers choose `min_interactions`: torch models 2, the hybrid's weight
    fitting and the tuner's holdout fold 3.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ConfigError(f"fraction must be a number in (0, 1), got {fraction!r}")
    if not 0 < fraction < 1:
        raise ConfigError(
            f"fraction must be in (0, 1) (the share of each user's cells held out), got {fraction}"
        )
    _check_min(min_interactions)
    if min_interactions < 2:
        raise ConfigError(
            f"min_interactions must be >= 2 to carve validation (a user with one cell would "
            f"have nothing left to train on), got {min_interactions}"
        )
    x = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    x.sum_duplicates()
    x.sort_indices()
    rng = np.random.default_rng(seed)
    counts = np.diff(x.indptr)
    held = np.zeros(x.nnz, dtype=bool)
    for user in np.flatnonzero(counts >= min_interactions):
        n = int(counts[user])
        take = min(n - 1, max(1, round(fraction * n)))
        held[x.indptr[user] + rng.choice(n, size=take, replace=False)] = True
    rows = np.repeat(np.arange(x.shape[0]), counts)
    keep = ~held
    rest = sp.csr_matrix((x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape)
    val = sp.csr_matrix(
        (np.ones(int(held.sum()), np.float32), (rows[held], x.indices[held])), shape=x.shape
    )
    rest.sort_indices()
    val.sort_indices()
    return rest, val
