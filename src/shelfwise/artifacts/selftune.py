"""Self-tuning builds: tune the personalisation model within a time budget, serve the winner.

`build_bundle(..., tuning=settings.tuning)` with `tuning.build_budget_seconds > 0` calls
`choose_config` before it trains: an Optuna study (in memory, `tuning.tuner.tune` with the
budget as its timeout, the default configurations as its first trials) searches
`tuning.build_model` (or, for `auto`, `tuning.build_candidates`) on a random holdout split
of the store's interactions, scored by `tuning.metric` on a validation carve-out of the
training part. The best configuration then goes into the bundle's models under its name and
becomes the engine's `personalisation_model`; `build_bundle` fits it, like every bundle
model, on ALL the interactions (no split is held back from a served model).

The manifest records what was chosen under `"tuning"` (model, config, validation metric,
the defaults' validation metric, trials, seconds, budget, the store and fingerprint it was
tuned on) and a numeric summary under `metrics["tuning"]` (the admin page's columns). A
later build of the same store (same URL, same search) reuses the latest recorded choice
without tuning (`reused_from` names the bundle it came from) unless `retune` asks.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from shelfwise.artifacts.registry import Registry
from shelfwise.errors import ShelfwiseError
from shelfwise.settings import TuningSettings

log = logging.getLogger(__name__)

__all__ = ["choose_config", "reusable_choice", "search_key"]


def search_key(tuning: TuningSettings, store_url: str) -> dict[str, Any]:
    """What makes two builds' tuning interchangeable: the store and what was searched."""
    from shelfwise.tuning.tuner import TuneSettings

    settings = TuneSettings(model=tuning.build_model, metric=tuning.metric)
    return {
        "store": store_url,
        "search": tuning.build_model,
        "candidates": list(tuning.build_candidates) if tuning.build_model == "auto" else [],
        "metric": settings.metric_key,
    }


def reusable_choice(registry: Registry, key: dict[str, Any]) -> dict[str, Any] | None:
    """The newest bundle's tuning record made for `key` (and not itself skipped), or None."""
    for info in reversed(registry.versions("bundle")):
        record = info.manifest.get("tuning")
        if not isinstance(record, dict) or "config" not in record:
            continue
        if all(record.get(k) == v for k, v in key.items()):
            # a derived bundle (a promotion) carries its parent's record: name the parent
            origin = record.get("reused_from") or info.parent or info.version
            return {**record, "reused_from": origin}
    return None


def _default_values(study: optuna.Study) -> dict[str, float]:
    """Validation value of each model's default configuration (the queued first trials)."""
    out: dict[str, float] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if t.user_attrs.get("default") and t.value is not None:
            out[str(t.user_attrs.get("model", ""))] = round(float(t.value), 6)
    return out


def choose_config(
    events: pd.DataFrame,
    items: pd.DataFrame,
    tuning: TuningSettings,
    registry: Registry,
    *,
    store_url: str,
    fingerprint: str,
    retune: bool = False,
) -> dict[str, Any] | None:
    """The tuning record of a build: reused from an earlier bundle of the same store, or
    a fresh study of at most `tuning.build_budget_seconds` (and `tuning.trials`) on
    `events` (the weighted item events) -> {"model", "config", ...}. None when the budget
    is 0 or the store is too small to split (the defaults are served; logged)."""
    budget = float(tuning.build_budget_seconds)
    if budget <= 0:
        return None
    from shelfwise.evaluation.protocols import prepare
    from shelfwise.tuning.tuner import TuneSettings, tune

    key = search_key(tuning, store_url)
    if not retune:
        previous = reusable_choice(registry, key)
        if previous is not None:
            log.info(
                "reusing the tuned %s of bundle %s (--retune to tune again)",
                previous["model"], previous["reused_from"],
            )  # fmt: skip
            return previous
    settings = TuneSettings(
        model=tuning.build_model,
        candidates=tuple(tuning.build_candidates),
        metric=tuning.metric,
        n_trials=tuning.trials,
        timeout=budget,
        sampler=tuning.sampler,
        pruner=tuning.pruner,
        seed=tuning.seed,
    )
    settings.check()  # a bad model or candidate name fails before any data is split
    started = time.monotonic()
    try:
        data = prepare(events, "holdout", seed=tuning.seed, items=items)
    except ShelfwiseError as exc:
        log.warning("not tuning this build (%s); serving the default configurations", exc)
        return None
    tuned = tune(
        data,
        settings,
        optuna.storages.InMemoryStorage(),
        f"build-{fingerprint[:12] or 'store'}",
        dataset=store_url,
        events=events,
        final=False,
    )
    result = tuned.result
    value = result.best_value
    record: dict[str, Any] = {
        **key,
        "model": result.model,
        "config": result.best_config,
        "validation": round(value, 6) if math.isfinite(value) else None,
        "default_validation": _default_values(tuned.study),
        "trials": result.n_trials,
        "complete": result.n_complete,
        "pruned": result.n_pruned,
        "failed": result.n_failed,
        "seconds": round(time.monotonic() - started, 3),
        "budget_seconds": budget,
        "protocol": "holdout",
        "fingerprint": fingerprint,
        "tuned_at": datetime.now(UTC).isoformat(),
        "reused_from": None,
    }
    log.info(
        "tuned %s in %.0fs (%d trials): %s=%.4f on validation, defaults %s",
        result.model, record["seconds"], result.n_trials, result.metric, value,
        record["default_validation"],
    )  # fmt: skip
    return record


def tuning_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """The numeric summary a manifest's `metrics["tuning"]` holds (the admin page's columns):
    the validation metric under its own name, the defaults' best, trials and seconds."""
    metric = str(record.get("metric", "ndcg@10"))
    defaults = [v for v in (record.get("default_validation") or {}).values() if v is not None]
    out: dict[str, Any] = {
        metric: record.get("validation"),
        "trials": record.get("trials"),
        "seconds": record.get("seconds"),
    }
    if defaults:
        out[f"default_{metric}"] = max(defaults)
    return {k: v for k, v in out.items() if v is not None}
