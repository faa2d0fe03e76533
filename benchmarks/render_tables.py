"""Render the README's benchmark tables (Markdown) from the JSON in benchmarks/results/.

    python benchmarks/render_tables.py [--results benchmarks/results]

Prints the MovieLens 100K (Microsoft Recommenders protocol) and the Amazon Beauty
(leave-last-one-out) tables with the published rows beside ours, the TPE-versus-random
tuning comparison and the tuned-versus-default tables, so that the README's numbers always
come from a file a benchmark script wrote.

Every figure of ours carries a 95% interval, and each table says which kind:

- over seeds (`ci95` of a multi-seed run: the t interval of the per-seed values);
- over test users or queries (`ci95` from the per-unit values of one run,
  `shelfwise.evaluation.stats.per_unit_intervals`);
- for a stored run without per-unit values: exact for a 0/1 per-user metric (HR@10, from
  its mean and the number of users, `binary_interval`), and for other metrics in [0, 1]
  (nDCG@10) an upper bound of the half-width (`bounded_half_width`), printed `± ≤h`;
- over repeated studies (tuning comparisons: one study per seed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from shelfwise.evaluation.stats import (
    binary_interval,
    bounded_half_width,
    mean_interval,
    paired_test,
    summary_interval,
)

BOUND_NOTE = (
    "`± ≤h`: no per-unit values were stored for that run, so h is an upper bound of the "
    "95% t interval's half-width over the n units (a metric in [0, 1] has variance at most "
    "p (1 - p)); HR@10 is 0 or 1 per user, so its interval follows exactly from the mean "
    "and n."
)


def _f(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _iv(r: dict[str, Any], col: str, digits: int = 4) -> str:
    """`mean ± half-width` of the row's 95% interval of `col` (the value alone without one)."""
    ci = r.get("ci95", {}).get(col)
    if not ci or ci[0] is None:
        return _f(r.get(col), digits)
    return f"{_f(r[col], digits)} ± {(ci[1] - ci[0]) / 2:.{digits}f}"


def pm(mean: Any, ci: Any, digits: int = 4) -> str:
    """`mean ± half-width` of an interval [lo, hi] (the mean alone without one)."""
    if mean is None:
        return ""
    if not ci or ci[0] is None:
        return _f(mean, digits)
    return f"{_f(mean, digits)} ± {(ci[1] - ci[0]) / 2:.{digits}f}"


def pm_unit(mean: Any, n: int | None, binary: bool, digits: int = 4) -> str:
    """A stored mean over n units without per-unit values: the exact t interval of a 0/1
    metric (`binary`), else `± ≤h`, the bound of a metric in [0, 1]."""
    if mean is None or not n:
        return _f(mean, digits)
    if binary:
        _, low, high = binary_interval(float(mean), int(n))
        return pm(mean, [low, high], digits)
    return f"{_f(mean, digits)} ± ≤{bounded_half_width(float(mean), int(n)):.{digits}f}"


def per_query_cell(row: dict[str, Any], n: int | None, key: str = "ndcg@10") -> str:
    """A search metric over n judged queries with its 95% t interval over queries: from
    the row's per-query values (`per_query[key]`, any order), their summary
    (`per_query_summary[key]`: n, mean, sd) or its `ci95[key]`, else the bound `± ≤h` of a
    metric in [0, 1] (`pm_unit`)."""
    values = row.get("per_query", {}).get(key)
    if values:
        mean, low, high = mean_interval(values)
        return pm(mean, [low, high])
    summary = row.get("per_query_summary", {}).get(key)
    if summary:
        mean, low, high = summary_interval(summary["mean"], summary["sd"], summary["n"])
        return pm(mean, [low, high])
    ci = row.get("ci95", {}).get(key)
    if ci:
        return pm(row[key], ci)
    return pm_unit(row.get(key), n, binary=False)


QUERY_NOTE = (
    "nDCG@10: mean ± half-width of the 95% t interval over the judged queries; where the "
    "run kept no per-query values, `± ≤h` is the upper bound of that half-width (nDCG is in "
    "[0, 1], so its variance is at most p (1 - p))."
)


