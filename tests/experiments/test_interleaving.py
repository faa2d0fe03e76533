"""Team-draft interleaving: the merge, credit assignment and the sign test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from shelfwise.data.demo import DemoConfig
from shelfwise.errors import DataError
from shelfwise.experiments.interleaving import (
    TEAM_A,
    TEAM_B,
    TEAM_EITHER,
    credit,
    credit_difference,
    optimized_interleaving,
    optimized_interleaving_batch,
    shopper_test,
    sign_test,
    team_draft,
    team_draft_batch,
)
from shelfwise.experiments.simulate.world import World


def test_identical_rankings_interleave_to_the_same_list() -> None:
    rng = np.random.default_rng(0)
    a = np.array([4, 2, 9, 7, 1])
    items, teams = team_draft(a, a, 5, rng)
    assert items.tolist() == a.tolist()
    assert abs(int((teams == TEAM_A).sum()) - int((teams == TEAM_B).sum())) <= 1


def test_each_team_contributes_its_best_remaining_items_in_order() -> None:
    a, b = np.array([1, 2, 3, 4, 5, 6]), np.array([3, 1, 7, 8, 2, 9])
    for seed in range(30):
        items, teams = team_draft(a, b, 6, np.random.default_rng(seed))
        assert len(set(items.tolist())) == 6
        picked_a = items[teams == TEAM_A].tolist()
        picked_b = items[teams == TEAM_B].tolist()
        assert picked_a == [x for x in a.tolist() if x in picked_a]
        assert picked_b == [x for x in b.tolist() if x in picked_b]
        # a team always picks its own best item not yet on the list
        for pos, (item, team) in enumerate(zip(items.tolist(), teams.tolist(), strict=True)):
            ranking = (a if team == TEAM_A else b).tolist()
            remaining = [x for x in ranking if x not in items[:pos].tolist()]
            assert item == remaining[0]
        assert abs(len(picked_a) - len(picked_b)) <= 1


def test_the_first_pick_is_a_fair_coin() -> None:
    a, b = np.array([1, 2]), np.array([3, 4])
    firsts = [team_draft(a, b, 2, np.random.default_rng(s))[1][0] for s in range(2000)]
    assert np.mean(firsts) == pytest.approx(0.5, abs=0.04)


def test_short_rankings_stop_when_both_are_used_up() -> None:
    items, teams = team_draft(np.array([1, -1]), np.array([1]), 5, np.random.default_rng(0))
    assert items.tolist() == [1] and teams.size == 1
    with pytest.raises(DataError, match="k"):
        team_draft(np.array([1]), np.array([2]), 0, np.random.default_rng(0))


def test_batch_pads_rows() -> None:
    items, teams = team_draft_batch(
        np.array([[1, 2], [5, -1]]), np.array([[2, 1], [5, -1]]), 3, np.random.default_rng(1)
    )
    assert items.shape == (2, 3) and sorted(items[0, :2].tolist()) == [1, 2]
    assert items[1].tolist() == [5, -1, -1] and teams[1, 1:].tolist() == [-1, -1]


def test_credit_counts_clicks_per_team() -> None:
    teams = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [1, 0, 1, 0]])
    clicks = np.array([[1, 0, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    assert credit(teams, clicks).tolist() == [1, -1, 0]
    with pytest.raises(DataError, match="clicks"):
        credit(teams, clicks[:, :2])


def test_sign_test_known_answer() -> None:
    outcomes = np.array([1] * 15 + [-1] * 5 + [0] * 40)
    result = sign_test(outcomes)
    assert (result.wins_a, result.wins_b, result.ties, result.sessions) == (15, 5, 40, 60)
    assert result.p_value == pytest.approx(sps.binomtest(5, 20).pvalue)
    assert result.p_value == pytest.approx(0.04138946533203125)
    assert result.preference_b == 0.25
    assert result.ci95[0] < 0.25 < result.ci95[1]
    assert sign_test(np.zeros(5, dtype=int)).p_value == 1.0
    with pytest.raises(DataError, match="outcomes"):
        sign_test(np.array([2]))


def _better_and_worse_rankings() -> tuple[
    World, np.random.Generator, np.ndarray, np.ndarray, np.ndarray
]:
    """A demo world, a generator, 3,000 sessions' users, and per session the top 10 by true
    utility against the list that drops its best 5 (ranks 6-15)."""
    world = World.generate(DemoConfig(seed=5, n_items=400, n_users=500, days=20))
    rng = np.random.default_rng(0)
    users = rng.integers(0, world.n_users, size=3000)
    u = world.utility(users[:, None], np.arange(world.n_items)[None, :])
    best = np.argsort(-u, axis=1)[:, :10]  # ranked by true utility
    worse = np.argsort(-u, axis=1)[:, 5:15]
    return world, rng, users, best, worse


def test_interleaving_prefers_the_better_ranker_of_a_world() -> None:
    world, rng, users, best, worse = _better_and_worse_rankings()
    items, teams = team_draft_batch(best, worse, 10, rng)
    p = world.click_probabilities(users, items, moods=world.visit_moods(users.size, rng))
    result = sign_test(credit(teams, rng.random(p.shape) < p))
    assert result.wins_a > result.wins_b and result.p_value < 0.001


def test_marginalized_credit_drops_coins_that_do_not_change_the_list() -> None:
    a = np.array([4, 2, 9, 7, 1, 3])
    items, teams = team_draft(a, a, 5, np.random.default_rng(0), marginalize=True)
    assert items.tolist() == [4, 2, 9, 7, 1]
    assert teams.tolist() == [TEAM_EITHER] * 5  # identical rankings: no credit at all
    # a ranking without its top 3: the shared tail only swaps labels
    a, b = np.arange(10), np.arange(3, 13)
    for seed in range(20):
        plain = team_draft(a, b, 10, np.random.default_rng(seed))
        items, teams = team_draft(a, b, 10, np.random.default_rng(seed), marginalize=True)
        assert items.tolist() == plain[0].tolist()  # the same coins give the same list
        assert sorted(items[:6].tolist()) == [0, 1, 2, 3, 4, 5]
        assert set(items[teams == TEAM_A].tolist()) == {0, 1, 2}
        assert set(items[teams == TEAM_B].tolist()) == {3, 4, 5}
        assert teams[6:].tolist() == [TEAM_EITHER] * 4
        kept = teams != TEAM_EITHER
        assert (teams[kept] == plain[1][kept]).all()
    # disjoint rankings: every coin changes the list, every click is credited
    _, teams = team_draft(np.array([1, 2, 3]), np.array([4, 5, 6]), 6, np.random.default_rng(1),
                          marginalize=True)  # fmt: skip
    assert TEAM_EITHER not in teams.tolist()


def test_credit_difference_ignores_uncredited_positions() -> None:
    teams = np.array([[TEAM_A, TEAM_B, TEAM_EITHER, TEAM_A], [TEAM_EITHER, TEAM_B, -1, TEAM_A]])
    clicks = np.array([[1, 0, 1, 1], [1, 1, 0, 0]], dtype=bool)
    assert credit_difference(teams, clicks).tolist() == [2, -1]


def test_shopper_test_known_answer() -> None:
    # per-session A-minus-B differences of three shoppers
    diffs = np.array([1, 0, -1, -1, -2, 0, -1, 1, -1])
    owners = np.array(["x", "x", "y", "y", "y", "z", "z", "z", "z"])
    result = shopper_test(diffs, owners)
    sums_b = np.array([-1.0, 4.0, 1.0])  # B minus A per shopper
    expected = sps.ttest_1samp(sums_b, 0.0)
    assert (result.shoppers, result.sessions) == (3, 9)
    assert result.z == pytest.approx(float(expected.statistic))
    assert result.p_value == pytest.approx(float(expected.pvalue))
    assert result.diff_per_session == pytest.approx(4.0 / 9.0)
    assert result.ci95[0] < 4.0 / 9.0 < result.ci95[1]
    assert shopper_test(np.array([1]), np.array([0])).p_value == 1.0
    with pytest.raises(DataError, match="shoppers"):
        shopper_test(np.array([1, 0]), np.array([0]))


def test_shopper_test_holds_alpha_when_shoppers_disagree() -> None:
    """Half the shoppers prefer A, half B, none on average: the session sign test rejects
    far too often (sessions of one shopper are not independent), the shopper test does not."""
    rng = np.random.default_rng(3)
    rejected_sign = rejected_shopper = 0
    trials = 300
    for _ in range(trials):
        shoppers = np.repeat(np.arange(60), 8)
        leaning = np.where(rng.random(60) < 0.5, 0.4, -0.4)[shoppers]  # P(A) - P(B) per session
        u = rng.random(shoppers.size)
        diffs = np.where(u < 0.3 + leaning / 2, 1, np.where(u < 0.6, -1, 0))
        rejected_sign += sign_test(np.sign(diffs)).p_value < 0.05
        rejected_shopper += shopper_test(diffs, shoppers).p_value < 0.05
    assert rejected_shopper / trials < 0.09
    assert rejected_sign / trials > 0.15


def test_shopper_test_shrink_known_answer() -> None:
    # the three shoppers of the known-answer case: B-minus-A sums -1, 4, 1 over 2, 3, 4 sessions
    diffs = np.array([1, 0, -1, -1, -2, 0, -1, 1, -1])
    owners = np.array(["x", "x", "y", "y", "y", "z", "z", "z", "z"])
    result = shopper_test(diffs, owners, shrink=0.5)
    weights = np.array([1 / 2.0, 1 / 2.5, 1 / 3.0])  # 1 / (1 + 0.5 n)
    weighted = np.array([-1.0, 4.0, 1.0]) * weights  # -0.5, 1.6, 1/3
    expected = sps.ttest_1samp(weighted, 0.0)
    assert result.z == pytest.approx(float(expected.statistic))
    assert result.p_value == pytest.approx(float(expected.pvalue))
    # sum w D / sum w n = (-0.5 + 1.6 + 1/3) / (1 + 1.2 + 4/3)
    assert result.diff_per_session == pytest.approx((-0.5 + 1.6 + 1 / 3) / (1 + 1.2 + 4 / 3))
    assert result.ci95[0] < result.diff_per_session < result.ci95[1]
    # a very large shrink weighs shoppers alike: the t-test of their mean differences
    means = sps.ttest_1samp(np.array([-1 / 2, 4 / 3, 1 / 4]), 0.0)
    assert shopper_test(diffs, owners, shrink=1e9).z == pytest.approx(float(means.statistic))
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(DataError, match="shrink"):
            shopper_test(diffs, owners, shrink=bad)


def _heavy_shoppers(rng: np.random.Generator, lean_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """300 shoppers with heavy-tailed session counts, each with their own preference
    (per-session P(B click) - P(A click): normal around `lean_mean`, sd 0.3)."""
    n = np.minimum(1 + (4 * rng.pareto(1.5, size=300)).astype(int), 100)
    shoppers = np.repeat(np.arange(300), n)
    lean = np.clip(lean_mean + 0.3 * rng.standard_normal(300), -0.6, 0.6)[shoppers]
    u = rng.random(shoppers.size)
    diffs = np.where(u < 0.3 - lean / 2, 1, np.where(u < 0.6, -1, 0))  # A minus B
    return diffs, shoppers


def test_shrunk_shopper_test_p_values_are_uniform_on_the_null() -> None:
    """No preference on average but strong ones per shopper and heavy-tailed sessions: the
    p-values of the shrunk shopper test are uniform (KS) and it rejects about alpha."""
    p = np.array([
        shopper_test(*_heavy_shoppers(np.random.default_rng(seed), 0.0), shrink=0.2).p_value
        for seed in range(300)
    ])  # fmt: skip
    assert sps.kstest(p, "uniform").pvalue > 0.01
    assert 0.02 < (p < 0.05).mean() < 0.09


def test_shrink_gains_power_when_shoppers_disagree() -> None:
    """When preferences differ between shoppers, a heavy shopper's many sessions carry one
    preference: weighing them down (shrink near tau^2 / sigma^2, here 0.09 / 0.6) detects
    B's small average lead more often than weighing every session alike."""
    rejected = {0.0: 0, 0.15: 0}
    for seed in range(200):
        diffs, shoppers = _heavy_shoppers(np.random.default_rng([7, seed]), 0.06)
        for shrink in rejected:
            result = shopper_test(diffs, shoppers, shrink=shrink)
            rejected[shrink] += result.p_value < 0.05 and result.diff_per_session > 0
    assert rejected[0.15] > rejected[0.0] + 10


