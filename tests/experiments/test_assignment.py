"""Sticky assignment in proportion to the weights, and exploration's propensities."""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from shelfwise.experiments.assignment import (
    ExperimentSpec,
    Exploration,
    assign,
    explore,
    list_propensity,
    marginal_propensities,
    unit_hash,
)


def spec(**fields: object) -> ExperimentSpec:
    base: dict[str, object] = {
        "experiment_id": "e1",
        "variants": [{"name": "a", "weight": 3}, {"name": "b", "weight": 1, "model": "itemknn"}],
    }
    base.update(fields)
    return ExperimentSpec.model_validate(base)


def test_assignment_follows_the_weights_and_is_sticky() -> None:
    s = spec()
    users = [f"user-{i}" for i in range(20_000)]
    names = [assign(u, s).name for u in users]
    share_a = names.count("a") / len(names)
    assert share_a == pytest.approx(0.75, abs=0.015)
    assert [assign(u, s).name for u in users[:500]] == names[:500]  # sticky
    other = spec(salt="reshuffle")
    moved = sum(assign(u, other).name != n for u, n in zip(users, names, strict=True))
    assert moved > 0.2 * len(users)  # a new salt reshuffles (about 2 * 0.75 * 0.25 = 37.5%)


def test_unit_hash_is_uniform_and_known() -> None:
    values = np.array([unit_hash(f"u{i}", "s") for i in range(10_000)])
    assert values.min() >= 0 and values.max() < 1
    counts, _ = np.histogram(values, bins=10, range=(0, 1))
    assert counts.min() > 900 and counts.max() < 1100
    # SHA-256("s:u0"), first 8 bytes, over 2^64: fixed forever (assignment must not drift)
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"s:u0").digest()[:8], "big") / 2**64
    assert unit_hash("u0", "s") == expected


def test_surfaces_follow_the_configs() -> None:
    assert spec().exposure_surfaces() == {"recommendations"}
    search = spec(variants=[{"name": "a"}, {"name": "b", "search_mode": "hybrid"}])
    assert search.exposure_surfaces() == {"search"}
    push = spec(variants=[{"name": "a"}, {"name": "b", "push": {"quiet_start": 20}}])
    assert push.exposure_surfaces() == {"push_plan"}
    explore_search = spec(
        variants=[{"name": "a"}, {"name": "b", "exploration": {}, "explore_on": ["search"]}]
    )
    assert explore_search.exposure_surfaces() == {"search"}
    explicit = spec(surfaces=["similar"])
    assert explicit.exposure_surfaces() == {"similar"}
    with pytest.raises(ValidationError, match="no variant changes anything"):
        spec(variants=[{"name": "a"}, {"name": "b"}])


def test_epsilon_one_is_uniform_and_epsilon_zero_is_greedy() -> None:
    rng = np.random.default_rng(0)
    shown, props = explore(list("abcdef"), Exploration(epsilon=1.0, top_n=4), rng)
    assert sorted(shown[:4]) == list("abcd") and shown[4:] == ["e", "f"]
    assert props == pytest.approx([1 / 4, 1 / 3, 1 / 2, 1.0, 1.0, 1.0])
    shown, props = explore(list("abc"), Exploration(epsilon=0.0, top_n=3), rng)
    assert shown == list("abc") and props == [1.0, 1.0, 1.0]
    assert list_propensity([0.5, 0.5, 1.0]) == 0.25


@pytest.mark.parametrize(
    "exploration",
    [Exploration(kind="epsilon", epsilon=0.3, top_n=4), Exploration(kind="softmax", top_n=4)],
)
def test_logged_propensity_matches_the_frequency(exploration: Exploration) -> None:
    # the propensity logged for the first slot is the frequency of that item there
    rng = np.random.default_rng(1)
    runs = 20_000
    first = []
    logged: dict[str, float] = {}
    for _ in range(runs):
        shown, props = explore(list("abcd"), exploration, rng)
        first.append(shown[0])
        logged[shown[0]] = props[0]
    for item, p in logged.items():
        assert first.count(item) / runs == pytest.approx(p, abs=0.015)
    if exploration.kind == "epsilon":
        assert logged["a"] == pytest.approx(0.7 + 0.3 / 4)
    else:  # exp(-rank) over ranks 0..3
        weights = np.exp(-np.arange(4.0))
        assert logged["a"] == pytest.approx(weights[0] / weights.sum())


def test_marginal_propensities_known_answer_and_sampled() -> None:
    # two slots, epsilon 0.4: the better item leads with 1 - 0.4 + 0.4 / 2 = 0.8
    two = Exploration(kind="epsilon", epsilon=0.4, top_n=2)
    assert marginal_propensities([0, 1, 2], 3, two) == pytest.approx([0.8, 0.8, 1.0])
    assert marginal_propensities([1, 0, 2], 3, two) == pytest.approx([0.2, 0.2, 1.0])
    # softmax over two: exp(0) / (exp(0) + exp(-1 / 2)) leads
    soft = Exploration(kind="softmax", temperature=2.0, top_n=2)
    lead = 1.0 / (1.0 + math.exp(-0.5))
    assert marginal_propensities([0, 1], 2, soft) == pytest.approx([lead, lead])
    # deeper: the marginals match the frequencies of `explore`'s own lists
    for exploration in (
        Exploration(kind="epsilon", epsilon=0.3, top_n=5),
        Exploration(kind="softmax", temperature=1.5, top_n=5),
    ):
        rng = np.random.default_rng(0)
        n, draws = 7, 20000
        counts = np.zeros((n, n))
        exact = np.zeros((n, n))
        for _ in range(draws):
            order, _ = explore(range(n), exploration, rng)
            for position, rank in enumerate(order):
                counts[rank, position] += 1
            exact[order, np.arange(n)] = marginal_propensities(order, n, exploration)
        seen = counts > 0
        assert np.abs(counts[seen] / draws - exact[seen]).max() < 0.015
        assert (exact[5:, 5:] == np.eye(2)).all()  # below the top N: kept in place
        assert counts[:5, :5].sum(axis=0) == pytest.approx([draws] * 5)
