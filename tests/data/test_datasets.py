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


@pytest.mark.realdata
def test_amazon_beauty_catalogue_from_catalog_enriched():
    need("amazon-beauty")
    ds = load_dataset("amazon-beauty")
    items = ds.items.set_index("item_id")
    sigma = items.loc["B0045W22SW"]
    assert sigma["brand"] == "Sigma"
    assert sigma["category"] == "Beauty > Tools & Accessories > Makeup Brushes & Tools > Brush Sets"
    assert items.loc["B0017TOHFW", "brand"] == "TIGI"
    assert items.loc["B0017TOHFW", "category"].endswith("Styling Products > Hair Sprays")
    # SOURCE.md: 7,131 products have a brand, 4,970 have none
    assert (items["brand"] != "").sum() == 7131
    assert items["category"].str.startswith("Beauty > ").all()
    tops = items["category"].str.split(" > ").str[1].value_counts()
    assert (tops["Skin Care"], tops["Hair Care"], tops["Makeup"]) == (3813, 3261, 2627)
    assert "catalog_enriched.jsonl" in ds.notes["catalog"]


def _tiny_beauty(root, catalog_lines=None):
    """A two-user, three-item folder in the amazon-beauty layout (synthetic, not the data)."""
    folder = root / "amazon-beauty-5core"
    folder.mkdir(parents=True)
    (folder / "user_sequence.txt").write_text("U1 A1 A2\nU2 A2 A3\n")
    (folder / "item_id_to_int.json").write_text('{"A1": 0, "A2": 1, "A3": 2}')
    (folder / "products_lookup.csv").write_text(
        ",global_product_id,name\n0,0,Rose &amp; Oud Oil\n1,1,Kabuki Brush\n2,2,\n"
    )
    if catalog_lines is not None:
        (folder / "catalog_enriched.jsonl").write_text("\n".join(catalog_lines) + "\n")
    return root


def test_amazon_beauty_without_and_with_catalogue(tmp_path):
    plain = load_dataset("amazon-beauty", _tiny_beauty(tmp_path / "a"))
    assert plain.items["brand"].tolist() == ["", "", ""]
    assert plain.items["category"].tolist() == ["Beauty"] * 3
    assert plain.items["title"].tolist() == ["Rose &amp; Oud Oil", "Kabuki Brush", "A3"]
    lines = [
        '{"item_id": "A1", "title": "Rose & Oud Oil", "brand": "Oudy", '
        '"category": "Beauty > Fragrance"}',
        '{"item_id": "A2", "title": "Kabuki Brush", "brand": null, '
        '"category": "Beauty > Tools & Accessories"}',
    ]
    rich = load_dataset("amazon-beauty", _tiny_beauty(tmp_path / "b", lines))
    items = rich.items.set_index("item_id")
    assert items.loc["A1", ["title", "brand", "category"]].tolist() == [
        "Rose & Oud Oil",
        "Oudy",
        "Beauty > Fragrance",
    ]
    assert items.loc["A2", "brand"] == ""
    # an item the catalogue does not list keeps the plain fallbacks
    assert items.loc["A3", ["title", "brand", "category"]].tolist() == ["A3", "", "Beauty"]


def test_amazon_beauty_bad_catalogue_line_names_the_line(tmp_path):
    lines = [
        '{"item_id": "A1", "brand": "X", "category": "Beauty"}',
        '{"item_id": "A2", "brand": 3}',
    ]
    with pytest.raises(DataError, match=r"line 2: brand must be a string or null"):
        load_dataset("amazon-beauty", _tiny_beauty(tmp_path, lines))
    (tmp_path / "amazon-beauty-5core" / "catalog_enriched.jsonl").write_text("{oops\n")
    with pytest.raises(DataError, match=r"line 1: not JSON"):
        load_dataset("amazon-beauty", tmp_path)