def _is_prefix_constrained(shown: list[int], a: list[int], b: list[int]) -> bool:
    """Every prefix of `shown` is the union of a prefix of `a` and a prefix of `b`."""
    return all(
        any(set(a[:i]) | set(b[:j]) == set(shown[:c]) for i in range(c + 1) for j in range(c + 1))
        for c in range(1, len(shown) + 1)
    )


def test_optimized_interleaving_swapped_pair_is_a_fair_coin() -> None:
    # lists [1, 2] and [2, 1]; a click on 1 credits (1 - 2) / 2 = -1/2 (A), on 2 +1/2 (B);
    # unbiased at depth 1 only with probability 1/2 each
    oi = optimized_interleaving(np.array([1, 2]), np.array([2, 1]), 2)
    got = {tuple(x): (float(p), c.tolist()) for x, p, c in
           zip(oi.lists.tolist(), oi.probabilities, oi.credits, strict=True)}  # fmt: skip
    assert got.keys() == {(1, 2), (2, 1)}
    assert got[(1, 2)][0] == pytest.approx(0.5) and got[(2, 1)][0] == pytest.approx(0.5)
    assert got[(1, 2)][1] == pytest.approx([-0.5, 0.5])
    assert got[(2, 1)][1] == pytest.approx([0.5, -0.5])


