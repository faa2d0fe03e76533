"""`shelfwise simulate` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.cli import main
from shelfwise.cli.simulate import parse_policies, parse_shopper
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.report import METRICS

SMALL = ["--demo-items", "300", "--demo-users", "240", "--demo-days", "20"]


def test_simulate_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.json"
    code = main([
        "simulate", "--policy", "pop=popularity", "--policy", "knn=itemknn", "--policy",
        "rnd=random", "--days", "9", "--json", str(out), *SMALL, "--shopper", "fatigue=0.9",
    ])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert list(report["policies"]) == ["pop", "knn", "rnd"]
    for row in report["policies"].values():
        for metric in ("ctr", "conversion_rate", "revenue_per_user", "return_rate_7d"):
            assert metric in row and len(row["ci95"][metric]) == 2
    pairs = [(c["a"], c["b"]) for c in report["comparisons"]]
    assert sorted(set(pairs)) == sorted({("pop", "knn"), ("pop", "rnd"), ("knn", "rnd")})
    assert len(pairs) == 3 * len(METRICS)  # one per pair and metric
    for c in report["comparisons"]:
        assert {"a", "b", "metric", "lift", "ci95", "p_value"} <= set(c)
    assert report["settings"]["shopper_model"]["fatigue"] == 0.9
    assert report["settings"]["days"] == 9
    printed = capsys.readouterr().out
    assert "knn vs pop conversion_rate" in printed and "wrote" in printed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "a=popularity"], "at least two"),
        (["--policy", "a=popularity", "--policy", "b"], "NAME=CONFIG"),
        (["--policy", "a=popularity", "--policy", "b=nope"], "unknown CONFIG 'nope'"),
        (["--policy", "a=popularity", "--policy", "a=random"], "given twice"),
        (["--policy", "a=random", "--policy", "b=random", "--days", "0"], "--days"),
        (["--policy", "a=random", "--policy", "b=random", "--shopper", "fatigue"], "--shopper"),
        (["--policy", "a=random", "--policy", "b=random", "--shopper", "fatigue=3"], "fatigue"),
        (["--policy", "a=random", "--policy", "b=random", "--users", "5000"], "--users 5000"),
    ],
)
def test_simulate_refuses_bad_arguments(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *argv, *SMALL]) == 2
    assert message in capsys.readouterr().err


def test_parsers() -> None:
    assert parse_policies(["a = popularity", "b=default"]) == {"a": "popularity", "b": "default"}
    assert parse_shopper(["fatigue=0.5", "slate_size=5"]) == {"fatigue": 0.5, "slate_size": 5}
    with pytest.raises(ConfigError, match="letters"):
        parse_policies(["a b=random", "c=random"])


def test_simulate_drives_an_engine_over_a_store(tmp_path: Path) -> None:
    from shelfwise.store import open_store

    url = f"duckdb:///{tmp_path / 'sim.duckdb'}"
    out = tmp_path / "sim.json"
    argv = ["simulate", "--store", url, "--artifacts", str(tmp_path / "artifacts"),
            "--policy", "a=default", "--policy", "b=tfidf", "--days", "2", "--json", str(out),
            *SMALL]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    sessions = sum(row["sessions"] for row in report["policies"].values())
    assert sessions > 0
    with open_store(url) as store:
        events = store.events()
        assert events["event_id"].astype(str).str.startswith("sim-engine-").any()
    # another world's store is refused
    other = ["simulate", "--store", url, "--policy", "a=default", "--policy", "b=tfidf",
             "--demo-items", "400", "--demo-users", "240", "--demo-days", "20"]  # fmt: skip
    assert main(other) == 2
