"""Contract suites a plugin author can run on their own recommender, store or retriever.

Needs pytest, which is a dev dependency of shelfwise, not a runtime one: every suite is a
pytest test class to subclass (as lkpy's `ScorerTests` and scikit-learn's estimator checks
are). Nothing in shelfwise imports this package, so `import shelfwise` works without pytest.

* `RecommenderContract` (`shelfwise.testing.recommender`): provide a `model_name` fixture
  for a registered model (`registered(MyModel)` registers one for the duration of a test
  session), optionally `model_params` and `model_traits`.
* `StoreContract` (`shelfwise.testing.store`): provide a `store_url` fixture giving the URL
  of a fresh, empty store location per test.
* `RetrieverContract` (`shelfwise.testing.retriever`): provide a `retriever_factory` fixture
  that indexes a corpus frame (`CORPUS`, row i = item row i) and returns the retriever,
  optionally `retriever_traits`.

Then run pytest on the test module; every contract test names what it checks.
"""

from __future__ import annotations

from shelfwise._lazy import lazy_exports

try:
    import pytest  # noqa: F401  (imported first for a clear error when it is missing)
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "shelfwise.testing needs pytest: pip install 'shelfwise[dev]' (or pytest itself)"
    ) from exc

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shelfwise.testing.recommender import (
        CATALOG,
        CHECKERBOARD,
        FAST_PARAMS,
        TRAITS,
        FakeTrial,
        RecommenderContract,
        Traits,
        registered,
    )
    from shelfwise.testing.retriever import CORPUS, RetrieverContract, RetrieverTraits
    from shelfwise.testing.store import StoreContract

# Loaded on first use, so the store contract does not import the recommenders (and torch)
_HOMES = {
    "CATALOG": "recommender",
    "CHECKERBOARD": "recommender",
    "FAST_PARAMS": "recommender",
    "TRAITS": "recommender",
    "FakeTrial": "recommender",
    "RecommenderContract": "recommender",
    "Traits": "recommender",
    "registered": "recommender",
    "CORPUS": "retriever",
    "RetrieverContract": "retriever",
    "RetrieverTraits": "retriever",
    "StoreContract": "store",
}

__all__ = [
    "CATALOG",
    "CHECKERBOARD",
    "CORPUS",
    "FAST_PARAMS",
    "TRAITS",
    "FakeTrial",
    "RecommenderContract",
    "RetrieverContract",
    "RetrieverTraits",
    "StoreContract",
    "Traits",
    "registered",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
