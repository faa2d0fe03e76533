"""The contract every registered recommender must meet, run on a known-answer data set.

The data: a checkerboard of two taste groups. Users 0-19 interacted only with items 0-9
(group 0), users 20-39 only with items 10-19 (group 1), each with 7 of their group's 10
items. The catalog separates the groups as well (kitchen knives vs headphones), so
content-based models can pass the same assertions as collaborative ones.

`RecommenderContract` holds the tests; a test module subclasses it and provides a
`model_name` fixture (see test_contract.py, which parametrises it over `available()`).
Models are built with `FAST_PARAMS[name]` (defaults when absent) and fitted with
`fit(CHECKERBOARD, CATALOG)`; `TRAITS[name]` relaxes the assertions that do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.data.frames import conform
from shelfwise.errors import ConfigError, NotFittedError
from shelfwise.recommenders import Recommender, create, load_model

N_USERS, N_ITEMS, GROUP_ITEMS, GROUP_USERS = 40, 20, 10, 20

# Small, fast configurations for the contract data; models not listed use their defaults.
# Factor models get 2 factors, one per taste group: with more, they also model the cyclic
# pattern of skipped items inside a group, and a 3-item history can then rank an item of
# the other group above a distant item of its own.
FAST_PARAMS: dict[str, dict[str, Any]] = {
    "itemknn": {"neighbors": 10, "shrink": 1.0},
    "userknn": {"neighbors": 10, "shrink": 1.0},
    "als": {"factors": 2, "regularization": 0.1, "alpha": 5.0, "iterations": 10, "seed": 7},
    "bpr": {"factors": 2, "learning_rate": 0.05, "iterations": 100, "seed": 7},
    "bprmf": {
        "factors": 2,
        "lr": 0.05,
        "epochs": 100,
        "batch_size": 0,
        "reg": 1e-4,
        "val_fraction": 0.0,
        "seed": 7,
        "threads": 1,
    },
    "svd": {"factors": 2},
    "ease": {"l2": 10.0},
    # sequential models: the contract matrix has no order, so they learn item index order;
    # BCE with sampled negatives pushes the other group down where CE only saturates
    "sasrec": {
        "hidden": 16,
        "blocks": 1,
        "dropout": 0.5,
        "max_len": 10,
        "epochs": 60,
        "batch_size": 8,
        "lr": 0.005,
        "loss": "bce",
        "val_fraction": 0.0,
        "threads": 1,
    },
    "gru4rec": {
        "hidden": 16,
        "embedding": 16,
        "dropout_embed": 0.2,
        "max_len": 10,
        "epochs": 60,
        "batch_size": 8,
        "lr": 0.005,
        "loss": "bce",
        "val_fraction": 0.0,
        "threads": 1,
    },
    "caser": {
        "dim": 8,
        "window": 3,
        "targets": 2,
        "n_vertical": 2,
        "n_horizontal": 4,
        "dropout": 0.2,
        "user_embedding": False,
        "epochs": 40,
        "batch_size": 16,
        "lr": 0.005,
        "loss": "bce",
        "val_fraction": 0.0,
        "threads": 1,
    },
    "trending": {"by_category": True, "half_life_days": 7.0},
    "lsa": {"n_components": 2},
    "lda": {"n_topics": 2},
}


@dataclass(frozen=True)
class Traits:
    """What a model can do: `personalised` (a history changes the ranking, so group-g
    histories get group-g items), `similar_items` (else it raises NotImplementedError)."""

    personalised: bool = True
    similar_items: bool = True


TRAITS: dict[str, Traits] = {
    "popularity": Traits(personalised=False, similar_items=False),
    # personalised through by_category (set in FAST_PARAMS): the groups are categories
    "trending": Traits(similar_items=False),
    "gru4rec": Traits(similar_items=False),
}


def checkerboard() -> sp.csr_matrix:
    """40 users x 20 items; user u of group g has 7 of group g's items, none of the other."""
    rows, cols = [], []
    for user in range(N_USERS):
        group, local = divmod(user, GROUP_USERS)
        skipped = {(local + j) % GROUP_ITEMS for j in range(3)}
        for item in range(GROUP_ITEMS):
            if item not in skipped:
                rows.append(user)
                cols.append(group * GROUP_ITEMS + item)
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(N_USERS, N_ITEMS), dtype=np.float32)