def test_optimized_interleaving_of_identical_rankings_credits_nothing() -> None:
    oi = optimized_interleaving(np.array([4, 2, 9]), np.array([4, 2, 9, 7]), 3)
    assert oi.lists.tolist() == [[4, 2, 9]]
    assert oi.probabilities.tolist() == [1.0] and not oi.credits.any()


def test_optimized_interleaving_is_unbiased_for_a_random_clicker() -> None:
    a, b = list(range(10)), list(range(3, 13))  # B: A without its 3 best items
    oi = optimized_interleaving(np.array(a), np.array(b), 10)
    assert oi.probabilities.sum() == pytest.approx(1.0) and (oi.probabilities > 0).all()
    rank_a = {x: r + 1 for r, x in enumerate(a)}
    rank_b = {x: r + 1 for r, x in enumerate(b)}
    for shown, credits in zip(oi.lists.tolist(), oi.credits, strict=True):
        assert len(set(shown)) == 10 and _is_prefix_constrained(shown, a, b)
        want = [(rank_a.get(x, 11) - rank_b.get(x, 11)) / 10 for x in shown]
        assert credits.tolist() == pytest.approx(want)
    # a click on any of the first c positions, whichever item is there: no credit expected
    depth = oi.probabilities @ np.cumsum(oi.credits, axis=1)
    assert depth == pytest.approx(np.zeros(10), abs=1e-9)
    # a shopper who clicks only A's best item credits A
    clicks_0 = oi.lists == 0
    assert float(oi.probabilities @ (oi.credits * clicks_0).sum(axis=1)) < -0.1


