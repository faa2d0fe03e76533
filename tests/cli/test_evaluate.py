"""`shelfwise evaluate` end to end."""

import json

import pytest

from shelfwise.cli import main
from shelfwise.data.datasets import is_available


@pytest.mark.realdata
@pytest.mark.skipif(not is_available("movielens-100k"), reason="movielens-100k not found")
def test_evaluate_movielens_holdout_writes_reports(tmp_path, capsys):
    out_json, out_html = tmp_path / "out.json", tmp_path / "out.html"
    code = main(
        [
            "evaluate",
            "--dataset", "movielens-100k",
            "--models", "popularity,itemknn",
            "--protocol", "holdout",
            "--json", str(out_json),
            "--html", str(out_html),
        ]
    )  # fmt: skip
    assert code == 0
    assert "itemknn" in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert (report["dataset"], report["protocol"], report["k"]) == ("movielens-100k", "holdout", 10)
    keys = {
        "ndcg@10", "recall@10", "precision@10", "map@10", "hr@10", "mrr@10", "coverage",
        "fit_seconds", "recommend_users_per_second",
    }  # fmt: skip
    for model in ("popularity", "itemknn"):
        assert keys <= set(report["results"][model])
    assert report["results"]["itemknn"]["ndcg@10"] > report["results"]["popularity"]["ndcg@10"]
    page = out_html.read_text()
    assert "<table>" in page and ("<svg" in page or "<img" in page)


def test_evaluate_rejects_unknown_model_and_param(capsys):
    assert main(["evaluate", "--dataset", "demo", "--models", "nope"]) == 2
    assert "unknown model(s) nope" in capsys.readouterr().err
    code = main(["evaluate", "--dataset", "demo", "--models", "itemknn", "--set", "itemknn.x=1"])
    assert code == 2
    assert "unknown parameter 'x'" in capsys.readouterr().err
