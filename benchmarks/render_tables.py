"""Render the README's benchmark tables (Markdown) from the JSON in benchmarks/results/.

    python benchmarks/render_tables.py [--results benchmarks/results]

Prints the MovieLens 100K (Microsoft Recommenders protocol) and the Amazon Beauty
(leave-last-one-out) tables with the published rows beside ours, so that the README's
numbers always come from a file a benchmark script wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _f(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def movielens(d: dict[str, Any]) -> str:
    """Ours (sorted by nDCG@10) beside the published rows."""
    rows = [
        "| model | MAP | nDCG@10 | Precision@10 | Recall@10 | fit s | users/s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    ours = sorted(d["results"].items(), key=lambda kv: -kv[1]["nDCG@k"])
    for name, r in ours:
        rows.append(
            f"| **shelfwise {name}** | {_f(r['MAP'])} | {_f(r['nDCG@k'])} | "
            f"{_f(r['Precision@k'])} | {_f(r['Recall@k'])} | {_f(r['fit_seconds'], 2)} | "
            f"{r['recommend_users_per_second']:,.0f} |"
        )
    published = sorted(d["published"].items(), key=lambda kv: -kv[1]["nDCG@k"])
    for name, r in published:
        rows.append(
            f"| published {name} | {_f(r['MAP'])} | {_f(r['nDCG@k'])} | "
            f"{_f(r['Precision@k'])} | {_f(r['Recall@k'])} | | |"
        )
    src = d["published_source"]
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
            f"| **shelfwise {name}** | {_f(r['full_HR@10'])} | {_f(r['full_NDCG@10'])} | "
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
    for key, src in d.get("published_sources", {}).items():
        where = src.get("url") or f"{src.get('repository')} {src.get('path')} @ {src.get('commit')}"
        rows.append(f"- [{key}] {src['citation']}; {where}; protocol: {src['protocol']}.")
    return "\n".join(rows)


def main() -> None:
    """Print both tables."""
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


if __name__ == "__main__":
    main()
