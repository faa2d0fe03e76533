"""Experiments on the live service: definitions in the store, decisions per request,
impressions, results.

`LiveExperiments(store)` is what the API holds:

- `create(spec)`, `all()`, `get(id)`, `stop(id)`: definitions (stored in the
  `experiments` table; a running experiment may not share a surface with another running
  one, so every list belongs to at most one experiment);
- `decide(user_id, list_type)`: the running experiment covering that list type, if any,
  and the user's (sticky) variant;
- `served(...)`: applies the variant's exploration to a list, logs the impression through
  the `ImpressionLog` (off the request path) and returns the request id and the list shown;
- `results(id)`: the results document (`analysis.experiment_results`).

The running experiments are cached and re-read from the store every `refresh_seconds`, so
an experiment created or stopped by another process takes effect within that time (at
once in this one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.errors import ConfigError, UnknownIdError
from shelfwise.experiments.assignment import (
    ExperimentSpec,
    VariantConfig,
    assign,
    explore,
    marginal_propensities,
)
from shelfwise.experiments.impressions import Impression, ImpressionLog, new_request_id, utc_now
from shelfwise.store import ExperimentRow, Store

if TYPE_CHECKING:
    from shelfwise.settings import ImpressionSettings


class ConflictError(ConfigError):
    """The experiment clashes with a stored one (same id, or a shared surface)."""


@dataclass(frozen=True)
class Decision:
    """What a running experiment decides for one list of one user."""

    spec: ExperimentSpec
    variant: VariantConfig

    @property
    def experiment_id(self) -> str:
        """The experiment's id."""
        return self.spec.experiment_id

    def overridden(self, asked: dict[str, object]) -> bool:
        """Whether the request itself set a setting that some variant sets (`asked`: the
        request's values, None where left open): then no variant shapes the list, in any
        arm alike, and the list is not an exposure."""
        keys: set[str] = set()
        for variant in self.spec.variants:
            keys |= set(variant.search_settings())
            if variant.model is not None:
                keys.add("model")
        return any(asked.get(key) is not None for key in keys)


@dataclass(frozen=True)
class Served:
    """A logged list: its request id and the items in the order shown."""

    request_id: str
    items: list[Any]
    propensities: list[float] | None


