"""Search queries made from the words of the item a shopper then clicks."""

from __future__ import annotations

import numpy as np

from shelfwise.data.demo.catalogue import Catalog
from shelfwise.data.demo.lexicon import LEAVES

__all__ = ["make_queries", "typo"]

# How often each query form is used, in the order of the branches in `make_queries`.
_FORM_WEIGHTS = (0.3, 0.15, 0.2, 0.1, 0.1, 0.05, 0.05, 0.05)
_BRAND_FORM = 2  # "brand noun", the form that `brand_bias` makes more likely


def make_queries(
    rng: np.random.Generator, cat: Catalog, items: np.ndarray, brand_bias: float = 0.0
) -> np.ndarray:
    """A search query per item built from its words; some lower-case, some with typos.

    The forms are noun, adjective + noun, brand + noun, variant + noun, the leaf's name,
    noun + size (brand + leaf name when the item has no size), brand alone and adjective +
    variant + noun; `brand_bias` adds to the weight of brand + noun.
    """
    w, n = cat.words, items.size
    p = np.array(_FORM_WEIGHTS)
    p[_BRAND_FORM] += brand_bias
    form = rng.choice(p.size, size=n, p=p / p.sum())
    lower = rng.random(n) < 0.7
    slip = rng.random(n) < 0.07
    r1, r2 = rng.random(n), rng.random(n)
    out = np.empty(n, dtype=object)
    for k, i in enumerate(items.tolist()):
        noun, brand, adj = w["noun"][i], w["brand"][i], w["adjective"][i]
        variant, size = w["variant"][i], w["size"][i]
        leaf_name = LEAVES[cat.leaf[i]].name
        f = form[k]
        if f == 0:
            q = noun
        elif f == 1:
            q = f"{adj} {noun}"
        elif f == 2:
            q = f"{brand} {noun}"
        elif f == 3:
            q = f"{variant} {noun}"
        elif f == 4:
            q = leaf_name
        elif f == 5:
            q = f"{noun} {size}" if size else f"{brand} {leaf_name}"
        elif f == 6:
            q = brand
        else:
            q = f"{adj} {variant} {noun}"
        if lower[k]:
            q = q.lower()
        if slip[k]:
            q = typo(q, float(r1[k]), float(r2[k]))
        out[k] = q
    return out


def typo(text: str, r1: float, r2: float) -> str:
    """A plausible typing slip in one letter of `text`: swapped, dropped or doubled.

    `r1` and `r2` in [0, 1) pick the letter (never the first) and the kind of slip; text
    with fewer than four lower-case letters is returned unchanged.
    """
    letters = [i for i, ch in enumerate(text) if ch.isalpha() and ch.islower()]
    if len(letters) < 4:
        return text
    i = letters[1 + int(r1 * (len(letters) - 2))]  # never the first letter
    kind = int(r2 * 3)
    if kind == 0 and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1].islower():
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]
