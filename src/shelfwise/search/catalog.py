"""The catalogue state of a `SearchService` and how it follows live changes.

* `canonical_items`: an items frame with every canonical column (the form the service
  keeps in `service.items`), checked for missing, empty and repeated ids;
* `event_popularity`, `past_queries`: what the service learns from events at build
  (weighted, time-decayed popularity per row; how often each query was searched);
* `result_columns`, `update_result_columns`: the result fields as numpy arrays, written
  row by row as items change, so a search does not convert the frame again;
* `ChangeLog`: the catalogue revision and the rows each change touched
  (`SearchService.revision`, `SearchService.changes_since`);
* `rows_of`, `upsert`, `delete`, `sync`: the work behind `SearchService.rows_of`,
  `upsert_items`, `delete_items` and `sync_catalog`. They change the service they are given
  (its index, items, filters, typo words, suggestions, dense index and change log) and
  expect the caller to hold the service's lock.
"""

from __future__ import annotations

import json
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shelfwise.data.frames import ITEM_COLUMNS
from shelfwise.errors import DataError, UnknownIdError
from shelfwise.search.autocomplete import normalise_phrase
from shelfwise.search.base import Updatable
from shelfwise.search.documents import item_documents

if TYPE_CHECKING:
    import pandas as pd

    from shelfwise.search.service import SearchService

__all__ = [
    "CHANGE_LOG",
    "COMPARED",
    "ChangeLog",
    "canonical_items",
    "delete",
    "event_popularity",
    "past_queries",
    "result_columns",
    "rows_of",
    "sync",
    "update_result_columns",
    "upsert",
]

CHANGE_LOG = 4096
"""Catalogue changes remembered for `changes_since` (older readers rebuild their state)."""
COMPARED = ("title", "brand", "category", "description", "price", "in_stock", "attributes")
"""The item columns `sync_catalog` compares to find changed rows."""


def result_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The result fields of a canonical items frame as numpy arrays of their own
    (writable: `update_result_columns` writes changed rows into them)."""
    return {
        "item_id": frame["item_id"].astype(str).to_numpy(object, copy=True),
        "title": frame["title"].to_numpy(object, copy=True),
        "brand": frame["brand"].to_numpy(object, copy=True),
        "category": frame["category"].to_numpy(object, copy=True),
        "price": frame["price"].to_numpy(np.float64, na_value=np.nan, copy=True),
        "in_stock": frame["in_stock"].fillna(False).astype(bool).to_numpy(copy=True),
    }


def update_result_columns(
    columns: dict[str, np.ndarray], rows: np.ndarray, new: pd.DataFrame, n_rows: int
) -> None:
    """Write the changed `rows` (the rows of `new`, a canonical frame) into `columns`,
    growing every array to `n_rows` first when rows were appended."""
    part = result_columns(new)
    for name, arr in columns.items():
        if arr.size < n_rows:
            grown = np.empty(n_rows, dtype=arr.dtype)
            grown[: arr.size] = arr
            arr = columns[name] = grown
        arr[rows] = part[name]


def canonical_items(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every canonical item column (defaults for missing ones), ids as str."""
    import pandas as pd

    if "item_id" not in frame:
        raise DataError("items need an 'item_id' column")
    if "title" not in frame:
        raise DataError("items need a 'title' column")
    out = frame.copy()
    out["item_id"] = out["item_id"].astype(str).str.strip()
    if (out["item_id"] == "").any():
        raise DataError("item_id must not be empty")
    dup = out["item_id"][out["item_id"].duplicated()]
    if not dup.empty:
        raise DataError(f"item_id repeats within the frame: {sorted(set(dup))[:5]}")
    defaults: dict[str, Any] = {
        "description": "",
        "category": "",
        "brand": "",
        "price": np.nan,
        "currency": "USD",
        "in_stock": True,
        "attributes": "{}",
        "created_at": pd.Timestamp(datetime.now(UTC)).tz_localize(None),
    }
    for name, default in defaults.items():
        if name not in out:
            out[name] = default
    out["attributes"] = [
        v if isinstance(v, str) else json.dumps(v or {}, sort_keys=True, default=str)
        for v in out["attributes"].tolist()
    ]
    out["price"] = pd.to_numeric(out["price"], errors="coerce").astype("float64")
    ts = pd.to_datetime(out["created_at"], errors="coerce", utc=True)
    out["created_at"] = ts.dt.tz_localize(None).astype("datetime64[us]")
    out["in_stock"] = out["in_stock"].fillna(True).astype(bool)
    return out.loc[:, list(ITEM_COLUMNS)].reset_index(drop=True)


