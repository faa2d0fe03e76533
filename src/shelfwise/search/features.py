"""Candidate features for the learned re-ranker: lexical, semantic, item and personal.

For a query, a shopper (optional) and the candidate items a first stage retrieved,
`FeatureBuilder.features` returns one row per candidate:

* lexical: the BM25F score over all fields and a BM25 score per field (title, brand,
  category, description, attributes; `BM25Index.field_scores` of the one index the builder
  reads, the search service's at serving time); coordination: the share of query terms
  found in the title (`title_coverage`) and in any field (`coverage`); phrase and
  proximity: the share of the query's neighbouring term pairs that are neighbours, in
  order, in the title (`phrase_share`) or within `PROXIMITY_WINDOW` title words
  (`proximity_share`);
* semantic: the cosine of the query with the item's embedding and with its category name;
* first stage: the candidate's log rank, its first-stage score relative to the best
  candidate's (typo, prefix and synonym matches included, which the exact-term features
  miss), and the share of the first stage's top 10 that shares the candidate's category (a
  query-category match signal);
* query understanding (`search.understanding.Understood`, zeros without one): whether the
  candidate is of the brand the query names (`brand_match`), in the category it names
  (`category_match`), within its price bound (`price_match`), and where its price sits
  among the candidates' (`price_rank`, 0 cheapest .. 1 dearest; 0.5 unknown);
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

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.schemas import CATEGORY_SEPARATOR
from shelfwise.data.weights import weighted_types
from shelfwise.errors import DataError
from shelfwise.search.analysis import Analyzer
from shelfwise.search.bm25 import DEFAULT_FIELDS, BM25Config, BM25Index
from shelfwise.search.documents import SEARCH_FIELDS, attribute_dict, item_documents

if TYPE_CHECKING:  # faiss loads with a dense index, not with the features
    from shelfwise.search.semantic import DenseIndex

if TYPE_CHECKING:
    from shelfwise.search.understanding import Understood

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FIELDS",
    "EVENT_WEIGHTS",
    "PROXIMITY_WINDOW",
    "FeatureBuilder",
    "UserProfiles",
    "numeric_attributes",
]

EVENT_WEIGHTS: dict[str, float] = weighted_types()
"""How much one event of each type says about a shopper's taste (searches say nothing)."""

PROXIMITY_WINDOW = 4
"""Two query terms at most this many title words apart count as near (`proximity_share`)."""


def numeric_attributes(
    items: pd.DataFrame, keys: Sequence[str] | None = None, min_share: float = 0.5
) -> dict[str, np.ndarray]:
    """Numeric item attributes as features: `keys`, or every key with a number on at least
    `min_share` of the items. Counts (keys ending in `count`) are log1p-scaled; missing
    values are NaN (the builder turns them into 0)."""
    if "attributes" not in items:
        rows: list[dict[str, object]] = [{} for _ in range(len(items))]
    else:
        rows = [attribute_dict(a) for a in items["attributes"].tolist()]
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


def _relative(scores: np.ndarray | None, n: int) -> np.ndarray:
    """Scores divided by the largest absolute one (zeros when none are given)."""
    if scores is None:
        return np.zeros(n)
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64).ravel(), nan=0.0)
    if s.size != n:
        raise DataError(f"{s.size} first-stage scores for {n} candidates")
    top = float(np.abs(s).max()) if s.size else 0.0
    return s / top if top > 0 else np.zeros(n)


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


