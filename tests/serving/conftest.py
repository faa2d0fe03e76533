"""A tiny hand-made shop for the serving unit tests: five items, four users, real models.

Matrix (users x items, binary): u0 = K1 K2, u1 = K1 K2 B1, u2 = H1 H2, u3 = K1, so
popularity (users per item) is K1 3, K2 2, B1 1, H1 1, H2 1, and the item-kNN cosines
(shrink 0) are K1~K2 2/sqrt(6), K1~B1 1/sqrt(3), K2~B1 1/sqrt(2), H1~H2 1; no kitchen item
is similar to an audio item. Titles share words only within a group ("knife",
"headphones"), so the TF-IDF content neighbours follow the same groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shelfwise.recommenders import ItemKNN, Popularity, Recommender, Tfidf, Trending
from shelfwise.serving import Catalog, EngineConfig, ModelRoles

ITEMS = pd.DataFrame(
    {
        "item_id": ["K1", "K2", "B1", "H1", "H2"],
        "title": [
            "Chef Knife",
            "Bread Knife",
            "Cutting Board",
            "Wireless Headphones",
            "Headphones Stand",
        ],
        "category": [
            "Home > Kitchen > Knives",
            "Home > Kitchen > Knives",
            "Home > Kitchen > Boards",
            "Electronics > Audio",
            "Electronics > Audio",
        ],
        "brand": ["Acme", "Acme", None, "Sonix", None],
        "price": [40.0, 25.0, 18.0, 99.0, 15.0],
        "in_stock": [True, True, True, True, True],
    }
)
K1, K2, B1, H1, H2 = range(5)
MATRIX = sp.csr_matrix(
    np.array(
        [
            [1, 1, 0, 0, 0],
            [1, 1, 1, 0, 0],
            [0, 0, 0, 1, 1],
            [1, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
)
# trend per item, deliberately unlike popularity: H2 trends most, then H1, then K1
TREND = sp.csr_matrix(np.array([[0.5, 0.0, 0.0, 1.0, 3.0]], dtype=np.float32))


@dataclass
class Shop:
    """The tiny shop's catalogue snapshot, fitted models and their roles."""

    catalog: Catalog
    models: dict[str, Recommender]
    roles: ModelRoles


def fitted_models() -> dict[str, Recommender]:
    """Popularity, item-kNN (no shrink), trending and TF-IDF fitted on the tiny shop."""
    return {
        "popularity": Popularity().fit(MATRIX),
        "itemknn": ItemKNN(neighbors=10, shrink=0.0).fit(MATRIX),
        "trending": Trending().fit(TREND),
        "tfidf": Tfidf().fit(MATRIX, ITEMS),
    }


@pytest.fixture()
def shop() -> Shop:
    """A fresh shop (its models are mutable: content models grow with new items)."""
    models = fitted_models()
    return Shop(Catalog.build(ITEMS), models, ModelRoles(models, EngineConfig()))


def events(*rows: tuple[str, str, str | None, int]) -> pd.DataFrame:
    """A user's events as the replica gives them (newest first): (item, type, session,
    minutes after 08:00) each, in the order given."""
    base = np.datetime64("2026-05-01T08:00:00", "us")
    return pd.DataFrame(
        {
            "item_id": np.array([r[0] for r in rows], dtype=object),
            "type": np.array([r[1] for r in rows], dtype=object),
            "value": np.ones(len(rows)),
            "timestamp": np.array(
                [base + np.timedelta64(r[3], "m") for r in rows], dtype="datetime64[us]"
            ),
            "session_id": np.array([r[2] for r in rows], dtype=object),
            "seq": np.arange(len(rows), 0, -1, dtype=np.int64),
        }
    )
