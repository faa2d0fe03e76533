"""Markdown tables of the benchmark results (`benchmarks/results/*.json`), by name.

The benchmark pages carry markers such as `<!-- bench: movielens -->`; `hooks.py` replaces
each with `render(name)`. Tables that `benchmarks/render_tables.py` (or `load_test.py`)
already renders are taken from there, so the README's old tables and the site agree.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import manifest

from shelfwise.evaluation.stats import correlation_interval

BENCHMARKS = manifest.ROOT / "benchmarks"


def _script(name: str) -> ModuleType:
    """A benchmark script as a module (they are files, not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _json(name: str) -> dict[str, Any]:
    path = manifest.RESULTS / name
    if not path.is_file():
        raise FileNotFoundError(
            f"benchmarks/results/{name} is missing: run the benchmark that writes it (see the "
            "page's command) or drop the page's marker"
        )
    return json.loads(path.read_text())


def _f(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    return "" if value is None else f"{value:,.0f}"


def _ms(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


def _repeat_lifts(targets: dict[str, Any]) -> list[str]:
    """A simulator benchmark's `targets` as a table: each comparison's lift with its 95%
    interval and p-value in every repeat (after a blank line)."""
    lines = ["", "| comparison | repeat | lift [95% CI] | p-value |", "|---|---:|---:|---:|"]
    for name, t in targets.items():
        for i, (lift, ci, p) in enumerate(
            zip(t["lift"], t["lift_ci95"], t["p_value"], strict=True), start=1
        ):
            lines.append(f"| {name} | {i} | {lift:+.1%} {_interval(*ci, pct=True)} | {p:.2g} |")
    return lines


def _note(d: dict[str, Any], key: str = "machine") -> str:
    machine = d.get(key)
    if not machine:
        return ""
    return "\n\n<small>Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + "</small>"


# ---- tables rendered by benchmarks/render_tables.py ------------------------------------------


def movielens() -> str:
    """MovieLens 100K, Microsoft Recommenders protocol, ours beside the published rows."""
    return _script("render_tables").movielens(_json("movielens100k_recommenders.json"))


def beauty() -> str:
    """Amazon Beauty, leave-last-one-out, classic models."""
    return _script("render_tables").beauty(_json("beauty_loo.json"))


def tuning_compare() -> str:
    """TPE + median pruning against random search (current runs)."""
    files = ("tuning_compare.json", "tuning_compare_sasrec.json", "tuning_compare_sasrec_1800.json")
    return _script("render_tables").tuning_compare(*(_json(f) for f in files))


def tuning_compare_loss_searched() -> str:
    """The superseded SASRec comparison whose space still searched the loss."""
    report = _json("tuning_compare_sasrec_loss_searched.json")
    return _script("render_tables").tuning_compare(report)


def tuned_vs_default() -> str:
    """Tuned against default configurations on the test split."""
    return _script("render_tables").tuned_vs_default(_json("tuned_vs_default.json"))


# ---- tables rendered here -------------------------------------------------------------------


def load_test_runs() -> str:
    """Every load-test run (closed-loop sweep and fixed rates), from load_test.py."""
    return _script("load_test").markdown(_json("load_test.json"))


def load_test() -> str:
    """Per endpoint, the highest throughput whose p99 stays under the target."""
    d = _json("load_test.json")
    data = d["data"]
    lines = [
        f"| endpoint ({data['items']:,} items, {data['users']:,} users, DuckDB, "
        f"{d['server']['workers']} worker) | throughput with p99 < {d['target_p99_ms']:g} ms | "
        "at | p50 ms | p99 ms | server time (mean) ms |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for scenario, body in d["results"].items():
        best = body.get("best_under_target")
        if not best:
            lines.append(f"| {scenario} | none under target | | | | |")
            continue
        lines.append(
            f"| {scenario} | {best['rps']:,.0f} req/s | {best['connections']} connections | "
            f"{best['p50_ms']:.1f} | {best['p99_ms']:.1f} | {best.get('server_mean_ms', '')} |"
        )
    lines += ["", f"Command: `{d['command']}` (run {d['created']})."]
    return "\n".join(lines) + _note(d)


def _load_rows(d: dict[str, Any]) -> list[str]:
    """Every scenario and level of one load-test report: req/s, p50, p99, server CPU."""
    lines = [
        "| route | clients | req/s | p50 ms | p99 ms | errors | server CPU (cores) | "
        "server CPU ms / request | client CPU (cores) | 1-min load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, body in d["results"].items():
        for r in body["runs"]:
            lines.append(
                f"| {scenario} | {r['connections']} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['errors']} | {r.get('server_cpu', '')} | "
                f"{r.get('server_cpu_ms_per_request', '')} | {r.get('client_cpu', '')} | "
                f"{r.get('load_avg_1m', '')} |"
            )
    return lines


def events_load() -> str:
    """`events_load.py`: each level's median (min-max) of 3 runs, server CPU per request."""
    d = _json("events_load_1300k.json")
    lines = [
        "| store | client | clients | events per request | acknowledged events/s | p50 ms "
        "| p99 ms | server CPU ms per request | load average |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["results"]:
        store = f"{r['backend']} ({r['workers']} worker{'s' if r['workers'] > 1 else ''})"
        for level in r["levels"]:
            eps, p99 = level["events_per_s"], level["p99_ms"]
            loads = [x for run in level["runs"] for x in run["load_avg_1m"]]
            lines.append(
                f"| {store} | {level.get('client', 'python')} | {level['clients']} "
                f"| {level['events_per_request']} "
                f"| {_count(eps['median'])} ({_count(eps['min'])}-{_count(eps['max'])}) "
                f"| {level['p50_ms']['median']:.0f} "
                f"| {p99['median']:.0f} ({p99['min']:.0f}-{p99['max']:.0f}) "
                f"| {level['server_cpu_ms_per_request']['median']:.2f} "
                f"| {min(loads):.0f}-{max(loads):.0f} |"
            )
    stored = ", ".join(f"{r['backend']} {r['events_stored']:,}" for r in d["results"])
    checked = all(r["all_acked_stored"] for r in d["results"])
    lines += [
        "",
        f"Events stored before the run: {stored}; every acknowledged event was found in the "
        f"store: {'yes' if checked else 'NO'}. {_note(d)}",
    ]
    return "\n".join(lines)


def load_test_levels() -> str:
    """The DuckDB load test (one worker) at every level, with server and client CPU."""
    d = _json("load_test.json")
    lines = _load_rows(d)
    lines += ["", f"Command: `{d['command']}` (run {d['created']})."]
    return "\n".join(lines) + _note(d)


def load_test_postgresql() -> str:
    """The same load test on PostgreSQL with several workers."""
    d = _json("load_test_postgresql.json")
    lines = _load_rows(d)
    lines += [
        "",
        f"Command: `{d['command']}` (run {d['created']}), {d['server']['workers']} workers.",
    ]
    return "\n".join(lines) + _note(d)


def load_test_clients() -> str:
    """One route driven by different clients, and the server with auth off / rate limit on."""
    d = _json("load_test_clients.json")
    lines = [
        "| server | client | connections | req/s | answered 2xx/s | p50 ms | p99 ms | "
        "client CPU (cores) | server CPU (cores) | server CPU ms / request | 1-min load avg |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant, runs in d["results"].items():
        for r in runs:
            lines.append(
                f"| {variant} | {r['client']} | {r['connections']} | {r['rps']:,.1f} | "
                f"{r.get('ok_rps', r['rps']):,.1f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['client_cpu']} | {r['server_cpu']} | "
                f"{r.get('server_cpu_ms_per_request', '')} | {r['load_avg_1m']} |"
            )
    lines += ["", f"Command: `{d['command']}` (run {d['created']})."]
    return "\n".join(lines) + _note(d)


def asgi_fast_reads() -> str:
    """CPU per request through the whole ASGI app in-process, FastAPI route vs fast lane."""
    lane, route = _json("asgi_profile.json"), _json("asgi_profile_route.json")
    lines = [
        "| route | FastAPI route: CPU ms / request (min-max) | fast lane: CPU ms / request "
        "(min-max) | change | 1-min load avg |",
        "|---|---:|---:|---:|---:|",
    ]
    for scenario, fast in lane["results"].items():
        slow = route["results"].get(scenario)
        if slow is None:
            continue
        a, b = slow["cpu_ms_per_request_median"], fast["cpu_ms_per_request_median"]
        loads = [r["load_avg_1m"] for r in slow["runs"] + fast["runs"]]
        lines.append(
            f"| {scenario} | {a:.2f} ({slow['cpu_ms_per_request_min']:.2f}-"
            f"{slow['cpu_ms_per_request_max']:.2f}) | {b:.2f} "
            f"({fast['cpu_ms_per_request_min']:.2f}-{fast['cpu_ms_per_request_max']:.2f}) | "
            f"{(b - a) / a:+.0%} | {min(loads):g} to {max(loads):g} |"
        )
    lines += [
        "",
        f"Commands: `{route['command']}`, then `{lane['command']}` (run {lane['created']}); "
        "median of the repeats, CPU of every thread of the process (`time.process_time`).",
    ]
    return "\n".join(lines) + _note(lane)


def startup_100k() -> str:
    """Restart at 100,000 items: ready, first search and where the time went."""
    d = _json("startup-100000.json")
    lines = [
        "| figure | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for key, v in d["summary"].items():
        unit = "ms" if key.endswith("_ms") else "s"
        lines.append(f"| {key} | {v['median']:.2f} {unit} | {v['min']:.2f} | {v['max']:.2f} |")
    lines += ["", f"Command: `{d['command']}`, {d['repeats']} starts."]
    return "\n".join(lines) + _note(d)


def scale_curve() -> str:
    """Each point of the scale curve: ingest, build, memory, restart, p99."""
    d = _json("scale_curve.json")
    lines = [
        "| items | shoppers | events | ingest events/s (how) | build s | peak RSS GB (stage) | "
        "restart to first search s | search p99 ms | recommendations p99 ms | stopped |",
        "|---:|---:|---:|---|---:|---|---:|---:|---:|---|",
    ]
    for p in d["points"]:
        ingest, build = p.get("ingest", {}), p.get("build", {})
        restart, req = p.get("restart", {}), p.get("requests", {})
        events = ingest.get("events") or (ingest.get("counts") or {}).get("events")
        if events is None:
            events = ((p.get("generate") or {}).get("counts") or {}).get("events")
        peaks = {
            stage: p[stage]["peak_rss_mb"]
            for stage in ("generate", "ingest", "build")
            if (p.get(stage) or {}).get("peak_rss_mb") is not None
        }
        peak = max(peaks, key=lambda stage: peaks[stage]) if peaks else None
        lines.append(
            f"| {p['items']:,} | {p['users']:,} | {_count(events)} | "
            f"{_count(ingest.get('ingest_events_per_s'))} "
            f"({'CLI' if 'CLI' in ingest.get('path', '') else 'in process'}) | "
            f"{build.get('build_s', '')} | "
            f"{'' if peak is None else f'{peaks[peak] / 1024:.1f} ({peak})'} | "
            f"{restart.get('first_search_s', '')} | "
            f"{(req.get('search') or {}).get('p99_ms', '')} | "
            f"{(req.get('recommendations') or {}).get('p99_ms', '')} | "
            f"{p.get('stopped_at') or ''} |"
        )
    lines += ["", f"Command: `{d['command']}` (run {d.get('created', '')})."]
    return "\n".join(lines) + _note(d)


def _optimizer_rows(runs: dict[str, Any], with_loss: bool) -> list[str]:
    rt = _script("render_tables")
    head = (
        "| run | lr | final val NDCG@10 | best val NDCG@10 (epoch) | test NDCG@10 (95% CI over "
        "test users) |"
    )
    sep = "|---|---|---:|---|---:|"
    if with_loss:
        head += " training loss, first -> last epoch |"
        sep += "---|"
    lines = [head + " seconds |", sep + "---:|"]
    bound = False
    users = next((r["test_users"] for r in runs.values() if r.get("test_users")), None)
    for name, r in runs.items():
        final = "diverged" if r["diverged"] else _f(r["final_val_ndcg@10"] or 0)
        ci = r.get("test_ndcg@10_ci95")
        bound = bound or not ci
        test = rt.pm(r["test_ndcg@10"], ci) if ci else rt.pm_unit(r["test_ndcg@10"], users, False)
        row = (
            f"| {name} | {r['params']['lr']:g} | {final} | {_f(r['best_val_ndcg@10'] or 0)} "
            f"({r['best_epoch']}) | {test} |"
        )
        if with_loss:
            loss = r.get("loss_by_epoch") or []
            row += f" {loss[0]:.2f} -> {loss[-1]:.2f} |" if loss else " |"
        lines.append(row + f" {r['seconds']:.1f} |")
    lines += [
        "",
        "Test NDCG@10: mean ± half-width of the 95% t interval over the "
        f"{_count(users)} test users of the one run, from its per-user values "
        "(`python benchmarks/optimizer_study.py --rescore` retrains the rows to record them)"
        + (f". Rows not retrained yet: {rt.BOUND_NOTE}" if bound else "."),
    ]
    return lines


def optimizer_bprmf() -> str:
    """BPR-MF on MovieLens 100K: each optimiser at its best learning rate."""
    part = _json("optimizer_study.json")["bprmf"]
    return "\n".join(_optimizer_rows(part["best"], with_loss=False))


def optimizer_bprmf_schedules() -> str:
    """BPR-MF: every schedule with adam and adamw."""
    part = _json("optimizer_study.json")["bprmf"]
    return "\n".join(_optimizer_rows(part["schedules"], with_loss=False))


def optimizer_sasrec() -> str:
    """SASRec on a Beauty sample: each optimiser at its usual rate."""
    d = _json("optimizer_study.json")
    return "\n".join(_optimizer_rows(d["sasrec"]["runs"], with_loss=True)) + _note(d)


def beauty_sequential() -> str:
    """SASRec, GRU4Rec and Caser beside the best classic models and published numbers, with
    95% intervals over the test users."""
    d = _json("beauty_sequential.json")
    rt = _script("render_tables")
    n = d.get("protocol", {}).get("test_users")
    cols = ("full_HR@10", "full_NDCG@10", "sampled99_HR@10", "sampled99_NDCG@10")

    def cells(r: dict[str, Any]) -> str:
        out = []
        for c in cols:
            ci = r.get("ci95", {}).get(c)
            binary = "HR" in c
            out.append(rt.pm(r[c], ci) if ci else rt.pm_unit(r[c], n, binary=binary))
        return " | ".join(out)

    lines = [
        "| model | full HR@10 | full NDCG@10 | sampled-99 HR@10 | sampled-99 NDCG@10 | "
        "epochs (best) | s/epoch | stopped by |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    ours = sorted(d["results"].items(), key=lambda kv: -kv[1]["full_NDCG@10"])
    for name, r in ours:
        lines.append(
            f"| **shelfwise {name}** | {cells(r)} | {r['epochs_run']} ({r['best_epoch']}) | "
            f"{r['seconds_per_epoch']:.0f} | {r['stopped_by']} |"
        )
    for name, r in d.get("classic", {}).items():
        lines.append(f"| classic: {name} | {cells(r)} | | | |")
    for name, r in d.get("published", {}).items():
        full = r["mode"] == "full"
        hr, nd = _f(r["HR@10"]), _f(r["NDCG@10"])
        row = f"{hr} | {nd} | | " if full else f" | | {hr} | {nd}"
        lines.append(f"| published {name} | {row} | | | |")
    stored = all("ci95" in r for r in d["results"].values())
    lines += [
        "",
        f"Ours and the classic rows: mean ± half-width of the 95% t interval over the "
        f"{_count(n)} test users of one run (leave-last-out has no split seed to vary, and "
        "a run is too long on this CPU to repeat)"
        + ("." if stored else f". {rt.BOUND_NOTE}")
        + " Published rows are single runs (no interval published).",
        "",
    ]
    for name, r in d.get("published", {}).items():
        lines.append(f"- {name}: {r['source']}")
    for note in d.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + _note(d)


def ease_large() -> str:
    """EASE at a 23,715-item catalogue: accuracy with intervals, then each run's seconds,
    peak memory and load."""
    d = _json("ease_large.json")
    rt = _script("render_tables")
    data, est = d["data"], d["ease_memory_estimate_gib"]
    lines = [
        f"| model ({data['users']:,} users x {data['items']:,} items) | nDCG@10 | Recall@10 "
        "| HR@10 |",
        "|---|---:|---:|---:|",
    ]
    timing = [
        "| model | run | fit s | fit + score s | RSS before MiB | peak RSS of the stage MiB "
        "| load avg (1 min) before -> after |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in d["results"].items():
        if "error" in r:
            lines.append(f"| {name} | error: {r['error']} | | |")
            continue
        m, ci = r["metrics"], r["ci95"]
        n = ci["ndcg@10"]["n"]
        lines.append(
            f"| {name} | {rt.pm(m['ndcg@10'], ci['ndcg@10']['ci95'])} | "
            f"{rt.pm(m['recall@10'], ci['recall@10']['ci95'])} | "
            f"{rt.pm_unit(m['hr@10'], n, binary=True)} |"
        )
        runs = [{"fit_seconds": r["fit_seconds"], "stage": r["stage"]}, *r.get("repeats", [])]
        for i, run in enumerate(runs, 1):
            st = run["stage"]
            timing.append(
                f"| {name} | {i} | {run['fit_seconds']:.1f} | {st['seconds']:.1f} | "
                f"{_count(st.get('rss_mib_before'))} | {_count(st['peak_rss_mib'])} | "
                f"{st['load_avg_1m_before']} -> {st['load_avg_1m_after']} |"
            )
    lines += [
        "",
        f"{data['source']}; density {data['density']:.4%}; {d['protocol']} "
        f"(HR@10 exact from its mean and the {_count(n)} users).",
        "",
        *timing,
        "",
        f"`ease_memory_bytes`: {est['fitting']:.2f} GiB while fitting, {est['stored']:.2f} GiB "
        f"kept; peak RSS of the first run {d['peak_rss_mib_whole_run']:,.0f} MiB (the "
        "largest stage peak; the kernel's mark is reset before each stage). Command: "
        f"`{d['command']}` under `nice -n 19`; runs 2+ with `--models ease --repeat-of "
        "benchmarks/results/ease_large.json`.",
    ]
    return "\n".join(lines) + _note(d)


def inference_latency() -> str:
    """One-user SASRec latency: torch against onnxruntime fp32 and int8."""
    d = _json("inference_latency.json")
    files = d.get("file_bytes", {})
    labels = {
        "torch": ("torch (`SASRec.recommend`)", None),
        "onnxruntime_fp32": ("onnxruntime fp32", "fp32"),
        "onnxruntime_int8": ("onnxruntime int8 (dynamic)", "int8"),
    }
    lines = ["| backend | p50 ms | p99 ms | mean ms | file |", "|---|---:|---:|---:|---:|"]
    for key, r in d["latency"].items():
        label, fkey = labels.get(key, (key, None))
        size = f"{files[fkey] / 1e6:.1f} MB" if fkey in files else "-"
        lines.append(
            f"| {label} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | {_ms(r['mean_ms'])} | {size} |"
        )
    i8 = d.get("int8_vs_torch", {})
    lines += [
        "",
        f"{d['benchmark']}, {d['requests']} requests, {d['threads']} thread. fp32 against torch: "
        f"max |score difference| {d['fp32_max_abs_diff']:.1e}. int8 against torch: top-10 "
        f"overlap {i8.get('top10_overlap', 0):.1%}, same top-1 for {i8.get('top1_equal', 0):.0%} "
        f"of users, max |score difference| {i8.get('max_abs_diff', 0):.2f}.",
    ]
    return "\n".join(lines) + _note(d)


def _bm25(d: dict[str, Any]) -> str:
    names = {
        "ours": "**shelfwise**",
        "bm25s": f"bm25s {d['versions']['bm25s']}",
        "bm25s_scores": "bm25s scoring + plain argpartition",
        "rank_bm25": f"rank_bm25 {d['versions']['rank_bm25']}",
    }
    lines = [
        "| products | engine | equal top-10 | build s | build peak MB | queries/s (one by one) "
        "| queries/s (batch) | p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["results"]:
        for key, e in r["engines"].items():
            agree = r["agreement"].get(key)
            if key == "ours":
                equal = "reference"
            elif agree:
                equal = (
                    f"{agree['equivalent']}/{agree['queries']} "
                    f"(max diff {agree['max_abs_diff']:.1e})"
                )
            else:
                equal = ""
            lines.append(
                f"| {r['products']:,} | {names.get(key, key)} | {equal} | "
                f"{_f(e.get('build_s'), 2)} | {e.get('build_peak_mb') or ''} | "
                f"{e['qps_single']:,.0f} | "
                f"{_count(e.get('qps_batch'))} | "
                f"{e['p50_ms']:.3f} | {e['p99_ms']:.1f} |"
            )
    return "\n".join(lines) + f"\n\nCommand: `{d['command']}`." + _note(d)


def bm25_compare() -> str:
    """BM25 against bm25s and rank_bm25 on the generated demo catalogue."""
    return _bm25(_json("bm25_compare.json"))


def bm25_compare_beauty() -> str:
    """The same on the Amazon Beauty titles."""
    return _bm25(_json("bm25_compare_amazon_beauty.json"))


def bm25_updates() -> str:
    """Live updates and the whole search service, on the bm25_compare runs."""
    d = _json("bm25_compare.json")
    lines = [
        "| products | add 1 item | add 100 | change 1 | delete 1 | query while delta pending "
        "| merge (all scores recomputed) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in d["results"]:
        u = r["updates_ms"]
        lines.append(
            f"| {r['products']:,} | {u['add_1']:.1f} ms | {u['add_100']:.1f} ms | "
            f"{u['update_1']:.1f} ms | {u['delete_1']:.1f} ms | {u['query_with_delta']:.2f} ms | "
            f"{u['merge']:.0f} ms |"
        )
    lines += [
        "",
        "| products | service build s | search p50 / p99 ms | with filters + price sort p50 / "
        "p99 ms | autocomplete p50 / p99 ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in d["results"]:
        s = r["service"]

        def pair(key: str, s: dict[str, Any] = s) -> str:
            return f"{s[key]['p50_ms']:.2f} / {s[key]['p99_ms']:.1f}"

        lines.append(
            f"| {r['products']:,} | {s['build_s']:.1f} | {pair('search')} | "
            f"{pair('search_filtered_sorted')} | {pair('autocomplete')} |"
        )
    return "\n".join(lines)


def search_modes() -> str:
    """Served lexical against hybrid search: latency and held-out nDCG@10."""
    d = _json("search_modes.json")
    lines = ["| served | engine | p50 ms | p99 ms | nDCG@10 |", "|---|---|---:|---:|---:|"]
    rt = _script("render_tables")
    scored = d["store"]["scored_searches"]
    for name, r in d["results"].items():
        lines.append(
            f"| {name} | {r['engine']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{rt.per_query_cell(r, scored)} |"
        )
    t = d.get("timings", {})
    lines += [
        "",
        f"Store: {d['store']['items']:,} items, {d['store']['users']:,} users, "
        f"{d['store']['timed_searches']} timed searches, {d['store']['scored_searches']} scored. "
        f"Bundle build: lexical {t.get('bundle_lexical_s')} s, "
        f"hybrid {t.get('bundle_hybrid_s')} s. {rt.QUERY_NOTE} "
        f"Command: `{d['command']}`.",
    ]
    return "\n".join(lines) + _note(d)


def search_after_write() -> str:
    """The next search after an item write against an ordinary search, served in process."""
    d = _json("search_after_write.json")
    rows = (
        ("ordinary search", d["ordinary"]),
        ("search right after a `PUT /v1/items/{id}`", d["after_write"]),
        ("the `PUT` itself", d["put"]),
    )
    lines = [
        "| request | p50 ms | p90 ms | p99 ms | mean ms | requests |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        lines.append(
            f"| {label} | {_ms(r['p50_ms'])} | {_ms(r['p90_ms'])} | {_ms(r['p99_ms'])} | "
            f"{_ms(r['mean_ms'])} | {r['requests']} |"
        )
    t = d.get("seconds", {})
    lines += [
        "",
        f"After a write / ordinary: p50 {d['ratio_p50']:.2f}x, p99 {d['ratio_p99']:.2f}x. "
        f"{d['writes']} writes over {d['items']:,} items; engine "
        f"{', '.join(f'`{e}`' for e in d['engines'])}; whole re-ranker feature rebuilds "
        f"during the writes: {d['reranker_full_builds']}; a new item found by the next "
        f"search: {'yes' if d['new_item_found'] else 'no'}. Bundle build "
        f"{t.get('bundle_build_s')} s.",
    ]
    return "\n".join(lines) + _note(d)


def cli_search() -> str:
    """`shelfwise search` from the command line: one process per call, start-up included."""
    runs = [_json("cli_search.json")]
    if (manifest.RESULTS / "cli_search_demo.json").is_file():
        runs.append(_json("cli_search_demo.json"))
    lines = [
        "| bundle | query | products | re-ranked | wall s (median, min-max) | "
        "CPU s (median, min-max) | search ms | load before |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for d in runs:
        w, c = d["summary"]["wall_s"], d["summary"]["cpu_s"]
        answer = d.get("answer", {})
        lines.append(
            f"| {d.get('bundle', '')} | `{d['query']}` | {_count(d['items'])} | "
            f"{'yes' if answer.get('reranked') else 'no'} | "
            f"{w['median']:.2f} ({w['min']:.2f}-{w['max']:.2f}) | "
            f"{c['median']:.2f} ({c['min']:.2f}-{c['max']:.2f}) | "
            f"{answer.get('took_ms')} | {d.get('load_avg_1m_before')} |"
        )
    d = runs[0]
    lines += [
        "",
        f"{d['repeats']} calls each; byte code cached: "
        f"{'yes' if d.get('bytecode_cached') else 'no'}; peak memory {d.get('max_rss_mb')} MB.",
    ]
    return "\n".join(lines) + _note(d)


SEARCH_LABELS = {
    "bm25": "BM25F",
    "dense": "dense (MiniLM, exact)",
    "hybrid": "hybrid (RRF, k = 60)",
    "hybrid-score": "hybrid (min-max scores, 50/50)",
    "ltr": "**hybrid + LTR**",
    "ltr-no-personal": "LTR without personal features",
    "ltr-no-popularity": "LTR without popularity / item statistics",
    "ltr-text-only": "LTR with query-item text features only",
}


def search_quality() -> str:
    """Search relevance of every method and the LTR ablations, per dataset present."""
    d = _json("search_quality.json")
    rt = _script("render_tables")
    out = []
    for run in d["runs"]:
        res = run["results"]
        base = res.get("bm25", {}).get("ndcg@10")
        lines = [
            f"| {run['dataset']} ({run['queries']:,} searches, {run['items']:,} items) | nDCG@10 "
            "| MAP | P@10 | Recall@100 | nDCG@10 vs BM25 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        summaries = run.get("per_query_summary", {})
        paired = run.get("paired_vs_bm25", {})
        for name, r in res.items():
            rel = "—" if name == "bm25" or not base else f"{r['ndcg@10'] / base - 1:+.1%}"
            test = paired.get(name, {}).get("ndcg@10")
            if test:
                lo, hi = test["ci95"]
                rel += f" ({test['mean_diff']:+.4f} [{lo:+.4f}, {hi:+.4f}])"
            ndcg = rt.per_query_cell(
                {**r, "per_query_summary": summaries.get(name, {})}, run["queries"]
            )
            lines.append(
                f"| {SEARCH_LABELS.get(name, name)} | {ndcg} | {_f(r['map'])} | "
                f"{_f(r['p@10'])} | {_f(r['recall@100'])} | {rel} |"
            )
        lines += ["", f"{run.get('note', '')}."]
        out.append("\n".join(lines))
    absent = [f"`{k}`: {v}" for k, v in d.get("datasets", {}).items() if v.startswith("absent")]
    paired_note = (
        " nDCG@10 vs BM25: the relative change, and in brackets the mean difference with its "
        "paired 95% t interval over the same searches."
        if any(run.get("paired_vs_bm25") for run in d["runs"])
        else ""
    )
    tail = f"\n\n{rt.QUERY_NOTE}{paired_note}\n\nCommand: `{d['command']}`." + (
        "\n\nNot scored: " + "; ".join(absent) + "." if absent else ""
    )
    return "\n\n".join(out) + tail + _note(d)


def search_relevance() -> str:
    """Shelfwise beside bm25s, rank_bm25, MiniLM and tantivy on a judged folder."""
    d = _json("search_relevance.json")
    return _script("search_relevance").table(d) + _note(d)


def search_defaults_cv() -> str:
    """Nested query-level CV of the untuned search defaults' grid."""
    d = _json("search_defaults_cv.json")
    return _script("search_defaults_cv").table(d)


def search_ltr_cv() -> str:
    """The judged re-ranker scored out of fold beside its un-reranked candidates."""
    d = _json("search_ltr_cv.json")
    return _script("search_ltr_cv").table(d) + _note(d)


def sasrec_loss() -> str:
    """The same SASRec configurations trained with ce and with bce."""
    d = _json("sasrec_loss.json")
    rt = _script("render_tables")
    n = d.get("validation_users")
    lines = [
        "| configuration | loss | final validation nDCG@10 (95% CI over users) "
        "| ce - bce [95% CI], p | seconds |",
        "|---|---|---:|---:|---:|",
    ]
    bound = False
    for r in d["results"]:
        ci = r.get("ci95")
        bound = bound or not ci
        cell = rt.pm(r["final"], ci) if ci else rt.pm_unit(r["final"], n, binary=False)
        test = r.get("paired_ce_minus_bce") if r["loss"] == "ce" else None
        diff = (
            f"{test['mean_diff']:+.4f} [{test['ci95'][0]:+.4f}, {test['ci95'][1]:+.4f}], "
            f"p {test['p_value_t']:.2g}"
            if test
            else ""
        )
        lines.append(f"| {r['config']} | `{r['loss']}` | {cell} | {diff} | {r['seconds']:.1f} |")
    note = ""
    if n:
        note = (
            f" over {_count(n)} validation users: mean ± half-width of the 95% t interval "
            "over them, from the per-user values (`per_user`: n, mean, sd); ce - bce pairs the "
            "two losses user by user (paired t)."
        )
        if bound:
            note += f" {rt.BOUND_NOTE}"
    seconds = d.get("seconds_from")
    if seconds:
        note += f" Seconds: {seconds}."
    return "\n".join(lines) + f"\n\n{d['dataset']}, {d['metric']}, one training each{note}"


def pruning_curves() -> str:
    """When the median pruner may judge a SASRec trial (replayed on recorded curves)."""
    d = _json("pruning_curves_sasrec_from_compare.json")
    a = d["analysis"]
    lines = [
        f"{a['n_trials']} complete trials ({d['model']}, {d['dataset']}, {d['metric']}).",
        "",
        "| after epoch | rank correlation with the final value [95% CI] | trials |",
        "|---:|---:|---:|",
    ]
    for epoch, r in a["spearman_by_epoch"].items():
        lo, hi = correlation_interval(r["spearman"], r["n"])
        lines.append(f"| {epoch} | {r['spearman']:.3f} [{lo:.3f}, {hi:.3f}] | {r['n']} |")
    lines += [
        "",
        "| median rule from epoch | epochs saved | best trial pruned | of the 10 best, pruned "
        "(mean over orders) |",
        "|---:|---:|---:|---:|",
    ]
    for r in a["median_rule"]:
        lines.append(
            f"| {r['first_prunable_epoch']} | {r['epochs_saved']:.0%} | "
            f"{r['best_pruned']:.0%} | {r['top10_pruned_per_order']:.1f} |"
        )
    lines += [
        "",
        "Rank correlations: Spearman's rho with the Fisher z 95% interval (standard error "
        "sqrt(1.06 / (n - 3))). The median-rule rows replay the recorded curves in every "
        "trial order (means over orders); they count trials, so carry no sampling interval.",
    ]
    return "\n".join(lines)


# ---- the shopper simulator (benchmarks/simulate_*.py) -----------------------------------------


def _interval(lo: Any, hi: Any, digits: int = 4, pct: bool = False) -> str:
    if lo is None or hi is None:
        return ""
    return f"[{lo:+.1%}, {hi:+.1%}]" if pct else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def simulate_ab() -> str:
    """Each arm of the first repeat with 95% intervals, then every repeat's lift over
    popularity with its interval and p-value."""
    d = _json("simulate_ab.json")
    run = d["runs"][0]
    lines = [
        "| policy | CTR [95% CI] | conversion [95% CI] | revenue / visitor [95% CI] "
        "| 7-day return [95% CI] | true CTR |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for arm, row in run["policies"].items():
        ci = row["ci95"]
        cells = [
            f"{_f(row[m], 4 if m != 'revenue_per_user' else 2)} "
            f"{_interval(*ci[m], digits=4 if m != 'revenue_per_user' else 2)}"
            for m in ("ctr", "conversion_rate", "revenue_per_user", "return_rate_7d")
        ]
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {_f(row['true_ctr'])} |")
    lines += _repeat_lifts(d["targets"])
    return "\n".join(lines) + _note(d)


def simulate_interleaving() -> str:
    """Sessions needed for 80% power (95% interval), per visit mood and ranker pair; the
    ratios of the A/B test by shopper to the interleaving tests; false-positive rates on the
    null (with their 95% interval where the results have it)."""
    d = _json("simulate_interleaving.json")
    tests = {
        "ab_users": "A/B by shopper",
        "ab_sessions": "A/B by session",
        "interleaving_sign": "team draft, sign test",
        "interleaving_sign_marginal": "marginalised, sign test",
        "interleaving_shoppers": "marginalised, shopper test",
        "interleaving_shoppers_shrunk": "marginalised, shrunk shopper test",
        "interleaving_optimized": "optimized interleaving (shrunk shopper test)",
    }
    seen = {t for pairs in d["pairs"].values() for e in pairs.values() for t in e["tests"]}
    tests = {k: v for k, v in tests.items() if k in seen}  # older results lack the shrunk test
    order = ("interleaving_optimized", "interleaving_shoppers_shrunk", "interleaving_shoppers",
             "interleaving_sign")  # fmt: skip
    ratio_keys = [k for k in order if k in tests]
    lines = [
        "| visit mood sd | pair | true lift of B | "
        + " | ".join(tests.values())
        + " | "
        + " | ".join(f"ratio A/B by shopper / {tests[k].split(', ')[-1]}" for k in ratio_keys)
        + " |",
        "|---|---|---:|" + "---:|" * (len(tests) + len(ratio_keys)),
    ]
    fpr = [
        "| visit mood sd | pair | " + " | ".join(tests.values()) + " |",
        "|---|---|" + "---:|" * len(tests),
    ]
    paired = []
    for mood, pairs in d["pairs"].items():
        for pair, e in pairs.items():
            cells, rates = [], []
            for key in tests:
                if key not in e["tests"]:  # a visit mood kept from an older run
                    cells.append("not run")
                    rates.append("not run")
                    continue
                t = e["tests"][key]
                lo, hi = t["sessions_needed_ci95"]
                mark = "<= " if t["below_smallest_tested"] else ""
                need = t["sessions_needed"]
                value = f"{mark}{t['tested_at_sessions']:,}" if mark else f"{need:,}"
                cells.append(value if mark else f"{value} [{lo:,}, {hi:,}]")
                rate = f"{t['false_positive_rate_null']:.3f}"
                if "false_positive_rate_null_ci95" in t:
                    rate += " [{:.3f}, {:.3f}]".format(*t["false_positive_rate_null_ci95"])
                rates.append(rate)
                if "paired_vs_interleaving_shoppers" in t:
                    g = t["paired_vs_interleaving_shoppers"]
                    paired.append(f"| {mood.split('=')[1]} | {pair} | {g['sessions_ratio']:.3f} "
                                  f"[{g['ci95'][0]:.3f}, {g['ci95'][1]:.3f}] |")  # fmt: skip
            ratios = []
            for key in ratio_keys:
                if f"ab_users_vs_{key}" not in e["ratios"]:
                    ratios.append("not run")
                    continue
                r = e["ratios"][f"ab_users_vs_{key}"]
                lo, hi = r["ci95"]
                ratios.append(f"{r['ratio']:.1f} [{lo:.1f}, {hi:.1f}]")
            head = f"| {mood.split('=')[1]} | {pair} |"
            lines.append(
                f"{head} {e['true_lift_b_vs_a']:+.1%} | " + " | ".join(cells + ratios) + " |"
            )
            fpr.append(f"{head} " + " | ".join(rates) + " |")
    setup = d["setup"]
    fpr_title = (
        f"\n\nFalse-positive rate at the size each test was run at, on the null "
        f"({setup['null']}; alpha {setup['alpha']}, {setup['repeats']} tests each):\n\n"
    )
    if "repeats_per_visit_mood" in setup:
        per = ", ".join(f"{n} at {m}" for m, n in setup["repeats_per_visit_mood"].items())
        fpr_title = fpr_title.replace(f"{setup['repeats']} tests each", f"tests each: {per}")
    out = "\n".join(lines) + fpr_title + "\n".join(fpr)
    if paired:
        out += (
            "\n\nSessions the plain shopper test needs over those the shrunk one needs, on "
            "the same simulated tests (> 1: the shrunk test needs fewer; 95% interval by "
            "bootstrap over the tests):\n\n| visit mood sd | pair | ratio |\n|---|---|---:|\n"
            + "\n".join(paired)
        )
    return out + _note(d)


def interleaving_statistics() -> str:
    """Each analysis of the same team-draft sessions: shoppers needed for 80% power and
    their ratio to the plain shopper test's (paired, 95% interval), false-positive rate on
    the null with its 95% interval, per visit mood."""
    d = _json("interleaving_statistics.json")
    lines = [
        "| visit mood sd | analysis | shoppers needed | need / plain shopper test "
        "| false-positive rate on the null |",
        "|---|---|---:|---:|---:|",
    ]
    for mood, row in d["results"].items():
        for name, e in row["analyses"].items():
            lo, hi = e["need_vs_sums_ci95"]
            flo, fhi = e["false_positive_rate_null_ci95"]
            lines.append(
                f"| {mood.split('=')[1]} | {name} | {e['shoppers_needed']:,} | "
                f"{e['need_vs_sums']:.3f} [{lo:.3f}, {hi:.3f}] | "
                f"{e['false_positive_rate_null']:.3f} [{flo:.3f}, {fhi:.3f}] |"
            )
    truth = [
        f"{mood.split('=')[1]}: mean {r['true_preference_per_session']['mean']:+.4f}, "
        f"sd over shoppers {r['true_preference_per_session']['sd_over_shoppers']:.4f}"
        for mood, r in d["results"].items()
    ]
    return (
        "\n".join(lines)
        + "\n\nTrue B-minus-A credited clicks per session, per visit mood sd: "
        + "; ".join(truth)
        + _note(d)
    )


def simulate_ope(name: str = "simulate_ope.json") -> str:
    """Each target policy's truth beside every estimator's mean, bias, width and coverage."""
    d = _json(name)
    lines = [
        "| target policy | true CTR | estimator | mean estimate | mean bias "
        "| mean 95% CI width | coverage |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for target, row in d["targets"].items():
        for method in ("ips", "snips", "doubly_robust"):
            e = row[method]
            lines.append(
                f"| {target} | {_f(row['truth_mean'])} | {method} | {_f(e['estimate_mean'])} | "
                f"{e['bias_mean']:+.4f} | {_f(e['ci95_width_mean'])} | {e['coverage']:.0%} |"
            )
    return "\n".join(lines) + _note(d)


def simulate_ope_live() -> str:
    """`simulate_ope` with the live service's exploration logging marginal propensities."""
    return simulate_ope("simulate_ope_live.json")


def simulate_live() -> str:
    """A live experiment's lifts against the simulator's prediction and its own record."""
    d = _json("simulate_live.json")
    lines = [
        "| live metric | live lift [95% CI] | p-value | simulator's record of the HTTP run "
        "| simulated in-process [95% CI] | live within |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for metric, c in d["checks"].items():
        live = "" if c["live_lift"] is None else f"{c['live_lift']:+.1%}"
        live_ci = _interval(*(c["live_lift_ci95"] or [None, None]), pct=True)
        p = "" if c["live_p_value"] is None else f"{c['live_p_value']:.2g}"
        within = {True: "yes", False: "no", None: ""}[c["live_within_simulated_interval"]]
        lines.append(
            f"| {metric} | {live} {live_ci} | {p} | {c['recorded_lift_of_the_http_run']:+.1%} "
            f"| {c['simulated_lift']:+.1%} {_interval(*c['simulated_lift_ci95'], pct=True)} "
            f"| {within} |"
        )
    return "\n".join(lines) + _note(d)


def simulate_push() -> str:
    """Each send-time arm of the first repeat with 95% intervals, then every repeat's lifts."""
    d = _json("simulate_push.json")
    run = d["runs"][0]
    lines = [
        "| send time | pushes | open rate [95% CI] | click rate [95% CI] "
        "| clicks / push [95% CI] | true open rate | activity share at send |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, row in run["policies"].items():
        ci = row["ci95"]
        cells = [
            f"{_f(row[m])} {_interval(*ci[m])}"
            for m in ("open_rate", "click_rate", "clicks_per_push")
        ]
        lines.append(
            f"| {arm} | {_count(row['pushes'])} | "
            + " | ".join(cells)
            + f" | {_f(row['true_open_rate'])} | {_f(row['mean_activity_share'])} |"
        )
    lines += _repeat_lifts(d["targets"])
    return "\n".join(lines) + _note(d)


def simulate_search_rerank() -> str:
    """Both search arms of the first repeat with 95% intervals, then every repeat's lifts."""
    d = _json("simulate_search_rerank.json")
    run = d["runs"][0]
    lines = [
        "| search | sessions | CTR [95% CI] | visits with a click [95% CI] "
        "| conversion [95% CI] | revenue / visitor [95% CI] | true CTR |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for arm, row in run["policies"].items():
        ci = row["ci95"]
        cells = [
            f"{_f(row[m], 4 if m != 'revenue_per_user' else 2)} "
            f"{_interval(*ci[m], digits=4 if m != 'revenue_per_user' else 2)}"
            for m in ("ctr", "list_ctr", "conversion_rate", "revenue_per_user")
        ]
        lines.append(
            f"| {arm} | {_count(row['sessions'])} | "
            + " | ".join(cells)
            + f" | {_f(row['true_ctr'])} |"
        )
    lines += _repeat_lifts(d["targets"])
    return "\n".join(lines) + _note(d)


TABLES: dict[str, Callable[[], str]] = {
    f.__name__: f
    for f in (
        movielens,
        beauty,
        tuning_compare,
        tuning_compare_loss_searched,
        tuned_vs_default,
        load_test,
        load_test_runs,
        load_test_levels,
        events_load,
        load_test_postgresql,
        load_test_clients,
        asgi_fast_reads,
        startup_100k,
        scale_curve,
        optimizer_bprmf,
        optimizer_bprmf_schedules,
        optimizer_sasrec,
        beauty_sequential,
        ease_large,
        inference_latency,
        bm25_compare,
        bm25_compare_beauty,
        bm25_updates,
        search_modes,
        search_after_write,
        cli_search,
        search_quality,
        search_relevance,
        search_defaults_cv,
        search_ltr_cv,
        sasrec_loss,
        pruning_curves,
        simulate_ab,
        simulate_interleaving,
        interleaving_statistics,
        simulate_ope,
        simulate_ope_live,
        simulate_live,
        simulate_push,
        simulate_search_rerank,
    )
}


def render(name: str) -> str:
    """The table called `name`; unknown names fail with the known ones."""
    if name not in TABLES:
        raise KeyError(f"no benchmark table {name!r}; known: {', '.join(sorted(TABLES))}")
    return TABLES[name]()


if __name__ == "__main__":  # preview every table: python docs/gen/bench_tables.py
    for key in TABLES:
        print(f"## {key}\n\n{render(key)}\n")
