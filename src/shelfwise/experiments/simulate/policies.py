"""What a simulated shopper is shown: policies that turn histories into slates.

A `Policy` answers a batch of visits at once: `slates(users, histories, k, rng)` returns the
item ids shown (users x k, -1 for an empty slot) and, for a stochastic policy, the
probability that each shown item was put at its position (its propensity), which
off-policy evaluation needs. Histories are the rows of a users x items CSR matrix of
weighted interactions, including everything the shopper did in the simulation so far, so a
history-based model reacts to today's clicks without retraining; seen items are not shown
again, as the server does.

* `RecommenderPolicy`: any model of the registry (`popularity`, `itemknn`, `ease`, ...).
* `RandomPolicy`: a uniformly random ranking of the unseen items.
* `EpsilonGreedyPolicy`: with probability epsilon a uniformly random permutation of
  another policy's top N, else its ranking: propensities are exact.
* `fit_policy(name, world)`: a registry model fitted on the world's history, or `random`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from shelfwise.data.matrix import build_interactions
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.world import World
from shelfwise.recommenders import Recommender, available, create
from shelfwise.types import top_k_rows

__all__ = [
    "DEFAULT",
    "RANDOM",
    "EpsilonGreedyPolicy",
    "Policy",
    "RandomPolicy",
    "RecommenderPolicy",
    "Slates",
    "fit_policy",
    "history_matrix",
    "library_policies",
    "policy_names",
]

log = logging.getLogger(__name__)

RANDOM = "random"
"""The policy name of `RandomPolicy` (not a registry model: it learns nothing)."""


@dataclass(frozen=True)
class Slates:
    """Items shown per visit (rows x positions, -1 = empty) and, for a stochastic policy,
    each slot's propensity: P(this item at this position | the visit)."""

    ids: np.ndarray
    propensities: np.ndarray | None = None


class Policy(Protocol):
    """Anything that fills slates for a batch of visits."""

    name: str

    def slates(
        self, users: np.ndarray, histories: sp.csr_matrix, k: int, rng: np.random.Generator
    ) -> Slates:
        """The k items shown to each of `users` (rows of `histories`)."""
        ...


