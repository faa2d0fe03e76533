from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.data.matrix import Interactions, InteractionWeights, build_interactions
from shelfwise.data.vocab import Vocabulary
from shelfwise.errors import ConfigError, DataError, UnknownIdError

DAY = "2024-03-{:02d}"

# 3 users x 4 items; u1/a twice (view + click), u2/c twice (add_to_cart on two days),
# a search without an item, and a search that names item c (weight 0: no cell).
EVENTS = [
    # user, item, type, value, day
    ("u1", "a", "view", None, 10),
    ("u1", "a", "click", None, 10),
    ("u1", "b", "purchase", None, 9),
    ("u2", "b", "rating", 4.0, 8),
    ("u2", "c", "add_to_cart", None, 10),
    ("u2", "c", "add_to_cart", None, 9),
    ("u3", "d", "rating", 2.0, 10),
    ("u3", None, "search", None, 10),
    ("u3", "c", "search", None, 10),
]


def events() -> pd.DataFrame:
    frame = pd.DataFrame(EVENTS, columns=["user_id", "item_id", "type", "value", "day"])
    frame["timestamp"] = pd.to_datetime([DAY.format(d) for d in frame["day"]]).astype(
        "datetime64[us]"
    )
    frame["value"] = frame["value"].astype("float64")
    frame["seq"] = np.arange(len(frame), dtype=np.int64)
    return frame.drop(columns="day").astype({"user_id": object, "item_id": object})


def dense(data: Interactions) -> list[list[float]]:
    return data.matrix.toarray().tolist()


def test_default_weights_exact_matrix():
    data = build_interactions(events())
    assert data.users.ids.tolist() == ["u1", "u2", "u3"]
    assert data.items.ids.tolist() == ["a", "b", "c", "d"]
    assert dense(data) == [
        [2.0, 5.0, 0.0, 0.0],  # view 1 + click 1; purchase 5
        [0.0, 4.0, 6.0, 0.0],  # rating 1 x value 4; add_to_cart 3 + 3
        [0.0, 0.0, 0.0, 2.0],  # rating 1 x value 2; the search on c weighs 0
    ]
    m = data.matrix
    assert isinstance(m, sp.csr_matrix) and m.dtype == np.float32
    assert m.has_canonical_format and m.has_sorted_indices
    assert data.nnz == 5 and data.n_users == 3 and data.n_items == 4
    assert data.density == pytest.approx(5 / 12)


def test_binary():
    data = build_interactions(events(), InteractionWeights(binary=True))
    assert dense(data) == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]]


def test_custom_type_weights_and_no_use_value():
    weights = InteractionWeights(view=0, purchase=2, use_value=())
    assert dense(build_interactions(events(), weights)) == [
        [1, 2, 0, 0],
        [0, 1, 6, 0],
        [0, 0, 0, 1],
    ]


def test_use_value_accepts_a_set_and_multiplies_other_types():
    frame = events()
    frame.loc[2, "value"] = 3.0  # purchase of 3 units
    weights = InteractionWeights(use_value={"purchase", "rating"})
    assert weights.use_value == ("purchase", "rating")
    assert dense(build_interactions(frame, weights))[0] == [2, 15, 0, 0]


def test_min_value_drops_low_ratings_only():
    data = build_interactions(events(), InteractionWeights(min_value=3))
    assert dense(data) == [[2, 5, 0, 0], [0, 4, 6, 0], [0, 0, 0, 0]]
    assert data.items.ids.tolist() == ["a", "b", "c", "d"]  # d keeps its column


def test_half_life_decay_from_the_newest_event():
    # now = 2024-03-10 (newest): day 10 -> x1, day 9 -> x0.5, day 8 -> x0.25
    data = build_interactions(events(), InteractionWeights(half_life_days=1))
    assert dense(data) == [
        [2.0, 2.5, 0.0, 0.0],  # (1 + 1) x 1; 5 x 0.5
        [0.0, 1.0, 4.5, 0.0],  # 4 x 0.25; 3 x 1 + 3 x 0.5
        [0.0, 0.0, 0.0, 2.0],
    ]


