"""The catalogue: items per leaf, brands, titles, prices, popularity and descriptions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.data.demo.config import DAY, DemoConfig, epoch
from shelfwise.data.demo.lexicon import BRANDS, LEAVES, LEXICON, TOP_CATEGORIES
from shelfwise.data.frames import conform

__all__ = ["Catalog", "make_catalog", "pick", "soft_lower"]


@dataclass
class Catalog:
    """The catalog as arrays (one row per item) plus the words its titles are made of."""

    frame: pd.DataFrame
    leaf: np.ndarray
    top: np.ndarray
    brand: np.ndarray
    price: np.ndarray
    rel_log_price: np.ndarray  # log(price / leaf median)
    quality: np.ndarray
    popularity: np.ndarray  # share within the leaf
    created: np.ndarray  # unix seconds
    consumable: np.ndarray
    leaf_items: list[np.ndarray]
    words: dict[str, list[str]]  # brand, adjective, variant, noun, size per item
    brand_names: list[str]
    brand_top: np.ndarray


def pick(rng: np.random.Generator, lengths: np.ndarray) -> np.ndarray:
    """A uniform index below `lengths[i]` for every row (0 where the length is 0)."""
    return np.floor(rng.random(lengths.size) * np.maximum(lengths, 1)).astype(np.int64)


def make_catalog(rng: np.random.Generator, cfg: DemoConfig) -> Catalog:
    """`cfg.n_items` items spread over the leaves of the vocabulary, drawn from `rng`."""
    n, n_leaves = cfg.n_items, len(LEAVES)
    closing_sentences = LEXICON.closing_sentences
    tops = np.array([TOP_CATEGORIES.index(leaf.top) for leaf in LEAVES])
    brand_names = [b for top in TOP_CATEGORIES for b in BRANDS[top]]
    brand_top = np.array([t for t, top in enumerate(TOP_CATEGORIES) for _ in BRANDS[top]])
    brand_offset = np.concatenate([[0], np.cumsum([len(BRANDS[t]) for t in TOP_CATEGORIES])])

    # items per leaf: one each, the rest by a random assortment depth
    depth = rng.gamma(4.0, size=n_leaves)
    counts = 1 + rng.multinomial(n - n_leaves, depth / depth.sum())
    leaf = rng.permutation(np.repeat(np.arange(n_leaves), counts))
    top = tops[leaf]

    # brands: a few big brands per top category, a long tail of small ones
    brand = np.empty(n, dtype=np.int64)
    brand_weight = rng.gamma(1.5, size=len(brand_names))
    for t in range(len(TOP_CATEGORIES)):
        rows = np.flatnonzero(top == t)
        lo, hi = brand_offset[t], brand_offset[t + 1]
        w = brand_weight[lo:hi]
        brand[rows] = lo + rng.choice(hi - lo, size=rows.size, p=w / w.sum())
    brand_tier = rng.normal(0.0, 0.22, size=len(brand_names))  # premium vs budget brands

    n_nouns = np.array([len(lf.nouns) for lf in LEAVES])[leaf]
    n_adj = np.array([len(lf.adjectives) for lf in LEAVES])[leaf]
    n_var = np.array([len(lf.variants) for lf in LEAVES])[leaf]
    n_size = np.array([len(lf.sizes) for lf in LEAVES])[leaf]
    noun, adj, var, size = (pick(rng, k) for k in (n_nouns, n_adj, n_var, n_size))

    def title(i: int) -> str:
        lf = LEAVES[leaf[i]]
        text = (
            f"{brand_names[brand[i]]} {lf.adjectives[adj[i]]} {lf.variants[var[i]]} "
            f"{lf.nouns[noun[i]]}"
        )
        return f"{text}, {lf.sizes[size[i]]}" if lf.sizes else text

    titles = [title(i) for i in range(n)]
    for _ in range(8):  # re-draw duplicate titles so nearly all are unique
        dup = np.flatnonzero(pd.Series(titles).duplicated().to_numpy())
        if dup.size == 0:
            break
        adj[dup] = pick(rng, n_adj[dup])
        var[dup] = pick(rng, n_var[dup])
        size[dup] = pick(rng, n_size[dup])
        for j in dup.tolist():
            titles[j] = title(j)

    # prices: log-normal around the leaf median, shifted by brand tier and size
    medians = np.array([lf.median_price for lf in LEAVES])
    sigmas = np.array([lf.price_sigma for lf in LEAVES])
    steps = np.array([lf.size_step for lf in LEAVES])
    size_centre = (np.maximum(n_size, 1) - 1) / 2.0
    log_price = (
        np.log(medians[leaf])
        + sigmas[leaf] * rng.standard_normal(n) * 0.85
        + brand_tier[brand]
        + steps[leaf] * (size - size_centre)
    )
    raw = np.exp(log_price)
    cents = np.where(rng.random(n) < 0.8, 0.99, np.where(rng.random(n) < 0.5, 0.49, 0.95))
    price = np.where(raw >= 10, np.floor(raw) + cents, np.floor(raw * 2) / 2 + 0.49)
    price = np.round(np.maximum(price, 0.99), 2)
    rel_log_price = np.log(price) - np.log(medians[leaf])

    # popularity: a power law within each leaf (random rank), nudged by quality
    quality = rng.standard_normal(n)
    order = np.lexsort((rng.random(n), leaf))
    rank = np.empty(n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    raw_pop = (rank + 1.0) ** -1.25 * np.exp(0.25 * quality)
    popularity = raw_pop / np.bincount(leaf, weights=raw_pop, minlength=n_leaves)[leaf]

    seconds_end = epoch(cfg.last_day) + DAY
    created = seconds_end - 365 * DAY + np.floor(rng.random(n) * 365 * DAY).astype(np.int64)
    # the best sellers have been around for a while
    veteran = max(epoch(cfg.first_day) - 30 * DAY, seconds_end - 365 * DAY)
    created = np.where(rank < 3, np.minimum(created, veteran), created)
    in_stock = rng.random(n) < 0.92
    rating_avg = np.round(np.clip(4.05 + 0.45 * quality, 1.0, 5.0), 1)
    rating_count = rng.poisson(popularity * counts[leaf] * 40.0 + 0.5)

    # descriptions: 1-3 sentences from templates with the title's words
    opener = rng.integers(0, 3, size=n)
    use = pick(rng, np.array([len(lf.uses) for lf in LEAVES])[leaf])
    feature = pick(rng, np.array([len(lf.features) for lf in LEAVES])[leaf])
    has_feature = rng.random(n) < 0.8
    has_close = rng.random(n) < 0.45
    close = rng.integers(0, len(closing_sentences) + 2, size=n)

    words: dict[str, list[str]] = {k: [] for k in ("brand", "adjective", "variant", "noun")}
    words["size"] = []
    descriptions: list[str] = []
    attributes: list[str] = []
    for i in range(n):
        lf = LEAVES[leaf[i]]
        b, a, v, nn = (
            brand_names[brand[i]],
            lf.adjectives[adj[i]],
            lf.variants[var[i]],
            lf.nouns[noun[i]],
        )
        s = lf.sizes[size[i]] if lf.sizes else ""
        for key, value in (("brand", b), ("adjective", a), ("variant", v), ("noun", nn)):
            words[key].append(value)
        words["size"].append(s)
        shown = soft_lower(v) if lf.variant_key in LEXICON.lower_variant_keys else v
        # the lexicon guarantees a phrase for every variant key
        phrase = LEXICON.variant_phrases[lf.variant_key].format(v=shown)
        u = lf.uses[use[i]]
        if opener[i] == 0:
            text = f"{b}'s {soft_lower(a)} {soft_lower(nn)} {phrase}, made for {u}."
        elif opener[i] == 1:
            text = f"Made for {u}: the {b} {a} {nn} {phrase}."
        else:
            text = f"{a} {soft_lower(nn)} by {b}, {phrase}, ideal for {u}."
        sentences = [text]
        if has_feature[i]:
            sentences.append(lf.features[feature[i]] + ".")
        if has_close[i]:
            if close[i] >= len(closing_sentences) and s:
                sentences.append(f"Available in {s}.")
            else:
                template = closing_sentences[close[i] % len(closing_sentences)]
                sentences.append(template.format(brand=b, rating=f"{rating_avg[i]:.1f}"))
        descriptions.append(" ".join(sentences))
        attrs: dict[str, Any] = {lf.variant_key: v}
        if s:
            attrs[lf.size_key] = s
        attrs["rating_avg"] = float(rating_avg[i])
        attrs["rating_count"] = int(rating_count[i])
        attributes.append(json.dumps(attrs, sort_keys=True, ensure_ascii=False))

    width = max(6, len(str(n)))
    frame = pd.DataFrame(
        {
            "item_id": [f"SKU-{i + 1:0{width}d}" for i in range(n)],
            "title": titles,
            "description": descriptions,
            "category": [LEAVES[k].path for k in leaf],
            "brand": [brand_names[k] for k in brand],
            "price": price,
            "currency": "USD",
            "in_stock": in_stock,
            "attributes": attributes,
            "created_at": created.astype("datetime64[s]"),
        }
    )
    order_in_leaf = np.argsort(leaf, kind="stable")
    leaf_items = np.split(order_in_leaf, np.cumsum(counts)[:-1])
    return Catalog(
        frame=conform("items", frame),
        leaf=leaf,
        top=top,
        brand=brand,
        price=price,
        rel_log_price=rel_log_price,
        quality=quality,
        popularity=popularity,
        created=created,
        consumable=np.array([lf.consumable for lf in LEAVES])[leaf],
        leaf_items=leaf_items,
        words=words,
        brand_names=brand_names,
        brand_top=brand_top,
    )


def soft_lower(text: str) -> str:
    """Lower-case words for use inside a sentence, keeping acronyms and proper words."""
    proper = LEXICON.proper_words
    return " ".join(
        w if w in proper or w.isupper() or any(c.isupper() for c in w[1:]) else w.lower()
        for w in text.split(" ")
    )
