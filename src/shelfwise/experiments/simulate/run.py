"""The simulated A/B test: shoppers visit day by day, see what their arm shows, and react.

`simulate(world, driver, arms, days, users)` runs the day loop. Each shopper is assigned
to one arm for the whole test by a hash of their id and a salt (sticky, deterministic).
Every day each shopper visits a Poisson number of times at a rate that grows with their
satisfaction (clicks and purchases raise it, visits without a click lower it, it decays
with a half-life), so a better policy also brings shoppers back. At each visit the driver
asks the arm's policy for a slate and the shopper clicks, carts and buys by the world's
choice model (position bias and fatigue included); the driver records what happened, so
the next visit's list reacts to it.

A visit is a search instead (`ShopperModel.search_rate`) when the shopper has an item in
mind: the driver answers the query and the wanted item's category draws the clicks.

Drivers: `LibraryDriver` answers in-process from `Policy` objects (fast);
`shelfwise.experiments.simulate.engine.EngineDriver` from an in-process `Engine` over a
store (the server's chain, no HTTP); `shelfwise.experiments.simulate.http.HttpDriver` asks a
running server over HTTP and posts the events back. The result keeps per-user totals
(`SimulationResult.totals`), from which `shelfwise.experiments.simulate.report` computes the
metrics and their intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from shelfwise.data.weights import EVENT_TYPE_WEIGHTS
from shelfwise.errors import ConfigError
from shelfwise.experiments.simulate.policies import Policy, Slates
from shelfwise.experiments.simulate.world import World

__all__ = [
    "Driver",
    "LibraryDriver",
    "Shown",
    "SimulationResult",
    "Visits",
    "assign",
    "library_driver",
    "server_half_life",
    "simulate",
]

log = logging.getLogger(__name__)

RETURN_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Shown:
    """What an arm showed a batch of visits: slates and, when the service gave them, one
    request id per visit (to attribute the events to the served list)."""

    slates: Slates
    request_ids: list[str | None] | None = None


@dataclass(frozen=True)
class Visits:
    """One round of visits of one arm and what the shoppers did (rows = visits)."""

    arm: str
    day: int
    users: np.ndarray
    starts: np.ndarray  # unix seconds
    session_ids: list[str]
    shown: Shown
    clicks: np.ndarray  # bool, visits x positions
    carts: np.ndarray
    buys: np.ndarray
    expected_clicks: np.ndarray  # true P(click) per slot
    queries: np.ndarray | None = None  # a search visit's query per row; None: browsing

    def events(self, world: World) -> pd.DataFrame:
        """The visits' events in the canonical event layout (a search with its query for a
        search visit, then click, view, add_to_cart and purchase rows, in time order within
        a visit), with `request_id` when known."""
        out: list[pd.DataFrame] = []
        for kind, mask, offset in (
            ("click", self.clicks, 0),
            ("view", self.clicks, 2),
            ("add_to_cart", self.carts, 30),
            ("purchase", self.buys, 120),
        ):
            r, c = np.nonzero(mask)
            it = self.shown.slates.ids[r, c]
            frame = pd.DataFrame(
                {
                    "user_id": world.user_ids[self.users[r]],
                    "item_id": world.item_ids[it],
                    "type": kind,
                    "value": world.prices[it] if kind == "purchase" else np.nan,
                    "session_id": np.asarray(self.session_ids, dtype=object)[r],
                    "timestamp": pd.to_datetime(
                        self.starts[r] + 40 * c + offset + 5, unit="s", utc=True
                    ),
                    "_visit": r,
                }
            )
            out.append(frame)
        if self.queries is not None:
            rows = np.arange(self.users.size)
            out.insert(0, pd.DataFrame({
                "user_id": world.user_ids[self.users],
                "item_id": None,
                "type": "search",
                "value": np.nan,
                "query": np.asarray(self.queries, dtype=object),
                "session_id": np.asarray(self.session_ids, dtype=object),
                "timestamp": pd.to_datetime(self.starts + 1, unit="s", utc=True),
                "_visit": rows,
            }))  # fmt: skip
        events = pd.concat(out, ignore_index=True).sort_values(
            ["timestamp", "_visit"], kind="stable"
        )
        if "query" not in events.columns:
            events["query"] = None
        if self.shown.request_ids is not None:
            ids = np.asarray(self.shown.request_ids, dtype=object)
            events["request_id"] = ids[events["_visit"].to_numpy()]
            # the search asked for the list: its outcomes, not the search, carry the id
            events.loc[events["type"] == "search", "request_id"] = None
        return events.drop(columns="_visit").reset_index(drop=True)


class Driver(Protocol):
    """Where lists come from and where what the shoppers did goes."""

    def show(self, arm: str, users: np.ndarray, k: int, rng: np.random.Generator) -> Shown:
        """The lists of `arm` for a batch of visits by `users`."""
        ...

    def search(
        self, arm: str, users: np.ndarray, queries: np.ndarray, k: int, rng: np.random.Generator
    ) -> Shown:
        """The first k search results of each visit's query."""
        ...

    def record(self, visits: Visits) -> None:
        """Take note of what the shoppers did (so the next lists can react)."""
        ...


