"""Run a study: open or resume it, ask / evaluate / tell until the trial count or the time
budget is reached, then fit the best and the default configuration once on the protocol's
training part and score them on its test part.

Trial counting is per study, not per process: `n_trials=50` means the study holds 50
complete, pruned or running trials, so re-running an interrupted command finishes the
remainder, and workers sharing a database study stop together (with samplers other than
`grid` the total may overshoot by at most one trial per extra worker; `grid` never
overshoots and never repeats a point: a trial that finds every point taken is marked failed
without being evaluated). Trials left running by a process that died are
marked failed: at start for a local file storage (one process at a time), through
heartbeats for database storages.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.errors import ConfigError, ShelfwiseError
from shelfwise.evaluation.metrics import per_user_ranking
from shelfwise.evaluation.protocols import ProtocolData, fold_validation
from shelfwise.evaluation.runner import recommend_users
from shelfwise.recommenders.base import ModelConfig, Recommender, available, create
from shelfwise.tuning.data import Fold, validation_folds
from shelfwise.tuning.factory import (
    PRUNERS,
    SAMPLERS,
    is_shared_url,
    make_pruner,
    make_sampler,
    open_storage,
    redact,
)
from shelfwise.tuning.objective import (
    REPEATS_TO_STOP,
    Objective,
    TimeBudgetExceededError,
    fit_model,
    parse_metric,
    training_input,
    tunable_models,
)
from shelfwise.tuning.space import PointListSampler, default_params, grid_points

log = logging.getLogger("shelfwise.tuning")

AUTO = "auto"
AUTO_MODELS: tuple[str, ...] = ("ease", "itemknn", "userknn", "als", "svd", "bpr")
"""Candidates of `--model auto`: the collaborative models that tune fast on small data."""
DEFAULT_TRIALS = 50
NO_CAP = 10**9
MAX_FAILURES_IN_A_ROW = 5
_ATTR = "shelfwise"

Progress = Callable[[str], None]


class TuneSettings(BaseModel):
    """What to tune and how. `model` is a registry name or `auto`. Field values are checked
    by `check()` (names against the registries), with errors naming the field."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    model: str
    metric: str = "ndcg@10"
    n_trials: int | None = None
    timeout: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    cv: int = 1
    seed: int = 42
    """Seeds the validation carve-out (and the sampler, unless `sampler_seed` is set)."""
    sampler_seed: int | None = None
    """The sampler's own seed: two studies on the same validation split with different
    sampler streams (benchmarks compare strategies this way)."""
    candidates: tuple[str, ...] = AUTO_MODELS
    grid_points: int = 4
    max_eval_users: int | None = None
    binary: bool = True
    enqueue_defaults: bool = True
    """Queue each model's default configuration as the study's first trial(s)."""
    pinned: Mapping[str, Mapping[str, Any]] = Field(default_factory=dict)
    """Fixed parameters per model (`--set MODEL.PARAM=VALUE`), in every trial, the default
    and the final model (an epoch cap, CPU threads, a loss)."""

    @property
    def metric_key(self) -> str:
        """The metric as `ranking_metrics` keys it (`"ndcg@10"`)."""
        name, k = parse_metric(self.metric)
        return f"{name}@{k}"

    def check(self) -> None:
        """`ConfigError` for any invalid field, naming it and the valid values."""
        if self.sampler not in SAMPLERS:
            raise ConfigError(
                f"sampler: unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}"
            )
        if self.pruner not in PRUNERS:
            raise ConfigError(
                f"pruner: unknown pruner {self.pruner!r}; choose one of {', '.join(PRUNERS)}"
            )
        parse_metric(self.metric)
        if self.n_trials is not None and self.n_trials < 1:
            raise ConfigError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.cv < 1:
            raise ConfigError(f"cv must be >= 1, got {self.cv}")
        if self.max_eval_users is not None and self.max_eval_users < 1:
            raise ConfigError(f"max_eval_users must be >= 1, got {self.max_eval_users}")
        self.check_pinned()

    def models(self) -> list[str]:
        """The registry names this run searches over."""
        if self.model == AUTO:
            unknown = [m for m in self.candidates if m not in available()]
            if unknown:
                raise ConfigError(
                    f"--models: unknown model(s) {', '.join(unknown)}; valid: "
                    f"{', '.join(available())}"
                )
            found = tunable_models(self.candidates)
            if not found:
                raise ConfigError("--model auto: none of the candidate models can be tuned")
            if self.sampler == "grid" and len(found) > 1:
                raise ConfigError(
                    "--sampler grid works on one model at a time; with --model auto use "
                    "tpe, random or cmaes"
                )
            return found
        if self.model not in available():
            raise ConfigError(
                f"unknown model {self.model!r}; choose auto or one of {', '.join(available())}"
            )
        tunable_models([self.model])
        return [self.model]

    def check_pinned(self) -> None:
        """`ConfigError` for a pinned model that this run does not tune."""
        tuned = self.models()
        stray = sorted(set(self.pinned) - set(tuned))
        if stray:
            raise ConfigError(
                f"--set {stray[0]}.PARAM: {stray[0]} is not tuned in this run; tuned: "
                f"{', '.join(tuned)}"
            )


