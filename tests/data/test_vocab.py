import json

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.vocab import Vocabulary, factorize_ids
from shelfwise.errors import ConfigError, DataError, UnknownIdError


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary(["b", "a", "c"], name="item_id")


def test_order_is_preserved_and_indexes_are_positions(vocab):
    assert len(vocab) == 3
    assert vocab.ids.tolist() == ["b", "a", "c"]
    assert [vocab.index(i) for i in ("b", "a", "c")] == [0, 1, 2]
    assert list(vocab) == ["b", "a", "c"]
    assert "a" in vocab and "z" not in vocab and None not in vocab


def test_ids_are_read_only(vocab):
    with pytest.raises(ValueError):
        vocab.ids[0] = "x"
    assert vocab.ids.dtype == object


def test_duplicates_are_rejected_naming_the_id():
    with pytest.raises(DataError, match="duplicate id 'a'"):
        Vocabulary(["a", "b", "a"], name="item_id")


def test_missing_ids_are_rejected():
    with pytest.raises(DataError, match="position 1 is missing"):
        Vocabulary(["a", None, "b"])


def test_integer_and_integer_valued_float_ids_become_their_text():
    v = Vocabulary([10, 2])
    assert v.ids.tolist() == ["10", "2"]
    assert 10 in v and "10" in v and 10.0 in v
    assert v.index(2) == 1
    assert v.encode(np.array([2.0, np.nan, 10.0]), unknown="minus_one").tolist() == [1, -1, 0]


def test_from_values_first_seen_or_sorted_and_skips_missing():
    values = pd.Series(["c", None, "a", "c", "b", "a"], dtype=object)
    assert Vocabulary.from_values(values).ids.tolist() == ["c", "a", "b"]
    assert Vocabulary.from_values(values, sorted=True).ids.tolist() == ["a", "b", "c"]
    assert Vocabulary.from_values([], name="user_id").ids.tolist() == []
    assert Vocabulary.from_values(["x"], name="user_id").name == "user_id"


def test_unknown_id_message_names_kind_id_and_size():
    v = Vocabulary([f"i{n}" for n in range(1682)], name="item_id")
    with pytest.raises(UnknownIdError) as info:
        v.index("X")
    assert str(info.value) == "unknown item_id 'X' (not among the 1,682 known ids)"
    assert isinstance(info.value, KeyError)


def test_encode_known_ids(vocab):
    codes = vocab.encode(["c", "b", "c", "a"])
    assert codes.dtype == np.int64
    assert codes.tolist() == [2, 0, 2, 1]
    assert vocab.encode(pd.Series(["a", "b"])).tolist() == [1, 0]
    assert vocab.encode(np.array(["a", "b"])).tolist() == [1, 0]
    assert vocab.encode([]).tolist() == []


def test_encode_unknown_policies(vocab):
    ids = ["a", "x", "c", None, "x"]
    assert vocab.encode(ids, unknown="minus_one").tolist() == [1, -1, 2, -1, -1]
    assert vocab.encode(ids, unknown="drop").tolist() == [1, 2]
    with pytest.raises(UnknownIdError) as info:
        vocab.encode(ids)
    message = str(info.value)
    assert message.startswith("2 unknown item_id values: 'x', None (not among the 3 known ids)")
    assert "unknown='drop'" in message
    with pytest.raises(UnknownIdError, match=r"^unknown item_id 'q' \(not among the 3 known"):
        vocab.encode(["q", "q"])


