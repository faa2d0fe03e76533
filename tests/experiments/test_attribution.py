"""Attribution and search analytics on hand-built impressions and events (known answers)."""

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event
from shelfwise.experiments.attribution import (
    list_outcomes,
    records,
    slot_outcomes,
    summarise,
    with_rates,
)
from shelfwise.experiments.search_analytics import normalise_query, search_analytics
from shelfwise.store import Store
from shelfwise.store.measure import impressions_frame

T0 = datetime(2026, 3, 1, 9)


def imps() -> pd.DataFrame:
    frame = impressions_frame(
        [
            {"request_id": "r1", "timestamp": T0, "user_id": "u1", "list_type": "search",
             "query": "Red Shoe", "items": ["A", "B", "C"], "variant": "a"},
            {"request_id": "r2", "timestamp": T0, "user_id": "u2", "list_type": "search",
             "query": "red  shoe", "items": ["B", "A"], "variant": "b"},
            {"request_id": "r3", "timestamp": T0 + timedelta(days=1), "user_id": "u1",
             "list_type": "search", "query": "xyzzy", "items": [], "n_results": 0},
            {"request_id": "r4", "timestamp": T0, "user_id": "u3",
             "list_type": "recommendations", "items": ["C", "A"], "propensities": [0.5, 1.0]},
        ]
    )  # fmt: skip
    frame["items"] = [["A", "B", "C"], ["B", "A"], [], ["C", "A"]]
    frame["propensities"] = [None, None, None, [0.5, 1.0]]
    return frame


def outcomes() -> pd.DataFrame:
    rows = [
        ("r1", "u1", "B", "click", None),
        ("r1", "u1", "B", "click", None),  # a second click on the same item counts once
        ("r1", "u1", "B", "add_to_cart", None),
        ("r1", "u1", "B", "purchase", 12.5),
        ("r2", "u2", "A", "click", None),
        ("r4", "u3", "Z", "click", None),  # an item not shown: the list, not a position
        ("r9", "u9", "A", "click", None),  # no such impression: not attributed
        (None, "u1", "A", "purchase", 100.0),  # no request id: not attributed
    ]
    frame = pd.DataFrame(rows, columns=["request_id", "user_id", "item_id", "type", "value"])
    frame["timestamp"] = T0 + timedelta(minutes=5)
    return frame


def test_list_outcomes_and_rates_per_list_type() -> None:
    lists = list_outcomes(imps(), outcomes())
    flags = lists.set_index("request_id")[["clicked", "carted", "purchased", "revenue"]]
    assert flags.loc["r1"].tolist() == [1, 1, 1, 12.5]
    assert flags.loc["r2"].tolist() == [1, 0, 0, 0.0]
    assert flags.loc["r3"].tolist() == [0, 0, 0, 0.0]
    assert flags.loc["r4"].tolist() == [1, 0, 0, 0.0]
    rates = records(summarise(lists, "list_type"))
    assert rates[1] == {
        "list_type": "search",
        "impressions": 3,
        "clicks": 2,
        "add_to_carts": 1,
        "purchases": 1,
        "revenue": 12.5,
        "ctr": pytest.approx(2 / 3),
        "add_to_cart_rate": pytest.approx(1 / 3),
        "conversion_rate": pytest.approx(1 / 3),
    }
    assert rates[0]["list_type"] == "recommendations" and rates[0]["ctr"] == 1.0


def test_slot_outcomes_per_position() -> None:
    slots = slot_outcomes(imps(), outcomes())
    assert len(slots) == 3 + 2 + 0 + 2
    r1 = slots[slots["request_id"] == "r1"].set_index("position")
    assert r1["item_id"].tolist() == ["A", "B", "C"] and r1["clicked"].tolist() == [0, 1, 0]
    r4 = slots[slots["request_id"] == "r4"]
    assert r4["propensity"].tolist() == [0.5, 1.0] and r4["clicked"].sum() == 0
    by_position = summarise(slots[slots["list_type"] == "search"], "position").set_index("position")
    assert by_position["impressions"].tolist() == [2, 2, 1]
    # r1 clicked B at position 2, r2 clicked A at position 2
    assert by_position["clicks"].tolist() == [0, 2, 0]
    assert by_position["ctr"].tolist() == [0.0, 1.0, 0.0]


