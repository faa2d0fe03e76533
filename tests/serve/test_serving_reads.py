"""The store reads serving relies on (both backends), and the engine's recent-event cache."""

from __future__ import annotations

from datetime import datetime, timedelta

from shelfwise.data.frames import records_to_frame
from shelfwise.data.schemas import Event
from shelfwise.serving import Engine, RecContext
from shelfwise.store import Store

T0 = datetime(2026, 5, 1, 8)


def _events(*specs: tuple[str, str, float]) -> object:
    return records_to_frame(
        "events",
        [
            Event(user_id=u, item_id=i, type="view", timestamp=T0 + timedelta(minutes=m))
            for u, i, m in specs
        ],
    )


def test_recent_events_and_last_seq(store: Store) -> None:
    assert store.last_seq() == 0 and store.recent_events("a").empty
    store.append_events(_events(("a", "X", 5), ("b", "Y", 1), ("a", "Y", 1), ("a", "Z", 9)))
    assert store.last_seq() == 4
    recent = store.recent_events("a", limit=2)
    assert list(recent.columns) == ["item_id", "type", "value", "timestamp", "session_id", "seq"]
    assert recent["item_id"].tolist() == ["Z", "X"]  # newest first, limited
    assert recent["seq"].tolist() == [4, 1]
    assert str(recent["timestamp"].dtype) == "datetime64[us]"
    assert store.recent_events("a", after_seq=1)["item_id"].tolist() == ["Z", "Y"]
    assert store.recent_events("a", after_seq=4).empty
    store.append_events(_events(("a", "W", 0)))  # late: older timestamp, newer seq
    assert store.last_seq() == 5
    assert store.recent_events("a", after_seq=4)["item_id"].tolist() == ["W"]


def test_last_seq_follows_every_write_of_this_process(store: Store) -> None:
    # DuckDB keeps the answer between this process's writes: each kind of write ends it
    once = records_to_frame(
        "events", [Event(event_id="e1", user_id="a", item_id="X", type="view", timestamp=T0)]
    )
    store.append_events(once)
    assert store.last_seq() == 1 and store.last_seq() == 1
    store.append_events(once)  # a duplicate only: nothing written, rolled back
    assert store.last_seq() == 1
    store.append_event_batches(_events(("a", "Y", 1), ("b", "Z", 2)), [1, 1])
    assert store.last_seq() == 3
    store.erase_user("b")  # erasure moves no sequence number
    assert store.last_seq() == 3
    store.ingest(events=_events(("c", "X", 3)))
    assert store.last_seq() == 4


def test_cache_sees_writes_from_anywhere_and_forgets_erased(shop) -> None:  # type: ignore[no-untyped-def]
    store, engine = shop
    assert isinstance(engine, Engine)
    assert engine.recommend("late", 1).strategy == "popular"  # cached: no events
    store.append_events(_events(("late", "H1", 0)))  # not through the engine
    rec = engine.recommend("late", 1)
    assert rec.strategy == "personalised" and rec.items[0]["item_id"] == "H2"
    store.append_events(_events(("late", "K1", -60)))  # an older event, arriving late
    history, _ = engine.user_history("late")
    assert {engine.catalog.item_id[i] for i in history} == {"H1", "K1"}
    engine.erase_user("late")
    assert engine.user_events("late").empty
    assert engine.recommend("late", 1).strategy == "popular"


