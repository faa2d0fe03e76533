"""`EngineDriver`: simulated shoppers against an in-process `Engine` (no HTTP).

What the server would serve, without a server: every browsing visit is
`Engine.recommend(user_id, k, model)` (the bundle's fallback chain; `model` for an arm whose
CONFIG names a model of the bundle, none for `default`), every search visit the bundle's
`SearchService` (personalised with the shopper's history ids, as the API does), and what
the shoppers did is appended to the engine's store, so the next answer reads it from the
event log like the server's does. The store must hold the world's catalogue
(`World.store` ingested, a bundle built). `random` arms are ranked here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.data.frames import conform
from shelfwise.experiments.simulate.policies import DEFAULT, RANDOM, RandomPolicy, Slates
from shelfwise.experiments.simulate.run import Shown, Visits
from shelfwise.experiments.simulate.world import World

__all__ = ["EngineDriver"]


class EngineDriver:
    """Lists from an in-process `Engine`, events appended to its store (see the module
    doc). `arms` maps an arm name to its CONFIG (`default`, `random` or a bundle model)."""

    def __init__(self, world: World, arms: Mapping[str, str], engine: Any) -> None:
        self.world, self.arms, self.engine = world, dict(arms), engine
        self._index = {str(item): i for i, item in enumerate(world.item_ids)}
        self._seq = 0
        self.appended = 0

    def _ids(self, items: list[dict[str, Any]], k: int) -> list[int]:
        found = (self._index.get(str(item.get("item_id"))) for item in items)
        return [i for i in found if i is not None][:k]

    def _slates(self, rows: list[list[int]], k: int) -> Shown:
        ids = np.full((len(rows), k), -1, dtype=np.int64)
        for r, found in enumerate(rows):
            ids[r, : len(found)] = found
        return Shown(Slates(ids))

    def show(self, arm: str, users: np.ndarray, k: int, rng: np.random.Generator) -> Shown:
        """The engine's recommendations for each visit (`random`: ranked here)."""
        config = self.arms[arm]
        if config == RANDOM:
            empty = sp.csr_matrix((users.size, self.world.n_items), dtype=np.float32)
            return Shown(RandomPolicy(self.world.n_items).slates(users, empty, k, rng))
        model = None if config == DEFAULT else config
        rows = [
            self._ids(self.engine.recommend(str(self.world.user_ids[u]), k, model).items, k)
            for u in users.tolist()
        ]
        return self._slates(rows, k)

    def search(
        self, arm: str, users: np.ndarray, queries: np.ndarray, k: int, rng: np.random.Generator
    ) -> Shown:
        """The bundle's search for each query, personalised with the shopper's history."""
        service = self.engine.bundle.search
        rows = []
        for user, query in zip(users.tolist(), queries.tolist(), strict=True):
            uid = str(self.world.user_ids[user])
            history = self.engine.user_events(uid)["item_id"].dropna().astype(str).tolist()
            answer = service.search(str(query), per_page=k, user=uid, history_ids=history)
            rows.append(self._ids(answer.items, k))
        return self._slates(rows, k)

    def record(self, visits: Visits) -> None:
        """Append the visits' events to the store; the engine reads them on its next answer."""
        frame = visits.events(self.world)
        if frame.empty:
            return
        ids = np.arange(self._seq, self._seq + len(frame))
        self._seq += len(frame)
        frame.insert(0, "event_id", [f"sim-engine-{i}" for i in ids])
        self.appended += self.engine.store.append_events(conform("events", frame))
        self.engine.log.mark_dirty()