@dataclass
class TuneResult:
    """What a study found, and the one-time test scores of the best and default configs."""

    model: str
    metric: str
    best_value: float
    best_params: dict[str, Any]
    best_config: dict[str, Any]
    best_trial: int
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    study: str
    storage: str
    sampler: str
    pruner: str
    protocol: str
    cv: int
    seconds: float
    test: dict[str, float] = field(default_factory=dict)
    default_test: dict[str, float] = field(default_factory=dict)
    default_validation: float | None = None
    promotion: dict[str, Any] = field(default_factory=dict)
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the `--json` file)."""
        return asdict(self)


def default_study_name(settings: TuneSettings, dataset: str, protocol: str) -> str:
    """`<model>-<dataset>-<protocol>-<metric>-<sampler>[-cvK]`, safe for file names."""
    label = os.path.basename(dataset.rstrip("/")) or "data"
    parts = [settings.model, label, protocol, settings.metric.replace("@", "at"), settings.sampler]
    if settings.cv > 1:
        parts.append(f"cv{settings.cv}")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))


def _count(study: optuna.Study, states: Sequence[TrialState]) -> int:
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


def _fmt_seconds(s: float) -> str:
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def open_study(
    name: str,
    storage: str | optuna.storages.BaseStorage,
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
    signature: dict[str, Any],
) -> optuna.Study:
    """Create or load a study, checking that a loaded one was made for the same task."""
    store = open_storage(storage) if isinstance(storage, str) else storage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=name,
        storage=store,
        sampler=sampler,
        pruner=pruner,
        direction="maximize",
        load_if_exists=True,
    )
    previous = study.user_attrs.get(_ATTR)
    if previous is None:
        study.set_user_attr(_ATTR, signature)
    elif previous != signature:
        diff = sorted(
            k for k in set(previous) | set(signature) if previous.get(k) != signature.get(k)
        )
        raise ConfigError(
            f"study {name!r} was created for a different task ({', '.join(diff)} differ: "
            f"{ {k: previous.get(k) for k in diff} } vs { {k: signature.get(k) for k in diff} }); "
            "give another --study name or the same settings"
        )
    return study


def fail_stale_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> int:
    """Mark trials left RUNNING by an interrupted process as failed (local storages only)."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(stale)


def enqueue_defaults(study: optuna.Study, objective: Objective) -> int:
    """Queue each candidate's default configuration as a first trial, so the tuned result
    is never worse than the default on validation. Returns how many were queued."""
    queued = 0
    for name in objective.models:
        prefix = f"{name}." if objective.multi else ""
        params = default_params(name, prefix, objective.pinned.get(name))
        if params is None:
            continue
        if objective.multi:
            params = {"model": name, **params}
        study.enqueue_trial(params, user_attrs={"default": True}, skip_if_exists=True)
        queued += 1
    return queued


