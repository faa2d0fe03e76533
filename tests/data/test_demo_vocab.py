"""The demo generator's vocabulary files: what ships, and clear errors for broken files."""

from importlib import resources

import pytest

from shelfwise.data.demo import BRANDS, LEAVES, TOP_CATEGORIES
from shelfwise.data.demo.lexicon import LEXICON, VOCAB_FILES, build_lexicon, load_lexicon
from shelfwise.errors import ConfigError


def packaged() -> dict[str, str]:
    folder = resources.files("shelfwise.data.demo") / "vocab"
    return {name: (folder / name).read_text(encoding="utf-8") for name in VOCAB_FILES}


def test_packaged_vocabulary():
    folder = resources.files("shelfwise.data.demo") / "vocab"
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".toml")) == sorted(
        VOCAB_FILES
    )
    assert TOP_CATEGORIES == (
        "Home", "Electronics", "Beauty", "Sports", "Fashion", "Toys", "Grocery",
    )  # fmt: skip
    assert len(LEAVES) == 53
    assert sum(len(b) for b in BRANDS.values()) == 76
    assert BRANDS["Toys"][0] == "Tinkertree" and len(BRANDS["Toys"]) == 10
    knives = LEAVES[0]
    assert knives.path == "Home > Kitchen > Knives" and knives.name == "Knives"
    assert knives.median_price == 40.0 and knives.price_sigma == 0.45
    assert knives.nouns[0] == "Chef's Knife" and knives.size_key == "blade_length"
    # options left out of the file take the documented defaults
    cookware = LEAVES[1]
    assert (cookware.variant_key, cookware.size_key, cookware.consumable) == (
        "material", "size", False,
    )  # fmt: skip
    assert (cookware.cycle_days, cookware.size_step) == (30.0, 0.12)
    headphones = next(lf for lf in LEAVES if lf.name == "Headphones")
    assert headphones.sizes == () and headphones.variant_key == "colour"
    dog_food = LEAVES[-1]
    assert dog_food.path == "Grocery > Pet Food > Dog Food"
    assert dog_food.consumable and dog_food.cycle_days == 30.0
    assert LEXICON.top_share["Electronics"] == 0.18
    assert LEXICON.variant_phrases["origin"] == "made from {v} olives"
    assert "Damascus" in LEXICON.proper_words
    assert list(LEXICON.shopper_attributes["device"].items()) == [
        ("mobile", 0.58), ("desktop", 0.34), ("tablet", 0.08),
    ]  # fmt: skip
    assert load_lexicon() is load_lexicon()  # read once


def test_vocabulary_round_trips():
    again = build_lexicon(packaged())
    assert again == LEXICON


BROKEN = [
    # (file, text to replace, replacement, fragments the error must contain)
    (
        "catalogue.toml",
        'sizes = ["3.5 inch"',
        'colours = ["red"]\nsizes = ["3.5 inch"',
        ["catalogue.toml", "'Home > Kitchen > Knives'", "colours", "Extra inputs"],
    ),
    (
        "catalogue.toml",
        'path = "Home > Kitchen > Knives"\nmedian_price = 40.0',
        'path = "Home > Kitchen > Knives"\nmedian_price = -40.0',
        ["category[0] 'Home' > leaf[0] 'Home > Kitchen > Knives' > median_price", "greater than 0"],
    ),
    (
        "catalogue.toml",
        'path = "Home > Kitchen > Knives"\nmedian_price = 40.0',
        'path = "Home > Kitchen > Knives"\nmedian_price = "40"',
        ["median_price", "valid number"],
    ),
    (
        "catalogue.toml",
        'sizes = ["3.5 inch", "5 inch"',
        'sizes = ["3.5 inch ", "5 inch"',
        ["'Home > Kitchen > Knives' > sizes[0]", "leading or trailing spaces"],
    ),
    (
        "catalogue.toml",
        'variants = ["Stainless Steel", "Matte Black"',
        'variants = []\nvariant_list = ["Stainless Steel", "Matte Black"',
        ["'Home > Kitchen > Coffee Makers' > variants", "at least 1"],
    ),
    (
        "catalogue.toml",
        "consumable = true",
        "consumable = 1",
        ["consumable", "valid boolean"],
    ),
    (
        "catalogue.toml",
        'path = "Home > Kitchen > Knives"',
        'path = "Electronics > Kitchen > Knives"',
        ["category[0] 'Home'", "must start with its category 'Home'"],
    ),
    (
        "catalogue.toml",
        'path = "Home > Kitchen > Knives"',
        'path = "Home > Knives"',
        ["three levels"],
    ),
    (
        "catalogue.toml",
        '"Voltrix",',
        '"Hearthwell",',
        ["brand 'Hearthwell' appears twice"],
    ),
    (
        "catalogue.toml",
        'size_key = "blade_length"',
        'size_key = "Blade Length"',
        ["size_key", "lower-case identifier"],
    ),
    (
        "catalogue.toml",
        'variant_key = "finish"',
        'variant_key = "glaze"',
        ["'Home > Kitchen > Coffee Makers'", "'glaze'", "[variant_phrases]", "descriptions.toml"],
    ),
    (
        "descriptions.toml",
        'origin = "made from {v} olives"',
        'origin = "made from olives"',
        ["descriptions.toml", "variant_phrases.origin", "{v}"],
    ),
    (
        "descriptions.toml",
        '"Thoughtfully designed by {brand}.",',
        '"Thoughtfully designed by {maker}.",',
        ["closing", "sentences[2]", "['maker']"],
    ),
    (
        "shoppers.toml",
        "tablet = 0.08",
        "tablet = 0.0",
        ["shoppers.toml", "device > tablet", "greater than 0"],
    ),
    (
        "shoppers.toml",
        "\n[device]\n",
        "\n[device\n",
        ["shoppers.toml", "not valid TOML"],
    ),
]


@pytest.mark.parametrize(("name", "old", "new", "fragments"), BROKEN)
def test_broken_files_name_the_problem(name, old, new, fragments):
    texts = packaged()
    assert texts[name].count(old) >= 1, f"fixture text {old!r} not found in {name}"
    texts[name] = texts[name].replace(old, new, 1)
    with pytest.raises(ConfigError) as caught:
        build_lexicon(texts)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_missing_file():
    texts = packaged()
    del texts["shoppers.toml"]
    with pytest.raises(ConfigError, match=r"missing \['shoppers.toml'\]"):
        build_lexicon(texts)