def test_search_analytics_known_values() -> None:
    body = search_analytics(imps(), outcomes())
    assert body["searches"] == 3
    assert body["zero_result_rate"] == pytest.approx(1 / 3)
    assert body["ctr"] == pytest.approx(2 / 3)
    assert body["top_queries"][0] == {
        "query": "red shoe",
        "searches": 2,
        "clicks": 2,
        "ctr": 1.0,
        "zero_results": 0,
    }
    assert body["zero_result_queries"] == [{"query": "xyzzy", "zero_results": 1, "searches": 1}]
    assert [d["date"] for d in body["over_time"]] == ["2026-03-01", "2026-03-02"]
    assert [d["searches"] for d in body["over_time"]] == [2, 1]
    assert normalise_query("  Red\tSHOE ") == "red shoe"


def test_search_analytics_when_nothing_was_found_or_clicked() -> None:
    nothing = imps()[imps()["request_id"] == "r3"]  # one search, no results
    no_events = outcomes().iloc[0:0]
    body = search_analytics(nothing, no_events)
    assert body["searches"] == 1 and body["zero_result_rate"] == 1.0 and body["ctr"] == 0.0
    assert body["ctr_by_position"] == []
    assert records(summarise(slot_outcomes(imps(), no_events), "position"))[0]["clicks"] == 0


def test_search_analytics_without_searches() -> None:
    only_recs = imps()[imps()["list_type"] != "search"]
    assert search_analytics(only_recs, outcomes())["searches"] == 0


def test_the_store_sql_counts_equal_the_row_level_path(store: Store) -> None:
    """Random logs on each backend: `Store.impression_counts` (SQL GROUP BY) gives the
    same counts as `summarise` over `list_outcomes` / `slot_outcomes` of the same rows."""
    rng = np.random.default_rng(5)
    items = [f"I{i}" for i in range(30)]
    rows: list[dict[str, Any]] = []
    for i in range(300):
        shown = list(rng.choice(items, size=int(rng.integers(0, 6)), replace=False))
        rows.append({
            "request_id": f"r{i}", "timestamp": T0 + timedelta(minutes=int(rng.integers(0, 600))),
            "user_id": f"u{int(rng.integers(0, 40))}",
            "list_type": str(rng.choice(["search", "recommendations", "similar"])),
            "query": "q" if i % 3 == 0 else None, "items": shown,
            "policy": str(rng.choice(["als", "popular"])),
            "experiment_id": "e" if i % 2 else None,
            "variant": (str(rng.choice(["a", "b"])) if i % 2 else None),
        })  # fmt: skip
    events = []
    for j in range(900):
        row = rows[int(rng.integers(0, len(rows)))]
        shown = row["items"] or ["I0"]
        kind = str(rng.choice(["click", "click", "add_to_cart", "purchase", "view"]))
        events.append(Event.model_validate({
            "user_id": row["user_id"], "item_id": str(rng.choice([*shown, "I29"])),
            "type": kind, "value": float(rng.integers(1, 50)) if kind == "purchase" else None,
            "request_id": row["request_id"] if j % 10 else f"unknown{j}",
            "timestamp": row["timestamp"] + timedelta(minutes=int(rng.integers(0, 120))),
        }))  # fmt: skip
    store.append_impressions(impressions_frame(rows))
    store.append_events(records_to_frame("events", events))
    since, until = T0 + timedelta(hours=2), T0 + timedelta(hours=9)
    imps_, outs = store.impressions(since, until), store.outcome_events(since, until)
    for keys in (["list_type"], ["experiment_id", "variant"], ["policy"], ["query"], []):
        sql = with_rates(store.impression_counts(keys, since, until), keys)
        # compared as the API returns them (missing groups as None)
        assert records(sql) == records(summarise(list_outcomes(imps_, outs), keys)), keys
    keys = ["list_type", "position"]
    sql = with_rates(store.impression_counts(keys, since, until), keys)
    assert records(sql) == records(summarise(slot_outcomes(imps_, outs), keys))
    assert int(sql["clicks"].sum()) > 50  # the logs attribute something
