import pytest

from shelfwise.search.typo import TypoIndex, max_distance, osa_distance

WORDS = {
    "coffee": 10,
    "toffee": 3,
    "chocolate": 5,
    "chocolates": 2,
    "kettle": 7,
    "kettlebell": 1,
    "cafe": 4,
    "tea": 9,
    "teapot": 2,
    "headphones": 6,
}


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ("kitten", "sitting", 3),
        ("kettel", "kettle", 1),
        ("ab", "ba", 1),
        ("", "abc", 3),
        ("coffee", "coffee", 0),
        ("ca", "abc", 3),
    ],
)
def test_osa_distance(a, b, d):
    assert osa_distance(a, b) == d


def test_allowed_distance_grows_with_length():
    assert [max_distance("x" * n) for n in (1, 3, 4, 7, 8, 12)] == [0, 0, 1, 1, 2, 2]


def test_lookup_one_typo_from_4_chars_two_from_8():
    index = TypoIndex(WORDS)
    assert index.lookup("cofee") == [("coffee", 1)]
    assert index.lookup("kettel") == [("kettle", 1)]  # swapped letters cost 1
    assert index.lookup("chcoolate")[0] == ("chocolate", 1)
    assert index.lookup("chocolat") == [("chocolate", 1), ("chocolates", 2)]
    assert index.lookup("hedphnes") == [("headphones", 2)]
    # 3 characters: no typo allowed; 4-7: only one
    assert index.lookup("tee") == []
    assert index.lookup("cofefe") == [("coffee", 1)]
    assert index.lookup("cfofe") == []
    # an exact word is found at distance 0, and ties rank by count
    assert index.lookup("toffee") == [("toffee", 0), ("coffee", 1)]


def test_complete_exact_and_fuzzy_prefixes():
    index = TypoIndex(WORDS)
    assert index.complete("te") == [("tea", 0), ("teapot", 0)]
    assert index.complete("kett", limit=1) == [("kettle", 0)]
    assert index.complete("kettl") == [("kettle", 0), ("kettlebell", 0)]
    assert index.complete("chco") == []
    assert index.complete("chco", fuzzy=True) == [("chocolate", 1), ("chocolates", 1)]
    assert index.complete("") == []


def test_words_can_be_added_later():
    index = TypoIndex(WORDS)
    assert index.lookup("blendr") == []
    index.add({"blender": 2})
    assert index.lookup("blendr") == [("blender", 1)]
    assert index.complete("blen") == [("blender", 0)]
    assert index.count("blender") == 2 and "blender" in index and len(index) == 11


def test_words_added_after_the_index_is_built_are_found_without_a_rebuild():
    index = TypoIndex({"headphones": 5, "kettle": 3, "grinder": 2})
    index.prepare()
    keys = index._keys
    index.add({"headphone": 1, "espresso": 4})  # one item's words, after the build
    assert index.lookup("espreso") == [("espresso", 1)]
    assert index.lookup("headphnes") == [("headphones", 1), ("headphone", 2)]
    assert index._keys is keys  # the sorted arrays were kept, the new words held aside
    assert index.complete("esp") == [("espresso", 0)]
    # the same answers as an index built with every word at once
    fresh = TypoIndex(index.counts)
    for term in ("espreso", "headphnes", "kettel", "grindr"):
        assert index.lookup(term) == fresh.lookup(term)
    assert index.complete("he") == fresh.complete("he")