class _Codes:
    """Append-only integer codes of a text column (-1 for ""): a new value gets the next
    code, so updating a few rows never renumbers the others."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._code: dict[str, int] = {}

    def encode(self, values: Sequence[str]) -> np.ndarray:
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            if not v:
                out[i] = -1
                continue
            c = self._code.get(v)
            if c is None:
                c = self._code[v] = len(self.names)
                self.names.append(v)
            out[i] = c
        return out


def _texts(items: pd.DataFrame, name: str, rows: np.ndarray) -> list[str]:
    """Column `name` at positions `rows` as text ("" for missing); reads the column's
    array, not a row slice of the frame (a few rows of a wide frame cost a full take)."""
    if name not in items:
        return [""] * rows.size
    # the rows first: converting a whole (Arrow-backed) column costs the catalogue
    values = items[name].iloc[rows].to_numpy(dtype=object)
    return ["" if v is None or v != v else str(v) for v in values.tolist()]


class FeatureBuilder:
    """Feature rows for (query, shopper, candidates); see the module docstring.

    The lexical features read one `BM25Index` whose row `i` is row `i` of `items`: `index`
    (the search service's own index, so serving keeps no second copy) or, without one, an
    index built here over `item_documents(items)` with `fields`. `update(items, rows)`
    follows catalogue changes for just the changed rows (the index itself is the caller's
    to update).
    """

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
        index: BM25Index | None = None,
    ) -> None:
        """`popularity` / `purchases` (per item row) replace what `history` would give, for
        serving where the history events are not at hand."""
        if "item_id" not in items.columns:
            raise DataError("items need an item_id column")
        n = len(items)
        if index is not None:
            if index.n_docs != n:
                raise DataError(
                    f"the BM25 index has {index.n_docs} rows but items has {n}: pass the "
                    "frame the index was built from (row i = index row i)"
                )
            self.analyzer = index.analyzer
            self.fields = {f: index.config.fields[f] for f in index.fields}
            self.bm25 = index
        else:
            self.analyzer = analyzer or Analyzer()
            self.fields = dict(fields or DEFAULT_FIELDS)
            unknown = set(self.fields) - set(SEARCH_FIELDS)
            if unknown:
                raise DataError(
                    f"unknown search fields {sorted(unknown)}; use {sorted(SEARCH_FIELDS)}"
                )
            docs = {f: t for f, t in item_documents(items).items() if f in self.fields}
            self.bm25 = BM25Index(BM25Config(fields=self.fields), self.analyzer).index(docs)
        self.dense = dense
        #: Item rows analysed so far (construction and updates): the work `update` saves.
        self.rows_computed = 0
        self.n_items = 0
        self._category_codes, self._top_codes, self._brand_codes = _Codes(), _Codes(), _Codes()
        self.categories = np.zeros(0, dtype=np.int64)
        self.tops = np.zeros(0, dtype=np.int64)
        self.brands = np.zeros(0, dtype=np.int64)
        self.log_price = np.zeros(0, dtype=np.float64)
        self.rel_price = np.zeros(0, dtype=np.float64)
        self.pop_in_category = np.zeros(0, dtype=np.float64)
        self._title_terms: list[tuple[str, ...] | None] = []
        self._titles: pd.Series | None = None
        self.item_features: dict[str, np.ndarray] = {}
        for name, values in (item_features or {}).items():
            arr = np.asarray(values, dtype=np.float64)
            if arr.shape != (n,):
                raise DataError(f"item feature {name!r} has shape {arr.shape}, expected ({n},)")
            self.item_features[name] = arr
        self._category_vectors: np.ndarray | None = None
        self._set_rows(items, np.arange(n, dtype=np.int64))
        self._group_stats(None)

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
        self._popularity_stats(None)

    @property
    def category_names(self) -> list[str]:
        """Category name of each category code."""
        return self._category_codes.names

    def _set_rows(self, items: pd.DataFrame, rows: np.ndarray) -> None:
        """(Re)compute the per-item columns of `rows` from `items` (row = item row),
        growing every array to `len(items)`."""
        n = len(items)
        grow = n - self.n_items
        if grow > 0:
            self.categories = np.concatenate([self.categories, np.full(grow, -1, np.int64)])
            self.tops = np.concatenate([self.tops, np.full(grow, -1, np.int64)])
            self.brands = np.concatenate([self.brands, np.full(grow, -1, np.int64)])
            for name in ("log_price", "rel_price", "pop_in_category"):
                setattr(self, name, np.concatenate([getattr(self, name), np.zeros(grow)]))
            self._title_terms.extend([()] * grow)
            self.n_items = n
        if rows.size == 0:
            return
        cats = _texts(items, "category", rows)
        self.categories[rows] = self._category_codes.encode(cats)
        self.tops[rows] = self._top_codes.encode([_top_level(c) for c in cats])
        self.brands[rows] = self._brand_codes.encode(_texts(items, "brand", rows))
        price = (
            pd.to_numeric(items["price"].iloc[rows], errors="coerce").to_numpy(dtype=np.float64)
            if "price" in items
            else np.full(rows.size, np.nan)
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            self.log_price[rows] = np.log(np.where(price > 0, price, np.nan))
        self._titles = items.get("title")
        for row in rows.tolist():  # analysed when a query first reads them (`_title_of`)
            self._title_terms[row] = None
        self.rows_computed += int(rows.size)

    def _title_of(self, row: int) -> tuple[str, ...]:
        """The analysed title of a row, analysed on first use: a server starting on a
        bundle must not analyse every title before its first search."""
        terms = self._title_terms[row]
        if terms is None:
            title = self._titles.iloc[row] if self._titles is not None else None
            text = "" if title is None or title != title else str(title)  # as `_texts`
            terms = tuple(self.analyzer.terms(text))
            self._title_terms[row] = terms
        return terms

    def _groups(self, codes: np.ndarray | None) -> list[np.ndarray]:
        """Rows of each category group in `codes` (every group when None); items without a
        category form a group of their own, as in a pandas groupby on the codes."""
        if codes is None:
            codes = np.unique(self.categories)
        return [np.flatnonzero(self.categories == c) for c in np.unique(codes).tolist()]

    def _group_stats(self, codes: np.ndarray | None) -> None:
        """Price relative to the category median, for the rows of the groups in `codes`."""
        if codes is None:  # every group at once (construction)
            medians = pd.Series(self.log_price).groupby(self.categories).transform("median")
            self.rel_price = self.log_price - medians.to_numpy()
            return
        for rows in self._groups(codes):
            values = self.log_price[rows]
            known = values[~np.isnan(values)]
            # the median pandas takes (NaN skipped; NaN when nothing is known)
            median = float(np.median(known)) if known.size else np.nan
            self.rel_price[rows] = values - median

    def _popularity_stats(self, codes: np.ndarray | None) -> None:
        """Popularity relative to the category's best seller, for the groups in `codes`."""
        pop = self.profiles.popularity
        if codes is None:
            best = pd.Series(pop).groupby(self.categories).transform("max").to_numpy()
            self.pop_in_category = np.divide(pop, best, out=np.zeros(self.n_items), where=best > 0)
            return
        for rows in self._groups(codes):
            top = float(pop[rows].max()) if rows.size else 0.0
            self.pop_in_category[rows] = pop[rows] / top if top > 0 else 0.0

    def update(
        self,
        items: pd.DataFrame,
        rows: np.ndarray,
        popularity: np.ndarray | None = None,
        purchases: np.ndarray | None = None,
        item_features: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Follow a catalogue change: `items` is the whole current frame (row = item row,
        possibly longer than before), `rows` the rows that changed; rows past the old end
        count as changed. `popularity` / `purchases` / `item_features` hold the new values
        of `rows` (in that order; 0 / NaN when not given). Only those rows and the category
        groups they left or joined are recomputed. The shopper profiles read from the
        `history` events at construction stay as they were (serving passes each request's
        history to `features` instead)."""
        old_n = self.n_items
        if len(items) < old_n:
            raise DataError(
                f"items shrank from {old_n} to {len(items)} rows; rows are never removed"
            )
        rows = np.asarray(rows, dtype=np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= len(items)):
            raise DataError(f"rows must be in [0, {len(items)}), got {rows[:5].tolist()}")
        order = np.argsort(rows, kind="stable")
        uniq, first = np.unique(rows[order], return_index=True)
        given = order[first]  # where each unique row's values sit in the arguments
        extra = np.setdiff1d(np.arange(old_n, len(items)), uniq)
        todo = np.concatenate([uniq, extra])
        before = self.categories[uniq[uniq < old_n]].copy()
        self._set_rows(items, todo)
        prof = self.profiles
        n = self.n_items
        if prof.popularity.size < n:
            grow = n - prof.popularity.size
            prof.popularity = np.concatenate([prof.popularity, np.zeros(grow)])
            prof.purchases = np.concatenate([prof.purchases, np.zeros(grow)])
            prof.n_items = n
        for name, values in (("popularity", popularity), ("purchases", purchases)):
            target = getattr(prof, name)
            target[extra] = 0.0
            if values is not None:
                target[uniq] = np.asarray(values, dtype=np.float64)[given]
        for name, arr in self.item_features.items():
            if arr.size < n:
                arr = self.item_features[name] = np.concatenate(
                    [arr, np.full(n - arr.size, np.nan)]
                )
            arr[extra] = np.nan
            values = (item_features or {}).get(name)
            arr[uniq] = np.nan if values is None else np.asarray(values, np.float64)[given]
        touched = np.concatenate([before, self.categories[todo]])
        self._group_stats(touched)
        self._popularity_stats(touched)

    @property
    def names(self) -> list[str]:
        """Feature names, in column order."""
        return [
            "bm25",
            *(f"bm25_{f}" for f in self.bm25.fields),
            "title_coverage",
            "coverage",
            "phrase_share",
            "proximity_share",
            "dense_sim",
            "category_sim",
            "log_rank",
            "first_stage_score",
            "category_share_top10",
            "brand_match",
            "category_match",
            "price_match",
            "price_rank",
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
        names = self.category_names
        if self._category_vectors is None:
            self._category_vectors = self.dense.encoder.encode(names)
        elif len(self._category_vectors) < len(names):  # categories added by `update`
            added = self.dense.encoder.encode(names[len(self._category_vectors) :])
            self._category_vectors = np.vstack([self._category_vectors, added])
        sims = self._category_vectors @ q
        return np.where(cats >= 0, sims[np.maximum(cats, 0)], 0.0)

    def features(
        self,
        query: str,
        candidates: np.ndarray,
        user_id: str | None = None,
        query_vector: np.ndarray | None = None,
        history: tuple[np.ndarray, np.ndarray] | None = None,
        first_stage: np.ndarray | None = None,
        understood: Understood | None = None,
    ) -> np.ndarray:
        """One row per candidate (in the given order, taken as the first-stage ranking).

        The personal features come from `history` (the shopper's item rows and event
        weights) when given, else from the profile of `user_id` in the history events.
        `first_stage` holds the first stage's scores of the candidates (same order; zeros
        when not given) and `understood` what query understanding read in the query (the
        brand, category and price features are zeros without it).
        """
        cand = np.asarray(candidates, dtype=np.int64).ravel()
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items):
            raise DataError(f"candidate ids must be in [0, {self.n_items}), got {cand}")
        terms = self.bm25.query_terms(query)
        per_field = self.bm25.field_scores(terms, cand).astype(np.float64)
        cols: list[np.ndarray] = [self.bm25.score_terms(terms)[cand].astype(np.float64)]
        cols += [per_field[:, j] for j in range(per_field.shape[1])]
        cols += self._matching(query, terms, cand)
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
        cols.append(_relative(first_stage, cand.size))
        head = cats[:10]
        head = head[head >= 0]
        share = (cats[:, None] == head[None, :]).mean(axis=1) if head.size else np.zeros(cand.size)
        cols.append(np.where(cats >= 0, share, 0.0))
        cols += self._understood(understood, cand)
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

    def _matching(self, query: str, terms: Sequence[int], cand: np.ndarray) -> list[np.ndarray]:
        """title_coverage, coverage, phrase_share and proximity_share of the candidates."""
        q_list = self.analyzer.terms(query)
        q_terms = set(q_list)
        n_q = max(len(q_terms), 1)
        title_terms = [self._title_of(i) for i in cand.tolist()]
        title_cov = np.array([len(q_terms.intersection(t)) / n_q for t in title_terms])
        # a term "matches" a candidate when it has a posting there in any field
        known = list(dict.fromkeys(terms))
        hits = np.zeros(cand.size, dtype=np.float64)
        for t in known:
            rows, _ = self.bm25.postings(t)
            hits += np.isin(cand, rows)
        coverage = hits / n_q
        pairs = [(a, b) for a, b in itertools.pairwise(q_list) if a != b]
        phrase = np.zeros(cand.size)
        near = np.zeros(cand.size)
        if pairs:
            for n, title in enumerate(title_terms):
                if not title:
                    continue
                where: dict[str, list[int]] = {}
                for pos, term in enumerate(title):
                    where.setdefault(term, []).append(pos)
                adjacent = close = 0
                for a, b in pairs:
                    pa, pb = where.get(a), where.get(b)
                    if not pa or not pb:
                        continue
                    gaps = [q - p for p in pa for q in pb]
                    if 1 in gaps:
                        adjacent += 1
                        close += 1
                    elif any(0 < abs(g) <= PROXIMITY_WINDOW for g in gaps):
                        close += 1
                phrase[n] = adjacent / len(pairs)
                near[n] = close / len(pairs)
        return [title_cov, coverage, phrase, near]

    def _understood(self, understood: Understood | None, cand: np.ndarray) -> list[np.ndarray]:
        """brand_match, category_match, price_match and price_rank of the candidates."""
        zeros = np.zeros(cand.size)
        price = np.exp(self.log_price[cand])  # NaN where unknown
        known = ~np.isnan(price)
        rank = np.full(cand.size, 0.5)
        if known.sum() > 1:
            order = np.argsort(price[known], kind="stable")
            pct = np.empty(order.size)
            pct[order] = np.arange(order.size) / (order.size - 1)
            rank[known] = pct
        if understood is None:
            return [zeros, zeros, zeros, rank]
        brand = zeros
        if understood.brand:
            wanted = understood.brand.casefold().strip()
            names = self._brand_codes.names
            match = np.array([n.casefold().strip() == wanted for n in names] + [False])
            brand = match[self.brands[cand]].astype(np.float64)  # code -1 -> the False
        category = zeros
        if understood.category:
            paths = [p.casefold().strip() for p in understood.category]
            sep = CATEGORY_SEPARATOR.casefold()
            names = [n.casefold().strip() for n in self.category_names]
            match = np.array(
                [any(n == p or n.startswith(p + sep) for p in paths) for n in names] + [False]
            )
            category = match[self.categories[cand]].astype(np.float64)
        in_bound = zeros
        if understood.has_price:
            lo = -np.inf if understood.min_price is None else understood.min_price
            hi = np.inf if understood.max_price is None else understood.max_price
            with np.errstate(invalid="ignore"):
                in_bound = (known & (price >= lo) & (price <= hi)).astype(np.float64)
        return [brand, category, in_bound, rank]

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

        item_row = prof.user_item.getrow(u).toarray().ravel()
        # rows added by `update` after the history was read have no interactions
        inside = cand < item_row.size
        counts = np.where(inside, item_row[np.where(inside, cand, 0)], 0.0) if cand.size else zeros
        gap = np.abs(self.rel_price[cand] - prof.user_price[u])
        return [
            np.full(cand.size, np.log1p(prof.user_events[u])),
            share(prof.user_category, self.categories[cand]),
            share(prof.user_top, self.tops[cand]),
            share(prof.user_brand, self.brands[cand]),
            np.log1p(counts),
            np.nan_to_num(gap, nan=0.0),
        ]
