"""Filters, facet counts, sorting and pagination over the catalog's columns.

Filters
-------
`Filters` is the validated form. From text (CLI `--filter`, HTTP `filter=`), one
`key=value` per filter, values separated by `|` meaning "any of":

==========================  ==========================================================
`category=Home > Kitchen`   the category and everything below it (case-insensitive)
`brand=Acme|Bolt`           any of the brands (case-insensitive)
`price=10..50`              price range, inclusive; `10..` and `..50` leave a side open
`min_price=10`              the same as `price=10..`; `max_price=50` likewise
`in_stock=true`             `true/false`, `yes/no`, `1/0`
`colour=Blue|Red`           any other key is an attribute (`attr.colour=...` also works)
`attr.rating_avg=4..`       a numeric attribute range
==========================  ==========================================================

A filter the catalog cannot satisfy is not an error (it matches nothing); a malformed one
is: `ConfigError` names the filter and says what is allowed.

Facets and sorting
------------------
`FilterIndex.facets(rows, names)` counts values over the *whole* result set (not just the
page): `brand`, `category` (every level of the tree), `price` (fixed buckets), `in_stock`
and any attribute. `SORTS` lists the sort orders; ties keep the relevance order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.data.names import CATEGORY_SEPARATOR
from shelfwise.errors import ConfigError
from shelfwise.search.documents import attribute_dict

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_FACETS",
    "PRICE_BUCKETS",
    "SORTS",
    "FilterIndex",
    "Filters",
    "Sort",
    "coerce_filters",
    "page_slice",
    "parse_filters",
]

Sort = Literal["relevance", "price_asc", "price_desc", "popularity", "newest"]
"""A sort order (the type HTTP parameters use); `SORTS` holds the same values."""
SORTS: tuple[str, ...] = get_args(Sort)
DEFAULT_FACETS: tuple[str, ...] = ("brand", "category", "price", "in_stock")
PRICE_BUCKETS: tuple[float, ...] = (0, 10, 25, 50, 100, 250, 500, 1000, math.inf)
MAX_PER_PAGE = 100
_TRUE = {"true", "yes", "1", "y", "t", "on"}
_FALSE = {"false", "no", "0", "n", "f", "off"}
_RESERVED = {"category", "brand", "price", "min_price", "max_price", "in_stock"}


def _norm(value: Any) -> str:
    return str(value).strip().casefold()


class Filters(BaseModel):
    """Validated filters; every set field must hold (AND), values within a field are ORed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str | None = None
    brand: tuple[str, ...] = ()
    min_price: float | None = Field(default=None, ge=0)
    max_price: float | None = Field(default=None, ge=0)
    in_stock: bool | None = None
    attributes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    attribute_ranges: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        """Whether no filter is set."""
        return not (
            self.category
            or self.brand
            or self.min_price is not None
            or self.max_price is not None
            or self.in_stock is not None
            or self.attributes
            or self.attribute_ranges
        )

    def describe(self) -> dict[str, Any]:
        """The filters that are set, JSON-able."""
        return self.model_dump(exclude_defaults=True)


def _check(f: Filters) -> Filters:
    if f.min_price is not None and f.max_price is not None and f.min_price > f.max_price:
        raise ConfigError(
            f"filter min_price={f.min_price:g} is greater than max_price={f.max_price:g}: "
            "swap them or drop one"
        )
    for key, (lo, hi) in f.attribute_ranges.items():
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"filter attr.{key}: the range {lo:g}..{hi:g} is empty (min > max)")
    return f


def coerce_filters(value: Filters | Mapping[str, Any] | Sequence[str] | None) -> Filters:
    """A `Filters` from a `Filters`, a dict of its fields, or `key=value` strings."""
    if value is None:
        return Filters()
    if isinstance(value, Filters):
        return _check(value)
    if isinstance(value, str):
        return parse_filters([value])
    if isinstance(value, Mapping):
        data = dict(value)
        for key in ("brand",):
            if isinstance(data.get(key), str):
                data[key] = (data[key],)
        attrs = data.get("attributes")
        if isinstance(attrs, Mapping):
            data["attributes"] = {
                k: (v,) if isinstance(v, str | int | float) else tuple(v) for k, v in attrs.items()
            }
        try:
            return _check(Filters(**data))
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            allowed = ", ".join(Filters.model_fields)
            raise ConfigError(
                f"invalid filters {value!r}: {exc}. Filter fields: {allowed}"
            ) from exc
    return parse_filters(list(value))


