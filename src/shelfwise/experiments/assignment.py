"""Experiment definitions, sticky assignment and exploration.

An experiment has two or more variants with weights; each variant is a serving
configuration (`VariantConfig`): the recommendation model of the active bundle, search
settings (retrieval mode, query understanding, the learned re-ranker on or off), push
planning rules, and optionally exploration (epsilon-greedy or softmax over the top N) whose
propensities are logged with the impressions.

Assignment is deterministic and sticky without any state: the SHA-256 of
`"{salt}:{user_id}"` read as a number in [0, 1) picks the variant by cumulative weight, so
a user sees the same variant on every request, in every process, until the experiment
stops; changing the salt reshuffles.

Surfaces: the list types on which the variants differ (derived from the configs: search
settings -> search; a model -> recommendations; push rules -> push_plan; exploration -> the
variant's `explore_on`). A list is an *exposure* only on those surfaces: users who never
reach one are not in the analysis (a search experiment is judged on users who searched).
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shelfwise.profiles.push import PushConfig
from shelfwise.search.modes import SearchMode

ListType = Literal["search", "recommendations", "similar", "bought_together", "push_plan"]
LIST_TYPES: tuple[str, ...] = (
    "search",
    "recommendations",
    "similar",
    "bought_together",
    "push_plan",
)
EXPERIMENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Exploration(BaseModel):
    """Randomise the top of a list so off-policy estimates have propensities.

    - `epsilon`: each slot, top to bottom, keeps the best remaining item with probability
      1 - epsilon, else takes one of the remaining top-N items uniformly;
    - `softmax`: each slot samples among the remaining top-N items with probability
      proportional to exp(-rank / temperature) (Plackett-Luce over the served order).

    Two propensities are logged per shown item: the probability that it was put at its
    position given the items above it (`explore`; their product is the list's
    probability), and its marginal propensity, the probability that the policy shows it at
    that position at all (`marginal_propensities`; what per-slot off-policy estimators
    weigh by). Items below the top N keep their order (both 1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["epsilon", "softmax"] = "epsilon"
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="epsilon-greedy rate")
    temperature: float = Field(default=1.0, gt=0.0, le=1000.0, description="softmax scale")
    top_n: int = Field(default=10, ge=2, le=100, description="how deep the randomising goes")


class VariantConfig(BaseModel):
    """One variant: a name, a weight and what it changes (None: the server's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
    weight: float = Field(default=1.0, gt=0.0, le=1e6)
    model: str | None = Field(
        default=None, max_length=64, description="a recommendation model of the active bundle"
    )
    search_mode: SearchMode | None = None
    understand: bool | None = None
    rerank: bool | None = Field(default=None, description="the learned search re-ranker")
    push: PushConfig | None = Field(default=None, description="push planning rules")
    exploration: Exploration | None = None
    explore_on: list[ListType] = Field(
        default_factory=lambda: list[ListType](["recommendations"]),
        max_length=5,
        description="the lists the exploration randomises",
    )

    def surfaces(self) -> set[str]:
        """The list types this variant changes."""
        out: set[str] = set()
        if self.search_mode is not None or self.understand is not None or self.rerank is not None:
            out.add("search")
        if self.model is not None:
            out.add("recommendations")
        if self.push is not None:
            out.add("push_plan")
        if self.exploration is not None:
            out.update(self.explore_on)
        return out

    def search_settings(self) -> dict[str, Any]:
        """The search keyword arguments this variant sets."""
        out: dict[str, Any] = {}
        if self.search_mode is not None:
            out["mode"] = self.search_mode
        if self.understand is not None:
            out["understand"] = self.understand
        if self.rerank is not None:
            out["rerank"] = self.rerank
        return out


class ExperimentSpec(BaseModel):
    """An experiment as created through the API or the CLI."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: str = Field(pattern=EXPERIMENT_ID_PATTERN)
    description: str = Field(default="", max_length=1000)
    salt: str | None = Field(
        default=None, max_length=64, description="hash salt; default: the experiment id"
    )
    variants: list[VariantConfig] = Field(min_length=2, max_length=10)
    surfaces: list[ListType] | None = Field(
        default=None,
        max_length=5,
        description="the lists that count as exposures; default: those the variants change",
    )
    pre_period_days: int = Field(default=14, ge=0, le=365, description="CUPED pre-period")

    @field_validator("variants")
    @classmethod
    def _unique_names(cls, variants: list[VariantConfig]) -> list[VariantConfig]:
        names = [v.name for v in variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"variant names must be unique; repeated: {', '.join(repeated)}")
        return variants

    @model_validator(mode="after")
    def _changes_something(self) -> ExperimentSpec:
        if not self.exposure_surfaces():
            raise ValueError(
                "no variant changes anything (set model, search_mode, understand, rerank, "
                "push or exploration on at least one), and no surfaces are given"
            )
        return self

    @property
    def hash_salt(self) -> str:
        """The salt of the assignment hash."""
        return self.salt or self.experiment_id

    @property
    def control(self) -> VariantConfig:
        """The first variant: what the others are compared with."""
        return self.variants[0]

    def exposure_surfaces(self) -> set[str]:
        """The list types whose impressions are exposures (see the module doc)."""
        if self.surfaces is not None:
            return set(self.surfaces)
        out: set[str] = set()
        for variant in self.variants:
            out |= variant.surfaces()
        return out

    def weights(self) -> list[float]:
        """Variant weights, in order."""
        return [v.weight for v in self.variants]

    def variant(self, name: str) -> VariantConfig:
        """The variant called `name` (KeyError if none)."""
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)


