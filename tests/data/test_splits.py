from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.data.splits import (
    Split,
    carve_validation,
    leave_last_out,
    random_holdout,
    sample_users,
    temporal_split,
)
from shelfwise.errors import ConfigError, DataError


def frame_of(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    if "day" in frame.columns:
        frame["timestamp"] = (
            pd.Timestamp("2024-01-01") + pd.to_timedelta(frame["day"], "D")
        ).astype("datetime64[us]")
        frame = frame.drop(columns="day")
    return frame


def ids(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["event_id"])


def assert_partition(split: Split, frame: pd.DataFrame) -> None:
    parts = [split.train, split.validation, split.test]
    together = pd.concat(parts)["event_id"].tolist()
    assert sorted(together) == sorted(frame["event_id"])  # nothing lost, nothing twice
    for part in parts:
        assert list(part.columns) == list(frame.columns)
        assert part.index.equals(pd.RangeIndex(len(part)))


# -- leave_last_out ------------------------------------------------------------------------
LOO_ROWS = [
    # event, user, item, day, seq
    ("e0", "A", "i1", 1, 0),
    ("e1", "A", "i2", 3, 5),  # ties with e2 on time; seq 5 > 2 so e1 is A's last
    ("e2", "A", "i3", 3, 2),
    ("e3", "A", "i4", 2, 3),
    ("e4", "B", "i1", 1, 4),  # B has 2 rows: below min_interactions=3 -> all train
    ("e5", "B", "i2", 2, 1),
    ("e6", "C", "i1", 5, 6),
    ("e7", "C", "i2", 4, 7),
    ("e8", "C", "i3", 6, 8),
    ("e9", "D", "i3", 1, 9),
]
LOO_COLUMNS = ["event_id", "user_id", "item_id", "day", "seq"]


def test_leave_last_out_with_seq_tie_break():
    frame = frame_of(LOO_ROWS, LOO_COLUMNS)
    split = leave_last_out(frame)
    assert ids(split.test) == ["e1", "e8"]
    assert ids(split.validation) == ["e2", "e6"]
    assert ids(split.train) == ["e0", "e3", "e4", "e5", "e7", "e9"]
    assert_partition(split, frame)
    assert split.train["event_id"].tolist() == ["e0", "e3", "e4", "e5", "e7", "e9"]  # input order
    summary = split.summary()
    assert summary["method"] == "leave_last_out"
    assert summary["users_all_train"] == 2
    assert summary["test"] == {
        "rows": 2,
        "users": 2,
        "items": 2,
        "start": "2024-01-04T00:00:00",
        "end": "2024-01-07T00:00:00",
    }


def test_leave_last_out_without_seq_breaks_ties_by_row_order():
    frame = frame_of(LOO_ROWS, LOO_COLUMNS).drop(columns="seq")
    split = leave_last_out(frame)
    assert ids(split.test) == ["e2", "e8"]  # e2 comes after e1 in the frame
    assert ids(split.validation) == ["e1", "e6"]


def test_leave_last_out_options():
    frame = frame_of(LOO_ROWS, LOO_COLUMNS)
    split = leave_last_out(frame, min_interactions=2, validation=False)
    assert ids(split.test) == ["e1", "e5", "e8"]
    assert ids(split.validation) == []
    assert_partition(split, frame)
    split = leave_last_out(frame, min_interactions=1)
    assert ids(split.test) == ["e1", "e5", "e8", "e9"]
    assert ids(split.validation) == ["e2", "e4", "e6"]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError):
            leave_last_out(frame, min_interactions=bad)  # type: ignore[arg-type]