def catalog() -> pd.DataFrame:
    """One catalog row per matrix column (canonical item layout); text separates the groups."""
    kitchen = ["chef knife", "paring knife", "bread knife", "santoku knife", "boning knife"]
    audio = ["wireless headphones", "over-ear headphones", "earbuds", "studio headphones"]
    rows = []
    for item in range(N_ITEMS):
        if item < GROUP_ITEMS:
            noun = kitchen[item % len(kitchen)]
            title = f"steel {noun} {item}"
            description = "forged stainless steel kitchen blade for cooking and chopping"
            category, brand = "Home > Kitchen > Knives", "Edgeworks"
        else:
            noun = audio[item % len(audio)]
            title = f"wireless {noun} {item}"
            description = "bluetooth audio headphones with noise cancelling and bass"
            category, brand = "Electronics > Audio", "Soundwave"
        rows.append(
            {
                "item_id": f"item-{item}",
                "title": title,
                "description": description,
                "category": category,
                "brand": brand,
                "price": 20.0 + item,
                "currency": "EUR",
                "in_stock": True,
                "attributes": "{}",
                "created_at": pd.Timestamp("2024-01-01"),
            }
        )
    return conform("items", pd.DataFrame(rows))


CHECKERBOARD = checkerboard()
CATALOG = catalog()


def group_of(item: int) -> int:
    """The taste group of an item."""
    return item // GROUP_ITEMS


def build(name: str) -> Recommender:
    """An unfitted model with its fast contract configuration."""
    return create(name, **FAST_PARAMS.get(name, {}))


def fitted(name: str) -> Recommender:
    """A model fitted on the contract data."""
    model = build(name)
    return model.fit(CHECKERBOARD, CATALOG)


_SHARED: dict[str, Recommender] = {}


def shared_fitted(name: str) -> Recommender:
    """One fitted model per name for the read-only tests (fitting some models takes seconds)."""
    if name not in _SHARED:
        _SHARED[name] = fitted(name)
    return _SHARED[name]


def traits(name: str) -> Traits:
    """The model's traits (defaults: personalised, with similar items)."""
    return TRAITS.get(name, Traits())


