"""Which bundle model plays which serving role: chosen by the engine configuration's role
names and the models' capabilities (`recommenders.capabilities`), never by a model's name.

Roles: the personalisation model (any model that personalises; a request may name another),
the similarity model (collaborative "items like these"), the content model (text vectors:
cold-start items, content neighbours), popularity counts and trend scores (the last steps of
every chain). A role named in the configuration but absent from the bundle is empty: the
steps that need it add nothing, as before roles were configurable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from shelfwise.errors import ConfigError
from shelfwise.recommenders import Recommender
from shelfwise.recommenders.capabilities import (
    ContentVectors,
    PopularityCounts,
    TrendScores,
    personalises,
)
from shelfwise.serving.aligned import normalised

if TYPE_CHECKING:
    from shelfwise.serving.config import EngineConfig

log = logging.getLogger(__name__)


def _role(
    models: Mapping[str, Recommender],
    field: str,
    name: str | None,
    capable: Any,
    what: str,
    auto: bool = True,
) -> Any | None:
    """The model playing a role: `name` when given (None if the bundle lacks it; ConfigError
    if it lacks the capability), else with `auto` the first bundle model with the
    capability (without, none)."""
    if name is None:
        return next((m for m in models.values() if capable(m)), None) if auto else None
    model = models.get(name)
    if model is None:
        log.info("engine.%s: the bundle has no model '%s'; that role is empty", field, name)
        return None
    if not capable(model):
        fit = sorted(n for n, m in models.items() if capable(m))
        raise ConfigError(
            f"engine.{field}: bundle model '{name}' has no {what}; name one that has "
            f"({', '.join(fit) or 'none in this bundle'}) or set it to null"
        )
    return model


class ModelRoles:
    """The bundle's models by role, and the scores the fallback steps read from them."""

    def __init__(self, models: Mapping[str, Recommender], config: EngineConfig) -> None:
        self.models = models
        self.config = config
        self.similarity: Recommender | None = _role(
            models,
            "similarity_model",
            config.similarity_model,
            personalises,
            "item similarity",
            auto=False,  # every personalising model could serve: only the one configured
        )
        self.content: ContentVectors | None = _role(
            models,
            "content_model",
            config.content_model,
            lambda m: isinstance(m, ContentVectors),
            "content vectors (vectors, profiles, add_items)",
        )
        self.popularity_model: PopularityCounts | None = _role(
            models,
            "popularity_model",
            config.popularity_model,
            lambda m: isinstance(m, PopularityCounts),
            "popularity counts",
        )
        self.trending_model: TrendScores | None = _role(
            models,
            "trending_model",
            config.trending_model,
            lambda m: isinstance(m, TrendScores),
            "trend scores",
        )

    def model(self, name: str) -> Recommender:
        """A bundle model by name; `ConfigError` naming the choices if there is none."""
        if name not in self.models:
            raise ConfigError(
                f"model '{name}' is not in the active bundle; choose one of "
                f"{', '.join(sorted(self.models))}"
            )
        return self.models[name]

    def popularity(self) -> np.ndarray:
        """Popularity per bundle item (empty without a popularity model)."""
        if self.popularity_model is None:
            return np.zeros(0)
        return np.asarray(self.popularity_model.popularity, dtype=np.float64)

    def trend(self) -> np.ndarray:
        """Trend per bundle item; popularity when there is no (fitted) trend."""
        trend = None if self.trending_model is None else self.trending_model.trend
        if trend is None or not len(trend):
            return self.popularity()
        return np.asarray(trend, dtype=np.float64)

    def collaborative(self, items: np.ndarray) -> np.ndarray:
        """The similarity model's scores of items like `items`, scaled to 0..1 (empty
        without a similarity model; items it does not know are left out)."""
        model = self.similarity
        if model is None:
            return np.zeros(0)
        hist = items[items < model.n_items]
        if not hist.size:
            return np.zeros(0)
        raw = np.asarray(model.score(model.history_matrix(hist))[0], dtype=np.float64)
        return normalised(np.maximum(raw, 0))

    def content_scores(
        self,
        history: np.ndarray,
        weights: np.ndarray | None = None,
        only: np.ndarray | None = None,
    ) -> np.ndarray:
        """Content cosine of each item with the history's profile; with `only`, just for
        those items (in that order; 0 for items the content model lacks)."""
        content = self.content
        if content is None:
            return np.zeros(0 if only is None else len(only))
        keep = history < content.n_items
        w = None if weights is None else weights[keep]
        if only is None:  # vectors @ profile: a matrix-vector product, no transpose
            if not keep.any():
                return np.zeros(0)
            profile = content.profiles(content.history_matrix(history[keep], w))
            dense = (
                sp.csr_matrix(profile).toarray().ravel()
                if sp.issparse(profile)
                else np.ravel(profile)
            )
            return np.asarray(content.vectors @ dense, dtype=np.float64).ravel()
        out = np.zeros(len(only))
        inside = only < content.n_items
        if not keep.any() or not inside.any():
            return out
        profile = content.profiles(content.history_matrix(history[keep], w))
        vectors = content.vectors[only[inside]]
        dots = profile @ vectors.T
        dots = dots.toarray() if sp.issparse(dots) else np.asarray(dots)
        out[inside] = np.asarray(dots, dtype=np.float64).ravel()
        return out