def test_leave_last_out_large_frame_is_fast_and_exact():
    rng = np.random.default_rng(3)
    n = 200_000
    frame = pd.DataFrame(
        {
            "event_id": np.arange(n).astype(str).astype(object),
            "user_id": rng.integers(0, 40_000, n).astype(str).astype(object),
            "item_id": rng.integers(0, 5_000, n).astype(str).astype(object),
            "timestamp": (
                pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), "s")
            ).astype("datetime64[us]"),
            "seq": rng.permutation(n),
        }
    )
    split = leave_last_out(frame)
    assert_partition(split, frame)
    ordered = frame.sort_values(["user_id", "timestamp", "seq"])
    sizes = ordered.groupby("user_id")["event_id"].transform("size")
    last = ordered.groupby("user_id").tail(1)
    assert set(split.test["event_id"]) == set(last.loc[sizes[last.index] >= 3, "event_id"])


def test_leave_last_out_needs_columns_and_users():
    with pytest.raises(DataError, match="timestamp"):
        leave_last_out(pd.DataFrame({"user_id": ["a"]}))
    frame = frame_of(LOO_ROWS, LOO_COLUMNS)
    frame.loc[0, "user_id"] = None
    with pytest.raises(DataError, match="no user_id"):
        leave_last_out(frame)


# -- temporal_split ------------------------------------------------------------------------
TEMPORAL_ROWS = [
    ("e0", "u1", "a", 0, 0),
    ("e1", "u2", "b", 1, 1),
    ("e2", "u1", "b", 2, 2),
    ("e3", "u3", "c", 3, 3),
    ("e4", "u2", "a", 4, 4),
    ("e5", "u1", "c", 5, 5),
    ("e6", "u2", "c", 6, 6),
    ("e7", "u4", "a", 7, 7),  # u4 is new here
    ("e8", "u1", "d", 8, 9),  # item d is new here; ties e9 on time, later by seq
    ("e9", "u3", "a", 8, 8),
]


@pytest.fixture
def temporal_frame() -> pd.DataFrame:
    frame = frame_of(TEMPORAL_ROWS, LOO_COLUMNS)
    return frame.sample(frac=1, random_state=0).reset_index(drop=True)  # order is not time


def test_temporal_by_ratio(temporal_frame):
    split = temporal_split(temporal_frame, test_ratio=0.2, filter_unseen=False)
    assert ids(split.train) == ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7"]
    assert ids(split.test) == ["e8", "e9"]
    assert_partition(split, temporal_frame)
    split = temporal_split(temporal_frame, test_ratio=0.2)
    assert ids(split.test) == ["e9"]  # e8's item d never appears in train
    assert split.summary()["dropped_cold"] == {"validation": 0, "test": 1}


def test_temporal_tie_at_the_boundary_is_broken_by_seq(temporal_frame):
    split = temporal_split(temporal_frame, test_ratio=0.1, filter_unseen=False)
    assert ids(split.test) == ["e8"]
    assert "e9" in ids(split.train)


def test_temporal_with_validation_ratio(temporal_frame):
    split = temporal_split(temporal_frame, test_ratio=0.2, validation_ratio=0.2)
    assert ids(split.train) == ["e0", "e1", "e2", "e3", "e4", "e5"]
    assert ids(split.validation) == ["e6"]  # e7: user u4 unseen in train
    assert ids(split.test) == ["e9"]  # e8: item d unseen
    assert split.summary()["dropped_cold"] == {"validation": 1, "test": 1}


@pytest.mark.parametrize(
    "cutoff",
    [
        "2024-01-07",
        datetime(2024, 1, 7),
        datetime(2024, 1, 7, 9, tzinfo=timezone(timedelta(hours=9))),
    ],
)
def test_temporal_with_cutoff(temporal_frame, cutoff):
    split = temporal_split(temporal_frame, cutoff=cutoff, filter_unseen=False)
    assert ids(split.train) == ["e0", "e1", "e2", "e3", "e4", "e5"]
    assert ids(split.test) == ["e6", "e7", "e8", "e9"]
    split = temporal_split(temporal_frame, cutoff=cutoff)
    assert ids(split.test) == ["e6", "e9"]
    summary = split.summary()
    assert summary["params"]["cutoff"] == "2024-01-07T00:00:00"
    assert summary["dropped_cold"] == {"validation": 0, "test": 2}


