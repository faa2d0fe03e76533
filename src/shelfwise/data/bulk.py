"""The bulk path of `load_records` for event files (CSV/TSV, `.gz` ok): columns, not rows.

The file is parsed with Arrow's CSV reader in blocks (every cell read as text, exactly as
the per-row reader sees it) and each block is checked column by column with the rules of
the `Event` model: ids are text without surrounding white space, NUL bytes or more than
their length, a known event type, a finite number as `value`, an ISO-8601 (or whole unix
seconds) timestamp inside the `TimeBounds`, and what each type needs (a search its query,
the others an item, a rating a value). A row that passes is converted by column; a row that
does not (bad, or merely unusual: a timestamp in another spelling, a missing one, an id
with spaces around it, ...) goes through the per-row path (`io._validate_row`, the same
raw cells, line and pydantic model as `load_records`): so a valid file gives the frame
`load_records` would, and a bad one the same error for the same first bad line, before
anything is written.

When the Arrow reader and Python's `csv` module might see a file differently (a header
needing the csv module's quoting, duplicate or unknown columns to refuse, a row Arrow
cannot split, a row whose cells differ between the two readers), `load_events_bulk`
returns None and the caller validates the file row by row.
"""

from __future__ import annotations

import csv
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from shelfwise.data.frames import EVENT_COLUMNS, records_to_frame
from shelfwise.data.schemas import (
    EVENT_TYPES,
    FIELDS,
    Event,
    Item,
    TimeBounds,
    User,
    to_utc,
)

log = logging.getLogger(__name__)

#: Bytes of the file parsed per block (about 600,000 events of the demo's CSV).
BLOCK_BYTES = 64 << 20

#: Longest text per event field (the model's `max_length` or `_identifier`'s 256).
_MAX_LENGTH = {
    "event_id": 256,
    "user_id": 256,
    "item_id": 256,
    "query": 1000,
    "session_id": 256,
    "request_id": 64,
}
# What `str.strip()` strips (every character `str.isspace()` is true of): a text with none
# of them at either end is stored as it is; the model strips, the bulk path does not.
_SPACES = pa.array(sorted({chr(c) for c in range(0x3001) if chr(c).isspace()}))
# A number as the per-row path parses it to the same float (Arrow's cast and Python's
# float() both round correctly); anything else (exponents, `inf`, spaces) goes row by row.
_NUMBER = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$"
_ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
_ISO_ZONED = _ISO + r"(Z|[+-][0-9]{2}:[0-9]{2})$"
_ISO_NAIVE = _ISO + r"$"
_UNIX = r"^[0-9]{1,10}$"


class _DivergedError(Exception):
    """The Arrow reader and the csv module disagree about a row: validate row by row."""


