import json

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