def run_trials(
    study: optuna.Study,
    objective: Objective,
    n_trials: int,
    timeout: float | None,
    progress: Progress,
) -> None:
    """Ask / evaluate / tell until the study holds `n_trials` or `timeout` seconds pass."""
    start = time.monotonic()
    deadline = start + timeout if timeout else None
    finished_here = 0
    failures = 0
    last_error = ""
    grid = study.sampler if isinstance(study.sampler, PointListSampler) else None
    active = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    while True:
        held = _count(study, active)
        if held >= n_trials:
            break
        if deadline is not None and time.monotonic() >= deadline:
            progress(f"time budget of {_fmt_seconds(timeout or 0)} used; stopping")
            break
        if grid is not None and not grid.unvisited(study):
            break
        if objective.converged:
            progress(
                f"the last {REPEATS_TO_STOP} trials repeated configurations already tried: "
                "nothing new to search; stopping"
            )
            break
        # a trial is cut at the deadline only once the study has a result to fall back on
        has_result = bool(_count(study, (TrialState.COMPLETE,)))
        objective.deadline = deadline if has_result else None
        trial = study.ask()
        if grid is not None and trial.number in grid.exhausted:
            trial.set_user_attr("stopped", "grid exhausted by other workers")
            study.tell(trial, state=TrialState.FAIL)
            break
        t0 = time.monotonic()
        state, value, note = TrialState.COMPLETE, float("nan"), ""
        try:
            value = objective(trial)
            study.tell(trial, value)
            failures = 0
        except optuna.TrialPruned as exc:
            state, note = TrialState.PRUNED, str(exc)
            study.tell(trial, state=TrialState.PRUNED)
            failures = 0
        except TimeBudgetExceededError:
            state, note = TrialState.FAIL, "stopped by the time budget"
            trial.set_user_attr("stopped", note)
            study.tell(trial, state=TrialState.FAIL)
        except KeyboardInterrupt:
            study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # a broken configuration is a failed trial, not a crash
            state, note = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
            log.warning("trial %d failed: %s", trial.number, note)
            trial.set_user_attr("error", note[:500])
            study.tell(trial, state=TrialState.FAIL)
            failures += 1
            last_error = note
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise ShelfwiseError(
                    f"{failures} trials in a row failed; the last one: {last_error}"
                ) from exc
        finished_here += 1
        elapsed = time.monotonic() - start
        per_trial = elapsed / finished_here
        held = _count(study, active)
        eta = per_trial * max(0, n_trials - held)
        if deadline is not None:
            eta = min(eta, deadline - time.monotonic())
        count = f"{held}/{n_trials}" if n_trials < NO_CAP else f"{held}"
        try:
            best = f"best {study.best_value:.4f} (#{study.best_trial.number})"
        except ValueError:
            best = "no complete trial yet"
        model = trial.user_attrs.get("model", "")
        shown = f"{objective.metric}={value:.4f}" if state == TrialState.COMPLETE else note
        progress(
            f"trial {trial.number:>3} {state.name.lower():<8} {model:<9} {shown} "
            f"({time.monotonic() - t0:.1f}s) | {best} | {count} "
            f"trials, {_fmt_seconds(elapsed)} elapsed, ETA {_fmt_seconds(eta)}"
        )


def score_on_test(
    name: str,
    config: ModelConfig | dict[str, Any],
    data: ProtocolData,
    k: int,
    per_user: dict[str, np.ndarray] | None = None,
) -> tuple[Recommender, dict[str, float]]:
    """Refit on everything before the test part and score every test user once: (model,
    ranking metrics at k + fit seconds); `per_user`, when given, is filled with every
    metric's per-user values (`per_user_ranking`, test users in row order) for intervals
    and paired tests.

    Tuning has used the validation part to choose the configuration; the final model is
    fitted on training + validation (`fold_validation`: the matrix and, for sequential
    models, the time-ordered sequences), so under leave-last-out each test item is
    predicted from everything before it, as in the papers' test step and
    `benchmarks/beauty_loo.py`. Protocols without a validation part (the Recommenders
    holdout) fit on the training part as it is."""
    params = config.model_dump() if isinstance(config, ModelConfig) else dict(config)
    model = create(name, **params)
    final = fold_validation(data) if data.validation.nnz else data
    t0 = time.perf_counter()
    fold = Fold(final.train, final.test, final.test_users, getattr(final, "sequences", None))
    fit_model(model, training_input(model, fold), final.catalog)
    fit_seconds = time.perf_counter() - t0
    users = final.test_users
    recs, _ = recommend_users(model, final, users, k)
    values = per_user_ranking(recs, final.test[users], k)
    if per_user is not None:
        per_user.update(values)
    metrics = {key: float(v.mean()) if v.size else 0.0 for key, v in values.items()}
    metrics["fit_seconds"] = fit_seconds
    return model, metrics


@dataclass
class Tuned:
    """The outcome of `tune`: the result, the study, the objective and the final model."""

    result: TuneResult
    study: optuna.Study
    objective: Objective
    model: Recommender
    folds: list[Fold]


