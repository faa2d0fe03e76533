"""Models are chosen by capability and the configuration's role names, never by name."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.errors import ConfigError
from shelfwise.recommenders import ItemKNN, Popularity, Tfidf, Trending
from shelfwise.recommenders.capabilities import (
    ContentVectors,
    FitsFromEvents,
    PopularityCounts,
    TrendScores,
    personalises,
)
from shelfwise.serving import AlignedModel, EngineConfig, ModelRoles

from .conftest import K1, K2, Shop, fitted_models


def test_capabilities_of_the_models() -> None:
    models = fitted_models()
    assert [n for n, m in models.items() if isinstance(m, FitsFromEvents)] == ["trending"]
    assert [n for n, m in models.items() if isinstance(m, ContentVectors)] == ["tfidf"]
    assert [n for n, m in models.items() if isinstance(m, PopularityCounts)] == ["popularity"]
    assert [n for n, m in models.items() if isinstance(m, TrendScores)] == ["trending"]
    assert [n for n, m in models.items() if not personalises(m)] == ["popularity"]
    assert not AlignedModel(models["popularity"]).personalised
    assert AlignedModel(models["itemknn"]).personalised


def test_roles_are_found_by_capability_whatever_the_keys() -> None:
    models = fitted_models()
    renamed = {
        "counts": models["popularity"],
        "neighbours": models["itemknn"],
        "decay": models["trending"],
        "text": models["tfidf"],
    }
    roles = ModelRoles(renamed, EngineConfig(similarity_model="neighbours"))
    assert roles.content is renamed["text"]
    assert roles.popularity_model is renamed["counts"]
    assert roles.trending_model is renamed["decay"]
    assert roles.similarity is renamed["neighbours"]
    assert roles.popularity().tolist() == [3, 2, 1, 1, 1]
    assert roles.collaborative(np.array([K1]))[K2] == pytest.approx(1.0)


def test_named_roles_win_and_absent_ones_are_empty(shop: Shop) -> None:
    second = Tfidf(attributes=False).fit(np.eye(5, dtype=np.float32), shop.catalog.frame)
    models = {**shop.models, "titles": second}
    assert ModelRoles(models, EngineConfig()).content is shop.models["tfidf"]  # the first
    assert ModelRoles(models, EngineConfig(content_model="titles")).content is second
    roles = ModelRoles(shop.models, EngineConfig(similarity_model="ease", trending_model="x"))
    assert roles.similarity is None and roles.collaborative(np.array([K1])).size == 0
    assert roles.trending_model is None
    assert roles.trend().tolist() == [3, 2, 1, 1, 1]  # no trend: popularity
    none = ModelRoles(shop.models, EngineConfig(similarity_model=None))
    assert none.similarity is None


@pytest.mark.parametrize(
    ("field", "name", "missing"),
    [
        ("content_model", "itemknn", "content vectors"),
        ("similarity_model", "popularity", "item similarity"),
        ("popularity_model", "trending", "popularity counts"),
        ("trending_model", "popularity", "trend scores"),
    ],
)
def test_a_role_given_to_an_incapable_model_is_refused(
    shop: Shop, field: str, name: str, missing: str
) -> None:
    with pytest.raises(
        ConfigError, match=f"engine.{field}: bundle model '{name}' has no {missing}"
    ):
        ModelRoles(shop.models, EngineConfig(**{field: name}))


def test_the_model_by_name_names_the_choices(shop: Shop) -> None:
    roles = shop.roles
    assert roles.model("itemknn") is shop.models["itemknn"]
    with pytest.raises(ConfigError, match=r"'sasrec' is not in the active bundle.*itemknn"):
        roles.model("sasrec")


def test_unfitted_classes_keep_their_flags() -> None:
    assert Popularity.personalised is False
    assert ItemKNN.personalised and Trending.personalised and Tfidf.personalised
