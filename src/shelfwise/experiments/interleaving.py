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

Two refinements, both keeping what is measured (clicks on each team's items):

* `team_draft(..., marginalize=True)` credits a click by the average over every coin
  outcome that would have produced the same list (Hofmann, Whiteson and de Rijke's
  marginalisation, CIKM 2011, applied to team draft). When both teams' next choices are
  the same items in the same order (long shared stretches of two similar rankings), the
  coin only swaps labels: those positions get `TEAM_EITHER` and no credit. Their credit was
  a fair coin independent of the clicks, so dropping it leaves every expectation as it was
  and removes pure noise.
* `shopper_test(diffs, shoppers)`: sessions of one shopper are not independent (a shopper
  who prefers B's items keeps preferring them), so the per-session sign test is only valid
  when no shopper prefers either ranker. The shopper test sums each shopper's credited
  click differences and tests their mean (a t-test over shoppers, the cluster-robust
  counterpart of the A/B test's delta method by shopper): valid whenever shoppers are
  sampled independently, whatever their preferences. `shopper_test(..., shrink=s)`
  weighs shopper u's sum by 1 / (1 + s n_u) (random-effects weights: a shopper's many
  sessions share one preference, so they count for less than as many shoppers' sessions);
  the weights depend only on the session counts, so the test stays valid.

An alternative to team draft, `optimized_interleaving` (Radlinski and Craswell, "Optimized
interleaving for online retrieval evaluation", WSDM 2013): the list shown is drawn from a
distribution over the lists whose every prefix is the union of a prefix of each ranking,
solved by a linear programme so that a shopper clicking at random credits neither ranker,
and a click credits the ranker that put the item higher by the rank difference. Its
per-session credits go through `shopper_test` like team draft's.
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
    "TEAM_EITHER",
    "InterleavingResult",
    "OptimizedInterleaving",
    "ShopperResult",
    "credit",
    "credit_difference",
    "optimized_interleaving",
    "optimized_interleaving_batch",
    "shopper_test",
    "sign_test",
    "team_draft",
    "team_draft_batch",
]

TEAM_A, TEAM_B, NO_TEAM, TEAM_EITHER = 0, 1, -1, 2


def team_draft(
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    rng: np.random.Generator,
    marginalize: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleave rankings `a` and `b` (item ids, best first; -1 entries are ignored) into
    at most `k` items. Returns (items, teams): the list and, per position, `TEAM_A` or
    `TEAM_B` for the team that picked it.

    `marginalize`: a position whose team was decided by a coin that did not change the list
    (both teams would have put the same items in the same places, only the labels differ)
    gets `TEAM_EITHER` instead; see the module doc."""
    if k < 1:
        raise DataError(f"k: must be >= 1, got {k}")
    ranked = [[int(x) for x in np.asarray(r).ravel() if x >= 0] for r in (a, b)]
    items: list[int] = []
    teams: list[int] = []
    chosen: set[int] = set()
    counts = [0, 0]

    def best(team: int, taken: set[int]) -> int | None:
        return next((x for x in ranked[team] if x not in taken), None)

    def step(first: int, taken: set[int]) -> list[tuple[int, int]]:
        """One pick by `first` (or, when its ranking is used up, the other team)."""
        for team in (first, 1 - first):
            item = best(team, taken)
            if item is not None:
                return [(item, team)]
        return []

    def draft_round(first: int) -> list[tuple[int, int]]:
        """The picks of a round that `first` opens: its pick, then (room left) the other
        team's, each falling back to the other team when its ranking is used up."""
        taken, n = set(chosen), [counts[TEAM_A], counts[TEAM_B]]
        picks: list[tuple[int, int]] = []
        while len(items) + len(picks) < k and (not picks or n[TEAM_A] != n[TEAM_B]):
            team = first if not picks else (TEAM_A if n[TEAM_A] < n[TEAM_B] else TEAM_B)
            got = step(team, taken)
            if not got:
                break
            picks += got
            taken.add(got[0][0])
            n[got[0][1]] += 1
        return picks

    while len(items) < k:
        if counts[TEAM_A] != counts[TEAM_B]:
            # a team used up its ranking: the team with fewer picks keeps picking first
            picks = draft_round(TEAM_A if counts[TEAM_A] < counts[TEAM_B] else TEAM_B)
            other: list[tuple[int, int]] | None = None
        else:  # on a tie a coin decides who picks first (team draft)
            coin = TEAM_A if rng.random() < 0.5 else TEAM_B
            picks, other = draft_round(coin), draft_round(1 - coin)
        if not picks:
            break  # both rankings are used up
        same_list = other is not None and [x for x, _ in other] == [x for x, _ in picks]
        for j, (item, team) in enumerate(picks):
            chosen.add(item)
            counts[team] += 1
            items.append(item)
            either = marginalize and same_list and other is not None and other[j][1] != team
            teams.append(TEAM_EITHER if either else team)
    return np.asarray(items, dtype=np.int64), np.asarray(teams, dtype=np.int64)


def team_draft_batch(
    a: np.ndarray, b: np.ndarray, k: int, rng: np.random.Generator, marginalize: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """`team_draft` for every row of rankings `a` and `b` (rows x depth): (items, teams),
    rows x k, padded with -1 (item) and `NO_TEAM`."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[0] != b.shape[0]:
        raise DataError(f"a and b: {a.shape[0]} and {b.shape[0]} rows; one row per session")
    items = np.full((a.shape[0], k), -1, dtype=np.int64)
    teams = np.full((a.shape[0], k), NO_TEAM, dtype=np.int64)
    for row in range(a.shape[0]):
        it, tm = team_draft(a[row], b[row], k, rng, marginalize)
        items[row, : it.size] = it
        teams[row, : tm.size] = tm
    return items, teams


def credit_difference(teams: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """Per session (rows): clicks on team A's items minus clicks on team B's (clicks on
    `TEAM_EITHER` and empty positions count for neither)."""
    teams, clicks = np.atleast_2d(teams), np.atleast_2d(np.asarray(clicks, dtype=bool))
    if teams.shape != clicks.shape:
        raise DataError(f"clicks: shape {clicks.shape} differs from the teams' {teams.shape}")
    a = (clicks & (teams == TEAM_A)).sum(axis=1)
    b = (clicks & (teams == TEAM_B)).sum(axis=1)
    return np.asarray(a - b, dtype=np.int64)


def credit(teams: np.ndarray, clicks: np.ndarray) -> np.ndarray:
    """Per session (rows): +1 if team A's items got more clicks, -1 if team B's did, 0 for a
    tie (including no clicks)."""
    return np.sign(credit_difference(teams, clicks)).astype(np.int64)


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


@dataclass(frozen=True)
class ShopperResult:
    """The shopper test: shoppers and sessions seen, B's credited clicks minus A's per
    session (`diff_per_session`, > 0: B preferred; weighted by the test's shopper weights)
    with its 95% interval, the t statistic over shoppers (`z`) and the two-sided p-value."""

    shoppers: int
    sessions: int
    diff_per_session: float
    ci95: tuple[float, float]
    z: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "shoppers": self.shoppers,
            "sessions": self.sessions,
            "diff_per_session": self.diff_per_session,
            "ci95": list(self.ci95),
            "z": self.z,
            "p_value": self.p_value,
        }


def shopper_test(diffs: np.ndarray, shoppers: np.ndarray, shrink: float = 0.0) -> ShopperResult:
    """Whether shoppers prefer B, from per-session credited click differences (`diffs`:
    clicks on A's items minus B's, as `credit_difference` gives them) and each session's
    shopper (any hashable ids, one per session).

    Each shopper's differences are summed (D_u over their n_u sessions) and weighed by
    w_u = 1 / (1 + shrink n_u); the test is the one-sample t-test of the w_u D_u against 0
    (n - 1 degrees of freedom; p = 1 with fewer than two shoppers or no spread) and the
    estimate is B's clicks minus A's per session, -sum w D / sum w n, with its delta-method
    interval over shoppers.

    `shrink` = 0 (the default) weighs every session alike, as the A/B test's click-through
    weighs every impression. Sessions of one shopper share that shopper's own preference,
    so a shopper's n-th session adds less than a new shopper's first: with between-shopper
    variance tau^2 of the per-session preference and within-shopper variance sigma^2, the
    most powerful weights are these with shrink = tau^2 / sigma^2 (random-effects weights:
    each shopper's mean counts n / (1 + shrink n) sessions). Very large `shrink` weighs
    shoppers alike (the t-test of their mean difference). The weights depend only on the
    session counts, never on the clicks, so the test keeps its level for any `shrink`
    fixed before looking at the results."""
    if not (np.isfinite(shrink) and shrink >= 0.0):
        raise DataError(f"shrink: must be a finite number >= 0, got {shrink}")
    diffs = np.asarray(diffs, dtype=np.float64).ravel()
    owners = np.asarray(shoppers).ravel()
    if diffs.size != owners.size:
        raise DataError(f"shoppers: {owners.size} given for {diffs.size} sessions")
    if diffs.size == 0:
        return ShopperResult(0, 0, 0.0, (0.0, 0.0), 0.0, 1.0)
    _, index = np.unique(owners, return_inverse=True)
    counts = np.bincount(index).astype(np.float64)
    weights = 1.0 / (1.0 + shrink * counts)
    sums = -np.bincount(index, weights=diffs) * weights  # B minus A, weighted
    sessions = counts * weights  # the sessions each shopper counts for
    m = sums.size
    ratio = float(sums.sum() / sessions.sum())
    sd = float(sums.std(ddof=1)) if m > 1 else 0.0
    if m < 2 or sd == 0.0:
        return ShopperResult(m, diffs.size, ratio, (ratio, ratio), 0.0, 1.0)
    z = float(sums.mean() / (sd / np.sqrt(m)))
    resid = sums - ratio * sessions
    se = float(np.sqrt(resid.var(ddof=1) / m) / sessions.mean())
    half = float(sps.t.ppf(0.975, m - 1)) * se
    p = float(2.0 * sps.t.sf(abs(z), m - 1))
    return ShopperResult(m, diffs.size, ratio, (ratio - half, ratio + half), z, p)


@dataclass(frozen=True)
class OptimizedInterleaving:
    """The lists optimized interleaving may show for one pair of rankings, the probability
    of each and, per list position, the credit of a click there (> 0: B, < 0: A)."""

    lists: np.ndarray  # lists x k item ids, -1 padded
    probabilities: np.ndarray  # lists
    credits: np.ndarray  # lists x k

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` list indices drawn from `probabilities`."""
        return rng.choice(self.probabilities.size, size=size, p=self.probabilities)


def _prefix_lists(ra: list[int], rb: list[int], k: int) -> list[list[int]]:
    """Every list of at most `k` items whose every prefix is the union of a prefix of `ra`
    and a prefix of `rb` (built by appending either ranking's next unused item)."""
    done: set[tuple[int, ...]] = set()
    states: set[tuple[tuple[int, ...], int, int]] = {((), 0, 0)}
    while states:
        nxt: set[tuple[tuple[int, ...], int, int]] = set()
        for shown, i, j in states:
            seen = set(shown)
            while i < len(ra) and ra[i] in seen:
                i += 1
            while j < len(rb) and rb[j] in seen:
                j += 1
            if len(shown) == k or (i == len(ra) and j == len(rb)):
                done.add(shown)
                continue
            if i < len(ra):
                nxt.add(((*shown, ra[i]), i + 1, j))
            if j < len(rb):
                nxt.add(((*shown, rb[j]), i, j + 1))
        states = nxt
    return [list(x) for x in sorted(done)]


def optimized_interleaving(a: np.ndarray, b: np.ndarray, k: int) -> OptimizedInterleaving:
    """Optimized interleaving (Radlinski and Craswell, WSDM 2013) of rankings `a` and `b`
    (item ids, best first; -1 ignored) into lists of at most `k` items.

    The lists allowed are those whose every prefix is the union of a prefix of `a` and one
    of `b` (so a shopper never sees an item above one that both rankers put higher). A
    click on item d credits the linear rank difference (r_A(d) - r_B(d)) / k (r: 1-based
    rank among that ranking's first `k` items, k + 1 when it is not among them): > 0
    favours B, which put the clicked item higher. The probabilities solve a linear
    programme: a shopper clicking at random (whatever the depth she looks to) gives
    neither ranker any credit in expectation - for every depth c, the expected credit
    summed over the first c positions is 0 - and, among such distributions, the expected
    absolute credit of a click, weighted 1/position (a shopper looks less deep than more),
    is the largest. When the two rankings agree on the first `k` items, the one list is
    shown with no credit anywhere. When the programme has no solution, the two rankers'
    own lists are shown with probability 1/2 each, with their credits.

    The credit and the weights were chosen on a demo world of another seed than the one
    the benchmark reports (`docs/benchmarks/simulator.md`): linear rank differences needed
    about 2/3 of team draft's shoppers there, inverse ranks (1/r_B - 1/r_A) about 0.9.

    Returns the lists with a probability above 1e-9 (renormalised); `optimized_interleaving_batch`
    draws one list per row of a batch of rankings."""
    from scipy.optimize import linprog

    if k < 1:
        raise DataError(f"k: must be >= 1, got {k}")
    ra = [int(x) for x in np.asarray(a).ravel() if x >= 0][:k]  # only these can be shown
    rb = [int(x) for x in np.asarray(b).ravel() if x >= 0][:k]
    rank_a = {x: r + 1 for r, x in enumerate(ra)}
    rank_b = {x: r + 1 for r, x in enumerate(rb)}
    lists = _prefix_lists(ra, rb, k)
    width = max((len(x) for x in lists), default=0)
    items = np.full((len(lists), k), -1, dtype=np.int64)
    credits = np.zeros((len(lists), k))
    for row, shown in enumerate(lists):
        items[row, : len(shown)] = shown
        credits[row, : len(shown)] = [
            (rank_a.get(x, k + 1) - rank_b.get(x, k + 1)) / k for x in shown
        ]
    m = len(lists)
    if m == 1 or not np.any(credits):
        return OptimizedInterleaving(items[:1], np.ones(1), credits[:1])
    cum = np.cumsum(credits[:, :width], axis=1).T  # depth x lists
    look = 1.0 / np.arange(1, k + 1)
    gain = (np.abs(credits) * look).sum(axis=1)
    res = linprog(
        -gain,
        A_eq=np.vstack([cum, np.ones((1, m))]),
        b_eq=np.concatenate([np.zeros(width), [1.0]]),
        bounds=(0, None),
        method="highs",
    )
    if res.status != 0:  # no unbiased distribution: the two rankers' own lists, 50/50
        own = [lists.index(x) for x in (ra[:k], rb[:k]) if x in lists]
        p = np.zeros(m)
        p[own] = 1.0 / len(own)
    else:
        p = np.clip(np.asarray(res.x, dtype=np.float64), 0.0, None)
    keep = p > 1e-9
    p = p[keep] / p[keep].sum()
    return OptimizedInterleaving(items[keep], p, credits[keep])


def optimized_interleaving_batch(
    a: np.ndarray,
    b: np.ndarray,
    k: int,
    rng: np.random.Generator,
    cache: dict[Any, OptimizedInterleaving] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One optimized-interleaving list per row of rankings `a` and `b` (rows x depth):
    (items, credits), rows x k (items padded with -1, credit 0 there). Rows whose rankings
    have the same pattern (which ranks of `b` hold which ranks of `a`) share one solved
    distribution (`optimized_interleaving` of the pattern, mapped onto the row's items);
    pass the same `cache` dict to several calls to share the solutions between them."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    if a.shape[0] != b.shape[0]:
        raise DataError(f"a and b: {a.shape[0]} and {b.shape[0]} rows; one row per session")
    items = np.full((a.shape[0], k), -1, dtype=np.int64)
    credits = np.zeros((a.shape[0], k))
    solved: dict[Any, OptimizedInterleaving] = {} if cache is None else cache
    for row in range(a.shape[0]):
        ids: dict[int, int] = {}
        for x in (*a[row], *b[row]):
            if x >= 0 and int(x) not in ids:
                ids[int(x)] = len(ids)
        key = (k, tuple(ids[int(x)] for x in a[row] if x >= 0),
               tuple(ids[int(x)] for x in b[row] if x >= 0))  # fmt: skip
        if key not in solved:
            solved[key] = optimized_interleaving(np.array(key[1]), np.array(key[2]), k)
        oi = solved[key]
        pick = int(oi.sample(rng, 1)[0])
        back = np.array(list(ids), dtype=np.int64)
        shown = oi.lists[pick]
        items[row] = np.where(shown >= 0, back[np.maximum(shown, 0)], -1)
        credits[row] = oi.credits[pick]
    return items, credits
