"""`generate`: the phases of the demo store in order, behind a progress bar."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from shelfwise.data.demo.assemble import assemble
from shelfwise.data.demo.catalogue import make_catalog
from shelfwise.data.demo.config import DemoConfig, DemoStore
from shelfwise.data.demo.sessions import Simulation
from shelfwise.data.demo.tastes import make_tastes

__all__ = ["generate", "generate_simulation"]


def generate(config: DemoConfig | None = None, progress: bool = False) -> DemoStore:
    """Generate a demo store; the same config always gives the same store.

    One random generator seeded by `config.seed` feeds every phase in a fixed order
    (catalogue, tastes, sessions, repeat purchases, ratings, frames), so reordering the
    phases or the vocabulary changes the output. `progress` shows a bar on stderr.
    """
    return generate_simulation(config, progress)[0]


def generate_simulation(
    config: DemoConfig | None = None, progress: bool = False
) -> tuple[DemoStore, Simulation]:
    """`generate`, also returning the `Simulation` it ran: its `cat` (the catalogue as
    arrays) and `tastes` (every shopper's hidden tastes) are what the shopper simulator
    (`shelfwise.experiments.simulate`) continues from."""
    cfg = config or DemoConfig()
    rng = np.random.default_rng(cfg.seed)
    with tqdm(total=6, desc="demo store", unit="step", disable=not progress) as bar:
        bar.set_postfix_str("catalog")
        catalog = make_catalog(rng, cfg)
        bar.update()
        bar.set_postfix_str("tastes")
        sim = Simulation(rng, cfg, catalog, make_tastes(rng, cfg, catalog))
        bar.update()
        for name, phase in (
            ("sessions", sim.main_sessions),
            ("repeat purchases", sim.repeat_purchases),
            ("ratings", sim.ratings),
        ):
            bar.set_postfix_str(name)
            phase()
            bar.update()
        bar.set_postfix_str("frames")
        store = assemble(sim)
        bar.update()
    return store, sim
