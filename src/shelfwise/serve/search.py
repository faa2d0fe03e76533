"""Search for the API: the active bundle's `SearchService`, kept in step with the live
catalogue, and the shaping of its answers into the API's JSON.

The bundle carries the search service it was built with (row i = catalogue index i, the
learned re-ranker included); the server loads it with the bundle instead of indexing the
catalogue again. `served_search(engine, mode)` hands it out: the first time for a bundle
it applies the catalogue changes made since the bundle was built (`SearchService.
sync_catalog`) and switches dense retrieval on for `mode` hybrid or semantic; after that
`watch_catalog(engine)` applies every catalogue change as it happens, so a new or changed
item is searchable at once and rows keep meaning catalogue indices (a user's history goes
to the service as indices). A hot-swapped bundle brings its own service, prepared the same
way on first use.

Dense retrieval (`SearchService.enable_dense`: MiniLM vectors of every live item, read
from the on-disk embedding cache, only unseen texts embedded) failing to start leaves the
service lexical; requests for semantic or hybrid search are then answered lexically with a
`notice` saying why.

`SearchCache` keeps the answers of searches without a user (the same query, filters,
sort, page, facets and settings give the same page as long as the catalogue does not
change): an LRU per service, emptied whenever the service's catalogue `revision`, its
configuration, dense retriever, re-ranker or index changes, so an item upsert or delete is
in the very next answer. Personalised searches are never cached.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import pandas as pd

from shelfwise.search.service import SearchResponse, SearchService
from shelfwise.serving import Engine

__all__ = ["SearchCache", "is_prepared", "search_answer", "served_search", "watch_catalog"]

log = logging.getLogger(__name__)

_LOCK = threading.RLock()
#: Services already brought up to their engine's catalogue -> why dense retrieval failed
#: to start (None when it is on or was not asked for).
_PREPARED: weakref.WeakKeyDictionary[SearchService, str | None] = weakref.WeakKeyDictionary()
_WATCHED: weakref.WeakSet[Engine] = weakref.WeakSet()


def served_search(
    engine: Engine,
    mode: str = "lexical",
    cache_dir: Path | None = None,
    background: bool = False,
) -> SearchService:
    """The active bundle's search service, in step with the engine's live catalogue
    (prepared on first use: see the module doc). Dense retrieval (hybrid or semantic
    `mode`; `auto` only for a bundle built with dense search) embeds the catalogue through
    the embedding cache in `cache_dir`; with `background` (a starting server) it is
    switched on in a thread, lexical search answering meanwhile (with a notice when
    hybrid or semantic was asked for), so that loading the model and embedding the items
    added since the build do not delay the first answer."""
    service = engine.bundle.search
    if service not in _PREPARED:
        with _LOCK:
            if service not in _PREPARED:
                _PREPARED[service] = _prepare(service, engine, mode, cache_dir, background)
    return service


#: What `dense_error` says while dense retrieval is being switched on in the background.
STARTING = "is still starting (the embedding model and the catalogue's vectors are loading)"


def is_prepared(engine: Engine) -> bool:
    """Whether the active bundle's search service is already prepared (`served_search`
    then answers at once)."""
    return engine.bundle.search in _PREPARED


def dense_error(service: SearchService) -> str | None:
    """Why dense retrieval is off on `service` although it was asked for, if it is."""
    return _PREPARED.get(service)


def _prepare(
    service: SearchService,
    engine: Engine,
    mode: str,
    cache_dir: Path | None,
    background: bool = False,
) -> str | None:
    t0 = time.perf_counter()
    cat = engine.catalog
    done = service.sync_catalog(cat.frame, cat.alive)
    log.info(
        "search service of bundle %s: %d items re-indexed, %d removed since the build (%.2fs)",
        engine.model_version,
        done["upserted"],
        done["deleted"],
        time.perf_counter() - t0,
    )
    service.config = service.config.model_copy(update={"mode": mode})
    built_dense = bool(engine.bundle.manifest.get("search", {}).get("dense", False))
    if mode == "lexical" or (mode == "auto" and not built_dense):
        return None  # auto on a lexical bundle: lexical, as it was built and trained
    if not background:
        return _enable_dense(service, mode, cache_dir)

    def enable() -> None:
        error = _enable_dense(service, mode, cache_dir)
        with _LOCK:
            _PREPARED[service] = error

    threading.Thread(target=enable, name="shelfwise-dense", daemon=True).start()
    return STARTING


def _enable_dense(service: SearchService, mode: str, cache_dir: Path | None) -> str | None:
    """Switch dense retrieval on; the error (logged) when it cannot be, None when it is."""
    t0 = time.perf_counter()
    try:
        service.enable_dense(cache_dir=cache_dir)
    except Exception as exc:  # search must degrade, not take the API down
        log.warning("dense retrieval unavailable (%s); search stays lexical", exc)
        service.config = service.config.model_copy(update={"mode": "lexical"})
        return f"failed to start: {type(exc).__name__}: {exc}"
    reranker = service.reranker
    if reranker is not None and not getattr(reranker, "uses_dense", False):
        log.warning(
            "the bundle's search re-ranker was trained without dense features; rebuild the "
            "bundle with `shelfwise build --search-mode %s --rebuild` to train it with them",
            mode,
        )
    log.info("dense retrieval on (%s search) in %.1fs", mode, time.perf_counter() - t0)
    return None


def watch_catalog(engine: Engine) -> None:
    """Apply every catalogue change of `engine` to its active bundle's search service
    (once per engine, however many apps serve it)."""
    with _LOCK:
        if engine in _WATCHED:
            return
        _WATCHED.add(engine)
    ref = weakref.ref(engine)

    def on_catalog(frame: pd.DataFrame, deleted: list[str]) -> None:
        watched = ref()
        if watched is not None:
            _apply(watched, frame, deleted)

    engine.add_catalog_listener(on_catalog)


def _apply(engine: Engine, frame: pd.DataFrame, deleted: list[str]) -> None:
    """Bring the service up to the catalogue for the rows of this change (and any rows
    appended since), read from the catalogue itself under the lock: listeners of
    concurrent writes may run in any order, the catalogue only moves forward."""
    with _LOCK:
        service = engine.bundle.search
        if service not in _PREPARED:
            return  # preparing it reads the whole catalogue, this change included
        cat = engine.catalog
        ids = [*frame["item_id"].astype(str).tolist(), *deleted] if len(frame) else deleted
        idx = cat.vocab.encode(list(ids), unknown="minus_one")
        service.sync_catalog(cat.frame, cat.alive, rows=idx[idx >= 0])


def search_answer(service: SearchService, res: SearchResponse) -> dict[str, Any]:
    """A `SearchResponse` as the fields of the API's `SearchOut` (items, total, facets,
    engine, mode, notice)."""
    info = res.query_info
    used = info.get("mode")
    notice = info.get("notice")
    failed = dense_error(service)
    if notice and failed:
        notice = f"{notice} (dense retrieval {failed})"
    engine = "service"
    if used in ("semantic", "hybrid"):
        engine += f"+{used}"
    if info.get("reranked"):
        engine += "+ltr"
    items = [
        {
            "item_id": i["item_id"],
            "title": i["title"],
            "category": i["category"],
            "brand": i["brand"],
            "price": i["price"],
            "score": i["score"],
            "source": "search",
        }
        for i in res.items
    ]
    facets = {
        name: [{"value": str(v["value"]), "count": int(v["count"])} for v in values]
        for name, values in res.facets.items()
    }
    return {
        "total": res.total,
        "items": items,
        "facets": facets,
        "engine": engine,
        "mode": used,
        "notice": notice,
        "query_info": info,
    }


class SearchCache:
    """An LRU of non-personalised search answers (`SearchResponse`) of one service at a
    time, keyed by everything the answer depends on besides the service's state (the
    caller's `key`: query, filters, sort, page, per page, facets, mode, understanding,
    re-ranking, spelling correction).

    The service's state is the stamp: its catalogue `revision` (bumped by every upsert,
    delete and catalogue sync), its `config`, `dense`, `reranker` and `index` objects and
    why dense retrieval is off. A lookup whose stamp differs from the entries' empties the
    cache first (counted in `invalidations`), so an answer never outlives the catalogue it
    was computed on. `size` 0 turns the cache off (every lookup a miss, nothing kept).
    Thread-safe; a hit is a shallow copy with `query_info["took_ms"]` of the lookup and
    `query_info["cached"]` true, so callers may not mutate what they get."""

    def __init__(self, size: int = 4096) -> None:
        self.size = max(0, int(size))
        self._entries: OrderedDict[Hashable, SearchResponse] = OrderedDict()
        self._stamp: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.invalidations = 0

    @staticmethod
    def _stamp_of(service: SearchService) -> tuple[Any, ...]:
        # the objects by identity (a swapped one is another state), then the values
        objects = (service, service.config, service.dense, service.reranker, service.index)
        return (*objects, (service.revision, dense_error(service)))

    def _current(self, stamp: tuple[Any, ...]) -> bool:
        old = self._stamp
        if old is None:
            return False
        *objects, values = stamp
        return all(a is b for a, b in zip(old[:-1], objects, strict=True)) and old[-1] == values

    def get(
        self, service: SearchService, key: Hashable, compute: Callable[[], SearchResponse]
    ) -> SearchResponse:
        """The cached answer for `key` on `service` as it is now, else `compute()` (kept
        when the service did not change while it ran)."""
        if self.size == 0:
            with self._lock:
                self.misses += 1
            return compute()
        t0 = time.perf_counter()
        stamp = self._stamp_of(service)
        with self._lock:
            if not self._current(stamp):
                if self._entries:
                    self.invalidations += 1
                self._entries.clear()
                self._stamp = stamp
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
        if hit is not None:
            took = round((time.perf_counter() - t0) * 1000.0, 3)
            info = {**hit.query_info, "took_ms": took, "cached": True}
            return dataclasses.replace(hit, query_info=info)
        res = compute()
        with self._lock:
            # a change while computing: the answer may be of either state, keep none
            if self._current(stamp) and self._current(self._stamp_of(service)):
                self._entries[key] = res
                if len(self._entries) > self.size:
                    self._entries.popitem(last=False)
        return res

    def clear(self) -> None:
        """Forget every answer (the counters stay)."""
        with self._lock:
            self._entries.clear()
            self._stamp = None

    def stats(self) -> dict[str, float | int]:
        """hits, misses, hit_rate, entries, size, invalidations."""
        with self._lock:
            total = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "hit_rate": round(self.hits / total, 4) if total else 0.0,
                "entries": len(self._entries),
                "size": self.size,
                "invalidations": self.invalidations,
            }
