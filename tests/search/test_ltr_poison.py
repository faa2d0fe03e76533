"""The re-ranker's history cut is not moved by an absurd timestamp already in the store."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import conform
from shelfwise.errors import DataError
from shelfwise.search.ltr import LTRConfig, PersonalisedReranker
from shelfwise.store import Store

from .test_ltr import ITEMS, T0


def _rows(poisoned: bool) -> pd.DataFrame:
    rows = []
    # history: day 0 to 2; searches with clicks: days 10 to 12 (after the 2/3 cut of the span)
    for day in range(3):
        rows.append((f"h{day}", "U9", "a", "purchase", None, None, T0 + pd.Timedelta(days=day)))
    for n in range(12):
        at = T0 + pd.Timedelta(days=10 + n / 6)
        query, item = ("red dress", "a") if n % 2 else ("summer dress", "c")
        rows.append((f"s{n}", f"U{n}", None, "search", query, f"S{n}", at))
        rows.append((f"c{n}", f"U{n}", item, "click", None, f"S{n}", at + pd.Timedelta(seconds=9)))
    if poisoned:
        rows.append(("x", "U0", "b", "view", None, None, pd.Timestamp("9999-12-31 23:59:59")))
    frame = pd.DataFrame(
        rows, columns=["event_id", "user_id", "item_id", "type", "query", "session_id", "timestamp"]
    )
    frame["value"] = np.nan
    return conform("events", frame)


def test_a_future_event_in_the_store_does_not_move_the_history_cut(store: Store) -> None:
    store.ingest(events=_rows(poisoned=True))  # straight into the store, past any edge check
    events = store.events()
    assert str(events["timestamp"].max()) == "9999-12-31 23:59:59"
    config = LTRConfig(n_estimators=5, min_data_in_leaf=1)
    poisoned = PersonalisedReranker.train(ITEMS, events, config=config)
    clean = PersonalisedReranker.train(ITEMS, _rows(poisoned=False), config=config)
    # the same model as without the poisoned row: same popularity, same scores
    np.testing.assert_array_equal(poisoned.popularity, clean.popularity)
    np.testing.assert_array_equal(poisoned.purchases, clean.purchases)
    x = np.random.default_rng(0).random((4, len(clean.model.feature_names)))
    np.testing.assert_allclose(poisoned.model.predict(x), clean.model.predict(x))
    # counting the poisoned row (a `now` after it), the cut lands after every search
    with pytest.raises(DataError, match="nothing to learn"):
        PersonalisedReranker.train(
            ITEMS, events, config=config, now=datetime(9999, 12, 31, 23, 59, 59)
        )
    # an explicit `now` before the searches leaves nothing to learn from either
    with pytest.raises(DataError, match="nothing to learn"):
        PersonalisedReranker.train(ITEMS, events, config=config, now=T0 + pd.Timedelta(days=5))
