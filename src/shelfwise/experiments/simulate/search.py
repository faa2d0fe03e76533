"""`RerankDriver`: simulated searches with and without the learned re-ranker.

One `SearchService` is built over the world's catalogue and generated history with its
learned re-ranker (`build_search_service(..., rerank=True)`, the LightGBM
`PersonalisedReranker` trained on the history's searches); every arm searches through that
same service and differs only in `rerank` (`SearchService.search(..., rerank=False)` leaves
the re-ranker out, as an experiment's variant does). Searches are personalised with each
shopper's current history (the generated events plus what they did in the simulation,
as `LibraryDriver` keeps it), strongest interactions first. Browsing visits, if the
shopper model has any (`search_rate` < 1), are answered by the arm's `Policy` when one is
given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp

from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.policies import Policy, Slates
from shelfwise.experiments.simulate.run import LibraryDriver, Shown
from shelfwise.experiments.simulate.world import World

__all__ = ["RerankDriver"]

log = logging.getLogger(__name__)


class RerankDriver(LibraryDriver):
    """Search arms `{name: rerank on?}` over one service (see the module doc); `service`
    defaults to one built here (it must hold the world's items, row i = item index i)."""

    def __init__(
        self,
        world: World,
        rerank: Mapping[str, bool],
        train: sp.csr_matrix,
        policies: Mapping[str, Policy] | None = None,
        service: Any = None,
        half_life_days: float | None = None,
    ) -> None:
        super().__init__(world, policies or {}, train, half_life_days)
        if not rerank:
            raise ConfigError("rerank needs at least one arm")
        self.rerank = {str(arm): bool(flag) for arm, flag in rerank.items()}
        if service is None:
            from shelfwise.search.build import build_search_service

            log.info("indexing %d items and training the re-ranker", world.n_items)
            service = build_search_service(world.store.items, world.history, rerank=True)
        if any(self.rerank.values()) and service.reranker is None:
            raise ConfigError(
                "the search service has no learned re-ranker (the history holds no searches "
                "that led to a click, cart or purchase)"
            )
        self._search = service

    @property
    def service(self) -> Any:
        """The search service every arm shares."""
        return self._search

    def show(self, arm: str, users: np.ndarray, k: int, rng: np.random.Generator) -> Shown:
        """A browsing visit: the arm's policy, when it has one."""
        if arm not in self.policies:
            raise ConfigError(
                f"arm {arm!r} has no browsing policy: simulate searches only (search_rate=1) "
                "or give it one"
            )
        return super().show(arm, users, k, rng)

    def search(
        self, arm: str, users: np.ndarray, queries: np.ndarray, k: int, rng: np.random.Generator
    ) -> Shown:
        """The first k results of each query, re-ranked when the arm says so."""
        if arm not in self.rerank:
            raise ConfigError(f"unknown search arm {arm!r}; known: {', '.join(self.rerank)}")
        flag = self.rerank[arm]
        histories = self.histories(users)
        ids = np.full((users.size, k), -1, dtype=np.int64)
        for row, (user, query) in enumerate(zip(users.tolist(), queries.tolist(), strict=True)):
            lo, hi = histories.indptr[row], histories.indptr[row + 1]
            weights = np.asarray(histories.data[lo:hi], dtype=np.float64)
            order = np.argsort(-weights, kind="stable")
            answer = self._search.search(
                str(query),
                per_page=k,
                user=str(self.world.user_ids[user]),
                history=np.asarray(histories.indices[lo:hi], dtype=np.int64)[order],
                history_weights=weights[order],
                rerank=flag,
            )
            found = np.asarray(answer.rows[:k], dtype=np.int64)
            ids[row, : found.size] = found
        return Shown(Slates(ids))
