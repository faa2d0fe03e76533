"""The benchmark tables' interval cells (`benchmarks/render_tables.py`) and the per-user
sampled intervals of `benchmarks/beauty_loo.py`: known answers."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from shelfwise.evaluation.stats import binary_interval, mean_interval

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
T_975_2 = 4.302652729911275  # t(0.975, 2 degrees of freedom)


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_test_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rt() -> ModuleType:
    return _script("render_tables")


def test_per_query_cell_from_values_summary_interval_or_bound(rt: ModuleType) -> None:
    # 0, 0.5, 1: mean 0.5, s = 0.5, half = t(0.975, 2) * 0.5 / sqrt(3) = 1.2421
    half = T_975_2 * 0.5 / math.sqrt(3)
    expected = f"0.5000 ± {half:.4f}"
    assert rt.per_query_cell({"per_query": {"ndcg@10": [1.0, 0.0, 0.5]}}, 3) == expected
    summary = {"ndcg@10": {"n": 3, "mean": 0.5, "sd": 0.5}}
    assert rt.per_query_cell({"per_query_summary": summary}, 3) == expected
    ci = {"ndcg@10": 0.5, "ci95": {"ndcg@10": [0.5 - half, 0.5 + half]}}
    assert rt.per_query_cell(ci, 3) == expected
    # nothing per query: only the bound, p = 0.5, n = 101 -> 1.98397 * 0.05
    assert rt.per_query_cell({"ndcg@10": 0.5}, 101) == "0.5000 ± ≤0.0992"
    assert "≤" not in rt.per_query_cell({"per_query_summary": summary, "ndcg@10": 0.5}, 3)


def test_sampled_intervals_from_the_ranks() -> None:
    bl = _script("beauty_loo")
    # ranks 1, 3, 11 of 100: HR@10 1 1 0, NDCG@10 1, 1 / log2(4) = 0.5, 0; MRR 1, 1/3, 1/11
    out = bl.sampled_intervals(np.array([1, 3, 11]), 99)
    assert out["ci95"]["sampled99_HR@10"] == pytest.approx(list(binary_interval(2 / 3, 3)[1:]))
    half = T_975_2 * 0.5 / math.sqrt(3)  # NDCG values 1, 0.5, 0: s = 0.5
    assert out["ci95"]["sampled99_NDCG@10"] == pytest.approx([0.5 - half, 0.5 + half])
    mrr = mean_interval([1.0, 1 / 3, 1 / 11])
    assert out["ci95"]["sampled99_MRR"] == pytest.approx(list(mrr[1:]))
    counts = out["rank_counts"]
    assert len(counts) == 100 and sum(counts) == 3
    assert counts[0] == counts[2] == counts[10] == 1


def test_keep_timings_only_where_the_figures_agree() -> None:
    bl = _script("beauty_loo")
    figures = {c: 0.1 for c in bl.CHECKED}
    quiet = {t: 1.0 for t in bl.TIMINGS}
    loaded = {t: 9.0 for t in bl.TIMINGS}
    earlier: dict[str, Any] = {
        "results": {"a": {**figures, **quiet}, "b": {**figures, **quiet}, "c": {**figures}}
    }
    report: dict[str, Any] = {
        "results": {
            "a": {**figures, **loaded, "sampled99_rank_counts": [1]},
            "b": {**figures, "full_NDCG@10": 0.2, **loaded, "sampled99_rank_counts": [1]},
            "c": {**figures, **quiet},  # kept from the earlier file by --merge: untouched
        }
    }
    out = bl.keep_timings(report, earlier, "the quiet run")
    a, b = out["results"]["a"], out["results"]["b"]
    assert a["fit_seconds"] == 1.0 and a["rerun_timings"]["fit_seconds"] == 9.0
    assert b["fit_seconds"] == 9.0 and "rerun_timings" not in b
    assert "rerun_timings" not in out["results"]["c"]
    assert out["timings_from"] == {"models": ["a"], "run": "the quiet run", "tolerance": 1e-9}
    assert b["max_abs_diff_from_timed_run"] == pytest.approx(0.1)
    loose = bl.keep_timings(
        {
            "results": {
                "b": {**figures, "full_NDCG@10": 0.2, **loaded, "sampled99_rank_counts": [1]}
            }
        },
        earlier,
        "the quiet run",
        tolerance=0.2,
    )
    assert loose["results"]["b"]["fit_seconds"] == 1.0


def test_beauty_table_says_which_sampled_cells_are_bounds(rt: ModuleType) -> None:
    row: dict[str, Any] = {
        "full_HR@10": 0.5, "full_NDCG@10": 0.5, "sampled99_HR@10": 0.5,
        "sampled99_NDCG@10": 0.5, "fit_seconds": 1.0, "recommend_users_per_second": 10.0,
        "ci95": {"full_HR@10": [0.4, 0.6], "full_NDCG@10": [0.4, 0.6]},
    }  # fmt: skip
    with_ranks = {**row, "ci95": {**row["ci95"], "sampled99_NDCG@10": [0.45, 0.55],
                                  "sampled99_HR@10": [0.45, 0.55]}}  # fmt: skip
    d = {
        "results": {"old": row, "new": with_ranks},
        "protocol": {"split_summary": {"matrix": {"test_users": 101}}},
    }
    table = rt.beauty(d)
    new = next(line for line in table.splitlines() if "shelfwise new" in line)
    old = next(line for line in table.splitlines() if "shelfwise old" in line)
    assert "0.5000 ± 0.0500" in new and "≤" not in new
    assert "0.5000 ± ≤0.0992" in old  # sampled NDCG@10: the bound, n = 101
    assert "stored means for old" in table


def test_search_modes_keeps_quiet_latencies_only_when_ndcg_agrees() -> None:
    sm = _script("search_modes")
    lat = {key: 1.0 for key in sm.LATENCY}
    earlier = {"results": {"x": {**lat, "ndcg@10": 0.5}}, "timings": {"bundle_s": 1.0}}
    loaded = {key: 9.0 for key in sm.LATENCY}
    out = {"results": {"x": {**loaded, "ndcg@10": 0.5}}, "timings": {"bundle_s": 9.0}}
    kept = sm.keep_latencies(out, earlier, "quiet run")
    assert kept["results"]["x"]["p99_ms"] == 1.0
    assert kept["results"]["x"]["rerun_latency"]["p99_ms"] == 9.0
    assert kept["timings"] == {"bundle_s": 1.0} and kept["rerun_timings"] == {"bundle_s": 9.0}
    other = {"results": {"x": {**loaded, "ndcg@10": 0.6}}, "timings": {"bundle_s": 9.0}}
    assert sm.keep_latencies(other, earlier, "quiet run")["results"]["x"]["p99_ms"] == 9.0