class RecommenderContract:
    """Tests every recommender must pass; subclasses provide the `model_name` fixture."""

    @pytest.fixture()
    def model(self, model_name: str) -> Recommender:
        """The shared fitted model; tests using it must not change it."""
        return shared_fitted(model_name)

    def test_fit_returns_self_and_sets_n_items(self, model_name: str) -> None:
        model = build(model_name)
        assert not model.is_fitted
        with pytest.raises(NotFittedError):
            model.recommend([0])
        assert model.fit(CHECKERBOARD, CATALOG) is model
        assert model.is_fitted and model.n_items == N_ITEMS

    def test_score_shape_and_finite(self, model: Recommender) -> None:
        scores = model.score(CHECKERBOARD[:5])
        assert scores.shape == (5, N_ITEMS)
        assert np.isfinite(scores).all()

    @pytest.mark.parametrize("group", [0, 1])
    def test_history_gets_its_own_group(
        self, model: Recommender, model_name: str, group: int
    ) -> None:
        if not traits(model_name).personalised:
            pytest.skip(f"{model_name} is not personalised")
        history = [group * GROUP_ITEMS + i for i in (0, 1, 2)]
        res = model.recommend(history, k=5)
        assert len(res) == 5
        assert all(group_of(int(i)) == group for i in res.ids), res.ids
        assert not set(res.ids.tolist()) & set(history)

    def test_exclude_seen(self, model: Recommender) -> None:
        history = [0, 1, 2, 10]
        seen = model.recommend(history, k=N_ITEMS, exclude_seen=True)
        assert not set(seen.ids.tolist()) & set(history)
        assert len(seen) == N_ITEMS - len(history)
        everything = model.recommend(history, k=N_ITEMS, exclude_seen=False)
        assert sorted(everything.ids.tolist()) == list(range(N_ITEMS))
        assert np.all(np.diff(everything.scores) <= 0)

    def test_candidates_restrict(self, model: Recommender) -> None:
        candidates = [3, 7, 12, 15]
        res = model.recommend([0, 1], k=10, candidates=candidates)
        assert sorted(res.ids.tolist()) == candidates
        res = model.recommend([0, 1], k=10, candidates=[1, 3], exclude_seen=True)
        assert res.ids.tolist() == [3]

    def test_exclude_list(self, model: Recommender) -> None:
        res = model.recommend([0], k=N_ITEMS, exclude=[5, 6])
        assert not {0, 5, 6} & set(res.ids.tolist())

    @pytest.mark.parametrize("with_users", [False, True])
    def test_batch_equals_single(self, model: Recommender, with_users: bool) -> None:
        rows = np.array([0, 5, 19, 20, 33, 39])
        histories = CHECKERBOARD[rows]
        users = rows if with_users else None
        batch = model.recommend_batch(histories, k=5, users=users)
        assert batch.ids.shape == batch.scores.shape == (len(rows), 5)
        for r, row in enumerate(rows):
            history = histories[r].indices
            single = model.recommend(
                history, k=5, weights=histories[r].data, user=int(row) if with_users else None
            )
            np.testing.assert_allclose(batch.scores[r], single.scores, rtol=1e-5, atol=1e-6)
            # ids agree wherever the score is not (nearly: BLAS rounding differs between a
            # batch and one row) tied with another listed score
            unique = np.array(
                [
                    np.isclose(single.scores, s, rtol=1e-4, atol=1e-6).sum() == 1
                    for s in single.scores
                ]
            )
            assert batch.ids[r][unique].tolist() == single.ids[unique].tolist()

    def test_batch_shape_and_padding(self, model: Recommender) -> None:
        histories = CHECKERBOARD[[0, 25]]
        res = model.recommend_batch(histories, k=N_ITEMS + 5)
        assert res.ids.shape == (2, N_ITEMS)
        for r in range(2):
            seen = set(histories[r].indices.tolist())
            listed = [int(i) for i in res.ids[r] if i >= 0]
            assert int((res.ids[r] == -1).sum()) == len(seen)
            assert len(listed) == len(set(listed)) == N_ITEMS - len(seen)
            assert not seen & set(listed)
            assert np.all(res.ids[r][len(listed) :] == -1)
        empty = model.recommend_batch(sp.csr_matrix((0, N_ITEMS), dtype=np.float32), k=3)
        assert empty.ids.shape == (0, 3)

    def test_unknown_user_empty_history(self, model: Recommender) -> None:
        res = model.recommend([], k=5)
        assert len(res) in (0, 5)
        assert np.isfinite(res.scores).all()
        res = model.recommend([], k=5, user=-1)
        assert len(res) in (0, 5)
        batch = model.recommend_batch(
            sp.csr_matrix((2, N_ITEMS), dtype=np.float32), k=5, users=np.array([-1, -1])
        )
        assert batch.ids.shape == (2, 5)

    def test_similar_items(self, model: Recommender, model_name: str) -> None:
        if not traits(model_name).similar_items:
            with pytest.raises(NotImplementedError):
                model.similar_items(0, k=5)
            return
        for item in (0, 14):
            res = model.similar_items(item, k=5)
            assert len(res) == 5 and item not in res.ids.tolist()
            assert all(group_of(int(i)) == group_of(item) for i in res.ids), res.ids
        with pytest.raises(ValueError):
            model.similar_items(N_ITEMS)

    def test_save_load_roundtrip(self, model: Recommender, tmp_path: Path) -> None:
        model.save(tmp_path / "model")
        loaded = load_model(tmp_path / "model")
        assert type(loaded) is type(model) and loaded.config == model.config
        assert loaded.n_items == model.n_items
        histories = CHECKERBOARD[[0, 1, 30]]
        np.testing.assert_array_equal(loaded.score(histories), model.score(histories))
        users = np.array([0, -1, 30])
        np.testing.assert_array_equal(loaded.score(histories, users), model.score(histories, users))
        assert (
            loaded.recommend([0, 1], k=5).ids.tolist() == model.recommend([0, 1], k=5).ids.tolist()
        )

    def test_bad_config(self, model_name: str) -> None:
        with pytest.raises(ConfigError):
            create(model_name, no_such_parameter=1)
        cls = type(build(model_name))
        with pytest.raises(ConfigError):
            cls(cls.Config(**FAST_PARAMS.get(model_name, {})), no_such_parameter=1)

    def test_config_is_frozen(self, model: Recommender) -> None:
        fields = list(type(model.config).model_fields)
        if not fields:
            pytest.skip("the config has no fields")
        with pytest.raises(ValueError):  # pydantic's ValidationError (frozen instance)
            setattr(model.config, fields[0], getattr(model.config, fields[0]))

    def test_deterministic(self, model_name: str) -> None:
        a = fitted(model_name)
        b = fitted(model_name)
        histories = CHECKERBOARD[::3]
        users = np.arange(0, N_USERS, 3)
        np.testing.assert_array_equal(a.score(histories), b.score(histories))
        np.testing.assert_array_equal(a.score(histories, users), b.score(histories, users))

    def test_does_not_modify_input(self, model_name: str) -> None:
        x = CHECKERBOARD.copy()
        build(model_name).fit(x, CATALOG)
        assert (x != CHECKERBOARD).nnz == 0

    def test_search_space_gives_a_valid_config(self, model_name: str) -> None:
        cls = type(build(model_name))
        search_space = getattr(cls.Config, "search_space", None)
        if search_space is None:
            pytest.skip(f"{model_name} has no search space")
        config = search_space(FakeTrial())
        assert isinstance(config, cls.Config)
        assert cls(config).config == config


class FakeTrial:
    """The part of Optuna's trial API a search space uses, answering the low end (ints and
    floats) and the last choice (categoricals) so every branch is reachable."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def suggest_int(self, name: str, low: int, high: int, step: int = 1, log: bool = False) -> int:
        assert low <= high
        self.params[name] = low
        return low

    def suggest_float(
        self, name: str, low: float, high: float, step: float | None = None, log: bool = False
    ) -> float:
        assert low <= high and (not log or low > 0)
        self.params[name] = low
        return low

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.params[name] = choices[-1]
        return choices[-1]
