"""Multi-field BM25 (BM25F) over a sparse matrix of precomputed scores, updated incrementally.

As in bm25s, each (document, term) cell holds the term's full BM25 contribution, so a query
is a sum of a few sparse columns followed by a top-k. Per field f with boost w_f:

    tf~(d, t) = sum_f w_f * tf_f(d, t) / (1 - b + b * len_f(d) / avglen_f)
    score(d, t) = idf(t) * tf~ / (k1 + tf~)

with `idf = ln(1 + (N - df + 0.5) / (df + 0.5))` (Lucene, the default) or
`idf = max(0, ln((N - df + 0.5) / (df + 0.5)))` (Robertson, as bm25s `method="robertson"`).
With one field of boost 1 this is exactly BM25 (bm25s `method="lucene"`/`"robertson"`);
rank_bm25's `BM25Okapi(epsilon=0)` scores are the Robertson scores times `k1 + 1`.

**Incremental updates.** Rows are documents with stable numbers. The index is a *main*
segment (scores and raw per-field term counts computed at the last build or merge) plus a
small *delta* segment:

* `upsert(rows, docs)` marks the rows' main content stale (a tombstone) and indexes the
  new content into the delta; new rows are appended. `delete(rows)` tombstones them.
* The corpus statistics (N, document frequencies, average field lengths) are kept live; the
  delta is re-scored with them on every update (it is small), the main segment keeps the
  statistics of its last merge.
* When the delta outgrows `max(merge_min_rows, merge_ratio * rows)` (or on `merge()` and
  `save()`), the raw term counts of both segments are combined and every score recomputed,
  so a merged index equals a fresh build of the same documents exactly.

Queries read main postings without stale rows plus delta postings, so an update is
searchable as soon as `upsert` returns (milliseconds for a handful of items).

Saved as `.npz` + JSON, no pickle.
"""

from __future__ import annotations

import json
import threading
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator

from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.search.analysis import Analyzer
from shelfwise.search.topk import ImpactPostings, find_sorted, pruned_top_k
from shelfwise.types import Results, top_k

__all__ = ["DEFAULT_FIELDS", "BM25Config", "BM25Index", "Group"]

DEFAULT_FIELDS: dict[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category": 1.5,
    "description": 1.0,
    "attributes": 1.0,
}
Group = Sequence[Sequence[tuple[int, float]]]
"""One query position: alternatives, each a list of (term id, weight) that are summed;
a document gets the best alternative's score (so a typo variant never adds to the exact
term's score)."""

_FORMAT = 2


#: per thread, the catalogue-long scratch arrays `BM25Index.score_and_match_rows` reuses
#: (the counts are left clear after each query) and its last candidate rows
_SCRATCH = threading.local()