def test_temporal_with_validation_cutoff(temporal_frame):
    split = temporal_split(temporal_frame, cutoff="2024-01-07", validation_cutoff="2024-01-06")
    assert ids(split.train) == ["e0", "e1", "e2", "e3", "e4"]
    assert ids(split.validation) == ["e5"]
    assert ids(split.test) == ["e6", "e9"]


def test_temporal_invalid_arguments(temporal_frame):
    with pytest.raises(ConfigError, match="validation_cutoff"):
        temporal_split(temporal_frame, cutoff="2024-01-07", validation_ratio=0.1)
    with pytest.raises(ConfigError, match="needs cutoff"):
        temporal_split(temporal_frame, validation_cutoff="2024-01-07")
    with pytest.raises(ConfigError, match="after cutoff"):
        temporal_split(temporal_frame, cutoff="2024-01-05", validation_cutoff="2024-01-07")
    with pytest.raises(ConfigError, match="not a timestamp"):
        temporal_split(temporal_frame, cutoff="next tuesday")
    with pytest.raises(DataError, match="item_id"):
        temporal_split(temporal_frame.drop(columns="item_id"))


# -- random_holdout ------------------------------------------------------------------------
def per_user_frame(sizes: list[int]) -> pd.DataFrame:
    rows = [(f"u{n}-{k}", f"u{n}", f"i{k}", k) for n in sizes for k in range(n)]
    return pd.DataFrame(rows, columns=["event_id", "user_id", "item_id", "seq"])


# hand-computed: round-half-to-even(0.75 * n)
TRAIN_AT_075 = {
    1: 1,
    2: 2,
    3: 2,
    4: 3,
    5: 4,
    6: 4,
    7: 5,
    8: 6,
    9: 7,
    10: 8,
    11: 8,
    12: 9,
    13: 10,
    14: 10,
}


def test_random_holdout_counts_per_user():
    frame = per_user_frame(list(TRAIN_AT_075))
    split = random_holdout(frame, test_ratio=0.25)
    train = split.train["user_id"].value_counts()
    test = split.test["user_id"].value_counts()
    for n, expected in TRAIN_AT_075.items():
        assert train.get(f"u{n}", 0) == expected, n
        assert test.get(f"u{n}", 0) == n - expected, n
    assert split.validation.empty
    assert_partition(split, frame)


def test_random_holdout_counts_with_validation():
    # (train, validation, test) = (r(0.6 n), r(0.8 n) - r(0.6 n), n - r(0.8 n))
    expected = {
        1: (1, 0, 0),
        2: (1, 1, 0),
        3: (2, 0, 1),
        4: (2, 1, 1),
        5: (3, 1, 1),
        7: (4, 2, 1),
        10: (6, 2, 2),
    }
    frame = per_user_frame(list(expected))
    split = random_holdout(frame, test_ratio=0.2, validation_ratio=0.2, seed=5)
    for n, (tr, va, te) in expected.items():
        user = f"u{n}"
        got = tuple(
            (part["user_id"] == user).sum() for part in (split.train, split.validation, split.test)
        )
        assert got == (tr, va, te), n
    assert_partition(split, frame)


def test_random_holdout_min_interactions():
    frame = per_user_frame([2, 4, 8])
    split = random_holdout(frame, test_ratio=0.5, min_interactions=5)
    assert set(split.test["user_id"]) == {"u8"}
    assert (split.train["user_id"] == "u4").sum() == 4
    assert split.summary()["users_all_train"] == 2


def test_random_holdout_is_deterministic_and_seed_sensitive():
    frame = per_user_frame([10, 20, 30, 40])
    first = random_holdout(frame, seed=1)
    again = random_holdout(frame, seed=1)
    other = random_holdout(frame, seed=2)
    pd.testing.assert_frame_equal(first.train, again.train)
    pd.testing.assert_frame_equal(first.test, again.test)
    assert ids(first.test) != ids(other.test)
    assert len(first.test) == len(other.test)


