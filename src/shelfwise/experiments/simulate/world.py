"""The simulated world: a demo store, its shoppers' hidden tastes and the choice model.

A `World` continues the demo generator (`shelfwise.data.demo`): the same catalogue and the
same shoppers, whose generated events are the history a policy is trained on, and whose
hidden tastes drive what they do next. `ShopperModel` is the choice model, with ground-truth
probabilities so the true click-through and conversion of any list are known:

* a shopper looks at position p (1 = top) with probability `1 / log2(1 + p)` (position
  bias), times `fatigue ** n` where n is how often this shopper was already shown the item
  (repeated exposures lose attention);
* a looked-at item is clicked with probability `sigmoid(click_intercept + c + click_taste *
  u + v)` where c is the shopper's own clickiness (normal, sd `clickiness_sd`), v the visit's
  mood (normal, sd `visit_sd`, drawn per visit) and the utility u is the shopper's taste for
  the item's category, their affinity for its brand, how well its price suits their price
  band and the item's quality;
* in a search visit (`search_rate`) the shopper wants one item, drawn from their tastes
  (category preference, then popularity x match within it), searches with a query made
  from its words, and items of its category (the item itself twice) gain `intent_boost`
  utility;
* a clicked item is added to the cart with probability `sigmoid(cart_intercept +
  cart_taste * m)` and a carted item bought with `sigmoid(buy_intercept + buy_taste * m)`,
  where m is the demo's own match of brand, price and quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shelfwise.data.demo import DemoConfig, DemoStore
from shelfwise.data.demo.catalogue import Catalog
from shelfwise.data.demo.config import DAY, epoch
from shelfwise.data.demo.generator import generate_simulation
from shelfwise.data.demo.lexicon import LEAVES
from shelfwise.data.demo.queries import make_queries
from shelfwise.data.demo.sessions import Simulation
from shelfwise.data.demo.tastes import Tastes
from shelfwise.errors import ConfigError

__all__ = ["ShopperModel", "World", "examination", "sigmoid"]


class ShopperModel(BaseModel):
    """How simulated shoppers visit and react to a list (see the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slate_size: int = Field(default=10, ge=1, le=100)
    """Items shown per visit."""
    fatigue: float = Field(default=0.75, gt=0.0, le=1.0)
    """Attention kept for each earlier exposure of the same item to the same shopper."""
    click_intercept: float = -3.0
    click_taste: float = Field(default=0.9, ge=0.0)
    clickiness_sd: float = Field(default=1.0, ge=0.0, le=5.0)
    """Spread of the shoppers' own propensity to click (a normal offset of the click
    logit drawn once per shopper): some shoppers click much more than others."""
    visit_sd: float = Field(default=1.0, ge=0.0, le=5.0)
    """Spread of a visit's own mood (a normal offset of the click logit drawn per visit):
    a quick look at the home page, or an evening of browsing."""
    cart_intercept: float = -1.2
    cart_taste: float = Field(default=0.8, ge=0.0)
    buy_intercept: float = 0.2
    buy_taste: float = Field(default=0.5, ge=0.0)
    sessions_per_user_day: float = Field(default=0.3, gt=0.0, le=5.0)
    """Mean visits per shopper per day before satisfaction changes it."""
    max_sessions_per_day: int = Field(default=3, ge=1, le=24)
    search_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    """Share of visits that are a search for an item the shopper has in mind (their query is
    made from its words, as the demo's are); the others browse recommendations."""
    intent_boost: float = Field(default=1.5, ge=0.0, le=10.0)
    """In a search, the utility bonus of items of the wanted item's category (twice that
    for the wanted item itself)."""
    satisfaction_boost: float = Field(default=0.6, ge=0.0, le=3.0)
    """Visit rate x exp(boost * tanh(s)), where s grows with clicks and purchases."""
    satisfaction_half_life_days: float = Field(default=7.0, gt=0.0)
    click_satisfaction: float = 0.25
    purchase_satisfaction: float = 1.0
    miss_satisfaction: float = -0.3
    """Change of s after a visit without any click."""

    @classmethod
    def make(cls, **params: float) -> ShopperModel:
        """A model from keyword parameters; a bad one is a `ConfigError` naming it."""
        try:
            return cls(**params)  # type: ignore[arg-type]
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"shopper model: {problems}") from exc


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64))))


