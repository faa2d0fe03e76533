"""Tuning runs read back from the reports `shelfwise tune` writes (`<root>/reports/<study>/`:
`result.json` and `trials.csv`), for the admin page's history plots. Light on purpose (no
Optuna import): the API reads these on request."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)

__all__ = ["MAX_RUNS", "Trial", "TuningRun", "tuning_runs"]

MAX_RUNS = 20
MAX_TRIALS = 2000


class Trial(BaseModel):
    """One Optuna trial of a tuning run."""

    number: int
    state: str
    value: float | None = None


class TuningRun(BaseModel):
    """One tuning run (an Optuna study) as its report folder records it."""

    study: str
    model: str = ""
    metric: str = ""
    direction: str = "maximize"
    best_value: float | None = None
    best_trial: int | None = None
    n_trials: int = 0
    version: str | None = Field(default=None, description="the model version it saved")
    promoted: bool | None = None
    trials: list[Trial] = Field(default_factory=list)


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _read_run(folder: Path) -> TuningRun | None:
    """A run from `result.json` + `trials.csv`; None when the folder holds neither."""
    result_file, trials_file = folder / "result.json", folder / "trials.csv"
    if not result_file.is_file() and not trials_file.is_file():
        return None
    summary: dict[str, Any] = {}
    if result_file.is_file():
        loaded = json.loads(result_file.read_text(encoding="utf-8"))
        summary = loaded if isinstance(loaded, dict) else {}
    trials: list[Trial] = []
    if trials_file.is_file():
        with trials_file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                number = _number(row.get("number"))
                if number is None:
                    continue
                trials.append(
                    Trial(
                        number=int(number),
                        state=str(row.get("state") or ""),
                        value=_number(row.get("value")),
                    )
                )
                if len(trials) >= MAX_TRIALS:
                    break
    promotion = summary.get("promotion")
    best_trial = _number(summary.get("best_trial"))
    return TuningRun(
        study=str(summary.get("study") or folder.name),
        model=str(summary.get("model") or ""),
        metric=str(summary.get("metric") or ""),
        best_value=_number(summary.get("best_value")),
        best_trial=None if best_trial is None else int(best_trial),
        n_trials=int(_number(summary.get("n_trials")) or len(trials)),
        version=summary.get("version") if isinstance(summary.get("version"), str) else None,
        promoted=promotion.get("promoted") if isinstance(promotion, dict) else None,
        trials=trials,
    )


def tuning_runs(models_dir: Path | None, limit: int = MAX_RUNS) -> list[TuningRun]:
    """The newest tuning runs under `<models_dir>/reports/<study>/`; unreadable ones skipped."""
    if models_dir is None:
        return []
    reports = Path(models_dir) / "reports"
    if not reports.is_dir():
        return []
    folders = [p for p in reports.iterdir() if p.is_dir() and not p.name.startswith(".")]
    folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    runs = []
    for folder in folders:
        try:
            run = _read_run(folder)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping tuning report %s: %s", folder.name, exc)
            continue
        if run is not None:
            runs.append(run)
        if len(runs) >= limit:
            break
    return runs
