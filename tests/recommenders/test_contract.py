"""Run the recommender contract (`shelfwise.testing.RecommenderContract`) over every
registered model."""

from __future__ import annotations

import pytest

from shelfwise.recommenders import available
from shelfwise.testing import RecommenderContract


@pytest.fixture(params=available())
def model_name(request: pytest.FixtureRequest) -> str:
    """Each registered model name, so models added later are covered automatically."""
    return str(request.param)


class TestRecommenderContract(RecommenderContract):
    """The contract, once per registered model."""
