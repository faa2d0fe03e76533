"""Loaders for public datasets, resolved by name under the data directory.

The datasets are never shipped with Shelfwise (their licences forbid redistribution); they
are read from `SHELFWISE_DATA_DIR` or `../shared/data`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.data.frames import conform
from shelfwise.errors import DataError

log = logging.getLogger(__name__)


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
    if data_dir is None:  # at call time: settings import the layers above data
        from shelfwise.settings import data_dir as default_data_dir

        data_dir = default_data_dir()
    root = data_dir
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


def _movie_items(
    ids: Any, titles: Any, genres: list[list[str]], extra: list[dict[str, Any]], created: Any
) -> pd.DataFrame:
    """MovieLens movies as catalog rows: category `Movies > <first genre>`, the genres as
    description, genres and `extra` (per movie) in the attributes, no price or brand."""
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": titles,
            "description": [", ".join(g) for g in genres],
            "category": ["Movies > " + (g[0] if g else "unknown") for g in genres],
            "brand": "",
            "price": np.nan,
            "currency": "USD",
            "in_stock": True,
            "attributes": [
                json.dumps({"genres": g, **e}, sort_keys=True)
                for g, e in zip(genres, extra, strict=True)
            ],
            "created_at": created,
        }
    )


def _rating_events(ratings: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """MovieLens ratings (user_id, item_id, rating, ts in unix seconds) as `rating` events
    with ids `<prefix>-<line number>`."""
    return pd.DataFrame(
        {
            "event_id": f"{prefix}-" + pd.Series(np.arange(1, len(ratings) + 1)).astype(str),
            "user_id": ratings["user_id"],
            "item_id": ratings["item_id"],
            "type": "rating",
            "value": ratings["rating"],
            "query": None,
            "session_id": None,
            "timestamp": pd.to_datetime(ratings["ts"], unit="s", utc=True),
        }
    )


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
    items = _movie_items(
        raw_items[0],
        raw_items[1].str.strip().where(raw_items[1].str.strip() != "", raw_items[0]),
        genres,
        [
            {
                "release_date": None if pd.isna(r) else r.date().isoformat(),
                "imdb_url": url or None,
            }
            for r, url in zip(release, raw_items[4], strict=True)
        ],
        created,
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
    events = _rating_events(ratings, "ml100k")
    return Dataset(
        "movielens-100k",
        conform("items", items),
        conform("users", users),
        conform("events", events),
        notes={"source": str(path), "events": "explicit ratings 1-5 as 'rating' events"},
    )


# -- MovieLens 1M ----------------------------------------------------------------------------
ML1M_AGES = {
    1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+",
}  # fmt: skip
ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
ML1M_RATINGS = "ratings.dat"
ML1M_PARTIAL_RATINGS = "ratings.PARTIAL_users0001-2999.dat.gz"
ML1M_PARTIAL_NOTE = (
    f"PARTIAL ratings: {ML1M_PARTIAL_RATINGS} holds users 1-2999 only (487,650 of 1,000,209 "
    "ratings); results are NOT comparable with published MovieLens-1M numbers. Put the full "
    "ratings.dat beside it to load the complete dataset (see SOURCE.md)"
)
_warned_partial: set[Path] = set()


def _read_dat(path: Path, names: list[str], dtype: dict[str, str]) -> pd.DataFrame:
    """A `::`-separated latin-1 .dat file (.gz ok) whose fields contain no ':'.

    Read with the fast C parser on ':' — the empty fields between the two colons are dropped.
    """
    try:
        raw = pd.read_csv(
            path,
            sep=":",
            header=None,
            usecols=[2 * k for k in range(len(names))],
            names=[f"c{k}" for k in range(2 * len(names) - 1)],
            encoding="latin-1",
            dtype=str,
            keep_default_na=False,
        )
        return raw.set_axis(names, axis=1).astype(dtype)
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: not a '::'-separated file of {', '.join(names)}: {exc}") from exc


@register("movielens-1m", "movielens-1m")
def load_movielens_1m(path: Path) -> Dataset:
    """6,040 users, 3,883 movies, 1,000,209 ratings (1-5) with unix timestamps.

    Reads `ratings.dat` when present, else the partial `ratings.PARTIAL_users0001-2999.dat.gz`
    (users 1-2999, 487,650 ratings); the partial case is logged once per process as a warning
    and marked in `notes["partial"]`. Items: every movie of movies.dat, title as given
    (with the year), category `Movies > <first genre>`, all genres in `attributes.genres`.
    Users: those with ratings, with gender, age (code and range), occupation (name and code)
    and zip from users.dat. Events: one `rating` event per line, value = stars; event ids
    are the line number, so the partial file's ids match the full file's.
    """
    full, partial = path / ML1M_RATINGS, path / ML1M_PARTIAL_RATINGS
    if full.exists():
        ratings_path, is_partial = full, False
    elif partial.exists():
        ratings_path, is_partial = partial, True
    else:
        raise DataError(
            f"{path}: neither {ML1M_RATINGS} nor {ML1M_PARTIAL_RATINGS} is there; "
            "see the dataset's SOURCE.md"
        )
    if is_partial and path not in _warned_partial:
        _warned_partial.add(path)
        log.warning("movielens-1m: %s", ML1M_PARTIAL_NOTE)
    movies_path, users_path = _need(path / "movies.dat"), _need(path / "users.dat")
    ratings = _read_dat(
        ratings_path,
        ["user_id", "item_id", "rating", "ts"],
        {"user_id": "str", "item_id": "str", "rating": "float64", "ts": "int64"},
    )
    # titles may contain ':' so movies.dat is split on '::' line by line (3,883 lines)
    movie_rows = [
        line.rstrip("\r\n").split("::")
        for line in movies_path.read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    bad = [r for r in movie_rows if len(r) != 3]
    if bad:
        raise DataError(f"{movies_path}: {len(bad)} lines lack 3 '::' fields, e.g. {bad[0]}")
    movie_ids = [r[0] for r in movie_rows]
    titles = [r[1].strip() or r[0] for r in movie_rows]
    genres = [[g for g in r[2].split("|") if g] for r in movie_rows]
    years = [_title_year(t) for t in titles]
    first_rating = ratings.groupby("item_id")["ts"].min()
    items = _movie_items(
        movie_ids,
        titles,
        genres,
        [{"year": y} for y in years],
        # movies nobody rated have no first rating: NaT
        pd.to_datetime(pd.Series(movie_ids).map(first_rating), unit="s", utc=True),
    )
    raw_users = _read_dat(
        users_path,
        ["user_id", "gender", "age", "occupation", "zip"],
        {"user_id": "str", "gender": "str", "age": "int64", "occupation": "int64", "zip": "str"},
    )
    first_event = ratings.groupby("user_id")["ts"].min()
    raw_users = raw_users[raw_users["user_id"].isin(first_event.index)]
    users = pd.DataFrame(
        {
            "user_id": raw_users["user_id"],
            "attributes": [
                json.dumps(
                    {
                        "gender": g,
                        "age": int(a),
                        "age_range": ML1M_AGES.get(int(a)),
                        "occupation": (
                            ML1M_OCCUPATIONS[o] if 0 <= o < len(ML1M_OCCUPATIONS) else str(o)
                        ),
                        "occupation_id": int(o),
                        "zip": z,
                    },
                    sort_keys=True,
                )
                for g, a, o, z in raw_users[["gender", "age", "occupation", "zip"]].itertuples(
                    index=False
                )
            ],
            "created_at": pd.to_datetime(raw_users["user_id"].map(first_event), unit="s", utc=True),
        }
    )
    events = _rating_events(ratings, "ml1m")
    notes = {
        "source": str(path),
        "ratings_file": ratings_path.name,
        "events": "explicit ratings 1-5 as 'rating' events",
        "users": "users.dat rows of the users who have ratings",
    }
    if is_partial:
        notes["partial"] = ML1M_PARTIAL_NOTE
    return Dataset(
        "movielens-1m",
        conform("items", items),
        conform("users", users),
        conform("events", events),
        notes=notes,
    )


def _title_year(title: str) -> int | None:
    """The year in a MovieLens title's trailing `(YYYY)`, if any."""
    found = re.search(r"\((\d{4})\)\s*$", title)
    return int(found.group(1)) if found else None


