import json
import subprocess
import sys

from shelfwise.cli import main
from shelfwise.data.demo import DemoConfig, generate
from shelfwise.store import open_store


def test_search_command_prints_results_and_json(tmp_path, capsys, monkeypatch):
    store_url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    monkeypatch.setenv("SHELFWISE_PATHS__ARTIFACTS", str(tmp_path / "no-registry"))
    demo = generate(DemoConfig(seed=5, n_items=120, n_users=40, days=5))
    with open_store(store_url) as store:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
    title = demo.items["title"].iloc[0]
    brand = demo.items["brand"].iloc[0]
    assert main(["search", title, "--store", store_url, "--per-page", "3"]) == 0
    out = capsys.readouterr().out
    assert "results for" in out and demo.items["item_id"].iloc[0] in out
    argv = ["search", "", "--filter", f"brand={brand}", "--json", "--store", store_url]
    assert main(argv) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["total"] == int((demo.items["brand"] == brand).sum())
    assert {i["brand"] for i in body["items"]} == {brand}
    user = demo.events["user_id"].iloc[0]
    assert main(["search", "blue", "--user", user, "--store", store_url]) == 0


def test_search_command_rejects_bad_sort(tmp_path, capsys):
    store_url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    demo = generate(DemoConfig(seed=5, n_items=60, n_users=10, days=2))
    with open_store(store_url) as store:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
    code = main(["search", "mug", "--sort", "cheap", "--store", store_url])
    assert code != 0
    assert "choose one of relevance" in capsys.readouterr().err


