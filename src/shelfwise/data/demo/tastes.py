"""Shoppers' hidden tastes: categories, brands, price band, activity and preferred hour."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfwise.data.demo.catalogue import Catalog
from shelfwise.data.demo.config import DemoConfig
from shelfwise.data.demo.lexicon import LEAVES, LEXICON, TOP_CATEGORIES

__all__ = ["Tastes", "make_tastes"]


@dataclass
class Tastes:
    """Latent tastes, one row per user."""

    top_preference: np.ndarray
    leaf_preference: np.ndarray
    brand_affinity: np.ndarray
    favourite_brands: np.ndarray
    price_preference: np.ndarray
    price_tolerance: np.ndarray
    activity: np.ndarray
    preferred_hour: np.ndarray


def make_tastes(rng: np.random.Generator, cfg: DemoConfig, cat: Catalog) -> Tastes:
    """A taste profile for each of `cfg.n_users` shoppers over the catalogue `cat`."""
    u, n_top, n_leaves = cfg.n_users, len(TOP_CATEGORIES), len(LEAVES)
    leaf_top = np.array([TOP_CATEGORIES.index(lf.top) for lf in LEAVES])

    # Dirichlet over top categories, concentrated on a few (alphas sum to 1.2)
    alpha = 1.2 * np.array([LEXICON.top_share[t] for t in TOP_CATEGORIES])
    g = rng.gamma(alpha, size=(u, n_top)) + 1e-12
    top_pref = g / g.sum(axis=1, keepdims=True)
    # within each top category, a Dirichlet over its leaves
    h = rng.gamma(0.6, size=(u, n_leaves)) + 1e-12
    group = np.zeros((n_leaves, n_top))
    group[np.arange(n_leaves), leaf_top] = 1.0
    within = h / (h @ group)[:, leaf_top]
    leaf_pref = top_pref[:, leaf_top] * within

    # brand affinity: mild likes and dislikes, plus three favourites from liked categories
    n_brands = len(cat.brand_names)
    affinity = 0.35 * rng.standard_normal((u, n_brands))
    brand_logp = np.log(top_pref[:, cat.brand_top] + 1e-9)
    keys = brand_logp + rng.gumbel(size=(u, n_brands))
    favourites = np.argsort(-keys, axis=1, kind="stable")[:, :3]
    np.put_along_axis(
        affinity, favourites, np.take_along_axis(affinity, favourites, 1) + 1.4, axis=1
    )

    price_pref = rng.normal(0.0, 0.35, size=u)
    price_tol = rng.uniform(0.45, 0.9, size=u)
    sigma = 1.0
    activity = np.minimum(
        rng.lognormal(np.log(cfg.sessions_per_user_day) - sigma**2 / 2, sigma, size=u), 4.0
    )
    # preferred hour: evening people, lunch-breakers, early birds and night owls
    kind = rng.choice(4, size=u, p=[0.6, 0.15, 0.15, 0.1])
    centre = np.array([20.3, 12.5, 8.0, 23.3])[kind]
    spread = np.array([1.3, 1.0, 1.0, 1.2])[kind]
    hour = (centre + spread * rng.standard_normal(u)) % 24.0
    return Tastes(
        top_preference=top_pref,
        leaf_preference=leaf_pref,
        brand_affinity=affinity,
        favourite_brands=favourites,
        price_preference=price_pref,
        price_tolerance=price_tol,
        activity=activity,
        preferred_hour=hour,
    )
