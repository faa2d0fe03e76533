"""External string ids <-> dense int indices.

Models only ever see dense ints (row / column numbers of a matrix); a `Vocabulary` maps the
store's external ids to those ints and back, at the edge. Index `i` is the `i`-th id of the
vocabulary; indices never change once assigned (`extend` only appends), so a model trained
on a vocabulary keeps working on an extended one.

Ids are strings. Integer ids (and integer-valued floats, as pandas makes of an int column
with a gap) are read as their decimal text, so `42`, `42.0` and `"42"` are the same id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from shelfwise.errors import ConfigError, DataError, UnknownIdError

UnknownPolicy = Literal["error", "drop", "minus_one"]
_UNKNOWN_POLICIES: tuple[str, ...] = ("error", "drop", "minus_one")
_FORMAT = "shelfwise-vocabulary"
_FORMAT_VERSION = 1


def _id_text(value: Any) -> str | None:
    """One raw id -> its text, or None when missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return None
        return str(int(value)) if float(value).is_integer() else str(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def as_id_array(values: Any) -> np.ndarray:
    """Any sequence of ids -> a 1-D object array of `str`, with `None` where an id is missing.

    Fast for the common cases (an array, Series or list that already holds strings, or an
    integer array); mixed content falls back to converting each value.
    """
    if isinstance(values, str | bytes):
        raise TypeError("expected a sequence of ids, got a single string")
    if isinstance(values, pd.Series | pd.Index):
        arr = np.asarray(values.to_numpy(dtype=object))
    elif isinstance(values, np.ndarray):
        arr = values
    else:
        arr = np.asarray(list(values), dtype=object)
    arr = arr.reshape(-1)
    kind = arr.dtype.kind
    if kind in "iuUS":
        return arr.astype(str).astype(object)
    if kind == "f":
        out = np.empty(arr.shape[0], dtype=object)
        missing = np.isnan(arr)
        whole = ~missing & np.isfinite(arr) & (arr == np.floor(arr))
        out[whole] = arr[whole].astype(np.int64).astype(str)
        other = ~missing & ~whole
        out[other] = arr[other].astype(str)
        out[missing] = None
        return out
    arr = arr.astype(object, copy=False)
    missing = pd.isna(arr)
    if missing.any():
        present = arr[~missing]
        if pd.api.types.infer_dtype(present, skipna=False) in ("string", "empty"):
            out = arr.copy()
            out[missing] = None
            return out
    elif pd.api.types.infer_dtype(arr, skipna=False) in ("string", "empty"):
        return arr
    return np.fromiter((_id_text(v) for v in arr), dtype=object, count=arr.shape[0])


def factorize_ids(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ids -> (int64 code per value, -1 where missing; the distinct ids as `str`, first seen
    first). `ids[codes]` rebuilds the input. One hash pass; values that spell the same id
    differently (`1` and `"1"`) may give two codes with equal ids."""
    if isinstance(values, str | bytes):
        raise TypeError("expected a sequence of ids, got a single string")
    if isinstance(values, np.ndarray):
        values = values.reshape(-1)
    elif not isinstance(values, pd.Series | pd.Index):
        values = np.asarray(list(values), dtype=object)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = np.asarray(codes, dtype=np.int64).reshape(-1)
    ids = as_id_array(uniques)
    missing = pd.isna(ids)
    if missing.any():  # exotic null-likes factorize kept as values
        codes = np.where(missing[np.maximum(codes, 0)] & (codes >= 0), -1, codes)
    return codes, ids


#: Most ids `Vocabulary.encode` looks up one by one (more: one vectorised pandas pass).
_SMALL = 256


def _as_index(arr: np.ndarray) -> pd.Index:
    return pd.Index(arr, dtype=object, copy=False)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def unknown_id_message(name: str, unknown: Iterable[Any], n_known: int, hint: str = "") -> str:
    """The message of an `UnknownIdError`: names the id(s), the kind of id and the vocab size.

    `unknown` are the distinct unknown ids, first ones first; at most three are quoted.
    """
    ids = list(unknown)
    known = f"not among the {_plural(n_known, 'known id')}"
    if len(ids) == 1:
        text = f"unknown {name} {ids[0]!r} ({known})"
    else:
        shown = ", ".join(repr(i) for i in ids[:3])
        more = f" and {len(ids) - 3:,} more" if len(ids) > 3 else ""
        text = f"{len(ids):,} unknown {name} values: {shown}{more} ({known})"
    return f"{text}; {hint}" if hint else text


class Vocabulary:
    """An ordered set of external ids; the position of an id is its dense index.

    >>> v = Vocabulary(["b", "a"], name="item_id")
    >>> v.index("a"), v.decode([0]).tolist()
    (1, ['b'])

    `name` ("item_id", "user_id", ...) is only used in error messages; two vocabularies
    with the same ids in the same order are equal whatever their names.
    """

    __slots__ = ("_ids", "_index", "_lookup", "name")

    def __init__(self, ids: Iterable[str], name: str = "id") -> None:
        arr = as_id_array(ids)
        missing = np.flatnonzero(pd.isna(arr))
        if missing.size:
            raise DataError(
                f"{name} vocabulary: id at position {int(missing[0])} is missing (None/NaN); "
                "drop rows without an id first or use Vocabulary.from_values, which skips them"
            )
        arr = np.array(arr, dtype=object, copy=True)
        index = pd.Index(arr, dtype=object, copy=False)
        if not index.is_unique:
            dup = index[index.duplicated()][0]
            raise DataError(
                f"{name} vocabulary: duplicate id {dup!r}; ids must be unique "
                "(use Vocabulary.from_values to de-duplicate)"
            )
        arr.flags.writeable = False
        self._ids: np.ndarray = arr
        self._index: pd.Index = index
        self._lookup: dict[str, int] | None = None  # id -> index, built on first small encode
        self.name: str = name

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_values(
        cls, values: Iterable[Any], sorted: bool = False, name: str = "id"
    ) -> Vocabulary:
        """The distinct non-missing values, in first-seen order (or sorted, with `sorted=True`).

        Missing values (None/NaN) are skipped, so a frame column can be passed as is.
        """
        arr = as_id_array(values)
        arr = arr[~pd.isna(arr)]
        unique = pd.unique(arr)
        if sorted:
            unique = np.sort(unique.astype(str)).astype(object)
        return cls(unique, name=name)

    def extend(self, new_ids: Iterable[Any]) -> Vocabulary:
        """A new vocabulary: these ids plus the unseen ones of `new_ids`, appended in first-seen
        order. Existing indices are unchanged. Missing values are an error."""
        arr = as_id_array(new_ids)
        missing = np.flatnonzero(pd.isna(arr))
        if missing.size:
            raise DataError(
                f"{self.name} vocabulary: new id at position {int(missing[0])} is missing"
            )
        unseen = arr[self._index.get_indexer(_as_index(arr)) < 0]
        if unseen.size == 0:
            return Vocabulary(self._ids, name=self.name)
        return Vocabulary(np.concatenate([self._ids, pd.unique(unseen)]), name=self.name)

    # -- lookups ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids.tolist())

    def __contains__(self, item: object) -> bool:
        key = _id_text(item)
        return key is not None and key in self._index

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return len(self) == len(other) and bool(np.array_equal(self._ids, other._ids))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Vocabulary(name={self.name!r}, size={len(self):,})"

    @property
    def ids(self) -> np.ndarray:
        """All ids in index order (a read-only object array of `str`)."""
        return self._ids

    def index(self, id: Any) -> int:
        """The dense index of one id; `UnknownIdError` if it is not in the vocabulary."""
        key = _id_text(id)
        if key is not None:
            try:
                loc = self._index.get_loc(key)
            except KeyError:
                pass
            else:
                return int(loc)  # type: ignore[arg-type]
        raise UnknownIdError(unknown_id_message(self.name, [id], len(self)))

    def encode(self, ids: Iterable[Any], unknown: UnknownPolicy = "error") -> np.ndarray:
        """Ids -> int64 indices. Missing or unknown ids: `unknown="error"` raises
        `UnknownIdError` naming them, `"drop"` leaves them out (the result is shorter),
        `"minus_one"` maps them to -1."""
        if unknown not in _UNKNOWN_POLICIES:
            raise ConfigError(
                f"unknown={unknown!r} is not a policy; use one of {', '.join(_UNKNOWN_POLICIES)}"
            )
        small = self._encode_small(ids)
        if small is not None and (unknown == "minus_one" or not (small < 0).any()):
            return small
        if small is not None and unknown == "drop":
            return small[small >= 0]
        codes, uniques = factorize_ids(ids)
        lut = self._index.get_indexer(_as_index(uniques)).astype(np.int64, copy=False)
        lut = np.append(lut, -1)  # code -1 (missing) -> -1
        out = lut[codes]
        bad = out < 0
        if unknown == "minus_one" or not bad.any():
            return out
        if unknown == "drop":
            return out[~bad]
        unknown_codes = pd.unique(codes[bad])
        raise UnknownIdError(
            unknown_id_message(
                self.name,
                list(dict.fromkeys(None if c < 0 else uniques[c] for c in unknown_codes.tolist())),
                len(self),
                "encode(..., unknown='drop') or 'minus_one' to skip them",
            )
        )

    def _encode_small(self, ids: Iterable[Any]) -> np.ndarray | None:
        """`encode(ids, "minus_one")` by dict lookups for a short list, tuple or object array
        of `str` (what a request encodes: a page's items, a user's history), where hashing
        them with pandas costs more than the lookups; None for anything else."""
        if isinstance(ids, np.ndarray):
            if ids.dtype != object or ids.ndim != 1:
                return None
        elif not isinstance(ids, list | tuple):
            return None
        n = len(ids)
        if n > _SMALL or not all(type(i) is str for i in ids):
            return None
        lookup = self._lookup
        if lookup is None:
            lookup = self._lookup = {str(k): i for i, k in enumerate(self._ids.tolist())}
        get = lookup.get
        return np.fromiter((get(i, -1) for i in ids), dtype=np.int64, count=n)

    def decode(self, indices: Iterable[int] | np.ndarray) -> np.ndarray:
        """Int indices -> ids (an object array of `str`). Indices must be 0 <= i < len(self);
        anything else (including -1) raises `IndexError`."""
        arr = np.asarray(indices if isinstance(indices, np.ndarray) else list(indices))
        if arr.size == 0:
            return np.empty(arr.shape, dtype=object)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"indices must be integers, got dtype {arr.dtype}")
        bad = (arr < 0) | (arr >= len(self))
        if bad.any():
            first = int(arr[bad].reshape(-1)[0])
            raise IndexError(
                f"{self.name} index {first} is out of range: the vocabulary has "
                f"{_plural(len(self), 'id')} (0..{len(self) - 1})"
            )
        return self._ids[arr]

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form written by `save`."""
        return {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "name": self.name,
            "size": len(self),
            "ids": self._ids.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Vocabulary:
        """Inverse of `to_dict`; `DataError` if the content is not a vocabulary."""
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise DataError(f"not a vocabulary (expected format {_FORMAT!r})")
        if data.get("version") != _FORMAT_VERSION:
            raise DataError(
                f"vocabulary format version {data.get('version')!r} is not supported "
                f"(this Shelfwise reads version {_FORMAT_VERSION}); rebuild the bundle"
            )
        ids = data.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DataError("vocabulary 'ids' must be a list of strings")
        if data.get("size", len(ids)) != len(ids):
            raise DataError(f"vocabulary says size {data.get('size')} but holds {len(ids)} ids")
        return cls(ids, name=str(data.get("name", "id")))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write as JSON (UTF-8); the file is replaced atomically."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        tmp.replace(target)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a file written by `save`. `DataError` if it is not a valid vocabulary file."""
        source = Path(path)
        text = source.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: not valid JSON ({exc}); rebuild the file") from exc
        try:
            return cls.from_dict(data)
        except DataError as exc:
            raise DataError(f"{source}: {exc}") from exc
