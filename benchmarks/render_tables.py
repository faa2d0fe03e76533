"""Render the README's benchmark tables (Markdown) from the JSON in benchmarks/results/.

    python benchmarks/render_tables.py [--results benchmarks/results]

Prints the MovieLens 100K (Microsoft Recommenders protocol) and the Amazon Beauty
(leave-last-one-out) tables with the published rows beside ours, the TPE-versus-random
tuning comparison and the tuned-versus-default tables, so that the README's numbers always
come from a file a benchmark script wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _f(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _iv(r: dict[str, Any], col: str) -> str:
    """`mean ± half-width` of the 95% interval over seeds (the value alone without one)."""
    ci = r.get("ci95", {}).get(col)
    if not ci or ci[0] is None:
        return _f(r[col])
    return f"{_f(r[col])} ± {(ci[1] - ci[0]) / 2:.4f}"


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
            f"{_f(r.get('novelty'), 2)} | {_f(r['fit_seconds'], 2)} | "
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
    for name, r in ours:
        rows.append(
            f"| **shelfwise {name}** | {_iv(r, 'full_HR@10')} | {_iv(r, 'full_NDCG@10')} | "
            f"{_f(r.get('sampled99_HR@10'))} | {_f(r.get('sampled99_NDCG@10'))} | "
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
        rows.append(
            "Full-ranking figures: mean ± half-width of the 95% t interval over the test users "
            "(the leave-last-out split has no seed to vary). Sampled figures and published "
            "rows carry none."
        )
        rows.append("")
    for key, src in d.get("published_sources", {}).items():
        where = src.get("url") or f"{src.get('repository')} {src.get('path')} @ {src.get('commit')}"
        rows.append(f"- [{key}] {src['citation']}; {where}; protocol: {src['protocol']}.")
    return "\n".join(rows)


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
    return "\n".join([*rows, "", *notes])


def tuned_vs_default(d: dict[str, Any]) -> str:
    """MovieLens 100K tuned and default rows beside the published ones, then Beauty."""
    rows = [
        "| model | config | trials (pruned) | validation nDCG@10 | MAP | nDCG@10 | "
        "Precision@10 | Recall@10 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, res in d["results"].items():
        if "error" in res:
            rows.append(f"| {name} | error: {res['error']} | | | | | | |")
            continue
        for kind in ("tuned", "default"):
            if kind not in res:
                continue
            r = res[kind]
            val = res.get("validation_ndcg", {}).get(kind)
            trials = f"{res['n_trials']} ({res['n_pruned']})" if kind == "tuned" else ""
            rows.append(
                f"| {name} | {kind} | {trials} | {_f(val)} | {_f(r['MAP'])} | "
                f"{_f(r['nDCG@k'])} | {_f(r['Precision@k'])} | {_f(r['Recall@k'])} |"
            )
    for name, r in sorted(d["published"].items(), key=lambda kv: -kv[1]["nDCG@k"]):
        rows.append(
            f"| published {name} | | | | {_f(r['MAP'])} | {_f(r['nDCG@k'])} | "
            f"{_f(r['Precision@k'])} | {_f(r['Recall@k'])} |"
        )
    for key in ("beauty_full", "beauty"):
        if key not in d:
            continue
        part = d[key]
        rows += [
            "",
            f"{part['protocol']}; {part['budget_seconds_per_model']:.0f} s of tuning per model:",
            "",
            "| model | config | trials (pruned) | validation nDCG@10 | HR@10 | NDCG@10 |",
            "|---|---|---|---:|---:|---:|",
        ]
        for name, res in part["results"].items():
            for kind in ("tuned", "default"):
                if kind not in res:
                    continue
                val = res.get("validation_ndcg", {}).get(kind)
                trials = f"{res['n_trials']} ({res['n_pruned']})" if kind == "tuned" else ""
                rows.append(
                    f"| {name} | {kind} | {trials} | {_f(val)} | {_f(res[kind]['HR@10'])} | "
                    f"{_f(res[kind]['NDCG@10'])} |"
                )
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