class LiveExperiments:
    """Experiment definitions, decisions, impressions and results (see the module doc)."""

    def __init__(
        self,
        store: Store,
        log: ImpressionLog | None = None,
        refresh_seconds: float = 30.0,
        seed: int | None = None,
        impressions: ImpressionSettings | None = None,
    ) -> None:
        self.store = store
        self._log = log
        self._log_settings = impressions
        self.refresh_seconds = refresh_seconds
        self._rng = np.random.default_rng(seed)
        self._rng_lock = threading.Lock()
        self._lock = threading.Lock()
        self._running: list[ExperimentSpec] = []
        self._loaded_at = float("-inf")

    @property
    def log(self) -> ImpressionLog:
        """The impression writer (started on first use)."""
        with self._lock:
            if self._log is None:
                settings = self._log_settings
                self._log = (
                    ImpressionLog(self.store)
                    if settings is None
                    else ImpressionLog.from_settings(self.store, settings)
                )
            return self._log

    # -- definitions ----------------------------------------------------------------------
    def create(self, spec: ExperimentSpec, now: datetime | None = None) -> ExperimentRow:
        """Store and start an experiment; `ConflictError` on a taken id or surface."""
        if self.store.get_experiment(spec.experiment_id) is not None:
            raise ConflictError(f"an experiment '{spec.experiment_id}' exists already")
        mine = spec.exposure_surfaces()
        for other in self.running(refresh=True):
            shared = mine & other.exposure_surfaces()
            if shared:
                raise ConflictError(
                    f"experiment '{other.experiment_id}' is running on {', '.join(sorted(shared))}"
                    "; stop it first (a list belongs to one experiment at a time)"
                )
        row = ExperimentRow(
            spec.experiment_id, spec.model_dump(mode="json"), "running", now or utc_now()
        )
        self.store.add_experiment(row)
        self._loaded_at = float("-inf")
        return row

    def all(self) -> list[ExperimentRow]:
        """Every experiment, oldest first."""
        return self.store.experiments()

    def get(self, experiment_id: str) -> ExperimentRow:
        """One experiment; `UnknownIdError` (404) if there is none by that id."""
        row = self.store.get_experiment(experiment_id)
        if row is None:
            raise UnknownIdError(f"no experiment '{experiment_id}'")
        return row

    def stop(self, experiment_id: str, now: datetime | None = None) -> ExperimentRow:
        """Stop a running experiment (its users get the default again); stopping a stopped
        one changes nothing."""
        self.get(experiment_id)
        self.store.stop_experiment(experiment_id, now or utc_now())
        self._loaded_at = float("-inf")
        return self.get(experiment_id)

    def stale(self) -> bool:
        """Whether the next `running()` re-reads the store."""
        return time.monotonic() - self._loaded_at > self.refresh_seconds

    def running(self, refresh: bool = False) -> list[ExperimentSpec]:
        """The running experiments (cached for `refresh_seconds`)."""
        with self._lock:
            stale = time.monotonic() - self._loaded_at > self.refresh_seconds
            if refresh or stale:
                rows = [r for r in self.store.experiments() if r.status == "running"]
                self._running = [ExperimentSpec.model_validate(r.spec) for r in rows]
                self._loaded_at = time.monotonic()
            return list(self._running)

    # -- serving --------------------------------------------------------------------------
    def decide(self, user_id: str | None, list_type: str) -> Decision | None:
        """The experiment and variant for this user's list of `list_type`, or None
        (anonymous requests and lists no running experiment covers)."""
        if user_id is None:
            return None
        for spec in self.running():
            if list_type in spec.exposure_surfaces():
                return Decision(spec, assign(user_id, spec))
        return None

    def served(
        self,
        list_type: str,
        items: Sequence[Any],
        ids: Sequence[str],
        user_id: str | None = None,
        decision: Decision | None = None,
        exposed: bool = True,
        query: str | None = None,
        n_results: int | None = None,
        policy: str | None = None,
        model_version: str | None = None,
    ) -> Served:
        """Log one served list and return its request id and shown order.

        `items` are what the response holds (any objects), `ids` their item ids, aligned.
        With a decision whose variant explores on `list_type`, the list is re-ordered by the
        exploration and the propensities are logged. `exposed=False` records the variant but
        says it did not shape this list (the request overrode the variant's settings).
        """
        shown, props, marginal = list(items), None, None
        shown_ids = [str(i) for i in ids]
        variant = decision.variant if decision else None
        exploration = variant.exploration if variant is not None and exposed else None
        if exploration is not None and variant is not None and list_type in variant.explore_on:
            with self._rng_lock:
                order, props = explore(range(len(shown)), exploration, self._rng)
            marginal = marginal_propensities(order, len(shown), exploration)
            shown = [shown[i] for i in order]
            shown_ids = [shown_ids[i] for i in order]
        request_id = new_request_id()
        self.log.log(
            Impression(
                request_id=request_id,
                list_type=list_type,
                items=shown_ids,
                user_id=user_id,
                query=query,
                n_results=n_results,
                propensities=props,
                marginal_propensities=marginal,
                policy=policy,
                model_version=model_version,
                experiment_id=decision.experiment_id if decision else None,
                variant=variant.name if variant else None,
                exposed=bool(decision is not None and exposed),
            )
        )
        return Served(request_id, shown, props)

    # -- results --------------------------------------------------------------------------
    def results(self, experiment_id: str, now: datetime | None = None) -> dict[str, Any]:
        """The results document of an experiment (`analysis.experiment_results`)."""
        # imported here: the statistics pull in scipy.stats (seconds of a server's start-up)
        from shelfwise.experiments.analysis import Window, experiment_results

        row = self.get(experiment_id)
        spec = ExperimentSpec.model_validate(row.spec)
        if self._log is not None:
            self._log.flush()
        end = row.stopped_at or now or utc_now()
        start = row.created_at
        window = Window(start, end, start - timedelta(days=spec.pre_period_days))
        impressions = self.store.impressions(since=start, until=end, experiment_id=experiment_id)
        outcomes = self.store.outcome_events(since=start, until=end)
        events = self.store.events(since=window.pre_start, until=end)
        return experiment_results(spec, row.status, window, impressions, outcomes, events)

    def close(self) -> None:
        """Write the queued impressions and stop the writer."""
        if self._log is not None:
            self._log.close()