def event_popularity(
    events: pd.DataFrame | None,
    id_to_row: Mapping[str, int],
    n_rows: int,
    weights: Mapping[str, float],
    half_life_days: float | None,
) -> np.ndarray:
    """Weighted, time-decayed event counts per row (0 for items without events)."""
    import pandas as pd

    out = np.zeros(n_rows, dtype=np.float64)
    if events is None or events.empty or "item_id" not in events:
        return out
    ev = events[events["item_id"].notna()]
    w = ev["type"].map(dict(weights)).fillna(0.0).to_numpy(np.float64)
    if half_life_days and "timestamp" in ev and len(ev):
        ts = pd.to_datetime(ev["timestamp"], errors="coerce", utc=True)
        age = (ts.max() - ts).dt.total_seconds().fillna(0.0).to_numpy() / 86_400.0
        w = w * np.power(0.5, age / half_life_days)
    rows = ev["item_id"].astype(str).map(id_to_row)
    ok = rows.notna().to_numpy() & (w > 0)
    np.add.at(out, rows[ok].astype(np.int64).to_numpy(), w[ok])
    return out


def past_queries(events: pd.DataFrame | None) -> Counter[str]:
    """How often each normalised query was searched."""
    if events is None or events.empty or "query" not in events:
        return Counter()
    q = events.loc[(events["type"] == "search") & events["query"].notna(), "query"]
    return Counter(normalise_phrase(str(v)) for v in q.tolist() if str(v).strip())


class ChangeLog:
    """The catalogue revision and the rows each change touched, newest `maxlen` changes
    kept, so a reader caching per-item state recomputes only what changed since its
    revision (or rebuilds when the log no longer reaches back that far)."""

    def __init__(self, maxlen: int = CHANGE_LOG) -> None:
        self.revision = 0
        self._entries: deque[tuple[int, np.ndarray]] = deque(maxlen=maxlen)

    def record(self, rows: np.ndarray) -> None:
        """One change to `rows`: bumps the revision and remembers the rows."""
        self.revision += 1
        self._entries.append((self.revision, np.asarray(rows, dtype=np.int64).copy()))

    def since(self, revision: int) -> np.ndarray | None:
        """Rows changed after `revision`, sorted; None when the log does not reach back
        that far or `revision` is one this log never had."""
        if revision == self.revision:
            return np.empty(0, np.int64)
        if revision > self.revision or not self._entries:
            return None
        if self._entries[0][0] > revision + 1:
            return None
        parts = [rows for rev, rows in self._entries if rev > revision]
        return np.unique(np.concatenate(parts))


def rows_of(service: SearchService, ids: Iterable[str]) -> np.ndarray:
    """Rows of live items; `UnknownIdError` lists ids that are not in the catalog."""
    ids = [str(i) for i in ids]
    rows = [service.id_to_row.get(i, -1) for i in ids]
    alive = service.index.alive
    bad = [i for i, r in zip(ids, rows, strict=True) if r < 0 or not alive[r]]
    if bad:
        raise UnknownIdError(f"item ids not in the catalog: {bad[:10]}")
    return np.asarray(rows, dtype=np.int64)


