"""Hybrid recommender: blends the scores of other registered models.

`models` maps a component key to its parameters; the key is a registered model name,
optionally with a `:label` suffix to use one model twice (`"tfidf:titles"`). Two blends:

- `weighted`: each component's scores are normalised per user (`minmax` to [0, 1] or
  `zscore`), then summed with `weights`. Without explicit weights, `fit(...,
  validation=...)` fits them: a grid over the simplex (step 1/`grid_steps`, up to three
  components; coordinate ascent on the same grid for more) maximising NDCG@10 on up to
  `validation_users` validation users. Without a validation matrix (or with an empty one)
  `fit` carves one out of the training interactions: `validation_fraction` of each user's
  items (users with 3 or more; `data.splits.carve_validation`), drawn with `seed`; the
  components are fitted on the rest, the weights fitted on the held-out part, then the
  components are refitted on everything.
  `validation_fraction=0` skips this and weighs every component the same.
- `rrf`: reciprocal rank fusion, sum over components of weight / (`rrf_k` + rank), ranks
  counted from 1 in each component's order (ties by item index); weights default to 1.

In both, the statistics (min/max, mean/std, ranks) are taken over the items the row has
not interacted with, since those are what gets recommended; history items are ranked
after all others in `rrf`.

The effective weights (`fitted_weights`) are saved in arrays.npz beside the config, which
keeps the weights as given (None when they were fitted); each component is saved by its own
`save` in `components/<key>` and read back with `load_model`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, field_validator, model_validator

from shelfwise.data.splits import carve_validation
from shelfwise.errors import ConfigError, DataError
from shelfwise.evaluation.metrics import ndcg_of_scores
from shelfwise.recommenders.base import (
    ModelConfig,
    Recommender,
    as_csr,
    create,
    load_model,
    register,
)
from shelfwise.recommenders.space import Choice, IntRange, SearchSpace, when

Method = Literal["weighted", "rrf"]
Normalise = Literal["minmax", "zscore"]


def _default_models() -> dict[str, dict[str, Any]]:
    """Item-kNN (collaborative, scales to large catalogs) + TF-IDF (content, cold start)."""
    return {"itemknn": {}, "tfidf": {}}


class HybridConfig(ModelConfig):
    """Components, blend method, weights and the weight search settings."""

    models: dict[str, dict[str, Any]] = Field(default_factory=_default_models)
    method: Method = "weighted"
    weights: dict[str, float] | None = None
    rrf_k: int = Field(default=60, ge=1)
    normalise: Normalise = "minmax"
    grid_steps: int = Field(default=10, ge=1, le=100)
    validation_users: int = Field(default=1000, ge=1)
    validation_fraction: float = Field(default=0.1, ge=0.0, lt=0.5)
    seed: int = 0

    @field_validator("models")
    @classmethod
    def _check_models(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not value:
            raise ValueError("models must name at least one component")
        for key in value:
            if not key.split(":", 1)[0] or "/" in key or "\\" in key:
                raise ValueError(f"bad component key {key!r}: use '<model>' or '<model>:<label>'")
        return value

    @model_validator(mode="after")
    def _check_weights(self) -> HybridConfig:
        if self.weights is not None:
            unknown = sorted(set(self.weights) - set(self.models))
            if unknown:
                raise ValueError(f"weights name unknown components {unknown}")
            bad = {k: w for k, w in self.weights.items() if not np.isfinite(w) or w < 0}
            if bad:
                raise ValueError(f"weights must be finite and >= 0, got {bad}")
        return self

    # the blend only: the components keep their defaults
    SEARCH_SPACE: ClassVar[SearchSpace] = {
        "method": Choice(("weighted", "rrf")),
        "rrf_k": IntRange(5, 200, log=True, when=when("method", "rrf")),
        "normalise": Choice(("minmax", "zscore"), when=when("method", "weighted")),
    }


def model_name(key: str) -> str:
    """The registered model name of a component key (`"tfidf:titles"` -> `"tfidf"`)."""
    return key.split(":", 1)[0]


def _folder(key: str) -> str:
    return key.replace(":", "-")


# -- blending (pure functions, also used by the tests) ------------------------------------------
def _history_mask(histories: sp.csr_matrix | None, shape: tuple[int, int]) -> np.ndarray:
    """True where a row has interacted with the item."""
    mask = np.zeros(shape, dtype=bool)
    if histories is not None and histories.nnz:
        h = sp.csr_matrix(histories)
        rows = np.repeat(np.arange(h.shape[0]), np.diff(h.indptr))
        mask[rows, h.indices] = True
    return mask


def normalise_scores(
    scores: np.ndarray, how: Normalise, seen: np.ndarray | None = None
) -> np.ndarray:
    """Per-row `minmax` (to [0, 1]) or `zscore` normalisation, statistics over unseen items.

    Non-finite scores become 0 first; a row whose unseen items all score the same becomes 0.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    use = np.ones_like(s, dtype=bool) if seen is None else ~seen
    use[use.sum(axis=1) == 0] = True  # everything seen: use every item
    count = use.sum(axis=1, keepdims=True)
    if how == "minmax":
        lo = np.where(use, s, np.inf).min(axis=1, keepdims=True)
        hi = np.where(use, s, -np.inf).max(axis=1, keepdims=True)
        span = hi - lo
        out = np.divide(s - lo, span, out=np.zeros_like(s), where=span > 0)
    elif how == "zscore":
        mean = np.where(use, s, 0.0).sum(axis=1, keepdims=True) / count
        var = np.where(use, (s - mean) ** 2, 0.0).sum(axis=1, keepdims=True) / count
        std = np.sqrt(var)
        out = np.divide(s - mean, std, out=np.zeros_like(s), where=std > 1e-12)
    else:
        raise ConfigError(f"normalise must be 'minmax' or 'zscore', got {how!r}")
    return out.astype(np.float32)


