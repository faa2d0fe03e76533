"""Content-based recommenders: items are vectors of their text, users the mean of theirs.

Item text (`item_texts`) is the title, the brand, every level of the category path
(`A > B > C` -> `A`, `B`, `C`), the description and, with `attributes`, the attribute values
that read as words (URLs, dates, ids such as `asin` are left out; lists of numeric ids such
as Amazon's `attribute_ids` become tokens like `attribute_ids_412` for the bag-of-words
models and are skipped for sentence embeddings).

Every model turns the catalog into one unit vector per item:

- `tfidf`: scikit-learn TF-IDF, sparse and L2-normalised;
- `lsa`: TF-IDF reduced by truncated SVD, dense and L2-normalised;
- `lda`: topic mixtures of a latent Dirichlet allocation over word counts, L2-normalised;
- `embedding`: all-MiniLM-L6-v2 sentence embeddings (`shelfwise.text.embeddings`).

A user's profile is the weighted mean of the vectors of the items in their history row,
normalised to unit length, and the score of an item is the cosine between profile and item
vector. The CSR row has no order, so recency is carried by the weights: the engine passes
the weights of `InteractionWeights`, which decay with age when `half_life_days` is set, so
recent items count more. Items with text but no interactions (cold-start items) get a vector
like any other and are recommended as soon as they match a profile; items without text get
a zero vector and score 0.

Saving keeps only what scoring needs: the item vectors (plus, for `tfidf` and `lsa`, the
vocabulary, idf and SVD components, so `add_items` can vectorise new items after a load).
Otherwise a catalog change needs a refit: `add_items(frame)` appends new items without
one for `tfidf`, `lsa` and `embedding` (and for `lda` in the process that fitted it).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import re
from abc import abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, field_validator

from shelfwise.data.frames import parse_attributes
from shelfwise.errors import DataError, NotFittedError
from shelfwise.recommenders.base import ModelConfig, Recommender, as_csr, register
from shelfwise.recommenders.space import Choice, IntRange, SearchSpace

if TYPE_CHECKING:  # scikit-learn is imported on first fit, keeping `import shelfwise` quick
    from sklearn.decomposition import LatentDirichletAllocation
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

_URL = re.compile(r"^\w+://|^www\.", re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_SKIPPED_KEYS = frozenset({"asin", "sku", "id", "item_id", "url", "ean", "upc", "gtin"})


def _words(value: Any) -> str | None:
    """A scalar attribute value as words, or None if it does not read as words."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if not text or _URL.match(text) or _DATE.match(text):
        return None
    if isinstance(value, int | float) or text.replace(".", "", 1).isdigit():
        return None
    return text


def attribute_text(value: Any, id_tokens: bool = True) -> str:
    """The words of an item's attributes (JSON text or dict); see the module doc."""
    parts: list[str] = []
    for key, raw in sorted(parse_attributes(value).items()):
        name = str(key)
        lowered = name.lower()
        if lowered in _SKIPPED_KEYS or lowered.endswith(("_id", "_url")):
            continue
        values = raw if isinstance(raw, list | tuple) else [raw]
        for v in values:
            if isinstance(v, dict):
                continue
            if isinstance(v, int) and not isinstance(v, bool):
                if id_tokens:
                    parts.append(f"{name}_{v}")
                continue
            words = _words(v)
            if words is not None:
                parts.append(words)
    return " ".join(parts)


