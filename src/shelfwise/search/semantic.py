"""Semantic retrieval: all-MiniLM-L6-v2 embeddings of item text in a faiss index.

Items are embedded once (`SentenceEncoder`, offline) and the vectors, unit length, go into a
faiss inner-product index keyed by item index, so the inner product is the cosine:

* `flat`: exact search (`IndexFlatIP`), the default up to `exact_threshold` items, where
  brute force over a few thousand 384-wide vectors takes well under a millisecond;
* `hnsw`: a graph ANN index (`IndexHNSWFlat`, Malkov and Yashunin 2016) above it;
* `ivf`: an inverted-file index (`IndexIVFFlat`, trained k-means cells), on request.

All are wrapped in `IndexIDMap2` (ivf keeps its own ids) so results come back as item
indices. Items can be added and removed one at a time: flat and ivf delete in place; HNSW
graphs cannot delete, so removed ids are tombstoned (filtered out of results by over-fetching)
and the graph is rebuilt from the stored vectors once a fifth of it is dead.

The index is saved without pickle: `faiss.write_index`, the vectors as `.npy` and the
metadata as JSON. Embeddings of a whole catalogue are cached on disk as `.npy` keyed by a
hash of the model and the texts (`encode_cached`), since a 5,000-item catalogue takes
minutes to embed on two CPU cores.

For serving, `EmbeddingCache` keeps one vector per distinct text instead, keyed by the model
and a hash of the text (`$SHELFWISE_CACHE_DIR/embeddings/<model>-<max_length>/`), so a
restart reads everything back, a changed catalogue embeds only its new or changed texts,
and an interrupted first embedding resumes where it stopped. `DenseIndex.from_catalog`
builds an index through it, and an index with a `cache` embeds upserted items through it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import ConfigError, DataError, NotFittedError
from shelfwise.search.documents import item_texts
from shelfwise.search.modes import SEARCH_MODES
from shelfwise.text.embeddings import EMBEDDING_DIM, SentenceEncoder, get_encoder
from shelfwise.types import Results, top_k

log = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]

__all__ = [
    "SEARCH_MODES",
    "DenseConfig",
    "DenseIndex",
    "EmbeddingCache",
    "embedding_cache_dir",
    "encode_cached",
    "item_texts",
    "text_key",
]

_FORMAT_VERSION = 1


DEFAULT_CACHE_DIR = Path("var/cache") / "embeddings"
"""Where catalogue embeddings are cached when no folder is passed (`Settings().paths.
embeddings` is what the CLI and the service pass)."""


def embedding_cache_dir() -> Path:
    """The default embedding cache folder, `DEFAULT_CACHE_DIR`."""
    return DEFAULT_CACHE_DIR


def _cache_key(encoder: SentenceEncoder, texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    h.update(f"{encoder.model_path.name}|{encoder.max_length}|{len(texts)}".encode())
    for t in texts:
        h.update(b"\x1f")
        h.update(t.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def encode_cached(
    texts: Sequence[str],
    encoder: SentenceEncoder | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Embeddings of `texts` (n x 384), read from the on-disk cache when the same model
    already embedded exactly these texts, else computed and written there atomically."""
    encoder = encoder or get_encoder()
    texts = [str(t) if t is not None else "" for t in texts]
    directory = cache_dir if cache_dir is not None else embedding_cache_dir()
    path = directory / f"{_cache_key(encoder, texts)}.npy"
    if path.is_file():
        vectors = np.load(path)
        if vectors.shape == (len(texts), encoder.dim):
            log.debug("embeddings of %d texts read from %s", len(texts), path)
            return vectors.astype(np.float32, copy=False)
    vectors = encoder.encode(texts, batch_size=batch_size, progress=progress)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(path)
    except OSError as exc:  # a read-only cache only costs time
        log.warning("could not cache embeddings in %s: %s", directory, exc)
    return vectors