def test_encode_rejects_a_bad_policy_and_a_bare_string(vocab):
    with pytest.raises(ConfigError, match="error, drop, minus_one"):
        vocab.encode(["a"], unknown="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vocab.encode("abc")


def test_encode_many_ids_is_vectorised():
    ids = np.array([f"id{n}" for n in range(50_000)], dtype=object)
    v = Vocabulary(ids)
    sample = ids[np.random.default_rng(0).integers(0, ids.size, 1_000_000)]
    codes = v.encode(sample)
    assert np.array_equal(v.ids[codes], sample)


def test_short_encodes_by_lookup_match_the_vectorised_pass():
    """A request's few ids are looked up one by one (`_SMALL` at most); the answer is the
    vectorised pass's, for every policy and container."""
    ids = np.array([f"id{n}" for n in range(1000)], dtype=object)
    v = Vocabulary(ids)
    rng = np.random.default_rng(1)
    for n in (1, 7, 256):
        mixed = [f"id{k}" if k < 1000 else f"new{k}" for k in rng.integers(0, 1300, n)]
        want = v._index.get_indexer(pd.Index(mixed, dtype=object))
        for form in (mixed, tuple(mixed), np.array(mixed, dtype=object)):
            got = v.encode(form, unknown="minus_one")
            assert got.dtype == np.int64 and got.tolist() == want.astype(int).tolist()
            assert v.encode(form, unknown="drop").tolist() == [c for c in want if c >= 0]
        if (want < 0).any():
            with pytest.raises(UnknownIdError, match="unknown id"):
                v.encode(mixed)
        known = [i for i in mixed if i.startswith("id")]
        assert v.ids[v.encode(known)].tolist() == known
    # ids that are not `str` take the vectorised pass: 7 is id "7"
    assert Vocabulary(["7", "a"]).encode([7, "a", 7.0], unknown="minus_one").tolist() == [0, 1, 0]


def test_decode_and_bounds(vocab):
    out = vocab.decode([2, 0, 0])
    assert out.dtype == object and out.tolist() == ["c", "b", "b"]
    assert vocab.decode(np.array([1], dtype=np.int32)).tolist() == ["a"]
    assert vocab.decode([]).tolist() == []
    for bad in ([3], [-1], [0, 7]):
        with pytest.raises(IndexError, match="out of range"):
            vocab.decode(bad)
    with pytest.raises(TypeError):
        vocab.decode(np.array([0.5]))


def test_extend_appends_unseen_and_keeps_indices(vocab):
    bigger = vocab.extend(["d", "a", "e", "d"])
    assert bigger.ids.tolist() == ["b", "a", "c", "d", "e"]
    assert [bigger.index(i) for i in vocab.ids] == [0, 1, 2]
    assert bigger.name == "item_id"
    assert vocab.ids.tolist() == ["b", "a", "c"]  # the original is unchanged
    assert vocab.extend(["a"]) == vocab
    with pytest.raises(DataError):
        vocab.extend(["x", None])


def test_equality(vocab):
    assert vocab == Vocabulary(["b", "a", "c"])  # the name is not part of equality
    assert vocab != Vocabulary(["a", "b", "c"])
    assert vocab != Vocabulary(["b", "a"])
    assert vocab != ["b", "a", "c"]


def test_save_load_round_trip_as_json(tmp_path):
    v = Vocabulary(["b", "ä ö", "日本", "a'b\"c"], name="user_id")
    path = tmp_path / "sub" / "users.vocab.json"
    v.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["ids"] == ["b", "ä ö", "日本", "a'b\"c"]
    loaded = Vocabulary.load(path)
    assert loaded == v and loaded.name == "user_id"
    assert loaded.index("日本") == 2
    assert [p.name for p in path.parent.iterdir()] == ["users.vocab.json"]


def test_load_rejects_bad_files(tmp_path):
    path = tmp_path / "v.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"ids": ["a"]}))
    with pytest.raises(DataError, match="not a vocabulary"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"format": "shelfwise-vocabulary", "version": 1, "ids": [1]}))
    with pytest.raises(DataError, match="list of strings"):
        Vocabulary.load(path)
    path.write_text(json.dumps({"format": "shelfwise-vocabulary", "version": 1, "ids": ["a", "a"]}))
    with pytest.raises(DataError, match="duplicate"):
        Vocabulary.load(path)


def test_factorize_ids_maps_missing_to_minus_one():
    codes, ids = factorize_ids(pd.Series(["b", None, "a", "b", 3], dtype=object))
    assert codes.tolist() == [0, -1, 1, 0, 2]
    assert ids.tolist() == ["b", "a", "3"]