class _Progress:
    """Bytes read of a long file with the rate and an ETA: a tqdm bar on a terminal, a log
    line every `every` seconds otherwise (a log file)."""

    def __init__(self, name: str, total: int, every: float = 15.0) -> None:
        self.name, self.total, self.every = name, max(total, 1), every
        self.started = self.last = time.perf_counter()
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=name, unit="B", unit_scale=True)

    def update(self, done: int, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(rows=f"{rows:,}")
            return
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.started
        eta = elapsed * (self.total - done) / max(done, 1)
        log.info(
            "%s: %.0f%% read, %d events validated (%.0f a second), about %.0f s left",
            self.name, 100 * done / self.total, rows, rows / max(elapsed, 1e-9), eta,
        )  # fmt: skip

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _RowCursor:
    """The per-row reader (`io._iter_csv`) advanced to a given data row: its line and
    raw cells, for the rows the bulk path hands to the per-row validation."""

    def __init__(self, rows: Iterator[tuple[int, dict[str, Any]]]) -> None:
        self.rows, self.at = rows, -1
        self.current: tuple[int, dict[str, Any]] = (0, {})

    def get(self, index: int) -> tuple[int, dict[str, Any]]:
        while self.at < index:
            try:
                self.current = next(self.rows)
            except StopIteration:
                raise _DivergedError(f"the csv module has no data row {index}") from None
            self.at += 1
        return self.current


def _header(path: Path, delimiter: str) -> list[str] | None:
    """The header as the per-row reader reads it, or None when Arrow could read it
    otherwise (quotes) or the file has none."""
    from shelfwise.data.io import _open_text

    with _open_text(path) as fh:
        first = fh.readline()
    if not first.strip() or '"' in first:
        return None
    return [h.strip().lstrip("\ufeff") for h in next(csv.reader([first], delimiter=delimiter))]


def _missing(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return pc.equal(column, "")


def _simple_text(column: pa.ChunkedArray | pa.Array, limit: int) -> pa.Array:
    """Cells the model keeps as they are: not empty, stripped already, no NUL, not too
    long."""
    first = pc.utf8_slice_codeunits(column, 0, 1)
    last = pc.utf8_slice_codeunits(column, -1)
    stripped = pc.invert(pc.or_(pc.is_in(first, _SPACES), pc.is_in(last, _SPACES)))
    length = pc.utf8_length(column)
    return pc.and_(
        pc.and_(stripped, pc.invert(pc.match_substring(column, "\x00"))),
        pc.and_(pc.greater(length, 0), pc.less_equal(length, limit)),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _to_micros(at: datetime) -> int:
    return (at - _EPOCH) // timedelta(microseconds=1)


def _micros(stamp: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Timestamps as int64 microseconds since the epoch, UTC, null for the cells the per-row
    path must read: ISO-8601 `YYYY-MM-DDTHH:MM:SS[.ffffff]` with `Z`, an offset or none
    (UTC), or whole unix seconds; cast by Arrow (which parses as `datetime.fromisoformat`
    does) when the block's cells all parse, by pandas cell by cell when one does not (a
    30 February: that row goes row by row)."""
    none = pa.scalar(None, pa.string())
    zoned = pc.match_substring_regex(stamp, _ISO_ZONED)
    naive = pc.match_substring_regex(stamp, _ISO_NAIVE)
    unix = pc.match_substring_regex(stamp, _UNIX)
    seconds = pc.cast(pc.if_else(unix, stamp, none), pa.int64())
    parts = [pc.multiply(seconds, 1_000_000)]
    try:
        for mask, kind in ((zoned, pa.timestamp("us", "UTC")), (naive, pa.timestamp("us"))):
            parsed = pc.cast(pc.if_else(mask, stamp, none), kind)
            parts.append(pc.cast(parsed, pa.int64()))
    except pa.ArrowInvalid:
        text = pd.Series(np.asarray(stamp.to_numpy(zero_copy_only=False), dtype=object))
        iso = np.asarray(pc.or_(zoned, naive).to_numpy(zero_copy_only=False), dtype=bool)
        at = pd.to_datetime(text.where(iso), format="ISO8601", utc=True, errors="coerce")
        values = at.dt.as_unit("us").dt.tz_localize(None).to_numpy().view(np.int64)
        parts.append(pa.array(values, mask=~iso | at.isna().to_numpy()))
    return pc.coalesce(*parts)


def _check_block(
    block: pa.RecordBatch, bounds: TimeBounds | None, now: datetime
) -> tuple[np.ndarray, dict[str, Any]]:
    """(bool mask of the rows the columns convert exactly, the converted columns)."""
    n = block.num_rows
    cells = {name: block.column(name) for name in block.schema.names}
    empty = pa.array([""] * n, type=pa.string()) if n else pa.array([], type=pa.string())
    ok = pa.array(np.ones(n, dtype=bool))
    out: dict[str, Any] = {}
    given: dict[str, pa.Array] = {}
    for name, limit in _MAX_LENGTH.items():
        column = cells.get(name, empty)
        missing = _missing(column)
        given[name] = pc.invert(missing)
        good = _simple_text(column, limit)
        if name == "user_id":  # required
            ok = pc.and_(ok, pc.fill_null(good, False))
        else:
            ok = pc.and_(ok, pc.or_(missing, pc.fill_null(good, False)))
        out[name] = pc.if_else(missing, pa.scalar(None, pa.string()), column)
    kind = cells.get("type", empty)
    ok = pc.and_(ok, pc.is_in(kind, value_set=pa.array(EVENT_TYPES)))
    out["type"] = kind
    value = cells.get("value", empty)
    value_missing = _missing(value)
    number = pc.match_substring_regex(value, _NUMBER)
    ok = pc.and_(ok, pc.or_(value_missing, number))
    out["value"] = pc.cast(pc.if_else(number, value, pa.scalar(None, pa.string())), pa.float64())
    # what each type needs (the model's consistency check)
    search = pc.equal(kind, "search")
    ok = pc.and_(ok, pc.if_else(search, given["query"], given["item_id"]))
    ok = pc.and_(ok, pc.or_(pc.not_equal(kind, "rating"), pc.invert(value_missing)))
    ok_np = np.array(ok.to_numpy(zero_copy_only=False), dtype=bool)
    # timestamps: ISO-8601 or whole unix seconds; missing (the model's "now") row by row
    micros = _micros(cells.get("timestamp", empty))
    fine = pc.is_valid(micros)
    if bounds is not None:
        floor = _to_micros(to_utc(bounds.min_timestamp))
        top = _to_micros(to_utc(now) + timedelta(seconds=bounds.max_future_seconds))
        inside = pc.and_(pc.greater_equal(micros, floor), pc.less_equal(micros, top))
        fine = pc.and_(fine, pc.fill_null(inside, False))
    ok_np &= np.asarray(fine.to_numpy(zero_copy_only=False), dtype=bool)
    out["timestamp"] = pc.cast(micros, pa.timestamp("us"))
    return ok_np, out


def _series(columns: dict[str, Any]) -> dict[str, pd.Series]:
    """Converted columns as Series with the canonical dtypes (`frames.conform`'s)."""
    data: dict[str, pd.Series] = {}
    for name in EVENT_COLUMNS:
        column = columns[name]
        if name == "timestamp":
            data[name] = pd.Series(column.to_numpy(zero_copy_only=False), dtype="datetime64[us]")
        elif name == "value":
            data[name] = pd.Series(column.to_numpy(zero_copy_only=False), dtype="float64")
        else:
            data[name] = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    return data


def _concat(blocks: list[dict[str, pd.Series]]) -> pd.DataFrame:
    """The blocks' columns joined one column at a time, each block's part dropped once
    joined: the peak is the frame and one column, not two frames (10M events: GBs)."""
    data: dict[str, pd.Series] = {}
    for name in EVENT_COLUMNS:
        parts = [block.pop(name) for block in blocks]
        data[name] = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        del parts
    return pd.DataFrame(data, copy=False)


def load_events_bulk(
    path: Path,
    delimiter: str,
    mapping: Mapping[str, str],
    unknown: str,
    bounds: TimeBounds | None,
    now: datetime,
) -> pd.DataFrame | None:
    """The canonical events frame of a CSV/TSV file, validated by column (see the module
    doc); `RowValidationError` as `load_records` raises it; None: read it row by row."""
    from shelfwise.data.io import _iter_csv, _validate_row

    header = _header(path, delimiter)
    if header is None or len(set(header)) != len(header):
        return None
    names = [mapping.get(h, h) for h in header]
    fields = set(FIELDS["events"])
    extra = [n for n in names if n not in fields]
    if len(set(names)) != len(names) or (extra and unknown == "reject"):
        return None
    source = pa.OSFile(str(path))
    stream: Any = source
    if path.suffix.lower() == ".gz":
        stream = pa.CompressedInputStream(source, "gzip")
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=BLOCK_BYTES, use_threads=True
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError) as exc:
        source.close()
        log.info("%s: read row by row (%s)", path.name, exc)
        return None
    progress = _Progress(path.name, path.stat().st_size)
    cursor = _RowCursor(_iter_csv(path, delimiter))
    model_fields = set(FIELDS["events"])
    warned: set[str] = set()
    blocks: list[dict[str, pd.Series]] = []
    row0 = 0
    try:
        for block in reader:
            if block.num_rows == 0:
                continue
            blank = None
            for name in names:  # rows of empty cells: the per-row reader skips them
                cell = _missing(block.column(name))
                blank = cell if blank is None else pc.and_(blank, cell)
            if blank is not None and pc.any(blank).as_py():
                block = block.filter(pc.invert(blank))
            if extra and not warned:
                present = [n for n in extra if not pc.all(_missing(block.column(n))).as_py()]
                if present:
                    warned.update(present)
                    log.warning("%s: ignoring columns %s (events have no attributes)", path,
                                present)  # fmt: skip
            ok, columns = _check_block(block, bounds, now)
            series = _series(columns)
            del columns
            odd = np.flatnonzero(~ok)
            if len(odd):
                records: list[Item | User | Event] = []
                for i in odd:
                    line, raw = cursor.get(row0 + int(i))
                    cells = block.slice(int(i), 1).to_pylist()[0]
                    arrow_raw = {h: cells[n] for h, n in zip(header, names, strict=True)}
                    arrow_raw = {h: v for h, v in arrow_raw.items() if v != ""}
                    if raw != arrow_raw:
                        raise _DivergedError(f"line {line}")
                    records.append(
                        _validate_row(
                            path,
                            line,
                            raw,
                            "events",
                            Event,
                            model_fields,
                            mapping,
                            unknown,
                            bounds,
                            now,
                            warned,
                        )
                    )
                fixed = records_to_frame("events", records)
                fixed.index = pd.Index(odd)
                series = {
                    name: pd.concat([column[ok], fixed[name]]).sort_index().reset_index(drop=True)
                    for name, column in series.items()
                }
            blocks.append(series)
            row0 += block.num_rows
            progress.update(source.tell(), row0)
    except _DivergedError as exc:
        log.info("%s: read row by row (the readers differ at %s)", path.name, exc)
        return None
    except pa.ArrowInvalid as exc:
        log.info("%s: read row by row (%s)", path.name, exc)
        return None
    finally:
        progress.close()
        source.close()
    if not blocks:
        return records_to_frame("events", [])
    return _concat(blocks)
