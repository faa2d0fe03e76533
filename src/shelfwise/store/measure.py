"""The SQL of impressions and experiments, shared by the DuckDB and PostgreSQL stores.

`MeasureSql` is a mixin of `SqlStore` (which supplies the connection, transactions and
dialect hooks). Two tables:

- `impressions`: one row per list the API served: `request_id` (primary key), when, to
  whom, the list type (search, recommendations, similar, bought_together, push_plan), the
  query and its result count (search), the shown item ids in order (a JSON array; the
  position of an item is its index + 1), the propensity of each shown item when the policy
  was stochastic (a JSON array aligned with the items, else NULL), the policy (fallback step
  or search engine) and model version, and the experiment, variant and `exposed` flag
  (whether the variant changed what this list showed).
- `experiments`: one row per defined experiment: its spec as JSON, status, start and stop.

Events carry an optional `request_id` (a column of `events`); attribution joins them to
impressions. None of these writes moves the store's fingerprint: impressions and
experiments are measurements, not training data, and trigger no retraining.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from shelfwise.errors import DataError, StoreError
from shelfwise.store.base import ExperimentRow
from shelfwise.store.rows import (
    BIGINT,
    BOOL,
    TEXT,
    TIMESTAMP,
    naive_utc,
    quote,
    refuse_bad_text,
    time_window,
)

IMPRESSION_TYPES: dict[str, str] = {
    "request_id": TEXT,
    "timestamp": TIMESTAMP,
    "user_id": TEXT,
    "list_type": TEXT,
    "query": TEXT,
    "items": TEXT,
    "propensities": TEXT,
    "marginal_propensities": TEXT,
    "n_results": BIGINT,
    "policy": TEXT,
    "model_version": TEXT,
    "experiment_id": TEXT,
    "variant": TEXT,
    "exposed": BOOL,
}
IMPRESSION_COLUMNS: tuple[str, ...] = tuple(IMPRESSION_TYPES)
OUTCOME_COLUMNS: tuple[str, ...] = (
    "request_id",
    "user_id",
    "item_id",
    "type",
    "value",
    "timestamp",
)
_EXPERIMENT_COLUMNS = "experiment_id, spec, status, created_at, stopped_at"
LIST_KEYS = ("list_type", "experiment_id", "variant", "policy", "model_version", "query")
"""What `impression_counts` may group by (and `position`, per shown slot)."""
COUNT_COLUMNS = ("impressions", "clicks", "add_to_carts", "purchases", "revenue")


def _probabilities(row: dict[str, Any], field: str, i: int, n: int) -> list[float] | None:
    """A row's per-item probabilities (`field`), checked: one per item, each in [0, 1]."""
    values = row.get(field)
    if values is None:
        return None
    chances = [float(p) for p in values]
    if len(chances) != n:
        raise DataError(f"impressions: row {i}: {len(chances)} {field} for {n} items")
    if any(not 0.0 <= p <= 1.0 for p in chances):
        raise DataError(f"impressions: row {i}: {field} must lie in [0, 1]")
    return chances


