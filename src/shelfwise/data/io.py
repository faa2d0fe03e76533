"""Validated file loaders: CSV/TSV, JSON Lines and Parquet, with a column mapping.

Every row is validated with the pydantic model of its kind. The first bad row stops the
load with a `RowValidationError` naming the file, the line (CSV/JSONL: the physical line the
record starts on; Parquet: the 1-based row) and the field. Nothing is written anywhere
until every file has been read and validated, so an ingest is all-or-nothing. Poison is
refused like any bad value (NUL bytes, lone surrogates, non-finite numbers, ids that are
lists or objects; see `shelfwise.data.schemas`), and so are event times outside the
`TimeBounds` given (`Settings.ingest.time_bounds()`; the defaults without).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

import pandas as pd
from pydantic import ValidationError

from shelfwise.data.frames import COLUMNS, records_to_frame
from shelfwise.data.schemas import FIELDS, MODELS, Event, Item, TimeBounds, User, utcnow
from shelfwise.errors import DataError, RowValidationError

log = logging.getLogger(__name__)

UnknownColumns = Literal["keep", "reject"]
FORMATS = ("csv", "tsv", "jsonl", "parquet")
# Fields that hold JSON objects; a CSV cell or Parquet string there is parsed as JSON.
_JSON_FIELDS = {"attributes"}


def detect_format(path: Path) -> str:
    """The format of a file from its suffix (`.gz` allowed for text formats)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    table = {
        ".csv": "csv",
        ".tsv": "tsv",
        ".tab": "tsv",
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "jsonl",
        ".parquet": "parquet",
        ".pq": "parquet",
    }
    if suffix not in table:
        raise DataError(
            f"{path}: cannot tell the format from the suffix '{suffix}'; "
            f"use one of {', '.join(sorted(table))} or pass fmt= one of {', '.join(FORMATS)}"
        )
    return table[suffix]


def _open_text(path: Path) -> IO[str]:
    if path.suffix.lower() == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open("r", encoding="utf-8", newline="")


def _iter_csv(path: Path, delimiter: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_text(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        if len(set(header)) != len(header):
            raise RowValidationError(str(path), 1, None, f"duplicate column names in {header}")
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise RowValidationError(
                    str(path), start, None, f"expected {len(header)} columns, found {len(row)}"
                )
            # an empty cell means "not given": the model's default or None applies
            yield start, {h: v for h, v in zip(header, row, strict=True) if v != ""}


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open_text(path) as fh:
        for number, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RowValidationError(
                    str(path), number, None, f"invalid JSON: {exc.msg}"
                ) from exc
            if not isinstance(obj, dict):
                raise RowValidationError(str(path), number, None, "each line must be a JSON object")
            yield number, obj


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from exc
    frame = frame.astype(object).where(frame.notna(), None)
    for number, row in enumerate(frame.to_dict(orient="records"), start=1):
        yield number, {str(k): v for k, v in row.items() if v is not None}


def iter_rows(path: Path, fmt: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line, raw row) pairs from a CSV/TSV, JSONL or Parquet file."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt == "csv":
        return _iter_csv(path, ",")
    if fmt == "tsv":
        return _iter_csv(path, "\t")
    if fmt == "jsonl":
        return _iter_jsonl(path)
    if fmt == "parquet":
        return _iter_parquet(path)
    raise DataError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


def _first_error(exc: ValidationError) -> tuple[str | None, str]:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ()) if not isinstance(p, int)]
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    value = err.get("input")
    if loc and not isinstance(value, dict):
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        msg = f"{msg} (got {shown})"
    return (".".join(loc) or None), msg


#: `load_records` turns each run of this many validated records into a frame as it goes:
#: millions of pydantic records held at once would take gigabytes.
FRAME_ROWS = 100_000


