"""Loaders for public datasets, resolved by name under the data directory.

The datasets are never shipped with Shelfwise (their licences forbid redistribution); they
are read from `SHELFWISE_DATA_DIR` or `../shared/data`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from shelfwise.data.frames import conform
from shelfwise.errors import DataError
from shelfwise.settings import data_dir as default_data_dir


@dataclass(frozen=True)
class Dataset:
    """Items, users and events of one dataset, in the canonical frame layouts."""

    name: str
    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    notes: dict[str, str] = field(default_factory=dict)


Loader = Callable[[Path], Dataset]
_LOADERS: dict[str, tuple[str, Loader]] = {}


def register(name: str, folder: str) -> Callable[[Loader], Loader]:
    """Register a dataset loader under `name`, reading from `<data dir>/<folder>`."""

    def deco(fn: Loader) -> Loader:
        _LOADERS[name] = (folder, fn)
        return fn

    return deco


def available() -> list[str]:
    """Names of every registered dataset."""
    return sorted(_LOADERS)


def dataset_path(name: str, data_dir: Path | None = None) -> Path:
    """The folder a dataset is read from; raises DataError if it is unknown or missing."""
    if name not in _LOADERS:
        raise DataError(f"unknown dataset '{name}'; known datasets: {', '.join(available())}")
    root = data_dir or default_data_dir()
    if root is None:
        raise DataError(
            f"dataset '{name}' needs a data directory: set SHELFWISE_DATA_DIR "
            "(no ../shared/data was found either)"
        )
    path = Path(root) / _LOADERS[name][0]
    if not path.is_dir():
        raise DataError(f"dataset '{name}' not found: {path} does not exist")
    return path


def is_available(name: str, data_dir: Path | None = None) -> bool:
    """True when the dataset's files can be found."""
    try:
        dataset_path(name, data_dir)
    except DataError:
        return False
    return True


def load_dataset(name: str, data_dir: Path | None = None) -> Dataset:
    """Load a registered dataset by name."""
    path = dataset_path(name, data_dir)
    return _LOADERS[name][1](path)


def _need(path: Path) -> Path:
    if not path.exists():
        raise DataError(f"{path} is missing; see the dataset's SOURCE.md")
    return path


# -- MovieLens 100K -------------------------------------------------------------------------
ML_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@register("movielens-100k", "movielens-100k")
def load_movielens_100k(path: Path) -> Dataset:
    """943 users, 1,682 movies, 100,000 ratings (1-5) with unix timestamps.

    Items: title from u.item, category `Movies > <first genre>`, all genres in
    `attributes.genres`. Events: one `rating` event per row of u.data, value = stars.
    """
    ratings = pd.read_csv(
        _need(path / "u.data"),
        sep="\t",
        names=["user_id", "item_id", "rating", "ts"],
        dtype={"user_id": "str", "item_id": "str", "rating": "float64", "ts": "int64"},
    )
    raw_items = pd.read_csv(
        _need(path / "u.item"),
        sep="|",
        header=None,
        encoding="latin-1",
        dtype=str,
        keep_default_na=False,
    )
    flags = raw_items.iloc[:, 5:24].to_numpy() == "1"
    genres = [[ML_GENRES[j] for j in np.flatnonzero(row)] for row in flags]
    release = pd.to_datetime(raw_items[2], format="%d-%b-%Y", errors="coerce", utc=True)
    first_rating = ratings.groupby("item_id")["ts"].min()
    created = pd.to_datetime(raw_items[0].map(first_rating), unit="s", utc=True)
    items = pd.DataFrame(
        {
            "item_id": raw_items[0],
            "title": raw_items[1].str.strip().where(raw_items[1].str.strip() != "", raw_items[0]),
            "description": [", ".join(g) for g in genres],
            "category": ["Movies > " + (g[0] if g else "unknown") for g in genres],
            "brand": "",
            "price": np.nan,
            "currency": "USD",
            "in_stock": True,
            "attributes": [
                json.dumps(
                    {
                        "genres": g,
                        "release_date": None if pd.isna(r) else r.date().isoformat(),
                        "imdb_url": url or None,
                    },
                    sort_keys=True,
                )
                for g, r, url in zip(genres, release, raw_items[4], strict=True)
            ],
            "created_at": created,
        }
    )
    raw_users = pd.read_csv(
        _need(path / "u.user"),
        sep="|",
        names=["user_id", "age", "gender", "occupation", "zip"],
        dtype=str,
    )
    first_event = ratings.groupby("user_id")["ts"].min()
    users = pd.DataFrame(
        {
            "user_id": raw_users["user_id"],
            "attributes": [
                json.dumps({"age": int(a), "gender": g, "occupation": o, "zip": z}, sort_keys=True)
                for a, g, o, z in raw_users[["age", "gender", "occupation", "zip"]].itertuples(
                    index=False
                )
            ],
            "created_at": pd.to_datetime(raw_users["user_id"].map(first_event), unit="s", utc=True),
        }
    )
    events = pd.DataFrame(
        {
            "event_id": "ml100k-" + pd.Series(np.arange(1, len(ratings) + 1)).astype(str),
            "user_id": ratings["user_id"],
            "item_id": ratings["item_id"],
            "type": "rating",
            "value": ratings["rating"],
            "query": None,
            "session_id": None,
            "timestamp": pd.to_datetime(ratings["ts"], unit="s", utc=True),
        }
    )
    return Dataset(
        "movielens-100k",
        conform("items", items),
        conform("users", users),
        conform("events", events),
        notes={"source": str(path), "events": "explicit ratings 1-5 as 'rating' events"},
    )


