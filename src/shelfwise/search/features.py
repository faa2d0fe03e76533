"""Candidate features for the learned re-ranker: lexical, semantic, item and personal.

For a query, a shopper (optional) and the candidate items a first stage retrieved,
`FeatureBuilder.features` returns one row per candidate:

* lexical: the BM25F score over all fields and a BM25 score per field (title, brand,
  category, description, attributes), and the share of query terms found in the title;
* semantic: the cosine of the query with the item's embedding and with its category name;
* first stage: the candidate's log rank, and the share of the first stage's top 10 that
  shares the candidate's category (a query-category match signal);
* item: log popularity and log purchases in the history events, popularity relative to
  the category's best seller, log price and price relative to the category median, and any
  numeric item features a dataset supplies (rating counts, ...);
* personal (zeros for anonymous or new shoppers): how many events the shopper has, the
  share of their history in the item's category, top-level category and brand, how often
  they interacted with this very item, and how far its price sits from the shopper's usual
  price band (the mean log price relative to the category median of what they engaged with).

Everything personal or popular comes from the `history` events given at construction,
so an evaluation must pass only events from before the searches it scores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.weights import weighted_types
from shelfwise.errors import DataError
from shelfwise.search.analysis import Analyzer
from shelfwise.search.bm25 import BM25Config, BM25Index
from shelfwise.search.semantic import DenseIndex

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FIELDS",
    "EVENT_WEIGHTS",
    "FeatureBuilder",
    "UserProfiles",
    "attribute_text",
    "numeric_attributes",
    "search_documents",
]

DEFAULT_FIELDS: dict[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category": 1.5,
    "description": 1.0,
    "attributes": 1.0,
}
"""BM25F fields and boosts used for evaluation and re-ranking."""

EVENT_WEIGHTS: dict[str, float] = weighted_types()
"""How much one event of each type says about a shopper's taste (searches say nothing)."""


