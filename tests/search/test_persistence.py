"""A saved `SearchService` loads without rebuilding what it can read (typo and filter
indexes, suggestions on first use) and answers exactly as the service that was saved."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.demo import DemoConfig, generate
from shelfwise.errors import ConfigError
from shelfwise.search.catalog import result_columns
from shelfwise.search.filters import FilterIndex
from shelfwise.search.persistence import FORMAT
from shelfwise.search.service import SearchService
from shelfwise.search.typo import TypoIndex

QUERIES = [
    ("headphones", None, "relevance"),
    ("wireles headphnes", None, "relevance"),  # typos: the deletion index answers
    ("kettle", ["price=..40"], "price_asc"),
    ("", ["in_stock=true"], "popularity"),
    ("blue", None, "newest"),
]


@pytest.fixture(scope="module")
def demo():
    return generate(DemoConfig(seed=3, n_items=300, n_users=60, days=10))


@pytest.fixture(scope="module")
def saved(demo, tmp_path_factory):
    service = SearchService.build(demo.items, demo.events)
    directory = tmp_path_factory.mktemp("search") / "search"
    service.save(directory)
    return service, directory


def answers(service, queries):
    out = []
    for query, filters, sort in queries:
        body = service.search(query, filters=filters, sort=sort, per_page=20).to_dict()
        body["query_info"].pop("took_ms")
        out.append(body)
    return out


def test_a_loaded_service_reads_its_indexes_and_answers_the_same(saved, demo):
    service, directory = saved
    meta = json.loads((directory / "service.json").read_text())
    assert meta["format"] == FORMAT == 2
    loaded = SearchService.load(directory)
    # the typo arrays are mapped from the files, not re-hashed
    assert isinstance(loaded.words._keys, np.memmap)
    built_keys, built_ids = service.words._deletion_index()
    assert np.array_equal(loaded.words._keys, built_keys)
    assert np.array_equal(loaded.words._ids, built_ids)
    assert loaded.words.counts == service.words.counts
    brand = str(demo.items["brand"].dropna().iloc[0])
    attribute = next(
        (k, v) for k, col in service.filters.attributes.items() for v in col.labels[:1]
    )
    queries = [
        *QUERIES,
        ("", [f"brand={brand}"], "relevance"),
        ("", [f"{attribute[0]}={attribute[1]}"], "relevance"),
    ]
    assert answers(loaded, queries) == answers(service, queries)
    assert loaded.search("", filters=[f"brand={brand.upper()}"]).total == int(
        (demo.items["brand"] == brand).sum()
    )


def test_suggestions_are_read_on_first_use(saved):
    service, directory = saved
    loaded = SearchService.load(directory)
    assert loaded._suggestions is None  # not built by loading
    for prefix in ("wire", "kett", "headphnes"):
        assert loaded.autocomplete(prefix, 5) == service.autocomplete(prefix, 5)
    assert loaded._suggestions is not None


def test_the_items_frame_is_read_on_first_use_and_matches_the_result_arrays(saved):
    """A loaded service answers from result arrays read with pyarrow; the pandas frame
    is read only when first needed, and the arrays equal `result_columns` of that frame
    value for value and type for type (NaN for a missing text, as pandas gives it)."""
    service, directory = saved
    loaded = SearchService.load(directory)
    assert loaded._items is None  # not read by loading
    assert answers(loaded, QUERIES) == answers(service, QUERIES)
    assert loaded._items is None  # nor by searching
    frame = loaded.items  # what loading read before it was deferred
    assert frame.equals(pd.read_parquet(directory / "items.parquet"))
    assert frame["item_id"].tolist() == service.items["item_id"].tolist()
    expected = result_columns(frame)
    assert loaded._view is not None and set(loaded._view) == set(expected)
    for name, want in expected.items():
        got = loaded._view[name]
        assert got.dtype == want.dtype and got.flags.writeable
        pairs = list(zip(got.tolist(), want.tolist(), strict=True))
        assert all(type(a) is type(b) for a, b in pairs), name
        assert all(a == b or (a != a and b != b) for a, b in pairs), name


def test_live_changes_after_loading(saved, demo):
    _, directory = saved
    loaded = SearchService.load(directory)
    keys_on_disk = np.load(directory / "typo_keys.npy")
    new = demo.items.iloc[[0]].assign(
        item_id="NEW-1",
        title="Zyxwvut Quokka Lamp",
        brand="Brandnew",
        attributes=json.dumps({"finish": "Satin"}),
    )
    assert loaded.upsert_items(new) == {"inserted": 1, "updated": 0}
    found = loaded.search("zyxwvat quokka")  # a typo in a word that arrived after loading
    assert [i["item_id"] for i in found.items] == ["NEW-1"]
    assert found.query_info["corrected"] == {"zyxwvat": "zyxwvut"}
    assert loaded.search("", filters=["brand=brandnew"]).total == 1
    assert loaded.search("", filters=["finish=satin"]).total == 1
    assert [s.text for s in loaded.autocomplete("quok", 3)] == ["Zyxwvut Quokka Lamp"]
    assert np.array_equal(np.load(directory / "typo_keys.npy"), keys_on_disk)


def test_a_format_1_directory_still_loads(saved, tmp_path):
    service, directory = saved
    old = tmp_path / "old"
    old.mkdir()
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith(("typo", "filters")):
            target = old / path.relative_to(directory)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    meta = json.loads((old / "service.json").read_text())
    (old / "service.json").write_text(json.dumps({**meta, "format": 1}))
    loaded = SearchService.load(old)
    assert answers(loaded, QUERIES) == answers(service, QUERIES)


def test_a_damaged_index_is_a_clear_error(saved, tmp_path):
    _, directory = saved
    broken = tmp_path / "broken"
    for path in directory.rglob("*"):
        if path.is_file():
            target = broken / path.relative_to(directory)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    with np.load(broken / "filters.npz") as arrays:
        parts = {k: arrays[k] for k in arrays.files}
    parts["price"] = parts["price"][:-1]
    np.savez(broken / "filters.npz", **parts)
    with pytest.raises(ConfigError, match=r"price has shape .*rebuild"):
        SearchService.load(broken)
    meta = json.loads((broken / "service.json").read_text())
    (broken / "service.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ConfigError, match=r"format 99 .*shelfwise build --rebuild"):
        SearchService.load(broken)


def test_filter_index_state_round_trip_stays_writable(demo):
    index = FilterIndex.build(demo.items)
    meta, arrays = index.state()
    copy = FilterIndex.from_state(json.loads(json.dumps(meta)), arrays)
    copy.set_rows(np.array([0]), demo.items.iloc[[0]].assign(brand="Zeta", price=1.5))
    assert copy.brand.labels[copy.brand.codes[0]] == "Zeta" and copy.price[0] == 1.5
    assert index.price[0] != 1.5  # the state's arrays were copied, not shared
    with pytest.raises(ValueError, match="code"):
        FilterIndex.from_state({**meta, "brand": []}, arrays)


STATE_SCRIPT = """
import json, sys
from shelfwise.search.typo import TypoIndex
words, arrays = TypoIndex({"coffee": 3, "kettle": 2, "headphones": 1}).state()
print(json.dumps([list(words), arrays["keys"].tolist(), arrays["ids"].tolist()]))
"""


def test_typo_state_is_the_same_in_every_process():
    """The deletion index is hashed with CRC-32, not `hash()` (salted per process), so the
    arrays one process writes are valid in the next."""
    outs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", STATE_SCRIPT], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        outs.append(json.loads(run.stdout))
    assert outs[0] == outs[1]
    words, keys, ids = outs[0]
    index = TypoIndex.from_state(
        dict.fromkeys(words, 1), {"keys": np.array(keys, np.uint32), "ids": np.array(ids, np.int32)}
    )
    assert index.lookup("cofee") == [("coffee", 1)]
    assert index.lookup("headphnes") == [("headphones", 1)]
    assert index.complete("kett", fuzzy=True) == [("kettle", 0)]
    with pytest.raises(ValueError, match="uint32"):
        TypoIndex.from_state({"coffee": 1}, {"keys": np.zeros(2, np.int64), "ids": np.zeros(2)})