def _seen_mask(histories: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    rows = np.repeat(np.arange(histories.shape[0]), np.diff(histories.indptr))
    return rows, np.asarray(histories.indices, dtype=np.int64)


@dataclass
class RecommenderPolicy:
    """A fitted registry model, ranking from each shopper's history (seen items excluded)."""

    model: Recommender
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or self.model.name

    def slates(
        self, users: np.ndarray, histories: sp.csr_matrix, k: int, rng: np.random.Generator
    ) -> Slates:
        """The model's top k (deterministic: no propensities)."""
        res = self.model.recommend_batch(histories, k, exclude_seen=True, users=users)
        return Slates(res.ids)


@dataclass
class RandomPolicy:
    """A uniformly random ranking of the items the shopper has not seen."""

    n_items: int
    name: str = RANDOM

    def slates(
        self, users: np.ndarray, histories: sp.csr_matrix, k: int, rng: np.random.Generator
    ) -> Slates:
        """k distinct unseen items per row; each has propensity 1 / unseen items."""
        s = rng.random((histories.shape[0], self.n_items)).astype(np.float32)
        rows, cols = _seen_mask(histories)
        s[rows, cols] = -np.inf
        res = top_k_rows(s, k)
        unseen = self.n_items - np.diff(histories.indptr)
        prop = np.where(res.ids >= 0, 1.0 / np.maximum(unseen, 1)[:, None], 0.0)
        return Slates(res.ids, prop)


@dataclass
class EpsilonGreedyPolicy:
    """Explore around a deterministic policy: with probability `epsilon` a visit is shown a
    uniformly random permutation of the base policy's top `top_n` (cut to k), otherwise the
    base ranking. The propensity of item i at position p is exact:
    (1 - epsilon) [base puts i at p] + epsilon / top_n for every i of the base top N."""

    base: Policy
    epsilon: float = 0.2
    top_n: int = 30
    name: str = ""

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 1.0:
            raise ConfigError(f"epsilon must be in (0, 1], got {self.epsilon}")
        if self.top_n < 1:
            raise ConfigError(f"top_n must be >= 1, got {self.top_n}")
        self.name = self.name or f"{self.base.name}+eps{self.epsilon:g}@{self.top_n}"

    def candidates(
        self, users: np.ndarray, histories: sp.csr_matrix, rng: np.random.Generator
    ) -> np.ndarray:
        """The base policy's top N per row (-1 padded)."""
        n = max(self.top_n, 1)
        return self.base.slates(users, histories, n, rng).ids

    def slates(
        self, users: np.ndarray, histories: sp.csr_matrix, k: int, rng: np.random.Generator
    ) -> Slates:
        """Slates with exact per-slot propensities (see the class doc)."""
        if k > self.top_n:
            raise ConfigError(f"slate size {k} exceeds the exploration pool top_n={self.top_n}")
        pool = self.candidates(users, histories, rng)
        return self.explore(pool, k, rng)

    def explore(self, pool: np.ndarray, k: int, rng: np.random.Generator) -> Slates:
        """Slates drawn from candidate pools (rows of the base ranking, -1 padded)."""
        n_rows, width = pool.shape
        explore = np.asarray(rng.random(n_rows) < self.epsilon)
        keys = rng.random((n_rows, width))
        keys[pool < 0] = 2.0  # empty slots stay at the end
        shuffled = np.take_along_axis(pool, np.argsort(keys, axis=1), axis=1)
        ids = np.where(explore[:, None], shuffled[:, :k], pool[:, :k])
        size = np.maximum((pool >= 0).sum(axis=1), 1)[:, None]
        greedy = (ids == pool[:, :k]).astype(np.float64)
        prop = (1.0 - self.epsilon) * greedy + self.epsilon / size
        return Slates(ids, np.where(ids >= 0, prop, 0.0))


def history_matrix(world: World, half_life_days: float | None = None) -> sp.csr_matrix:
    """The world's generated events as a users x items matrix (the library's default event
    weights), rows and columns in world order; with `half_life_days`, decayed to the start
    of the simulation (an event that many days before it counts half)."""
    from datetime import UTC, datetime

    from shelfwise.data.matrix import InteractionWeights

    users = Vocabulary(world.user_ids.tolist(), name="user_id")
    items = Vocabulary(world.item_ids.tolist(), name="item_id")
    weights = InteractionWeights(half_life_days=half_life_days)
    now = datetime.fromtimestamp(world.start, tz=UTC)
    return build_interactions(
        world.history, weights=weights, users=users, items=items, now=now
    ).matrix


def policy_names() -> list[str]:
    """Names a policy CONFIG may use in-process: the registry's models and `random`."""
    return sorted({*available(), RANDOM})


def fit_policy(
    name: str,
    world: World,
    train: sp.csr_matrix | None = None,
    params: dict[str, Any] | None = None,
    label: str = "",
) -> RecommenderPolicy | RandomPolicy:
    """`random`, or the registry model `name` (with `params`) fitted on `train` (default:
    the world's history) with the world's catalogue."""
    if name == RANDOM:
        return RandomPolicy(world.n_items, name=label or RANDOM)
    if name not in available():
        raise ConfigError(
            f"unknown policy model {name!r}; choose one of {', '.join(policy_names())}"
        )
    matrix = history_matrix(world) if train is None else train
    model = create(name, **(params or {}))
    log.info("fitting %s on %d users x %d items", name, *matrix.shape)
    model.fit(matrix, world.store.items)
    return RecommenderPolicy(model, name=label or name)


DEFAULT = "default"
"""The CONFIG of what the server would serve: in-process, the bundle's default
personalisation model with the bundle's parameters (without the fallback chain's other
steps, which only fill what the model cannot; the HTTP driver serves the real chain)."""


def library_policies(
    world: World,
    configs: dict[str, str],
    params: dict[str, dict[str, Any]] | None = None,
    train: sp.csr_matrix | None = None,
) -> dict[str, Policy]:
    """Fitted in-process policies for arms `{name: CONFIG}`: `default`, `random` or a
    registry model (with its `params[model]`), each fitted once on `train` (default: the
    world's history, `history_matrix`)."""
    from shelfwise.artifacts.bundle import DEFAULT_MODELS
    from shelfwise.serving.config import EngineConfig

    params = params or {}
    train = history_matrix(world) if train is None else train
    fitted: dict[tuple[str, str], Policy] = {}
    out: dict[str, Policy] = {}
    for arm, config in configs.items():
        model = config
        model_params = dict(params.get(config, {}))
        if config == DEFAULT:
            model = EngineConfig().personalisation_model
            model_params = {**DEFAULT_MODELS.get(model, {}), **params.get(model, {})}
        key = (model, repr(sorted(model_params.items())))
        if key not in fitted:
            fitted[key] = fit_policy(model, world, train, model_params, label=arm)
        out[arm] = fitted[key]
    return out
