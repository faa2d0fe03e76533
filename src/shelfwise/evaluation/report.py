"""Evaluation results as JSON, a plain-text table and a self-contained HTML page.

The JSON shape is fixed::

    {"dataset": ..., "protocol": ..., "k": 10,
     "results": {MODEL: {"ndcg@10": ..., "recall@10": ..., "precision@10": ...,
                         "map@10": ..., "hr@10": ..., "mrr@10": ..., "coverage": ...,
                         "fit_seconds": ..., "recommend_users_per_second": ...,
                         ...extra keys (f1, novelty, sampled metrics)...}}}

A model that failed has `{"error": "..."}` as its entry. Extra top-level keys (`split`,
`params`, `sampled`, `seed`) may follow. With several seeds, `results` holds the means and
`intervals` `{MODEL: {METRIC: {"mean", "ci95": [lo, hi], "values"}}}`; `comparisons` lists
paired tests between models on per-user metrics (`shelfwise.evaluation.stats`). The table
then shows `mean ±half-width` of each metric's 95% interval, and the p-values below it.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shelfwise.evaluation.runner import ModelRun


def main_keys(k: int) -> list[str]:
    """The metric keys every successful result carries, in table order."""
    return [
        f"ndcg@{k}",
        f"recall@{k}",
        f"precision@{k}",
        f"map@{k}",
        f"hr@{k}",
        f"mrr@{k}",
        "coverage",
        "fit_seconds",
        "recommend_users_per_second",
    ]


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def build_report(
    dataset: str,
    protocol: str,
    k: int,
    runs: Mapping[str, ModelRun],
    **extra: Any,
) -> dict[str, Any]:
    """The report dictionary (see the module doc); `extra` adds top-level keys."""
    results: dict[str, Any] = {}
    for name, run in runs.items():
        if run.error is not None:
            results[name] = {"error": run.error}
            continue
        ordered = {key: run.metrics[key] for key in main_keys(k) if key in run.metrics}
        ordered.update({key: v for key, v in run.metrics.items() if key not in ordered})
        results[name] = ordered
    report: dict[str, Any] = {"dataset": dataset, "protocol": protocol, "k": k}
    report["results"] = results
    report.update(extra)
    return dict(_clean(report))


def write_json(report: Mapping[str, Any], path: Path) -> None:
    """Write the report as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if not isinstance(value, int | float):
        return str(value)
    if key == "fit_seconds" or key.endswith("_seconds"):
        return f"{value:.2f}"
    if key.endswith("per_second"):
        return f"{value:,.0f}"
    if key in ("users_evaluated",):
        return f"{int(value):,}"
    return f"{value:.4f}"


BEYOND_ACCURACY: tuple[str, ...] = (
    "coverage", "novelty", "arp", "gini", "long_tail_share", "ild", "calibration_kl",
)  # fmt: skip


def table_columns(report: Mapping[str, Any]) -> list[str]:
    """Accuracy keys, sampled metrics, beyond-accuracy metrics (those any result has), then
    the speed columns."""
    k = int(report["k"])
    cols = main_keys(k)
    seen: list[str] = []
    for res in report["results"].values():
        for key in res:
            if key.startswith("sampled") and key not in seen and key not in cols:
                seen.append(key)
    present = {key for res in report["results"].values() for key in res}
    beyond = [key for key in BEYOND_ACCURACY if key in present or key == "coverage"]
    return cols[:6] + seen + beyond + cols[7:]


def _cell(report: Mapping[str, Any], name: str, key: str, value: Any) -> str:
    """A value, as `mean ±half` when the report has its interval over seeds."""
    iv = report.get("intervals", {}).get(name, {}).get(key)
    if iv is None or key.endswith("_seconds") or key.endswith("per_second"):
        return _fmt(key, value)
    low, high = iv["ci95"]
    if low is None or high is None:
        return _fmt(key, value)
    return f"{_fmt(key, value)}±{(high - low) / 2:.4f}"


def format_comparisons(report: Mapping[str, Any]) -> str:
    """One line per paired test: the mean difference, its 95% interval and p-values."""
    lines = []
    for c in report.get("comparisons", []):
        low, high = c["ci95"]
        lines.append(
            f"{c['a']} - {c['b']} {c['metric']}: {c['mean_diff']:+.4f} "
            f"[{low:+.4f}, {high:+.4f}] paired t p={c['p_value_t']:.2g}, "
            f"Wilcoxon p={c['p_value_wilcoxon']:.2g} ({c['n_pairs']:,} pairs)"
        )
    return "\n".join(lines)


def format_table(report: Mapping[str, Any]) -> str:
    """A fixed-width text table: one row per model, one column per main metric."""
    cols = table_columns(report)
    headers = ["model", *[c.replace("recommend_users_per_second", "users/s") for c in cols]]
    rows: list[list[str]] = []
    for name, res in report["results"].items():
        if "error" in res:
            rows.append([name, f"ERROR: {res['error']}"])
            continue
        rows.append([name, *[_cell(report, name, c, res.get(c)) for c in cols]])
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) == len(headers):
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = [
        f"{report['dataset']} / {report['protocol']} / k={report['k']}",
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        ),
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        if len(row) != len(headers):
            lines.append(f"{row[0].ljust(widths[0])}  {row[1]}")
        else:
            lines.append(
                "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                )
            )
    comparisons = format_comparisons(report)
    if comparisons:
        lines += ["", "paired tests (per-user, pooled over seeds):", comparisons]
    if report.get("groups"):
        lines += ["", format_groups(report)]
    if report.get("mmr"):
        lines += ["", "MMR re-ranking (accuracy-diversity trade-off):", format_mmr(report)]
    return "\n".join(lines)


