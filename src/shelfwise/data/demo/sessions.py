"""Shopping behaviour: sessions, the funnel, repeat purchases and ratings, as event batches.

Sessions follow a daily rhythm (evenings busy, nights quiet, each shopper's own hour) and a
weekly one (weekends busier); items are chosen by the shopper's tastes times a power-law
popularity; views convert to carts and purchases at realistic rates; consumables are bought
again after their cycle and some purchases are rated later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from shelfwise.data.demo.catalogue import Catalog
from shelfwise.data.demo.config import DAY, DemoConfig, epoch
from shelfwise.data.demo.lexicon import LEAVES, LEXICON, TOP_CATEGORIES
from shelfwise.data.demo.queries import make_queries
from shelfwise.data.demo.tastes import Tastes

__all__ = [
    "CART",
    "CLICK",
    "PURCHASE",
    "RATING",
    "SEARCH",
    "TYPE_NAMES",
    "VIEW",
    "Batch",
    "Simulation",
]

# Event type codes used internally; the frames carry the names.
SEARCH, CLICK, VIEW, CART, PURCHASE, RATING = range(6)
TYPE_NAMES = np.array(["search", "click", "view", "add_to_cart", "purchase", "rating"], object)

# Relative traffic by hour of day (local time): quiet nights, a lunch bump, busy evenings.
_HOUR_PROFILE = np.array(
    [0.45, 0.28, 0.16, 0.1, 0.08, 0.1, 0.22, 0.45, 0.65, 0.75, 0.8, 0.88,
     1.0, 0.95, 0.85, 0.82, 0.88, 1.0, 1.25, 1.55, 1.8, 1.75, 1.35, 0.85],
)  # fmt: skip
# Relative traffic by weekday, Monday first.
_WEEKDAY_PROFILE = np.array([0.92, 0.9, 0.92, 0.96, 1.04, 1.32, 1.3])
#: A leaf with more items than this is sampled from `CANDIDATES` items drawn by popularity
#: (then brand affinity x price fit picks among them) instead of scoring every item of the
#: leaf per event, whose cost grows with events x catalogue; smaller leaves (every store up
#: to about 40k items: the demo's, the tests') are sampled exactly, so those stores are unchanged.
EXACT_LEAF_ITEMS = 2048
CANDIDATES = 256


@dataclass
class Batch:
    """Events under construction; sessions are global indices, -1 for none."""

    session: np.ndarray
    user: np.ndarray
    item: np.ndarray  # -1 for none
    etype: np.ndarray
    value: np.ndarray
    query: np.ndarray  # object: str or None
    ts: np.ndarray  # unix seconds
    key: np.ndarray  # order within the session

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """All batches as one."""
        return Batch(
            *(
                np.concatenate([getattr(b, f) for b in batches])
                for f in ("session", "user", "item", "etype", "value", "query", "ts", "key")
            )
        )


class Simulation:
    """Sessions, the funnel, repeat purchases and ratings, vectorised over all users.

    Run the phases in order (`main_sessions`, `repeat_purchases`, `ratings`); each appends
    to `batches`, drawing from the one shared `rng`.
    """

    def __init__(
        self, rng: np.random.Generator, cfg: DemoConfig, cat: Catalog, tastes: Tastes
    ) -> None:
        self.rng, self.cfg, self.cat, self.tastes = rng, cfg, cat, tastes
        self.window_start = epoch(cfg.first_day)
        self.window_end = epoch(cfg.last_day) + DAY
        self.batches: list[Batch] = []
        self.n_sessions = 0
        self.z_norm = 0.0
        leaf_share = np.array([LEXICON.top_share[lf.top] for lf in LEAVES])
        per_top = np.bincount([TOP_CATEGORIES.index(lf.top) for lf in LEAVES])
        self.leaf_share = leaf_share / per_top[[TOP_CATEGORIES.index(lf.top) for lf in LEAVES]]
        self.leaf_share /= self.leaf_share.sum()

    # ---- building blocks -------------------------------------------------------------

    def _hours(self, users: np.ndarray) -> np.ndarray:
        """Seconds after midnight for sessions of `users` (own hour or the shop's rhythm)."""
        rng, n = self.rng, users.size
        own = rng.random(n) < 0.55
        h_own = (self.tastes.preferred_hour[users] + 1.2 * rng.standard_normal(n)) % 24.0
        h_shop = rng.choice(24, size=n, p=_HOUR_PROFILE / _HOUR_PROFILE.sum()) + rng.random(n)
        hours = np.where(own, h_own, h_shop)
        return np.minimum((hours * 3600).astype(np.int64), DAY - 1)

    def _leaves(self, users: np.ndarray, explore: float = 0.06) -> np.ndarray:
        """A leaf per row: from the user's leaf preference, sometimes anywhere."""
        rng, n = self.rng, users.size
        cum = np.cumsum(self.tastes.leaf_preference[users], axis=1)
        u = rng.random(n) * cum[:, -1]
        mine = np.minimum((cum < u[:, None]).sum(axis=1), len(LEAVES) - 1)
        anywhere = rng.choice(len(LEAVES), size=n, p=self.leaf_share)
        return np.where(rng.random(n) < explore, anywhere, mine)

    def _price_fit(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Log-weight of how well item prices suit users' price bands (broadcasts)."""
        t = self.tastes
        diff = self.cat.rel_log_price[items] - t.price_preference[users]
        return -(diff**2) / (2.0 * t.price_tolerance[users] ** 2)

    def _choose(self, users: np.ndarray, leaves: np.ndarray, times: np.ndarray) -> np.ndarray:
        """An item per row from its leaf: popularity x brand affinity x price fit.

        Items are only chosen once they exist (created before `times`), unless none do.
        Sampling is a Gumbel-max over each leaf's items, in chunks to bound memory; a leaf
        of more than `EXACT_LEAF_ITEMS` items goes through `_choose_sampled`.
        """
        rng, cat, t = self.rng, self.cat, self.tastes
        out = np.empty(users.size, dtype=np.int64)
        order = np.argsort(leaves, kind="stable")
        bounds = np.searchsorted(leaves[order], np.arange(len(LEAVES) + 1))
        for leaf in range(len(LEAVES)):
            rows = order[bounds[leaf] : bounds[leaf + 1]]
            if rows.size == 0:
                continue
            items = cat.leaf_items[leaf]
            if items.size > EXACT_LEAF_ITEMS:
                out[rows] = self._choose_sampled(users[rows], items, times[rows])
                continue
            base = np.log(cat.popularity[items])
            chunk = max(1, 2_000_000 // items.size)
            for lo in range(0, rows.size, chunk):
                r = rows[lo : lo + chunk]
                us = users[r]
                logw = (
                    base[None, :]
                    + t.brand_affinity[np.ix_(us, cat.brand[items])]
                    + self._price_fit(us[:, None], items[None, :])
                )
                exists = cat.created[items][None, :] <= times[r][:, None]
                exists |= ~exists.any(axis=1, keepdims=True)
                logw = np.where(exists, logw, -np.inf)
                pick = np.argmax(logw + rng.gumbel(size=logw.shape), axis=1)
                out[r] = items[pick]
        return out

    def _choose_sampled(
        self, users: np.ndarray, items: np.ndarray, times: np.ndarray
    ) -> np.ndarray:
        """`_choose` within one large leaf by sampling-importance-resampling: per row
        `CANDIDATES` items drawn by popularity, then a Gumbel-max over them by brand affinity
        x price fit (those that exist at `times`, unless none do)."""
        rng, cat, t = self.rng, self.cat, self.tastes
        cum = np.cumsum(cat.popularity[items])
        out = np.empty(users.size, dtype=np.int64)
        chunk = max(1, 2_000_000 // CANDIDATES)
        for lo in range(0, users.size, chunk):
            us, when = users[lo : lo + chunk], times[lo : lo + chunk]
            draws = np.searchsorted(cum, rng.random((us.size, CANDIDATES)) * cum[-1])
            cand = items[np.minimum(draws, items.size - 1)]
            logw = t.brand_affinity[us[:, None], cat.brand[cand]] + self._price_fit(
                us[:, None], cand
            )
            exists = cat.created[cand] <= when[:, None]
            exists |= ~exists.any(axis=1, keepdims=True)
            logw = np.where(exists, logw, -np.inf)
            pick = np.argmax(logw + rng.gumbel(size=logw.shape), axis=1)
            out[lo : lo + chunk] = cand[np.arange(us.size), pick]
        return out

    def _match(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """How much a user likes an item once seen (drives carting and buying)."""
        return (
            0.6 * self.tastes.brand_affinity[users, self.cat.brand[items]]
            + self._price_fit(users, items)
            + 0.35 * self.cat.quality[items]
        )

    def _quantity(self, items: np.ndarray) -> np.ndarray:
        """Units per cart: mostly one, consumables sometimes two or three."""
        r = self.rng.random(items.size)
        cons = self.cat.consumable[items]
        return 1 + np.where(cons, (r < 0.18).astype(int) + (r < 0.05), (r < 0.04).astype(int))

    def _funnel(
        self, sessions: np.ndarray, users: np.ndarray, items: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(carted, quantity, purchased) for views; an item is carted once per session."""
        rng, cfg = self.rng, self.cfg
        z = self._match(users, items)
        p_cart = np.minimum(cfg.cart_rate * np.exp(z - self.z_norm), 0.75)
        cart = rng.random(items.size) < p_cart
        # keep only the first cart of an item within a session
        key = sessions.astype(np.int64) * (self.cat.leaf.size + 1) + items
        carted = np.flatnonzero(cart)
        _, first = np.unique(key[carted], return_index=True)
        keep = np.zeros(items.size, dtype=bool)
        keep[carted[first]] = True
        cart &= keep
        qty = self._quantity(items)
        p_buy = np.clip(cfg.purchase_rate + 0.12 * np.tanh(z - self.z_norm), 0.02, 0.95)
        buy = cart & (rng.random(items.size) < p_buy)
        return cart, qty, buy

    def _emit(
        self,
        sess_user: np.ndarray,
        sess_start: np.ndarray,
        sess_query: np.ndarray,
        slot_session: np.ndarray,
        slot_pos: np.ndarray,
        slot_item: np.ndarray,
        click: np.ndarray,
        cart: np.ndarray,
        qty: np.ndarray,
        buy: np.ndarray,
    ) -> Batch:
        """Events of a batch of sessions (local indices), timed from each session's start.

        Order within a session: [search] then per viewed item [click] view [add_to_cart],
        then the purchases at checkout. Gaps are whole seconds, so timestamps are strictly
        increasing within a session.
        """
        rng, cat = self.rng, self.cat
        offset = self.n_sessions
        searched = np.flatnonzero(np.array([q is not None for q in sess_query], dtype=bool))
        c, k, b = np.flatnonzero(click), np.arange(slot_item.size), np.flatnonzero(cart)
        p = np.flatnonzero(buy)

        def lognorm(median: float, sigma: float, n: int) -> np.ndarray:
            return rng.lognormal(np.log(median), sigma, size=n)

        session = np.concatenate([searched, slot_session[c], slot_session, slot_session[b]])
        session = np.concatenate([session, slot_session[p]])
        item = np.concatenate([np.full(searched.size, -1), slot_item[c], slot_item])
        item = np.concatenate([item, slot_item[b], slot_item[p]])
        etype = np.concatenate(
            [
                np.full(searched.size, SEARCH),
                np.full(c.size, CLICK),
                np.full(k.size, VIEW),
                np.full(b.size, CART),
                np.full(p.size, PURCHASE),
            ]
        )
        key = np.concatenate(
            [
                np.zeros(searched.size, dtype=np.int64),
                3 * slot_pos[c] + 1,
                3 * slot_pos + 2,
                3 * slot_pos[b] + 3,
                1_000_000_000 + slot_pos[p],
            ]
        )
        value = np.concatenate(
            [
                np.full(searched.size + c.size + k.size, np.nan),
                qty[b].astype(float),
                np.round(cat.price[slot_item[p]] * qty[p], 2),
            ]
        )
        gap = np.concatenate(
            [
                np.zeros(searched.size),
                np.where(slot_pos[c] == 0, lognorm(9, 0.6, c.size), lognorm(22, 0.8, c.size)),
                np.where(click, rng.integers(1, 4, size=k.size), lognorm(40, 0.8, k.size)),
                lognorm(25, 0.7, b.size),
                np.zeros(p.size),
            ]
        )
        query = np.empty(session.size, dtype=object)
        query[: searched.size] = sess_query[searched]

        order = np.lexsort((key, session))
        session, item, etype, key, value, gap, query = (
            a[order] for a in (session, item, etype, key, value, gap, query)
        )
        first = np.ones(session.size, dtype=bool)
        first[1:] = session[1:] != session[:-1]
        prev_type = np.concatenate([[-1], etype[:-1]])
        is_buy = etype == PURCHASE
        checkout = is_buy & (prev_type != PURCHASE)
        gap = np.where(checkout, lognorm(110, 0.5, gap.size), gap)
        gap = np.where(is_buy & ~checkout, rng.integers(1, 3, size=gap.size), gap)
        gap = np.clip(np.rint(gap), 1, 1800).astype(np.int64)
        gap[first] = 0
        total = np.cumsum(gap)
        group = np.cumsum(first) - 1
        ts = sess_start[session] + total - total[np.flatnonzero(first)][group]

        self.n_sessions += sess_user.size
        return Batch(
            session=session + offset,
            user=sess_user[session],
            item=item,
            etype=etype,
            value=value,
            query=query,
            ts=ts,
            key=key,
        )

    # ---- the phases ------------------------------------------------------------------

    def main_sessions(self) -> None:
        """Each user's own sessions over the window."""
        rng, cfg, t = self.rng, self.cfg, self.tastes
        n_sess = np.maximum(1, rng.poisson(t.activity * cfg.days))
        n_sess = np.minimum(n_sess, 4 * cfg.days)
        users = np.repeat(np.arange(cfg.n_users), n_sess)
        days = np.arange(cfg.days)
        weekday = np.array([(cfg.first_day + timedelta(days=int(d))).weekday() for d in days])
        day_weight = _WEEKDAY_PROFILE[weekday] * (1.0 + 0.15 * days / max(cfg.days, 1))
        day = rng.choice(cfg.days, size=users.size, p=day_weight / day_weight.sum())
        start = self.window_start + day * DAY + self._hours(users)

        n_views = np.minimum(rng.geometric(1 / 4.3, size=users.size), 40)
        slot_session = np.repeat(np.arange(users.size), n_views)
        slot_pos = np.arange(slot_session.size) - np.repeat(np.cumsum(n_views) - n_views, n_views)
        slot_user = users[slot_session]
        focus = self._leaves(users)
        wander = self._leaves(slot_user)
        stay = (slot_pos == 0) | (rng.random(slot_session.size) < 0.72)
        slot_leaf = np.where(stay, focus[slot_session], wander)
        slot_item = self._choose(slot_user, slot_leaf, start[slot_session])

        z = self._match(slot_user, slot_item)
        self.z_norm = float(np.log(np.mean(np.exp(z))))
        cart, qty, buy = self._funnel(slot_session, slot_user, slot_item)
        # durable goods are bought once per user: later carts of them are abandoned
        once = np.flatnonzero(buy & ~self.cat.consumable[slot_item])
        once = once[np.lexsort((slot_pos[once], start[slot_session[once]]))]
        owner = slot_user[once].astype(np.int64) * self.cat.leaf.size + slot_item[once]
        _, first = np.unique(owner, return_index=True)
        again = np.ones(once.size, dtype=bool)
        again[first] = False
        buy[once[again]] = False

        searched = rng.random(users.size) < cfg.search_rate
        click = rng.random(slot_session.size) < 0.45
        click |= (slot_pos == 0) & searched[slot_session]
        query = np.full(users.size, None, dtype=object)
        s = np.flatnonzero(searched)
        query[s] = make_queries(rng, self.cat, slot_item[slot_pos == 0][s])
        self.batches.append(
            self._emit(
                users, start, query, slot_session, slot_pos, slot_item, click, cart, qty, buy
            )
        )

    def repeat_purchases(self) -> None:
        """Consumables bought again after their cycle, in short replenishment sessions."""
        rng, cfg, cat = self.rng, self.cfg, self.cat
        cycle = np.array([lf.cycle_days for lf in LEAVES])
        batch = self.batches[0]
        for _ in range(12):
            bought = np.flatnonzero(
                (batch.etype == PURCHASE) & (batch.item >= 0) & cat.consumable[batch.item]
            )
            bought = bought[rng.random(bought.size) < cfg.repeat_rate]
            items, users = batch.item[bought], batch.user[bought]
            due = batch.ts[bought] + (
                cycle[cat.leaf[items]] * rng.lognormal(0.0, 0.3, size=bought.size) * DAY
            ).astype(np.int64)
            day = (due - self.window_start) // DAY
            ok = day < cfg.days
            if not ok.any():
                break
            items, users, day, earliest = items[ok], users[ok], day[ok], due[ok]
            start = self.window_start + day * DAY + self._hours(users)
            start = np.maximum(start, earliest)
            n = users.size

            extra = rng.poisson(0.8, size=n)
            n_views = 1 + extra
            slot_session = np.repeat(np.arange(n), n_views)
            slot_pos = np.arange(slot_session.size) - np.repeat(
                np.cumsum(n_views) - n_views, n_views
            )
            slot_user = users[slot_session]
            is_first = slot_pos == 0
            slot_item = np.empty(slot_session.size, dtype=np.int64)
            slot_item[is_first] = items
            browse = np.flatnonzero(~is_first)
            slot_item[browse] = self._choose(
                slot_user[browse],
                cat.leaf[items][slot_session[browse]],
                start[slot_session[browse]],
            )
            cart, qty, buy = self._funnel(slot_session, slot_user, slot_item)
            # the item they came back for is usually carted and bought
            cart[is_first] = rng.random(n) < 0.9
            buy[is_first] = cart[is_first] & (rng.random(n) < 0.9)

            searched = rng.random(n) < 0.4
            click = rng.random(slot_session.size) < 0.35
            click |= is_first & searched[slot_session]
            query = np.full(n, None, dtype=object)
            s = np.flatnonzero(searched)
            query[s] = make_queries(rng, cat, items[s], brand_bias=0.25)
            batch = self._emit(
                users, start, query, slot_session, slot_pos, slot_item, click, cart, qty, buy
            )
            self.batches.append(batch)

    def ratings(self) -> None:
        """Some purchases are rated a few days later; better-matching items score higher."""
        rng, cat, t = self.rng, self.cat, self.tastes
        events = Batch.concat(self.batches)
        bought = np.flatnonzero(events.etype == PURCHASE)
        bought = bought[rng.random(bought.size) < self.cfg.rating_rate]
        users, items = events.user[bought], events.item[bought]
        taste = (
            t.brand_affinity[users, cat.brand[items]]
            + 2.0 * len(LEAVES) / 10.0 * t.leaf_preference[users, cat.leaf[items]]
            + 0.8 * self._price_fit(users, items)
        )
        score = (
            3.15 + 0.75 * cat.quality[items] + 0.55 * taste + 0.8 * rng.standard_normal(items.size)
        )
        value = np.clip(np.rint(score), 1, 5)
        delay = (rng.lognormal(np.log(4.0), 0.8, size=items.size) * DAY).astype(np.int64) + 3600
        n = bought.size
        self.batches.append(
            Batch(
                session=np.full(n, -1),
                user=users,
                item=items,
                etype=np.full(n, RATING),
                value=value,
                query=np.full(n, None, dtype=object),
                ts=events.ts[bought] + delay,
                key=np.zeros(n, dtype=np.int64),
            )
        )