def _float(key: str, text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"filter {key}: '{text}' is not a number") from None
    if not math.isfinite(v):
        raise ConfigError(f"filter {key}: '{text}' is not a finite number")
    return v


def _range(key: str, text: str) -> tuple[float | None, float | None]:
    if ".." not in text:
        v = _float(key, text)
        return v, v
    lo, hi = text.split("..", 1)
    return (
        _float(key, lo) if lo.strip() else None,
        _float(key, hi) if hi.strip() else None,
    )


def parse_filters(specs: Iterable[str]) -> Filters:
    """`["brand=Acme|Bolt", "price=10..50", "colour=Blue"]` -> `Filters`."""
    data: dict[str, Any] = {"attributes": {}, "attribute_ranges": {}}
    for spec in specs:
        if "=" not in spec:
            raise ConfigError(
                f"filter '{spec}' is not key=value; e.g. brand=Acme, category=Home > Kitchen, "
                "price=10..50, in_stock=true, colour=Blue"
            )
        key, raw = (s.strip() for s in spec.split("=", 1))
        key = key.lower()
        if not key or not raw:
            raise ConfigError(f"filter '{spec}' needs a key and a value")
        values = tuple(v.strip() for v in raw.split("|") if v.strip())
        if key == "category":
            data["category"] = raw
        elif key == "brand":
            data["brand"] = values
        elif key == "price":
            lo, hi = _range("price", raw)
            if lo is not None:
                data["min_price"] = lo
            if hi is not None:
                data["max_price"] = hi
        elif key in ("min_price", "max_price"):
            data[key] = _float(key, raw)
            if data[key] < 0:
                raise ConfigError(f"filter {key} must be >= 0, got {raw}")
        elif key == "in_stock":
            if raw.lower() in _TRUE:
                data["in_stock"] = True
            elif raw.lower() in _FALSE:
                data["in_stock"] = False
            else:
                raise ConfigError(f"filter in_stock: '{raw}' is not true/false")
        else:
            name = key[5:] if key.startswith("attr.") else key
            if not name:
                raise ConfigError(f"filter '{spec}' names no attribute")
            if ".." in raw:
                data["attribute_ranges"][name] = _range(f"attr.{name}", raw)
            else:
                data["attributes"][name] = values
    return _check(Filters(**data))


def page_slice(total: int, page: int, per_page: int) -> slice:
    """The slice of a result list for a 1-based page; errors name the bad argument."""
    if isinstance(page, bool) or not isinstance(page, int | np.integer) or page < 1:
        raise ConfigError(f"page must be an integer >= 1, got {page!r}")
    if (
        isinstance(per_page, bool)
        or not isinstance(per_page, int | np.integer)
        or not 1 <= per_page <= MAX_PER_PAGE
    ):
        raise ConfigError(f"per_page must be an integer from 1 to {MAX_PER_PAGE}, got {per_page!r}")
    start = (int(page) - 1) * int(per_page)
    return slice(min(start, total), min(start + int(per_page), total))