def upsert(service: SearchService, frame: pd.DataFrame) -> dict[str, int]:
    """Add new items to `service` and replace existing ones (see
    `SearchService.upsert_items`); returns `{"inserted", "updated"}`."""
    import pandas as pd

    new = canonical_items(frame)
    if new.empty:
        return {"inserted": 0, "updated": 0}
    rows = []
    next_row = len(service.items)
    inserted = 0
    alive = service.index.alive
    old_titles: list[str] = []
    for item_id in new["item_id"].tolist():
        row = service.id_to_row.get(item_id)
        if row is None:
            row = next_row
            next_row += 1
        if row < len(alive) and alive[row]:
            old_titles.append(str(service.items.at[row, "title"] or ""))
        else:
            inserted += 1
        rows.append(row)
    rows_arr = np.asarray(rows, dtype=np.int64)
    updated = len(new) - inserted
    service.index.upsert(rows_arr, item_documents(new))  # validates, then applies
    appended = rows_arr >= len(service.items)
    if appended.any():
        service.items = pd.concat(
            [service.items, new[appended].set_axis(rows_arr[appended])], axis=0
        ).sort_index()
        service.popularity = np.concatenate([service.popularity, np.zeros(int(appended.sum()))])
    if (~appended).any():
        old = rows_arr[~appended]
        service.items.loc[old, list(ITEM_COLUMNS)] = new[~appended].to_numpy()
    if service._view is not None:
        # a write must not make the next search convert every column again
        update_result_columns(service._view, rows_arr, new, len(service.items))
    for item_id, row in zip(new["item_id"].tolist(), rows, strict=True):
        service.id_to_row[item_id] = row
    service.filters.set_rows(rows_arr, new)
    words = Counter(
        tok
        for texts in item_documents(new).values()
        for text in texts
        for tok in service.analyzer.tokens(text)
    )
    service.words.add(dict(words))
    for title in old_titles:
        service.suggestions.remove(title, "title")
    for title, cat in zip(new["title"].tolist(), new["category"].tolist(), strict=True):
        if not isinstance(title, str) or not title:
            continue  # an untitled row is dead: nothing to suggest
        service.suggestions.add(title, "title", 1e-3)
        if isinstance(cat, str) and cat:
            service.suggestions.add(cat, "category", 1.0)
    if isinstance(service.dense, Updatable):
        service.dense.upsert(rows_arr, new)
    titles = new["title"].to_numpy(dtype=object)
    untitled = rows_arr[pd.isna(titles) | (titles == "")]
    if untitled.size:  # like a placeholder row at build: kept as a dead row
        service.index.delete(untitled)
        if isinstance(service.dense, Updatable):
            service.dense.delete(untitled)
    service._changes.record(rows_arr)
    return {"inserted": inserted, "updated": updated}


def delete(service: SearchService, ids: Iterable[str]) -> int:
    """Remove items from `service` (all or nothing, see `SearchService.delete_items`);
    returns how many were removed."""
    rows = rows_of(service, ids)
    if rows.size == 0:
        return 0
    rows = np.unique(rows)
    service.index.delete(rows)
    for title in service.items["title"].to_numpy(object)[rows].tolist():
        if title:
            service.suggestions.remove(str(title), "title")
    if isinstance(service.dense, Updatable):
        service.dense.delete(rows)
    service._changes.record(rows)
    return int(rows.size)


def sync(
    service: SearchService,
    frame: pd.DataFrame,
    alive: np.ndarray | None,
    rows: np.ndarray | None,
) -> dict[str, int]:
    """Bring `service` in step with the catalogue `frame` (see
    `SearchService.sync_catalog`); returns `{"upserted", "deleted"}`."""
    import pandas as pd

    n, m = len(service.items), len(frame)
    if alive is not None and len(alive) != m:
        raise DataError(f"alive has {len(alive)} entries for {m} catalogue rows")
    if m < n or "item_id" not in frame:
        raise DataError(
            f"the catalogue has {m} rows, the search service {n}: build the search "
            "service from this catalogue"
        )
    if rows is None:
        check = np.arange(m, dtype=np.int64)
    else:
        wanted = np.asarray(rows, dtype=np.int64).ravel()
        wanted = wanted[(wanted >= 0) & (wanted < n)]
        check = np.union1d(wanted, np.arange(n, m, dtype=np.int64))
    old = check[check < n]  # sorted: the old rows come first
    sub = frame.iloc[check]
    ids = sub["item_id"].astype(str).to_numpy(dtype=object)
    ours_ids = service.items["item_id"].astype(str).to_numpy(dtype=object)[old]
    if not np.array_equal(ids[: old.size], ours_ids):
        raise DataError(
            "the catalogue names other items than the search service at the same rows; "
            "build the search service from this catalogue"
        )
    titles = sub["title"].to_numpy(dtype=object)
    live = ~np.asarray(pd.isna(titles) | (titles == ""), dtype=bool)
    if alive is not None:
        live &= np.asarray(alive, dtype=bool)[check]
    canon = canonical_items(sub)
    differs = check >= n
    for column in COMPARED:
        if column not in sub:
            continue
        a = canon[column].iloc[: old.size].reset_index(drop=True)
        b = service.items[column].iloc[old].reset_index(drop=True)
        same = (a == b).to_numpy(dtype=bool) | (a.isna() & b.isna()).to_numpy(dtype=bool)
        differs[: old.size] |= ~same
    ours = np.zeros(check.size, dtype=bool)
    ours[: old.size] = service.index.alive[old]
    todo = ((differs | ~ours) & live) | (check >= n)
    if todo.any():
        upsert(service, canon[todo])
    ours[:] = service.index.alive[check]
    gone = check[ours & ~live]
    if gone.size:
        delete(service, service.items["item_id"].to_numpy(dtype=object)[gone].tolist())
    return {"upserted": int(todo.sum()), "deleted": int(gone.size)}
