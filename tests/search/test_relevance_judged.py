"""Judged folders (queries.tsv + qrels.tsv): metrics by hand, loader errors, the search
service on a tiny corpus, and on beauty-search-dev the same numbers as the folder's eval.py."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from shelfwise.cli import main
from shelfwise.data.datasets import is_available
from shelfwise.errors import DataError
from shelfwise.search.judged import (
    evaluate_judged_search,
    judged_metrics,
    load_judged_folder,
    write_trec_run,
)
from shelfwise.settings import data_dir

L2 = math.log2


def test_judged_metrics_known_answer():
    # query a: ranked 5 (grade 1), 9 (unjudged), 1 (grade 3); judged 1:3, 5:1, 7:2
    # query b: nothing returned
    judged = [{1: 3, 5: 1, 7: 2}, {4: 2}]
    m = judged_metrics([np.array([5, 9, 1, 5]), np.array([], dtype=np.int64)], judged, k=10)
    dcg = 1 / L2(2) + 7 / L2(4)
    idcg = 7 / L2(2) + 3 / L2(3) + 1 / L2(4)
    assert m["ndcg"].tolist() == pytest.approx([dcg / idcg, 0.0])
    assert m["recall"].tolist() == pytest.approx([1 / 2, 0.0])  # relevant = grade >= 2
    assert m["mrr"].tolist() == pytest.approx([1 / 3, 0.0])
    assert m["returned"].tolist() == [3, 0]  # the repeated 5 counts once
    assert m["judged"].tolist() == [2, 0]


def _corpus():
    return pd.DataFrame(
        {
            "item_id": ["P1", "P2", "P3", "P4"],
            "title": ["red lipstick", "red nail polish", "blue eyeliner", "argan oil shampoo"],
            "brand": ["Rouge", "Rouge", "Bleu", "Agadir"],
            "category": ["Beauty > Makeup", "Beauty > Nails", "Beauty > Makeup", "Beauty > Hair"],
        }
    )


def _folder(tmp_path, qrels="q1\tP1\t3\nq1\tP2\t1\nq2\tP4\t3\n"):
    (tmp_path / "queries.tsv").write_text(
        "query_id\tquery\ttype\tintent_note\nq1\tred lipstick\thead\tx\n"
        "q2\targan shampoo\tattribute\ty\nq3\tunjudged\thead\tz\n"
    )
    (tmp_path / "qrels.tsv").write_text("query_id\tdoc_id\tgrade\n" + qrels)
    return tmp_path


def test_service_on_a_tiny_judged_folder(tmp_path):
    ds = load_judged_folder(_folder(tmp_path), corpus=_corpus())
    assert ds.queries["qid"].tolist() == ["q1", "q2"]  # q3 has no judgements
    assert ds.judgements == [{0: 3, 1: 1}, {3: 3}]
    report = evaluate_judged_search(ds, ["default", "lexical"])
    # "red lipstick" finds P1 first (grade 3); "argan shampoo" finds P4 first
    assert report["runs"]["default"][0][0] == 0 and report["runs"]["default"][1][0] == 3
    assert report["results"]["default"]["mrr@10"] == pytest.approx(1.0)
    assert report["results"]["default"]["recall@10"] == pytest.approx(1.0)
    assert set(report["by_type"]["lexical"]) == {"head", "attribute"}
    assert report["by_type"]["lexical"]["head"]["n"] == 1
    run = write_trec_run(tmp_path / "r.run", ds, report["runs"]["default"], "t")
    assert run.read_text().splitlines()[0] == "q1 Q0 P1 1 10 t"


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("q1\tP1\tthree\n", r"qrels.tsv, line 2: grade 'three' is not an integer"),
        ("q1\tP1\t3\nq9\tP2\t1\n", r"line 3: query 'q9' is not in queries.tsv"),
        ("q1\tNOPE\t3\n", r"line 2: doc 'NOPE' is not in the corpus"),
    ],
)
def test_judged_folder_errors_name_the_line(tmp_path, qrels, message):
    with pytest.raises(DataError, match=message):
        load_judged_folder(_folder(tmp_path, qrels), corpus=_corpus())


def test_judged_folder_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"queries\.tsv is missing"):
        load_judged_folder(tmp_path, corpus=_corpus())


def _dev_folder():
    base = data_dir()
    folder = None if base is None else base / "beauty-search-dev"
    if folder is None or not (folder / "eval.py").is_file() or not is_available("amazon-beauty"):
        pytest.skip("beauty-search-dev / amazon-beauty not found (set SHELFWISE_DATA_DIR)")
    return folder


@pytest.mark.realdata
def test_beauty_search_dev_matches_its_eval_py(tmp_path, capsys):
    folder = _dev_folder()
    out = tmp_path / "report.json"
    argv = ["evaluate-search", "--dataset", str(folder), "--methods", "lexical"]
    assert main([*argv, "--run-dir", str(tmp_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "type (ndcg@10)" in printed and "misspelling" in printed
    report = json.loads(out.read_text())
    assert report["queries"] == 61 and report["items"] == 12101
    assert sum(v["n"] for v in report["by_type"]["lexical"].values()) == 61
    ours = report["results"]["lexical"]
    theirs = subprocess.run(
        [sys.executable, str(folder / "eval.py"), str(tmp_path / "lexical.run")],
        capture_output=True,
        text=True,
        check=True,
        cwd=folder,
    ).stdout
    values = {
        line.split()[0]: float(line.split()[1])
        for line in theirs.splitlines()
        if line.split() and line.split()[0] in ("nDCG@10", "Recall@10", "MRR@10", "judged@10")
    }
    assert ours["ndcg@10"] == pytest.approx(values["nDCG@10"], abs=1e-4)
    assert ours["recall@10"] == pytest.approx(values["Recall@10"], abs=1e-4)
    assert ours["mrr@10"] == pytest.approx(values["MRR@10"], abs=1e-4)
    assert ours["judged@10"] == pytest.approx(values["judged@10"], abs=1e-4)
    # brand and category are searched now: better than the reference title-only 0.7256
    assert ours["ndcg@10"] > 0.7256