@pytest.mark.parametrize(
    "now",
    [
        "2024-03-11",
        datetime(2024, 3, 11),
        datetime(2024, 3, 11, tzinfo=UTC),
        pd.Timestamp("2024-03-11T02:00:00+02:00"),
    ],
)
def test_half_life_decay_from_a_given_now(now):
    data = build_interactions(events(), InteractionWeights(half_life_days=1), now=now)
    assert dense(data) == [[1.0, 1.25, 0, 0], [0, 0.5, 2.25, 0], [0, 0, 0, 1.0]]


def test_decay_does_not_boost_events_after_now():
    data = build_interactions(events(), InteractionWeights(half_life_days=1), now="2024-03-09")
    assert dense(data)[0] == [2.0, 5.0, 0, 0]  # day 10 clipped to age 0; day 9 is age 0
    assert dense(data)[1] == [0, 2.0, 6.0, 0]  # day 8 is one day old


def test_decay_needs_timestamps():
    frame = events().drop(columns="timestamp")
    with pytest.raises(DataError, match="timestamp"):
        build_interactions(frame, InteractionWeights(half_life_days=7))
    frame = events()
    frame["timestamp"] = frame["timestamp"].astype(object)
    frame.loc[0, "timestamp"] = None
    with pytest.raises(DataError, match="1 rows have no timestamp"):
        build_interactions(frame, InteractionWeights(half_life_days=7))


def test_timezone_aware_timestamps():
    frame = events()
    frame["timestamp"] = frame["timestamp"].dt.tz_localize("UTC").dt.tz_convert("Asia/Tokyo")
    data = build_interactions(frame, InteractionWeights(half_life_days=1))
    assert dense(data)[1] == [0.0, 1.0, 4.5, 0.0]


def test_frame_without_type_value_or_seq_weighs_rows_one():
    frame = events()[["user_id", "item_id"]]
    data = build_interactions(frame)
    assert dense(data) == [[2, 1, 0, 0], [0, 1, 2, 0], [0, 0, 1, 1]]


def test_missing_type_cells_weigh_one_and_unknown_types_fail():
    frame = events()
    frame.loc[2, "type"] = None
    assert dense(build_interactions(frame))[0] == [2, 1, 0, 0]
    frame.loc[2, "type"] = "like"
    with pytest.raises(DataError, match=r"unknown event type.*'like'.*view, click"):
        build_interactions(frame)


def test_null_user_or_item_rows_are_ignored():
    frame = events()
    frame.loc[len(frame)] = [None, "zz", "view", np.nan, pd.Timestamp("2024-03-10"), 99]
    data = build_interactions(frame)
    assert "zz" not in data.items
    assert data.matrix.shape == (3, 4)


def test_integer_ids_become_text():
    frame = pd.DataFrame({"user_id": [7, 7, 8], "item_id": [1, 2, 1]})
    data = build_interactions(frame)
    assert data.users.ids.tolist() == ["7", "8"]
    assert data.items.ids.tolist() == ["1", "2"]
    assert dense(data) == [[1, 1], [1, 0]]


def test_given_vocabularies_fix_dimensions_and_order():
    users = Vocabulary(["u3", "u2", "u1", "u9"], name="user_id")
    items = Vocabulary(["d", "c", "b", "a", "z"], name="item_id")
    data = build_interactions(events(), users=users, items=items)
    assert data.users is users and data.items is items
    assert dense(data) == [
        [2, 0, 0, 0, 0],
        [0, 6, 4, 0, 0],
        [0, 0, 5, 2, 0],
        [0, 0, 0, 0, 0],
    ]


def test_unknown_ids_raise_or_are_dropped():
    items = Vocabulary(["a", "b", "c"], name="item_id")
    with pytest.raises(UnknownIdError) as info:
        build_interactions(events(), items=items)
    assert str(info.value) == (
        "unknown item_id 'd' (not among the 3 known ids); pass drop_unknown=True to skip such rows"
    )
    data = build_interactions(events(), items=items, drop_unknown=True)
    assert data.users.ids.tolist() == ["u1", "u2", "u3"]
    assert dense(data) == [[2, 5, 0], [0, 4, 6], [0, 0, 0]]
    users = Vocabulary(["u1"], name="user_id")
    with pytest.raises(UnknownIdError, match="2 unknown user_id values: 'u2', 'u3'"):
        build_interactions(events(), users=users)