def reference_stratified_train(frame: pd.DataFrame, ratio: float, seed: int) -> set[str]:
    """Recommenders' python_stratified_split (is_random=True), written out: one uniform key
    per row from the seeded legacy generator (np.random.seed(seed); np.random.rand(n) draws
    the same stream as RandomState(seed).rand(n)), rows sorted by (user, key), rank within
    the user 1..n, train where rank <= round(ratio * n) with pandas' round."""
    data = frame.copy()
    data["random"] = np.random.RandomState(seed).rand(len(data))
    data = data.sort_values(["user_id", "random"])
    groups = data.groupby("user_id")
    data["count"] = groups["user_id"].transform("count")
    data["rank"] = groups.cumcount() + 1
    return set(data.loc[data["rank"] <= round(ratio * data["count"]), "event_id"])


@pytest.mark.parametrize(("test_ratio", "seed"), [(0.25, 42), (0.25, 7), (0.2, 42), (0.3, 123)])
def test_random_holdout_matches_recommenders_stratified_split(test_ratio, seed):
    rng = np.random.default_rng(seed)
    n = 3_000
    frame = pd.DataFrame(
        {
            "event_id": [f"e{k}" for k in range(n)],
            "user_id": rng.integers(0, 150, n).astype(str).astype(object),
            "item_id": rng.integers(0, 400, n).astype(str).astype(object),
        }
    )
    split = random_holdout(frame, test_ratio=test_ratio, seed=seed)
    assert set(split.train["event_id"]) == reference_stratified_train(frame, 1 - test_ratio, seed)


@pytest.mark.parametrize(
    ("test_ratio", "validation_ratio"),
    [(-0.1, 0.0), (0.0, -0.1), (1.0, 0.0), (0.6, 0.4), (0.7, 0.5), (float("nan"), 0.0)],
)
def test_invalid_ratios(test_ratio, validation_ratio):
    frame = per_user_frame([4])
    with pytest.raises(ConfigError):
        random_holdout(frame, test_ratio=test_ratio, validation_ratio=validation_ratio)
    with pytest.raises(ConfigError):
        temporal_split(
            frame.assign(timestamp=pd.Timestamp("2024-01-01")),
            test_ratio=test_ratio,
            validation_ratio=validation_ratio,
        )


def test_split_summary_shape():
    frame = per_user_frame([4, 8])
    split = random_holdout(frame)
    summary = split.summary()
    assert summary["method"] == "random_holdout"
    assert summary["params"] == {
        "test_ratio": 0.25,
        "validation_ratio": 0.0,
        "seed": 42,
        "min_interactions": 1,
        "by": "user",
    }
    assert summary["train"]["rows"] == 9 and summary["train"]["users"] == 2
    assert summary["train"]["items"] == split.train["item_id"].nunique()
    assert summary["validation"] == {"rows": 0, "users": 0, "items": 0}
    assert summary["test"]["rows"] == 3


def test_sample_users_keeps_whole_histories_of_n_users() -> None:
    users_col = [f"u{u}" for u in range(10) for _ in range(u + 1)]
    items_col = [f"i{j}" for u in range(10) for j in range(u + 1)]
    frame = pd.DataFrame({"user_id": users_col, "item_id": items_col})
    sample = sample_users(frame, 4, seed=3)
    users = sorted(sample["user_id"].unique())
    assert len(users) == 4
    # every kept user keeps all u + 1 of their events
    assert sample.groupby("user_id").size().to_dict() == {u: int(u[1:]) + 1 for u in users}
    assert sample.equals(sample_users(frame, 4, seed=3))  # seeded
    assert sample_users(frame, 0) is frame and sample_users(frame, 99) is frame
    with pytest.raises(ConfigError, match="n must be >= 0"):
        sample_users(frame, -1)
    with pytest.raises(DataError, match="user_id"):
        sample_users(frame.drop(columns="user_id"), 2)


