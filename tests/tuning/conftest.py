"""Small block-structured data: users of block b buy items of block b only, so item-item
models (EASE, kNN) find the blocks and popularity cannot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shelfwise.evaluation.protocols import ProtocolData, prepare

N_USERS, N_ITEMS, BLOCKS, PER_USER = 80, 40, 4, 8


def block_events(
    n_users: int = N_USERS, n_items: int = N_ITEMS, blocks: int = BLOCKS, per_user: int = PER_USER
) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    size = n_items // blocks
    rows = []
    for u in range(n_users):
        b = u % blocks
        items = rng.choice(np.arange(b * size, (b + 1) * size), size=per_user, replace=False)
        for j, i in enumerate(items):
            ts = pd.Timestamp("2026-01-01") + pd.Timedelta(hours=j * 100 + u)
            rows.append((f"u{u}", f"i{i}", "purchase", ts))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "type", "timestamp"])


def block_items(n_items: int = N_ITEMS) -> pd.DataFrame:
    ids = [f"i{i}" for i in range(n_items)]
    return pd.DataFrame({"item_id": ids, "title": [f"item {i}" for i in range(n_items)]})


@pytest.fixture(scope="session")
def events() -> pd.DataFrame:
    return block_events()


@pytest.fixture(scope="session")
def holdout(events: pd.DataFrame) -> ProtocolData:
    return prepare(events, "holdout", seed=42, items=block_items())


@pytest.fixture(scope="session")
def block_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB store file holding the block data (what `--dataset FILE.duckdb` reads)."""
    from shelfwise.data.io import load_records
    from shelfwise.store import open_store

    root = tmp_path_factory.mktemp("blockstore")
    ev = block_events()
    ev["timestamp"] = ev["timestamp"].map(lambda t: t.isoformat())
    ev.to_csv(root / "events.csv", index=False)
    block_items().to_csv(root / "items.csv", index=False)
    path = root / "blocks.duckdb"
    with open_store(f"duckdb:///{path}") as st:
        st.ingest(
            items=load_records(root / "items.csv", "items"),
            events=load_records(root / "events.csv", "events"),
        )
    return path
