"""Readiness: what a starting server still has to do before `/readyz` answers 200.

A server starts on the registry's active bundle (whatever arrived since it was built: the
engine applies newer events and catalogue changes online), then warms up: the bundle's
search service is brought up to the live catalogue (`served_search`), and one search, one
autocomplete, one recommendation, one similar-items and one bought-together answer are
computed, so every lazily built structure behind the routes that answer from the bundle
(parsers, typo tables, item neighbours, basket counts) exists before the first real
request. Until every step is done `/readyz` answers 503 naming the steps still pending.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shelfwise.search.trees import TreeEnsemble
from shelfwise.serve.search import served_search
from shelfwise.serving import Engine
from shelfwise.settings import Settings

__all__ = ["WARMUP_STEPS", "Readiness", "use_lightgbm", "warm_up"]

log = logging.getLogger(__name__)

#: The warm-up steps, in the order they run.
WARMUP_STEPS: tuple[str, ...] = (
    "search",
    "autocomplete",
    "recommendations",
    "similar",
    "bought_together",
)


class Readiness:
    """The start-up steps still pending, the one that failed, and their timings."""

    def __init__(self, steps: tuple[str, ...] = ("bundle", *WARMUP_STEPS)) -> None:
        self._lock = threading.Lock()
        self._pending = list(steps)
        self.failed: str | None = None
        self.seconds: dict[str, float] = {}

    @property
    def pending(self) -> list[str]:
        """The steps not done yet, in order."""
        with self._lock:
            return list(self._pending)

    @property
    def ready(self) -> bool:
        """Every step done and none failed."""
        with self._lock:
            return not self._pending and self.failed is None

    def done(self, step: str, seconds: float = 0.0) -> None:
        """Mark `step` done (taking `seconds`)."""
        with self._lock:
            if step in self._pending:
                self._pending.remove(step)
            self.seconds[step] = round(seconds, 3)

    def fail(self, step: str, error: BaseException) -> None:
        """Record that `step` failed: the server stays unready, saying why."""
        with self._lock:
            self.failed = f"{step}: {type(error).__name__}: {error}"

    def detail(self) -> dict[str, object]:
        """What a 503 of `/readyz` says: the pending steps, and the failure if any."""
        with self._lock:
            state = "failed" if self.failed else "starting"
            out: dict[str, object] = {"detail": state, "pending": list(self._pending)}
            if self.failed:
                out["error"] = self.failed
            return out


def warm_up(
    engine: Engine, settings: Settings, readiness: Readiness, background: bool = False
) -> None:
    """Run every warm-up step over `engine` (see the module doc), marking each done in
    `readiness`. Nothing raises out of it (it runs in a server's background thread, or in
    an embedded app's start-up): a failure, also in choosing what to ask, is logged and
    recorded against the first step not done, and the server stays up and unready, its
    `/readyz` naming the reason. `background` (a server) switches dense retrieval on
    after the warm-up, in a thread (`serve.search.served_search`): search answers from
    the bundle at once, lexically, until it is on."""
    try:
        item, query, user = _requests(engine)
    except Exception as exc:
        log.error("warm-up failed before its first step: %s", exc)
        readiness.fail(WARMUP_STEPS[0], exc)
        return

    def search() -> None:
        service = served_search(
            engine, settings.search.mode, settings.paths.embeddings, background=background
        )
        history, weights = engine.user_history(user) if user else (None, None)
        service.search(query, user=user, history=history, history_weights=weights)
        service.search(query)

    def autocomplete() -> None:
        served_search(engine, settings.search.mode, settings.paths.embeddings).autocomplete(
            query[:3] or "a", 8
        )

    def recommendations() -> None:
        engine.recommend(user or "shelfwise-warm-up")

    def similar() -> None:
        if item is not None:
            engine.similar(item)

    def bought_together() -> None:
        engine.copurchase()
        if item is not None:
            engine.bought_together(item)

    steps: dict[str, Callable[[], None]] = {
        "search": search,
        "autocomplete": autocomplete,
        "recommendations": recommendations,
        "similar": similar,
        "bought_together": bought_together,
    }
    for name in WARMUP_STEPS:
        t0 = time.perf_counter()
        try:
            steps[name]()
        except Exception as exc:  # the server must say why it is not ready, not die
            log.error("warm-up step %s failed: %s", name, exc)
            readiness.fail(name, exc)
            return
        readiness.done(name, time.perf_counter() - t0)
    log.info("warmed up in %.2fs: %s", sum(readiness.seconds.values()), readiness.seconds)


def _requests(engine: Engine) -> tuple[str | None, str, str | None]:
    """What the warm-up asks: (an item, a query word from its title, a user with events)."""
    cat = engine.catalog
    alive = cat.item_id[cat.alive]
    item = str(alive[0]) if len(alive) else None
    title = ""
    if item is not None:
        row = cat.frame.iloc[int(cat.alive.nonzero()[0][0])]
        title = str(row.get("title") or "")
    query = title.split()[0] if title.split() else "a"
    return item, query, _some_user(engine)


def _some_user(engine: Engine) -> str | None:
    """A user with events (so the personalised path is warmed), if the store has one."""
    events = engine.store.events(limit=1, newest_first=True)
    if events.empty:
        return None
    return str(events["user_id"].iloc[0])


def use_lightgbm(engine: Engine) -> bool:
    """Swap LightGBM's own booster in for the search re-ranker's trees when the server
    read them as numpy arrays at start (`search.trees.TreeEnsemble`, the same scores;
    LightGBM's C++ walk is faster per request, its import too slow for the start). Runs
    after the warm-up, in its thread; a failure keeps the numpy trees. True if swapped."""
    reranker = engine.bundle.search.reranker
    model: Any = getattr(reranker, "model", reranker)
    ensemble = getattr(model, "booster", None)
    if not isinstance(ensemble, TreeEnsemble):
        return False
    t0 = time.perf_counter()
    try:
        import lightgbm as lgb

        booster = lgb.Booster(model_str=ensemble.text)
    except Exception as exc:  # the numpy trees keep answering, with the same scores
        log.warning("LightGBM unavailable for the search re-ranker (%s); numpy trees stay", exc)
        return False
    model.booster = booster
    log.info("search re-ranker on LightGBM in %.2fs", time.perf_counter() - t0)
    return True