def movielens(d: dict[str, Any]) -> str:
    """Ours (sorted by nDCG@10, mean ± 95% interval over seeds) beside the published rows."""
    rows = [
        "| model | MAP | nDCG@10 | Precision@10 | Recall@10 | coverage | novelty | fit s "
        "| users/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ours = sorted(
        ((n, r) for n, r in d["results"].items() if "error" not in r),
        key=lambda kv: -kv[1]["nDCG@k"],
    )
    for name, r in ours:
        rows.append(
            f"| **shelfwise {name}** | {_iv(r, 'MAP')} | {_iv(r, 'nDCG@k')} | "
            f"{_iv(r, 'Precision@k')} | {_iv(r, 'Recall@k')} | {_iv(r, 'coverage')} | "
            f"{_iv(r, 'novelty', 2)} | {_f(r['fit_seconds'], 2)} | "
            f"{r['recommend_users_per_second']:,.0f} |"
        )
    published = sorted(d["published"].items(), key=lambda kv: -kv[1]["nDCG@k"])
    for name, r in published:
        rows.append(
            f"| published {name} (one run) | {_f(r['MAP'])} | {_f(r['nDCG@k'])} | "
            f"{_f(r['Precision@k'])} | {_f(r['Recall@k'])} | | | | |"
        )
    src = d["published_source"]
    protocol = d.get("protocol", {})
    rows.append("")
    if protocol.get("seeds"):
        rows.append(
            f"Ours: {protocol['split']}; mean ± half-width of the 95% t interval over split "
            f"seeds {', '.join(str(s) for s in protocol['seeds'])}. Published rows are single "
            "runs (no interval published)."
        )
        rows.append("")
    rows.append(
        f"Published rows: {src['repository']}, {src['path']}, commit {src['commit'][:8]}. "
        f"{src['note']}"
    )
    return "\n".join(rows)


