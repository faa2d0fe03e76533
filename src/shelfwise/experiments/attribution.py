"""Attribution: outcomes (clicks, carts, purchases) joined to the impressions that led to them.

Clients send events with the `request_id` of the list they acted on. An event is
attributed to that impression (the list), and to a position when its item was shown there
(position = index in the shown list + 1). An event whose request id matches no stored
impression is not attributed.

`list_outcomes` gives one row per impression, `slot_outcomes` one per shown item; each
has 0/1 columns `clicked`, `carted`, `purchased` and `revenue` (the sum of attributed
purchase values). `summarise(frame, by)` turns either into rates per group (list type,
position, variant, day ...): impressions, clicks, add_to_carts, purchases, revenue, ctr,
add_to_cart_rate, conversion_rate.

The store computes the same counts in SQL (`Store.impression_counts(by, since, until)`:
GROUP BY over impressions joined to events by request id, without loading rows), which
`GET /v1/analytics/lists` uses; `with_rates` adds the rates. The row-level frames stay for
what needs rows: the per-user tables of experiment results, search analytics by query and
day, off-policy logs. Both give the same counts (a test checks it on random logs).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

OUTCOME_FLAGS = {"click": "clicked", "add_to_cart": "carted", "purchase": "purchased"}
RATE_COLUMNS = (
    "impressions",
    "clicks",
    "add_to_carts",
    "purchases",
    "revenue",
    "ctr",
    "add_to_cart_rate",
    "conversion_rate",
)
_LIST_COLUMNS = [
    "request_id",
    "timestamp",
    "user_id",
    "list_type",
    "query",
    "n_results",
    "policy",
    "experiment_id",
    "variant",
    "exposed",
]


def _attributed(outcomes: pd.DataFrame) -> pd.DataFrame:
    ev = outcomes[outcomes["type"].isin(list(OUTCOME_FLAGS))]
    ev = ev[ev["request_id"].notna()]
    return ev.assign(
        flag=ev["type"].map(OUTCOME_FLAGS),
        revenue=np.where(ev["type"] == "purchase", ev["value"].fillna(0.0), 0.0),
    )


def _flags(ev: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """0/1 flags and revenue per key group of attributed events."""
    if ev.empty:
        empty = {k: pd.Series([], dtype=object) for k in keys}
        empty |= {f: pd.Series([], dtype=np.int64) for f in OUTCOME_FLAGS.values()}
        return pd.DataFrame({**empty, "revenue": pd.Series([], dtype=np.float64)})
    flags = pd.crosstab([ev[k] for k in keys], ev["flag"]).clip(upper=1)
    for name in OUTCOME_FLAGS.values():
        if name not in flags.columns:
            flags[name] = 0
    flags = flags.loc[:, list(OUTCOME_FLAGS.values())]
    revenue = ev.groupby(keys)["revenue"].sum()
    out = flags.join(revenue).reset_index()
    out.columns = [*keys, *OUTCOME_FLAGS.values(), "revenue"]
    return out


def _fill(frame: pd.DataFrame) -> pd.DataFrame:
    for name in OUTCOME_FLAGS.values():
        frame[name] = frame[name].fillna(0).astype(np.int64)
    frame["revenue"] = frame["revenue"].fillna(0.0).astype(np.float64)
    return frame


def list_outcomes(impressions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per impression: its list columns plus clicked, carted, purchased (0/1) and
    revenue from the events that carry its request id."""
    lists = impressions.loc[:, [c for c in _LIST_COLUMNS if c in impressions.columns]]
    flags = _flags(_attributed(outcomes), ["request_id"])
    out = lists.merge(flags, on="request_id", how="left")
    return _fill(out)


def slot_outcomes(impressions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per shown item: list columns, position (1-based), item_id, propensity (given
    the items above it) and marginal (the marginal propensity of the item at that position;
    both NaN for deterministic lists) and the outcome flags of events on that item in that
    list."""
    lists = impressions.loc[:, [c for c in _LIST_COLUMNS if c in impressions.columns]]
    lengths = np.array([len(v) for v in impressions["items"]], dtype=np.int64)
    rep = np.repeat(np.arange(len(impressions)), lengths)
    slots = lists.iloc[rep].reset_index(drop=True)
    positions = [np.arange(1, n + 1, dtype=np.int64) for n in lengths]
    slots["position"] = np.concatenate(positions) if positions else np.zeros(0, np.int64)
    shown = [str(i) for items in impressions["items"] for i in items]
    slots["item_id"] = pd.Series(shown, index=slots.index, dtype=object)
    for column, name in (("propensities", "propensity"), ("marginal_propensities", "marginal")):
        props: list[float] = []
        given = impressions[column] if column in impressions.columns else [None] * len(lengths)
        for items, p in zip(impressions["items"], given, strict=True):
            props.extend([float("nan")] * len(items) if p is None else [float(x) for x in p])
        slots[name] = np.asarray(props, dtype=np.float64)
    ev = _attributed(outcomes)
    ev = ev[ev["item_id"].notna()]
    ev = ev.assign(item_id=pd.Series([str(i) for i in ev["item_id"]], index=ev.index, dtype=object))
    flags = _flags(ev, ["request_id", "item_id"])
    out = slots.merge(flags, on=["request_id", "item_id"], how="left")
    return _fill(out)


def summarise(frame: pd.DataFrame, by: Sequence[str] | str = ()) -> pd.DataFrame:
    """Rates per group of `list_outcomes` or `slot_outcomes` rows (`RATE_COLUMNS`).

    ctr = clicked rows / rows; add_to_cart_rate and conversion_rate likewise; with slot
    rows the denominator is the number of times an item was shown at that grouping.
    """
    keys = [by] if isinstance(by, str) else list(by)
    work = frame.assign(_one=1)
    agg = {
        "impressions": ("_one", "sum"),
        "clicks": ("clicked", "sum"),
        "add_to_carts": ("carted", "sum"),
        "purchases": ("purchased", "sum"),
        "revenue": ("revenue", "sum"),
    }
    if keys:
        out = work.groupby(keys, dropna=False).agg(**agg).reset_index()
    else:
        out = pd.DataFrame({k: [work[c].sum()] for k, (c, _) in agg.items()})
    return with_rates(out, keys)


def with_rates(counts: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Counts per group (impressions, clicks, add_to_carts, purchases, revenue; from
    `summarise` or the store's `impression_counts`) with ctr, add_to_cart_rate and
    conversion_rate added (`RATE_COLUMNS`)."""
    out = counts.copy()
    n = out["impressions"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ctr"] = np.where(n > 0, out["clicks"] / n, np.nan)
        out["add_to_cart_rate"] = np.where(n > 0, out["add_to_carts"] / n, np.nan)
        out["conversion_rate"] = np.where(n > 0, out["purchases"] / n, np.nan)
    return out.loc[:, [*keys, *RATE_COLUMNS]]


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """A summary frame as JSON-ready records (NaN -> None, numpy scalars -> Python)."""
    clean = frame.astype(object).where(frame.notna(), None)
    out: list[dict[str, object]] = []
    for row in clean.to_dict(orient="records"):
        out.append({str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()})
    return out
