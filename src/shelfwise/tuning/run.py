"""One tuning run as a library call: load a data set, split it, tune, score once on test,
refit the winner on all the data set's interactions, save that model in the registry,
promote it if it beats the champion, write the report.

The saved (and, once promoted, served) model is the best configuration fitted on every
interaction of the data set; its metrics are those of the same configuration fitted on the
protocol's training (+ validation) part and scored on the test part, which the served model
has seen. `extra["fitted_on"]` records it ("all", with the interaction count).

`shelfwise tune` and the API's background tune job (in a child process) both call
`tune_dataset`; neither builds the other's command line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.artifacts.registry import Registry
from shelfwise.data.matrix import InteractionWeights, build_interactions
from shelfwise.data.sequences import Sequences
from shelfwise.evaluation.protocols import ProtocolData, _interaction_rows, prepare
from shelfwise.evaluation.sources import load_frames
from shelfwise.recommenders.base import Recommender, create
from shelfwise.tuning.data import Fold
from shelfwise.tuning.objective import fit_model, training_input
from shelfwise.tuning.promotion import Decision, challenge, save_and_promote
from shelfwise.tuning.report import write_best_toml, write_html, write_json, write_trials_csv
from shelfwise.tuning.tuner import Tuned, TuneResult, TuneSettings, default_study_name, tune

log = logging.getLogger("shelfwise.tuning")

__all__ = ["TuneRun", "tune_dataset"]


@dataclass
class TuneRun:
    """What one run produced: the tuned result, the promotion decision (None without
    promotion), where the report is, and the study name."""

    tuned: Tuned
    result: TuneResult
    decision: Decision | None
    report_dir: Path | None
    study: str


def refit_on_all(
    model: Recommender, events: pd.DataFrame, data: ProtocolData, binary: bool = True
) -> tuple[Recommender, int]:
    """A fresh `model` (same name and configuration) fitted on every interaction of
    `events`, over `data`'s user and item vocabularies -> (model, interactions fitted)."""
    frame = _interaction_rows(events)
    weights = InteractionWeights(binary=True) if binary else InteractionWeights()
    full = build_interactions(frame, weights, users=data.users, items=data.items).matrix
    fresh = create(model.name, **model.config.model_dump())
    sequences = Sequences.from_frame(frame, data.users, data.items) if fresh.sequential else None
    empty = sp.csr_matrix(full.shape, dtype=np.float32)
    fold = Fold(full, empty, np.zeros(0, dtype=np.int64), sequences)
    fit_model(fresh, training_input(fresh, fold), data.catalog)
    return fresh, int(full.nnz)


def tune_dataset(
    dataset: str,
    settings: TuneSettings,
    models_dir: Path,
    *,
    protocol: str | None = None,
    seed: int = 42,
    binary: bool = True,
    study: str | None = None,
    storage: str | None = None,
    report_dir: Path | None = None,
    promote: bool = True,
    final: bool = True,
    progress: Callable[[str], None] = log.info,
) -> TuneRun:
    """Tune on `dataset` (a dataset name, `demo`, or a .duckdb store file) into the registry
    at `models_dir`. `final=False` only runs trials (an extra worker on a shared study):
    nothing is saved or reported."""
    settings.check()  # bad names fail before any data is read
    if protocol is None:  # next-item models are judged on the next item, as in train
        sequential = all(create(m).sequential for m in settings.models())
        protocol = "loo" if sequential else "holdout"
    t0 = time.perf_counter()
    label, events, items = load_frames(dataset, seed)
    data = prepare(events, protocol, seed=seed, binary=binary, items=items)
    m = data.summary["matrix"]
    log.info(
        "%s %s split: %d users x %d items, train %d cells (%.1fs)",
        label, protocol, m["users"], m["items"], m["train_nnz"], time.perf_counter() - t0,
    )  # fmt: skip
    models_dir = Path(models_dir)
    study = study or default_study_name(settings, label, protocol)
    storage = storage or str(models_dir / "studies" / f"{study}.journal")
    tuned = tune(
        data, settings, storage, study, dataset=label, events=events, progress=progress,
        final=final,
    )  # fmt: skip
    result = tuned.result
    if not final:
        return TuneRun(tuned, result, None, None, study)
    registry = Registry(models_dir)
    decision = None
    if promote:
        decision = challenge(registry, tuned.objective, result.best_value)
        result.promotion = decision.to_dict()
        metrics: dict[str, Any] = {
            "validation": {result.metric: result.best_value},
            "test": result.test,
            "default_test": result.default_test,
        }
        served, fitted = refit_on_all(tuned.model, events, data, binary)
        extra = {
            "fitted_on": {"part": "all", "interactions": fitted},
            "study": result.study,
            "storage": result.storage,
            "protocol": result.protocol,
            "metric": result.metric,
            "sampler": result.sampler,
            "pruner": result.pruner,
            "cv": result.cv,
            "best_trial": result.best_trial,
            "n_trials": result.n_trials,
            "seed": seed,
        }
        result.version = save_and_promote(registry, served, decision, metrics, data, label, extra)
    report_dir = report_dir or models_dir / "reports" / study
    comments = [
        f"shelfwise tune: best of {result.n_trials} trials in study {study}",
        f"{result.metric} = {result.best_value:.4f} on validation ({result.protocol}), "
        f"{result.test.get(result.metric, float('nan')):.4f} on test",
        f"reproduce: shelfwise train --model {result.model} --config best.toml "
        f"--dataset {label} --protocol {result.protocol}",
    ]
    write_best_toml(result.model, result.best_config, report_dir / "best.toml", comments)
    write_trials_csv(tuned.study, report_dir / "trials.csv")
    write_html(tuned.study, result.to_dict(), report_dir / "report.html")
    write_json(result.to_dict(), report_dir / "result.json")
    return TuneRun(tuned, result, decision, report_dir, study)