def test_train_and_test_matrices_share_dimensions():
    frame = events()
    full = build_interactions(frame)
    train = build_interactions(frame.iloc[:4], users=full.users, items=full.items)
    test = build_interactions(frame.iloc[4:], users=full.users, items=full.items)
    assert train.matrix.shape == test.matrix.shape == (3, 4)
    assert np.allclose((train.matrix + test.matrix).toarray(), full.matrix.toarray())


def test_empty_frame():
    frame = events().iloc[:0]
    data = build_interactions(frame)
    assert data.matrix.shape == (0, 0) and data.nnz == 0 and data.density == 0.0
    items = Vocabulary(["a", "b"])
    assert build_interactions(frame, items=items).matrix.shape == (0, 2)


def test_missing_columns():
    with pytest.raises(DataError, match="item_id"):
        build_interactions(pd.DataFrame({"user_id": ["u"]}))


def test_interactions_helpers():
    data = build_interactions(events())
    assert data.user_items(1).tolist() == [1, 2]
    assert data.user_items("u1").tolist() == [0, 1]
    assert data.user_items(2).dtype == np.int64
    with pytest.raises(IndexError):
        data.user_items(3)
    with pytest.raises(UnknownIdError):
        data.user_items("nobody")
    frame = data.to_frame()
    assert frame.to_dict("records") == [
        {"user_id": "u1", "item_id": "a", "weight": 2.0},
        {"user_id": "u1", "item_id": "b", "weight": 5.0},
        {"user_id": "u2", "item_id": "b", "weight": 4.0},
        {"user_id": "u2", "item_id": "c", "weight": 6.0},
        {"user_id": "u3", "item_id": "d", "weight": 2.0},
    ]
    with pytest.raises(DataError, match="does not match"):
        Interactions(sp.csr_matrix((2, 2), dtype=np.float32), data.users, data.items)


def test_store_layout_with_pandas_string_columns():
    frame = events().astype({"user_id": "str", "item_id": "str", "type": "str"})
    assert dense(build_interactions(frame)) == dense(build_interactions(events()))


def test_weights_defaults_and_round_trip():
    w = InteractionWeights()
    assert w.type_weights == {
        "view": 1.0,
        "click": 1.0,
        "add_to_cart": 3.0,
        "purchase": 5.0,
        "rating": 1.0,
        "search": 0.0,
    }
    assert w.use_value == ("rating",) and not w.binary
    assert w.half_life_days is None and w.min_value is None
    custom = InteractionWeights(purchase=8, half_life_days=30, use_value=["rating", "purchase"])
    assert InteractionWeights(**custom.model_dump(mode="json")) == custom
    assert custom.weight_of("purchase") == 8.0


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"like": 2}, r"unknown interaction weight key\(s\) 'like'; event types are view, click"),
        ({"half_life_days": -1}, "half_life_days must be a positive"),
        ({"half_life_days": 0}, "half_life_days must be a positive"),
        ({"view": -1}, "finite number >= 0"),
        ({"view": float("inf")}, "finite number >= 0"),
        ({"use_value": ["like"]}, "use_value names unknown event type"),
        ({"min_value": float("nan")}, "min_value"),
        ({"view": "lots"}, "invalid interaction weights: view"),
        ({"binary": "perhaps"}, "invalid interaction weights: binary"),
    ],
)
def test_invalid_weights_raise_config_error(params, pattern):
    with pytest.raises(ConfigError, match=pattern):
        InteractionWeights(**params)


def test_weights_are_frozen_and_weight_of_checks_type():
    w = InteractionWeights()
    with pytest.raises(ValueError):
        w.view = 3  # type: ignore[misc]
    with pytest.raises(ConfigError):
        w.weight_of("like")


def test_large_frame_sums_duplicates():
    rng = np.random.default_rng(1)
    n = 200_000
    users = rng.integers(0, 500, n)
    items = rng.integers(0, 300, n)
    frame = pd.DataFrame(
        {
            "user_id": users.astype(str).astype(object),
            "item_id": items.astype(str).astype(object),
            "type": np.where(rng.random(n) < 0.5, "view", "purchase").astype(object),
        }
    )
    data = build_interactions(frame)
    expected = np.zeros((500, 300))
    np.add.at(expected, (users, items), np.where(frame["type"] == "view", 1.0, 5.0))
    rows = data.users.encode(np.arange(500).astype(str))
    cols = data.items.encode(np.arange(300).astype(str))
    assert np.array_equal(data.matrix.toarray()[np.ix_(rows, cols)], expected)
