"""Multi-field BM25 (BM25F) with the index stored as a sparse matrix of precomputed scores.

As in bm25s, each (document, term) cell holds the term's full BM25 contribution, so a query
is a sum of a few sparse columns followed by a top-k. Per field f with boost w_f:

    tf~(d, t) = sum_f w_f * tf_f(d, t) / (1 - b + b * len_f(d) / avglen_f)
    score(d, t) = idf(t) * tf~ / (k1 + tf~),   idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

Saved as `.npz` + JSON, no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import NotFittedError
from shelfwise.search.analysis import Analyzer
from shelfwise.types import Results, top_k


class BM25Config(BaseModel):
    """BM25F parameters and per-field boosts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    k1: float = Field(default=1.2, ge=0.0)
    b: float = Field(default=0.75, ge=0.0, le=1.0)
    fields: dict[str, float] = Field(
        default_factory=lambda: {"title": 3.0, "brand": 2.0, "category": 1.5, "description": 1.0}
    )


class BM25Index:
    """A BM25F index over documents given as field -> text."""

    def __init__(self, config: BM25Config | None = None, analyzer: Analyzer | None = None):
        self.config = config or BM25Config()
        self.analyzer = analyzer or Analyzer()
        self.vocab: dict[str, int] = {}
        self.scores: sp.csc_matrix | None = None

    @property
    def n_docs(self) -> int:
        """Number of indexed documents."""
        return 0 if self.scores is None else int(self.scores.shape[0])

    def index(self, docs: Mapping[str, Sequence[str]]) -> BM25Index:
        """Index documents given column-wise: `{"title": [...], "brand": [...], ...}`."""
        lengths = {len(v) for v in docs.values()}
        if len(lengths) != 1:
            raise ValueError(f"every field needs one text per document, got lengths {lengths}")
        n_docs = lengths.pop()
        vocab: dict[str, int] = {}
        cfg = self.config
        per_field: list[sp.csr_matrix] = []
        for name, boost in cfg.fields.items():
            texts = docs.get(name)
            if texts is None or boost == 0:
                continue
            rows: list[int] = []
            cols: list[int] = []
            for d, text in enumerate(texts):
                for term in self.analyzer.terms(text or ""):
                    cols.append(vocab.setdefault(term, len(vocab)))
                    rows.append(d)
            tf = sp.csr_matrix(
                (np.ones(len(rows), np.float32), (np.array(rows), np.array(cols))),
                shape=(n_docs, max(len(vocab), 1)),
            )
            tf.sum_duplicates()
            per_field.append(self._normalise(tf, boost))
        n_terms = max(len(vocab), 1)
        tf_tilde = sp.csr_matrix((n_docs, n_terms), dtype=np.float32)
        for m in per_field:
            m.resize((n_docs, n_terms))
            tf_tilde = tf_tilde + m
        tf_tilde = sp.csr_matrix(tf_tilde)
        df = np.bincount(tf_tilde.indices, minlength=n_terms).astype(np.float64)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        data = tf_tilde.data.astype(np.float64)
        tf_tilde.data = (idf[tf_tilde.indices] * data / (cfg.k1 + data)).astype(np.float32)
        self.vocab = vocab
        self.scores = tf_tilde.tocsc()
        return self

    def _normalise(self, tf: sp.csr_matrix, boost: float) -> sp.csr_matrix:
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        avg = lengths.mean() if lengths.size and lengths.mean() > 0 else 1.0
        b = self.config.b
        row_factor = boost / (1.0 - b + b * lengths / avg)
        return sp.csr_matrix(sp.diags(row_factor.astype(np.float32)) @ tf)

    def query_terms(self, query: str) -> list[int]:
        """Column ids of the query's terms that the index knows (repeats kept)."""
        return [self.vocab[t] for t in self.analyzer.terms(query) if t in self.vocab]

    def score(self, query: str) -> np.ndarray:
        """BM25 score of every document for `query` (dense, float32)."""
        if self.scores is None:
            raise NotFittedError("BM25Index.index() or load() must be called first")
        out = np.zeros(self.n_docs, dtype=np.float32)
        s = self.scores
        for col in self.query_terms(query):
            lo, hi = s.indptr[col], s.indptr[col + 1]
            out[s.indices[lo:hi]] += s.data[lo:hi]
        return out

    def retrieve(self, query: str, k: int = 10) -> Results:
        """The k best documents with a positive score."""
        scores = self.score(query)
        scores[scores <= 0] = -np.inf
        return top_k(scores, k)

    def save(self, directory: Path) -> None:
        """Write the index as scores.npz + bm25.json."""
        if self.scores is None:
            raise NotFittedError("nothing to save: the index is empty")
        directory.mkdir(parents=True, exist_ok=True)
        sp.save_npz(directory / "scores.npz", self.scores, compressed=False)
        meta = {"config": self.config.model_dump(), "vocab": self.vocab}
        (directory / "bm25.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        """Read an index written by `save`."""
        meta = json.loads((directory / "bm25.json").read_text())
        index = cls(BM25Config(**meta["config"]))
        index.vocab = {str(k): int(v) for k, v in meta["vocab"].items()}
        index.scores = sp.csc_matrix(sp.load_npz(directory / "scores.npz"))
        return index