def load_records(
    path: str | Path,
    kind: str,
    mapping: Mapping[str, str] | None = None,
    unknown: UnknownColumns = "keep",
    fmt: str | None = None,
    bounds: TimeBounds | None = TimeBounds(),  # noqa: B008 (frozen)
    bulk: bool = True,
) -> pd.DataFrame:
    """Read and validate a file of items, users or events into a canonical frame.

    Event timestamps outside `bounds` fail the load naming the line; `bounds=None` accepts
    any time (history older than the floor can also lower `ingest.min_timestamp`).

    `mapping` renames source columns to Shelfwise fields (`{"sku": "item_id"}`).
    Columns that are not Shelfwise fields are kept inside `attributes` (items, users) or
    ignored with a warning (events) when `unknown="keep"`, and fail the load when
    `unknown="reject"`.
    """
    if kind not in MODELS:
        raise DataError(f"unknown record kind '{kind}'; use one of {', '.join(MODELS)}")
    if unknown not in ("keep", "reject"):
        raise DataError(f"unknown={unknown!r}; use 'keep' or 'reject'")
    path = Path(path)
    model = MODELS[kind]
    fields = set(FIELDS[kind])
    mapping = dict(mapping or {})
    bad_targets = sorted(set(mapping.values()) - fields)
    if bad_targets:
        raise DataError(
            f"column mapping targets {bad_targets} are not {kind} fields; "
            f"valid fields: {', '.join(FIELDS[kind])}"
        )
    now = utcnow()
    fmt = fmt or (detect_format(path) if path.exists() else None)
    if bulk and kind == "events" and fmt in ("csv", "tsv") and path.exists():
        from shelfwise.data.bulk import load_events_bulk

        frame = load_events_bulk(path, "," if fmt == "csv" else "\t", mapping, unknown, bounds, now)
        if frame is not None:
            return frame
    records: list[Item | User | Event] = []
    frames: list[pd.DataFrame] = []  # every FRAME_ROWS records: a frame, not 10M objects
    warned: set[str] = set()
    started = time.perf_counter()
    for line, raw in iter_rows(path, fmt):
        if len(records) >= FRAME_ROWS:
            frames.append(records_to_frame(kind, records))
            records = []
            if len(frames) % 5 == 0:  # a long file says how far it is
                done = len(frames) * FRAME_ROWS
                rate = done / max(time.perf_counter() - started, 1e-9)
                log.info("%s: %d %s validated (%.0f a second)", path.name, done, kind, rate)
        records.append(
            _validate_row(
                path, line, raw, kind, model, fields, mapping, unknown, bounds, now, warned
            )
        )
    frames.append(records_to_frame(kind, records))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _validate_row(
    path: Path,
    line: int,
    raw: Mapping[str, Any],
    kind: str,
    model: type[Item] | type[User] | type[Event],
    fields: set[str],
    mapping: Mapping[str, str],
    unknown: UnknownColumns | str,
    bounds: TimeBounds | None,
    now: datetime,
    warned: set[str],
) -> Item | User | Event:
    """One raw row (as `iter_rows` gives it) renamed, checked and validated into its model:
    `RowValidationError` naming the line and the field (also `bulk`'s rows that its
    columns cannot take)."""
    row = {mapping.get(k, k): v for k, v in raw.items()}
    extra = {k: v for k, v in row.items() if k not in fields}
    if extra:
        if unknown == "reject":
            col = sorted(extra)[0]
            raise RowValidationError(
                str(path),
                line,
                col,
                f"unknown column for {kind}; map it with a column mapping or "
                "ingest with unknown columns kept (--unknown-columns keep)",
            )
        for col in extra:
            del row[col]
        if "attributes" in fields:
            attrs = row.get("attributes") or {}
            if isinstance(attrs, str):
                attrs = _parse_json_cell(path, line, "attributes", attrs)
            row["attributes"] = {**extra, **attrs} if isinstance(attrs, dict) else attrs
        elif not warned.issuperset(extra):
            warned.update(extra)
            log.warning("%s: ignoring columns %s (events have no attributes)", path, extra)
    for name in _JSON_FIELDS & row.keys():
        if isinstance(row[name], str):
            row[name] = _parse_json_cell(path, line, name, row[name])
    try:
        record = model.model_validate(row)
    except ValidationError as exc:
        field, msg = _first_error(exc)
        raise RowValidationError(str(path), line, field, msg) from None
    if bounds is not None and isinstance(record, Event):
        problem = bounds.problem(record.timestamp, now)
        if problem:
            raise RowValidationError(str(path), line, "timestamp", problem)
    return record


def _parse_json_cell(path: Path, line: int, field: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RowValidationError(
            str(path), line, field, f"not valid JSON ({exc.msg}); expected an object"
        ) from None


def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """Write a canonical frame as JSON Lines (attributes as objects, timestamps ISO-8601 Z)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in frame.to_dict(orient="records"):
            out: dict[str, Any] = {}
            for key, value in row.items():
                if value is None or (isinstance(value, float) and value != value):
                    continue
                if key == "attributes" and isinstance(value, str):
                    value = json.loads(value)
                elif isinstance(value, pd.Timestamp):
                    value = value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                out[str(key)] = value
            fh.write(json.dumps(out, ensure_ascii=False) + "\n")


__all__ = ["COLUMNS", "detect_format", "iter_rows", "load_records", "write_jsonl"]
