"""`shelfwise train` end to end on a small demo store, and `evaluate --model-dir`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.cli import main
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.recommenders import available, load_model
from shelfwise.store import open_store

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A DuckDB store of a small synthetic shop (300 items, 200 users, 30 days)."""
    path = tmp_path_factory.mktemp("store") / "shop.duckdb"
    demo = generate(DemoConfig(n_items=300, n_users=200, days=30))
    with open_store(f"duckdb:///{path}") as st:
        st.ingest(items=demo.items, users=demo.users, events=demo.events)
    return str(path)


def train_args(store: str, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--model", "bprmf", "--dataset", store, "--protocol", "loo",
        "--optimizer", "adamw", "--schedule", "warmup_cosine", "--set", "bprmf.warmup_epochs=1",
        "--set", "bprmf.factors=8", "--set", "bprmf.batch_size=512", "--patience", "0",
        "--threads", "1", "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip


def test_train_writes_everything_and_evaluate_scores_it(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(train_args(store, out, "--epochs", "3")) == 0
    printed = capsys.readouterr().out
    assert "epochs      3" in printed and "test        ndcg@10" in printed
    summary = json.loads((out / "train.json").read_text())
    assert summary["model"] == "bprmf" and summary["protocol"] == "loo"
    assert summary["config"]["optimizer"] == "adamw"
    assert summary["config"]["schedule"] == "warmup_cosine"
    assert summary["epochs_run"] == 3 and summary["monitor"] == "ndcg@10"
    assert 0.0 <= summary["test"]["ndcg@10"] <= 1.0
    curves = json.loads((out / "curves.json").read_text())
    assert [e["epoch"] for e in curves["epochs"]] == [1, 2, 3]
    assert all("ndcg@10" in e for e in curves["epochs"])  # loo's validation part
    assert (out / "curves.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "checkpoint" / "checkpoint.pt").is_file()
    assert load_model(out / "model").name == "bprmf"

    report = tmp_path / "report.json"
    code = main(
        ["evaluate", "--dataset", store, "--protocol", "loo", "--models", "popularity",
         "--model-dir", str(out), "--json", str(report)]
    )  # fmt: skip
    assert code == 0
    results = json.loads(report.read_text())["results"]
    assert set(results) == {"popularity", "bprmf"}
    assert results["bprmf"]["ndcg@10"] == pytest.approx(summary["test"]["ndcg@10"])


def test_resume_continues_the_run(store: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(train_args(store, out, "--epochs", "2")) == 0
    first = json.loads((out / "curves.json").read_text())["epochs"]
    assert main(train_args(store, out, "--epochs", "4", "--resume")) == 0
    resumed = json.loads((out / "curves.json").read_text())["epochs"]
    assert len(resumed) == 4
    assert [e["loss"] for e in resumed[:2]] == [e["loss"] for e in first]


def test_classic_models_just_fit(store: str, tmp_path: Path) -> None:
    out = tmp_path / "knn"
    args = ["train", "--model", "itemknn", "--dataset", store, "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "train.json").read_text())
    assert summary["model"] == "itemknn" and "curves" not in summary
    assert load_model(out / "model").name == "itemknn"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--model", "bprmf", "--optimizer", "nope"], "valid choices: sgd, momentum, nesterov"),
        (["--model", "bprmf", "--lr", "-1"], "the learning rate must be > 0"),
        (["--model", "bprmf", "--optimizer", "lbfgs", "--batch-size", "1"], "single samples"),
        (["--model", "bprmf", "--schedule", "warmup"], "warmup_cosine, warmup_linear"),
        (["--model", "itemknn", "--optimizer", "adam"], "applies to torch models only"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--model", "bprmf", "--set", "ease.l2=3"], "use --set bprmf.PARAM=VALUE"),
    ],
)
def test_bad_options_fail_before_loading_data(
    extra: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # the dataset does not exist: the options must be refused before it is looked at
    assert main(["train", "--dataset", "no-such-dataset", *extra]) == 2
    assert needle in capsys.readouterr().err


@pytest.mark.skipif("sasrec" not in available(), reason="no sasrec model registered")
def test_sequential_model_trains_and_is_scored_from_its_sequences(
    store: str, tmp_path: Path
) -> None:
    out = tmp_path / "sasrec"
    args = [
        "train", "--model", "sasrec", "--dataset", store, "--protocol", "loo", "--epochs", "2",
        "--set", "sasrec.hidden=8", "--set", "sasrec.blocks=1", "--threads", "1",
        "--no-progress", "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((out / "train.json").read_text())
    assert summary["epochs_run"] == 2
    report = tmp_path / "report.json"
    code = main(
        ["evaluate", "--dataset", store, "--protocol", "loo", "--model-dir", str(out),
         "--json", str(report)]
    )  # fmt: skip
    assert code == 0
    scored = json.loads(report.read_text())["results"]["sasrec"]
    assert scored["ndcg@10"] == pytest.approx(summary["test"]["ndcg@10"])
