"""The canonical frames of a simulated store: events with ids in time order, users, latent."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from shelfwise.data.demo.config import DAY, DemoStore
from shelfwise.data.demo.lexicon import LEAVES, LEXICON, TOP_CATEGORIES
from shelfwise.data.demo.sessions import TYPE_NAMES, Batch, Simulation
from shelfwise.data.frames import conform

__all__ = ["assemble", "categorical"]


def categorical(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    """n draws of the keys of `weights`, as an object array."""
    keys = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def assemble(sim: Simulation) -> DemoStore:
    """The canonical frames of `sim` (run all its phases first), with ids in time order.

    Events after the window are dropped; users get a sign-up time before their first event
    and attributes drawn from the vocabulary's weights (from the simulation's `rng`).
    """
    cfg, cat, t = sim.cfg, sim.cat, sim.tastes
    ev = Batch.concat(sim.batches)
    keep = ev.ts < sim.window_end
    ev = Batch(*(getattr(ev, f)[keep] for f in Batch.__dataclass_fields__))

    # sessions numbered by their first event
    first_ts = np.full(sim.n_sessions, np.iinfo(np.int64).max)
    has = ev.session >= 0
    np.minimum.at(first_ts, ev.session[has], ev.ts[has])
    live = np.flatnonzero(first_ts < np.iinfo(np.int64).max)
    live = live[np.lexsort((live, first_ts[live]))]
    rank = np.full(sim.n_sessions, -1)
    rank[live] = np.arange(live.size)
    sess_rank = np.where(has, rank[np.maximum(ev.session, 0)], -1)

    order = np.lexsort((ev.key, sess_rank, ev.ts))
    ev = Batch(*(getattr(ev, f)[order] for f in Batch.__dataclass_fields__))
    sess_rank = sess_rank[order]
    n = ev.ts.size

    s_width = max(7, len(str(live.size)))
    e_width = max(7, len(str(n)))
    sess_ids = np.array([f"S-{i + 1:0{s_width}d}" for i in range(live.size)] + [None], object)
    item_ids = cat.frame["item_id"].to_numpy(dtype=object)
    u_width = max(5, len(str(cfg.n_users)))
    user_ids = np.array([f"U-{i + 1:0{u_width}d}" for i in range(cfg.n_users)], object)
    events = pd.DataFrame(
        {
            "event_id": [f"E-{i + 1:0{e_width}d}" for i in range(n)],
            "user_id": user_ids[ev.user],
            "item_id": np.where(ev.item >= 0, item_ids[np.maximum(ev.item, 0)], None),
            "type": TYPE_NAMES[ev.etype],
            "value": ev.value.astype(float),
            "query": ev.query,
            "session_id": sess_ids[sess_rank],  # -1 -> None
            "timestamp": ev.ts.astype("datetime64[s]"),
        }
    )

    # users: sign-up before their first event
    rng = sim.rng
    first_seen = np.full(cfg.n_users, sim.window_end)
    np.minimum.at(first_seen, ev.user, ev.ts)
    recent = rng.random(cfg.n_users) < 0.35
    lead = np.where(
        recent,
        rng.integers(120, 3 * DAY, size=cfg.n_users),
        rng.integers(3 * DAY, 730 * DAY, size=cfg.n_users),
    )
    created = first_seen - lead
    weights = LEXICON.shopper_attributes
    # drawn in this order (not the JSON's sorted one): the order fixes the random stream
    attrs = {
        name: categorical(rng, weights[name], cfg.n_users)
        for name in ("country", "signup_channel", "device", "age_band")
    }
    newsletter = rng.random(cfg.n_users) < 0.35
    users = pd.DataFrame(
        {
            "user_id": user_ids,
            "attributes": [
                json.dumps(
                    {
                        "age_band": attrs["age_band"][i],
                        "country": attrs["country"][i],
                        "device": attrs["device"][i],
                        "newsletter": bool(newsletter[i]),
                        "signup_channel": attrs["signup_channel"][i],
                    },
                    sort_keys=True,
                )
                for i in range(cfg.n_users)
            ],
            "created_at": created.astype("datetime64[s]"),
        }
    )
    latent = {
        "top_categories": np.array(TOP_CATEGORIES, dtype=object),
        "leaves": np.array([lf.path for lf in LEAVES], dtype=object),
        "brands": np.array(cat.brand_names, dtype=object),
        "top_preference": t.top_preference,
        "leaf_preference": t.leaf_preference,
        "brand_affinity": t.brand_affinity,
        "favourite_brands": t.favourite_brands,
        "price_preference": t.price_preference,
        "activity": t.activity,
        "preferred_hour": t.preferred_hour,
        "item_leaf": cat.leaf,
        "item_brand": cat.brand,
        "item_popularity": cat.popularity,
        "item_quality": cat.quality,
    }
    return DemoStore(
        items=cat.frame,
        users=conform("users", users),
        events=conform("events", events),
        config=cfg,
        latent=latent,
    )