def _field(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def item_texts(items: pd.DataFrame, attributes: bool = True, id_tokens: bool = True) -> list[str]:
    """One text per catalog row: title, brand, category levels, description, attributes."""
    n = len(items)

    def column(name: str) -> list[Any]:
        return items[name].tolist() if name in items.columns else [None] * n

    texts = []
    for title, brand, category, description, attrs in zip(
        column("title"),
        column("brand"),
        column("category"),
        column("description"),
        column("attributes"),
        strict=True,
    ):
        levels = [lvl.strip() for lvl in _field(category).split(">") if lvl.strip()]
        parts = [_field(title), _field(brand), *levels, _field(description)]
        if attributes:
            with contextlib.suppress(ValueError, TypeError):  # attributes that are not JSON
                parts.append(attribute_text(attrs, id_tokens=id_tokens))
        texts.append(". ".join(p for p in parts if p))
    return texts


def _check_items(items: pd.DataFrame | None, n_items: int, name: str) -> pd.DataFrame:
    if items is None:
        raise DataError(f"{name}: a content-based model needs the item catalog: fit(x, items)")
    if len(items) != n_items:
        raise DataError(
            f"{name}: the catalog has {len(items):,} rows but the matrix {n_items:,} columns; "
            "pass the catalog aligned with the matrix columns (one row per item index)"
        )
    return items


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class ContentConfig(ModelConfig):
    """Settings shared by the content-based models."""

    attributes: bool = True


class BagOfWordsConfig(ContentConfig):
    """Vocabulary settings of the word-count models."""

    min_df: int = Field(default=1, ge=1)
    max_features: int | None = Field(default=50_000, ge=1)
    ngram_range: tuple[int, int] = (1, 1)
    stop_words: Literal["english"] | None = "english"

    @field_validator("ngram_range")
    @classmethod
    def _check_ngrams(cls, value: tuple[int, int]) -> tuple[int, int]:
        lo, hi = value
        if lo < 1 or hi < lo:
            raise ValueError(f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {value}")
        return value


class ContentRecommender(Recommender):
    """Cosine between a user's weighted mean item vector and every item vector."""

    config: ContentConfig
    id_tokens: bool = True

    def __init__(self, config: ModelConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.vectors: np.ndarray | sp.csr_matrix = np.zeros((0, 0), dtype=np.float32)

    # -- per model -------------------------------------------------------------------------
    @abstractmethod
    def _fit_vectors(self, texts: list[str]) -> np.ndarray | sp.csr_matrix:
        """Learn the vectoriser on the catalog texts; return unit item vectors."""

    @abstractmethod
    def _transform(self, texts: list[str]) -> np.ndarray | sp.csr_matrix:
        """Unit vectors of new texts with the learned vectoriser."""

    # -- shared ----------------------------------------------------------------------------
    def texts(self, items: pd.DataFrame) -> list[str]:
        """The text this model embeds for each catalog row."""
        return item_texts(items, attributes=self.config.attributes, id_tokens=self.id_tokens)

    def fit(self, interactions: Any, items: pd.DataFrame | None = None) -> ContentRecommender:
        """Vectorise the catalog; the interactions only fix the number of items."""
        n_items = as_csr(interactions).shape[1]
        catalog = _check_items(items, n_items, self.name)
        self.vectors = self._fit_vectors(self.texts(catalog))
        self.n_items = n_items
        return self

    def add_items(self, items: pd.DataFrame) -> np.ndarray:
        """Append new catalog rows (new item indices n_items, n_items + 1, ...) without a refit.

        Returns the new items' indices. Words the vectoriser never saw are ignored.
        """
        self._check_fitted()
        new = self._transform(self.texts(items))
        start = self.n_items
        if sp.issparse(self.vectors):
            self.vectors = sp.vstack([self.vectors, sp.csr_matrix(new)], format="csr")
        else:
            self.vectors = np.vstack([self.vectors, np.asarray(new, dtype=np.float32)])
        self.n_items += len(items)
        return np.arange(start, self.n_items, dtype=np.int64)

    def profiles(self, histories: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
        """Unit profile vectors: the weighted mean of each row's item vectors, normalised.

        Histories sized by an earlier `n_items` are fine: `add_items` (in another thread, for
        the live catalogue) appends vector rows before it grows `n_items`, so the vectors
        may hold more rows than the histories have columns, never fewer, and the rows
        appended since belong to items no history of that size names."""
        h = sp.csr_matrix(histories, dtype=np.float32)
        vectors = self.vectors
        if vectors.shape[0] > h.shape[1]:
            vectors = vectors[: h.shape[1]]
        if sp.issparse(vectors):
            p = sp.csr_matrix(h @ vectors, dtype=np.float32)
            norms = np.sqrt(np.asarray(p.multiply(p).sum(axis=1)).ravel())
            inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
            return sp.csr_matrix(sp.diags(inverse.astype(np.float32)) @ p)
        return _unit_rows(np.asarray(h @ vectors))

    def _transposed(self) -> np.ndarray | sp.csr_matrix:
        """The item vectors transposed (features x items), kept until the vectors change:
        transposing a large sparse matrix on every request costs more than the product."""
        cached = getattr(self, "_vectors_t", None)
        if cached is None or cached[0] is not self.vectors:
            vt = self.vectors.T
            vt = sp.csr_matrix(vt) if sp.issparse(vt) else np.ascontiguousarray(vt)
            self._vectors_t = (self.vectors, vt)
            return vt
        return cached[1]

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """Cosine(profile, item vector) for every row and item (0 for empty histories)."""
        self._check_fitted()
        profiles = self.profiles(histories)
        scores = profiles @ self._transposed()
        if sp.issparse(scores):
            scores = scores.toarray()
        return np.asarray(scores, dtype=np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        v = self.vectors
        if sp.issparse(v):
            v = sp.csr_matrix(v)
            return {
                "vectors_data": v.data.astype(np.float32),
                "vectors_indices": v.indices,
                "vectors_indptr": v.indptr,
                "vectors_shape": np.asarray(v.shape, dtype=np.int64),
            }
        return {"vectors": np.asarray(v, dtype=np.float32)}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        if "vectors" in arrays:
            self.vectors = arrays["vectors"].astype(np.float32)
        else:
            shape = tuple(int(s) for s in arrays["vectors_shape"])
            self.vectors = sp.csr_matrix(
                (arrays["vectors_data"], arrays["vectors_indices"], arrays["vectors_indptr"]),
                shape=shape,
            )


# -- TF-IDF --------------------------------------------------------------------------------
class TfidfConfig(BagOfWordsConfig):
    """scikit-learn `TfidfVectorizer` settings (`min_df` counts documents)."""

    sublinear_tf: bool = True

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "sublinear_tf": Choice((True, False)),
        "min_df": IntRange(1, 5),
        "max_features": Choice((5_000, 20_000, 50_000)),
        "ngram_max": IntRange(1, 2),
        "attributes": Choice((True, False)),
    }

    @classmethod
    def from_search(cls, params: Mapping[str, Any]) -> Self:
        """`ngram_max` n searches `ngram_range` (1, n)."""
        values = dict(params)
        if "ngram_max" in values:
            values["ngram_range"] = (1, int(values.pop("ngram_max")))
        return cls(**values)


def _tfidf_vectorizer(config: TfidfConfig, n_docs: int, **extra: Any) -> TfidfVectorizer:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        sublinear_tf=config.sublinear_tf,
        min_df=min(config.min_df, max(n_docs, 1)),
        max_features=config.max_features,
        ngram_range=config.ngram_range,
        stop_words=config.stop_words,
        dtype=np.float32,
        **extra,
    )


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern


def _loaded_tfidf(
    texts: list[str], terms: list[str], idf: np.ndarray, sublinear: bool
) -> sp.csr_matrix:
    """What `TfidfVectorizer.transform` (unigrams, the default analyzer, l2 norm, float32)
    gives for `texts` with the fitted vocabulary `terms` and `idf`, step by step as
    scikit-learn 1.x computes it, so the vectors are the same to the bit
    (`tests/recommenders/test_content.py` compares them): lower-cased, tokenised by the
    default pattern, counted over the vocabulary (stop words never are in a fitted one),
    tf -> 1 + log(tf) in float32 when `sublinear`, times idf, each row divided by its
    norm (squares in float32, summed in double, as `inplace_csr_row_normalize_l2`)."""
    vocabulary = {t: i for i, t in enumerate(terms)}
    indices: list[int] = []
    counts: list[int] = []
    indptr = [0]
    for text in texts:
        row: dict[int, int] = {}
        for token in _TOKEN.findall(text.lower()):
            j = vocabulary.get(token)
            if j is not None:
                row[j] = row.get(j, 0) + 1
        for j in sorted(row):
            indices.append(j)
            counts.append(row[j])
        indptr.append(len(indices))
    data = np.asarray(counts, dtype=np.float32)
    cols = np.asarray(indices, dtype=np.int32)
    if sublinear:
        np.log(data, data)
        data += 1.0
    data *= np.asarray(idf, dtype=np.float64)[cols]
    for lo, hi in itertools.pairwise(indptr):
        total = 0.0
        for value in (data[lo:hi] * data[lo:hi]).tolist():
            total += value
        if total != 0.0:
            data[lo:hi] = data[lo:hi].astype(np.float64) / math.sqrt(total)
    return sp.csr_matrix(
        (data, cols, np.asarray(indptr, dtype=np.int32)), shape=(len(texts), len(terms))
    )


def _empty_vocabulary(exc: ValueError) -> bool:
    return "empty vocabulary" in str(exc) or "no terms remain" in str(exc)


@register
class Tfidf(ContentRecommender):
    """TF-IDF item vectors (sparse)."""

    name = "tfidf"
    Config = TfidfConfig
    config: TfidfConfig

    def __init__(self, config: TfidfConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self._vectorizer: TfidfVectorizer | None = None
        # (terms, idf) of a loaded model: the vectoriser (and scikit-learn, ~0.9 s to
        # import) is rebuilt only when new texts need vectorising, not when a server loads
        self._pending: tuple[list[str], np.ndarray] | None = None

    @property
    def vectorizer(self) -> TfidfVectorizer | None:
        """The fitted vectoriser (None when the catalogue had no words)."""
        if self._pending is not None:
            terms, idf = self._pending
            self._pending = None
            vec = _tfidf_vectorizer(self.config, 1, vocabulary={t: i for i, t in enumerate(terms)})
            vec.idf_ = idf
            self._vectorizer = vec
        return self._vectorizer

    @vectorizer.setter
    def vectorizer(self, value: TfidfVectorizer | None) -> None:
        self._vectorizer, self._pending = value, None

    def _fit_vectors(self, texts: list[str]) -> np.ndarray | sp.csr_matrix:
        return self._fit_tfidf(texts)

    def _transform(self, texts: list[str]) -> np.ndarray | sp.csr_matrix:
        return self._tfidf(texts)

    def _fit_tfidf(self, texts: list[str]) -> sp.csr_matrix:
        """Learn vocabulary and idf; the TF-IDF rows of `texts` (L2-normalised)."""
        self.vectorizer = _tfidf_vectorizer(self.config, len(texts))
        try:
            return sp.csr_matrix(self.vectorizer.fit_transform(texts), dtype=np.float32)
        except ValueError as exc:
            if not _empty_vocabulary(exc):
                raise
            self.vectorizer = None  # no words at all: every item scores 0
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)

    def _tfidf(self, texts: list[str]) -> sp.csr_matrix:
        """TF-IDF rows of new texts with the learned vocabulary and idf."""
        if self._pending is not None and self.config.ngram_range == (1, 1):
            # a loaded model: scikit-learn's arithmetic without importing it (~1.8 s of CPU
            # in a starting server that vectorises the items added since the build)
            return _loaded_tfidf(texts, *self._pending, sublinear=self.config.sublinear_tf)
        if self.vectorizer is None:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        return sp.csr_matrix(self.vectorizer.transform(texts), dtype=np.float32)

    @property
    def vocabulary(self) -> list[str]:
        """The terms, in column order."""
        if self.vectorizer is None:
            return []
        return [str(t) for t in self.vectorizer.get_feature_names_out()]

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._arrays()
        if self.vectorizer is not None:
            arrays["terms"] = np.asarray(self.vocabulary, dtype=str)
            arrays["idf"] = np.asarray(self.vectorizer.idf_, dtype=np.float64)
        return arrays

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        super()._restore(arrays)
        self.vectorizer = None
        if "terms" in arrays:
            self._pending = ([str(t) for t in arrays["terms"]], np.asarray(arrays["idf"]))


# -- LSA -------------------------------------------------------------------------------------
class LsaConfig(TfidfConfig):
    """TF-IDF, then truncated SVD to `n_components` dimensions (fewer for small vocabularies)."""

    n_components: int = Field(default=128, ge=1)
    seed: int = 0

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        **TfidfConfig.SEARCH_SPACE,
        "n_components": IntRange(16, 256, log=True),
    }


@register
class Lsa(Tfidf):
    """Latent semantic analysis: TF-IDF + truncated SVD (dense)."""

    name = "lsa"
    Config = LsaConfig
    config: LsaConfig

    def __init__(self, config: LsaConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.components = np.zeros((0, 0), dtype=np.float32)

    def _fit_vectors(self, texts: list[str]) -> np.ndarray | sp.csr_matrix:
        tfidf = self._fit_tfidf(texts)
        n_features = tfidf.shape[1]
        k = min(self.config.n_components, n_features - 1, len(texts) - 1)
        if k < 1:  # one word or one item, too few for an SVD: a single all-words axis
            self.components = np.full((1, n_features), 1.0 / math.sqrt(max(n_features, 1)))
            self.components = self.components.astype(np.float32)
        else:
            from sklearn.decomposition import TruncatedSVD

            svd = TruncatedSVD(n_components=k, random_state=self.config.seed)
            svd.fit(tfidf)
            self.components = svd.components_.astype(np.float32)
        return self._project(tfidf)

    def _project(self, tfidf: sp.csr_matrix) -> np.ndarray:
        return _unit_rows(np.asarray(tfidf @ self.components.T))

    def _transform(self, texts: list[str]) -> np.ndarray | sp.csr_matrix:
        return self._project(self._tfidf(texts))

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._arrays()
        arrays["components"] = self.components
        return arrays

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        super()._restore(arrays)
        self.components = arrays["components"].astype(np.float32)


# -- LDA -------------------------------------------------------------------------------------
class LdaConfig(BagOfWordsConfig):
    """Word counts, then a latent Dirichlet allocation with `n_topics` topics."""

    n_topics: int = Field(default=32, ge=2)
    max_iter: int = Field(default=20, ge=1)
    seed: int = 0

    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "n_topics": IntRange(8, 128, log=True),
        "max_iter": IntRange(10, 50),
        "min_df": IntRange(1, 5),
        "attributes": Choice((True, False)),
    }


@register
class Lda(ContentRecommender):
    """Topic-mixture item vectors (dense); items without words get a zero vector."""

    name = "lda"
    Config = LdaConfig
    config: LdaConfig

    def __init__(self, config: LdaConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.counter: CountVectorizer | None = None
        self.lda: LatentDirichletAllocation | None = None

    def _topics(self, counts: sp.csr_matrix) -> np.ndarray:
        assert self.lda is not None
        theta = np.asarray(self.lda.transform(counts), dtype=np.float32)
        theta[np.asarray(counts.sum(axis=1)).ravel() == 0] = 0.0  # no words, no topics
        return _unit_rows(theta)

    def _fit_vectors(self, texts: list[str]) -> np.ndarray:
        cfg = self.config
        from sklearn.decomposition import LatentDirichletAllocation
        from sklearn.feature_extraction.text import CountVectorizer

        self.counter = CountVectorizer(
            min_df=min(cfg.min_df, max(len(texts), 1)),
            max_features=cfg.max_features,
            ngram_range=cfg.ngram_range,
            stop_words=cfg.stop_words,
        )
        try:
            counts = sp.csr_matrix(self.counter.fit_transform(texts))
        except ValueError as exc:
            if not _empty_vocabulary(exc):
                raise
            self.counter = None
            return np.zeros((len(texts), cfg.n_topics), dtype=np.float32)
        self.lda = LatentDirichletAllocation(
            n_components=cfg.n_topics,
            max_iter=cfg.max_iter,
            learning_method="batch",
            random_state=cfg.seed,
        )
        self.lda.fit(counts)
        return self._topics(counts)

    def _transform(self, texts: list[str]) -> np.ndarray:
        if self.counter is None or self.lda is None:
            if np.any(self.vectors):  # loaded: the topic model itself is not saved
                raise NotFittedError(
                    "lda: add_items needs the topic model, which is not saved; refit"
                )
            return np.zeros((len(texts), self.config.n_topics), dtype=np.float32)
        return self._topics(sp.csr_matrix(self.counter.transform(texts)))


# -- sentence embeddings ------------------------------------------------------------------------
class EmbeddingConfig(ContentConfig):
    """all-MiniLM-L6-v2 embeddings of the item texts (`batch_size` texts per forward pass)."""

    batch_size: int = Field(default=64, ge=1)
    progress: bool = True

    # only the texts matter for quality
    SEARCH_SPACE: ClassVar[SearchSpace] = {"attributes": Choice((True, False))}


@register
class Embedding(ContentRecommender):
    """Sentence-embedding item vectors (dense, 384 wide), computed on the CPU.

    `progress` shows a bar while a catalog of more than 1,000 items is encoded.
    """

    name = "embedding"
    Config = EmbeddingConfig
    config: EmbeddingConfig
    id_tokens = False

    def _encode(self, texts: list[str]) -> np.ndarray:
        from shelfwise.text.embeddings import get_encoder

        return get_encoder().encode(
            texts,
            batch_size=self.config.batch_size,
            progress=self.config.progress and len(texts) > 1_000,
        )

    def _fit_vectors(self, texts: list[str]) -> np.ndarray:
        vectors = self._encode(texts)
        vectors[[not t for t in texts]] = 0.0  # no text, no vector
        return vectors

    def _transform(self, texts: list[str]) -> np.ndarray:
        return self._fit_vectors(texts)


__all__ = [
    "ContentConfig",
    "ContentRecommender",
    "Embedding",
    "EmbeddingConfig",
    "Lda",
    "LdaConfig",
    "Lsa",
    "LsaConfig",
    "Tfidf",
    "TfidfConfig",
    "attribute_text",
    "item_texts",
]