# -- Amazon Beauty 5-core --------------------------------------------------------------------
# The sequences carry order but no time: event k of a user gets BEAUTY_EPOCH + k days, which
# keeps per-user order (leave-last-one-out) but makes a global temporal split meaningless.
BEAUTY_EPOCH = datetime(2014, 1, 1, tzinfo=UTC)


@register("amazon-beauty", "amazon-beauty-5core")
def load_amazon_beauty(path: Path) -> Dataset:
    """22,363 users, 12,101 items, 198,502 reviews as ordered `purchase` events.

    Titles come from products_lookup.csv through item_id_to_int.json (see SOURCE.md); the
    7 items without a title use their ASIN. The anonymous S3-Rec attribute ids (categories
    and brand) are kept in `attributes.attribute_ids`.
    """
    users_col: list[str] = []
    items_col: list[str] = []
    pos_col: list[int] = []
    with _need(path / "user_sequence.txt").open(encoding="utf-8") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) < 2:
                continue
            users_col.extend([parts[0]] * (len(parts) - 1))
            items_col.extend(parts[1:])
            pos_col.extend(range(len(parts) - 1))
    asin_to_int: dict[str, int] = json.loads(_need(path / "item_id_to_int.json").read_text())
    lookup = pd.read_csv(_need(path / "products_lookup.csv"), index_col=0, keep_default_na=False)
    names = dict(zip(lookup["global_product_id"], lookup["name"].astype(str), strict=True))
    attributes = _beauty_attributes(path, users_col, items_col)

    asins = sorted(set(items_col))
    missing = [a for a in asins if a not in asin_to_int]
    if missing:
        raise DataError(f"{path}: {len(missing)} ASINs lack a title mapping, e.g. {missing[:3]}")
    titles = [names.get(asin_to_int[a], "").strip() or a for a in asins]
    timestamps = pd.Timestamp(BEAUTY_EPOCH) + pd.to_timedelta(np.asarray(pos_col), unit="D")
    first_ts = pd.Series(timestamps).groupby(pd.Series(items_col)).min()
    items = pd.DataFrame(
        {
            "item_id": asins,
            "title": titles,
            "description": "",
            "category": "Beauty",
            "brand": "",
            "price": np.nan,
            "currency": "USD",
            "in_stock": True,
            "attributes": [
                json.dumps({"asin": a, "attribute_ids": attributes.get(a, [])}) for a in asins
            ],
            "created_at": [first_ts[a] for a in asins],
        }
    )
    events = pd.DataFrame(
        {
            # deterministic ids make a second ingest of the same dataset a no-op
            "event_id": [f"beauty-{u}-{k}" for u, k in zip(users_col, pos_col, strict=True)],
            "user_id": users_col,
            "item_id": items_col,
            "type": "purchase",
            "value": np.nan,
            "query": None,
            "session_id": None,
            "timestamp": timestamps,
        }
    )
    user_first = events.groupby("user_id", sort=False)["timestamp"].min()
    users = pd.DataFrame(
        {"user_id": user_first.index, "attributes": "{}", "created_at": user_first.to_numpy()}
    )
    return Dataset(
        "amazon-beauty",
        conform("items", items),
        conform("users", users),
        conform("events", events),
        notes={
            "source": str(path),
            "events": "reviews as 'purchase' events; timestamps are ordinal (day k = k-th review)",
        },
    )


def _beauty_attributes(path: Path, users: list[str], items: list[str]) -> dict[str, list[int]]:
    """ASIN -> S3-Rec attribute ids, aligning Beauty.txt (int ids) with the ASIN sequences."""
    attr_file, int_file = path / "Beauty_item2attributes.json", path / "Beauty.txt"
    if not attr_file.exists() or not int_file.exists():
        return {}
    int_items: list[str] = []
    with int_file.open(encoding="utf-8") as fh:
        for line in fh:
            int_items.extend(line.split()[1:])
    if len(int_items) != len(items):
        return {}
    s3_to_asin = dict(zip(int_items, items, strict=True))
    raw: dict[str, list[int]] = json.loads(attr_file.read_text())
    return {s3_to_asin[k]: v for k, v in raw.items() if k in s3_to_asin}