class LibraryDriver:
    """In-process: each arm is a `Policy`; histories start from the world's generated events
    (`train`, users x items) and grow with every simulated click, cart and purchase,
    weighted like the library weighs events (`EVENT_TYPE_WEIGHTS`).

    `half_life_days` weighs a history by recency the way the server does
    (`EngineConfig.history_half_life_days`: an event that many days older than the
    shopper's newest counts half): pass `train` decayed to the simulation's start
    (`history_matrix(world, half_life_days)`) and every simulated event is weighted
    `2 ** (days since the start / half_life_days)`, which leaves the weights of one
    shopper's events in the server's proportions (scaling a whole history changes no
    ranking of a history-based model). None: every event counts fully, however old.
    """

    def __init__(
        self,
        world: World,
        policies: Mapping[str, Policy],
        train: sp.csr_matrix,
        half_life_days: float | None = None,
    ):
        if train.shape != (world.n_users, world.n_items):
            raise ConfigError(
                f"history matrix {train.shape} does not match the world "
                f"({world.n_users} users x {world.n_items} items)"
            )
        if half_life_days is not None and not half_life_days > 0:
            raise ConfigError(f"half_life_days must be > 0 or None, got {half_life_days}")
        self.world, self.policies = world, dict(policies)
        self.half_life_days = half_life_days
        self.base = sp.csr_matrix(train, dtype=np.float32)
        self._search: Any = None
        self.reset()

    def reset(self) -> None:
        """Forget every simulated event (the next simulation starts from `train` again)."""
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        self._extra: sp.csr_matrix | None = None

    def histories(self, users: np.ndarray) -> sp.csr_matrix:
        """Current histories (generated events + simulated ones) of `users`."""
        if self._rows:
            coo = sp.coo_matrix(
                (
                    np.concatenate(self._vals),
                    (np.concatenate(self._rows), np.concatenate(self._cols)),
                ),
                shape=self.base.shape,
            )
            self._extra = (self._extra if self._extra is not None else 0) + coo.tocsr()
            self._rows, self._cols, self._vals = [], [], []
        rows = self.base[users]
        if self._extra is not None:
            rows = rows + self._extra[users]
        rows = sp.csr_matrix(rows, dtype=np.float32)
        rows.sort_indices()
        return rows

    def show(self, arm: str, users: np.ndarray, k: int, rng: np.random.Generator) -> Shown:
        """The arm's policy's slates from the users' current histories."""
        policy = self.policies[arm]
        return Shown(policy.slates(users, self.histories(users), k, rng))

    def search(
        self, arm: str, users: np.ndarray, queries: np.ndarray, k: int, rng: np.random.Generator
    ) -> Shown:
        """The library's search (`SearchService`, lexical, built once over the world's
        catalogue and history; the same for every arm) for each query."""
        if self._search is None:
            from shelfwise.search.build import build_search_service

            log.info("indexing %d items for simulated searches", self.world.n_items)
            self._search = build_search_service(
                self.world.store.items, self.world.history, rerank=False
            )
        ids = np.full((users.size, k), -1, dtype=np.int64)
        for row, query in enumerate(queries.tolist()):
            found = np.asarray(self._search.search(str(query), per_page=k).rows[:k])
            ids[row, : found.size] = found
        return Shown(Slates(ids))

    def record(self, visits: Visits) -> None:
        """Add the visits' clicks (+view), carts and purchases to the histories."""
        ids = visits.shown.slates.ids
        weight = (
            visits.clicks * (EVENT_TYPE_WEIGHTS["click"] + EVENT_TYPE_WEIGHTS["view"])
            + visits.carts * EVENT_TYPE_WEIGHTS["add_to_cart"]
            + visits.buys * EVENT_TYPE_WEIGHTS["purchase"]
        )
        if self.half_life_days is not None:
            weight = weight * 2.0 ** (visits.day / self.half_life_days)
        r, c = np.nonzero(weight)
        self._rows.append(visits.users[r])
        self._cols.append(ids[r, c])
        self._vals.append(weight[r, c].astype(np.float32))