def test_search_answers_from_the_served_bundle_index(tmp_path, capsys):
    store_url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    artifacts = tmp_path / "artifacts"
    demo = generate(DemoConfig(seed=5, n_items=120, n_users=40, days=5))
    with open_store(store_url) as store:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
    assert main(["build", "--store", store_url, "--artifacts", str(artifacts)]) == 0
    capsys.readouterr()
    # a product added after the bundle was built: the persisted index does not know it yet
    new = demo.items.iloc[[0]].assign(item_id="NEW-1", title="Zyxwv Quokka Kettle")
    with open_store(store_url) as store:
        store.ingest(items=new)
    argv = ["search", "zyxwv quokka", "--json", "--store", store_url]
    assert main([*argv, "--artifacts", str(artifacts)]) == 0
    captured = capsys.readouterr()
    assert "NEW-1" not in {i["item_id"] for i in json.loads(captured.out)["items"]}
    assert "run `shelfwise build`" in captured.err
    # no bundle in the registry: the index is built from the store, which has the product
    assert main([*argv, "--artifacts", str(tmp_path / "empty")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["items"][0]["item_id"] == "NEW-1"
    assert captured.err == ""
    # after `shelfwise build` the bundle has it and no note is printed
    assert main(["build", "--store", store_url, "--artifacts", str(artifacts)]) == 0
    capsys.readouterr()
    assert main([*argv, "--artifacts", str(artifacts)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["items"][0]["item_id"] == "NEW-1"
    assert captured.err == ""


IMPORTS_SCRIPT = """
import contextlib, io, json, sys
from shelfwise.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = ("lightgbm", "sklearn", "torch", "faiss", "sentence_transformers",
         "shelfwise.artifacts.bundle", "shelfwise.recommenders", "shelfwise.evaluation")
loaded = sorted(m for m in heavy if m in sys.modules)
light = ("pandas", "pydantic_settings", "shelfwise.settings", "shelfwise.store.sql",
         "onnxruntime", "transformers")
report = {"code": code, "loaded": loaded, "body": json.loads(out.getvalue())}
report["light_loaded"] = sorted(m for m in light if m in sys.modules)
print(json.dumps(report))
"""


def _built_store(tmp_path):
    store_url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    artifacts = tmp_path / "artifacts"
    demo = generate(DemoConfig(seed=5, n_items=120, n_users=40, days=5))
    # no search events: the bundle's search has no learned re-ranker
    events = demo.events[demo.events["type"] != "search"]
    with open_store(store_url) as store:
        store.ingest(items=demo.items, users=demo.users, events=events)
    assert main(["build", "--store", store_url, "--artifacts", str(artifacts)]) == 0
    return store_url, artifacts, demo


def test_search_from_a_bundle_leaves_the_heavy_modules_unimported(tmp_path, capsys):
    """Start-up is the cost of a call: answering from a bundle without a re-ranker imports
    no model library, no bundle builder and no evaluation code."""
    store_url, artifacts, demo = _built_store(tmp_path)
    capsys.readouterr()
    title = str(demo.items["title"].iloc[0])
    argv = ["search", title, "--json", "--store", store_url, "--artifacts", str(artifacts)]
    run = subprocess.run(
        [sys.executable, "-c", IMPORTS_SCRIPT, *argv], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["code"] == 0 and report["loaded"] == []
    # nor pandas, the settings (both flags given) or the store's classes: the DuckDB
    # fingerprint is read through a read-only connection
    assert report["light_loaded"] == []
    assert report["body"]["items"][0]["item_id"] == demo.items["item_id"].iloc[0]


def test_the_duckdb_fingerprint_is_the_stores(tmp_path):
    """`duckdb_fingerprint` reads what `Store.fingerprint()` gives, changes with a write,
    and is None where it cannot read a DuckDB file (the caller opens the store then)."""
    from shelfwise.cli.search import duckdb_fingerprint

    path = tmp_path / "shop.duckdb"
    demo = generate(DemoConfig(seed=5, n_items=60, n_users=10, days=2))
    with open_store(f"duckdb:///{path}") as store:
        store.ingest(items=demo.items)
        before = store.fingerprint()
    assert duckdb_fingerprint(f"duckdb:///{path}") == before
    assert duckdb_fingerprint(str(path)) == before  # a plain .duckdb path
    with open_store(str(path)) as store:
        store.ingest(items=demo.items.iloc[[0]].assign(item_id="NEW-1"))
        after = store.fingerprint()
    assert after != before and duckdb_fingerprint(f"duckdb:///{path}") == after
    assert duckdb_fingerprint(f"duckdb:///{tmp_path / 'missing.duckdb'}") is None
    assert duckdb_fingerprint("duckdb:///:memory:") is None
    assert duckdb_fingerprint("postgresql://shop@localhost/shop") is None
    other = tmp_path / "other.duckdb"
    import duckdb

    duckdb.connect(str(other)).close()  # a DuckDB file that is no store
    assert duckdb_fingerprint(f"duckdb:///{other}") is None


def test_search_answers_while_another_process_holds_the_store(tmp_path, capsys):
    """A running `shelfwise serve` holds an embedded DuckDB store: the search still answers
    from the bundle and says that it could not check the bundle is current."""
    store_url, artifacts, demo = _built_store(tmp_path)
    capsys.readouterr()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(tmp_path / "shop.duckdb")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        title = str(demo.items["title"].iloc[0])
        argv = ["search", title, "--json", "--store", store_url, "--artifacts", str(artifacts)]
        assert main(argv) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["items"][0]["item_id"] == demo.items["item_id"].iloc[0]
        assert "without checking that it is current" in captured.err
        # --user needs the store's events: that is an error naming the store
        assert main([*argv, "--user", str(demo.events["user_id"].iloc[0])]) == 2
        assert "cannot open the DuckDB store" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


HOLD_SCRIPT = """
import sys, time
import duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


def test_a_re_ranked_bundle_answers_without_lightgbm_and_the_same(tmp_path, capsys):
    """The CLI walks the re-ranker's trees in numpy (`search.trees`): no LightGBM or
    scikit-learn import, and the order LightGBM's own scores give."""
    store_url = f"duckdb:///{tmp_path / 'shop.duckdb'}"
    artifacts = tmp_path / "artifacts"
    demo = generate(DemoConfig(seed=5, n_items=300, n_users=150, days=20))
    with open_store(store_url) as store:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
    assert main(["build", "--store", store_url, "--artifacts", str(artifacts)]) == 0
    capsys.readouterr()
    from shelfwise.artifacts.registry import current_bundle_dir
    from shelfwise.search.service import SearchService

    reference = SearchService.load(current_bundle_dir(artifacts) / "search")
    assert reference.reranker is not None
    assert type(reference.reranker.model.booster).__module__.startswith("lightgbm")
    query = str(demo.events.loc[demo.events["type"] == "search", "query"].dropna().iloc[0])
    expected = reference.search(query, per_page=10, facets=[])
    assert expected.query_info["reranked"] is True
    argv = ["search", query, "--json", "--store", store_url, "--artifacts", str(artifacts)]
    run = subprocess.run(
        [sys.executable, "-c", IMPORTS_SCRIPT, *argv], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    body = report["body"]
    assert body["query_info"]["reranked"] is True
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in expected.items]
    assert [i["score"] for i in body["items"]] == [i["score"] for i in expected.items]
