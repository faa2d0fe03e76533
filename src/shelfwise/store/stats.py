"""Descriptive statistics of a store: counts, sparsity, events per type, top categories."""

from __future__ import annotations

from typing import Any

import pandas as pd

from shelfwise.store.base import Store


def store_stats(store: Store, top: int = 10) -> dict[str, Any]:
    """A JSON-ready summary of what the store holds."""
    counts = store.counts()
    items = store.items()
    inter = store.interactions()
    events_by_type = store.event_type_counts()
    pairs = len(inter[["user_id", "item_id"]].drop_duplicates()) if len(inter) else 0
    active_users = int(inter["user_id"].nunique()) if len(inter) else 0
    active_items = int(inter["item_id"].nunique()) if len(inter) else 0
    # the matrix a model sees spans the catalogue and every item with interactions; without
    # an ingested catalogue the catalogue count is 0, which must not make sparsity 100%
    n_items = len(set(items["item_id"]) | set(inter["item_id"])) if len(inter) else counts["items"]
    n_users = max(int(counts["users"]), active_users)
    cells = n_users * n_items
    out: dict[str, Any] = {
        "store": store.url,
        "items": int(counts["items"]),
        "users": int(counts["users"]),
        "events": int(counts["events"]),
        "events_by_type": {k: int(v) for k, v in sorted(events_by_type.items())},
        "unknown_item_events": store.unknown_item_events(),
        "interactions": len(inter),
        "user_item_pairs": pairs,
        "users_with_interactions": active_users,
        "items_with_interactions": active_items,
        "items_in_stock": int(items["in_stock"].sum()) if len(items) else 0,
        "matrix": {"users": n_users, "items": int(n_items)},
        "density": round(pairs / cells, 6) if cells else 0.0,
        "sparsity": round(1.0 - pairs / cells, 6) if cells else 1.0,
    }
    if len(inter):
        per_user = inter.groupby("user_id").size()
        out["interactions_per_user"] = {
            "min": int(per_user.min()),
            "median": float(per_user.median()),
            "mean": round(float(per_user.mean()), 2),
            "max": int(per_user.max()),
        }
        out["time_range"] = {
            "first": pd.Timestamp(inter["timestamp"].min()).isoformat(),
            "last": pd.Timestamp(inter["timestamp"].max()).isoformat(),
        }
    if len(items):
        top_level = items["category"].fillna("").str.split(" > ").str[0]
        out["top_categories"] = {
            k: int(v) for k, v in top_level[top_level != ""].value_counts().head(top).items()
        }
        leaf_counts = items["category"].replace("", pd.NA).dropna().value_counts().head(top)
        out["top_category_paths"] = {k: int(v) for k, v in leaf_counts.items()}
        if len(inter):
            cat_of = items.set_index("item_id")["category"]
            by_events = inter["item_id"].map(cat_of).dropna()
            by_events = by_events[by_events != ""].value_counts().head(top)
            out["top_categories_by_interactions"] = {k: int(v) for k, v in by_events.items()}
        prices = items["price"].dropna()
        if len(prices):
            out["price"] = {
                "min": round(float(prices.min()), 2),
                "median": round(float(prices.median()), 2),
                "max": round(float(prices.max()), 2),
            }
    return out


def _table(counts: dict[str, int]) -> list[str]:
    width = max((len(k) for k in counts), default=0)
    return [f"  {k:<{width}}  {v:>9,}" for k, v in counts.items()]


def format_stats(stats: dict[str, Any]) -> str:
    """Human-readable rendering of `store_stats` output."""
    lines = [
        f"store        {stats['store']}",
        f"items        {stats['items']:,} ({stats['items_in_stock']:,} in stock)",
        f"users        {stats['users']:,}",
        f"events       {stats['events']:,}",
        f"unknown item {stats.get('unknown_item_events', 0):,} events (item not in the catalogue)",
        f"interactions {stats['interactions']:,} "
        f"({stats['user_item_pairs']:,} distinct user-item pairs)",
        f"sparsity     {stats['sparsity']:.4%}",
    ]
    if stats["events_by_type"]:
        lines.append("events by type:")
        lines += [f"  {k:<12} {v:>10,}" for k, v in stats["events_by_type"].items()]
    if "interactions_per_user" in stats:
        p = stats["interactions_per_user"]
        lines.append(
            f"per user     min {p['min']}, median {p['median']:g}, mean {p['mean']}, max {p['max']}"
        )
        t = stats["time_range"]
        lines.append(f"time range   {t['first']} .. {t['last']}")
    if stats.get("top_categories"):
        lines.append("top categories (items):")
        lines += _table(stats["top_categories"])
    if stats.get("top_categories_by_interactions"):
        lines.append("top categories (interactions):")
        lines += _table(stats["top_categories_by_interactions"])
    return "\n".join(lines)
