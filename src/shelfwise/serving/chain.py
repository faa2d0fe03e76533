"""The fallback chain as composable steps, and `EngineConfig`, which orders and tunes them.

Every answer walks a chain of steps until k items are found; each step scores the live
catalogue for the request (`Step.scores(context)`) and the picker takes its best items,
labelled with the step's `source`. The steps for a user: personalised -> session ->
trending (in the context's category) -> popular; the steps for an item's neighbours live in
`serving.related`. Which steps, in which order, with which weights and thresholds, and
which bundle model plays which role, is `EngineConfig`, recorded in the bundle's manifest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.data.matrix import InteractionWeights
from shelfwise.data.schemas import normalise_category
from shelfwise.serving.aligned import AlignedModel
from shelfwise.serving.catalog import Catalog
from shelfwise.serving.config import EngineConfig, StepName
from shelfwise.serving.picker import Picker
from shelfwise.serving.replica import Events, event_column, event_sequence
from shelfwise.serving.roles import ModelRoles


@dataclass(frozen=True)
class RecContext:
    """Where a recommendation is shown: page type, the item on the page, a category, the
    browser session. Every field is optional."""

    page_type: str | None = None
    item_id: str | None = None
    category: str | None = None
    session_id: str | None = None


def _no_events() -> dict[str, np.ndarray]:
    """No events, in the replica's columns (a request without a user)."""
    return {
        "item_id": np.empty(0, dtype=object),
        "type": np.empty(0, dtype=object),
        "value": np.empty(0, dtype=np.float64),
        "timestamp": np.empty(0, dtype="datetime64[us]"),
        "session_id": np.empty(0, dtype=object),
        "seq": np.empty(0, dtype=np.int64),
    }


@dataclass
class StepContext:
    """One request, as the steps read it: the catalogue snapshot, the bundle's models by
    role, the user's latest events (newest first; none for an item's neighbours) and their
    weighted history, the personalisation model, and where the answer is shown."""

    catalog: Catalog
    roles: ModelRoles
    request: RecContext = field(default_factory=RecContext)
    #: newest first: the replica's columns (`EventLog.columns`) or a DataFrame of them
    events: Events = field(default_factory=_no_events)
    history: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    weights: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    personal: AlignedModel | None = None
    #: the request named the model (`?model=`, an experiment's variant): it answers even
    #: when it does not personalise (popularity as a variant serves popularity)
    requested: bool = False
    weighting: InteractionWeights = field(default_factory=InteractionWeights)
    #: (items x items co-occurrence in baskets, baskets per item), built on first use
    copurchase: Callable[[], tuple[sp.csr_matrix, np.ndarray]] | None = None

    @property
    def n(self) -> int:
        """Catalogue size: the length of every step's scores."""
        return len(self.catalog)

    @cached_property
    def anchors(self) -> np.ndarray:
        """The page's item (the request's `item_id`) as catalogue indices, if known."""
        idx = self.catalog.index(self.request.item_id) if self.request.item_id else None
        return np.array([idx] if idx is not None else [], dtype=np.int64)

    @cached_property
    def sequence(self) -> np.ndarray:
        """The user's item events oldest -> newest (what a sequential model reads)."""
        return event_sequence(self.events, self.catalog.vocab, self.weighting)


class Step(ABC):
    """One fallback step: scores over the catalogue for a request, and its `source` label.

    Scores are read by `Picker.take`: the best finite (with `positive_only`, positive)
    scores of allowed items win; an empty array means the step does not apply."""

    source: ClassVar[StepName]
    positive_only: ClassVar[bool] = True

    @classmethod
    def from_config(cls, config: EngineConfig) -> Step:
        """The step with its weights and thresholds taken from `config`."""
        return cls()

    @abstractmethod
    def scores(self, ctx: StepContext) -> np.ndarray:
        """Scores over the catalogue (index = catalogue index) for this request."""


def walk(steps: list[Step], ctx: StepContext, picker: Picker) -> Picker:
    """Take from each step in order until the picker is full; returns it."""
    for step in steps:
        if picker.full:
            break
        picker.take(step.scores(ctx), step.source, step.positive_only)
    return picker


def _padded(values: np.ndarray, n: int) -> np.ndarray:
    """`values` cut or zero-padded to length n."""
    out = np.zeros(n)
    m = min(n, len(values))
    out[:m] = values[:m]
    return out


