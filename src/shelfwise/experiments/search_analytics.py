"""Search analytics from the search impressions: top queries, zero-result queries,
click-through by query and by position, and the same over time (per day).

Queries are compared case-folded with whitespace collapsed ("Red  Shoes" = "red shoes");
the empty query (browsing) is left out. A search is clicked when an event with its
`request_id` is a click (see `attribution`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shelfwise.experiments.attribution import list_outcomes, records, slot_outcomes, summarise


def normalise_query(text: object) -> str:
    """Case-folded, whitespace collapsed."""
    return " ".join(str(text or "").casefold().split())


def search_analytics(
    impressions: pd.DataFrame, outcomes: pd.DataFrame, top: int = 20, positions: int = 10
) -> dict[str, Any]:
    """`{"searches", "zero_result_rate", "ctr", "top_queries", "zero_result_queries",
    "ctr_by_position", "over_time"}` from impressions of any list type (only search rows
    are used)."""
    imps = impressions[impressions["list_type"] == "search"].copy()
    imps["query"] = [normalise_query(q) for q in imps["query"]]
    imps = imps[imps["query"] != ""]
    if imps.empty:
        return {
            "searches": 0,
            "zero_result_rate": None,
            "ctr": None,
            "top_queries": [],
            "zero_result_queries": [],
            "ctr_by_position": [],
            "over_time": [],
        }
    lists = list_outcomes(imps, outcomes)
    lists["zero"] = (lists["n_results"] == 0).astype(np.int64)
    by_query = summarise(lists, "query")
    zero = lists.groupby("query")["zero"].sum()
    by_query["zero_results"] = by_query["query"].map(zero).astype(np.int64)
    by_query = by_query.sort_values(["impressions", "query"], ascending=[False, True])
    top_queries = by_query.head(top).rename(columns={"impressions": "searches"})
    zero_rows = by_query[by_query["zero_results"] > 0].sort_values(
        ["zero_results", "query"], ascending=[False, True]
    )
    zero_queries = zero_rows.head(top).loc[:, ["query", "zero_results", "impressions"]]
    slots = slot_outcomes(imps, outcomes)
    by_position = summarise(slots[slots["position"] <= positions], "position")
    lists["date"] = lists["timestamp"].dt.floor("D").dt.strftime("%Y-%m-%d")
    daily = summarise(lists, "date").rename(columns={"impressions": "searches"})
    daily["zero_result_rate"] = (
        daily["date"].map(lists.groupby("date")["zero"].mean()).astype(np.float64)
    )
    overall = summarise(lists)
    return {
        "searches": len(lists),
        "zero_result_rate": float(lists["zero"].mean()),
        "ctr": float(overall["ctr"].iloc[0]),
        "top_queries": records(
            top_queries.loc[:, ["query", "searches", "clicks", "ctr", "zero_results"]]
        ),
        "zero_result_queries": records(zero_queries.rename(columns={"impressions": "searches"})),
        "ctr_by_position": records(
            by_position.loc[:, ["position", "impressions", "clicks", "ctr"]]
        ),
        "over_time": records(
            daily.loc[:, ["date", "searches", "clicks", "ctr", "zero_result_rate"]]
        ),
    }