class BM25Config(BaseModel):
    """BM25F parameters, per-field boosts and the delta-merge policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k1: float = Field(default=1.2, ge=0.0, le=100.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    fields: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_FIELDS))
    idf: Literal["lucene", "robertson"] = "lucene"
    merge_min_rows: int = Field(default=2000, ge=1)
    merge_ratio: float = Field(default=0.05, gt=0.0, le=1.0)

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("at least one field is needed, e.g. {'title': 1.0}")
        for name, boost in v.items():
            if not (boost >= 0.0 and np.isfinite(boost)):
                raise ValueError(f"field boost for '{name}' must be finite and >= 0, got {boost}")
        if not any(boost > 0 for boost in v.values()):
            raise ValueError("at least one field needs a boost > 0")
        return v


def _idf(df: np.ndarray, n_docs: int, variant: str) -> np.ndarray:
    df = df.astype(np.float64)
    ratio = (n_docs - df + 0.5) / (df + 0.5)
    if variant == "robertson":
        return np.log(np.maximum(ratio, 1.0))
    return np.log1p(ratio)


def _empty(shape: tuple[int, int]) -> sp.csr_matrix:
    return sp.csr_matrix(shape, dtype=np.float32)


class BM25Index:
    """A BM25F index over documents given as field -> texts (see the module doc)."""

    def __init__(self, config: BM25Config | None = None, analyzer: Analyzer | None = None):
        self.config = config or BM25Config()
        self.analyzer = analyzer or Analyzer()
        self.vocab: dict[str, int] = {}
        self.terms_list: list[str] = []
        self.scores: sp.csc_matrix | None = None
        """Main-segment scores (rows x terms at the last merge)."""
        self.surface_term: dict[str, str] = {}
        """Surface token -> index term, for typo tolerance and prefix search over words."""
        self.surface_count: Counter[str] = Counter()
        self._fields = [f for f, w in self.config.fields.items() if w > 0]
        self._tf: dict[str, sp.csr_matrix] = {}
        self._lengths: dict[str, np.ndarray] = {}
        self._alive = np.zeros(0, dtype=bool)
        self._stale = np.zeros(0, dtype=bool)
        self._stale_any = False
        self._df = np.zeros(0, dtype=np.int64)
        self._delta: dict[int, dict[str, Counter[int]]] = {}
        self._delta_arr: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._delta_scores: sp.csc_matrix | None = None
        self._n_main = 0
        self._scores_t: sp.csr_matrix | None = None
        self._impacts: ImpactPostings | None = None
        #: field -> (the main-segment tf matrix it was made from, column pointers, rows):
        #: each field's rows per term, made on first use by `rows_with`
        self._field_rows: dict[str, tuple[sp.csr_matrix, np.ndarray, np.ndarray]] = {}
        #: the live documents' mean field lengths, kept until a document changes
        self._avg_memo: dict[str, float] | None = None

    # -- sizes ---------------------------------------------------------------------------

    @property
    def fields(self) -> list[str]:
        """The indexed fields (boost > 0), in config order."""
        return list(self._fields)

    @property
    def n_docs(self) -> int:
        """Number of rows (live and deleted)."""
        return int(self._alive.shape[0])

    @property
    def n_alive(self) -> int:
        """Number of live documents."""
        return int(self._alive.sum())

    @property
    def alive(self) -> np.ndarray:
        """Boolean mask of live rows (a copy)."""
        return self._alive.copy()

    @property
    def n_terms(self) -> int:
        """Vocabulary size."""
        return len(self.terms_list)

    @property
    def delta_rows(self) -> int:
        """Rows waiting in the delta segment."""
        return len(self._delta)

    def _check(self) -> sp.csc_matrix:
        if self.scores is None:
            raise NotFittedError("BM25Index.index() or load() must be called first")
        return self.scores

    # -- building ------------------------------------------------------------------------

    def _term_id(self, term: str) -> int:
        tid = self.vocab.get(term)
        if tid is None:
            tid = len(self.terms_list)
            self.vocab[term] = tid
            self.terms_list.append(term)
        return tid

    def _analyse(self, text: str) -> list[str]:
        out = []
        for surface, term in self.analyzer.pairs(text):
            if surface not in self.surface_term:
                self.surface_term[surface] = term
            self.surface_count[surface] += 1
            out.append(term)
        return out

    def index(self, docs: Mapping[str, Sequence[str | None]]) -> BM25Index:
        """Index documents given column-wise: `{"title": [...], "brand": [...], ...}`.

        Fields missing from `docs` count as empty; texts may be None.
        """
        n_docs = self._n_rows_of(docs)
        terms: dict[str, list[list[str]]] = {
            f: [self._analyse(t or "") for t in docs[f]] if f in docs else [[]] * n_docs
            for f in self._fields
        }
        return self.index_terms(terms)

    def index_terms(self, terms: Mapping[str, Sequence[Sequence[str]]]) -> BM25Index:
        """Index pre-analysed documents: `{field: [[term, ...] per document]}`."""
        n_docs = self._n_rows_of(terms)
        self.vocab, self.terms_list = {}, []
        tf: dict[str, sp.csr_matrix] = {}
        for f in self._fields:
            docs = terms.get(f)
            indptr = np.zeros(n_docs + 1, dtype=np.int64)
            cols = array("i")  # 4 bytes a token: the build's peak memory is this list
            if docs is not None:
                vocab, tid = self.vocab, self._term_id
                for d, doc in enumerate(docs):
                    cols.extend([vocab[t] if t in vocab else tid(t) for t in doc])
                    indptr[d + 1] = len(cols)
            cols_arr = np.frombuffer(cols, dtype=np.int32) if len(cols) else np.empty(0, np.int32)
            m = sp.csr_matrix(
                (np.ones(cols_arr.size, np.float32), cols_arr, indptr),
                shape=(n_docs, max(self.n_terms, 1)),
            )
            m.sum_duplicates()
            tf[f] = m
            del cols, cols_arr
        n_terms = max(self.n_terms, 1)
        for m in tf.values():
            m.resize((n_docs, n_terms))
        self._tf = tf
        self._lengths = {f: np.asarray(m.sum(axis=1), np.float64).ravel() for f, m in tf.items()}
        self._alive = np.ones(n_docs, dtype=bool)
        self._avg_memo = None
        self._delta = {}
        self._delta_arr = {}
        self._delta_arr = {}
        self._recompute()
        return self

    def _n_rows_of(self, docs: Mapping[str, Sequence[object]]) -> int:
        unknown = set(docs) - set(self.config.fields)
        if unknown:
            raise DataError(
                f"fields {sorted(unknown)} are not in the BM25 config; configured fields: "
                f"{', '.join(self.config.fields)}"
            )
        lengths = {len(v) for v in docs.values()}
        if len(lengths) > 1:
            raise DataError(f"every field needs one text per document, got lengths {lengths}")
        if not lengths:
            raise DataError("no fields given: pass e.g. {'title': [...]} ")
        return lengths.pop()

    def _normalised(
        self, tf: sp.csr_matrix, lengths: np.ndarray, avg: float, boost: float
    ) -> sp.csr_matrix:
        b = self.config.b
        row_factor = boost / (1.0 - b + b * lengths / (avg if avg > 0 else 1.0))
        out = tf.copy()
        out.data = out.data * np.repeat(row_factor, np.diff(out.indptr)).astype(np.float32)
        return out

    def _avg_lengths(self) -> dict[str, float]:
        """Mean length of each field over the live documents (kept until `_forget`,
        `upsert`, a build or a load changes a length or a document's liveness)."""
        if self._avg_memo is None:
            n = max(self.n_alive, 1)
            self._avg_memo = {
                f: float(self._lengths[f][self._alive].sum()) / n for f in self._fields
            }
        return dict(self._avg_memo)

    def _to_scores(self, tf_tilde: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
        data = tf_tilde.data.astype(np.float64)
        tf_tilde.data = (idf[tf_tilde.indices] * data / (self.config.k1 + data)).astype(np.float32)
        if self.config.idf == "robertson":
            tf_tilde.eliminate_zeros()
        return tf_tilde

    def _recompute(self) -> None:
        """Main segment <- every live document, scored with fresh corpus statistics."""
        n_docs, n_terms = self.n_docs, max(self.n_terms, 1)
        all_alive = bool(self._alive.all())
        keep = sp.diags(self._alive.astype(np.float32))
        avg = self._avg_lengths()
        tf_tilde: sp.csr_matrix | None = None
        presence: sp.csr_matrix | None = None
        for f in self._fields:
            m = self._tf[f]
            if m.shape != (n_docs, n_terms):
                m.resize((n_docs, n_terms))
            presence = m if presence is None else sp.csr_matrix(presence + m)
            part = self._normalised(m, self._lengths[f], avg[f], self.config.fields[f])
            tf_tilde = part if tf_tilde is None else sp.csr_matrix(tf_tilde + part)
        assert presence is not None and tf_tilde is not None
        if not all_alive:
            presence = sp.csr_matrix(keep @ presence)
            tf_tilde = sp.csr_matrix(keep @ tf_tilde)
        present = presence.indices[presence.data > 0]
        self._df = np.bincount(present, minlength=n_terms).astype(np.int64)
        del presence
        idf = _idf(self._df, self.n_alive, self.config.idf)
        tf_tilde.eliminate_zeros()
        self.scores = self._to_scores(tf_tilde, idf).tocsc()
        self._n_main = n_docs
        self._stale = np.zeros(n_docs, dtype=bool)
        self._stale_any = False
        self._delta_scores = None
        self._scores_t = None
        self._impacts = None

    # -- incremental updates -------------------------------------------------------------

    def _current(self, row: int) -> dict[str, Counter[int]]:
        """The live content of a row as field -> Counter(term id -> count)."""
        if row in self._delta:
            return self._delta[row]
        if row >= self._n_main or self._stale[row] or not self._alive[row]:
            return {}
        out: dict[str, Counter[int]] = {}
        for f in self._fields:
            m = self._tf[f]
            lo, hi = m.indptr[row], m.indptr[row + 1]
            pairs = zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist(), strict=True)
            out[f] = Counter(dict(pairs))
        return out

    def _forget(self, row: int) -> None:
        """Take a live row out of the live statistics and tombstone its main content."""
        if row >= self.n_docs or not self._alive[row]:
            return
        content = self._current(row)
        present = set().union(*(c.keys() for c in content.values())) if content else set()
        if present:
            self._df[np.fromiter(present, np.int64)] -= 1
        self._avg_memo = None
        for f in self._fields:
            self._lengths[f][row] = 0.0
        self._alive[row] = False
        self._delta.pop(row, None)
        self._delta_arr.pop(row, None)
        if row < self._n_main:
            self._stale[row] = True
            self._stale_any = True

    def upsert(
        self, rows: Sequence[int] | np.ndarray, docs: Mapping[str, Sequence[str | None]]
    ) -> BM25Index:
        """Add or replace documents at `rows` (new rows must continue `n_docs` in order).

        Returns self. The documents are searchable when this returns.
        """
        self._check()
        n_new = self._n_rows_of(docs)
        rows_arr = np.asarray(rows, dtype=np.int64).ravel()
        if rows_arr.size != n_new:
            raise DataError(f"{rows_arr.size} rows given for {n_new} documents")
        if np.unique(rows_arr).size != rows_arr.size:
            raise DataError("rows must not repeat within one upsert")
        appended = np.sort(rows_arr[rows_arr >= self.n_docs])
        if appended.size and not np.array_equal(
            appended, np.arange(self.n_docs, self.n_docs + appended.size)
        ):
            raise DataError(
                f"new rows must continue the index: expected {self.n_docs}.., got "
                f"{appended[:5].tolist()}"
            )
        if np.any(rows_arr < 0):
            raise DataError("rows must be >= 0")
        # analyse first, so that nothing is half applied if analysis fails
        analysed = [
            {f: self._analyse(docs[f][i] or "") if f in docs else [] for f in self._fields}
            for i in range(n_new)
        ]
        grow = appended.size
        if grow:
            self._alive = np.concatenate([self._alive, np.zeros(grow, bool)])
            for f in self._fields:
                self._lengths[f] = np.concatenate([self._lengths[f], np.zeros(grow)])
        for row, doc in zip(rows_arr.tolist(), analysed, strict=True):
            self._forget(row)
            content = {f: Counter(self._term_id(t) for t in terms) for f, terms in doc.items()}
            if self._df.size < self.n_terms:
                self._df = np.concatenate(
                    [self._df, np.zeros(self.n_terms - self._df.size, np.int64)]
                )
            present = set().union(*(c.keys() for c in content.values()))
            if present:
                self._df[np.fromiter(present, np.int64)] += 1
            for f, c in content.items():
                self._lengths[f][row] = float(sum(c.values()))
            self._alive[row] = True
            self._delta[row] = content
            self._delta_arr[row] = self._content_arrays(content)
        self._avg_memo = None
        self._after_update()
        return self

    def _content_arrays(
        self, content: dict[str, Counter[int]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(term ids, field indices, counts) of one document's content."""
        cols: list[int] = []
        fidx: list[int] = []
        cnt: list[float] = []
        for i, f in enumerate(self._fields):
            c = content.get(f)
            if c:
                cols.extend(c.keys())
                cnt.extend(c.values())
                fidx.extend([i] * len(c))
        return (
            np.asarray(cols, np.int64),
            np.asarray(fidx, np.int64),
            np.asarray(cnt, np.float64),
        )

    def delete(self, rows: Sequence[int] | np.ndarray) -> BM25Index:
        """Remove documents; their rows stay (dead) so that other rows keep their numbers."""
        self._check()
        rows_arr = np.asarray(rows, dtype=np.int64).ravel()
        bad = rows_arr[(rows_arr < 0) | (rows_arr >= self.n_docs)]
        if bad.size:
            raise DataError(f"rows {bad[:5].tolist()} are not in the index (0..{self.n_docs - 1})")
        for row in rows_arr.tolist():
            self._forget(row)
        self._after_update()
        return self

    def _after_update(self) -> None:
        limit = max(self.config.merge_min_rows, self.config.merge_ratio * self.n_docs)
        if len(self._delta) > limit:
            self.merge()
        else:
            self._rescore_delta()

    def _rescore_delta(self) -> None:
        """Score every delta row with the live statistics (vectorised over its entries)."""
        n_docs, n_terms = self.n_docs, max(self.n_terms, 1)
        if not self._delta:
            self._delta_scores = None
            return
        rows_list = list(self._delta_arr)
        parts = [self._delta_arr[r] for r in rows_list]
        cols = np.concatenate([p[0] for p in parts])
        fidx = np.concatenate([p[1] for p in parts])
        cnt = np.concatenate([p[2] for p in parts])
        rows = np.repeat(np.asarray(rows_list, np.int64), [p[0].size for p in parts])
        avg_map = self._avg_lengths()
        avg = np.array([avg_map[f] if avg_map[f] > 0 else 1.0 for f in self._fields])
        boosts = np.array([self.config.fields[f] for f in self._fields])
        lens = np.empty(rows.size, dtype=np.float64)
        for i, f in enumerate(self._fields):
            sel = fidx == i
            lens[sel] = self._lengths[f][rows[sel]]
        b, k1 = self.config.b, self.config.k1
        weight = cnt * boosts[fidx] / (1.0 - b + b * lens / avg[fidx])
        m = sp.csr_matrix(sp.coo_matrix((weight, (rows, cols)), shape=(n_docs, n_terms)))
        m.sum_duplicates()
        idf = _idf(self._df, self.n_alive, self.config.idf)
        x = m.data
        m.data = (idf[m.indices] * x / (k1 + x)).astype(np.float32)
        m = m.astype(np.float32)
        m.eliminate_zeros()
        self._delta_scores = m.tocsc()

    def merge(self) -> BM25Index:
        """Fold the delta into the main segment and recompute every score."""
        self._check()
        if (
            not self._delta
            and not self._stale_any
            and self._n_main == self.n_docs
            and self.scores is not None
            and self.scores.shape[1] == max(self.n_terms, 1)
        ):
            return self
        n_docs, n_terms = self.n_docs, max(self.n_terms, 1)
        keep = np.ones(n_docs, dtype=np.float32)
        keep[: self._n_main][self._stale[: self._n_main]] = 0.0
        keep[self._n_main :] = 0.0
        delta_rows = sorted(self._delta)
        for f in self._fields:
            main = self._tf[f]
            main.resize((n_docs, n_terms))
            main = sp.csr_matrix(sp.diags(keep) @ main)
            r: list[int] = []
            c: list[int] = []
            v: list[float] = []
            for row in delta_rows:
                counts = self._delta[row].get(f, Counter())
                r.extend([row] * len(counts))
                c.extend(counts.keys())
                v.extend(counts.values())
            delta = sp.csr_matrix(
                (np.asarray(v, np.float32), (np.asarray(r, np.int64), np.asarray(c, np.int64))),
                shape=(n_docs, n_terms),
            )
            merged = sp.csr_matrix(main + delta)
            merged.eliminate_zeros()
            self._tf[f] = merged
        self._delta = {}
        self._delta_arr = {}
        self._recompute()
        return self

    # -- querying ------------------------------------------------------------------------

    def query_terms(self, query: str) -> list[int]:
        """Column ids of the query's terms that the index knows (repeats kept)."""
        return [self.vocab[t] for t in self.analyzer.terms(query) if t in self.vocab]

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of one term over live documents (rows unique)."""
        s = self._check()
        rows: np.ndarray = np.empty(0, np.int32)
        vals: np.ndarray = np.empty(0, np.float32)
        if term < s.shape[1]:
            lo, hi = s.indptr[term], s.indptr[term + 1]
            rows, vals = s.indices[lo:hi], s.data[lo:hi]
            if self._stale_any:
                keep = ~self._stale[rows]
                rows, vals = rows[keep], vals[keep]
        d = self._delta_scores
        if d is not None and term < d.shape[1]:
            lo, hi = d.indptr[term], d.indptr[term + 1]
            if hi > lo:
                rows = np.concatenate([rows, d.indices[lo:hi]])
                vals = np.concatenate([vals, d.data[lo:hi]])
        return rows, vals

    def score_terms(self, terms: Iterable[int], out: np.ndarray | None = None) -> np.ndarray:
        """Sum of the terms' BM25 scores for every row (dense float32, length n_docs)."""
        self._check()
        if out is None:
            out = np.zeros(self.n_docs, dtype=np.float32)
        for t in terms:
            rows, vals = self.postings(t)
            out[rows] += vals
        return out

    def score_groups(self, groups: Sequence[Group]) -> np.ndarray:
        """Score of every row for a parsed query (see `Group`): sum over groups of the best
        alternative, each alternative a weighted sum of terms."""
        return self.score_and_match(groups, masks=False)[0]

    def score_and_match(
        self, groups: Sequence[Group], masks: bool = True
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """`score_groups` plus, per group, the boolean mask of rows it matched (a
        multi-term alternative matches a row only where all of its terms occur)."""
        self._check()
        n = self.n_docs
        out = np.zeros(n, dtype=np.float32)
        matched: list[np.ndarray] = []
        for group in groups:
            hit = np.zeros(n, dtype=bool) if masks else None
            if len(group) == 1:
                for t, w in group[0]:
                    rows, vals = self.postings(t)
                    out[rows] += vals if w == 1.0 else vals * np.float32(w)
                    if hit is not None:
                        hit[rows] = True
            else:
                best = np.zeros(n, dtype=np.float32)
                for alt in group:
                    if len(alt) == 1:
                        t, w = alt[0]
                        rows, vals = self.postings(t)
                        best[rows] = np.maximum(best[rows], vals * np.float32(w))
                        if hit is not None:
                            hit[rows] = True
                    else:
                        acc = np.zeros(n, dtype=np.float32)
                        have = np.zeros(n, dtype=np.int32) if hit is not None else None
                        for t, w in alt:
                            rows, vals = self.postings(t)
                            acc[rows] += vals * np.float32(w)
                            if have is not None:
                                have[rows] += 1
                        np.maximum(best, acc, out=best)
                        if hit is not None and have is not None:
                            # a phrase alternative matches where all its terms are
                            hit |= have >= len({t for t, _ in alt})
                out += best
            if hit is not None:
                matched.append(hit)
        return out, matched

    def score_and_match_rows(
        self, groups: Sequence[Group], min_match: int = 1
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """`score_and_match` over only the rows that match at least `min_match` (>= 1) of
        the groups: (rows, sorted, their scores, per group the boolean mask over those
        rows). For those rows the same scores, bit for bit, and the same matches as the
        dense path (the same float32 operations in the same order: a term absent from a row
        adds 0 and a maximum with 0 keeps the best), with arrays as long as the matches
        rather than the catalogue. A row that only holds part of a phrase alternative (the
        "beauti" of "beauti blender", in every product's category) matches no group, so it
        is not a candidate and its posting is only looked up at the candidates."""
        self._check()
        post: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
        for group in groups:
            for alt in group:
                for t, _ in alt:
                    if t not in post:
                        post[t] = self._sorted_postings(t)
        if not post:
            return (
                np.zeros(0, np.int64),
                np.zeros(0, np.float32),
                [np.zeros(0, bool) for _ in groups],
            )
        n = self.n_docs
        scratch = _scratch(n)
        count, seen = scratch.count, scratch.seen
        need = max(int(min_match), 1)
        try:  # each row's number of matched groups, by passes over the groups' hit rows
            for group in groups:
                hits = self._group_hits(group, post)
                if len(hits) == 1:  # one row set: each row once
                    count[hits[0]] += 1
                    continue
                scratch.stamp += 1
                token = scratch.stamp
                for hit in hits:
                    new = hit[seen[hit] != token]
                    seen[new] = token
                    count[new] += 1
            cand = np.flatnonzero(count[:n] >= need)
        finally:
            count[:n] = 0  # the scratch counts are clear again for the next query
        scratch.place(cand, self)
        m = cand.size
        at = scratch.values = {t: scratch.values_at(p) for t, p in post.items()}
        out = np.zeros(m, dtype=np.float32)
        matched: list[np.ndarray] = []
        for group in groups:
            hit = np.zeros(m, dtype=bool)
            if len(group) == 1:
                for t, w in group[0]:
                    vals, present = at[t]
                    out += vals if w == 1.0 else vals * np.float32(w)
                    hit |= present
            else:
                best = np.zeros(m, dtype=np.float32)
                for alt in group:
                    if len(alt) == 1:
                        t, w = alt[0]
                        vals, present = at[t]
                        np.maximum(best, vals * np.float32(w), out=best)
                        hit |= present
                    else:
                        acc = np.zeros(m, dtype=np.float32)
                        have = np.zeros(m, dtype=np.int32)
                        for t, w in alt:
                            vals, present = at[t]
                            acc += vals * np.float32(w)
                            have += present
                        np.maximum(best, acc, out=best)
                        hit |= have >= len({t for t, _ in alt})
                out += best
            matched.append(hit)
        return cand, out, matched

    def candidate_values(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """(score, present) of `term` at each candidate row of this thread's last
        `score_and_match_rows` on this index (score 0 where the term is absent)."""
        scratch = getattr(_SCRATCH, "scratch", None)
        if scratch is None or scratch.index is not self:
            raise RuntimeError("candidate_values needs a score_and_match_rows on this index")
        if term in scratch.values:  # a query term: looked up by the query already
            return scratch.values[term]
        return scratch.values_at(self._sorted_postings(term))

    def _sorted_postings(self, term: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """`postings(term)` and whether its rows are in increasing order (the main
        segment's are; rows appended from the delta segment may not be)."""
        rows, vals = self.postings(term)
        s = self.scores
        d = self._delta_scores
        in_delta = d is not None and term < d.shape[1] and d.indptr[term + 1] > d.indptr[term]
        ordered = s is not None and bool(s.has_sorted_indices) and not in_delta
        return rows, vals, ordered

    def _group_hits(
        self, group: Group, post: dict[int, tuple[np.ndarray, np.ndarray, bool]]
    ) -> list[np.ndarray]:
        """The row sets whose union a group matches (as `score_and_match` decides: one
        alternative: any of its terms; several: a one-term alternative's rows, or the rows
        holding every term of a phrase alternative)."""
        if len(group) == 1:
            return [post[t][0] for t, _ in group[0]]
        out: list[np.ndarray] = []
        for alt in group:
            terms = list(dict.fromkeys(t for t, _ in alt))
            if len(terms) == 1:
                out.append(post[terms[0]][0])
                continue
            terms.sort(key=lambda t: post[t][0].size)
            rows = post[terms[0]][0]
            for t in terms[1:]:
                other, _, ordered = post[t]
                if ordered:
                    rows = rows[find_sorted(other, rows)[1]]
                else:
                    rows = np.intersect1d(rows, other, assume_unique=True)
            out.append(rows)
        return out

    def score(self, query: str) -> np.ndarray:
        """BM25 score of every row for `query` (dense, float32)."""
        return self.score_terms(self.query_terms(query))

    def impacts(self) -> ImpactPostings:
        """The main segment's postings sorted by score (built on first use after each
        merge; about 8 bytes a posting)."""
        s = self._check()
        if self._impacts is None:
            self._impacts = ImpactPostings(s)
        return self._impacts

    def top_k(
        self,
        groups: Sequence[Group],
        k: int = 10,
        mask: np.ndarray | None = None,
        min_match: int = 1,
        exhaustive: bool = False,
    ) -> Results:
        """The k best rows for a parsed query (see `Group`), best first, ties by row: rows
        with a positive score that match at least `min_match` (>= 1) groups (and `mask`).

        The default reads impact-ordered postings and stops as soon as no unread row can
        enter the top k (`search.topk`); `exhaustive=True` scores every match first
        (`score_and_match`). Both give the same rows and scores.
        """
        self._check()
        if exhaustive:
            # a partly matched phrase alternative scores without matching its group
            counted = min_match > 1 or any(len(alt) > 1 for g in groups for alt in g)
            scores, masks = self.score_and_match(groups, masks=counted)
            ok = scores > 0
            if masks:
                ok &= np.sum(masks, axis=0) >= max(min_match, 1)
            if mask is not None:
                ok &= mask
            cand = np.flatnonzero(ok)
            return _sparse_top_k(cand, scores[cand], k)
        return pruned_top_k(self, groups, k, mask, min_match)

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        """The k best live documents with a positive score (among `mask` when given),
        by pruned top-k (`top_k`)."""
        groups: list[Group] = [[[(t, 1.0)]] for t in self.query_terms(query)]
        return self.top_k(groups, k, mask)

    def retrieve_many(self, queries: Sequence[Sequence[int]], k: int = 10) -> list[Results]:
        """Top-k for many queries given as term-id lists, as one sparse matrix product.

        Q (queries x terms, repeated terms counted) @ scores.T gives every query's scores
        at once in C; each row's top-k is then an argpartition over its few non-zeros.
        """
        s = self._check()
        if self._delta or self._stale_any:
            return [_positive_top_k(self.score_terms(q), k) for q in queries]
        out: list[Results] = []
        n_terms = s.shape[1]
        if self._scores_t is None:
            self._scores_t = sp.csr_matrix(s.T)
        st = self._scores_t
        for start in range(0, len(queries), 512):
            chunk = queries[start : start + 512]
            indptr = np.zeros(len(chunk) + 1, np.int64)
            cols = np.fromiter((t for q in chunk for t in q), np.int64)
            indptr[1:] = np.cumsum([len(q) for q in chunk])
            if cols.size and cols.max() >= n_terms:
                raise DataError(f"term id {int(cols.max())} is not in the index")
            q = sp.csr_matrix(
                (np.ones(cols.size, np.float32), cols, indptr), shape=(len(chunk), n_terms)
            )
            res = sp.csr_matrix(q @ st)
            for i in range(len(chunk)):
                lo, hi = res.indptr[i], res.indptr[i + 1]
                out.append(_sparse_top_k(res.indices[lo:hi], res.data[lo:hi], k))
        return out

    def rows_with(self, field: str, term: int) -> np.ndarray:
        """Live rows whose `field` holds `term` (sorted, unique; empty for a field the index
        does not score or a term it does not know). The main segment's answer is a slice of
        the field's term -> rows table, made on first use after each merge (4 bytes a
        posting); rows upserted since the merge are read from the delta segment."""
        self._check()
        empty = np.zeros(0, dtype=np.int64)
        if field not in self._fields or not 0 <= term < self.n_terms:
            return empty
        m = self._tf[field]
        cached = getattr(self, "_field_rows", {}).get(field)
        if cached is None or cached[0] is not m:
            csc = sp.csc_matrix(m)
            csc.eliminate_zeros()
            csc.sort_indices()
            cached = (m, csc.indptr.astype(np.int64), csc.indices.astype(np.int32))
            self._field_rows = {**getattr(self, "_field_rows", {}), field: cached}
        _, indptr, indices = cached
        rows = empty
        if term < indptr.size - 1:
            rows = indices[indptr[term] : indptr[term + 1]].astype(np.int64)
            keep = self._alive[rows]
            if self._stale_any:
                keep &= ~self._stale[rows]
            rows = rows[keep]
        if self._delta:
            extra = [r for r, doc in self._delta.items() if field in doc and doc[field][term] > 0]
            if extra:
                rows = np.union1d(rows, np.asarray(extra, dtype=np.int64))
        return rows

    def field_scores(self, terms: Sequence[int], rows: np.ndarray) -> np.ndarray:
        """Per-field BM25 of `rows` for query `terms`: (len(rows), len(fields)) float32.

        Each field is scored alone (boost 1) with the live statistics; a feature for
        learning to rank.
        """
        self._check()
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((rows.size, len(self._fields)), dtype=np.float32)
        terms = [t for t in terms if 0 <= t < self.n_terms]
        if not terms or rows.size == 0:
            return out
        idf = _idf(self._df[terms], max(self.n_alive, 1), self.config.idf)
        avg = self._avg_lengths()
        k1, b = self.config.k1, self.config.b
        main_ok = (rows < self._n_main) & self._alive[rows]
        if self._stale_any:
            main_ok &= ~self._stale[np.minimum(rows, max(self._n_main - 1, 0))]
        main_at = np.flatnonzero(main_ok)
        main_rows = rows[main_at]
        uterms, inverse = np.unique(np.asarray(terms, dtype=np.int64), return_inverse=True)
        for j, f in enumerate(self._fields):
            tf = np.zeros((rows.size, len(terms)), dtype=np.float64)
            if main_rows.size:
                # the rows' stored (term, count) entries, read straight from the CSR arrays
                m = self._tf[f]
                lo, hi = m.indptr[main_rows], m.indptr[main_rows + 1]
                sizes = (hi - lo).astype(np.int64)
                owner = np.repeat(np.arange(main_rows.size), sizes)
                flat = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
                flat += np.repeat(lo.astype(np.int64), sizes)
                cols = m.indices[flat].astype(np.int64)
                pos, hit = find_sorted(uterms, cols)
                block = np.zeros((main_rows.size, uterms.size), dtype=np.float64)
                np.add.at(block, (owner[hit], pos[hit]), m.data[flat[hit]])
                tf[main_at] = block[:, inverse]
            if self._delta:
                for i, row in enumerate(rows.tolist()):
                    if row in self._delta:
                        counts = self._delta[row].get(f, Counter())
                        tf[i] = [counts.get(t, 0) for t in terms]
            a = avg[f] if avg[f] > 0 else 1.0
            norm = k1 * (1.0 - b + b * self._lengths[f][rows] / a)
            out[:, j] = (idf[None, :] * tf / (norm[:, None] + tf + 1e-12)).sum(axis=1)
        return out

    # -- persistence ---------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Merge pending updates, then write `scores.npz`, `tf_<field>.npz`, `arrays.npz`
        and `bm25.json` into `directory`."""
        self._check()
        self.merge()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        assert self.scores is not None
        sp.save_npz(directory / "scores.npz", self.scores, compressed=False)
        for i, f in enumerate(self._fields):
            sp.save_npz(directory / f"tf_{i}.npz", self._tf[f], compressed=False)
        arrays = {f"len_{i}": self._lengths[f] for i, f in enumerate(self._fields)}
        arrays["alive"] = self._alive
        np.savez(directory / "arrays.npz", **arrays)  # type: ignore[arg-type]
        meta = {
            "format": _FORMAT,
            "config": self.config.model_dump(),
            "analyzer": self.analyzer.to_dict(),
            "fields": self._fields,
            "terms": self.terms_list,
            "surface": [
                [s, self.surface_term[s], int(self.surface_count[s])] for s in self.surface_term
            ],
        }
        (directory / "bm25.json").write_text(json.dumps(meta, ensure_ascii=False))

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Read an index written by `save`."""
        directory = Path(directory)
        meta_path = directory / "bm25.json"
        if not meta_path.exists():
            raise NotFittedError(f"no BM25 index in {directory} (bm25.json is missing)")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != _FORMAT:
            raise ConfigError(
                f"{meta_path} has format {meta.get('format')}, expected {_FORMAT}: rebuild it"
            )
        index = cls(BM25Config(**meta["config"]), Analyzer.from_dict(meta["analyzer"]))
        index.terms_list = [str(t) for t in meta["terms"]]
        index.vocab = {t: i for i, t in enumerate(index.terms_list)}
        for surface, term, count in meta["surface"]:
            index.surface_term[surface] = term
            index.surface_count[surface] = int(count)
        index.scores = sp.csc_matrix(sp.load_npz(directory / "scores.npz"))
        arrays = np.load(directory / "arrays.npz", allow_pickle=False)
        index._alive = arrays["alive"].astype(bool)
        for i, f in enumerate(index._fields):
            index._tf[f] = sp.csr_matrix(sp.load_npz(directory / f"tf_{i}.npz"))
            index._lengths[f] = arrays[f"len_{i}"].astype(np.float64)
        index._n_main = int(index._alive.shape[0])
        index._avg_memo = None
        index._stale = np.zeros(index._n_main, dtype=bool)
        presence = _empty((index._n_main, max(index.n_terms, 1)))
        for f in index._fields:
            presence = presence + index._tf[f]
        presence = sp.csr_matrix(presence)
        index._df = np.bincount(presence.indices, minlength=max(index.n_terms, 1)).astype(np.int64)
        return index


def _positive_top_k(scores: np.ndarray, k: int) -> Results:
    """Top-k among the positive entries of a dense score vector (ties by row)."""
    cand = np.flatnonzero(scores > 0)
    return _sparse_top_k(cand, scores[cand], k)


def _sparse_top_k(rows: np.ndarray, vals: np.ndarray, k: int) -> Results:
    """Top-k of (row, score) pairs with positive scores, best first, ties by row."""
    keep = vals > 0
    if not keep.all():
        rows, vals = rows[keep], vals[keep]
    if rows.size > k:
        res = top_k(vals, k)
        return Results(rows[res.ids].astype(np.int64), res.scores)
    order = np.lexsort((rows, -vals))
    return Results(rows[order].astype(np.int64), vals[order].astype(np.float32))


class _Scratch:
    """One thread's catalogue-long arrays for `BM25Index.score_and_match_rows`: per row
    the number of groups it matches (left at 0 after each query), the last group that
    counted it (a stamp, never reset) and its place among the last query's candidates
    (-1 elsewhere: only the last candidates' places are set, and reset by the next query)."""

    def __init__(self, n: int) -> None:
        self.count = np.zeros(n, dtype=np.int32)
        self.seen = np.zeros(n, dtype=np.int64)
        self.slot = np.full(n, -1, dtype=np.int64)
        self.stamp = 0
        self.cand = np.zeros(0, dtype=np.int64)
        self.index: object | None = None
        #: term -> (value, present) at the candidates, for the last query's terms
        self.values: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def place(self, cand: np.ndarray, index: object) -> None:
        self.slot[self.cand] = -1
        self.values = {}
        self.cand = cand
        self.index = index
        self.slot[cand] = np.arange(cand.size)

    def values_at(
        self, posting: tuple[np.ndarray, np.ndarray, bool]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(value, present) of a posting list (rows, values, rows in order) at the
        candidates: a binary search per candidate when the rows are in order and the
        candidates are far fewer, else one look-up per posting."""
        rows, vals, ordered = posting
        cand = self.cand
        m = cand.size
        got = np.zeros(m, dtype=np.float32)
        present = np.zeros(m, dtype=bool)
        if rows.size == 0 or m == 0:
            return got, present
        if ordered and m * 16 < rows.size:
            pos, present = find_sorted(rows, cand)
            got[present] = vals[pos[present]]
            return got, present
        pos = self.slot[rows]
        inside = pos >= 0
        pos = pos[inside]
        got[pos] = vals[inside]
        present[pos] = True
        return got, present


def _scratch(n: int) -> _Scratch:
    """This thread's `_Scratch`, for catalogues of up to `n` rows."""
    scratch: _Scratch | None = getattr(_SCRATCH, "scratch", None)
    if scratch is None or scratch.count.size < n:
        scratch = _SCRATCH.scratch = _Scratch(n)
    return scratch