class _Codes:
    """A categorical column: int32 codes per row (-1 = missing) and the labels."""

    def __init__(self) -> None:
        self.codes = np.zeros(0, dtype=np.int32)
        self.labels: list[str] = []
        # label -> code and normalised label -> codes; None until first needed (a loaded
        # column has labels that are only looked up when a filter names one)
        self._by_norm: dict[str, list[int]] | None = {}
        self._by_label: dict[str, int] | None = {}

    @classmethod
    def from_labels(cls, labels: Sequence[str], codes: np.ndarray) -> _Codes:
        """A column from its labels and per-row codes (as `labels` and `codes` hold them)."""
        col = cls()
        col.labels = [str(label) for label in labels]
        col._by_norm = col._by_label = None
        if codes.size and int(codes.max()) >= len(col.labels):
            raise ValueError(f"filter index: code {int(codes.max())} of {len(col.labels)} labels")
        col.codes = codes
        return col

    def _lookups(self) -> tuple[dict[str, int], dict[str, list[int]]]:
        if self._by_label is None or self._by_norm is None:
            self._by_label = {label: c for c, label in enumerate(self.labels)}
            self._by_norm = {}
            for c, label in enumerate(self.labels):
                self._by_norm.setdefault(_norm(label), []).append(c)
        return self._by_label, self._by_norm

    def code(self, label: str) -> int:
        by_label, by_norm = self._lookups()
        c = by_label.get(label)
        if c is None:
            c = len(self.labels)
            self.labels.append(label)
            by_label[label] = c
            by_norm.setdefault(_norm(label), []).append(c)
        return c

    def set(self, rows: np.ndarray, values: Sequence[str | None], n_rows: int) -> None:
        if self.codes.size < n_rows:
            self.codes = np.concatenate(
                [self.codes, np.full(n_rows - self.codes.size, -1, np.int32)]
            )
        self.codes[rows] = [-1 if v is None or v == "" else self.code(str(v)) for v in values]

    def holds(self, codes: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Whether each row (every row, or `rows`) holds one of `codes`: `np.isin` by a
        table lookup (one pass, no hashing of the column)."""
        column = self.codes if rows is None else self.codes[rows]
        table = np.zeros(len(self.labels) + 1, dtype=bool)  # the last entry: missing (-1)
        codes = np.asarray(codes, dtype=np.int64)
        table[codes[(codes >= 0) & (codes < len(self.labels))]] = True
        return table[column]

    def matching(self, values: Iterable[str]) -> np.ndarray:
        out: list[int] = []
        for v in values:
            out.extend(self._lookups()[1].get(_norm(v), []))
        return np.asarray(out, dtype=np.int32)

    def code_counts(self, rows: np.ndarray) -> np.ndarray:
        """How many of `rows` hold each label (int64, one per label)."""
        codes = self.codes[rows]
        return np.bincount(codes[codes >= 0], minlength=len(self.labels))

    def counts(self, rows: np.ndarray, limit: int | None = None) -> list[tuple[str, int]]:
        """(label, count) over `rows`, most frequent first, ties by code; the first
        `limit` only when given (the same head as the full list)."""
        counts = self.code_counts(rows)
        nz = np.flatnonzero(counts)
        order = nz[np.lexsort((nz, -counts[nz]))]
        if limit is not None:
            order = order[:limit]
        return [(self.labels[c], int(counts[c])) for c in order.tolist()]


class FilterIndex:
    """Columnar copies of the filterable fields, row-aligned with the search index."""

    def __init__(self) -> None:
        self.n_rows = 0
        self.brand = _Codes()
        self.category = _Codes()
        self.price = np.zeros(0, dtype=np.float64)
        self.in_stock = np.zeros(0, dtype=bool)
        self.created = np.zeros(0, dtype=np.int64)
        self.attributes: dict[str, _Codes] = {}
        self.numeric: dict[str, np.ndarray] = {}
        self._subtree: dict[str, np.ndarray] = {}
        self._paths: _CategoryPaths | None = None

    @classmethod
    def build(cls, items: pd.DataFrame) -> FilterIndex:
        """Index every row of a canonical items frame."""
        index = cls()
        index.set_rows(np.arange(len(items)), items)
        return index

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(the labels as JSON-able data, the row-aligned arrays): what `from_state` reads
        back, so a saved index is loaded without re-reading every item's fields."""
        attrs = sorted(self.attributes)
        numeric = sorted(self.numeric)
        meta: dict[str, Any] = {
            "n_rows": self.n_rows,
            "brand": self.brand.labels,
            "category": self.category.labels,
            "attributes": {key: self.attributes[key].labels for key in attrs},
            "attribute_order": attrs,
            "numeric": numeric,
        }
        arrays: dict[str, np.ndarray] = {
            "brand": self.brand.codes,
            "category": self.category.codes,
            "price": self.price,
            "in_stock": self.in_stock,
            "created": self.created,
        }
        for i, key in enumerate(attrs):
            arrays[f"attr_{i}"] = self.attributes[key].codes
        for i, key in enumerate(numeric):
            arrays[f"num_{i}"] = self.numeric[key]
        return meta, arrays

    @classmethod
    def from_state(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> FilterIndex:
        """The index `state` described; `ValueError` when an array does not have one value
        per row."""
        index = cls()
        n = int(meta["n_rows"])
        index.n_rows = n

        def column(name: str, dtype: type) -> np.ndarray:
            arr: np.ndarray = np.array(arrays[name], dtype=dtype)  # writable: rows change live
            if arr.shape != (n,):
                raise ValueError(f"filter index: {name} has shape {arr.shape}, expected ({n},)")
            return arr

        index.brand = _Codes.from_labels(meta["brand"], column("brand", np.int32))
        index.category = _Codes.from_labels(meta["category"], column("category", np.int32))
        index.price = column("price", np.float64)
        index.in_stock = column("in_stock", np.bool_)
        index.created = column("created", np.int64)
        for i, key in enumerate(meta["attribute_order"]):
            codes = column(f"attr_{i}", np.int32)
            index.attributes[key] = _Codes.from_labels(meta["attributes"][key], codes)
        for i, key in enumerate(meta["numeric"]):
            index.numeric[key] = column(f"num_{i}", np.float64)
        return index

    def set_rows(self, rows: np.ndarray, items: pd.DataFrame) -> None:
        """(Re)index `items` at `rows` (rows may extend the index at its end)."""
        import pandas as pd

        rows = np.asarray(rows, dtype=np.int64)
        n = max(self.n_rows, int(rows.max()) + 1 if rows.size else 0)
        grow = n - self.n_rows
        if grow:
            self.price = np.concatenate([self.price, np.full(grow, np.nan)])
            self.in_stock = np.concatenate([self.in_stock, np.zeros(grow, bool)])
            self.created = np.concatenate([self.created, np.zeros(grow, np.int64)])
            for key, arr in self.numeric.items():
                self.numeric[key] = np.concatenate([arr, np.full(grow, np.nan)])
            for col in self.attributes.values():
                col.set(np.empty(0, np.int64), [], n)
            self.n_rows = n
        self.brand.set(rows, _strings(items, "brand"), n)
        self.category.set(rows, _strings(items, "category"), n)
        self._subtree.clear()
        if "price" in items:
            self.price[rows] = pd.to_numeric(items["price"], errors="coerce").to_numpy(
                np.float64, na_value=np.nan
            )
        if "in_stock" in items:
            self.in_stock[rows] = items["in_stock"].fillna(False).astype(bool).to_numpy()
        else:
            self.in_stock[rows] = True
        if "created_at" in items:
            ts = pd.to_datetime(items["created_at"], errors="coerce")
            self.created[rows] = ts.to_numpy(dtype="datetime64[us]").astype(np.int64)
        attrs = items["attributes"] if "attributes" in items else pd.Series([None] * len(rows))
        # one pass over the attributes each row has (not rows x keys): per key, the rows
        # holding it and their values; every other row of `rows` has none
        present: dict[str, tuple[list[int], list[Any]]] = {}
        for position, value in enumerate(attrs.tolist()):
            for key, v in attribute_dict(value).items():
                where, values = present.setdefault(key, ([], []))
                where.append(position)
                values.append(v)
        for key in set(present) | set(self.attributes):
            where, values = present.get(key, ([], []))
            labels: list[str | None] = [None] * len(rows)
            nums = np.full(len(rows), np.nan)
            for position, v in zip(where, values, strict=True):
                if v is not None:
                    labels[position] = _label(v)
                    nums[position] = _number(v)
            col = self.attributes.setdefault(key, _Codes())
            col.set(rows, labels, n)
            if key in self.numeric or np.isfinite(nums).any():
                arr = self.numeric.setdefault(key, np.full(n, np.nan))
                arr[rows] = nums

    # -- filtering -----------------------------------------------------------------------

    def _category_codes(self, path: str) -> np.ndarray:
        key = _norm(CATEGORY_SEPARATOR.join(p.strip() for p in path.split(">") if p.strip()))
        codes = self._subtree.get(key)
        if codes is None:
            sub = key + CATEGORY_SEPARATOR.casefold()
            codes = np.asarray(
                [
                    c
                    for c, label in enumerate(self.category.labels)
                    if _norm(label) == key or _norm(label).startswith(sub)
                ],
                dtype=np.int32,
            )
            self._subtree[key] = codes
        return codes

    def mask(self, filters: Filters) -> np.ndarray | None:
        """Boolean mask of rows passing `filters` (None when there is nothing to filter)."""
        if filters.empty:
            return None
        m = np.ones(self.n_rows, dtype=bool)
        if filters.category:
            m &= self.category.holds(self._category_codes(filters.category))
        if filters.brand:
            m &= self.brand.holds(self.brand.matching(filters.brand))
        if filters.min_price is not None:
            m &= self.price >= filters.min_price
        if filters.max_price is not None:
            m &= self.price <= filters.max_price
        if filters.in_stock is not None:
            m &= self.in_stock == filters.in_stock
        for key, values in filters.attributes.items():
            col = self.attributes.get(key) or self._attribute_ci(key)
            if col is None:
                m[:] = False
                continue
            m &= col.holds(col.matching(values))
        for key, (lo, hi) in filters.attribute_ranges.items():
            arr = self.numeric.get(key)
            if arr is None:
                m[:] = False
                continue
            if lo is not None:
                m &= arr >= lo
            if hi is not None:
                m &= arr <= hi
        return m

    def _attribute_ci(self, key: str) -> _Codes | None:
        for name, col in self.attributes.items():
            if _norm(name) == _norm(key):
                return col
        return None

    # -- facets --------------------------------------------------------------------------

    def facet_names(self) -> list[str]:
        """Facets that can be asked for: the fixed ones, then the attributes."""
        return [*DEFAULT_FACETS, *sorted(self.attributes)]

    def check_facets(self, names: Iterable[str]) -> list[str]:
        """Validated facet names (an `attr.` prefix is accepted and dropped)."""
        out = []
        for name in names:
            key = name[5:] if name.startswith("attr.") else name
            if key not in DEFAULT_FACETS and key not in self.attributes:
                raise ConfigError(
                    f"unknown facet '{name}'; choose from {', '.join(self.facet_names())}"
                )
            out.append(key)
        return out

    def facets(
        self, rows: np.ndarray, names: Iterable[str], limit: int = 20
    ) -> dict[str, list[dict[str, Any]]]:
        """Value counts over `rows` for each facet, most frequent first (`limit` each)."""
        out: dict[str, list[dict[str, Any]]] = {}
        rows = np.asarray(rows, dtype=np.int64)
        for name in self.check_facets(names):
            if name == "brand":
                counts = self.brand.counts(rows, limit)
                out[name] = [{"value": v, "count": c} for v, c in counts]
            elif name == "category":
                out[name] = self._category_facet(rows, max(limit, 50))
            elif name == "price":
                out[name] = self._price_facet(rows)
            elif name == "in_stock":
                flags = self.in_stock[rows]
                out[name] = [
                    {"value": v, "count": int(c)}
                    for v, c in ((True, flags.sum()), (False, (~flags).sum()))
                    if c
                ]
            else:
                counts = self.attributes[name].counts(rows, limit)
                out[name] = [{"value": v, "count": c} for v, c in counts]
        return out

    def _category_facet(self, rows: np.ndarray, limit: int | None = None) -> list[dict[str, Any]]:
        """Counts of every category path and its ancestors over `rows`: shallow levels
        first, then the most frequent, then by name (the first `limit` of them)."""
        labels = self.category.labels
        paths = self._paths
        if paths is None or paths.labels is not labels or paths.n_labels != len(labels):
            # a column's labels only grow (a new label gets the next code), so the list and
            # its length say when the table is out of date
            paths = self._paths = _CategoryPaths(labels)
        per_label = self.category.code_counts(rows)
        totals = np.bincount(
            paths.path_of, weights=per_label[paths.label_of], minlength=len(paths.names)
        ).astype(np.int64)
        nz = np.flatnonzero(totals)
        order = nz[np.lexsort((paths.name_rank[nz], -totals[nz], paths.marks[nz]))][:limit]
        names, levels = paths.names, paths.levels
        return [
            {"value": names[p], "count": int(totals[p]), "level": int(levels[p])}
            for p in order.tolist()
        ]

    def _price_facet(self, rows: np.ndarray) -> list[dict[str, Any]]:
        edges = np.asarray(PRICE_BUCKETS, dtype=np.float64)
        # np.histogram's buckets ([lo, hi), the last one closed) by one binary search per
        # row, without sorting the prices; missing, infinite and negative prices fall out
        bucket = np.searchsorted(edges, self.price[rows], side="right") - 1
        bucket = bucket[(bucket >= 0) & (bucket < edges.size - 1)]
        counts = np.bincount(bucket, minlength=edges.size - 1)
        out = []
        for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True):
            if c:
                label = f"{lo:g}+" if math.isinf(hi) else f"{lo:g}-{hi:g}"
                out.append(
                    {
                        "value": label,
                        "min": float(lo),
                        "max": None if math.isinf(hi) else float(hi),
                        "count": int(c),
                    }
                )
        return out

    # -- sorting -------------------------------------------------------------------------

    def order(
        self,
        rows: np.ndarray,
        relevance: np.ndarray,
        sort: str,
        popularity: np.ndarray,
        limit: int | None = None,
    ) -> np.ndarray:
        """`rows` in the order `sort` asks for; `relevance` (aligned with rows) breaks ties.

        Missing prices sort last in both price orders. With `limit`, only the first `limit`
        of that order (the same rows as the full order's head): the rows whose first key is
        at or before the `limit`-th smallest are sorted, not every match.
        """
        check_sort(sort)
        rows = np.asarray(rows)
        rel = -np.asarray(relevance, dtype=np.float64)
        if sort == "relevance":
            first = rel
        elif sort in ("price_asc", "price_desc"):
            price = self.price[rows]
            missing = ~np.isfinite(price)
            key = np.where(missing, 0.0, price if sort == "price_asc" else -price)
            # (missing, key) as one number: missing prices after every known one
            first = np.where(missing, np.inf, key)
        elif sort == "popularity":
            first = -popularity[rows]
        else:
            first = -self.created[rows]
        if limit is not None and limit < rows.size:
            if limit <= 0:
                return rows[:0]
            kth = np.partition(first, limit - 1)[limit - 1]
            if kth == kth:  # a NaN k-th key (sorted last) would leave rows out: sort all
                head = np.flatnonzero(first <= kth)
                return self.order(rows[head], -rel[head], sort, popularity)[:limit]
        if sort == "relevance":
            keys: tuple[np.ndarray, ...] = (rows, -popularity[rows], rel)
        elif sort in ("price_asc", "price_desc"):
            keys = (rows, rel, key, missing)
        elif sort == "popularity":
            keys = (rows, rel, -popularity[rows])
        else:
            keys = (rows, rel, -self.created[rows])
        return rows[np.lexsort(keys)]


class _CategoryPaths:
    """Every category label's path and its ancestors, numbered, for counting the category
    facet with `np.bincount`: `(label_of[i], path_of[i])` pairs a label with one of its
    paths; `marks` (the ">" in a path, the facet's first key), `name_rank` (its place in
    name order) and `levels` (its depth) are per path."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self.n_labels = len(labels)
        ids: dict[str, int] = {}
        label_of: list[int] = []
        path_of: list[int] = []
        for code, label in enumerate(labels):
            parts = label.split(CATEGORY_SEPARATOR)
            for depth in range(1, len(parts) + 1):
                path = CATEGORY_SEPARATOR.join(parts[:depth])
                label_of.append(code)
                path_of.append(ids.setdefault(path, len(ids)))
        self.names = list(ids)
        self.label_of = np.asarray(label_of, dtype=np.int64)
        self.path_of = np.asarray(path_of, dtype=np.int64)
        self.marks = np.asarray([p.count(">") for p in self.names], dtype=np.int64)
        self.levels = np.asarray(
            [p.count(CATEGORY_SEPARATOR) + 1 for p in self.names], dtype=np.int64
        )
        rank = np.empty(len(self.names), dtype=np.int64)
        rank[sorted(range(len(self.names)), key=self.names.__getitem__)] = np.arange(
            len(self.names)
        )
        self.name_rank = rank


def top_stable(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the `k` largest `values`, largest first, ties by position: the same as
    `np.argsort(-values, kind="stable")[:k]`, without sorting every value (only the values
    at or above the k-th largest are sorted)."""
    v = np.asarray(values)
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    if k >= v.size:
        return np.argsort(-v, kind="stable")
    neg = -v
    kth = np.partition(neg, k - 1)[k - 1]
    cand = np.flatnonzero(neg <= kth)
    return cand[np.argsort(neg[cand], kind="stable")[:k]]


def check_sort(sort: str) -> str:
    """`sort` if it is one of `SORTS`, else a `ConfigError` listing them."""
    if sort not in SORTS:
        raise ConfigError(f"unknown sort '{sort}'; choose one of {', '.join(SORTS)}")
    return sort


def _strings(items: pd.DataFrame, column: str) -> list[str | None]:
    if column not in items:
        return [None] * len(items)
    return [None if (v is None or v != v) else str(v) for v in items[column].tolist()]


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, int | float):
        return float(value)
    return math.nan
