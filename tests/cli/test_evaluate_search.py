"""`shelfwise evaluate-search` end to end (BM25 only, so no embedding is needed)."""

import json

import pytest

from shelfwise.cli import main
from shelfwise.cli.evaluate_search import format_search_table


def test_demo_bm25_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / "search.json"
    code = main(
        [
            "evaluate-search", "--dataset", "demo", "--methods", "bm25",
            "--demo-items", "300", "--demo-users", "200", "--demo-days", "30",
            "--json", str(out), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "dataset demo" in printed and "bm25" in printed and "ndcg@10" in printed
    report = json.loads(out.read_text())
    assert report["dataset"] == "demo"
    assert set(report["results"]) == {"bm25"}
    assert set(report["results"]["bm25"]) == {"ndcg@10", "map", "p@10", "recall@100"}
    assert 0.0 < report["results"]["bm25"]["ndcg@10"] < 1.0


def test_all_skips_absent_datasets_with_a_note(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SHELFWISE_DATA_DIR", str(tmp_path))
    (tmp_path / "wands").mkdir()
    (tmp_path / "wands" / "query.csv").write_text("query_id\tquery\n0\tsofa\n")
    out = tmp_path / "all.json"
    code = main(
        [
            "evaluate-search", "--dataset", "all", "--methods", "bm25",
            "--demo-items", "300", "--demo-users", "200", "--demo-days", "30",
            "--json", str(out), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "note: skipping wands" in printed and "product.csv, label.csv" in printed
    assert "note: skipping esci" in printed
    report = json.loads(out.read_text())
    assert [r["dataset"] for r in report["runs"]] == ["demo"]
    assert set(report["skipped"]) == {"wands", "esci"}


def test_named_absent_dataset_is_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SHELFWISE_DATA_DIR", str(tmp_path))
    assert main(["evaluate-search", "--dataset", "wands", "--methods", "bm25"]) == 2
    assert "missing query.csv, product.csv, label.csv" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "bm25,magic"], "unknown magic"),
        (["--methods", ","], "(none given)"),
        (["--dataset", "msmarco"], "choose one of"),
    ],
)
def test_bad_arguments(args, message, capsys):
    assert main(["evaluate-search", *args]) == 2
    assert message in capsys.readouterr().err


def test_table_shows_change_over_bm25():
    report = {
        "dataset": "x",
        "queries": 3,
        "items": 9,
        "results": {
            "bm25": {"ndcg@10": 0.5, "map": 0.4},
            "ltr": {"ndcg@10": 0.65, "map": 0.5},
        },
    }
    table = format_search_table(report)
    assert "+30.0%" in table and "+0.0%" in table
    assert table.splitlines()[0] == "dataset x: 3 queries, 9 items"
