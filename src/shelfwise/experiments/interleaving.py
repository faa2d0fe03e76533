"""Team-draft interleaving: tell two rankers apart from the clicks on one mixed list.

Radlinski, Kurup and Joachims, "How does clickthrough data reflect retrieval quality?"
(CIKM 2008). Per session the two rankings A and B are merged like two captains picking
teams: in each round a fair coin says which team picks first, and each team adds its
highest-ranked item that is not yet on the list. Every shown item remembers the team that
picked it; a session's clicks are credited to the teams, the team with more clicks wins the
session, and over many sessions a sign test (two-sided binomial test of A-wins against
B-wins, ties left out) says whether one ranker is preferred. Because both rankers are
judged on the same shopper at the same moment, most of the between-shopper noise that an
A/B test must average away cancels, so far fewer sessions are needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from shelfwise.errors import DataError

__all__ = [
    "TEAM_A",
    "TEAM_B",
    "InterleavingResult",
    "credit",
    "sign_test",
    "team_draft",
    "team_draft_batch",
]

TEAM_A, TEAM_B, NO_TEAM = 0, 1, -1


def team_draft(
    a: np.ndarray, b: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Interleave rankings `a` and `b` (item ids, best first; -1 entries are ignored) into
    at most `k` items. Returns (items, teams): the list and, per position, `TEAM_A` or
    `TEAM_B` for the team that picked it."""
    if k < 1:
        raise DataError(f"k: must be >= 1, got {k}")
    ranked = [[int(x) for x in np.asarray(r).ravel() if x >= 0] for r in (a, b)]
    pointers = [0, 0]
    items: list[int] = []
    teams: list[int] = []
    chosen: set[int] = set()
    counts = [0, 0]

    def pick(team: int) -> bool:
        r, p = ranked[team], pointers[team]
        while p < len(r) and r[p] in chosen:
            p += 1
        pointers[team] = p
        if p >= len(r):
            return False
        chosen.add(r[p])
        items.append(r[p])
        teams.append(team)
        counts[team] += 1
        pointers[team] = p + 1
        return True

    while len(items) < k:
        # the team with fewer picks goes next; on a tie a coin decides (team draft)
        if counts[TEAM_A] != counts[TEAM_B]:
            first = TEAM_A if counts[TEAM_A] < counts[TEAM_B] else TEAM_B
        else:
            first = TEAM_A if rng.random() < 0.5 else TEAM_B
        if not pick(first) and not pick(1 - first):
            break  # both rankings are used up
    return np.asarray(items, dtype=np.int64), np.asarray(teams, dtype=np.int64)


def team_draft_batch(
    a: np.ndarray, b: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`team_draft` for every row of rankings `a` and `b` (rows x depth): (items, teams),
    rows x k, padded with -1 (item) and `NO_TEAM`."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[0] != b.shape[0]:
        raise DataError(f"a and b: {a.shape[0]} and {b.shape[0]} rows; one row per session")
    items = np.full((a.shape[0], k), -1, dtype=np.int64)
    teams = np.full((a.shape[0], k), NO_TEAM, dtype=np.int64)
    for row in range(a.shape[0]):
        it, tm = team_draft(a[row], b[row], k, rng)
        items[row, : it.size] = it
        teams[row, : tm.size] = tm
    return items, teams


def credit(teams: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """Per session (rows): +1 if team A's items got more clicks, -1 if team B's did, 0 for a
    tie (including no clicks)."""
    teams, clicks = np.atleast_2d(teams), np.atleast_2d(np.asarray(clicks, dtype=bool))
    if teams.shape != clicks.shape:
        raise DataError(f"clicks: shape {clicks.shape} differs from the teams' {teams.shape}")
    a = (clicks & (teams == TEAM_A)).sum(axis=1)
    b = (clicks & (teams == TEAM_B)).sum(axis=1)
    return np.sign(a - b).astype(np.int64)


@dataclass(frozen=True)
class InterleavingResult:
    """Sessions won by A and by B, ties, the share of decided sessions won by B
    (`preference_b`, 0.5 = no preference) with its 95% interval, and the sign test's
    two-sided p-value."""

    wins_a: int
    wins_b: int
    ties: int
    preference_b: float
    ci95: tuple[float, float]
    p_value: float

    @property
    def sessions(self) -> int:
        """All sessions, ties included."""
        return self.wins_a + self.wins_b + self.ties

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "wins_a": self.wins_a,
            "wins_b": self.wins_b,
            "ties": self.ties,
            "sessions": self.sessions,
            "preference_b": self.preference_b,
            "ci95": list(self.ci95),
            "p_value": self.p_value,
        }


def sign_test(outcomes: np.ndarray) -> InterleavingResult:
    """The sign test of per-session outcomes from `credit` (+1 A wins, -1 B wins, 0 tie):
    an exact two-sided binomial test of B's wins among the decided sessions against 1/2,
    with a Wilson interval of B's share (p = 1 and the interval [0, 1] when nothing was
    decided)."""
    outcomes = np.asarray(outcomes)
    if outcomes.size and not np.isin(outcomes, (-1, 0, 1)).all():
        raise DataError("outcomes: expected +1 (A wins), -1 (B wins) or 0 (tie) per session")
    wins_a, wins_b = int((outcomes > 0).sum()), int((outcomes < 0).sum())
    ties = int(outcomes.size - wins_a - wins_b)
    decided = wins_a + wins_b
    if decided == 0:
        return InterleavingResult(wins_a, wins_b, ties, 0.5, (0.0, 1.0), 1.0)
    test = sps.binomtest(wins_b, decided, 0.5)
    ci = test.proportion_ci(confidence_level=0.95, method="wilson")
    return InterleavingResult(
        wins_a, wins_b, ties, wins_b / decided, (float(ci.low), float(ci.high)), float(test.pvalue)
    )