# -- Amazon Beauty 5-core --------------------------------------------------------------------
# The sequences carry order but no time: event k of a user gets BEAUTY_EPOCH + k days, which
# keeps per-user order (leave-last-one-out) but makes a global temporal split meaningless.
BEAUTY_EPOCH = datetime(2014, 1, 1, tzinfo=UTC)
BEAUTY_CATALOG = "catalog_enriched.jsonl"


@register("amazon-beauty", "amazon-beauty-5core")
def load_amazon_beauty(path: Path) -> Dataset:
    """22,363 users, 12,101 items, 198,502 reviews as ordered `purchase` events.

    When `catalog_enriched.jsonl` is there (see SOURCE.md), each product's title (HTML
    entities unescaped), brand (empty when unknown) and category path (`Beauty > Hair Care >
    ...`) come from it, so the dataset looks like a store's catalogue; without it, titles
    come from products_lookup.csv through item_id_to_int.json, every brand is empty and every
    category is `Beauty`. The 7 items without a title use their ASIN. The anonymous S3-Rec
    attribute ids (categories and brand) are kept in `attributes.attribute_ids`.
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
    catalog = _beauty_catalog(path / BEAUTY_CATALOG)
    titles = [names.get(asin_to_int[a], "").strip() or a for a in asins]
    brands = [""] * len(asins)
    categories = ["Beauty"] * len(asins)
    for i, a in enumerate(asins):
        row = catalog.get(a)
        if row is not None:
            titles[i] = row[0] or a
            brands[i], categories[i] = row[1], row[2]
    timestamps = pd.Timestamp(BEAUTY_EPOCH) + pd.to_timedelta(np.asarray(pos_col), unit="D")
    first_ts = pd.Series(timestamps).groupby(pd.Series(items_col)).min()
    items = pd.DataFrame(
        {
            "item_id": asins,
            "title": titles,
            "description": "",
            "category": categories,
            "brand": brands,
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
            "catalog": (
                f"{BEAUTY_CATALOG}: brand and category path for {len(catalog)} products"
                if catalog
                else f"no {BEAUTY_CATALOG}: brand empty, category 'Beauty'"
            ),
        },
    )


def _beauty_catalog(path: Path) -> dict[str, tuple[str, str, str]]:
    """ASIN -> (title, brand, category path) from catalog_enriched.jsonl; {} when absent.

    Raises DataError naming the line when a line is not a JSON object with a string
    `item_id` and string (or null) `title`, `brand` and `category`."""
    if not path.is_file():
        return {}
    out: dict[str, tuple[str, str, str]] = {}
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {n}: not JSON ({exc.msg})") from exc
            if not isinstance(row, dict) or not isinstance(row.get("item_id"), str):
                raise DataError(f"{path}, line {n}: need an object with a string item_id")
            values = [row.get(k) for k in ("title", "brand", "category")]
            bad = [
                k
                for k, v in zip(("title", "brand", "category"), values, strict=True)
                if v is not None and not isinstance(v, str)
            ]
            if bad:
                raise DataError(f"{path}, line {n}: {', '.join(bad)} must be a string or null")
            title, brand, category = (str(v or "").strip() for v in values)
            out[row["item_id"]] = (title, brand, category or "Beauty")
    return out


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