# -- validation carved from a training matrix ---------------------------------------------------
def test_carve_validation_eligibility_and_counts() -> None:
    dense = np.zeros((5, 20), dtype=np.float32)
    dense[0, :10] = 1  # 10 cells -> round(0.25 * 10) = 2 (half to even)
    dense[1, :2] = 1  # 2 cells: eligible at min 2 (1 held, 1 kept), not at min 3
    dense[2, 5] = 1  # 1 cell: never eligible
    dense[3, :20] = 2  # 20 cells -> 5
    dense[4, :3] = 1  # 3 cells -> round(0.75) = 1
    x = sp.csr_matrix(dense)
    for min_n, expected in ((2, [2, 1, 0, 5, 1]), (3, [2, 0, 0, 5, 1])):
        rest, held = carve_validation(x, 0.25, seed=3, min_interactions=min_n)
        assert np.diff(held.indptr).tolist() == expected
        assert (np.diff(rest.indptr) + np.diff(held.indptr)).tolist() == [10, 2, 1, 20, 3]
        # a partition: kept cells keep their values, held ones are binary
        np.testing.assert_array_equal((rest + held).toarray() > 0, dense > 0)
        assert rest.multiply(held).nnz == 0
        assert set(rest.data.tolist()) == {1.0, 2.0} and set(held.data.tolist()) == {1.0}
        assert rest.dtype == held.dtype == np.float32
        assert rest.has_sorted_indices and held.has_sorted_indices


def test_carve_validation_holds_at_least_one_and_never_all() -> None:
    x = sp.csr_matrix(np.ones((2, 4), dtype=np.float32))
    _, small = carve_validation(x, 0.05, seed=0, min_interactions=2)  # round(0.2) = 0 -> 1
    assert np.diff(small.indptr).tolist() == [1, 1]
    _, large = carve_validation(x, 0.95, seed=0, min_interactions=2)  # round(3.8) = 4 -> 3
    assert np.diff(large.indptr).tolist() == [3, 3]


def test_carve_validation_is_seeded() -> None:
    x = sp.random(50, 40, density=0.3, random_state=1, format="csr", dtype=np.float32)
    a_rest, a_held = carve_validation(x, 0.3, seed=7, min_interactions=2)
    b_rest, b_held = carve_validation(x, 0.3, seed=7, min_interactions=2)
    assert (a_rest != b_rest).nnz == 0 and (a_held != b_held).nnz == 0
    _, c_held = carve_validation(x, 0.3, seed=8, min_interactions=2)
    assert (a_held != c_held).nnz > 0
    # the draw is default_rng(seed).choice over each eligible user's cells, in row order
    rng = np.random.default_rng(7)
    first = next(u for u in range(50) if x.indptr[u + 1] - x.indptr[u] >= 2)
    n = int(x.indptr[first + 1] - x.indptr[first])
    picked = x.indices[
        x.indptr[first] + rng.choice(n, size=min(n - 1, max(1, round(0.3 * n))), replace=False)
    ]
    assert sorted(a_held[first].indices.tolist()) == sorted(picked.tolist())


@pytest.mark.parametrize(
    ("fraction", "min_n", "pattern"),
    [
        (0.0, 2, r"fraction must be in \(0, 1\)"),
        (1.0, 2, r"fraction must be in \(0, 1\)"),
        ("a", 2, "fraction must be a number"),
        (0.2, 1, "min_interactions must be >= 2"),
        (0.2, 0, "min_interactions must be >= 1"),
    ],
)
def test_carve_validation_rejects_bad_parameters(
    fraction: object, min_n: int, pattern: str
) -> None:
    x = sp.csr_matrix(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ConfigError, match=pattern):
        carve_validation(x, fraction, seed=0, min_interactions=min_n)  # type: ignore[arg-type]