def impressions_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Impression dicts (items / propensities as lists) -> a frame of `IMPRESSION_COLUMNS`
    with the lists as JSON text, checked: a DataError names the row and the field."""
    items: list[str] = []
    props: list[str | None] = []
    marginals: list[str | None] = []
    stamps: list[Any] = []
    counts: list[int] = []
    for i, row in enumerate(rows):
        if not row.get("request_id"):
            raise DataError(f"impressions: row {i}: request_id is required")
        if not row.get("list_type"):
            raise DataError(f"impressions: row {i}: list_type is required")
        shown = [str(v) for v in row.get("items") or ()]
        chances = _probabilities(row, "propensities", i, len(shown))
        marginal = _probabilities(row, "marginal_propensities", i, len(shown))
        ts = row.get("timestamp")
        if ts is None:
            raise DataError(f"impressions: row {i}: timestamp is required")
        plain = isinstance(ts, datetime) and ts.tzinfo is None  # naive UTC already
        stamps.append(ts if plain else naive_utc(ts))
        items.append(json.dumps(shown))
        props.append(None if chances is None else json.dumps(chances))
        marginals.append(None if marginal is None else json.dumps(marginal))
        n = row.get("n_results")
        counts.append(len(shown) if n is None else int(n))

    def text(column: str) -> pd.Series:
        values = [None if (v := r.get(column)) is None else str(v) for r in rows]
        return pd.Series(values, dtype=object)

    frame = pd.DataFrame(
        {
            "request_id": text("request_id"),
            "timestamp": pd.Series(pd.to_datetime(stamps), dtype="datetime64[us]"),
            "user_id": text("user_id"),
            "list_type": text("list_type"),
            "query": text("query"),
            "items": pd.Series(items, dtype=object),
            "propensities": pd.Series(props, dtype=object),
            "marginal_propensities": pd.Series(marginals, dtype=object),
            "n_results": pd.Series(counts, dtype=np.int64),
            "policy": text("policy"),
            "model_version": text("model_version"),
            "experiment_id": text("experiment_id"),
            "variant": text("variant"),
            "exposed": pd.Series([bool(r.get("exposed", False)) for r in rows], dtype=bool),
        }
    )
    return frame.loc[:, list(IMPRESSION_COLUMNS)]


T = TypeVar("T")


class _Sql(Protocol):
    """What `MeasureSql` needs of the `SqlStore` it is mixed into."""

    @property
    def placeholder(self) -> str: ...

    @property
    def backend(self) -> str: ...

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def _fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def _stage(self, name: str, frame: pd.DataFrame, types: Mapping[str, str]) -> None: ...

    def _unstage(self, name: str) -> None: ...

    def _reading(self) -> AbstractContextManager[None]: ...

    def _writing(
        self, what: str, work: Callable[[], tuple[T, bool]], bump_revision: bool = True
    ) -> T: ...


def _sql_type(kind: str) -> str:
    return {TEXT: "TEXT", TIMESTAMP: "TIMESTAMP", BIGINT: "BIGINT", BOOL: "BOOLEAN"}[kind]


class MeasureSql:
    """Impressions and experiments over a `SqlStore` (see the module doc)."""

    def _measure_schema(self) -> list[str]:
        """Statements creating (idempotently) what this mixin reads and writes."""
        ts = quote("timestamp")
        cols = ", ".join(
            f"{quote(c)} {_sql_type(t)}" + (" PRIMARY KEY" if c == "request_id" else "")
            for c, t in IMPRESSION_TYPES.items()
        )
        return [
            "ALTER TABLE events ADD COLUMN IF NOT EXISTS request_id TEXT",
            "CREATE INDEX IF NOT EXISTS events_request_id_idx ON events (request_id)",
            f"CREATE TABLE IF NOT EXISTS impressions ({cols})",
            # stores made before marginal propensities were logged
            "ALTER TABLE impressions ADD COLUMN IF NOT EXISTS marginal_propensities TEXT",
            f"CREATE INDEX IF NOT EXISTS impressions_timestamp_idx ON impressions ({ts})",
            "CREATE TABLE IF NOT EXISTS experiments (experiment_id TEXT PRIMARY KEY, "
            "spec TEXT NOT NULL, status TEXT NOT NULL, created_at TIMESTAMP NOT NULL, "
            "stopped_at TIMESTAMP)",
        ]

    def _erase_measure(self: _Sql, user_id: str) -> int:
        """Delete a user's impressions (inside `erase_user`'s transaction)."""
        n = self._execute(f"DELETE FROM impressions WHERE user_id = {self.placeholder}", [user_id])
        return max(int(n), 0)

    # -- impressions ----------------------------------------------------------------------
    def append_impressions(self: _Sql, frame: pd.DataFrame) -> int:
        """Store impressions (a frame from `impressions_frame`) in one transaction; a
        request_id stored already is skipped. Returns the number of new rows."""
        if frame.empty:
            return 0
        missing = [c for c in IMPRESSION_COLUMNS if c not in frame.columns]
        if missing:
            raise DataError(f"impressions: the frame lacks columns {missing}")
        frame = frame.drop_duplicates(subset=["request_id"], keep="first")
        refuse_bad_text("impressions", frame, IMPRESSION_TYPES)
        stage = "sw_stage_impressions"
        columns = ", ".join(quote(c) for c in IMPRESSION_COLUMNS)

        def work() -> tuple[int, bool]:
            self._stage(stage, frame, IMPRESSION_TYPES)
            try:
                n = self._execute(
                    f"INSERT INTO impressions ({columns}) SELECT {columns} FROM {stage} "
                    "ON CONFLICT (request_id) DO NOTHING"
                )
            finally:
                self._unstage(stage)
            n = len(frame) if n < 0 else int(n)
            return n, n > 0

        return int(self._writing("append_impressions", work, bump_revision=False))

    def delete_impressions(self: _Sql, before: datetime) -> int:
        """Delete the impressions served before `before` (naive UTC); returns how many."""
        ts = quote("timestamp")

        def work() -> tuple[int, bool]:
            n = self._execute(f"DELETE FROM impressions WHERE {ts} < {self.placeholder}", [before])
            return max(int(n), 0), True

        return int(self._writing("delete_impressions", work, bump_revision=False))

    def impressions(
        self: _Sql,
        since: datetime | None = None,
        until: datetime | None = None,
        list_types: Sequence[str] | None = None,
        experiment_id: str | None = None,
    ) -> pd.DataFrame:
        """Impressions (`IMPRESSION_COLUMNS`, items and propensities as lists), ordered by
        time; `since` inclusive, `until` exclusive."""
        p, ts = self.placeholder, quote("timestamp")
        where, params = time_window(p, since, until)
        if list_types is not None:
            where.append(f"list_type = ANY({p})")
            params.append([str(t) for t in list_types])
        if experiment_id is not None:
            where.append(f"experiment_id = {p}")
            params.append(experiment_id)
        sql = f"SELECT {', '.join(quote(c) for c in IMPRESSION_COLUMNS)} FROM impressions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {ts}, request_id"
        with self._reading():
            rows = self._fetchall(sql, params)
        frame = pd.DataFrame(rows, columns=list(IMPRESSION_COLUMNS), dtype=object)
        for column in ("user_id", "query", "policy", "model_version", "experiment_id", "variant"):
            values = [v if isinstance(v, str) else None for v in frame[column]]
            frame[column] = pd.Series(values, index=frame.index, dtype=object)
        frame["items"] = [json.loads(v) for v in frame["items"]]
        for column in ("propensities", "marginal_propensities"):
            props = [json.loads(v) if isinstance(v, str) else None for v in frame[column]]
            frame[column] = pd.Series(props, index=frame.index, dtype=object)
        frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
        frame["n_results"] = frame["n_results"].astype("int64")
        frame["exposed"] = frame["exposed"].astype(bool)
        return frame

    def impression_counts(
        self: _Sql,
        by: Sequence[str] = ("list_type",),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> pd.DataFrame:
        """Attributed outcomes per group, aggregated in the database: impressions, and the
        lists (or, grouped by `position`, the shown slots) with a click, an add-to-cart, a
        purchase, and the purchase revenue, from the events whose `request_id` names an
        impression (on a slot: the event's item is the slot's item). Impressions and events
        both in [since, until). One row per group of `by` (`LIST_KEYS`, plus `position`),
        NULL groups last (columns: `by` + `COUNT_COLUMNS`)."""
        keys = list(by)
        bad = [k for k in keys if k not in (*LIST_KEYS, "position")]
        if bad or len(set(keys)) != len(keys):
            allowed = ", ".join((*LIST_KEYS, "position"))
            raise DataError(f"by: {bad or keys} is not a list of distinct keys among {allowed}")
        p = self.placeholder
        slots = "position" in keys
        ev_where, ev_params = time_window(p, since, until)
        ev_where.append("request_id IS NOT NULL")
        ev_where.append("type IN ('click', 'add_to_cart', 'purchase')")
        link = "request_id, item_id" if slots else "request_id"
        outcomes = (
            f"SELECT {link}, "
            "MAX(CASE WHEN type = 'click' THEN 1 ELSE 0 END) AS clicked, "
            "MAX(CASE WHEN type = 'add_to_cart' THEN 1 ELSE 0 END) AS carted, "
            "MAX(CASE WHEN type = 'purchase' THEN 1 ELSE 0 END) AS purchased, "
            "SUM(CASE WHEN type = 'purchase' THEN COALESCE(value, 0) ELSE 0 END) AS revenue "
            f"FROM events WHERE {' AND '.join(ev_where)} GROUP BY {link}"
        )
        im_where, im_params = time_window(p, since, until)
        shown = "SELECT * FROM impressions" + (
            " WHERE " + " AND ".join(im_where) if im_where else ""
        )
        if slots:  # one row per shown item: its id and 1-based position
            if self.backend == "duckdb":
                shown = (
                    f"SELECT s.*, unnest(s.arr) AS item_id, generate_subscripts(s.arr, 1) "
                    f"AS position FROM (SELECT *, from_json(items, '[\"VARCHAR\"]') AS arr "
                    f"FROM ({shown}) w) s"
                )
            else:
                shown = (
                    f"SELECT w.*, e.item_id, e.position FROM ({shown}) w CROSS JOIN LATERAL "
                    "jsonb_array_elements_text(w.items::jsonb) WITH ORDINALITY AS "
                    "e(item_id, position)"
                )
        on = " AND ".join(f"o.{c} = i.{c}" for c in link.split(", "))
        cols = ", ".join(f"i.{quote(k)}" for k in keys)
        group = f" GROUP BY {cols} ORDER BY " + ", ".join(
            f"{c} NULLS LAST" for c in cols.split(", ")
        )
        sql = (
            f"SELECT {cols + ', ' if keys else ''}COUNT(*) AS impressions, "
            "COALESCE(SUM(o.clicked), 0), COALESCE(SUM(o.carted), 0), "
            "COALESCE(SUM(o.purchased), 0), COALESCE(SUM(o.revenue), 0) "
            f"FROM ({shown}) i LEFT JOIN ({outcomes}) o ON {on}" + (group if keys else "")
        )
        with self._reading():
            rows = self._fetchall(sql, [*im_params, *ev_params])
        out = pd.DataFrame(rows, columns=[*keys, *COUNT_COLUMNS], dtype=object)
        for column in COUNT_COLUMNS[:-1]:
            out[column] = out[column].astype(np.int64)
        out["revenue"] = pd.to_numeric(out["revenue"]).astype(np.float64)
        if "position" in keys:
            out["position"] = out["position"].astype(np.int64)
        if not keys and out.empty:
            out = pd.DataFrame([[0, 0, 0, 0, 0.0]], columns=list(COUNT_COLUMNS))
        return out

    def outcome_events(
        self: _Sql, since: datetime | None = None, until: datetime | None = None
    ) -> pd.DataFrame:
        """Events that carry a `request_id` (`OUTCOME_COLUMNS`), ordered by time."""
        p, ts = self.placeholder, quote("timestamp")
        where, params = time_window(p, since, until)
        where.insert(0, "request_id IS NOT NULL")
        sql = (
            f"SELECT {', '.join(quote(c) for c in OUTCOME_COLUMNS)} FROM events "
            f"WHERE {' AND '.join(where)} ORDER BY {ts}, seq"
        )
        with self._reading():
            rows = self._fetchall(sql, params)
        frame = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS), dtype=object)
        frame["value"] = pd.to_numeric(frame["value"]).astype("float64")
        frame["timestamp"] = pd.to_datetime(frame["timestamp"]).astype("datetime64[us]")
        return frame

    # -- experiments ----------------------------------------------------------------------
    def add_experiment(self: _Sql, row: ExperimentRow) -> None:
        """Store a new experiment; `StoreError` if its id exists."""
        p = self.placeholder

        def work() -> tuple[None, bool]:
            found = self._fetchall(
                f"SELECT 1 FROM experiments WHERE experiment_id = {p}", [row.experiment_id]
            )
            if found:
                raise StoreError(f"an experiment '{row.experiment_id}' exists already")
            self._execute(
                f"INSERT INTO experiments ({_EXPERIMENT_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p})",
                [
                    row.experiment_id,
                    json.dumps(row.spec, sort_keys=True),
                    row.status,
                    naive_utc(row.created_at),
                    None if row.stopped_at is None else naive_utc(row.stopped_at),
                ],
            )
            return None, True

        self._writing("add_experiment", work, bump_revision=False)

    @staticmethod
    def _experiment_row(row: Sequence[Any]) -> ExperimentRow:
        def ts(value: Any) -> datetime | None:
            return None if value is None else naive_utc(value)

        created = ts(row[3])
        assert created is not None  # NOT NULL column
        return ExperimentRow(
            experiment_id=str(row[0]),
            spec=json.loads(row[1]),
            status=str(row[2]),
            created_at=created,
            stopped_at=ts(row[4]),
        )

    def experiments(self: _Sql) -> list[ExperimentRow]:
        """Every experiment, oldest first."""
        sql = f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments ORDER BY created_at, experiment_id"
        with self._reading():
            rows = self._fetchall(sql)
        return [MeasureSql._experiment_row(r) for r in rows]

    def get_experiment(self: _Sql, experiment_id: str) -> ExperimentRow | None:
        """One experiment by id, or None."""
        p = self.placeholder
        sql = f"SELECT {_EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = {p}"
        with self._reading():
            rows = self._fetchall(sql, [experiment_id])
        return MeasureSql._experiment_row(rows[0]) if rows else None

    def stop_experiment(self: _Sql, experiment_id: str, at: datetime) -> bool:
        """Mark a running experiment stopped at `at`; False if none is running by that id."""
        p = self.placeholder

        def work() -> tuple[bool, bool]:
            n = self._execute(
                f"UPDATE experiments SET status = 'stopped', stopped_at = {p} "
                f"WHERE experiment_id = {p} AND status = 'running'",
                [naive_utc(at), experiment_id],
            )
            return n > 0, n > 0

        return bool(self._writing("stop_experiment", work, bump_revision=False))