def test_optimized_interleaving_batch_maps_patterns_onto_items() -> None:
    rng = np.random.default_rng(0)
    a = np.array([[10, 11, 12, 13], [20, 21, 22, 23], [5, 6, 7, 8]])
    b = np.array([[11, 10, 12, 13], [21, 20, 22, 23], [5, 6, 7, 8]])
    items, credits = optimized_interleaving_batch(a, b, 4, rng)
    for row in range(3):
        assert set(items[row].tolist()) == set(a[row].tolist())
        ra = {int(x): r + 1 for r, x in enumerate(a[row])}
        rb = {int(x): r + 1 for r, x in enumerate(b[row])}
        want = [(ra[int(x)] - rb[int(x)]) / 4 for x in items[row]]
        assert credits[row].tolist() == pytest.approx(want)
    assert items[2].tolist() == [5, 6, 7, 8] and not credits[2].any()
    firsts = [optimized_interleaving_batch(a[:1], b[:1], 4, rng)[0][0, 0] for _ in range(400)]
    assert 0.4 < np.mean(np.array(firsts) == 10) < 0.6  # the swapped top pair: a fair coin
    with pytest.raises(DataError, match="rows"):
        optimized_interleaving_batch(a, b[:2], 4, rng)


def test_optimized_interleaving_prefers_the_better_ranker_of_a_world() -> None:
    world, rng, users, best, worse = _better_and_worse_rankings()
    items, credits = optimized_interleaving_batch(best, worse, 10, rng)
    p = world.click_probabilities(users, items, moods=world.visit_moods(users.size, rng))
    diffs = -(credits * (rng.random(p.shape) < p)).sum(axis=1)  # A minus B
    result = shopper_test(diffs, users)
    assert result.diff_per_session < 0 and result.p_value < 0.001
