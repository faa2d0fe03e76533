"""Each fallback step on the tiny shop (see conftest for its known answers), and the walk."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.vocab import Vocabulary
from shelfwise.recommenders import Popularity
from shelfwise.serving import (
    AlignedModel,
    BoughtTogether,
    CategoryTrending,
    CollaborativeSimilar,
    ContentSimilar,
    EngineConfig,
    ModelRoles,
    Personalised,
    Picker,
    Popular,
    RecContext,
    Session,
    StepContext,
    build_chain,
    copurchase_counts,
    walk,
)

from .conftest import B1, H1, H2, ITEMS, K1, K2, Shop, events

SQRT_HALF = 1 / np.sqrt(2)  # sim(K1, B1) / sim(K1, K2) = (1/sqrt 3) / (2/sqrt 6)


def _ctx(shop: Shop, **fields: Any) -> StepContext:
    fields.setdefault("catalog", shop.catalog)
    return StepContext(roles=shop.roles, **fields)


def _user(shop: Shop, history: list[int], **fields: Any) -> StepContext:
    fields.setdefault("personal", AlignedModel(shop.models["itemknn"]))
    return _ctx(
        shop,
        history=np.array(history, dtype=np.int64),
        weights=np.ones(len(history), dtype=np.float32),
        **fields,
    )


# -- personalised ---------------------------------------------------------------------------
def test_personalised_scales_the_model_to_one(shop: Shop) -> None:
    scores = Personalised().scores(_user(shop, [K1]))
    np.testing.assert_allclose(scores, [0.0, 1.0, SQRT_HALF, 0.0, 0.0], rtol=1e-6)


def test_personalised_does_not_apply_without_history_or_a_personalising_model(shop: Shop) -> None:
    assert Personalised().scores(_user(shop, [])).size == 0
    assert Personalised().scores(_user(shop, [K1], personal=None)).size == 0
    popular = _user(shop, [K1], personal=AlignedModel(shop.models["popularity"]))
    assert Popularity.personalised is False
    assert Personalised().scores(popular).size == 0


def test_a_requested_model_answers_even_when_it_does_not_personalise(shop: Shop) -> None:
    popularity = AlignedModel(shop.models["popularity"])
    for history in ([K1], []):
        ctx = _user(shop, history, personal=popularity, requested=True)
        scores = Personalised().scores(ctx)
        expected = shop.models["popularity"].popularity  # type: ignore[attr-defined]
        assert scores.size == len(ITEMS)
        assert np.argmax(scores) == int(np.argmax(expected))
    requested_knn = _user(shop, [], requested=True)  # a personalising model still needs history
    assert Personalised().scores(requested_knn).size == 0


def test_personalised_scores_items_added_after_training_by_content(shop: Shop) -> None:
    new = pd.DataFrame(
        {
            "item_id": ["K3", "X1"],
            "title": ["Santoku Knife", "Garden Hose"],
            "category": ["Home > Kitchen > Knives", None],
        }
    )
    catalog, added = shop.catalog.with_items(new)
    shop.models["tfidf"].add_items(added)  # type: ignore[attr-defined]
    ctx = _user(shop, [K1, K2], catalog=catalog)
    scores = Personalised(cold_min_similarity=0.05).scores(ctx)
    assert scores.shape == (7,)
    content = shop.roles.content_scores(ctx.history, ctx.weights, only=np.array([5, 6]))
    assert content[0] > 0.05 and content[1] == 0.0  # the knife shares words, the hose none
    assert scores[5] == pytest.approx(content[0]) and scores[6] == 0.0
    assert Personalised(cold_min_similarity=1.01).scores(ctx)[5] == 0.0  # below the floor


# -- session --------------------------------------------------------------------------------
def test_session_items_follow_the_request_and_the_latest_session(shop: Shop) -> None:
    ev = events(("K2", "view", "s2", 50), ("K1", "view", "s2", 40), ("B1", "view", "s1", 0))
    step = Session()
    page = RecContext(item_id="H1")
    assert step.items(_ctx(shop, events=ev, request=page)).tolist() == [H1, K2, K1]
    named = RecContext(item_id="H1", session_id="s1")
    assert step.items(_ctx(shop, events=ev, request=named)).tolist() == [H1, B1]
    assert Session(max_items=1).items(_ctx(shop, events=ev)).tolist() == [K2]
    assert step.items(_ctx(shop)).size == 0


def test_session_without_ids_ends_at_a_quiet_gap(shop: Shop) -> None:
    ev = events(("K2", "view", None, 100), ("K1", "view", None, 90), ("B1", "view", None, 0))
    assert Session(gap_minutes=30).items(_ctx(shop, events=ev)).tolist() == [K2, K1]
    assert Session(gap_minutes=120).items(_ctx(shop, events=ev)).tolist() == [K2, K1, B1]


def test_session_adds_weighted_content_to_collaborative_similarity(shop: Shop) -> None:
    ctx = _ctx(shop, request=RecContext(item_id="H1"))
    content = shop.roles.content_scores(np.array([H1]))
    assert content[H2] > 0 and not content[[K1, K2, B1]].any()
    scores = Session(content_weight=0.5).scores(ctx)
    assert scores[H2] == pytest.approx(1.0 + 0.5 * content[H2])  # collaborative 1 (scaled)
    assert scores[[K1, K2, B1]].tolist() == [0.0, 0.0, 0.0]
    assert Session(content_weight=0.0).scores(ctx)[H2] == pytest.approx(1.0)
    assert Session().scores(_ctx(shop)).size == 0


# -- trending and popular -------------------------------------------------------------------
def test_category_trending_ranks_inside_the_request_category(shop: Shop) -> None:
    step = CategoryTrending()
    scores = step.scores(_ctx(shop, request=RecContext(category="Electronics")))
    assert np.isneginf(scores[[K1, K2, B1]]).all()
    np.testing.assert_allclose(scores[[H1, H2]], [1.0 + 1e-9, 3.0 + 1e-9])
    # no category given: the page item's, then the user's latest item's
    page = _ctx(shop, request=RecContext(item_id="K2"))
    assert step.category(page) == "Home > Kitchen > Knives"
    np.testing.assert_allclose(step.scores(page)[[K1, K2]], [0.5 + 1e-9, 1e-9])
    latest = _ctx(shop, events=events(("B1", "view", None, 5), ("H1", "view", None, 1)))
    assert step.category(latest) == "Home > Kitchen > Boards"
    assert step.category(_ctx(shop, request=RecContext(category="home>kitchen"))) == (
        "home > kitchen"
    )
    assert step.scores(_ctx(shop)).size == 0


def test_trending_falls_back_to_popularity_without_a_trend(shop: Shop) -> None:
    del shop.models["trending"]
    roles = ModelRoles(shop.models, EngineConfig())
    ctx = StepContext(shop.catalog, roles, request=RecContext(category="Home"))
    np.testing.assert_allclose(CategoryTrending().scores(ctx)[[K1, K2, B1]], [3, 2, 1])


def test_popular_counts_every_item(shop: Shop) -> None:
    np.testing.assert_allclose(Popular().scores(_ctx(shop)), np.array([3, 2, 1, 1, 1]) + 1e-9)
    assert Popular.positive_only is False
    del shop.models["popularity"]
    empty = StepContext(shop.catalog, ModelRoles(shop.models, EngineConfig()))
    np.testing.assert_allclose(Popular().scores(empty), np.full(5, 1e-9))


# -- related items --------------------------------------------------------------------------
def test_collaborative_and_content_neighbours_of_the_page_item(shop: Shop) -> None:
    page = _ctx(shop, request=RecContext(item_id="K1"))
    np.testing.assert_allclose(
        CollaborativeSimilar().scores(page), [0.0, 1.0, SQRT_HALF, 0.0, 0.0], rtol=1e-6
    )
    content = ContentSimilar().scores(page)
    assert content[K2] > content[B1] > 0 and content[[H1, H2]].tolist() == [0.0, 0.0]
    for step in (CollaborativeSimilar(), ContentSimilar(), BoughtTogether()):
        assert step.scores(_ctx(shop)).size == 0  # no page item


def _baskets() -> pd.DataFrame:
    rows = [  # (user, item, session, day)
        ("a", "K1", "s1", 1),
        ("a", "K2", "s1", 1),
        ("a", "B1", "s1", 1),
        ("a", "K2", "s1", 1),  # twice in one basket: counts once
        ("b", "K1", "s2", 2),
        ("b", "K2", "s2", 2),
        ("c", "K1", None, 3),  # no session: the user's day is the basket
        ("c", "H1", None, 3),
        ("c", "H2", None, 4),  # another day, another basket
        ("c", "ZZ", None, 3),  # not in the catalogue
    ]
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "item_id": [r[1] for r in rows],
            "session_id": pd.Series([r[2] for r in rows], dtype=object),
            "timestamp": pd.to_datetime([f"2026-05-0{r[3]} 10:00" for r in rows]),
        }
    )


def test_copurchase_counts_baskets() -> None:
    co, counts = copurchase_counts(_baskets(), Vocabulary(ITEMS["item_id"]), 5)
    assert counts.tolist() == [3, 2, 1, 1, 1]
    dense = co.toarray()
    assert dense[K1].tolist() == [0, 2, 1, 1, 0]
    assert dense[H2].tolist() == [0, 0, 0, 0, 0]
    assert (dense == dense.T).all() and not dense.diagonal().any()


def test_bought_together_is_shrunk_confidence(shop: Shop) -> None:
    counts = copurchase_counts(_baskets(), shop.catalog.vocab, 5)
    page = _ctx(shop, request=RecContext(item_id="K1"), copurchase=lambda: counts)
    # c(K1, K2) = 2, c(K1, B1) = c(K1, H1) = 1, c(K1) = 3: c_ij / (c_i + shrink)
    np.testing.assert_allclose(BoughtTogether(shrink=2.0).scores(page), [0, 0.4, 0.2, 0.2, 0])
    np.testing.assert_allclose(BoughtTogether(shrink=0.0).scores(page), [0, 2 / 3, 1 / 3, 1 / 3, 0])


# -- the walk -------------------------------------------------------------------------------
def _walk(shop: Shop, names: tuple[str, ...], ctx: StepContext, k: int) -> Picker:
    blocked = np.zeros(len(shop.catalog), dtype=bool)
    blocked[ctx.history] = True
    chain = build_chain(names, EngineConfig())
    return walk(chain, ctx, Picker(shop.catalog, k, blocked))


def test_the_default_user_chain_on_the_tiny_shop(shop: Shop) -> None:
    ctx = _user(shop, [K1], events=events(("K1", "purchase", "s1", 0)))
    pick = _walk(shop, EngineConfig().recommend_steps, ctx, k=5)
    # personalised: K1's neighbours; session and trending find nothing new; popular the rest
    assert [(r["item_id"], r["source"]) for r in pick.items] == [
        ("K2", "personalised"),
        ("B1", "personalised"),
        ("H1", "popular"),
        ("H2", "popular"),
    ]
    assert pick.strategy == "personalised"


def test_the_order_comes_from_the_configuration(shop: Shop) -> None:
    ctx = _user(shop, [K1], events=events(("K1", "purchase", "s1", 0)))
    pick = _walk(shop, ("popular", "personalised"), ctx, k=2)
    assert [(r["item_id"], r["source"]) for r in pick.items] == [
        ("K2", "popular"),
        ("B1", "popular"),
    ]
    trending_first = _walk(
        shop, ("trending", "popular"), _ctx(shop, request=RecContext(category="Electronics")), k=3
    )
    assert [r["item_id"] for r in trending_first.items] == ["H2", "H1", "K1"]
    assert trending_first.strategy == "trending"