_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#bab0ac")  # fmt: skip


def svg_bar_chart(title: str, values: Sequence[tuple[str, float]], width: int = 420) -> str:
    """A horizontal bar chart as an inline <svg> element (no external resources)."""
    bar_h, gap, label_w, top = 18, 6, 110, 26
    height = top + len(values) * (bar_h + gap) + 8
    finite = [v for _, v in values if math.isfinite(v)]
    vmax = max([*finite, 0.0]) or 1.0
    plot_w = width - label_w - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for i, (name, value) in enumerate(values):
        y = top + i * (bar_h + gap)
        v = value if math.isfinite(value) else 0.0
        w = max(0.0, v / vmax * plot_w)
        color = _PALETTE[i % len(_PALETTE)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" font-size="12" text-anchor="end">'
            f"{html.escape(name)}</text>"
        )
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
            f"<title>{html.escape(name)}: {value:.4g}</title></rect>"
        )
        parts.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 13}" font-size="11">{value:.4g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def popularity_plot_png(profile: Mapping[str, Any]) -> str | None:
    """The popularity-bias curves (share of recommendations per item-popularity decile,
    each model beside the training data) as a base64 PNG, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency of the docs extra
        return None
    import base64
    import io

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    for i, (name, shares) in enumerate(profile["models"].items()):
        ax.plot(range(1, len(shares) + 1), shares, marker="o", label=name,
                color=_PALETTE[i % len(_PALETTE)])  # fmt: skip
    train = profile["training"]
    ax.plot(range(1, len(train) + 1), train, "k--", label="training interactions")
    ax.set_xlabel("item popularity decile (1 = most popular)")
    ax.set_ylabel("share of recommended slots")
    ax.set_title("Popularity bias")
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _extra_sections(report: Mapping[str, Any]) -> str:
    """HTML of the paired tests, per-group metrics, popularity-bias plot and MMR curve."""
    parts: list[str] = []
    comparisons = format_comparisons(report)
    if comparisons:
        parts.append(f"<h2>Paired tests</h2><pre>{html.escape(comparisons)}</pre>")
    if report.get("groups"):
        parts.append(f"<h2>Per group</h2><pre>{html.escape(format_groups(report))}</pre>")
    profile = report.get("popularity_bias")
    if profile:
        png = popularity_plot_png(profile)
        if png:
            parts.append(
                f'<h2>Popularity bias</h2><img alt="popularity bias" '
                f'src="data:image/png;base64,{png}">'
            )
    if report.get("mmr"):
        parts.append(f"<h2>MMR trade-off</h2><pre>{html.escape(format_mmr(report))}</pre>")
    return "".join(parts)


def format_groups(report: Mapping[str, Any]) -> str:
    """Per attribute and group: each model's mean per-user metric ±half of its interval."""
    lines = []
    metric = report.get("group_metric", "")
    for attribute, groups in report.get("groups", {}).items():
        lines.append(f"{metric} by {attribute}:")
        for label, row in groups.items():
            cells = [
                f"{name} {v['mean']:.4f}±{(v['ci95'][1] - v['ci95'][0]) / 2:.4f}"
                for name, v in row.items()
                if name != "users" and v["ci95"][0] is not None
            ]
            lines.append(f"  {label:<8} ({row['users']:>4} users)  " + "  ".join(cells))
    return "\n".join(lines)


def format_mmr(report: Mapping[str, Any]) -> str:
    """The MMR curve: per model and lambda, accuracy beside intra-list diversity."""
    lines = []
    k = report["k"]
    for name, points in report.get("mmr", {}).items():
        for p in points:
            lines.append(
                f"{name} lambda={p['lambda']:.2f}: ndcg@{k}={p[f'ndcg@{k}']:.4f} "
                f"ild={p['ild']:.4f} coverage={p['coverage']:.4f}"
            )
    return "\n".join(lines)


def render_html(report: Mapping[str, Any]) -> str:
    """A single self-contained HTML page: the results table and one bar chart per metric."""
    cols = table_columns(report)
    ok = {n: r for n, r in report["results"].items() if "error" not in r}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["model", *cols])
    body: list[str] = []
    for name, res in report["results"].items():
        if "error" in res:
            body.append(
                f"<tr><td>{html.escape(name)}</td><td colspan='{len(cols)}' class='err'>"
                f"{html.escape(str(res['error']))}</td></tr>"
            )
            continue
        cells = "".join(f"<td>{html.escape(_cell(report, name, c, res.get(c)))}</td>" for c in cols)
        body.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    charts = []
    for col in cols:
        values = [(n, float(r[col])) for n, r in ok.items() if isinstance(r.get(col), int | float)]
        if values:
            charts.append(f'<div class="chart">{svg_bar_chart(col, values)}</div>')
    shown = ("dataset", "protocol", "k", "results", "comparisons", "groups", "popularity_bias")
    extra = {k: v for k, v in report.items() if k not in shown}
    details = html.escape(json.dumps(extra, indent=2)) if extra else ""
    title = f"Shelfwise evaluation: {report['dataset']} / {report['protocol']} / k={report['k']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 24px; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; font-size: 13px; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
td.err {{ color: #b00; text-align: left; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 16px; }}
.chart {{ border: 1px solid #eee; padding: 6px; }}
pre {{ background: #f7f7f7; padding: 8px; font-size: 12px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<table><thead><tr>{head}</tr></thead><tbody>
{"".join(body)}
</tbody></table>
<div class="charts">{"".join(charts)}</div>
{_extra_sections(report)}
{f"<h2>Details</h2><pre>{details}</pre>" if details else ""}
</body></html>
"""


def write_html(report: Mapping[str, Any], path: Path) -> None:
    """Write `render_html(report)` to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
