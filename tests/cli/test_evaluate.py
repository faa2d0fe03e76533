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


@pytest.mark.realdata
@pytest.mark.skipif(not is_available("movielens-100k"), reason="movielens-100k not found")
def test_evaluate_seeds_intervals_groups_mmr_and_plot(tmp_path, capsys):
    out_json, out_html = tmp_path / "out.json", tmp_path / "out.html"
    code = main(
        [
            "evaluate", "--dataset", "movielens-100k", "--models", "popularity,itemknn",
            "--seeds", "2", "--split", "per-item", "--mmr", "0.5,1",
            "--json", str(out_json), "--html", str(out_html),
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "±" in out and "paired t p=" in out and "by gender" in out
    report = json.loads(out_json.read_text())
    assert report["seeds"] == [42, 43]
    assert report["split"]["params"]["by"] == "item"
    iv = report["intervals"]["itemknn"]["ndcg@10"]
    assert iv["ci95"][0] <= iv["mean"] <= iv["ci95"][1] and len(iv["values"]) == 2
    assert iv["mean"] == pytest.approx(report["results"]["itemknn"]["ndcg@10"])
    pair = next(c for c in report["comparisons"] if c["metric"] == "ndcg@10")
    assert (pair["a"], pair["b"]) == ("popularity", "itemknn")
    assert pair["mean_diff"] < 0 and pair["p_value_t"] < 0.01
    for key in ("novelty", "gini", "long_tail_share", "ild", "calibration_kl", "arp"):
        assert key in report["results"]["itemknn"]
    assert set(report["groups"]["gender"]) == {"F", "M"}
    assert (
        report["groups"]["gender"]["F"]["users"] + report["groups"]["gender"]["M"]["users"] <= 943
    )
    curve = report["mmr"]["itemknn"]
    assert [p["lambda"] for p in curve] == [0.5, 1.0]
    assert curve[0]["ild"] > curve[1]["ild"]  # re-ranking for diversity diversifies
    assert sum(report["popularity_bias"]["models"]["popularity"][:1]) == pytest.approx(1.0)
    assert "data:image/png;base64," in out_html.read_text()


def test_evaluate_rejects_bad_seeds_split_mmr_and_missing_store(capsys, tmp_path):
    assert main(["evaluate", "--dataset", "demo", "--models", "popularity", "--seeds", "0"]) == 2
    assert "--seeds must be >= 1" in capsys.readouterr().err
    args = ["evaluate", "--dataset", "demo", "--models", "popularity"]
    assert main([*args, "--protocol", "loo", "--split", "per-item"]) == 2
    assert "holdout" in capsys.readouterr().err
    assert main([*args, "--mmr", "2"]) == 2
    assert "--mmr" in capsys.readouterr().err
    missing = f"duckdb:///{tmp_path / 'nope.duckdb'}"
    assert main(["evaluate", "--dataset", missing, "--models", "popularity"]) == 2
    assert "no such store file" in capsys.readouterr().err


def test_evaluate_reads_a_store_url_as_ingest_prints_it(tmp_path, capsys):
    items = "item_id,title,category\n" + "".join(f"I{i},Item {i},Cat{i % 3}\n" for i in range(12))
    rows = ["event_id,user_id,item_id,type,value,query,timestamp"]
    n = 0
    for u in range(10):
        for i in range(8):
            n += 1
            rows.append(f"e{n},u{u},I{(u + i) % 12},purchase,,,2026-01-{1 + n % 28:02d}T10:00:00Z")
    (tmp_path / "items.csv").write_text(items)
    (tmp_path / "events.csv").write_text("\n".join(rows) + "\n")
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    assert main(["ingest", "--items", str(tmp_path / "items.csv"), "--events",
                 str(tmp_path / "events.csv"), "--store", url]) == 0  # fmt: skip
    out_json = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", url, "--models", "popularity", "--json",
                 str(out_json)]) == 0  # fmt: skip
    report = json.loads(out_json.read_text())
    assert report["dataset"] == url
    # 8 events a user -> 6 train + 2 test each
    assert report["split"]["matrix"]["test_nnz"] == 20