class Personalised(Step):
    """The personalisation model on the user's history, scaled to 0..1, plus the content
    cosine of items it does not know (added after training) when it reaches
    `cold_min_similarity`."""

    source = "personalised"

    def __init__(self, cold_min_similarity: float = 0.05) -> None:
        self.cold_min_similarity = cold_min_similarity

    @classmethod
    def from_config(cls, config: EngineConfig) -> Personalised:
        """The step with the config's cold-start threshold."""
        return cls(config.cold_min_similarity)

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Empty without a history or a model that personalises (a model the request named
        answers even when it does not personalise)."""
        model = ctx.personal
        if model is None:
            return np.zeros(0)
        if not model.personalised:
            if not ctx.requested:
                return np.zeros(0)
        elif not ctx.history.size:
            return np.zeros(0)
        sequence = ctx.sequence if model.sequential else ctx.history
        scores = _padded(model.scores(ctx.history, ctx.weights, sequence, ctx.n), ctx.n)
        unknown = np.flatnonzero(~model.known(ctx.n))
        if unknown.size:  # items added after training: scored by their content
            content = ctx.roles.content_scores(ctx.history, ctx.weights, only=unknown)
            scores[unknown] = np.where(content >= self.cold_min_similarity, content, 0.0)
        return scores


class Session(Step):
    """Items similar to the current session's: collaborative similarity plus
    `content_weight` x content similarity, to the page's item and the session's latest
    `max_items` items (the session named by the request, else the user's latest; without
    session ids, the events within `gap_minutes` of one another up to the latest)."""

    source = "session"

    def __init__(
        self, gap_minutes: float = 30.0, max_items: int = 10, content_weight: float = 0.3
    ) -> None:
        self.gap = np.timedelta64(int(gap_minutes * 60), "s")
        self.max_items = max_items
        self.content_weight = content_weight

    @classmethod
    def from_config(cls, config: EngineConfig) -> Session:
        """The step with the config's session gap, size and content weight."""
        return cls(config.session_gap_minutes, config.session_items, config.content_weight)

    def items(self, ctx: StepContext) -> np.ndarray:
        """The session's items as catalogue indices: the page's item first."""
        ids: list[str] = []
        if ctx.request.item_id:
            ids.append(ctx.request.item_id)
        item = event_column(ctx.events, "item_id")
        present = ~pd.isna(item)
        if present.any():
            items = item[present]
            sessions = event_column(ctx.events, "session_id")[present]
            session = ctx.request.session_id
            if session is None and not pd.isna(sessions[0]):
                session = str(sessions[0])
            if session is not None:
                same = (isinstance(v, str) and v == session for v in sessions)
                items = items[np.fromiter(same, dtype=bool, count=len(sessions))]
            else:
                ts = event_column(ctx.events, "timestamp")[present]
                gaps = (ts[:-1] - ts[1:]) > self.gap
                cut = int(np.argmax(gaps)) + 1 if gaps.any() else len(items)
                items = items[:cut]
            ids.extend(str(i) for i in items[: self.max_items])
        if not ids:
            return np.empty(0, np.int64)
        idx = ctx.catalog.vocab.encode(ids, unknown="minus_one")
        return np.asarray(pd.unique(idx[idx >= 0]), dtype=np.int64)

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Empty when the request has no session items."""
        session = self.items(ctx)
        if not session.size:
            return np.zeros(0)
        collab = _padded(ctx.roles.collaborative(session), ctx.n)
        content = _padded(ctx.roles.content_scores(session), ctx.n)
        return collab + self.content_weight * content


class CategoryTrending(Step):
    """Trending items of the request's category: the one given, else the page item's, else
    that of the user's latest item with one (a tiny floor lets untrending items count)."""

    source = "trending"

    @staticmethod
    def category(ctx: StepContext) -> str | None:
        """The request's category path, or None."""
        if ctx.request.category:
            return normalise_category(ctx.request.category)
        cat = ctx.catalog
        candidates = [ctx.request.item_id] if ctx.request.item_id else []
        item = event_column(ctx.events, "item_id")
        candidates += [str(i) for i in item[~pd.isna(item)][:20]]
        if not candidates:
            return None
        for idx in cat.vocab.encode(candidates, unknown="minus_one").tolist():
            if idx >= 0 and cat.category[idx]:
                return str(cat.category[idx])
        return None

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Trend + 1e-9 inside the category, -inf outside; empty without a category."""
        category = self.category(ctx)
        if not category:
            return np.zeros(0)
        mask = ctx.catalog.in_category(category)
        trend = _padded(ctx.roles.trend(), ctx.n)
        scores = np.full(ctx.n, -np.inf)
        scores[mask] = trend[mask] + 1e-9
        return scores


class Popular(Step):
    """Globally popular items; every servable item counts (the chain's last resort)."""

    source = "popular"
    positive_only = False

    def scores(self, ctx: StepContext) -> np.ndarray:
        """Popularity + 1e-9 (items without a count tie at the floor)."""
        return _padded(ctx.roles.popularity(), ctx.n) + 1e-9
