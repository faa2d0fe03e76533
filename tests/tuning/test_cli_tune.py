"""`shelfwise tune` end to end: JSON / TOML / CSV / HTML outputs, bad names, and two
processes sharing one study on PostgreSQL."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from shelfwise.cli import main
from shelfwise.config_params import load_config
from shelfwise.tuning.factory import open_storage


def test_tune_writes_json_toml_csv_html_and_promotes(
    block_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.json"
    page = tmp_path / "page.html"
    args = [
        "tune", "--model", "ease", "--dataset", str(block_store), "--sampler", "grid",
        "--grid-points", "3", "--models-dir", str(tmp_path / "models"), "--json", str(out),
        "--html", str(page),
    ]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "PROMOTED" in printed
    result = json.loads(out.read_text())
    for key in ("model", "metric", "best_value", "best_params", "n_trials", "n_pruned",
                "test", "default_test"):  # fmt: skip
        assert key in result, key
    assert (result["model"], result["metric"], result["n_trials"]) == ("ease", "ndcg@10", 3)
    assert set(result["best_params"]) == {"l2"}
    assert result["test"]["ndcg@10"] > 0.5 and "recall@10" in result["default_test"]
    report = tmp_path / "models" / "reports" / result["study"]
    best = load_config(report / "best.toml")
    assert best == {"ease": {"l2": result["best_params"]["l2"], "max_items": 50000}}
    with (report / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {r["state"] for r in rows} == {"COMPLETE"}
    html = page.read_text()
    for title in ("Optimisation history", "Parameter importances", "Parallel coordinates"):
        assert title in html
    assert "Plotly.newPlot" in html and '<script src="http' not in html  # inline, offline
    version = tmp_path / "models" / "versions" / "v0001"
    assert (version / "best.toml").exists() and (version / "model" / "arrays.npz").exists()
    assert (tmp_path / "models" / "ACTIVE").read_text().strip() == "v0001"
    # a second identical run resumes the finished study: nothing new, and a tie is no win
    assert main(args) == 0
    assert "not promoted" in capsys.readouterr().out
    assert (tmp_path / "models" / "ACTIVE").read_text().strip() == "v0001"


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--sampler", "bayes", ("tpe", "random", "grid", "cmaes")),
        ("--pruner", "asha", ("none", "median", "hyperband", "successive_halving")),
        ("--model", "nope", ("auto", "ease")),
        ("--metric", "auc", ("ndcg@K",)),
    ],
)
def test_bad_names_fail_with_the_choices(
    flag: str, value: str, words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    args = {"--model": "ease", "--dataset": "nowhere"}
    args[flag] = value
    argv = ["tune", *[x for kv in args.items() for x in kv]]
    assert main(argv) == 2  # rejected before any data is read
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


@pytest.mark.postgres
def test_two_processes_share_one_postgres_study(
    postgres_schema: str, block_store: Path, tmp_path: Path
) -> None:
    n = 6
    procs = []
    for worker in range(2):
        # an embedded DuckDB file has one writer process: each worker reads its own copy
        copy = tmp_path / f"w{worker}" / block_store.name
        copy.parent.mkdir()
        shutil.copyfile(block_store, copy)
        cmd = [
            sys.executable, "-m", "shelfwise", "tune", "--model", "als", "--dataset",
            str(copy), "--sampler", "grid", "--grid-points", "2", "--trials", str(n),
            "--storage", postgres_schema, "--study", "shared", "--no-final",
            "--models-dir", str(tmp_path / "models"),
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        pipe = subprocess.PIPE
        procs.append(subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, env=env))
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
        assert "study shared:" in out
    study = optuna.load_study(study_name="shared", storage=open_storage(postgres_schema))
    trials = study.trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    complete = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(complete) == n
    params = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(params)) == n  # no grid point evaluated twice
    assert not [t for t in trials if t.state == TrialState.RUNNING]


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        ("ease.nope=1", ("unknown parameter 'nope'", "l2")),
        ("ease.l2=-5", ("parameter 'l2'",)),
        ("als.factors=8", ("als is not tuned in this run", "ease")),
        ("ease", ("MODEL.PARAM=VALUE",)),
    ],
)
def test_bad_pins_fail_naming_the_parameter(
    assignment: str, words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "--model", "ease", "--dataset", "nowhere", "--set", assignment]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err


def test_tune_a_sequential_model_with_pinned_epochs(
    block_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SASRec through the CLI: leave-last-out by default, the training options searched,
    the pinned ones fixed in every trial and written to best.toml."""
    out = tmp_path / "sasrec.json"
    args = [
        "tune", "--model", "sasrec", "--dataset", str(block_store), "--trials", "3",
        "--sampler", "random", "--set", "sasrec.epochs=2", "--set", "sasrec.hidden=16",
        "--set", "sasrec.blocks=1", "--set", "sasrec.threads=1", "--no-promote",
        "--models-dir", str(tmp_path / "models"), "--json", str(out),
        "--report-dir", str(tmp_path / "report"),
    ]  # fmt: skip
    assert main(args) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "loo" and result["n_trials"] == 3
    params = set(result["best_params"])
    assert {"optimizer", "lr", "schedule", "weight_decay", "batch_size", "dropout"} <= params
    assert not params & {"epochs", "hidden", "blocks", "threads"}  # pinned, not searched
    best = load_config(tmp_path / "report" / "best.toml")["sasrec"]
    assert (best["epochs"], best["hidden"], best["blocks"]) == (2, 16, 1)
    assert "hr@10" in result["test"] and "hr@10" in result["default_test"]
