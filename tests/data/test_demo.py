"""The demo store generator: determinism, valid rows, and believable behaviour.

Behaviour checks compare against known directions (evenings busier than nights, weekends
busier than weekdays, choices following the hidden tastes, ...), so they fail if the
simulation loses the property. Most tests use a small store; the statistical ones that
need volume share one store of the default size.
"""

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shelfwise.data.demo import (
    BRANDS,
    LEAVES,
    TOP_CATEGORIES,
    DemoConfig,
    DemoStore,
    generate,
    write_demo,
)
from shelfwise.data.frames import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS
from shelfwise.data.io import load_records
from shelfwise.data.schemas import Event, Item, User
from shelfwise.errors import ConfigError

SMALL = DemoConfig(n_items=600, n_users=300, days=30)
CONSUMABLE = {lf.path for lf in LEAVES if lf.consumable}


@pytest.fixture(scope="module")
def small() -> DemoStore:
    return generate(SMALL)


@pytest.fixture(scope="module")
def full() -> DemoStore:
    return generate()


def records(frame: pd.DataFrame) -> list[dict]:
    """Frame rows as dicts for the pydantic models: NaN -> None, attributes parsed."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    for row in rows:
        if isinstance(row.get("attributes"), str):
            row["attributes"] = json.loads(row["attributes"])
    return rows


def top_of(store: DemoStore) -> pd.Series:
    """item_id -> top-level category."""
    return store.items.set_index("item_id")["category"].str.split(" > ").str[0]


def user_index(user_ids: pd.Series) -> np.ndarray:
    """Row of each user in the latent arrays (`U-00042` -> 41)."""
    return user_ids.str[2:].astype(int).to_numpy() - 1


# ---- size, config, determinism --------------------------------------------------------


def test_default_size(full):
    assert len(full.items) >= 5000 and len(full.users) >= 2000
    assert 100_000 <= len(full.events) <= 250_000
    counts = full.events["type"].value_counts()
    assert set(counts.index) == {"view", "click", "add_to_cart", "purchase", "rating", "search"}
    assert counts.idxmax() == "view"
    assert counts["view"] > counts["add_to_cart"] > counts["purchase"] > counts["rating"]
    assert tuple(full.items.columns) == ITEM_COLUMNS
    assert tuple(full.users.columns) == USER_COLUMNS
    assert tuple(full.events.columns) == EVENT_COLUMNS


def test_config_is_validated():
    for bad in (
        {"n_items": 10},
        {"n_users": 0},
        {"days": 0},
        {"seed": -1},
        {"cart_rate": 1.5},
        {"sessions_per_user_day": 0.0},
        {"n_items": 600.5},
    ):
        with pytest.raises(ConfigError):
            DemoConfig(**bad)
    naive = DemoConfig(end=datetime(2026, 11, 1))
    assert naive.end == DemoConfig().end and naive.end.tzinfo is not None
    assert (SMALL.first_day, SMALL.last_day) == (
        datetime(2026, 10, 3).date(),
        datetime(2026, 11, 1).date(),
    )


def test_same_seed_same_store_and_files(tmp_path, small):
    again = generate(SMALL)
    for name in ("items", "users", "events"):
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name))
    a = write_demo(small, tmp_path / "a")
    b = write_demo(again, tmp_path / "b")
    for name in ("items", "users", "events"):
        assert a[name].read_bytes() == b[name].read_bytes()

    other = generate(DemoConfig(seed=7, n_items=600, n_users=300, days=30))
    assert (other.items["title"] != small.items["title"]).mean() > 0.9
    assert not other.events["timestamp"].equals(small.events["timestamp"])
    c = write_demo(other, tmp_path / "c")
    for name in ("items", "users", "events"):
        assert a[name].read_bytes() != c[name].read_bytes()


def test_a_fixed_seed_gives_known_rows():
    # Known answers recorded from the generator before it became a package: any change to
    # the vocabulary's order or to the order of random draws changes them.
    store = generate(DemoConfig(seed=5, n_items=60, n_users=10, days=2))
    assert (len(store.items), len(store.users), len(store.events)) == (60, 10, 78)
    first = store.items.iloc[0]
    assert first["title"] == "Saltwater & Sage Citrus Oud Eau de Parfum, 30ml"
    assert first["description"] == (
        "Saltwater & Sage's citrus eau de parfum with notes of Oud, made for warm summer days. "
        "Top notes of bergamot and pink pepper over a warm amber base. "
        "Thoughtfully designed by Saltwater & Sage."
    )
    assert json.loads(first["attributes"]) == {
        "notes": "Oud", "rating_avg": 3.6, "rating_count": 41, "size": "30ml",
    }  # fmt: skip
    assert first["price"] == 62.99
    last = store.items.iloc[-1]
    assert last["title"] == "Copperleaf Quick-Dry Egyptian Cotton Bath Sheet, 2-Piece"
    assert round(float(store.items["price"].sum()), 2) == 4914.2
    assert store.events["type"].value_counts().to_dict() == {
        "view": 45, "click": 22, "add_to_cart": 4, "purchase": 3, "search": 3, "rating": 1,
    }  # fmt: skip
    assert store.events["query"].dropna().tolist() == [
        "Linea Nord", "compact clicky keybord", "stability running shoes",
    ]  # fmt: skip
    e = store.events.iloc[0]
    assert (e["user_id"], e["item_id"], e["type"], e["session_id"]) == (
        "U-00002", "SKU-000056", "view", "S-0000001",
    )  # fmt: skip
    assert e["timestamp"] == pd.Timestamp("2026-10-31 08:28:55")
    assert json.loads(store.users["attributes"].iloc[0]) == {
        "age_band": "35-44", "country": "US", "device": "mobile", "newsletter": True,
        "signup_channel": "referral",
    }  # fmt: skip


def test_progress_bar_goes_to_stderr(capsys):
    generate(DemoConfig(n_items=100, n_users=20, days=5), progress=True)
    captured = capsys.readouterr()
    assert "demo store" in captured.err and captured.out == ""


# ---- valid, consistent rows -----------------------------------------------------------


def test_every_item_and_user_and_sampled_events_validate(small):
    for row in records(small.items):
        Item.model_validate(row)
    for row in records(small.users):
        User.model_validate(row)
    sample = small.events.sample(500, random_state=0)
    assert set(sample["type"]) >= {"view", "search", "purchase"}
    for row in records(sample):
        Event.model_validate(row)


def test_ids_references_and_order(small):
    items, users, events = small.items, small.users, small.events
    assert items["item_id"].str.fullmatch(r"SKU-\d{6}").all() and items["item_id"].is_unique
    assert users["user_id"].str.fullmatch(r"U-\d{5}").all() and users["user_id"].is_unique
    assert events["event_id"].is_unique and events["event_id"].str.fullmatch(r"E-\d{7}").all()
    assert events["timestamp"].is_monotonic_increasing
    assert set(events["user_id"]) <= set(users["user_id"])
    assert set(events["item_id"].dropna()) <= set(items["item_id"])
    is_search = events["type"] == "search"
    assert events.loc[is_search, "item_id"].isna().all()
    assert events.loc[~is_search, "item_id"].notna().all()
    assert events.loc[is_search, "query"].str.len().gt(0).all()
    assert events.loc[~is_search, "query"].isna().all()
    # activity stays inside the window: the `days` days ending on `end`'s date
    start = pd.Timestamp(datetime(2026, 10, 3))
    assert events["timestamp"].min() >= start
    assert events["timestamp"].max() < pd.Timestamp(datetime(2026, 11, 2))
    assert events["timestamp"].dt.normalize().nunique() == 30
    # nobody touches an item before it is listed
    with_item = events.dropna(subset=["item_id"])
    listed = items.set_index("item_id")["created_at"].reindex(with_item["item_id"])
    assert (listed.to_numpy() <= with_item["timestamp"].to_numpy()).all()


# ---- catalog ---------------------------------------------------------------------------


def test_catalog_is_believable(full):
    items = full.items
    levels = items["category"].str.split(" > ")
    assert (levels.str.len() == 3).all()
    assert levels.str[0].nunique() >= 6 and items["category"].nunique() >= 40
    # every brand belongs to one top-level category, with 8-15 brands each
    brand_tops = items.groupby("brand")["category"].agg(
        lambda c: c.str.split(" > ").str[0].nunique()
    )
    assert (brand_tops == 1).all()
    per_top = items.assign(top=levels.str[0]).groupby("top")["brand"].nunique()
    assert per_top.between(8, 15).all()
    assert items["title"].nunique() / len(items) >= 0.98
    assert (items["currency"] == "USD").all()
    assert 0.88 <= items["in_stock"].mean() <= 0.96
    # prices sit around realistic medians per leaf
    median = items.groupby("category")["price"].median()
    assert 25 <= median["Home > Kitchen > Knives"] <= 60
    assert 350 <= median["Electronics > TV & Video > Televisions"] <= 1000
    assert (
        median["Electronics > TV & Video > Televisions"]
        > 20 * median["Grocery > Coffee & Tea > Tea"]
    )
    assert items["price"].gt(0).all()
    # sizes with units, and descriptions made of the title's words
    units = r", [\d./]+ ?(?:ml|oz|fl oz|inch|lb|L|kg|g|mm|W|mAh|cm|qt|bags|pieces)$"
    assert items["title"].str.contains(units).mean() > 0.3
    assert items["title"].str.contains("65 inch").any()
    nouns = items["title"].str.split(", ").str[0].str.split(" ").str[-1].str.lower()
    described = [
        n in d.lower() and b in d
        for n, b, d in zip(nouns, items["brand"], items["description"], strict=True)
    ]
    assert all(described)
    sentences = items["description"].str.count(r"\. ") + 1
    assert sentences.between(1, 3).all() and sentences.nunique() == 3
    attrs = items["attributes"].map(json.loads)
    assert attrs.map(lambda a: 1.0 <= a["rating_avg"] <= 5.0).all()
    assert attrs.map(lambda a: "colour" in a).sum() > 100
    assert attrs.map(lambda a: "material" in a).sum() > 100
    end = pd.Timestamp(datetime(2026, 11, 2))
    assert items["created_at"].between(end - pd.Timedelta(days=365), end).all()
    assert set(TOP_CATEGORIES) == set(BRANDS) == set(levels.str[0])


def test_popularity_is_skewed(full, small):
    for store in (full, small):
        views = store.events.loc[store.events["type"] == "view", "item_id"].value_counts()
        views = views.reindex(store.items["item_id"], fill_value=0).sort_values(ascending=False)
        top_tenth = views.iloc[: len(views) // 10].sum() / views.sum()
        assert top_tenth > 0.4


# ---- users and their rhythms -------------------------------------------------------------


def test_users(small):
    attrs = small.users["attributes"].map(json.loads)
    assert attrs.map(lambda a: {"country", "signup_channel"} <= set(a)).all()
    assert attrs.map(lambda a: a["country"]).nunique() > 3
    first_event = small.events.groupby("user_id")["timestamp"].min()
    created = small.users.set_index("user_id")["created_at"]
    assert first_event.index.size == len(small.users)  # everyone did something
    assert (created.reindex(first_event.index) < first_event).all()
    # activity is heavy-tailed: the busiest tenth of users make a large share of events
    per_user = small.events["user_id"].value_counts()
    assert per_user.iloc[: len(per_user) // 10].sum() / per_user.sum() > 0.25


def test_daily_rhythm(small, full):
    hour = small.events["timestamp"].dt.hour
    evening = hour.between(18, 22).mean()
    night = hour.between(2, 5).mean()
    assert evening > 5 * night
    # each user's own preferred hour shows: early birds shop in the morning more
    sessions = full.events.dropna(subset=["session_id"]).groupby("session_id").first()
    preferred = full.latent["preferred_hour"][user_index(sessions["user_id"])]
    morning = sessions["timestamp"].dt.hour.between(6, 9)
    early_birds = (preferred >= 6.5) & (preferred <= 9.5)
    assert morning[early_birds].mean() > 2 * morning[~early_birds].mean()


def test_weekly_rhythm(small):
    per_day = small.events.groupby(small.events["timestamp"].dt.normalize()).size()
    weekend = per_day.index.day_of_week >= 5
    assert per_day[weekend].mean() > 1.1 * per_day[~weekend].mean()


# ---- sessions and the funnel -------------------------------------------------------------


def test_sessions(small):
    events = small.events
    in_session = events[events["type"] != "rating"]
    assert in_session["session_id"].notna().all()
    assert in_session["session_id"].str.fullmatch(r"S-\d{7}").all()
    assert events.loc[events["type"] == "rating", "session_id"].isna().all()
    grouped = in_session.groupby("session_id", sort=False)
    assert (grouped["user_id"].nunique() == 1).all()
    steps = grouped["timestamp"].diff().dropna()
    assert (steps > pd.Timedelta(0)).all()  # strictly increasing within a session
    assert steps.max() <= pd.Timedelta(minutes=30)
    assert (grouped["timestamp"].max() - grouped["timestamp"].min()).median() < pd.Timedelta(
        minutes=30
    )
    # a session's search comes first, and a click is followed by a view of that item
    ordered = in_session.sort_values(["session_id", "timestamp"])
    first = ordered.groupby("session_id").head(1)
    assert (ordered["type"] == "search").sum() == (first["type"] == "search").sum()
    nxt = ordered.groupby("session_id").shift(-1)
    clicks = ordered["type"] == "click"
    assert (nxt.loc[clicks, "type"] == "view").all()
    assert (nxt.loc[clicks, "item_id"] == ordered.loc[clicks, "item_id"]).all()
    assert (nxt.loc[ordered["type"] == "search", "type"] == "click").all()


def test_search_queries_come_from_the_clicked_items(full):
    events, items = full.events, full.items.set_index("item_id")
    ordered = events.dropna(subset=["session_id"])
    nxt = ordered.groupby("session_id").shift(-1)
    searches = ordered["type"] == "search"
    queries = ordered.loc[searches, "query"]
    clicked = nxt.loc[searches, "item_id"]
    text = (items["title"] + " " + items["category"]).str.lower()
    matches = [
        bool(set(q.lower().split()) & set(re.split(r"[ ,]+", text[i])))
        for q, i in zip(queries, clicked, strict=True)
    ]
    assert np.mean(matches) > 0.85
    lower = queries.map(lambda q: q == q.lower()).mean()
    assert 0.5 < lower < 0.95  # mostly typed lower-case, not always
    assert 0.3 * len(queries) < queries.nunique() < 0.9 * len(queries)  # popular queries recur
    # a few queries have typos: words that are in no title or category
    vocabulary = set(" ".join(text).replace(",", " ").split())
    typos = queries.map(lambda q: any(w not in vocabulary for w in q.lower().split()))
    assert 0.02 < typos.mean() < 0.15


def test_funnel_conversion(full):
    events, price = full.events, full.items.set_index("item_id")["price"]
    counts = events["type"].value_counts()
    assert 0.05 <= counts["add_to_cart"] / counts["view"] <= 0.2
    assert 0.35 <= counts["purchase"] / counts["add_to_cart"] <= 0.75
    carts = events[events["type"] == "add_to_cart"]
    assert (carts["value"] >= 1).all() and (carts["value"] % 1 == 0).all()
    assert (carts["value"] == 1).mean() > 0.8
    buys = events[events["type"] == "purchase"]
    quantity = buys["value"] / price.reindex(buys["item_id"]).to_numpy()
    assert np.allclose(quantity, np.round(quantity), atol=1e-6) and (quantity >= 1 - 1e-9).all()
    # every purchase follows an add_to_cart of the item in the same session
    cart_time = carts.groupby(["session_id", "item_id"])["timestamp"].min()
    key = pd.MultiIndex.from_frame(buys[["session_id", "item_id"]])
    carted_at = cart_time.reindex(key)
    assert carted_at.notna().all()
    assert (carted_at.to_numpy() < buys["timestamp"].to_numpy()).all()


def test_ratings_follow_purchases_and_taste(full):
    events = full.events
    ratings = events[events["type"] == "rating"]
    assert set(ratings["value"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ratings["value"].nunique() == 5
    buys = events[events["type"] == "purchase"]
    bought_at = buys.groupby(["user_id", "item_id"])["timestamp"].min()
    key = pd.MultiIndex.from_frame(ratings[["user_id", "item_id"]])
    assert (bought_at.reindex(key).to_numpy() < ratings["timestamp"].to_numpy()).all()
    # items of a user's favourite brands are rated higher
    brand_index = {b: i for i, b in enumerate(full.latent["brands"])}
    brands = full.items.set_index("item_id")["brand"].map(brand_index)
    rated_brand = brands.reindex(ratings["item_id"]).to_numpy()
    favourites = full.latent["favourite_brands"][user_index(ratings["user_id"])]
    is_favourite = (favourites == rated_brand[:, None]).any(axis=1)
    assert is_favourite.sum() > 50 and (~is_favourite).sum() > 50
    values = ratings["value"].to_numpy()
    assert values[is_favourite].mean() > values[~is_favourite].mean() + 0.2


def test_consumables_are_bought_again(full, small):
    for store in (full, small):
        buys = store.events[store.events["type"] == "purchase"]
        per_pair = buys.groupby(["user_id", "item_id"]).size()
        repeated = per_pair[per_pair >= 2].reset_index()
        assert len(repeated) > 0
    category = full.items.set_index("item_id")["category"]
    buys = full.events[full.events["type"] == "purchase"]
    per_pair = buys.groupby(["user_id", "item_id"]).size()
    repeated = per_pair[per_pair >= 2].reset_index()
    assert len(repeated) >= 100
    assert category.reindex(repeated["item_id"]).isin(CONSUMABLE).mean() > 0.9


# ---- the choice model --------------------------------------------------------------------


def test_choices_follow_category_tastes(full):
    events = full.events.dropna(subset=["item_id"])
    tops = top_of(full).reindex(events["item_id"]).to_numpy()
    table = pd.crosstab(events["user_id"].to_numpy(), tops)
    table = table.reindex(columns=list(full.latent["top_categories"]), fill_value=0)
    latent = full.latent["top_preference"][user_index(table.index.to_series())]
    agree = table.to_numpy().argmax(axis=1) == latent.argmax(axis=1)
    assert agree.mean() > 0.6
    assert latent.shape == (len(full.users), len(TOP_CATEGORIES))


def test_choices_follow_brand_and_price_tastes(full):
    views = full.events[full.events["type"] == "view"]
    items = full.items.set_index("item_id")
    brand_index = {b: i for i, b in enumerate(full.latent["brands"])}
    users = user_index(views["user_id"])
    brand = items["brand"].map(brand_index).reindex(views["item_id"]).to_numpy()
    favourite = (full.latent["favourite_brands"][users] == brand[:, None]).any(axis=1)
    # by chance: the share of the viewed item's category made by the user's favourites
    category = items["category"].reindex(views["item_id"]).to_numpy()
    stock = pd.crosstab(items["category"], items["brand"].map(brand_index))
    stock = stock.reindex(columns=range(len(brand_index)), fill_value=0)
    shares = (stock.to_numpy().T / stock.to_numpy().sum(axis=1)).T
    row = stock.index.get_indexer(category)
    chance = np.take_along_axis(shares[row], full.latent["favourite_brands"][users], 1).sum(1)
    assert favourite.mean() > 2 * chance.mean()
    # users who like dearer things view dearer items within a category
    median = items.groupby("category")["price"].median()
    relative = np.log(
        items["price"].reindex(views["item_id"]).to_numpy()
        / median.reindex(items["category"].reindex(views["item_id"])).to_numpy()
    )
    per_user = pd.Series(relative).groupby(users).mean()
    preference = full.latent["price_preference"][per_user.index.to_numpy()]
    assert np.corrcoef(preference, per_user.to_numpy())[0, 1] > 0.3


# ---- files ------------------------------------------------------------------------------


def test_write_demo_files_parse_back(tmp_path, small):
    paths = write_demo(small, tmp_path / "demo")
    assert set(paths) == {"items", "users", "events"}
    assert [p.name for p in paths.values()] == ["items.jsonl", "users.jsonl", "events.csv"]
    for kind in ("items", "users"):
        lines = paths[kind].read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(getattr(small, kind))
        first = json.loads(lines[0])
        assert isinstance(first["attributes"], dict) and first["created_at"].endswith("Z")
    text = paths["events"].read_text(encoding="utf-8").splitlines()
    assert text[0] == ",".join(EVENT_COLUMNS) and len(text) == len(small.events) + 1
    csv = pd.read_csv(paths["events"], keep_default_na=False, na_values=[""])
    assert csv["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()
    # and the project's validating loader reads every file back
    loaded = {kind: load_records(path, kind) for kind, path in paths.items()}
    for kind in ("items", "users", "events"):
        assert len(loaded[kind]) == len(getattr(small, kind))
    assert loaded["items"]["title"].tolist() == small.items["title"].tolist()
    pd.testing.assert_series_equal(loaded["events"]["timestamp"], small.events["timestamp"])
    pd.testing.assert_series_equal(loaded["events"]["value"], small.events["value"])
    assert (
        loaded["events"]["query"].fillna("").tolist() == small.events["query"].fillna("").tolist()
    )


def test_end_moves_the_window():
    end = datetime(2025, 3, 15, tzinfo=UTC)
    store = generate(DemoConfig(n_items=100, n_users=30, days=10, end=end))
    ts = store.events["timestamp"]
    assert ts.min() >= pd.Timestamp(end.replace(tzinfo=None) - timedelta(days=9))
    assert ts.max() < pd.Timestamp(end.replace(tzinfo=None) + timedelta(days=1))
