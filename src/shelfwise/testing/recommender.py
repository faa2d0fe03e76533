"""The contract every recommender must meet, run on a known-answer data set.

Needs pytest (a dev dependency, not a runtime one): the contract is a pytest test class,
as lkpy's `ScorerTests` and scikit-learn's `check_estimator` suites are.

The data: a checkerboard of two taste groups. Users 0-19 interacted only with items 0-9
(group 0), users 20-39 only with items 10-19 (group 1), each with 7 of their group's 10
items. The catalog separates the groups as well (kitchen knives vs headphones), so
content-based models can pass the same assertions as collaborative ones.

How to run it on your own model (a plugin author's path)::

    import pytest
    from shelfwise.testing import RecommenderContract, Traits, registered

    @pytest.fixture(scope="module", autouse=True)
    def _my_model_registered():
        with registered(MyModel):  # under MyModel.name, removed again afterwards
            yield

    class TestMyModel(RecommenderContract):
        @pytest.fixture()
        def model_name(self) -> str:
            return MyModel.name

        @pytest.fixture()  # optional: small, fast parameters for the contract data
        def model_params(self) -> dict:
            return {"factors": 2}

        @pytest.fixture()  # optional: relax what does not apply to the model
        def model_traits(self) -> Traits:
            return Traits(similar_items=False)

Models are built with `create(model_name, **model_params)` and fitted with
`fit(CHECKERBOARD, CATALOG)`. The defaults of `model_params` and `model_traits` come from
`FAST_PARAMS[name]` and `TRAITS[name]`, which cover the models shipped with shelfwise
(tests/recommenders/test_contract.py parametrises `model_name` over `available()`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.data.frames import conform
from shelfwise.errors import ConfigError, NotFittedError
from shelfwise.recommenders import Recommender, create, load_model, register
from shelfwise.recommenders.base import unregister

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


def build(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """An unfitted model: `params`, else its fast contract configuration."""
    return create(name, **(FAST_PARAMS.get(name, {}) if params is None else dict(params)))


def fitted(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """A model fitted on the contract data."""
    model = build(name, params)
    return model.fit(CHECKERBOARD, CATALOG)


_SHARED: dict[tuple[type[Recommender], str], Recommender] = {}


def shared_fitted(name: str, params: Mapping[str, Any] | None = None) -> Recommender:
    """One fitted model per class and parameters for the read-only tests (fitting some
    models takes seconds); keyed by class too, since a plugin's test may register another
    class under a name used before."""
    model = build(name, params)
    key = (type(model), json.dumps(model.config.model_dump(mode="json"), sort_keys=True))
    if key not in _SHARED:
        _SHARED[key] = model.fit(CHECKERBOARD, CATALOG)
    return _SHARED[key]


@contextmanager
def registered(cls: type[Recommender]) -> Iterator[type[Recommender]]:
    """Register `cls` under `cls.name` for the duration of the block, then restore what
    was registered under that name before (nothing, or the shipped model).

    `create` and `load_model` (which the contract calls) find models by name, so a
    plugin's class must be registered while its contract runs; restoring afterwards keeps
    a test-only name out of `available()` for the rest of the session.
    """
    previous = unregister(cls.name)
    register(cls)
    try:
        yield cls
    finally:
        unregister(cls.name)
        if previous is not None:
            register(previous)


class RecommenderContract:
    """Tests every recommender must pass; subclasses provide the `model_name` fixture and
    may override `model_params` and `model_traits` (see the module docstring)."""

    @pytest.fixture()
    def model_params(self, model_name: str) -> dict[str, Any]:
        """Parameters for `create(model_name, ...)`: `FAST_PARAMS[model_name]` or none."""
        return dict(FAST_PARAMS.get(model_name, {}))

    @pytest.fixture()
    def model_traits(self, model_name: str) -> Traits:
        """What the model can do: `TRAITS[model_name]`, else personalised with similar items."""
        return TRAITS.get(model_name, Traits())

    @pytest.fixture()
    def model(self, model_name: str, model_params: dict[str, Any]) -> Recommender:
        """The shared fitted model; tests using it must not change it."""
        return shared_fitted(model_name, model_params)

    def test_fit_returns_self_and_sets_n_items(
        self, model_name: str, model_params: dict[str, Any]
    ) -> None:
        """Unfitted models refuse to recommend; `fit` returns the model and sets n_items."""
        model = build(model_name, model_params)
        assert not model.is_fitted
        with pytest.raises(NotFittedError):
            model.recommend([0])
        assert model.fit(CHECKERBOARD, CATALOG) is model
        assert model.is_fitted and model.n_items == N_ITEMS

    def test_score_shape_and_finite(self, model: Recommender) -> None:
        """`score` gives one finite row of n_items scores per history row."""
        scores = model.score(CHECKERBOARD[:5])
        assert scores.shape == (5, N_ITEMS)
        assert np.isfinite(scores).all()

    @pytest.mark.parametrize("group", [0, 1])
    def test_history_gets_its_own_group(
        self, model: Recommender, model_traits: Traits, model_name: str, group: int
    ) -> None:
        """A history inside one taste group gets that group's unseen items."""
        if not model_traits.personalised:
            pytest.skip(f"{model_name} is not personalised")
        history = [group * GROUP_ITEMS + i for i in (0, 1, 2)]
        res = model.recommend(history, k=5)
        assert len(res) == 5
        assert all(group_of(int(i)) == group for i in res.ids), res.ids
        assert not set(res.ids.tolist()) & set(history)

    def test_exclude_seen(self, model: Recommender) -> None:
        """Seen items are left out by default and ranked with the rest when asked."""
        history = [0, 1, 2, 10]
        seen = model.recommend(history, k=N_ITEMS, exclude_seen=True)
        assert not set(seen.ids.tolist()) & set(history)
        assert len(seen) == N_ITEMS - len(history)
        everything = model.recommend(history, k=N_ITEMS, exclude_seen=False)
        assert sorted(everything.ids.tolist()) == list(range(N_ITEMS))
        assert np.all(np.diff(everything.scores) <= 0)

    def test_candidates_restrict(self, model: Recommender) -> None:
        """`candidates` restricts the answer to them (minus seen items)."""
        candidates = [3, 7, 12, 15]
        res = model.recommend([0, 1], k=10, candidates=candidates)
        assert sorted(res.ids.tolist()) == candidates
        res = model.recommend([0, 1], k=10, candidates=[1, 3], exclude_seen=True)
        assert res.ids.tolist() == [3]

    def test_exclude_list(self, model: Recommender) -> None:
        """`exclude` removes items on top of the seen ones."""
        res = model.recommend([0], k=N_ITEMS, exclude=[5, 6])
        assert not {0, 5, 6} & set(res.ids.tolist())

    @pytest.mark.parametrize("with_users", [False, True])
    def test_batch_equals_single(self, model: Recommender, with_users: bool) -> None:
        """`recommend_batch` answers each row as `recommend` answers it alone."""
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
        """A batch is (rows x min(k, n_items)); slots beyond the unseen items hold -1."""
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
        """An empty history or an unknown user (-1) is answered, not an error."""
        res = model.recommend([], k=5)
        assert len(res) in (0, 5)
        assert np.isfinite(res.scores).all()
        res = model.recommend([], k=5, user=-1)
        assert len(res) in (0, 5)
        batch = model.recommend_batch(
            sp.csr_matrix((2, N_ITEMS), dtype=np.float32), k=5, users=np.array([-1, -1])
        )
        assert batch.ids.shape == (2, 5)

    def test_similar_items(self, model: Recommender, model_traits: Traits, model_name: str) -> None:
        """Similar items come from the item's own group (or NotImplementedError)."""
        if not model_traits.similar_items:
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
        """`load_model` restores a saved model that scores exactly as the original."""
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

    def test_bad_config(self, model_name: str, model_params: dict[str, Any]) -> None:
        """Unknown parameters are a ConfigError, by name and beside a config object."""
        with pytest.raises(ConfigError):
            create(model_name, no_such_parameter=1)
        cls = type(build(model_name, model_params))
        with pytest.raises(ConfigError):
            cls(cls.Config(**model_params), no_such_parameter=1)

    def test_config_is_frozen(self, model: Recommender) -> None:
        """The config cannot be changed after construction."""
        fields = list(type(model.config).model_fields)
        if not fields:
            pytest.skip("the config has no fields")
        with pytest.raises(ValueError):  # pydantic's ValidationError (frozen instance)
            setattr(model.config, fields[0], getattr(model.config, fields[0]))

    def test_deterministic(self, model_name: str, model_params: dict[str, Any]) -> None:
        """Two fits with the same configuration score identically."""
        a = fitted(model_name, model_params)
        b = fitted(model_name, model_params)
        histories = CHECKERBOARD[::3]
        users = np.arange(0, N_USERS, 3)
        np.testing.assert_array_equal(a.score(histories), b.score(histories))
        np.testing.assert_array_equal(a.score(histories, users), b.score(histories, users))

    def test_does_not_modify_input(self, model_name: str, model_params: dict[str, Any]) -> None:
        """`fit` leaves the interaction matrix it was given unchanged."""
        x = CHECKERBOARD.copy()
        build(model_name, model_params).fit(x, CATALOG)
        assert (x != CHECKERBOARD).nnz == 0

    def test_search_space_gives_a_valid_config(
        self, model_name: str, model_params: dict[str, Any]
    ) -> None:
        """`Config.search_space(trial)`, when present, gives a config the model accepts."""
        cls = type(build(model_name, model_params))
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