def text_key(text: str) -> str:
    """The cache key of one text: 32 hex digits of its SHA-256."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _duration(seconds: float) -> str:
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _LazyEncoder:
    """The `encoder` property of the classes that embed texts: the one they were given,
    else the process-wide MiniLM, loaded on first use."""

    _encoder: SentenceEncoder | None

    @property
    def encoder(self) -> SentenceEncoder:
        """The sentence encoder (the process-wide MiniLM unless one was given)."""
        if self._encoder is None:
            self._encoder = get_encoder()
        return self._encoder


class EmbeddingCache(_LazyEncoder):
    """Embeddings of single texts on disk, keyed by the model and a hash of each text.

    The folder `<directory>/<model>-<max_length>/` (default directory:
    `embedding_cache_dir()`) holds segments, each a pair `<name>.keys.npy` (text keys,
    fixed-width unicode) and `<name>.vecs.npy` (float32 rows); the keys file is written
    last, so a segment is complete when it exists. `encode` reads what is there and embeds
    only the texts that are missing, `chunk_size` at a time, writing a segment per chunk
    (an interrupted run resumes) and logging progress with an ETA every `log_every_s`
    seconds. Segments are merged into one when there are more than `max_segments`.
    Several processes may share a folder: names are unique and files are replaced
    atomically. `hits` and `encoded` count the texts read back and embedded.
    """

    def __init__(
        self,
        directory: Path | None = None,
        encoder: SentenceEncoder | None = None,
        chunk_size: int = 256,
        log_every_s: float = 10.0,
        max_segments: int = 32,
    ) -> None:
        if chunk_size < 1:
            raise ConfigError(f"chunk_size must be >= 1, got {chunk_size}")
        self.root = Path(directory) if directory is not None else embedding_cache_dir()
        self._encoder = encoder
        self.chunk_size = chunk_size
        self.log_every_s = log_every_s
        self.max_segments = max_segments
        self.hits = 0
        self.encoded = 0
        self._where: dict[str, tuple[str, int]] = {}
        self._seen: set[str] = set()
        self._lock = threading.RLock()

    @property
    def directory(self) -> Path:
        """The folder of this model's segments."""
        enc = self.encoder
        return self.root / f"{enc.model_path.name}-{enc.max_length}"

    def __len__(self) -> int:
        with self._lock:
            self._scan()
            return len(self._where)

    # ---- reading -------------------------------------------------------------------------

    def _scan(self) -> None:
        """Index segments that appeared since the last scan (by this or another process)."""
        directory = self.directory
        if not directory.is_dir():
            return
        names = {p.name[: -len(".keys.npy")] for p in directory.glob("*.keys.npy")}
        for name in sorted(names - self._seen):
            try:
                keys = np.load(directory / f"{name}.keys.npy", allow_pickle=False)
            except (OSError, ValueError):  # being merged away by another process
                continue
            for row, key in enumerate(keys.tolist()):
                self._where[str(key)] = (name, row)
            self._seen.add(name)

    def lookup(self, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(vectors, found): the cached vector of each key (zeros where `found` is False)."""
        with self._lock:
            return self._lookup(keys, retry=True)

    def _lookup(self, keys: Sequence[str], retry: bool) -> tuple[np.ndarray, np.ndarray]:
        dim = self.encoder.dim
        out = np.zeros((len(keys), dim), dtype=np.float32)
        found = np.zeros(len(keys), dtype=bool)
        if any(k not in self._where for k in keys):
            self._scan()
        by_segment: dict[str, list[tuple[int, int]]] = {}
        for pos, key in enumerate(keys):
            hit = self._where.get(key)
            if hit is not None:
                by_segment.setdefault(hit[0], []).append((pos, hit[1]))
        for name, pairs in by_segment.items():
            try:
                vecs = np.load(self.directory / f"{name}.vecs.npy", mmap_mode="r")
            except (OSError, ValueError):
                continue
            if vecs.ndim != 2 or vecs.shape[1] != dim:
                continue
            at = np.fromiter((p for p, _ in pairs), dtype=np.int64, count=len(pairs))
            rows = np.fromiter((r for _, r in pairs), dtype=np.int64, count=len(pairs))
            ok = rows < vecs.shape[0]
            out[at[ok]] = np.asarray(vecs[rows[ok]], dtype=np.float32)
            found[at[ok]] = True
        if retry and not found.all() and by_segment:
            # a segment vanished (merged by another process): forget it and look again
            lost = [k for k, f in zip(keys, found, strict=True) if not f]
            names = {self._where[k][0] for k in lost if k in self._where}
            stale = [n for n in names if not (self.directory / f"{n}.keys.npy").exists()]
            if stale:
                self._forget(stale)
                again, ok = self._lookup(lost, retry=False)
                idx = np.flatnonzero(~found)
                out[idx[ok]] = again[ok]
                found[idx[ok]] = True
        return out, found

    def _forget(self, names: Sequence[str]) -> None:
        gone = set(names)
        self._where = {k: v for k, v in self._where.items() if v[0] not in gone}
        self._seen -= gone

    # ---- writing -------------------------------------------------------------------------

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors under their keys (one new segment)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(keys) == 0:
            return
        if vectors.shape != (len(keys), self.encoder.dim):
            raise DataError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
        with self._lock:
            directory = self.directory
            name = f"seg-{time.time_ns():x}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            try:
                directory.mkdir(parents=True, exist_ok=True)
                self._write(directory, name, np.asarray(list(keys), dtype="U32"), vectors)
            except OSError as exc:  # a read-only cache only costs time
                log.warning("could not cache embeddings in %s: %s", directory, exc)
                return
            for row, key in enumerate(keys):
                self._where[str(key)] = (name, row)
            self._seen.add(name)
            if len(self._seen) > self.max_segments:
                self.compact()

    @staticmethod
    def _write(directory: Path, name: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        for suffix, data in (("vecs", vectors), ("keys", keys)):  # keys last: complete
            tmp = directory / f".{name}.{suffix}.tmp.npy"
            np.save(tmp, data, allow_pickle=False)
            tmp.replace(directory / f"{name}.{suffix}.npy")

    def compact(self) -> None:
        """Merge every segment into one (the old ones are removed)."""
        with self._lock:
            self._scan()
            old = sorted(self._seen)
            if len(old) <= 1:
                return
            keys = sorted(self._where)
            vectors, found = self._lookup(keys, retry=False)
            keep = [k for k, f in zip(keys, found, strict=True) if f]
            name = f"seg-{time.time_ns():x}-{os.getpid()}-{uuid.uuid4().hex[:8]}-merged"
            try:
                self._write(self.directory, name, np.asarray(keep, dtype="U32"), vectors[found])
                for seg in old:
                    for suffix in ("keys", "vecs"):
                        (self.directory / f"{seg}.{suffix}.npy").unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not merge the embedding cache %s: %s", self.directory, exc)
                return
            self._where = {k: (name, i) for i, k in enumerate(keep)}
            self._seen = {name}

    # ---- embedding -----------------------------------------------------------------------

    def encode(self, texts: Sequence[str], batch_size: int = 64, what: str = "texts") -> np.ndarray:
        """Embeddings of `texts` (n x dim): cached ones read back, the rest embedded (and
        cached), with progress logged for long runs (see the class doc)."""
        texts = [str(t) if t is not None else "" for t in texts]
        keys = [text_key(t) for t in texts]
        with self._lock:
            out, found = self._lookup(keys, retry=True)
            if not found.all() and not found.any() and len(texts) > self.chunk_size:
                found = self._from_whole_list_cache(texts, keys, out)
            todo: dict[str, int] = {}
            for pos in np.flatnonzero(~found).tolist():
                todo.setdefault(keys[pos], pos)
            self.hits += int(found.sum())
            if todo:
                fresh = self._embed([texts[p] for p in todo.values()], list(todo), batch_size, what)
                row_of = {k: i for i, k in enumerate(todo)}
                miss = np.flatnonzero(~found)
                out[miss] = fresh[[row_of[keys[p]] for p in miss.tolist()]]
        return out

    def _from_whole_list_cache(
        self, texts: list[str], keys: list[str], out: np.ndarray
    ) -> np.ndarray:
        """Adopt an `encode_cached` file for exactly these texts (written before this cache
        existed), so a catalogue embedded once is not embedded again."""
        path = self.root / f"{_cache_key(self.encoder, texts)}.npy"
        found = np.zeros(len(texts), dtype=bool)
        if not path.is_file():
            return found
        try:
            vectors = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return found
        if vectors.shape != (len(texts), self.encoder.dim):
            return found
        log.info("embeddings of %d texts adopted from %s", len(texts), path)
        first = dict(zip(keys, range(len(keys)), strict=False))
        uniq = list(dict.fromkeys(keys))
        self.add(uniq, vectors[[first[k] for k in uniq]])
        out[:] = vectors
        found[:] = True
        return found

    def _embed(self, texts: list[str], keys: list[str], batch_size: int, what: str) -> np.ndarray:
        n = len(texts)
        out = np.zeros((n, self.encoder.dim), dtype=np.float32)
        chatty = n > self.chunk_size
        if chatty:
            log.info(
                "embedding %d %s with %s (%d already cached); this runs once, later starts "
                "read them from %s",
                n,
                what,
                self.encoder.model_path.name,
                self.hits,
                self.directory,
            )
        t0 = last = time.perf_counter()
        for start in range(0, n, self.chunk_size):
            stop = min(start + self.chunk_size, n)
            vectors = self.encoder.encode(texts[start:stop], batch_size=batch_size)
            out[start:stop] = vectors
            self.encoded += stop - start
            self.add(keys[start:stop], vectors)
            now = time.perf_counter()
            if chatty and (now - last >= self.log_every_s or stop == n):
                last = now
                rate = stop / max(now - t0, 1e-9)
                log.info(
                    "embedded %d/%d %s (%.0f%%), %.1f/s, elapsed %s, ETA %s",
                    stop,
                    n,
                    what,
                    100.0 * stop / n,
                    rate,
                    _duration(now - t0),
                    _duration((n - stop) / rate),
                )
        return out


class DenseConfig(BaseModel):
    """How the dense index is built and searched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IndexKind = "auto"
    exact_threshold: int = Field(default=50_000, ge=1)
    """`auto` uses exact search up to this many items and HNSW above."""
    hnsw_m: int = Field(default=32, ge=4, le=256)
    hnsw_ef_construction: int = Field(default=200, ge=8)
    hnsw_ef_search: int = Field(default=128, ge=8)
    ivf_nlist: int | None = Field(default=None, ge=1)
    """IVF cells; default about 4 sqrt(n)."""
    ivf_nprobe: int = Field(default=16, ge=1)
    batch_size: int = Field(default=64, ge=1)
    rebuild_dead_fraction: float = Field(default=0.2, gt=0.0, le=1.0)


class DenseIndex(_LazyEncoder):
    """Item vectors in a faiss inner-product index, keyed by item index (see the module)."""

    def __init__(
        self, config: DenseConfig | None = None, encoder: SentenceEncoder | None = None
    ) -> None:
        self.config = config or DenseConfig()
        self._encoder = encoder
        self.dim = EMBEDDING_DIM if encoder is None else encoder.dim
        self.kind: str = "flat"
        self._index: Any = None
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)  # row = item id
        self._present = np.zeros(0, dtype=bool)
        self._dead: set[int] = set()  # tombstones (HNSW only)
        self._query_cache: dict[str, np.ndarray] = {}
        #: Where item texts are embedded through (`EmbeddingCache`); None: always embed.
        self.cache: EmbeddingCache | None = None

    # ---- properties --------------------------------------------------------------------

    @property
    def n_items(self) -> int:
        """Number of live (searchable) items."""
        return int(self._present.sum())

    @property
    def ids(self) -> np.ndarray:
        """The live item ids, ascending."""
        return np.flatnonzero(self._present).astype(np.int64)

    def __contains__(self, item: int) -> bool:
        return 0 <= item < self._present.size and bool(self._present[item])

    # ---- building ------------------------------------------------------------------------

    def index(
        self,
        texts: Sequence[str],
        ids: Sequence[int] | np.ndarray | None = None,
        cache_dir: Path | None = None,
        progress: bool = False,
    ) -> DenseIndex:
        """Embed `texts` (cached on disk) and index them under `ids` (default 0..n-1)."""
        vectors = encode_cached(
            texts,
            self.encoder,
            cache_dir=cache_dir,
            batch_size=self.config.batch_size,
            progress=progress,
        )
        return self.index_vectors(vectors, ids)

    def index_vectors(
        self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None = None
    ) -> DenseIndex:
        """Index precomputed vectors (n x dim, unit rows) under `ids` (default 0..n-1)."""
        vectors, id_arr = self._check(vectors, ids)
        size = int(id_arr.max()) + 1 if id_arr.size else 0
        self._vectors = np.zeros((size, self.dim), dtype=np.float32)
        self._present = np.zeros(size, dtype=bool)
        self._vectors[id_arr] = vectors
        self._present[id_arr] = True
        self._dead = set()
        self._build()
        return self

    def _check(
        self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise DataError(f"vectors must be n x {self.dim}, got shape {vectors.shape}")
        id_arr = (
            np.arange(vectors.shape[0], dtype=np.int64)
            if ids is None
            else np.asarray(ids, dtype=np.int64).ravel()
        )
        if id_arr.shape[0] != vectors.shape[0]:
            raise DataError(f"{id_arr.shape[0]} ids for {vectors.shape[0]} vectors")
        if id_arr.size and id_arr.min() < 0:
            raise DataError(f"ids must be >= 0, got {int(id_arr.min())}")
        if np.unique(id_arr).size != id_arr.size:
            raise DataError("ids must be unique")
        if not np.all(np.isfinite(vectors)):
            raise DataError("vectors hold NaN or infinite values")
        return vectors, id_arr

    def _choose_kind(self, n: int) -> str:
        kind = self.config.kind
        if kind == "auto":
            return "flat" if n <= self.config.exact_threshold else "hnsw"
        return kind

    def _new_index(self, n: int) -> Any:
        cfg = self.config
        self.kind = self._choose_kind(n)
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self.kind == "hnsw":
            graph = faiss.IndexHNSWFlat(self.dim, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = cfg.hnsw_ef_construction
            graph.hnsw.efSearch = cfg.hnsw_ef_search
            return faiss.IndexIDMap2(graph)
        nlist = cfg.ivf_nlist or max(1, min(int(4 * np.sqrt(max(n, 1))), max(n // 39, 1)))
        quantizer = faiss.IndexFlatIP(self.dim)
        ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.nprobe = min(cfg.ivf_nprobe, nlist)
        return ivf

    def _build(self) -> None:
        ids = self.ids
        index = self._new_index(ids.size)
        vectors = self._vectors[ids]
        if self.kind == "ivf":
            if ids.size == 0:
                raise DataError("an IVF index needs vectors to train on; index some items first")
            index.train(vectors)
        if ids.size:
            index.add_with_ids(vectors, ids)
        self._index = index
        self._dead = set()

    def add(self, ids: Sequence[int] | np.ndarray, texts: Sequence[str]) -> None:
        """Embed and add (or replace) items; searchable as soon as this returns."""
        if len(texts) != len(ids):
            raise DataError(f"{len(ids)} ids for {len(texts)} texts")
        self.add_vectors(self.embed(texts), ids)

    def embed(self, texts: Sequence[str], what: str = "item texts") -> np.ndarray:
        """Vectors of item texts: through `cache` when set (only unseen texts are
        embedded), else straight from the encoder."""
        if self.cache is not None:
            return self.cache.encode(list(texts), batch_size=self.config.batch_size, what=what)
        return self.encoder.encode(list(texts), batch_size=self.config.batch_size)

    def add_vectors(self, vectors: np.ndarray, ids: Sequence[int] | np.ndarray) -> None:
        """Add (or replace) items given their vectors."""
        if self._index is None:
            raise NotFittedError("DenseIndex.index() or load() must be called first")
        vectors, id_arr = self._check(vectors, ids)
        if id_arr.size == 0:
            return
        replaced = id_arr[np.isin(id_arr, self.ids)]
        if replaced.size:
            self.remove(replaced)
        size = int(id_arr.max()) + 1
        if size > self._present.size:
            grow = size - self._present.size
            self._vectors = np.vstack([self._vectors, np.zeros((grow, self.dim), np.float32)])
            self._present = np.concatenate([self._present, np.zeros(grow, bool)])
        self._vectors[id_arr] = vectors
        self._present[id_arr] = True
        if self.kind == "hnsw" and self._dead & set(id_arr.tolist()):
            # a tombstoned id is still in the graph: rebuild so it holds the new vector once
            self._build()
            return
        self._index.add_with_ids(vectors, id_arr)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        """Remove items; unknown ids are ignored. Returns how many were removed."""
        if self._index is None:
            raise NotFittedError("DenseIndex.index() or load() must be called first")
        id_arr = np.asarray(ids, dtype=np.int64).ravel()
        id_arr = id_arr[(id_arr >= 0) & (id_arr < self._present.size)]
        id_arr = np.unique(id_arr[self._present[id_arr]])
        if id_arr.size == 0:
            return 0
        self._present[id_arr] = False
        self._vectors[id_arr] = 0.0
        if self.kind == "hnsw":
            self._dead.update(id_arr.tolist())
            if len(self._dead) > self.config.rebuild_dead_fraction * max(self._index.ntotal, 1):
                self._build()
        else:
            self._index.remove_ids(id_arr)
        return int(id_arr.size)

    # ---- the SearchService hooks (`search.base.Updatable`) --------------------------------

    @classmethod
    def from_items(
        cls,
        items: pd.DataFrame,
        config: DenseConfig | None = None,
        encoder: SentenceEncoder | None = None,
        progress: bool = False,
    ) -> DenseIndex:
        """An index over a catalogue frame, row `i` = item index `i` (see `item_texts`)."""
        return cls(config, encoder).index(item_texts(items), progress=progress)

    @classmethod
    def from_catalog(
        cls,
        items: pd.DataFrame,
        ids: Sequence[int] | np.ndarray | None = None,
        config: DenseConfig | None = None,
        encoder: SentenceEncoder | None = None,
        cache: EmbeddingCache | None = None,
    ) -> DenseIndex:
        """An index over catalogue rows `items` (under `ids`, default 0..n-1) whose texts
        are embedded through `cache` (default: an `EmbeddingCache` in
        `embedding_cache_dir()`), which the index keeps for later upserts: a restart reads
        every vector back, a new or changed item embeds only its own text."""
        index = cls(config, encoder)
        index.cache = cache if cache is not None else EmbeddingCache(encoder=index.encoder)
        vectors = index.embed(item_texts(items), what="items")
        return index.index_vectors(vectors, ids)

    def upsert(self, rows: np.ndarray, items: pd.DataFrame) -> None:
        """Embed catalogue rows `items` and (re-)index them under `rows`."""
        if len(items) != len(rows):
            raise DataError(f"{len(rows)} rows for {len(items)} items")
        self.add(np.asarray(rows, dtype=np.int64), item_texts(items))

    def delete(self, rows: np.ndarray) -> None:
        """Forget `rows` (unknown rows are ignored)."""
        self.remove(rows)

    # ---- querying ------------------------------------------------------------------------

    def encode_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Query embeddings (n x dim); recently seen queries come from a small cache."""
        missing = [q for q in dict.fromkeys(queries) if q not in self._query_cache]
        if missing:
            vectors = self.encoder.encode(missing, batch_size=self.config.batch_size)
            if len(self._query_cache) + len(missing) > 10_000:
                self._query_cache.clear()
            self._query_cache.update(zip(missing, vectors, strict=True))
        if not queries:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._query_cache[q] for q in queries])

    def search_vectors(self, vectors: np.ndarray, k: int) -> Results:
        """Top-k items per query vector (2-D Results; missing slots are id -1, -inf)."""
        if self._index is None:
            raise NotFittedError("DenseIndex.index() or load() must be called first")
        if k < 1:
            raise ConfigError(f"k must be >= 1, got {k}")
        q = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        n_live = self.n_items
        if n_live == 0:
            shape = (q.shape[0], k)
            return Results(np.full(shape, -1, np.int64), np.full(shape, -np.inf, np.float32))
        fetch = min(k + len(self._dead), self._index.ntotal)
        scores, ids = self._index.search(q, fetch)
        scores = scores.astype(np.float32)
        bad = ids < 0
        if self._dead:
            bad |= np.isin(ids, np.fromiter(self._dead, dtype=np.int64))
        scores[bad] = -np.inf
        ids = np.where(bad, -1, ids)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids = np.take_along_axis(ids, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        if ids.shape[1] < k:
            pad = k - ids.shape[1]
            ids = np.hstack([ids, np.full((ids.shape[0], pad), -1, np.int64)])
            scores = np.hstack([scores, np.full((scores.shape[0], pad), -np.inf, np.float32)])
        return Results(ids.astype(np.int64), scores)

    def retrieve(self, query: str, k: int = 10, mask: np.ndarray | None = None) -> Results:
        """The k items most similar to `query` (1-D Results; empty for a blank query).

        `mask` (bool over item ids) restricts the search to the items where it is True.
        With a flat index, or when the mask leaves out more than half of the items, it is
        answered exactly from the stored vectors; otherwise the ANN index's best are
        over-fetched and filtered, with the exact answer when fewer than k survive.
        """
        if self._index is None:
            raise NotFittedError("DenseIndex.index() or load() must be called first")
        if not query.strip():
            # a blank query asks for nothing: its embedding would return the same arbitrary
            # neighbours for every empty search box (the Retriever contract: empty Results)
            return Results(np.empty(0, np.int64), np.empty(0, np.float32))
        q = self.encode_queries([query])[0]
        if mask is not None:
            return self._retrieve_masked(q, k, mask)
        res = self.search_vectors(q[None, :], k)
        keep = res.ids[0] >= 0
        return Results(res.ids[0][keep], res.scores[0][keep])

    def _retrieve_masked(self, q: np.ndarray, k: int, mask: np.ndarray) -> Results:
        mask = np.asarray(mask, dtype=bool).ravel()
        allowed = self._present.copy()
        n = min(mask.size, allowed.size)
        allowed[:n] &= mask[:n]
        allowed[n:] = False
        rows = np.flatnonzero(allowed)
        if self.kind != "flat" and rows.size * 2 >= self.n_items > 0:
            # most items allowed: the ANN index's best, over-fetched by the share left out,
            # then filtered (post-filtering); exact below when fewer than k survive
            fetch = min(int(np.ceil(k * 1.5 * self.n_items / rows.size)) + 16, self.n_items)
            res = self.search_vectors(q[None, :], fetch)
            ids, scores = res.ids[0], res.scores[0]
            ok = ids >= 0
            ok[ok] = allowed[ids[ok]]
            if int(ok.sum()) >= min(k, rows.size):
                return Results(ids[ok][:k], scores[ok][:k])
        if rows.size * 4 >= allowed.size:
            # most rows allowed: one product over the stored matrix, then mask; gathering
            # the allowed rows first copies the matrix (150 MB at 100k items) on every query
            scores = np.asarray(self._vectors @ q, dtype=np.float32)
            scores[~allowed] = -np.inf
        else:
            scores = np.full(allowed.size, -np.inf, dtype=np.float32)
            scores[rows] = self._vectors[rows] @ q
        return top_k(scores, k)

    def similarity(self, query: str | np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Cosine of the query with each item of `ids` (0 for unknown or removed items)."""
        q = self.encode_queries([query])[0] if isinstance(query, str) else np.asarray(query)
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros(ids.shape, dtype=np.float32)
        ok = (ids >= 0) & (ids < self._present.size)
        ok[ok] = self._present[ids[ok]]
        out[ok] = self._vectors[ids[ok]] @ q.astype(np.float32)
        return out

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of `ids` (zeros for unknown or removed items)."""
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((ids.size, self.dim), dtype=np.float32)
        ok = (ids >= 0) & (ids < self._present.size)
        ok[ok] = self._present[ids[ok]]
        out[ok] = self._vectors[ids[ok]]
        return out

    # ---- persistence ---------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        """Write `dense.faiss`, `vectors.npy`, `present.npy` and `dense.json`; no pickle."""
        if self._index is None:
            raise NotFittedError("nothing to save: index some items first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(directory / "dense.faiss"))
        np.save(directory / "vectors.npy", self._vectors)
        np.save(directory / "present.npy", self._present)
        meta = {
            "format": _FORMAT_VERSION,
            "config": self.config.model_dump(),
            "kind": self.kind,
            "dim": self.dim,
            "dead": sorted(self._dead),
            "model": self._encoder.model_path.name if self._encoder is not None else None,
        }
        (directory / "dense.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, directory: Path, encoder: SentenceEncoder | None = None) -> DenseIndex:
        """Read an index written by `save`."""
        directory = Path(directory)
        missing = [
            f
            for f in ("dense.json", "dense.faiss", "vectors.npy", "present.npy")
            if not (directory / f).is_file()
        ]
        if missing:
            raise DataError(f"{directory} is not a saved dense index: missing {missing}")
        meta = json.loads((directory / "dense.json").read_text())
        if meta.get("format") != _FORMAT_VERSION:
            raise DataError(f"{directory}: unsupported dense index format {meta.get('format')}")
        index = cls(DenseConfig(**meta["config"]), encoder)
        index.dim = int(meta["dim"])
        index.kind = str(meta["kind"])
        index._index = faiss.read_index(str(directory / "dense.faiss"))
        index._vectors = np.load(directory / "vectors.npy")
        index._present = np.load(directory / "present.npy")
        index._dead = {int(i) for i in meta["dead"]}
        if index.kind == "hnsw":
            graph: Any = faiss.downcast_index(index._index.index)
            graph.hnsw.efSearch = index.config.hnsw_ef_search
        return index
