"""Tuning reports: the best configuration as TOML, the trials as CSV, and one HTML page with
the optimisation history, parameter importances and parallel coordinates.

The HTML page is self-contained: plotly's JavaScript is inlined once (no CDN; the machines
may be offline). A figure Optuna cannot draw for a study (importances need two complete
trials with varying parameters) is replaced by a note saying why.
"""

from __future__ import annotations

import html
import json
import logging
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from shelfwise.artifacts.registry import config_toml

log = logging.getLogger("shelfwise.tuning")


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, duration, params, model and error."""
    rows = []
    for t in study.trials:
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        row: dict[str, Any] = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value,
            "last_step": t.last_step,
            "duration_seconds": duration,
            "model": t.user_attrs.get("model", ""),
            "repeat_of": t.user_attrs.get("repeat_of"),
            "error": t.user_attrs.get("error", t.user_attrs.get("stopped", "")),
        }
        row.update({f"param:{k}": v for k, v in t.params.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def write_trials_csv(study: optuna.Study, path: Path) -> None:
    """The trials as CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    trials_frame(study).to_csv(path, index=False)


def write_best_toml(
    model: str, config: Mapping[str, Any], path: Path, comments: list[str] | None = None
) -> None:
    """`[model]` with the best configuration, readable by `--config` of train / evaluate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_toml(model, config, comments), encoding="utf-8")


def _figures(study: optuna.Study) -> list[tuple[str, Any, str]]:
    """(title, figure or None, note) for each plot."""
    from optuna import visualization as vis

    out: list[tuple[str, Any, str]] = []
    plots = (
        ("Optimisation history", vis.plot_optimization_history),
        ("Parameter importances", vis.plot_param_importances),
        ("Parallel coordinates", vis.plot_parallel_coordinate),
        ("Intermediate values (per epoch / fold)", vis.plot_intermediate_values),
    )
    for title, fn in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = fn(study)
            out.append((title, fig, ""))
        except Exception as exc:  # a plot that cannot be drawn is a note, not a failure
            out.append((title, None, f"not available for this study: {exc}"))
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def render_html(study: optuna.Study, summary: Mapping[str, Any]) -> str:
    """The report page (plotly JS inlined once)."""
    parts: list[str] = []
    first = True
    for title, fig, note in _figures(study):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if fig is None:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
            continue
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
        first = False
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td><code>"
        f"{html.escape(json.dumps(_clean(v)) if not isinstance(v, str) else v)}</code></td></tr>"
        for k, v in summary.items()
    )
    frame = trials_frame(study)
    table = frame.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.4f}")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>shelfwise tune: {html.escape(str(summary.get('study', '')))}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px;text-align:left}.note{color:#777}</style></head><body>"
        f"<h1>Tuning report: {html.escape(str(summary.get('study', '')))}</h1>"
        f"<table>{rows}</table>{''.join(parts)}<h2>Trials</h2>{table}</body></html>"
    )


def write_html(study: optuna.Study, summary: Mapping[str, Any], path: Path) -> None:
    """Write `render_html` to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(study, summary), encoding="utf-8")


def write_json(summary: Mapping[str, Any], path: Path) -> None:
    """The result as JSON (non-finite floats as null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(dict(summary)), indent=2) + "\n", encoding="utf-8")