def server_half_life() -> float | None:
    """The server's default history half-life (`EngineConfig.history_half_life_days`)."""
    from shelfwise.serving.config import EngineConfig

    return EngineConfig().history_half_life_days


def library_driver(
    world: World,
    arms: Mapping[str, str],
    params: dict[str, dict[str, Any]] | None = None,
    half_life_days: float | str | None = "server",
) -> LibraryDriver:
    """A `LibraryDriver` for arms `{name: CONFIG}` (see `policies.library_policies`): the
    models fitted on the world's whole history, the histories they score weighted by recency
    with `half_life_days` (`"server"`: the server's default, so `default` is what the
    server would serve; None: no decay)."""
    from shelfwise.experiments.simulate.policies import history_matrix, library_policies

    half_life = server_half_life() if half_life_days == "server" else half_life_days
    if isinstance(half_life, str):
        raise ConfigError(f"half_life_days must be a number, None or 'server', got {half_life!r}")
    train = history_matrix(world)
    policies = library_policies(world, dict(arms), params, train)
    scored = train if half_life is None else history_matrix(world, half_life)
    return LibraryDriver(world, policies, scored, half_life)


def assign(user_ids: Sequence[str], arms: Sequence[str], salt: str) -> np.ndarray:
    """The arm index of each user, equal weights, by the live experiments' own hash of
    (salt, user id) (`experiments.assignment.unit_hash`): the same user lands in the same
    arm here and in a live experiment with the same salt and equally weighted variants."""
    from shelfwise.experiments.assignment import unit_hash

    n = len(arms)
    if n == 0:
        raise ConfigError("an experiment needs at least one arm")
    u = np.array([unit_hash(str(uid), salt) for uid in user_ids], dtype=np.float64)
    edges = np.arange(1, n + 1) / n
    return np.minimum(np.searchsorted(edges, u, side="right"), n - 1).astype(np.int64)


@dataclass
class SimulationResult:
    """Per-user totals of a simulated test (`totals`: one row per simulated user with its
    arm) and the settings it ran with."""

    arms: list[str]
    days: int
    totals: pd.DataFrame
    settings: dict[str, object] = field(default_factory=dict)


_TOTALS = (
    "sessions",
    "searches",
    "impressions",
    "clicks",
    "expected_clicks",
    "carts",
    "purchases",
    "purchase_sessions",
    "click_sessions",
    "revenue",
)


def _react(
    world: World,
    arm: str,
    day: int,
    users: np.ndarray,
    starts: np.ndarray,
    session_ids: list[str],
    shown: Shown,
    exposures: dict[int, int],
    rng: np.random.Generator,
    intents: np.ndarray | None,
    queries: np.ndarray | None,
) -> Visits:
    """What the shoppers of one batch of visits do with what they were shown (the choice
    model), counting the exposures."""
    k = world.model.slate_size
    ids = np.asarray(shown.slates.ids, dtype=np.int64)
    if ids.shape != (users.size, k):
        raise ConfigError(f"arm {arm!r} returned slates of shape {ids.shape}")
    keys = users[:, None].astype(np.int64) * world.n_items + np.maximum(ids, 0)
    seen = np.array([exposures.get(int(x), 0) for x in keys.ravel()]).reshape(ids.shape)
    moods = world.visit_moods(users.size, rng)
    p_click = world.click_probabilities(users, ids, seen, moods, intents)
    clicks = rng.random(ids.shape) < p_click
    items = np.maximum(ids, 0)
    carts = clicks & (rng.random(ids.shape) < world.cart_given_click(users[:, None], items))
    buys = carts & (rng.random(ids.shape) < world.buy_given_cart(users[:, None], items))
    for x in keys[ids >= 0].tolist():
        exposures[x] = exposures.get(x, 0) + 1
    return Visits(
        arm, day, users, starts, session_ids, shown, clicks, carts, buys, p_click, queries
    )