def unit_hash(user_id: str, salt: str) -> float:
    """A uniform number in [0, 1) from SHA-256 of `"{salt}:{user_id}"` (first 8 bytes)."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(user_id: str, spec: ExperimentSpec) -> VariantConfig:
    """The variant of `user_id`: deterministic, sticky, in proportion to the weights."""
    u = unit_hash(user_id, spec.hash_salt)
    weights = np.asarray(spec.weights(), dtype=np.float64)
    edges = np.cumsum(weights) / weights.sum()
    index = int(np.searchsorted(edges, u, side="right"))
    return spec.variants[min(index, len(spec.variants) - 1)]


def explore(
    items: Sequence[Any], exploration: Exploration, rng: np.random.Generator
) -> tuple[list[Any], list[float]]:
    """Randomise the top of a served list (see `Exploration`).

    Returns (the shown list, the propensity of each shown item given the items above it).
    """
    order = list(items)
    n = len(order)
    top = min(exploration.top_n, n)
    remaining = list(range(top))  # indices into the served order, best first
    shown: list[Any] = []
    props: list[float] = []
    eps = exploration.epsilon
    for _ in range(top):
        k = len(remaining)
        if exploration.kind == "epsilon":
            # best remaining with 1 - eps, else uniform over the k remaining (the best too)
            explore_now = float(rng.random()) < eps
            pick = int(rng.integers(k)) if explore_now else 0
            prob = eps / k + (1.0 - eps if pick == 0 else 0.0)
        else:
            weights = [math.exp(-(r - remaining[0]) / exploration.temperature) for r in remaining]
            total = sum(weights)
            u, acc, pick = float(rng.random()) * total, 0.0, k - 1
            for j, w in enumerate(weights):
                acc += w
                if u < acc:
                    pick = j
                    break
            prob = weights[pick] / total
        shown.append(order[remaining[pick]])
        props.append(float(prob))
        remaining.pop(pick)
    shown.extend(order[top:])
    props.extend([1.0] * (n - top))
    return shown, props


EXACT_SOFTMAX_TOP_N = 12
"""Up to this `top_n` the softmax marginals are exact (a sum over the 2^N sets of items
already placed); deeper ones are estimated from `SOFTMAX_DRAWS` sampled lists."""
SOFTMAX_DRAWS = 200_000


@functools.lru_cache(maxsize=64)
def _marginal_matrix(kind: str, epsilon: float, temperature: float, n: int) -> np.ndarray:
    """P(the item the policy ranked r-th is shown at position j), n x n (read-only)."""
    m = np.zeros((n, n))
    if kind == "epsilon":
        # per rank r: a = how many better-ranked items are still unplaced while r is
        for r in range(n):
            alive = np.zeros(r + 1)  # P(r unplaced and a better ones left), a = 0..r
            alive[r] = 1.0
            for j in range(n):
                k = n - j
                a = np.arange(r + 1)
                pick = np.where(a == 0, 1.0 - epsilon + epsilon / k, epsilon / k)
                m[r, j] = float((alive * pick).sum())
                fewer = np.where(a > 0, 1.0 - epsilon + epsilon * a / k, 0.0)
                same = np.maximum(epsilon * (k - 1 - a) / k, 0.0)
                nxt = alive * same
                nxt[:-1] += (alive * fewer)[1:]
                alive = nxt
    elif n <= EXACT_SOFTMAX_TOP_N:
        w = np.exp(-np.arange(n) / temperature)
        reach = np.zeros(1 << n)
        reach[0] = 1.0
        for placed in range(1 << n):
            if reach[placed] == 0.0:
                continue
            free = [i for i in range(n) if not placed >> i & 1]
            j = n - len(free)
            total = float(w[free].sum())
            for i in free:
                p = reach[placed] * w[i] / total
                m[i, j] += p
                reach[placed | 1 << i] += p
    else:  # Plackett-Luce lists are the ranks sorted by log-weight + Gumbel noise
        rng = np.random.default_rng(0)
        logw = -np.arange(n) / temperature
        for start in range(0, SOFTMAX_DRAWS, 20_000):
            size = min(20_000, SOFTMAX_DRAWS - start)
            order = np.argsort(-(logw + rng.gumbel(size=(size, n))), axis=1)
            np.add.at(m, (order, np.broadcast_to(np.arange(n), order.shape)), 1.0)
        m /= SOFTMAX_DRAWS
    m.setflags(write=False)
    return m


def marginal_propensities(order: Sequence[int], n: int, exploration: Exploration) -> list[float]:
    """The marginal propensity of each shown item: the probability that the exploring
    policy shows the item at that position at all. `order` is what `explore` returned for
    `range(n)` (the served rank shown at each position); exact for `epsilon` and for
    `softmax` up to `EXACT_SOFTMAX_TOP_N` (deeper softmax: estimated, see there)."""
    top = min(exploration.top_n, n)
    m = _marginal_matrix(exploration.kind, exploration.epsilon, exploration.temperature, top)
    return [float(m[r, j]) if j < top else 1.0 for j, r in enumerate(order)]


def list_propensity(props: Sequence[float]) -> float:
    """The probability of the whole shown list: the product of the slot propensities."""
    return float(math.prod(props)) if props else 1.0