def test_refresh_catches_up_with_another_process(store_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from shelfwise.artifacts import ensure_bundle
    from shelfwise.data.schemas import Item
    from shelfwise.store import open_store

    from .conftest import fill

    # two workers: two store connections, two engines over one database
    first, second = open_store(store_url), open_store(store_url)
    try:
        fill(first)
        bundle, _ = ensure_bundle(first, tmp_path / "artifacts")
        a, b = Engine(first, bundle), Engine(second, bundle)
        assert b.refresh() == {"items": 0, "removed": 0, "reset": 0}  # nothing happened
        seen: list[tuple[list[str], list[str]]] = []
        b.add_catalog_listener(lambda frame, gone: seen.append((list(frame["item_id"]), gone)))
        resets: list[int] = []
        b.add_reset_listener(lambda: resets.append(1))
        # worker A writes a new item, changes one and deletes one
        new = records_to_frame(
            "items",
            [
                Item(item_id="K3", title="Santoku Knife", category="Home > Kitchen > Knives"),
                Item(item_id="H2", title="Headphone Hanger", price=12),
            ],
        )
        first.upsert_items(new)
        a.apply_items(first.items(["K3", "H2"]))
        first.delete_item("S1")
        a.remove_item("S1")
        assert b.item_index("K3") is None
        assert b.refresh() == {"items": 2, "removed": 1, "reset": 0}
        assert b.item_index("K3") is not None and b.catalog.title[b.item_index("H2")] == (
            "Headphone Hanger"
        )
        assert sorted(seen[0][0]) == ["H2", "K3"] and seen[1][1] == ["S1"]
        assert {i["item_id"] for i in b.similar("K1", 5).items} >= {"K3"}
        # worker B has u1's events cached; A erases u1; B drops its caches on refresh
        assert len(b.user_events("u1")) == 3
        a.erase_user("u1")
        assert b.refresh()["reset"] == 1 and resets == [1]
        assert b.user_events("u1").empty
        assert b.refresh() == {"items": 0, "removed": 0, "reset": 0}
    finally:
        first.close()
        second.close()


def test_tail_events(store: Store) -> None:
    assert store.tail_events().empty
    store.append_events(_events(("a", "X", 5), ("b", "Y", 1), ("a", "Z", 0)))
    tail = store.tail_events()
    assert list(tail.columns) == ["user_id", *store.recent_events("a").columns]
    assert tail["seq"].tolist() == [1, 2, 3] and tail["user_id"].tolist() == ["a", "b", "a"]
    assert store.tail_events(2)["item_id"].tolist() == ["Z"]
    assert store.tail_events(1, limit=1)["item_id"].tolist() == ["Y"]
    assert store.tail_events(3).empty


def test_event_log_keeps_the_latest_per_user_and_scrubs_erased(store: Store) -> None:
    from shelfwise.serving import EventLog

    store.append_events(_events(*[("a", f"I{i}", float(i)) for i in range(8)], ("b", "Y", 1)))
    log = EventLog(store, limit=3)
    assert log.events("a")["item_id"].tolist() == ["I7", "I6", "I5"]  # newest first
    assert log.events("nobody").empty
    store.append_events(_events(("a", "NEW", 30), ("a", "OLD", -5)))  # followed at once
    assert log.events("a")["item_id"].tolist() == ["NEW", "I7", "I6"]
    with log.tail_lock:
        store.erase_user("a")
        log.drop("a")
    assert log.events("a").empty and log.events("b")["item_id"].tolist() == ["Y"]
    base = log._base
    alive = base.codes["item_id"][base.seq >= 0]
    assert not {"I5", "I6", "I7"} & set(base.values["item_id"][alive])  # scrubbed
    store.append_events(_events(("a", "AGAIN", 40)))  # a new user with the same id
    assert log.events("a")["item_id"].tolist() == ["AGAIN"]
    log.reload()
    assert log.events("a")["item_id"].tolist() == ["AGAIN"]


def test_answers_while_the_catalogue_grows(shop) -> None:  # type: ignore[no-untyped-def]
    import threading

    from shelfwise.data.schemas import Item

    store, engine = shop
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                engine.recommend("u3", 5, context=RecContext(item_id="K1"))
                engine.similar("K1", 5)
                engine.bought_together("H1", 5)
            except BaseException as exc:  # collected, the test fails below
                errors.append(exc)
                return

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(15):
            item = Item(item_id=f"N{i}", title=f"Nakiri Knife {i}", category="Home > Kitchen")
            frame = records_to_frame("items", [item])
            store.upsert_items(frame)
            engine.apply_items(store.items([f"N{i}"]))
            store.append_events(_events(("u3", f"N{i}", 100 + i)))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors[:3]
    assert {i["item_id"] for i in engine.recommend("u3", 30).items} >= {"B1"}