def tune(
    data: ProtocolData,
    settings: TuneSettings,
    storage: str | optuna.storages.BaseStorage,
    study_name: str,
    dataset: str = "",
    events: pd.DataFrame | None = None,
    progress: Progress | None = None,
    final: bool = True,
) -> Tuned:
    """Tune on the validation folds, then (with `final`) score best and default on test."""
    settings.check()
    say = progress or log.info
    models = settings.models()
    t_start = time.monotonic()
    folds = validation_folds(
        data, events, settings.cv, settings.seed, settings.max_eval_users, settings.binary
    )
    objective = Objective(models, folds, settings.metric_key, data.catalog, pinned=settings.pinned)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage) if isinstance(storage, str) else storage
    storage_label = redact(storage) if isinstance(storage, str) else type(storage).__name__
    shared = isinstance(storage, str) and is_shared_url(storage)

    points = (
        grid_points(models[0], settings.grid_points, pinned=settings.pinned.get(models[0]))
        if settings.sampler == "grid"
        else None
    )
    n_trials = settings.n_trials
    if n_trials is None:
        n_trials = (
            len(points) if points is not None else (NO_CAP if settings.timeout else DEFAULT_TRIALS)
        )
    if points is not None:  # the grid's first n_trials points, one per trial number
        n_trials = min(n_trials, len(points))
        points = points[:n_trials]
    # The sampler's seed moves on with the study (and the process, for shared storages), so
    # a resumed or second worker does not replay the first one's random draws.
    probe = optuna.create_study(
        study_name=study_name, storage=store, direction="maximize", load_if_exists=True
    )
    base_seed = settings.seed if settings.sampler_seed is None else settings.sampler_seed
    seed = base_seed + len(probe.trials) + (os.getpid() if shared else 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = make_sampler(settings.sampler, seed, points)
        pruner = make_pruner(settings.pruner)
    signature = {
        "models": models,
        "metric": settings.metric_key,
        "protocol": data.protocol,
        "dataset": dataset,
        "cv": settings.cv,
        "seed": settings.seed,
        **({"pinned": {m: dict(v) for m, v in settings.pinned.items()}} if settings.pinned else {}),
    }
    study = open_study(study_name, store, sampler, pruner, signature)
    if not probe.trials and points is None and settings.enqueue_defaults:
        enqueue_defaults(study, objective)
    if not shared:
        stale = fail_stale_trials(study, store)
        if stale:
            say(f"marked {stale} trial(s) left running by an interrupted run as failed")
    already = _count(study, (TrialState.COMPLETE, TrialState.PRUNED))
    users = sum(int(f.users.size) for f in folds)
    say(
        f"study {study_name} ({storage_label}): {', '.join(models)} on {dataset or 'data'} "
        f"[{data.protocol}, {len(folds)} fold(s), {users:,} validation users], "
        f"{settings.sampler} sampler, {settings.pruner} pruner, "
        f"{'target ' + str(n_trials) + ' trials' if n_trials < NO_CAP else 'no trial cap'}"
        f"{', budget ' + _fmt_seconds(settings.timeout) if settings.timeout else ''}"
        f"{f', resuming with {already} finished' if already else ''}"
    )
    run_trials(study, objective, n_trials, settings.timeout, say)

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ShelfwiseError(
            f"study {study_name}: no trial completed; give more time (--timeout) or trials"
        )
    best = study.best_trial
    name, config = objective.config_of(best.params)
    _, k = parse_metric(settings.metric)
    result = TuneResult(
        model=name,
        metric=settings.metric_key,
        best_value=float(best.value if best.value is not None else np.nan),
        best_params=dict(best.params),
        best_config=config.model_dump(mode="json"),
        best_trial=best.number,
        n_trials=len(study.trials),
        n_complete=len(complete),
        n_pruned=_count(study, (TrialState.PRUNED,)),
        n_failed=_count(study, (TrialState.FAIL,)),
        study=study_name,
        storage=storage_label,
        sampler=settings.sampler,
        pruner=settings.pruner,
        protocol=data.protocol,
        cv=settings.cv,
        seconds=0.0,
    )
    say(
        f"best: trial {best.number}, {name} {settings.metric}={result.best_value:.4f} on "
        f"validation, params {best.params}"
    )
    model: Recommender = create(name, **config.model_dump())
    if final:
        default_config = objective.default_config(name)
        result.default_validation = objective.evaluate(name, default_config)
        say(
            f"default {name}: {settings.metric}={result.default_validation:.4f} on validation; "
            "fitting best and default on the training part for the test split"
        )
        model, result.test = score_on_test(name, config, data, k)
        _, result.default_test = score_on_test(name, default_config, data, k)
        say(
            f"test {settings.metric}: tuned {result.test[settings.metric_key]:.4f}, default "
            f"{result.default_test[settings.metric_key]:.4f}"
        )
    result.seconds = time.monotonic() - t_start
    return Tuned(result, study, objective, model, folds)
