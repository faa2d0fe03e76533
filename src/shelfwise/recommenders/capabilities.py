"""What a model can do, as protocols: serving and bundle building choose models by these
capabilities (and the engine configuration's role names), never by a model's name.

Each protocol is `runtime_checkable`, so `isinstance(model, ContentVectors)` asks whether a
model has the members, whatever its class. `personalises` reads the `personalised` flag of
`Recommender`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.matrix import InteractionWeights
from shelfwise.data.vocab import Vocabulary


@runtime_checkable
class FitsFromEvents(Protocol):
    """A model that learns from the raw events (it reads their timestamps, e.g. to decay by
    age), so a bundle fits it with `fit_events` instead of `fit` on the matrix."""

    def fit_events(
        self,
        events: pd.DataFrame,
        item_vocab: Vocabulary,
        items: pd.DataFrame | None = None,
        weights: InteractionWeights | None = None,
        now: datetime | pd.Timestamp | str | None = None,
    ) -> Any:
        """Fit from an events frame over the columns of `item_vocab`; returns the model."""
        ...


@runtime_checkable
class ContentVectors(Protocol):
    """Items as vectors of their text: a history's profile scores items by cosine, and items
    added after training get a vector without a refit (`add_items`)."""

    n_items: int
    vectors: np.ndarray | sp.csr_matrix

    def add_items(self, items: pd.DataFrame) -> np.ndarray:
        """Vectorise new catalogue rows as the next item indices; returns those indices."""
        ...

    def profiles(self, histories: sp.csr_matrix) -> np.ndarray | sp.csr_matrix:
        """Unit profile vectors of history rows."""
        ...

    def history_matrix(
        self,
        history: Sequence[int] | np.ndarray,
        weights: Sequence[float] | np.ndarray | None = None,
    ) -> sp.csr_matrix:
        """One history as a 1 x n_items row."""
        ...


@runtime_checkable
class PopularityCounts(Protocol):
    """One non-negative count per item, the same for every user."""

    popularity: np.ndarray


@runtime_checkable
class TrendScores(Protocol):
    """One time-decayed popularity score per item (empty until fitted)."""

    trend: np.ndarray


def personalises(model: Any) -> bool:
    """True if the model's scores depend on the user's history (`Recommender.personalised`);
    a model that scores everyone alike (popularity) cannot personalise a list."""
    return bool(getattr(model, "personalised", True))
