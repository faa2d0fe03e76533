"""`shelfwise tune --target search`: the alias of `shelfwise tune-search`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shelfwise.artifacts import Registry, build_bundle, load_bundle
from shelfwise.cli import main
from shelfwise.cli.tune import search_target
from shelfwise.store import open_store

from .test_tune_search import frame, judged_folder


def test_search_target_rewrites_only_tune_with_target_search() -> None:
    assert search_target(["tune", "--target", "search", "--folds", "3"]) == [
        "tune-search",
        "--folds",
        "3",
    ]
    assert search_target(["-v", "tune", "--mode", "lexical", "--target=search"]) == [
        "-v",
        "tune-search",
        "--mode",
        "lexical",
    ]
    unchanged = [
        ["tune", "--target", "model", "--model", "ease", "--dataset", "demo"],
        ["tune", "--model", "ease", "--dataset", "demo"],
        ["search", "--target", "search"],  # another command's words are left alone
        ["tune", "--", "--target", "search"],
        [],
    ]
    for argv in unchanged:
        assert search_target(argv) == argv


def test_tune_target_search_tunes_and_serves_the_bundle(tmp_path: Path) -> None:
    store = open_store(f"duckdb:///{tmp_path / 'shop.duckdb'}")
    store.ingest(items=frame())
    try:
        root = tmp_path / "artifacts"
        parent = build_bundle(store, root, search_rerank=False)
    finally:
        store.close()
    # default title weights put the label stickers (title "vegan label sticker") first
    assert [i["item_id"] for i in parent.search.search("vegan").items][:2] == ["I00", "I01"]
    out = tmp_path / "report.json"
    code = main(["tune", "--target", "search", "--judgements", str(judged_folder(tmp_path)),
                 "--artifacts", str(root), "--mode", "lexical", "--folds", "3", "--trials", "8",
                 "--params", "bm25.fields.description,bm25.fields.title",
                 "--json", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    active = Registry(root).active()
    assert active is not None and active.version == report["bundle"]["version"]
    assert active.parent == parent.version
    served = load_bundle(active.path)
    fields = served.search.config.bm25.fields
    assert fields["description"] > fields["title"]
    assert {i["item_id"] for i in served.search.search("vegan").items[:2]} == {"R00", "R01"}


def test_tune_target_model_needs_model_and_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--dataset", "demo"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["tune", "--target", "model"]) == 2
    assert "--model and --dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--target", "everything", "--model", "ease", "--dataset", "demo"])
    assert exc.value.code == 2
    assert "invalid choice: 'everything'" in capsys.readouterr().err
