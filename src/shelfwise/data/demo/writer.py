"""Writing a demo store as the files `shelfwise ingest` reads."""

from __future__ import annotations

from pathlib import Path

from shelfwise.data.demo.config import DemoStore
from shelfwise.data.frames import EVENT_COLUMNS
from shelfwise.data.io import write_jsonl

__all__ = ["write_demo"]


def write_demo(store: DemoStore, directory: Path) -> dict[str, Path]:
    """Write `items.jsonl`, `users.jsonl` and `events.csv` into `directory`.

    JSON Lines hold one object per line with attributes as JSON objects and timestamps as
    ISO-8601 with `Z`; the CSV's header is the canonical event columns, its timestamps
    ISO-8601 with `Z`, and missing values are empty cells.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "items": directory / "items.jsonl",
        "users": directory / "users.jsonl",
        "events": directory / "events.csv",
    }
    write_jsonl(store.items, paths["items"])
    write_jsonl(store.users, paths["users"])
    events = store.events.loc[:, list(EVENT_COLUMNS)].copy()
    events["timestamp"] = events["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    events.to_csv(paths["events"], index=False, lineterminator="\n", encoding="utf-8")
    return paths
