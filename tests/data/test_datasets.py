"""Real-data loaders, checked against the counts published in each dataset's SOURCE.md."""

import json

import pytest

from shelfwise.data.datasets import available, dataset_path, is_available, load_dataset
from shelfwise.errors import DataError


def need(name: str) -> None:
    if not is_available(name):
        pytest.skip(f"dataset {name} not found (set SHELFWISE_DATA_DIR)")


def test_registry_and_errors(tmp_path, monkeypatch):
    assert {"movielens-100k", "amazon-beauty"} <= set(available())
    with pytest.raises(DataError, match="known datasets"):
        dataset_path("nope")
    monkeypatch.setenv("SHELFWISE_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("movielens-100k")


@pytest.mark.realdata
def test_movielens_100k():
    need("movielens-100k")
    ds = load_dataset("movielens-100k")
    assert (len(ds.items), len(ds.users), len(ds.events)) == (1682, 943, 100000)
    assert ds.events["value"].value_counts().sort_index().tolist() == [
        6110,
        11370,
        27145,
        34174,
        21201,
    ]
    assert ds.events.groupby("user_id").size().min() >= 20
    assert ds.events["event_id"].is_unique
    toy = ds.items.set_index("item_id").loc["1"]
    assert toy["title"] == "Toy Story (1995)" and toy["category"] == "Movies > Animation"
    assert json.loads(toy["attributes"])["genres"] == ["Animation", "Children's", "Comedy"]
    # latin-1 titles decoded
    assert ds.items["title"].str.contains("Misérables").any()
    assert str(ds.events["timestamp"].min()) == "1997-09-20 03:05:10"
    assert json.loads(ds.users.set_index("user_id").loc["1", "attributes"])["age"] == 24


@pytest.mark.realdata
def test_amazon_beauty():
    need("amazon-beauty")
    ds = load_dataset("amazon-beauty")
    assert (len(ds.items), len(ds.users), len(ds.events)) == (12101, 22363, 198502)
    items = ds.items.set_index("item_id")
    assert items.loc["B0045W22SW", "title"] == "Sigma F82 - Round Kabuki TM"
    assert (items.index == items["title"]).sum() == 7  # untitled items fall back to the ASIN
    lengths = ds.events.groupby("user_id").size()
    assert (lengths.min(), lengths.max()) == (5, 204)
    # order is kept: the first user's sequence as in user_sequence.txt
    first = ds.events[ds.events["user_id"] == "A1YJEY40YUW4SE"]
    assert first["item_id"].tolist() == [
        "B004756YJA",
        "B004ZT0SSG",
        "B0020YLEYK",
        "7806397051",
        "B002WLWX82",
    ]
    assert first["timestamp"].is_monotonic_increasing
    assert json.loads(items.loc["7806397051", "attributes"])["attribute_ids"] == [1, 2, 3]
    assert ds.events["event_id"].is_unique