def blend_weighted(
    scores: Sequence[np.ndarray],
    weights: Sequence[float],
    how: Normalise = "minmax",
    histories: sp.csr_matrix | None = None,
) -> np.ndarray:
    """sum_c weights[c] * normalise(scores[c]) (see `normalise_scores`)."""
    if not scores:
        raise ValueError("no component scores to blend")
    seen = _history_mask(histories, scores[0].shape)
    out = np.zeros(scores[0].shape, dtype=np.float32)
    for s, w in zip(scores, weights, strict=True):
        if w:
            out += np.float32(w) * normalise_scores(s, how, seen)
    return out


def ranks(scores: np.ndarray, seen: np.ndarray | None = None) -> np.ndarray:
    """1-based rank of every item per row (best = 1, ties by index, seen items last)."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    if seen is not None:
        s = np.where(seen, -np.inf, s)
    order = np.lexsort((np.broadcast_to(np.arange(s.shape[1]), s.shape), -s), axis=1)
    out = np.empty(s.shape, dtype=np.int64)
    np.put_along_axis(out, order, np.arange(1, s.shape[1] + 1)[None, :], axis=1)
    return out


def blend_rrf(
    scores: Sequence[np.ndarray],
    weights: Sequence[float],
    k: int = 60,
    histories: sp.csr_matrix | None = None,
) -> np.ndarray:
    """Reciprocal rank fusion: sum_c weights[c] / (k + rank_c)."""
    if not scores:
        raise ValueError("no component scores to blend")
    seen = _history_mask(histories, scores[0].shape)
    out = np.zeros(scores[0].shape, dtype=np.float64)
    for s, w in zip(scores, weights, strict=True):
        if w:
            out += w / (k + ranks(s, seen))
    return out.astype(np.float32)


def _simplex_grid(n: int, steps: int) -> list[tuple[float, ...]]:
    """Every weight vector of n non-negative multiples of 1/steps summing to 1."""
    return [
        tuple(c / steps for c in combo)
        for combo in itertools.product(range(steps + 1), repeat=n)
        if sum(combo) == steps
    ]


@register
class Hybrid(Recommender):
    """Weighted or rank-fused blend of other registered models."""

    name = "hybrid"
    Config = HybridConfig
    config: HybridConfig

    def __init__(self, config: HybridConfig | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        self.components: dict[str, Recommender] = {}
        self.weights: dict[str, float] = self._initial_weights()
        self.validation_ndcg: float | None = None

    def _initial_weights(self) -> dict[str, float]:
        keys = list(self.config.models)
        if self.config.weights is not None:
            return {k: float(self.config.weights.get(k, 0.0)) for k in keys}
        if self.config.method == "rrf":
            return dict.fromkeys(keys, 1.0)
        return dict.fromkeys(keys, 1.0 / len(keys))

    @property
    def fitted_weights(self) -> dict[str, float]:
        """The weights in use: given, fitted on validation, or equal."""
        return dict(self.weights)

    @classmethod
    def from_components(cls, components: dict[str, Recommender], **params: Any) -> Hybrid:
        """A hybrid over already fitted models (keys as in `models`); no fit needed."""
        if not components:
            raise ConfigError("hybrid: from_components needs at least one model")
        sizes = {m.n_items for m in components.values()}
        if len(sizes) != 1 or 0 in sizes:
            raise ConfigError(f"hybrid: components must be fitted on the same items, got {sizes}")
        models = {k: m.config.model_dump() for k, m in components.items()}
        model = cls(models=models, **params)
        model.components = dict(components)
        model.n_items = sizes.pop()
        return model

    def fit(
        self,
        interactions: Any,
        items: pd.DataFrame | None = None,
        validation: Any = None,
    ) -> Hybrid:
        """Fit every component; with `validation` (held-out interactions of the same users
        and items as `interactions`), `weighted` and no explicit weights, fit the weights."""
        x = as_csr(interactions)
        self.n_items = x.shape[1]
        self.weights = self._initial_weights()
        fit_weights = self.config.method == "weighted" and self.config.weights is None
        has_validation = validation is not None and as_csr(validation).nnz > 0
        if fit_weights and not has_validation and self.config.validation_fraction > 0:
            rest, held = carve_validation(
                x, self.config.validation_fraction, self.config.seed, min_interactions=3
            )
            if held.nnz:
                self.components = self._fit_components(rest, items)
                self.tune_weights(rest, held)
                fitted = dict(self.weights)
                self.components = self._fit_components(x, items)
                self.weights = fitted
                return self
        self.components = self._fit_components(x, items)
        if fit_weights and has_validation:
            self.tune_weights(x, validation)
        return self

    def _fit_components(self, x: sp.csr_matrix, items: pd.DataFrame | None) -> dict[str, Any]:
        components: dict[str, Recommender] = {}
        for key, params in self.config.models.items():
            try:
                components[key] = create(model_name(key), **params).fit(x, items)
            except ConfigError as exc:
                raise ConfigError(f"hybrid component '{key}': {exc}") from exc
        return components

    def component_scores(
        self, histories: sp.csr_matrix, users: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """Each component's raw scores, in `models` order."""
        return [
            np.asarray(m.score(histories, users), dtype=np.float32)
            for m in self.components.values()
        ]

    def _blend(self, scores: list[np.ndarray], weights: Sequence[float], h: sp.csr_matrix) -> Any:
        if self.config.method == "rrf":
            return blend_rrf(scores, weights, self.config.rrf_k, h)
        return blend_weighted(scores, weights, self.config.normalise, h)

    def score(self, histories: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
        """The blend of the components' scores (see the module doc)."""
        self._check_fitted()
        h = sp.csr_matrix(histories, dtype=np.float32)
        weights = [self.weights.get(k, 0.0) for k in self.components]
        return np.asarray(self._blend(self.component_scores(h, users), weights, h))

    def tune_weights(self, interactions: Any, validation: Any) -> dict[str, float]:
        """Fit the weights on validation users (NDCG@10), store and return them."""
        self._check_fitted()
        x, val = as_csr(interactions), as_csr(validation)
        if val.shape != x.shape:
            raise DataError(
                f"hybrid: validation {val.shape} must have the shape of interactions {x.shape}"
            )
        users = np.flatnonzero(np.diff(val.indptr) > 0)
        if users.size == 0:
            return self.fitted_weights
        if users.size > self.config.validation_users:
            rng = np.random.default_rng(self.config.seed)
            users = np.sort(rng.choice(users, self.config.validation_users, replace=False))
        h, rel = x[users], val[users]
        seen = _history_mask(h, h.shape)
        normalised = [
            normalise_scores(s, self.config.normalise, seen)
            for s in self.component_scores(h, users)
        ]

        def quality(w: Sequence[float]) -> float:
            blended = np.zeros(h.shape, dtype=np.float32)
            for s, wc in zip(normalised, w, strict=True):
                if wc:
                    blended += np.float32(wc) * s
            return ndcg_of_scores(blended, rel, seen, 10)

        keys = list(self.components)
        n, steps = len(keys), self.config.grid_steps
        best = tuple([1.0 / n] * n)
        best_q = quality(best)
        if n <= 3:
            for w in _simplex_grid(n, steps):
                q = quality(w)
                if q > best_q + 1e-12:
                    best, best_q = w, q
        else:  # coordinate ascent: move one weight on the grid, renormalise, keep gains
            for _ in range(5):
                improved = False
                for c in range(n):
                    for v in np.linspace(0.0, 1.0, steps + 1):
                        trial = np.asarray(best, dtype=np.float64)
                        trial[c] = v
                        if trial.sum() <= 0:
                            continue
                        candidate = tuple(float(t) for t in trial / trial.sum())
                        q = quality(candidate)
                        if q > best_q + 1e-12:
                            best, best_q, improved = candidate, q, True
                if not improved:
                    break
        self.weights = {k: float(w) for k, w in zip(keys, best, strict=True)}
        self.validation_ndcg = best_q
        return self.fitted_weights

    # -- persistence ---------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        keys = list(self.config.models)
        return {
            "weights": np.asarray([self.weights.get(k, 0.0) for k in keys], dtype=np.float64),
            "keys": np.asarray(keys, dtype=str),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        keys = [str(k) for k in arrays["keys"]]
        self.weights = {k: float(w) for k, w in zip(keys, arrays["weights"], strict=True)}

    def save(self, directory: Path) -> None:
        """config.json and arrays.npz (weights), then each component in components/<key>."""
        super().save(directory)
        for key, model in self.components.items():
            model.save(directory / "components" / _folder(key))

    @classmethod
    def load(cls, directory: Path) -> Hybrid:
        """Read a hybrid written by `save`, components included."""
        meta = json.loads((directory / "config.json").read_text())
        model = cls(cls.Config(**meta["config"]))
        with np.load(directory / "arrays.npz", allow_pickle=False) as data:
            model._restore({k: data[k] for k in data.files})
        model.components = {
            key: load_model(directory / "components" / _folder(key)) for key in model.config.models
        }
        model.n_items = int(meta["n_items"])
        return model
