"""`Engine`: the wiring between a bundle, the live store and the fallback chains."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.artifacts.bundle import Bundle
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ShelfwiseError
from shelfwise.recommenders import Recommender
from shelfwise.serving.aligned import AlignedModel
from shelfwise.serving.catalog import Catalog
from shelfwise.serving.chain import (
    CategoryTrending,
    EngineConfig,
    Personalised,
    Popular,
    RecContext,
    Session,
    Step,
    StepContext,
    walk,
)
from shelfwise.serving.picker import Picker
from shelfwise.serving.related import (
    BoughtTogether,
    CollaborativeSimilar,
    ContentSimilar,
    CoPurchase,
)
from shelfwise.serving.replica import EventLog, event_sequence, weighted_history
from shelfwise.serving.roles import ModelRoles
from shelfwise.store import Store

log = logging.getLogger(__name__)

#: Every step a chain can name, by its `source` label.
STEPS: dict[str, type[Step]] = {
    step.source: step
    for step in (
        Personalised,
        Session,
        CategoryTrending,
        Popular,
        CollaborativeSimilar,
        ContentSimilar,
        BoughtTogether,
    )
}


def build_chain(names: Sequence[str], config: EngineConfig) -> list[Step]:
    """The steps named, in order, tuned by `config`."""
    return [STEPS[name].from_config(config) for name in names]


@dataclass
class Recommendation:
    """An answer: the first fallback step that contributed, the items (each naming its
    `source` step) and the model bundle version."""

    strategy: str
    items: list[dict[str, Any]]
    model_version: str
    model: str = ""  # the personalisation model, e.g. "itemknn" or "itemknn@v0003"


class Engine:
    """Answers recommendation requests from a bundle plus the live store.

    Every request walks a fallback chain of steps (`serving.chain`, `serving.related`) until
    k items are found; each item names the step that produced it. The bundle's
    `EngineConfig` orders the steps, sets their weights and thresholds and says which model
    plays which role. By default a user's chain is personalised (the personalisation model
    on the user's history, plus content-based scores for items added since the bundle was
    built) -> session -> trending in the context's category -> popular. Histories are read
    from the in-memory replica of the store's event log (`EventLog`), so an acknowledged
    event changes the next answer without retraining.

    The catalog is live: `apply_items` / `remove_item` make a new or changed item servable
    at once, content-based (the content model vectorises new items with `add_items`) and in
    search (through the registered catalog listeners).
    """

    def __init__(
        self,
        store: Store,
        bundle: Bundle,
        sync: bool = True,
        tail_seconds: float = 0.0,
        replica: Path | None = None,
    ) -> None:
        """`replica` is where the event replica is saved between starts (`EventLog`'s
        snapshot; None: the log is read from the store)."""
        self.store = store
        self._lock = threading.RLock()
        self._erase_listeners: list[Callable[[str], None]] = []
        self._catalog_listeners: list[Callable[[pd.DataFrame, list[str]], None]] = []
        self._reset_listeners: list[Callable[[], None]] = []
        self._serving: tuple[Recommender, Vocabulary | None, str] | None = None
        self._serving_aligned: AlignedModel | None = None
        self.replica_path = replica
        self.log = EventLog(
            store, limit=bundle.engine.history_limit, tail_seconds=tail_seconds, snapshot=replica
        )
        self._catalog = Catalog.build(bundle.items)
        self._use(bundle)
        self._catalog_stamp = ""
        self._items_written: datetime | None = None  # newest catalog write applied
        self._erasures = 0
        if sync:
            self._catalog_stamp = store.catalog_stamp()
            self._erasures = store.erasure_count()
            self.sync_catalog()
        self._serve_bundle_model()

    def _use(self, bundle: Bundle) -> None:
        """Wire a bundle: its models by role, its chains, its basket counts."""
        config = bundle.engine
        self.bundle = bundle
        self.roles = ModelRoles(bundle.models, config)
        self.chains = {
            "recommend": build_chain(config.recommend_steps, config),
            "similar": build_chain(config.similar_steps, config),
            "bought_together": build_chain(config.bought_together_steps, config),
        }
        self._copurchase = CoPurchase(self.store, config.basket_types)
        if self.log.limit != config.history_limit:
            self.log.limit = config.history_limit
            self.log.reload()

    # -- bundle and catalog -----------------------------------------------------------------
    @property
    def config(self) -> EngineConfig:
        """The active bundle's engine configuration."""
        return self.bundle.engine

    @property
    def model_version(self) -> str:
        """The active bundle's version."""
        return str(self.bundle.manifest.get("version", ""))

    @property
    def catalog(self) -> Catalog:
        """The live catalog snapshot (its `revision` grows with every change)."""
        return self._catalog

    def content_model(self) -> Any | None:
        """The bundle's content model (it can vectorise new items), if any."""
        return self.roles.content

    def activate(self, bundle: Bundle) -> None:
        """Serve another bundle from now on (hot swap); the live catalog is re-synced.
        Personalised requests use the tuned model the bundle names (`Bundle.serving`), else
        the bundle's own personalisation model."""
        with self._lock:
            self._catalog = Catalog.build(bundle.items, revision=self._catalog.revision + 1)
            self._use(bundle)
            self.sync_catalog()
            self._serve_bundle_model()

    def _serve_bundle_model(self) -> None:
        serving = self.bundle.serving
        if serving is None:
            self.set_serving_model(None)
            return
        try:
            self.set_serving_model(*serving)
        except ShelfwiseError as exc:  # a tuned model that no longer fits the catalogue
            log.warning("not serving %s: %s", serving[2], exc)
            self.set_serving_model(None)

    def set_serving_model(
        self, model: Recommender | None, items: Vocabulary | None = None, label: str = ""
    ) -> None:
        """Personalise with `model` (trained on `items`, e.g. a tuned version) instead of the
        bundle's default; None goes back to the default. `ConfigError` if it cannot be
        aligned with the catalog."""
        with self._lock:
            if model is None:
                self._serving, self._serving_aligned = None, None
                return
            aligned = AlignedModel(model, items, self._catalog.vocab, label or model.name)
            self._serving, self._serving_aligned = (model, items, aligned.label), aligned

    def serving_model(self, name: str | None = None) -> Recommender | AlignedModel:
        """The model a personalised request uses: `name` from the bundle, else the serving
        model set by `set_serving_model`, else the configured personalisation model."""
        if name is None and self._serving_aligned is not None:
            return self._serving_aligned
        return self.roles.model(name or self.config.personalisation_model)

    @property
    def serving_label(self) -> str:
        """Name of the model personalised requests use by default."""
        aligned = self._serving_aligned
        return aligned.label if aligned is not None else self.config.personalisation_model

    def sync_catalog(self) -> None:
        """Bring the bundle's catalogue up to the store's, as the live changes would have:
        items added after the build are applied (`apply_items`: content vectors, the next
        indices), items changed since get their new fields (title, price, stock ...) and
        bundle items the store no longer has are hidden. A server that starts on an older
        bundle calls it once, with whatever changed while it was down; the search service
        follows when it is prepared (`serve.search`)."""
        with self._lock:
            stored, self._items_written = self.store.items_written_since(None)
            changed = self._catalog.differing(stored)  # new, or fields not the bundle's
            if len(changed):
                self.apply_items(changed, notify=False)
            # by the catalogue's own vocabulary (a dict lookup per stored id), not pandas'
            # isin, which tests a 100k-id set element by element for arrow strings
            present = np.zeros(len(self._catalog), dtype=bool)
            rows = self._catalog.vocab.encode(stored["item_id"].tolist(), unknown="minus_one")
            present[rows[rows >= 0]] = True
            gone = ~present
            if gone.any():
                self._catalog = self._catalog.with_alive(self._catalog.alive & ~gone)

    def add_catalog_listener(self, listener: Callable[[pd.DataFrame, list[str]], None]) -> None:
        """Call `listener(upserted_items, deleted_ids)` after every catalog change."""
        self._catalog_listeners.append(listener)

    def add_erase_listener(self, listener: Callable[[str], None]) -> None:
        """Call `listener(user_id)` after a user is erased (to drop caches)."""
        self._erase_listeners.append(listener)

    def add_reset_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` when another process erased users: drop all per-user caches."""
        self._reset_listeners.append(listener)

    def refresh(self) -> dict[str, int]:
        """Catch up with writes made by other processes sharing the store (several API
        workers on PostgreSQL): catalogue changes are applied to the live catalogue (and
        the search listeners), and after an erasure anywhere every per-user cache is
        dropped. Cheap when nothing changed: two tiny queries. Returns what it did."""
        done = {"items": 0, "removed": 0, "reset": 0}
        stamp = self.store.catalog_stamp()
        if stamp != self._catalog_stamp:
            done["items"], done["removed"] = self._catch_up_catalog()
            self._catalog_stamp = stamp
        erasures = self.store.erasure_count()
        if erasures != self._erasures:
            self._erasures = erasures
            self.log.reload()
            self._copurchase.clear()
            for listener in self._reset_listeners:
                listener()
            done["reset"] = 1
        return done

    def _catch_up_catalog(self) -> tuple[int, int]:
        """Apply the items written since the last catch-up (by their `updated_at`), and hide
        items the store no longer has (checked only when the counts disagree). Returns
        (applied, hidden). The cost follows the changes, not the catalogue size."""
        written, newest = self.store.items_written_since(self._items_written)
        written = self._catalog.differing(written)  # rows at the watermark itself come again
        if len(written):
            self.apply_items(written)
        if newest is not None:
            self._items_written = newest
        cat = self._catalog
        gone = np.empty(0, dtype=np.int64)
        if int(cat.alive.sum()) != self.store.counts()["items"]:
            stored = np.asarray(self.store.item_ids(), dtype=object)
            gone = np.flatnonzero(cat.alive & ~np.isin(cat.item_id, stored))
        if gone.size:
            with self._lock:
                alive = self._catalog.alive.copy()
                alive[gone] = False
                self._catalog = self._catalog.with_alive(alive)
            removed = [str(i) for i in cat.item_id[gone]]
            for listener in self._catalog_listeners:
                listener(cat.frame.iloc[0:0], removed)
        return len(written), int(gone.size)

    def apply_items(self, items: pd.DataFrame, notify: bool = True) -> list[str]:
        """Make upserted catalog rows servable now (the store must already hold them).

        New items get the next indices and a content vector; changed items get their new
        fields (their content vector is refreshed by the next bundle build). Returns the
        ids of the new items.
        """
        if items.empty:
            return []
        with self._lock:
            cat = self._catalog
            catalog, new = cat.with_items(items)
            if len(new):
                content = self.roles.content
                if content is not None and content.n_items == len(cat):
                    content.add_items(new)
                self._copurchase.clear()  # its matrix is as wide as the old catalogue
            self._catalog = catalog
        if notify:
            for listener in self._catalog_listeners:
                listener(items.drop_duplicates("item_id", keep="last").reset_index(drop=True), [])
        return new["item_id"].astype(str).tolist()

    def remove_item(self, item_id: str) -> bool:
        """Stop serving an item (after the store deleted it); False if it was not served."""
        with self._lock:
            cat = self._catalog
            idx = cat.index(item_id)
            if idx is None or not cat.alive[idx]:
                return False
            alive = cat.alive.copy()
            alive[idx] = False
            self._catalog = cat.with_alive(alive)
        for listener in self._catalog_listeners:
            listener(cat.frame.iloc[0:0], [item_id])
        return True

    def item_index(self, item_id: str) -> int | None:
        """The live index of an item id, or None."""
        return self._catalog.index(item_id)

    # -- users --------------------------------------------------------------------------------
    def erase_user(self, user_id: str) -> dict[str, int]:
        """Right to be forgotten: delete the user's events and profile, drop every cache."""
        with self.log.tail_lock:  # no tail in flight can bring the erased events back
            before = self.store.erasure_count()
            counts = self.store.erase_user(user_id)
            self.log.drop(user_id, before)
        self._copurchase.clear()  # baskets counted the user's purchases
        for listener in self._erase_listeners:
            listener(user_id)
        return counts

    def user_events(self, user_id: str) -> pd.DataFrame:
        """The user's latest `history_limit` events (newest first): item_id, type, value,
        timestamp, session_id, seq, from the in-memory replica of the event log, brought up
        to date with the store first (see `EventLog`): an event shows in the very next
        answer, whichever process wrote it."""
        return self.log.events(user_id)

    def user_history(self, user_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The user's latest interactions, read from the store now: (item indices, weights)."""
        events = self.log.columns(user_id)
        return weighted_history(
            events, self._catalog.vocab, self.bundle.weights, self.config.history_half_life_days
        )

    def user_sequence(self, user_id: str) -> np.ndarray:
        """The user's latest item events read from the store now, as item indices oldest ->
        newest (repeats kept, types weighing 0 and unknown items left out): what a
        sequential model reads, so a new event changes the next answer without retraining."""
        events = self.log.columns(user_id)
        return event_sequence(events, self._catalog.vocab, self.bundle.weights)

    def copurchase(self) -> tuple[sp.csr_matrix, np.ndarray]:
        """(items x items co-occurrence counts within baskets, baskets per item); see
        `serving.related.CoPurchase`."""
        return self._copurchase.get(self._catalog)

    def save_replica(self) -> bool:
        """Save the event replica where the next start reads it (`replica`); False when
        there is no such place or the replica may not be saved now (`EventLog.save`)."""
        if self.replica_path is None:
            return False
        return self.log.save(self.replica_path)

    # -- answers --------------------------------------------------------------------------------
    def reads_store(self, chain: str = "recommend", user: bool = True) -> bool:
        """Whether an answer of `chain` (for a user: `user`) would read the store now (new
        events to fetch, the basket counts to build) rather than memory alone. The API
        answers from memory on its event loop, and in a worker thread otherwise."""
        if user and self.log.reads_store():
            return True
        if any(isinstance(step, BoughtTogether) for step in self.chains[chain]):
            counts = self._copurchase.counts
            return counts is None or counts[0].shape[0] < len(self._catalog)
        return False

    def _answer(
        self,
        chain: str,
        k: int,
        context: RecContext,
        user_id: str | None = None,
        model: str | None = None,
        exclude: Sequence[str] = (),
        cat: Catalog | None = None,
    ) -> Recommendation:
        """Walk one chain for a request over the catalogue snapshot `cat` (default: the
        current one). The user's history, the page's item and `exclude` are never
        returned."""
        cat = cat or self._catalog
        roles, bundle = self.roles, self.bundle
        copurchase = self._copurchase
        ctx = StepContext(
            catalog=cat,
            roles=roles,
            request=context,
            weighting=bundle.weights,
            copurchase=lambda: copurchase.get(cat),
        )
        label = ""
        if user_id is not None:
            chosen = self.serving_model(model)
            personal = chosen if isinstance(chosen, AlignedModel) else AlignedModel(chosen)
            ctx.personal, label = personal, personal.label
            ctx.requested = model is not None
            ctx.events = self.log.columns(user_id)  # arrays: no DataFrame per request
            ctx.history, ctx.weights = weighted_history(
                ctx.events, cat.vocab, bundle.weights, bundle.engine.history_half_life_days
            )
        blocked = np.zeros(len(cat), dtype=bool)
        blocked[ctx.history] = True
        for item_id in [*exclude, context.item_id]:
            idx = cat.index(item_id) if item_id else None
            if idx is not None:
                blocked[idx] = True
        pick = walk(self.chains[chain], ctx, Picker(cat, k, blocked))
        return Recommendation(pick.strategy or "popular", pick.items, self.model_version, label)

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        model: str | None = None,
        context: RecContext | None = None,
        exclude: Sequence[str] = (),
    ) -> Recommendation:
        """Up to k items for a user, walking the recommend chain (see the class doc).

        Items the user interacted with, the page's item and `exclude` are never returned.
        An unknown user is answered from the session, category and popularity steps.
        """
        return self._answer("recommend", k, context or RecContext(), user_id, model, exclude)

    def similar(self, item_id: str, k: int = 10) -> Recommendation:
        """Items like `item_id`, walking the similar chain (by default collaborative
        neighbours, content neighbours, trending in its category, popular).
        `UnknownIdError` for an unknown item."""
        cat = self._catalog
        cat.known_item(item_id)
        return self._answer("similar", k, RecContext(item_id=item_id), cat=cat)

    def bought_together(self, item_id: str, k: int = 10) -> Recommendation:
        """Items bought with `item_id`, walking the bought-together chain (by default basket
        confidence, collaborative neighbours, trending in its category, popular).
        `UnknownIdError` for an unknown item."""
        cat = self._catalog
        cat.known_item(item_id)
        return self._answer("bought_together", k, RecContext(item_id=item_id), cat=cat)
