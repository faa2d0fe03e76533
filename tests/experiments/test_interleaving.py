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
    credit,
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


def test_interleaving_prefers_the_better_ranker_of_a_world() -> None:
    world = World.generate(DemoConfig(seed=5, n_items=400, n_users=500, days=20))
    rng = np.random.default_rng(0)
    users = rng.integers(0, world.n_users, size=3000)
    u = world.utility(users[:, None], np.arange(world.n_items)[None, :])
    best = np.argsort(-u, axis=1)[:, :10]  # ranked by true utility
    worse = np.argsort(-u, axis=1)[:, 5:15]
    items, teams = team_draft_batch(best, worse, 10, rng)
    p = world.click_probabilities(users, items, moods=world.visit_moods(users.size, rng))
    result = sign_test(credit(teams, rng.random(p.shape) < p))
    assert result.wins_a > result.wins_b and result.p_value < 0.001