def examination(positions: np.ndarray, exposures: np.ndarray | None, fatigue: float) -> np.ndarray:
    """Probability that a shopper looks at 0-based `positions`: 1 / log2(2 + position)
    (position 1 of a list is always looked at), times `fatigue ** exposures`."""
    e = 1.0 / np.log2(2.0 + np.asarray(positions, dtype=np.float64))
    if exposures is not None:
        e = e * np.power(fatigue, np.asarray(exposures, dtype=np.float64))
    return np.asarray(e)


@dataclass(eq=False)
class World:
    """A demo store and its shoppers, ready to be simulated (see the module doc).

    Users and items are dense indices in the order of `store.users` and `store.items`.
    Day 0 of a simulation is the day after the demo store's last day.
    """

    store: DemoStore
    catalog: Catalog
    tastes: Tastes
    model: ShopperModel = field(default_factory=ShopperModel)

    @classmethod
    def generate(
        cls,
        config: DemoConfig | None = None,
        model: ShopperModel | None = None,
        progress: bool = False,
    ) -> World:
        """The demo store of `config` (`shelfwise generate-demo` writes the same one) with its
        shoppers' tastes."""
        store, sim = generate_simulation(config or DemoConfig(), progress=progress)
        return cls.from_simulation(store, sim, model)

    @classmethod
    def from_simulation(
        cls, store: DemoStore, sim: Simulation, model: ShopperModel | None = None
    ) -> World:
        """A world over a generated store and the demo simulation that made it."""
        return cls(store, sim.cat, sim.tastes, model or ShopperModel())

    # -- ids and the clock ----------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Shoppers in the world."""
        return int(self.tastes.activity.size)

    @property
    def n_items(self) -> int:
        """Items in the catalogue."""
        return int(self.catalog.leaf.size)

    @cached_property
    def user_ids(self) -> np.ndarray:
        """External user ids, by user index."""
        return self.store.users["user_id"].to_numpy(dtype=object)

    @cached_property
    def item_ids(self) -> np.ndarray:
        """External item ids, by item index."""
        return self.store.items["item_id"].to_numpy(dtype=object)

    @property
    def prices(self) -> np.ndarray:
        """Item prices."""
        return np.asarray(self.catalog.price, dtype=np.float64)

    @property
    def start(self) -> int:
        """Unix seconds at midnight UTC of simulated day 0."""
        return epoch(self.store.config.last_day) + DAY

    @cached_property
    def history(self) -> pd.DataFrame:
        """The generated events (the pre-period every policy may learn from)."""
        return self.store.events

    # -- ground truth ---------------------------------------------------------------------
    def _price_fit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        diff = self.catalog.rel_log_price[items] - self.tastes.price_preference[users]
        return np.asarray(-(diff**2) / (2.0 * self.tastes.price_tolerance[users] ** 2))

    def match(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """How much a shopper likes an item once seen (brand, price band, quality); the
        demo generator's carting and buying signal. Broadcasts like numpy."""
        t, cat = self.tastes, self.catalog
        return np.asarray(
            0.6 * t.brand_affinity[users, cat.brand[items]]
            + self._price_fit(users, items)
            + 0.35 * cat.quality[items]
        )

    def utility(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """A shopper's true interest in an item: the log of their taste for its category
        (relative to a uniform taste, floored) plus `match`. Broadcasts like numpy."""
        leaf_taste = self.tastes.leaf_preference[users, self.catalog.leaf[items]] * len(LEAVES)
        return np.asarray(np.log(leaf_taste + 0.05) + self.match(users, items))

    @cached_property
    def clickiness(self) -> np.ndarray:
        """Each shopper's standard normal click propensity (drawn from the demo seed)."""
        rng = np.random.default_rng([self.store.config.seed, 16])
        return rng.standard_normal(self.n_users)

    def click_given_look(
        self, users: np.ndarray, items: np.ndarray, moods: np.ndarray | float = 0.0
    ) -> np.ndarray:
        """P(click | the shopper looks at the item), in a visit of mood `moods` (a logit
        offset, broadcast like `users`; see `visit_moods`)."""
        m = self.model
        own = m.clickiness_sd * self.clickiness[users] + moods
        return sigmoid(m.click_intercept + own + m.click_taste * self.utility(users, items))

    def visit_moods(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """The click-logit offsets of n visits (normal, sd `visit_sd`)."""
        return self.model.visit_sd * rng.standard_normal(n)

    def cart_given_click(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(add to cart | click)."""
        m = self.model
        return sigmoid(m.cart_intercept + m.cart_taste * self.match(users, items))

    def buy_given_cart(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(purchase | in the cart)."""
        m = self.model
        return sigmoid(m.buy_intercept + m.buy_taste * self.match(users, items))

    def click_probabilities(
        self,
        users: np.ndarray,
        slates: np.ndarray,
        exposures: np.ndarray | None = None,
        moods: np.ndarray | None = None,
        intents: np.ndarray | None = None,
    ) -> np.ndarray:
        """True P(click) of every slot of `slates` (users x positions; id -1 = empty slot,
        probability 0) for `users` (one per row), given earlier `exposures` of each slot's
        item to its shopper (default none), each visit's mood (default 0: an average
        visit) and, for a search, the item each visit wants (`intents`, -1: none)."""
        slates = np.asarray(slates, dtype=np.int64)
        users = np.asarray(users, dtype=np.int64)
        filled = slates >= 0
        items = np.where(filled, slates, 0)
        look = examination(np.arange(slates.shape[1])[None, :], exposures, self.model.fatigue)
        mood = 0.0 if moods is None else np.asarray(moods, dtype=np.float64)[:, None]
        if intents is not None:
            mood = mood + self.model.click_taste * self.intent_bonus(intents, items)
        p = look * self.click_given_look(users[:, None], items, mood)
        return np.where(filled, p, 0.0)

    def intent_bonus(self, intents: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Utility bonus of `items` (rows x positions) for visits wanting `intents` (one
        item per row, -1 for none): `intent_boost` for its category, twice for itself."""
        want = np.asarray(intents, dtype=np.int64)[:, None]
        leaf = self.catalog.leaf
        same_leaf = (want >= 0) & (leaf[np.maximum(want, 0)] == leaf[items])
        same_item = (want >= 0) & (want == items)
        return np.asarray(self.model.intent_boost * (same_leaf.astype(float) + same_item))

    def intents(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """An item each of `users` has in mind: a category from their preference, then an
        item of it by popularity x match (a Gumbel-max draw)."""
        cat, t = self.catalog, self.tastes
        cum = np.cumsum(t.leaf_preference[users], axis=1)
        u = rng.random(users.size) * cum[:, -1]
        leaves = np.minimum((cum < u[:, None]).sum(axis=1), len(LEAVES) - 1)
        out = np.empty(users.size, dtype=np.int64)
        for leaf in np.unique(leaves).tolist():
            rows = np.flatnonzero(leaves == leaf)
            items = cat.leaf_items[leaf]
            score = np.log(cat.popularity[items])[None, :] + self.match(
                users[rows][:, None], items[None, :]
            )
            pick = np.argmax(score + rng.gumbel(size=score.shape), axis=1)
            out[rows] = items[pick]
        return out

    def queries(self, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A search query for each of `items`, made from its words like the demo's queries
        (noun, brand + noun, adjective + noun, ..., some lower-case, some with a typo)."""
        return make_queries(rng, self.catalog, np.asarray(items, dtype=np.int64))

    def purchase_probabilities(
        self,
        users: np.ndarray,
        slates: np.ndarray,
        exposures: np.ndarray | None = None,
        moods: np.ndarray | None = None,
    ) -> np.ndarray:
        """True P(the slot's item is bought) of every slot (see `click_probabilities`)."""
        slates = np.asarray(slates, dtype=np.int64)
        users = np.asarray(users, dtype=np.int64)[:, None]
        items = np.where(slates >= 0, slates, 0)
        funnel = self.cart_given_click(users, items) * self.buy_given_cart(users, items)
        return self.click_probabilities(users[:, 0], slates, exposures, moods) * funnel

    def visit_rates(self, users: np.ndarray, satisfaction: np.ndarray) -> np.ndarray:
        """Expected visits per day of `users` given their current satisfaction."""
        m = self.model
        activity = self.tastes.activity
        base = activity[users] / max(float(activity.mean()), 1e-12)
        return np.asarray(
            m.sessions_per_user_day * base * np.exp(m.satisfaction_boost * np.tanh(satisfaction))
        )

    def session_starts(self, users: np.ndarray, day: int, rng: np.random.Generator) -> np.ndarray:
        """Unix seconds of a visit on simulated `day` for each of `users`, near their
        preferred hour."""
        hour = (self.tastes.preferred_hour[users] + 1.5 * rng.standard_normal(users.size)) % 24
        return self.start + day * DAY + np.minimum((hour * 3600).astype(np.int64), DAY - 600)
