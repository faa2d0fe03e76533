"""The demo generator's large-leaf path (`Simulation._choose_sampled`): it must draw items
with the probabilities the exact Gumbel-max over the whole leaf gives."""

import numpy as np

from shelfwise.data.demo import DemoConfig
from shelfwise.data.demo import sessions as sessions_module
from shelfwise.data.demo.generator import generate_simulation


def _exact_probabilities(sim, user, items, when):
    cat, t = sim.cat, sim.tastes
    logw = (
        np.log(cat.popularity[items])
        + t.brand_affinity[user, cat.brand[items]]
        + sim._price_fit(np.array([user]), items)
    )
    logw = np.where(cat.created[items] <= when, logw, -np.inf)
    p = np.exp(logw - logw.max())
    return p / p.sum()


def test_sampled_choice_follows_the_exact_distribution(monkeypatch):
    _, sim = generate_simulation(DemoConfig(seed=5, n_items=4000, n_users=50, days=7))
    leaf = int(np.argmax([len(items) for items in sim.cat.leaf_items]))
    items = sim.cat.leaf_items[leaf]
    assert items.size > 60
    n = 40_000
    user, when = 3, sim.window_end - 20 * 86_400  # some items do not exist yet
    expected = _exact_probabilities(sim, user, items, when)
    assert 0 < (expected == 0).sum() < items.size  # the existence filter matters here

    def frequencies(threshold):
        monkeypatch.setattr(sessions_module, "EXACT_LEAF_ITEMS", threshold)
        picks = sim._choose(np.full(n, user), np.full(n, leaf), np.full(n, when, dtype=np.int64))
        position = {int(item): k for k, item in enumerate(items)}
        assert all(int(p) in position for p in np.unique(picks))  # always from the leaf
        return np.bincount([position[int(p)] for p in picks], minlength=items.size) / n

    exact = frequencies(10**9)
    sampled = frequencies(10)
    assert sampled[expected == 0].sum() < 0.01  # items not yet created are (almost) never drawn
    # total variation distance to the exact probabilities: both within sampling noise
    # (about 0.02 here; drawing by popularity alone would be about 0.24 away)
    assert 0.5 * np.abs(exact - expected).sum() < 0.05
    assert 0.5 * np.abs(sampled - expected).sum() < 0.05