def beauty(d: dict[str, Any]) -> str:
    """Full ranking and sampled (1 positive + 99 negatives) HR/NDCG@10, ours and published."""
    rows = [
        "| model | HR@10 full | NDCG@10 full | HR@10 sampled-100 | NDCG@10 sampled-100 "
        "| fit s | users/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ours = sorted(d["results"].items(), key=lambda kv: -kv[1]["full_NDCG@10"])
    n = d.get("protocol", {}).get("split_summary", {}).get("matrix", {}).get("test_users")
    for name, r in ours:
        rows.append(
            f"| **shelfwise {name}** | {_iv(r, 'full_HR@10')} | {_iv(r, 'full_NDCG@10')} | "
            f"{_sampled(r, 'sampled99_HR@10', n)} | {_sampled(r, 'sampled99_NDCG@10', n)} | "
            f"{_f(r['fit_seconds'], 1)} | {r['recommend_users_per_second']:,.0f} |"
        )
    for name, r in d.get("published", {}).items():
        full = r.get("mode") == "full"
        hr, ndcg = r.get("HR@10"), r.get("NDCG@10")
        rows.append(
            f"| published {name} [{r['source']}] | {_f(hr) if full else ''} | "
            f"{_f(ndcg) if full else ''} | {'' if full else _f(hr)} | "
            f"{'' if full else _f(ndcg)} | | |"
        )
    rows.append("")
    if any("ci95" in r for r in d["results"].values()):
        bound = [
            name
            for name, r in ours
            if "error" not in r and "sampled99_NDCG@10" not in r.get("ci95", {})
        ]
        sampled = (
            "sampled figures from the stored means for "
            + ", ".join(bound)
            + f" (run before their per-user ranks were kept). {BOUND_NOTE}"
            if bound
            else "sampled figures from each user's rank of the target among the 100 "
            "candidates (`sampled99_rank_counts`)."
        )
        rows.append(
            "Ours: mean ± half-width of the 95% t interval over the "
            f"{_count(n)} test users (the leave-last-out split has no seed to vary): "
            f"full-ranking figures from the per-user values; {sampled} Published rows carry "
            "none."
        )
        timed = d.get("timings_from")
        if timed and timed.get("models"):
            tol = timed.get("tolerance", 0.0)
            rows += [
                "",
                "The intervals come from a rerun on a loaded machine whose figures agree with "
                f"an earlier run's within {tol:g}; fit s and users/s of "
                f"{', '.join(timed['models'])} are that run's ({timed['run']}); the rerun's "
                "own are in the JSON (`rerun_timings`).",
            ]
        rows.append("")
    for key, src in d.get("published_sources", {}).items():
        where = src.get("url") or f"{src.get('repository')} {src.get('path')} @ {src.get('commit')}"
        rows.append(f"- [{key}] {src['citation']}; {where}; protocol: {src['protocol']}.")
    return "\n".join(rows)


def _count(value: Any) -> str:
    return "" if value is None else f"{value:,.0f}"


def _sampled(r: dict[str, Any], col: str, n: int | None) -> str:
    """A sampled-ranking cell: its stored per-user interval, else from the mean and n."""
    if r.get("ci95", {}).get(col):
        return _iv(r, col)
    return pm_unit(r.get(col), n, binary="HR" in col)


def _s(value: Any) -> str:
    return "never" if value is None else f"{value:.0f}"


def tuning_compare(*reports: dict[str, Any]) -> str:
    """Per model and seed: final bests, seconds to random search's final best, ratios."""
    rows = [
        "| model | seed | trials random / TPE (pruned) | final best random | final best TPE "
        "| s to random's best: random | TPE | ratio | ratio within tolerance |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for report in reports:
        for model, res in report["results"].items():
            summ = res["summary"]
            label = f"{model}, {res['budget_seconds']:.0f} s"
            for seed, row in summ["per_seed"].items():
                rnd, tpe = res["runs"]["random"][seed], res["runs"]["tpe+median"][seed]
                rows.append(
                    f"| {label} | {seed} | {rnd['n_trials']} / {tpe['n_trials']} "
                    f"({tpe['n_pruned']}) | {_f(row['random_final_best'])} | "
                    f"{_f(row['tpe_final_best'])} | {_s(row['random_seconds_to_target'])} | "
                    f"{_s(row['tpe_seconds_to_target'])} | "
                    f"{_f(row['tpe_over_random_time'], 2) or '-'} | "
                    f"{_f(row['tpe_over_random_time_within_tolerance'], 2) or '-'} |"
                )
            med, med_tol = summ["median_time_ratio"], summ["median_time_ratio_within_tolerance"]
            notes.append(
                f"- {model} ({res['budget_seconds']:.0f} s per study): median ratio "
                f"{_f(med, 2) or 'inf'}, at most half the time in "
                f"{summ['seeds_at_most_half_time']} seeds; within {summ['tolerance']}: "
                f"{_f(med_tol, 2) or 'inf'}, {summ['seeds_at_most_half_time_within_tolerance']}"
                f"; mean final best TPE {summ['mean_best']['tpe+median']:.4f} vs random "
                f"{summ['mean_best']['random']:.4f}"
            )
    return "\n".join([*rows, "", *notes, "", tuning_intervals(*reports)])


def tuning_intervals(*reports: dict[str, Any]) -> str:
    """Per model and budget, over the repeated studies (one per seed): the mean final best
    validation value of each strategy with its 95% t interval, and the paired difference
    TPE - random (paired t and Wilcoxon over seeds)."""
    rows = [
        "| model | studies | final best random [95% CI] | final best TPE [95% CI] "
        "| TPE - random [95% CI] | p (paired t) | p (Wilcoxon) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        for model, res in report["results"].items():
            per_seed = res["summary"]["per_seed"].values()
            rnd = [row["random_final_best"] for row in per_seed]
            tpe = [row["tpe_final_best"] for row in per_seed]
            cells = []
            for values in (rnd, tpe):
                mean, low, high = mean_interval(values)
                cells.append(pm(mean, [low, high]))
            if len(rnd) >= 2:
                test = paired_test(tpe, rnd)
                lo, hi = test["ci95"]
                cells += [
                    f"{test['mean_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]",
                    f"{test['p_value_t']:.2g}",
                    f"{test['p_value_wilcoxon']:.2g}",
                ]
            else:
                cells += ["", "", ""]
            rows.append(
                f"| {model}, {res['budget_seconds']:.0f} s | {len(rnd)} | "
                + " | ".join(cells)
                + " |"
            )
    rows += [
        "",
        "Intervals over repeated studies: each seed is one random-search and one TPE study "
        "of the same budget; mean ± half-width of the 95% t interval of the final best "
        "validation value over those studies, and the paired difference per seed.",
    ]
    return "\n".join(rows)


def _paired_cell(res: dict[str, Any]) -> str:
    test = res.get("paired_ndcg")
    if not test:
        return ""
    lo, hi = test["ci95"]
    return f"{test['mean_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}], p {test['p_value_t']:.2g}"


def _tvd_cell(res: dict[str, Any], kind: str, col: str) -> str:
    """A tuned / default test figure with its per-user interval (rescored), else from the
    mean and the number of test users."""
    value = res[kind][col]
    ci = res.get("ci95", {}).get(kind, {}).get(col)
    if ci:
        return pm(value, ci)
    return pm_unit(value, res.get("test_users"), binary=col.startswith("HR"))


def tuned_vs_default(d: dict[str, Any]) -> str:
    """MovieLens 100K tuned and default rows beside the published ones, then Beauty; test
    figures with their 95% t interval over test users, and tuned - default nDCG@10 paired
    per user."""
    cols = ("MAP", "nDCG@k", "Precision@k", "Recall@k")
    rows = [
        "| model | config | trials (pruned) | validation nDCG@10 | MAP | nDCG@10 | "
        "Precision@10 | Recall@10 | tuned - default nDCG@10 [95% CI], p |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    users = None
    for name, res in d["results"].items():
        if "error" in res:
            rows.append(f"| {name} | error: {res['error']} | | | | | | | |")
            continue
        users = res.get("test_users", users)
        for kind in ("tuned", "default"):
            if kind not in res:
                continue
            val = res.get("validation_ndcg", {}).get(kind)
            trials = f"{res['n_trials']} ({res['n_pruned']})" if kind == "tuned" else ""
            cells = " | ".join(_tvd_cell(res, kind, c) for c in cols)
            paired = _paired_cell(res) if kind == "tuned" else ""
            rows.append(f"| {name} | {kind} | {trials} | {_f(val)} | {cells} | {paired} |")
    for name, r in sorted(d["published"].items(), key=lambda kv: -kv[1]["nDCG@k"]):
        rows.append(
            f"| published {name} | | | | {_f(r['MAP'])} | {_f(r['nDCG@k'])} | "
            f"{_f(r['Precision@k'])} | {_f(r['Recall@k'])} | |"
        )
    rescored = d.get("rescore")
    rows.append("")
    if rescored:
        worst = max(rescored["max_abs_diff"].values())
        rows.append(
            f"Ours: mean ± half-width of the 95% t interval over the {_count(users)} test "
            "users of the one split; the last column pairs tuned and default user by user "
            f"(paired t). Intervals from refitting the stored configurations "
            f"(`{rescored['command']}`; refitted means within {worst:.1e} of the stored "
            "ones). Published rows are single runs (no interval published)."
        )
    for key in ("beauty_full", "beauty"):
        if key not in d:
            continue
        part = d[key]
        rows += [
            "",
            f"{part['protocol']}; {part['budget_seconds_per_model']:.0f} s of tuning per model:",
            "",
            "| model | config | trials (pruned) | validation nDCG@10 | HR@10 | NDCG@10 "
            "| tuned - default NDCG@10 [95% CI], p |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        bound = False
        for name, res in part["results"].items():
            bound = bound or "ci95" not in res
            for kind in ("tuned", "default"):
                if kind not in res:
                    continue
                val = res.get("validation_ndcg", {}).get(kind)
                trials = f"{res['n_trials']} ({res['n_pruned']})" if kind == "tuned" else ""
                paired = _paired_cell(res) if kind == "tuned" else ""
                rows.append(
                    f"| {name} | {kind} | {trials} | {_f(val)} | "
                    f"{_tvd_cell(res, kind, 'HR@10')} | {_tvd_cell(res, kind, 'NDCG@10')} | "
                    f"{paired} |"
                )
        n = next((r.get("test_users") for r in part["results"].values()), None)
        rows += [
            "",
            f"Mean ± half-width of the 95% t interval over the {_count(n)} test users"
            + (f". {BOUND_NOTE}" if bound else " (refitted, per-user values)."),
        ]
    return "\n".join(rows)


def main() -> None:
    """Print every table whose results file exists."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    ml = args.results / "movielens100k_recommenders.json"
    if ml.is_file():
        print("### MovieLens 100K\n")
        print(movielens(json.loads(ml.read_text())))
        print()
    bt = args.results / "beauty_loo.json"
    if bt.is_file():
        print("### Amazon Beauty, leave-last-one-out\n")
        print(beauty(json.loads(bt.read_text())))
        print()
    compare = [
        args.results / f
        for f in (
            "tuning_compare.json",
            "tuning_compare_sasrec.json",
            "tuning_compare_sasrec_1800.json",
            "tuning_compare_sasrec_loss_searched.json",
        )
    ]
    found = [json.loads(p.read_text()) for p in compare if p.is_file()]
    if found:
        print("### TPE with pruning against random search\n")
        print(tuning_compare(*found))
        print()
    tvd = args.results / "tuned_vs_default.json"
    if tvd.is_file():
        print("### Tuned against default on the test split\n")
        print(tuned_vs_default(json.loads(tvd.read_text())))


if __name__ == "__main__":
    main()
