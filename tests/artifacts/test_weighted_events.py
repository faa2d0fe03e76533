import pandas as pd

from shelfwise.artifacts.bundle import weighted_events
from shelfwise.data.matrix import InteractionWeights


def test_weighted_events_keeps_item_events_of_types_that_weigh():
    events = pd.DataFrame(
        {
            "item_id": ["a", "b", None, "c", "d", "e"],
            "type": ["view", "search", "view", "purchase", "click", "view"],
        }
    )
    kept = weighted_events(events, InteractionWeights(search=0.0, click=0.0))
    assert kept["item_id"].tolist() == ["a", "c", "e"]  # no search, click, or item-less row
    everything = weighted_events(events, InteractionWeights(search=1.0, click=1.0))
    assert everything["item_id"].tolist() == ["a", "b", "c", "d", "e"]