def attribute_text(value: object) -> str:
    """Searchable text of an item's attributes (a JSON object or dict): `key value ...`
    for the string values; numbers are features, not words."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    data: object = value
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("{"):
            return text
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return text
    if not isinstance(data, dict):
        return str(data)
    parts = [f"{str(k).replace('_', ' ')} {v}" for k, v in data.items() if isinstance(v, str) and v]
    return " ".join(parts)


def search_documents(items: pd.DataFrame) -> dict[str, list[str]]:
    """The catalogue as BM25 fields (title, brand, category, description, attributes)."""
    docs: dict[str, list[str]] = {}
    for name in ("title", "brand", "category", "description"):
        docs[name] = (
            items[name].fillna("").astype(str).tolist() if name in items else [""] * len(items)
        )
    docs["attributes"] = (
        [attribute_text(v) for v in items["attributes"]]
        if "attributes" in items
        else [""] * len(items)
    )
    return docs


def numeric_attributes(
    items: pd.DataFrame, keys: Sequence[str] | None = None, min_share: float = 0.5
) -> dict[str, np.ndarray]:
    """Numeric item attributes as features: `keys`, or every key with a number on at least
    `min_share` of the items. Counts (keys ending in `count`) are log1p-scaled; missing
    values are NaN (the builder turns them into 0)."""
    if "attributes" not in items:
        rows: list[dict[str, object]] = [{} for _ in range(len(items))]
    else:
        rows = []
        for a in items["attributes"].tolist():
            try:
                parsed = json.loads(a) if isinstance(a, str) and a.startswith("{") else a
            except json.JSONDecodeError:
                parsed = {}
            rows.append(parsed if isinstance(parsed, dict) else {})
    if keys is None:
        counts: dict[str, int] = {}
        for r in rows:
            for key, value in r.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    counts[key] = counts.get(key, 0) + 1
        keys = sorted(k for k, c in counts.items() if c >= min_share * max(len(rows), 1))
    out: dict[str, np.ndarray] = {}
    for key in keys:
        vals = np.array(
            [
                float(v)
                if isinstance(v := r.get(key), int | float) and not isinstance(v, bool)
                else np.nan
                for r in rows
            ],
            dtype=np.float64,
        )
        out[key] = np.log1p(np.maximum(vals, 0)) if key.endswith("count") else vals
    return out


def _top_level(category: str) -> str:
    for sep in (" > ", " / ", ">", "/"):
        if sep in category:
            return category.split(sep)[0].strip()
    return category.strip()


class UserProfiles:
    """Popularity and per-shopper affinities from history events over a catalogue.

    `items` rows are item indices; `categories`, `tops` and `brands` are integer codes per
    item (-1 for none); `rel_price` the log price relative to the category median (NaN when
    unknown).
    """

    def __init__(
        self,
        item_ids: Sequence[str],
        categories: np.ndarray,
        tops: np.ndarray,
        brands: np.ndarray,
        rel_price: np.ndarray,
        history: pd.DataFrame | None,
    ) -> None:
        n_items = len(item_ids)
        self.n_items = n_items
        self.user_index: dict[str, int] = {}
        empty = sp.csr_matrix((0, 1))
        self.user_category, self.user_top, self.user_brand, self.user_item = (
            empty,
            empty,
            empty,
            empty,
        )
        self.user_weight = np.zeros(0)
        self.user_events = np.zeros(0)
        self.user_price = np.zeros(0)
        self.popularity = np.zeros(n_items)
        self.purchases = np.zeros(n_items)
        if history is None or history.empty:
            return
        missing = {"user_id", "item_id", "type"} - set(history.columns)
        if missing:
            raise DataError(f"history events lack columns {sorted(missing)}")
        position = pd.Series(np.arange(n_items), index=pd.Index(list(item_ids)))
        ev = history[history["item_id"].notna() & history["type"].isin(list(EVENT_WEIGHTS))]
        item = position.reindex(ev["item_id"].astype(str).to_numpy()).to_numpy()
        ok = ~np.isnan(item)
        ev, item = ev[ok], item[ok].astype(np.int64)
        weight = ev["type"].map(EVENT_WEIGHTS).to_numpy(dtype=np.float64)
        users, user = np.unique(ev["user_id"].astype(str).to_numpy(), return_inverse=True)
        self.user_index = {u: i for i, u in enumerate(users.tolist())}
        n_users = users.size
        self.popularity = np.bincount(item, weights=weight, minlength=n_items).astype(np.float64)
        bought = (ev["type"] == "purchase").to_numpy()
        self.purchases = np.bincount(item[bought], minlength=n_items).astype(np.float64)

        def matrix(codes: np.ndarray) -> sp.csr_matrix:
            c = codes[item]
            keep = c >= 0
            width = int(codes.max()) + 1 if codes.size and codes.max() >= 0 else 1
            m = sp.csr_matrix(
                (weight[keep], (user[keep], c[keep])), shape=(n_users, width), dtype=np.float64
            )
            m.sum_duplicates()
            return m

        self.user_weight = np.bincount(user, weights=weight, minlength=n_users).astype(np.float64)
        self.user_events = np.bincount(user, minlength=n_users).astype(np.float64)
        self.user_category = matrix(categories)
        self.user_top = matrix(tops)
        self.user_brand = matrix(brands)
        self.user_item = matrix(np.arange(n_items))
        rp = rel_price[item]
        has = ~np.isnan(rp)
        num = np.bincount(user[has], weights=weight[has] * rp[has], minlength=n_users)
        den = np.bincount(user[has], weights=weight[has], minlength=n_users)
        self.user_price = np.divide(num, den, out=np.full(n_users, np.nan), where=den > 0)

    def user(self, user_id: str | None) -> int:
        """The profile row of a shopper, -1 when anonymous or without history."""
        if user_id is None:
            return -1
        return self.user_index.get(str(user_id), -1)


class FeatureBuilder:
    """Feature rows for (query, shopper, candidates); see the module docstring."""

    def __init__(
        self,
        items: pd.DataFrame,
        history: pd.DataFrame | None = None,
        dense: DenseIndex | None = None,
        item_features: Mapping[str, np.ndarray] | None = None,
        fields: Mapping[str, float] | None = None,
        analyzer: Analyzer | None = None,
        popularity: np.ndarray | None = None,
        purchases: np.ndarray | None = None,
    ) -> None:
        """`popularity` / `purchases` (per item row) replace what `history` would give, for
        serving where the history events are not at hand."""
        if "item_id" not in items.columns:
            raise DataError("items need an item_id column")
        n = len(items)
        self.n_items = n
        self.analyzer = analyzer or Analyzer()
        self.fields = dict(fields or DEFAULT_FIELDS)
        docs = search_documents(items)
        unknown = set(self.fields) - set(docs)
        if unknown:
            raise DataError(f"unknown search fields {sorted(unknown)}; use {sorted(docs)}")
        self.bm25 = BM25Index(BM25Config(fields=self.fields), self.analyzer).index(docs)
        self.field_indexes = {
            f: BM25Index(BM25Config(fields={f: 1.0}), self.analyzer).index({f: docs[f]})
            for f in self.fields
            if any(docs[f])
        }
        self._title_terms = [set(self.analyzer.terms(t)) for t in docs["title"]]
        self.dense = dense

        category = items["category"].fillna("").astype(str) if "category" in items else None
        cat_names = category.tolist() if category is not None else [""] * n
        cat_codes, cat_uniques = pd.factorize(pd.Series(cat_names), sort=True)
        cat_codes = np.where(np.array(cat_names) == "", -1, cat_codes)
        self.categories = cat_codes.astype(np.int64)
        self.category_names = [str(c) for c in cat_uniques]
        tops = [_top_level(c) for c in cat_names]
        top_codes, _ = pd.factorize(pd.Series(tops), sort=True)
        self.tops = np.where(np.array(tops) == "", -1, top_codes).astype(np.int64)
        brand_names = items["brand"].fillna("").astype(str) if "brand" in items else None
        if brand_names is not None:
            b_codes, _ = pd.factorize(brand_names, sort=True)
            self.brands = np.where(brand_names.to_numpy() == "", -1, b_codes).astype(np.int64)
        else:
            self.brands = np.full(n, -1, dtype=np.int64)

        price = (
            pd.to_numeric(items["price"], errors="coerce").to_numpy(dtype=np.float64)
            if "price" in items
            else np.full(n, np.nan)
        )
        log_price = np.log(np.where(price > 0, price, np.nan))
        median = pd.Series(log_price).groupby(self.categories).transform("median").to_numpy()
        self.log_price = log_price
        self.rel_price = log_price - median

        self.profiles = UserProfiles(
            items["item_id"].astype(str).tolist(),
            self.categories,
            self.tops,
            self.brands,
            self.rel_price,
            history,
        )
        for name, override in (("popularity", popularity), ("purchases", purchases)):
            if override is not None:
                arr = np.asarray(override, dtype=np.float64)
                if arr.shape != (n,):
                    raise DataError(f"{name} has shape {arr.shape}, expected ({n},)")
                setattr(self.profiles, name, arr)
        pop = self.profiles.popularity
        best = pd.Series(pop).groupby(self.categories).transform("max").to_numpy()
        self.pop_in_category = np.divide(pop, best, out=np.zeros(n), where=best > 0)

        self.item_features: dict[str, np.ndarray] = {}
        for name, values in (item_features or {}).items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape != (n,):
                raise DataError(f"item feature {name!r} has shape {arr.shape}, expected ({n},)")
            self.item_features[name] = arr
        self._category_vectors: np.ndarray | None = None

    @property
    def names(self) -> list[str]:
        """Feature names, in column order."""
        return [
            "bm25",
            *(f"bm25_{f}" for f in self.field_indexes),
            "title_coverage",
            "dense_sim",
            "category_sim",
            "log_rank",
            "category_share_top10",
            "log_popularity",
            "log_purchases",
            "popularity_in_category",
            "log_price",
            "price_vs_category",
            *(f"item_{k}" for k in self.item_features),
            "user_log_events",
            "user_category_share",
            "user_top_share",
            "user_brand_share",
            "user_item_affinity",
            "user_price_gap",
        ]

    def _category_similarity(self, q: np.ndarray | None, cats: np.ndarray) -> np.ndarray:
        if q is None or self.dense is None or not self.category_names:
            return np.zeros(cats.size, dtype=np.float64)
        if self._category_vectors is None:
            self._category_vectors = self.dense.encoder.encode(self.category_names)
        sims = self._category_vectors @ q
        return np.where(cats >= 0, sims[np.maximum(cats, 0)], 0.0)

    def features(
        self,
        query: str,
        candidates: np.ndarray,
        user_id: str | None = None,
        query_vector: np.ndarray | None = None,
        history: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """One row per candidate (in the given order, taken as the first-stage ranking).

        The personal features come from `history` (the shopper's item rows and event
        weights) when given, else from the profile of `user_id` in the history events.
        """
        cand = np.asarray(candidates, dtype=np.int64).ravel()
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items):
            raise DataError(f"candidate ids must be in [0, {self.n_items}), got {cand}")
        cols: list[np.ndarray] = [self.bm25.score(query)[cand]]
        cols += [idx.score(query)[cand] for idx in self.field_indexes.values()]
        q_terms = set(self.analyzer.terms(query))
        cols.append(
            np.array(
                [len(q_terms & self._title_terms[i]) / max(len(q_terms), 1) for i in cand],
                dtype=np.float64,
            )
        )
        q_vec = query_vector
        if q_vec is None and self.dense is not None:
            q_vec = self.dense.encode_queries([query])[0]
        dense_sim = (
            self.dense.similarity(q_vec, cand)
            if self.dense is not None and q_vec is not None
            else np.zeros(cand.size)
        )
        cats = self.categories[cand]
        cols += [dense_sim, self._category_similarity(q_vec, cats)]
        cols.append(np.log1p(np.arange(cand.size, dtype=np.float64)))
        head = cats[:10]
        head = head[head >= 0]
        share = (cats[:, None] == head[None, :]).mean(axis=1) if head.size else np.zeros(cand.size)
        cols.append(np.where(cats >= 0, share, 0.0))
        prof = self.profiles
        cols += [
            np.log1p(prof.popularity[cand]),
            np.log1p(prof.purchases[cand]),
            self.pop_in_category[cand],
            np.nan_to_num(self.log_price[cand], nan=0.0),
            np.nan_to_num(self.rel_price[cand], nan=0.0),
        ]
        cols += [np.nan_to_num(v[cand], nan=0.0) for v in self.item_features.values()]
        if history is not None:
            cols += self._personal_from_rows(history[0], history[1], cand)
        else:
            cols += self._personal(prof.user(user_id), cand)
        return np.column_stack(cols).astype(np.float32)

    def _personal_from_rows(
        self, rows: np.ndarray, weights: np.ndarray, cand: np.ndarray
    ) -> list[np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64).ravel()
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.size != rows.size:
            raise DataError(f"{rows.size} history rows but {w.size} weights")
        ok = (rows >= 0) & (rows < self.n_items)
        rows, w = rows[ok], w[ok]
        if rows.size == 0 or w.sum() <= 0:
            return [np.zeros(cand.size)] * 6
        total = float(w.sum())

        def share(codes: np.ndarray) -> np.ndarray:
            mine = codes[rows]
            width = int(max(codes.max(initial=-1), 0)) + 1
            sums = np.bincount(mine[mine >= 0], weights=w[mine >= 0], minlength=width)
            c = codes[cand]
            return np.where(c >= 0, sums[np.maximum(c, 0)], 0.0) / total

        per_item = np.bincount(rows, weights=w, minlength=self.n_items)
        rp = self.rel_price[rows]
        has = ~np.isnan(rp)
        band = float(np.average(rp[has], weights=w[has])) if w[has].sum() > 0 else np.nan
        return [
            np.full(cand.size, np.log1p(rows.size)),
            share(self.categories),
            share(self.tops),
            share(self.brands),
            np.log1p(per_item[cand]),
            np.nan_to_num(np.abs(self.rel_price[cand] - band), nan=0.0),
        ]

    def _personal(self, u: int, cand: np.ndarray) -> list[np.ndarray]:
        prof = self.profiles
        zeros = np.zeros(cand.size)
        if u < 0:
            return [zeros] * 6
        total = prof.user_weight[u] or 1.0

        def share(m: sp.csr_matrix, codes: np.ndarray) -> np.ndarray:
            row = m.getrow(u).toarray().ravel()
            ok = (codes >= 0) & (codes < row.size)
            return np.where(ok, row[np.clip(codes, 0, max(row.size - 1, 0))], 0.0) / total

        item_row = prof.user_item.getrow(u)
        counts = np.asarray(item_row[:, cand].todense()).ravel() if cand.size else zeros
        gap = np.abs(self.rel_price[cand] - prof.user_price[u])
        return [
            np.full(cand.size, np.log1p(prof.user_events[u])),
            share(prof.user_category, self.categories[cand]),
            share(prof.user_top, self.tops[cand]),
            share(prof.user_brand, self.brands[cand]),
            np.log1p(counts),
            np.nan_to_num(gap, nan=0.0),
        ]