def _add(
    totals: dict[str, np.ndarray], visits: Visits, world: World, satisfaction: np.ndarray
) -> None:
    """Add a batch of visits to the per-user totals and the shoppers' satisfaction."""
    m, us = world.model, visits.users
    ids = visits.shown.slates.ids
    n_clicks, n_buys = visits.clicks.sum(axis=1), visits.buys.sum(axis=1)
    revenue = (visits.buys * world.prices[np.maximum(ids, 0)]).sum(axis=1)
    for name, values in (
        ("sessions", 1),
        ("searches", int(visits.queries is not None)),
        ("impressions", (ids >= 0).sum(axis=1)),
        ("clicks", n_clicks),
        ("expected_clicks", visits.expected_clicks.sum(axis=1)),
        ("carts", visits.carts.sum(axis=1)),
        ("purchases", n_buys),
        ("purchase_sessions", n_buys > 0),
        ("click_sessions", n_clicks > 0),
        ("revenue", revenue),
    ):
        np.add.at(totals[name], us, values)
    satisfaction[us] += (
        m.click_satisfaction * n_clicks
        + m.purchase_satisfaction * n_buys
        + m.miss_satisfaction * (n_clicks == 0)
    )


def simulate(
    world: World,
    driver: Driver,
    arms: Sequence[str],
    days: int = 14,
    users: int | None = None,
    seed: int = 0,
    salt: str = "simulate",
    progress: bool = False,
) -> SimulationResult:
    """Run a `days`-long A/B test of `arms` over the first `users` shoppers of the world
    (default: all); see the module doc. Deterministic for a given seed (with the library
    driver)."""
    if days < 1:
        raise ConfigError(f"days must be >= 1, got {days}")
    n = world.n_users if users is None else int(users)
    if not 1 <= n <= world.n_users:
        raise ConfigError(f"users must be between 1 and {world.n_users}, got {users}")
    if len(set(arms)) != len(arms) or not arms:
        raise ConfigError(f"arms must be distinct names, got {list(arms)}")
    model, rng = world.model, np.random.default_rng(seed)
    arm_of = assign(world.user_ids[:n].tolist(), arms, salt)
    k = model.slate_size
    decay = 0.5 ** (1.0 / model.satisfaction_half_life_days)
    satisfaction = np.zeros(n)
    exposures: dict[int, int] = {}
    totals = {name: np.zeros(n) for name in _TOTALS}
    first_day = np.full(n, -1, dtype=np.int64)
    returned = np.zeros(n, dtype=bool)
    n_sessions = 0
    bar = tqdm(total=days, desc="simulating", unit="day", disable=not progress)
    for day in range(days):
        rates = world.visit_rates(np.arange(n), satisfaction)
        count = np.minimum(rng.poisson(rates), model.max_sessions_per_day)
        starts = world.session_starts(np.arange(n), day, rng)
        for rnd in range(int(count.max(initial=0))):
            visitors = np.flatnonzero(count > rnd)
            for a, arm in enumerate(arms):
                us = visitors[arm_of[visitors] == a]
                if us.size == 0:
                    continue
                groups: list[tuple[np.ndarray, bool]] = [(us, False)]
                if model.search_rate > 0:  # no draw without searches: runs stay comparable
                    searching = rng.random(us.size) < model.search_rate
                    groups = [(us[~searching], False), (us[searching], True)]
                for group, is_search in groups:
                    if group.size == 0:
                        continue
                    intents = queries = None
                    if is_search:
                        intents = world.intents(group, rng)
                        queries = world.queries(intents, rng)
                        shown = driver.search(arm, group, queries, k, rng)
                    else:
                        shown = driver.show(arm, group, k, rng)
                    session_ids = [f"sim-{n_sessions + i}" for i in range(group.size)]
                    n_sessions += group.size
                    visits = _react(
                        world, arm, day, group, starts[group] + 3 * 3600 * rnd, session_ids,
                        shown, exposures, rng, intents, queries,
                    )  # fmt: skip
                    driver.record(visits)
                    _add(totals, visits, world, satisfaction)
        visited = count > 0
        back = (
            visited & (first_day >= 0) & (day - first_day <= RETURN_WINDOW_DAYS) & (day > first_day)
        )
        returned |= back
        first_day = np.where(visited & (first_day < 0), day, first_day)
        satisfaction *= decay
        bar.update()
        bar.set_postfix(sessions=n_sessions)
    bar.close()
    frame = pd.DataFrame({"user_id": world.user_ids[:n], "arm": np.asarray(arms)[arm_of]})
    for name in _TOTALS:
        frame[name] = totals[name]
    eligible = (first_day >= 0) & (first_day + RETURN_WINDOW_DAYS <= days - 1)
    frame["first_day"] = first_day
    frame["return_eligible"] = eligible
    frame["returned_7d"] = returned & eligible
    settings: dict[str, object] = {
        "days": days, "users": n, "seed": seed, "salt": salt, "shopper_model": model.model_dump(),
    }  # fmt: skip
    return SimulationResult(list(arms), days, frame, settings)
