"""The store contract for impressions, outcome events and experiments (`MeasureContract`).

Part of `StoreContract` (which inherits it); a backend that does not store impressions or
experiments (the `Store` defaults raise NotImplementedError) has these tests skipped.
The `store` fixture comes from `StoreContract`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event
from shelfwise.errors import DataError, StoreError
from shelfwise.store import ExperimentRow, Store
from shelfwise.store.measure import IMPRESSION_COLUMNS, impressions_frame

T0 = datetime(2026, 1, 1, 12, 0, 0)


def shown(request_id: str, minutes: float = 0, **fields: Any) -> dict[str, Any]:
    """One impression row at `T0 + minutes` (a recommendations list of three items)."""
    row: dict[str, Any] = {
        "request_id": request_id,
        "timestamp": T0 + timedelta(minutes=minutes),
        "user_id": "u1",
        "list_type": "recommendations",
        "items": ["A1", "A2", "A3"],
        "policy": "personalised",
        "model_version": "v0001",
    }
    row.update(fields)
    return row


def _supports(call: Any) -> Any:
    try:
        return call()
    except NotImplementedError as exc:
        pytest.skip(f"this store does not support it: {exc}")


class MeasureContract:
    """Impressions, outcome events and experiments, on a fresh store per test."""

    def test_impressions_round_trip(self, store: Store) -> None:
        """Impressions come back as written: lists, propensities, flags, time order."""
        rows = [
            shown("r2", 5, list_type="search", query="red shoe", n_results=0, items=[]),
            shown(
                "r1",
                0,
                propensities=[0.9, 0.05, 0.05],
                experiment_id="exp1",
                variant="b",
                exposed=True,
            ),
        ]
        assert _supports(lambda: store.append_impressions(impressions_frame(rows))) == 2
        got = store.impressions()
        assert list(got.columns) == list(IMPRESSION_COLUMNS)
        assert got["request_id"].tolist() == ["r1", "r2"]
        first = got.iloc[0]
        assert first["items"] == ["A1", "A2", "A3"]
        assert first["propensities"] == [0.9, 0.05, 0.05]
        assert (first["experiment_id"], first["variant"], bool(first["exposed"])) == (
            "exp1",
            "b",
            True,
        )
        assert int(first["n_results"]) == 3  # defaults to the number of items shown
        second = got.iloc[1]
        assert second["items"] == [] and second["propensities"] is None
        assert (second["query"], int(second["n_results"]), bool(second["exposed"])) == (
            "red shoe",
            0,
            False,
        )
        assert got["timestamp"].iloc[0] == pd.Timestamp(T0)

    def test_impressions_skip_known_request_ids_and_keep_the_fingerprint(
        self, store: Store
    ) -> None:
        """A request_id is stored once; impressions never move the fingerprint."""
        before = store.fingerprint()
        _supports(lambda: store.append_impressions(impressions_frame([shown("r1")])))
        assert store.append_impressions(impressions_frame([shown("r1"), shown("r2", 1)])) == 1
        assert len(store.impressions()) == 2
        assert store.fingerprint() == before

    def test_impressions_filters(self, store: Store) -> None:
        """Filters by time window, list type and experiment."""
        rows = [
            shown("r1", 0),
            shown("r2", 10, list_type="search", query="q"),
            shown("r3", 20, experiment_id="e"),
        ]
        _supports(lambda: store.append_impressions(impressions_frame(rows)))
        window = store.impressions(
            since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=20)
        )
        assert window["request_id"].tolist() == ["r2"]
        assert store.impressions(list_types=["search"])["request_id"].tolist() == ["r2"]
        assert store.impressions(experiment_id="e")["request_id"].tolist() == ["r3"]

    def test_delete_impressions_before_a_time(self, store: Store) -> None:
        """Retention: the impressions served before the cut-off go, the others stay."""
        rows = [shown("r1", 0), shown("r2", 10), shown("r3", 20)]
        _supports(lambda: store.append_impressions(impressions_frame(rows)))
        assert store.delete_impressions(before=T0 + timedelta(minutes=10)) == 1
        assert store.impressions()["request_id"].tolist() == ["r2", "r3"]
        assert store.delete_impressions(before=T0) == 0
        assert store.delete_impressions(before=T0 + timedelta(days=1)) == 2
        assert store.impressions().empty

    def test_impression_rows_are_checked(self) -> None:
        """Bad impression rows are refused naming the row and the field."""
        with pytest.raises(DataError, match="row 0: 2 propensities for 3 items"):
            impressions_frame([shown("r1", propensities=[0.5, 0.5])])
        with pytest.raises(DataError, match="row 1: request_id"):
            impressions_frame([shown("r1"), shown("")])
        with pytest.raises(DataError, match=r"propensities must lie in \[0, 1\]"):
            impressions_frame([shown("r1", propensities=[1.5, 0, 0])])

    def test_events_keep_their_request_id(self, store: Store) -> None:
        """An event's request_id is stored and read back; outcome_events lists only those."""
        events = [
            Event(user_id="u1", item_id="A1", type="click", request_id="r1", timestamp=T0),
            Event(user_id="u1", item_id="A2", type="view", timestamp=T0 + timedelta(minutes=1)),
        ]
        store.append_events(records_to_frame("events", events))
        assert store.events()["request_id"].tolist() == ["r1", None]
        outcomes = store.outcome_events()
        assert outcomes["request_id"].tolist() == ["r1"]
        assert outcomes[["user_id", "item_id", "type"]].iloc[0].tolist() == ["u1", "A1", "click"]

    def test_impression_counts_aggregate_in_the_store(self, store: Store) -> None:
        """Known counts per list type, variant and position: a list counts a click once
        however many it got; a slot counts the events on its own item; events of unknown
        requests, views and events outside the window are not attributed."""
        rows = [
            shown("r1", 0, experiment_id="e", variant="a"),
            shown("r2", 1, experiment_id="e", variant="b"),
            shown("r3", 2, list_type="search", query="q", items=["A3", "A9"]),
            shown("r4", 3, list_type="search", query="q", items=[]),
        ]
        _supports(lambda: store.append_impressions(impressions_frame(rows)))

        def ev(
            item: str, kind: str, rid: str | None, minutes: float, value: float | None = None
        ) -> Event:
            at = T0 + timedelta(minutes=minutes)
            fields = {"item_id": item, "type": kind, "request_id": rid, "value": value}
            return Event.model_validate({"user_id": "u1", "timestamp": at, **fields})

        events = [
            ev("A1", "click", "r1", 1), ev("A2", "click", "r1", 2),  # two clicks, one list
            ev("A2", "add_to_cart", "r1", 3), ev("A2", "purchase", "r1", 4, 20.0),
            ev("A3", "click", "r2", 5), ev("A3", "view", "r2", 5),
            ev("A9", "click", "r3", 6), ev("A9", "purchase", "r3", 7, 5.5),
            ev("A1", "click", "nope", 8), ev("A1", "click", None, 8),
            ev("A1", "click", "r4", 60 * 24 * 3),  # after the window below
        ]  # fmt: skip
        store.append_events(records_to_frame("events", events))
        until = T0 + timedelta(days=1)
        by_type = store.impression_counts(["list_type"], until=until)
        assert by_type.to_dict("list") == {
            "list_type": ["recommendations", "search"],
            "impressions": [2, 2],
            "clicks": [2, 1],
            "add_to_carts": [1, 0],
            "purchases": [1, 1],
            "revenue": [20.0, 5.5],
        }
        by_variant = store.impression_counts(["experiment_id", "variant"], until=until)
        assert by_variant[["variant", "impressions", "clicks", "purchases"]].values.tolist() == [
            ["a", 1, 1, 1],
            ["b", 1, 1, 0],
            [None, 2, 1, 1],  # no experiment: last
        ]
        slots = store.impression_counts(["list_type", "position"], until=until)
        assert slots.values.tolist() == [
            # r1 and r2 show A1, A2, A3: A1 clicked on r1; A2 clicked, carted, bought on r1;
            # A3 clicked on r2 (the view is no outcome)
            ["recommendations", 1, 2, 1, 0, 0, 0.0],
            ["recommendations", 2, 2, 1, 1, 1, 20.0],
            ["recommendations", 3, 2, 1, 0, 0, 0.0],
            ["search", 1, 1, 0, 0, 0, 0.0],  # r3 shows A3 (not clicked) then A9
            ["search", 2, 1, 1, 0, 1, 5.5],
        ]
        everything = store.impression_counts([], until=until)
        assert everything.values.tolist() == [[4, 3, 1, 2, 25.5]]
        # from minute 2 on, open-ended: r3 and r4, and r4's late click now counts
        late = store.impression_counts(["list_type"], since=T0 + timedelta(minutes=2))
        assert late[["list_type", "impressions", "clicks"]].values.tolist() == [["search", 2, 2]]
        with pytest.raises(DataError, match="by"):
            store.impression_counts(["user_id"])

    def test_erasing_a_user_erases_their_impressions(self, store: Store) -> None:
        """The right to be forgotten reaches the impressions too."""
        rows = [shown("r1"), shown("r2", 1, user_id="u2")]
        _supports(lambda: store.append_impressions(impressions_frame(rows)))
        counts = store.erase_user("u1")
        assert counts.get("impressions") == 1
        assert store.impressions()["request_id"].tolist() == ["r2"]

    def test_experiments_round_trip_and_stop(self, store: Store) -> None:
        """Experiments are stored once, listed, read by id and stopped once."""
        spec = {"experiment_id": "exp1", "variants": [{"name": "a"}, {"name": "b"}]}
        row = ExperimentRow("exp1", spec, "running", T0)
        _supports(lambda: store.add_experiment(row))
        with pytest.raises(StoreError, match="exists already"):
            store.add_experiment(row)
        store.add_experiment(ExperimentRow("exp0", {"experiment_id": "exp0"}, "running", T0))
        assert [e.experiment_id for e in store.experiments()] == ["exp0", "exp1"]
        got = store.get_experiment("exp1")
        assert got is not None and got.spec == spec and got.status == "running"
        assert got.created_at == T0 and got.stopped_at is None
        assert store.get_experiment("nope") is None
        stop = T0 + timedelta(days=3)
        assert store.stop_experiment("exp1", stop) is True
        assert store.stop_experiment("exp1", stop) is False
        stopped = store.get_experiment("exp1")
        assert stopped is not None and stopped.status == "stopped" and stopped.stopped_at == stop
