"""Where evaluation and tuning read their data from: a named public dataset, the demo
generator, a Shelfwise store URL as `shelfwise ingest` prints it (`duckdb:///...`,
`postgresql://...`), or a DuckDB store file (a snapshot of a live store)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shelfwise.errors import ConfigError

__all__ = ["load_frames", "load_users"]


def load_frames(name: str, seed: int = 42) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(label, events, items) of a named dataset, `demo`, or a DuckDB store file."""
    from shelfwise.data.datasets import available, load_dataset

    if name == "demo":
        from shelfwise.data.demo import DemoConfig, generate

        store = generate(DemoConfig(seed=seed))
        return "demo", store.events, store.items
    if name in available():
        ds = load_dataset(name)
        return name, ds.events, ds.items
    if "://" in name:
        from shelfwise.store import open_store

        if name.lower().startswith("duckdb:///") and not Path(name[len("duckdb://") :]).exists():
            raise ConfigError(f"--dataset {name}: no such store file (opening would create it)")

        with open_store(name) as st:
            return name, st.interactions(), st.items()
    path = Path(name)
    if path.suffix == ".duckdb" or path.is_file():
        if not path.exists():
            raise ConfigError(f"--dataset {name}: no such store file")
        from shelfwise.store import open_store

        with open_store(f"duckdb:///{path.resolve()}") as st:
            return path.name, st.interactions(), st.items()
    raise ConfigError(
        f"--dataset {name!r}: not a dataset ({', '.join(available())}), 'demo', "
        "a store URL (duckdb:///path.duckdb, postgresql://...) or a .duckdb store file"
    )


def load_users(name: str) -> pd.DataFrame | None:
    """The user table (`user_id`, JSON `attributes`) of a named dataset, or None (the demo,
    stores, datasets without one)."""
    from shelfwise.data.datasets import available, load_dataset

    if name not in available():
        return None
    users = load_dataset(name).users
    return users if users is not None and len(users) else None
