"""A deterministic generator of a believable demo online store.

`make demo` runs on a store this package invents, since real shop data may not be
redistributed. The store has a three-level category tree with hand-written vocabularies
(product nouns, adjectives, materials or colours, sizes with units, invented brands),
log-normal prices around a realistic median per category, and shoppers with latent tastes:
a preference over categories concentrated on a few, favourite brands, a preferred price
band, a heavy-tailed activity level and a preferred hour of the day.

Behaviour is simulated session by session, vectorised with numpy:

* sessions follow a daily rhythm (evenings busy, nights quiet, each shopper's own hour)
  and a weekly one (weekends busier);
* a session may open with a `search` whose query is made from the words of the item the
  shopper then clicks (noun, brand + noun, adjective + noun, ..., sometimes lower-case,
  sometimes with a typo), followed by `click`s and `view`s;
* items are chosen by a choice model: the shopper's category tastes, brand affinity and
  price band, times a power-law popularity within each category;
* the funnel view -> add_to_cart -> purchase converts at realistic rates, and some
  purchases are rated later (1-5, higher for items matching the shopper's taste);
* consumables (skin care, coffee, dog food, ...) are bought again after a replenishment
  cycle.

The same `DemoConfig` (seed included) always gives identical frames and byte-identical
files; `DemoStore.latent` exposes the hidden tastes so tests can check the behaviour.

Modules, in the order the generator uses them:

* `lexicon`: the word tables, read and validated once from `vocab/*.toml`;
* `config`: `DemoConfig`, `DemoStore` and the clock;
* `catalogue`: items, titles, prices, popularity and descriptions;
* `tastes`: the shoppers' hidden tastes;
* `queries`: search queries from an item's words, with typos;
* `sessions`: sessions, the funnel, repeat purchases and ratings as event batches;
* `assemble`: the canonical item, user and event frames;
* `generator` and `writer`: the entry points `generate` and `write_demo`.
"""

from shelfwise.data.demo.config import DemoConfig, DemoStore
from shelfwise.data.demo.generator import generate
from shelfwise.data.demo.lexicon import BRANDS, LEAVES, TOP_CATEGORIES, Leaf
from shelfwise.data.demo.writer import write_demo

__all__ = [
    "BRANDS",
    "LEAVES",
    "TOP_CATEGORIES",
    "DemoConfig",
    "DemoStore",
    "Leaf",
    "generate",
    "write_demo",
]
