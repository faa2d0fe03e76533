"""Events -> a weighted users x items CSR matrix, the only thing models train on.

How an event becomes a number (`InteractionWeights`):

1. Rows without a `user_id` or an `item_id` are ignored (searches, for instance).
2. Events of a `use_value` type (ratings by default) whose value is below `min_value` are
   dropped. A missing value counts as 1.0 here and in step 3.
3. weight = the weight of the event's type, times the event's `value` if the type is in
   `use_value`, times `0.5 ** (age_days / half_life_days)` if `half_life_days` is set.
   Ages are measured from `now` (default: the newest timestamp among the rows of step 1)
   and clipped at 0, so events after `now` are not boosted.
4. Weights of the same (user, item) are summed. Cells whose weight is 0 are not stored; with
   `binary`, every stored cell becomes 1.

A frame without a `type` column weighs every row 1 (then `use_value` and `min_value` do
not apply); without a `value` column every value counts as 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from shelfwise.data.schemas import EVENT_TYPES
from shelfwise.data.time import MICROS_PER_DAY, micros, point_micros
from shelfwise.data.vocab import Vocabulary, factorize_ids, unknown_id_message
from shelfwise.data.weights import EVENT_TYPE_WEIGHTS
from shelfwise.errors import ConfigError, DataError, UnknownIdError

_OPTIONS: tuple[str, ...] = ("use_value", "binary", "half_life_days", "min_value")


class InteractionWeights(BaseModel):
    """How much each kind of event counts in the interaction matrix (see the module doc).

    One field per event type (view, click, add_to_cart, purchase, rating, search: finite,
    >= 0; 0 ignores the type; the defaults are `shelfwise.data.weights.EVENT_TYPE_WEIGHTS`)
    plus:

    - `use_value`: types whose weight is multiplied by the event's `value` (ratings).
    - `binary`: every stored cell becomes 1 (implicit feedback).
    - `half_life_days`: time decay; an event `half_life_days` old counts half.
    - `min_value`: events of a `use_value` type whose value is below this are dropped,
      e.g. `min_value=4` keeps only 4- and 5-star ratings.

    Invalid settings (an unknown key, a negative weight or half-life, ...) raise `ConfigError`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the defaults are the one event-type table (`shelfwise.data.weights`)
    view: float = EVENT_TYPE_WEIGHTS["view"]
    click: float = EVENT_TYPE_WEIGHTS["click"]
    add_to_cart: float = EVENT_TYPE_WEIGHTS["add_to_cart"]
    purchase: float = EVENT_TYPE_WEIGHTS["purchase"]
    rating: float = EVENT_TYPE_WEIGHTS["rating"]
    search: float = EVENT_TYPE_WEIGHTS["search"]
    use_value: tuple[str, ...] = ("rating",)
    binary: bool = False
    half_life_days: float | None = None
    min_value: float | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'weights'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ConfigError(f"invalid interaction weights: {problems}") from exc

    @model_validator(mode="before")
    @classmethod
    def _check_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = [k for k in data if k not in EVENT_TYPES and k not in _OPTIONS]
            if unknown:
                raise ConfigError(
                    f"unknown interaction weight key(s) {', '.join(map(repr, unknown))}; "
                    f"event types are {', '.join(EVENT_TYPES)} and options are "
                    f"{', '.join(_OPTIONS)}"
                )
        return data

    @field_validator(*EVENT_TYPES, mode="after")
    @classmethod
    def _check_weight(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"an event type weight must be a finite number >= 0, got {value}")
        return value

    @field_validator("use_value", mode="before")
    @classmethod
    def _check_use_value(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            value = (value,)
        elif isinstance(value, set | frozenset):
            value = tuple(sorted(value))
        elif isinstance(value, Iterable):
            value = tuple(value)
        else:
            return value
        unknown = [t for t in value if t not in EVENT_TYPES]
        if unknown:
            raise ConfigError(
                f"use_value names unknown event type(s) {', '.join(map(repr, unknown))}; "
                f"valid types are {', '.join(EVENT_TYPES)}"
            )
        return tuple(dict.fromkeys(value))

    @field_validator("half_life_days", mode="after")
    @classmethod
    def _check_half_life(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value <= 0):
            raise ConfigError(
                f"half_life_days must be a positive number of days (or None for no decay), "
                f"got {value}"
            )
        return value

    @field_validator("min_value", mode="after")
    @classmethod
    def _check_min_value(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"min_value must be a finite number or None, got {value}")
        return value

    @property
    def type_weights(self) -> dict[str, float]:
        """`{event type: weight}` for every event type."""
        return {t: float(getattr(self, t)) for t in EVENT_TYPES}

    def weight_of(self, event_type: str) -> float:
        """The weight of one event type (`ConfigError` if it is not an event type)."""
        if event_type not in EVENT_TYPES:
            raise ConfigError(
                f"{event_type!r} is not an event type; use one of {', '.join(EVENT_TYPES)}"
            )
        return float(getattr(self, event_type))


@dataclass
class Interactions:
    """A weighted users x items matrix with the vocabularies of its rows and columns.

    `matrix` is float32 CSR in canonical form (sorted indices, no duplicates);
    row `u` is `users.ids[u]`, column `i` is `items.ids[i]`.
    """

    matrix: sp.csr_matrix
    users: Vocabulary
    items: Vocabulary

    def __post_init__(self) -> None:
        if self.matrix.shape != (len(self.users), len(self.items)):
            raise DataError(
                f"matrix shape {self.matrix.shape} does not match the vocabularies "
                f"({len(self.users)} users x {len(self.items)} items)"
            )

    @property
    def n_users(self) -> int:
        """Number of rows."""
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        """Number of columns."""
        return int(self.matrix.shape[1])

    @property
    def nnz(self) -> int:
        """Number of stored (user, item) cells."""
        return int(self.matrix.nnz)

    @property
    def density(self) -> float:
        """Stored cells / all cells (0.0 for an empty matrix)."""
        cells = self.n_users * self.n_items
        return self.nnz / cells if cells else 0.0

    def user_items(self, user: int | str) -> np.ndarray:
        """The item indices (int64, ascending) of one user, given by row index or external id."""
        if isinstance(user, str):
            row = self.users.index(user)
        else:
            row = int(user)
            if not 0 <= row < self.n_users:
                raise IndexError(f"user index {row} is out of range (0..{self.n_users - 1})")
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return np.asarray(self.matrix.indices[start:end], dtype=np.int64)

    def to_frame(self) -> pd.DataFrame:
        """One row per stored cell: external `user_id`, `item_id` and the `weight`, in
        (row, column) order."""
        coo = self.matrix.tocoo()
        return pd.DataFrame(
            {
                "user_id": self.users.ids[coo.row],
                "item_id": self.items.ids[coo.col],
                "weight": np.asarray(coo.data, dtype=np.float32),
            }
        )


def _event_weights(frame: pd.DataFrame, weights: InteractionWeights) -> np.ndarray:
    """Per-row weights before decay; NaN marks rows dropped by `min_value`."""
    n = len(frame)
    if "type" not in frame.columns:
        return np.ones(n, dtype=np.float64)
    types = np.asarray(frame["type"].to_numpy(dtype=object))
    codes = pd.Index(EVENT_TYPES, dtype=object).get_indexer(pd.Index(types, dtype=object))
    missing_type = pd.isna(types)
    unknown = (codes < 0) & ~missing_type
    if unknown.any():
        bad = pd.unique(types[unknown])[:5].tolist()
        raise DataError(
            f"{int(unknown.sum()):,} rows have an unknown event type ({', '.join(map(repr, bad))});"
            f" valid types are {', '.join(EVENT_TYPES)}"
        )
    table = np.array([weights.weight_of(t) for t in EVENT_TYPES] + [1.0], dtype=np.float64)
    out = table[codes]  # code -1 (missing type) picks the trailing 1.0
    if weights.use_value:
        value_codes = [EVENT_TYPES.index(t) for t in weights.use_value]
        valued = np.isin(codes, value_codes)
        if valued.any():
            if "value" in frame.columns:
                values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(
                    dtype=np.float64, na_value=np.nan
                )
                values = np.where(np.isnan(values), 1.0, values)
            else:
                values = np.ones(n, dtype=np.float64)
            out = np.where(valued, out * values, out)
            if weights.min_value is not None:
                out = np.where(valued & (values < weights.min_value), np.nan, out)
    return out


def _encode(
    codes: np.ndarray, ids: np.ndarray, vocab: Vocabulary | None, column: str, drop: bool
) -> tuple[np.ndarray, Vocabulary]:
    """Factorized ids -> vocabulary indices (-1 = unknown, only with `drop`) + the vocab."""
    if vocab is None:
        vocab = Vocabulary.from_values(ids[pd.unique(codes)], name=column)
    out = vocab.encode(ids, unknown="minus_one")[codes]
    bad = out < 0
    if bad.any() and not drop:
        unknown = list(dict.fromkeys(ids[pd.unique(codes[bad])].tolist()))
        raise UnknownIdError(
            unknown_id_message(
                column, unknown, len(vocab), "pass drop_unknown=True to skip such rows"
            )
        )
    return out, vocab


def build_interactions(
    frame: pd.DataFrame,
    weights: InteractionWeights | None = None,
    users: Vocabulary | None = None,
    items: Vocabulary | None = None,
    now: datetime | pd.Timestamp | str | None = None,
    drop_unknown: bool = False,
) -> Interactions:
    """Interaction events -> `Interactions` (weighted users x items CSR matrix + vocabularies).

    `frame` needs `user_id` and `item_id`; `type`, `value` and `timestamp` are used when
    present (`timestamp` is required with time decay). Weighting is described in the module
    doc. Given vocabularies fix the matrix dimensions and index order (so matrices of a
    train/test split line up); ids outside them raise `UnknownIdError`, or are skipped with
    `drop_unknown=True`. Otherwise the vocabularies hold every user / item of the rows that
    name both, in first-seen order, including those whose events weigh 0.
    `now` (naive = UTC) is the reference time of the decay.
    """
    weights = weights or InteractionWeights()
    missing_cols = [c for c in ("user_id", "item_id") if c not in frame.columns]
    if missing_cols:
        raise DataError(
            f"interaction frame lacks column(s) {missing_cols}; it has {list(frame.columns)}"
        )
    user_codes, user_ids = factorize_ids(frame["user_id"])
    item_codes, item_ids = factorize_ids(frame["item_id"])
    keep = (user_codes >= 0) & (item_codes >= 0)
    if not keep.all():
        used = [c for c in ("type", "value", "timestamp") if c in frame.columns]
        frame = frame.loc[keep, used]
        user_codes, item_codes = user_codes[keep], item_codes[keep]

    values = _event_weights(frame, weights)
    if weights.half_life_days is not None and len(frame):
        if "timestamp" not in frame.columns:
            raise DataError("time decay (half_life_days) needs a 'timestamp' column")
        ts = micros(frame["timestamp"], fix="time decay needs one")
        ref = int(ts.max()) if now is None else point_micros(now, "now")
        age_days = np.maximum(ref - ts, 0) / MICROS_PER_DAY
        values = values * np.exp2(-age_days / weights.half_life_days)

    rows, users = _encode(user_codes, user_ids, users, "user_id", drop_unknown)
    cols, items = _encode(item_codes, item_ids, items, "item_id", drop_unknown)
    stored = (rows >= 0) & (cols >= 0) & ~np.isnan(values) & (values != 0)
    matrix = sp.coo_matrix(
        (values[stored], (rows[stored], cols[stored])),
        shape=(len(users), len(items)),
        dtype=np.float64,
    ).tocsr()
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix = matrix.astype(np.float32)
    matrix.eliminate_zeros()
    if weights.binary:
        matrix.data[:] = 1.0
    matrix.sort_indices()
    return Interactions(matrix=matrix, users=users, items=items)
