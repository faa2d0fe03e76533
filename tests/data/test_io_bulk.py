"""The bulk (by column) path of `load_records` for event files against the per-row path:
the same frame for a valid file, the same error for the same first bad line, and the CLI's
ingest refusing a bad file with the store unchanged, on both backends."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from shelfwise.cli import main
from shelfwise.data.bulk import load_events_bulk
from shelfwise.data.demo import DemoConfig, generate, write_demo
from shelfwise.data.io import load_records
from shelfwise.data.schemas import TimeBounds, utcnow
from shelfwise.errors import RowValidationError
from shelfwise.store import open_store

HEADER = "event_id,user_id,item_id,type,value,query,session_id,timestamp,request_id\n"
GOOD = [
    "e1,u1,A1,view,,,s1,2026-01-01T10:00:00Z,",
    "e2,u1,A1,purchase,39.5,,s1,2026-01-01T10:05:00.123456Z,r1",
    "e3,u2,,search,,knife,s2,2026-01-02T09:00:00+02:00,",
    "e4,u2,A2,rating,4,,,2026-01-02T09:00:10,",
    "e5,u3,A3,click,,,,1767225600,",
]
# rows the columns do not take as they are; the per-row path validates them (and they are
# valid): spaces around ids and types, a capitalised type, an exponent, unix seconds with
# a fraction, a quoted query with a comma and a line break, a numeric-looking id
UNUSUAL = [
    " e6 ,u4 ,A4,View ,,,,2026-01-03T00:00:00Z,",
    'e7,u4,,search,,"red, ""big""\nknife",,2026-01-03T00:00:01Z,',
    "e8,u5,A5,rating,4e0,,,1767225600.25,",
    "e9,007,A6,add_to_cart,,,,2026-01-03 00:00:02,",
]


def write(tmp_path: Path, rows: list[str], name: str = "events.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def both(path: Path, **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_records(path, "events", **kwargs), load_records(
        path, "events", bulk=False, **kwargs
    )


def test_valid_file_gives_the_per_row_frame(tmp_path):
    path = write(tmp_path, GOOD + UNUSUAL + [",,,,,,,,"] + GOOD[:1])
    bulk = load_events_bulk(path, ",", {}, "keep", TimeBounds(), utcnow())
    assert bulk is not None  # the bulk path read it, it did not hand it back
    rows = load_records(path, "events", bulk=False)
    pd.testing.assert_frame_equal(bulk, rows)
    assert bulk["event_id"].tolist() == [f"e{i}" for i in range(1, 10)] + ["e1"]
    assert bulk.loc[2, "timestamp"] == pd.Timestamp("2026-01-02T07:00:00")  # +02:00 to UTC
    assert bulk.loc[1, "timestamp"] == pd.Timestamp("2026-01-01T10:05:00.123456")
    assert bulk.loc[4, "timestamp"] == pd.Timestamp("2026-01-01T00:00:00")  # unix seconds
    assert bulk.loc[5, ["event_id", "user_id", "type"]].tolist() == ["e6", "u4", "view"]
    assert bulk.loc[6, "query"] == 'red, "big"\nknife'
    assert bulk.loc[7, "value"] == 4.0
    assert bulk.loc[8, "user_id"] == "007"
    assert bulk.loc[0, "request_id"] is None and pd.isna(bulk.loc[0, "value"])


def test_mapping_extra_columns_tsv_and_gzip(tmp_path):
    import gzip

    header = "\ufeffid\tuser_id\titem_id\ttype\tvalue\tquery\ttimestamp\tcolour\n"
    rows = [
        "e1\tu1\tA1\tview\t\t\t2026-01-01T10:00:00Z\tred",
        "e2\tu2\t\tsearch\t\tknife\t2026-01-01T10:00:00Z\t",
    ]
    path = write(tmp_path, rows, "events.tsv", header)
    bulk, rows_frame = both(path, mapping={"id": "event_id"})
    pd.testing.assert_frame_equal(bulk, rows_frame)
    assert bulk["event_id"].tolist() == ["e1", "e2"]
    packed = tmp_path / "events.tsv.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    pd.testing.assert_frame_equal(load_records(packed, "events", mapping={"id": "event_id"}), bulk)


def test_demo_file_gives_the_per_row_frame(tmp_path):
    paths = write_demo(generate(DemoConfig(n_items=200, n_users=120, days=20)), tmp_path)
    bulk, rows = both(paths["events"])
    assert len(bulk) > 1000
    pd.testing.assert_frame_equal(bulk, rows)


BAD = [  # (cell to change, bad value, field named, words in the message)
    ("type", "teleport", "type", "is not an event type"),
    ("timestamp", "yesterday", "timestamp", "is not a timestamp"),
    ("timestamp", "1999-12-31T23:59:59Z", "timestamp", "ingest.min_timestamp"),
    ("timestamp", "2999-01-01T00:00:00Z", "timestamp", "ingest.max_future_seconds"),
    ("timestamp", "2026-02-30T00:00:00Z", "timestamp", "is not a timestamp"),
    ("value", "inf", "value", "finite"),
    ("value", "NaN", "value", "finite"),
    ("value", "cheap", "value", "valid number"),
    ("user_id", "", "user_id", "Field required"),
    ("user_id", "u" * 257, "user_id", "longer than 256"),
    ("request_id", "r" * 65, "request_id", "at most 64"),
    ("query", "knife\x00", "query", "NUL byte"),
    ("item_id", "", None, "needs an 'item_id'"),
]
COLUMNS = HEADER.strip().split(",")


def with_cell(row: str, column: str, value: str) -> str:
    cells = row.split(",")
    cells[COLUMNS.index(column)] = value
    return ",".join(cells)


@pytest.mark.parametrize(("column", "value", "field", "words"), BAD)
def test_bad_row_on_line_7_named_as_the_per_row_path_names_it(
    tmp_path, column, value, field, words
):
    rows = [*GOOD, with_cell(GOOD[0], column, value), with_cell(GOOD[1], "type", "nonsense")]
    path = write(tmp_path, rows)  # the header is line 1: the bad row is line 7
    with pytest.raises(RowValidationError) as bulk:
        load_records(path, "events")
    with pytest.raises(RowValidationError) as per_row:
        load_records(path, "events", bulk=False)
    assert str(bulk.value) == str(per_row.value)
    assert (bulk.value.line, bulk.value.field) == (7, field)
    assert words in str(bulk.value)


def test_bad_row_after_a_quoted_line_break_names_its_physical_line(tmp_path):
    rows = [UNUSUAL[1], *GOOD[:3], with_cell(GOOD[0], "type", "teleport")]
    path = write(tmp_path, rows)  # line 1 header, lines 2-3 the quoted query, then 4, 5, 6, 7
    with pytest.raises(RowValidationError) as info:
        load_records(path, "events")
    assert (info.value.line, info.value.field) == (7, "type")


def test_cli_refuses_a_file_with_a_bad_row_7_and_leaves_the_store_as_it_was(
    tmp_path, store_url, capsys
):
    good = write(tmp_path, GOOD, "good.csv")
    assert main(["ingest", "--events", str(good), "--store", store_url]) == 0
    with open_store(store_url) as store:
        before = store.events()
    bad_rows = [r.replace("e", "x", 1) for r in GOOD] + [with_cell(GOOD[0], "value", "inf")]
    bad = write(tmp_path, bad_rows, "bad.csv")
    capsys.readouterr()
    assert main(["ingest", "--events", str(bad), "--store", store_url]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, line 7, field 'value'" in err and "finite" in err
    with open_store(store_url) as store:
        pd.testing.assert_frame_equal(store.events(), before)
        assert len(before) == len(GOOD)


def test_cli_stores_what_the_per_row_path_stores(tmp_path, store_url):
    path = write(tmp_path, GOOD + UNUSUAL)
    assert main(["ingest", "--events", str(path), "--store", store_url]) == 0
    with open_store(store_url) as store:
        stored = store.events()
    reference = f"duckdb:///{tmp_path / 'per_row.duckdb'}"
    with open_store(reference) as store:
        store.ingest(events=load_records(path, "events", bulk=False))
        expected = store.events()
    assert len(stored) == len(GOOD + UNUSUAL)
    columns = ["event_id", "user_id", "item_id", "type", "value", "query", "session_id",
               "timestamp", "request_id"]  # fmt: skip
    pd.testing.assert_frame_equal(
        stored[columns].reset_index(drop=True), expected[columns].reset_index(drop=True),
        check_dtype=False,
    )  # fmt: skip


def test_many_blocks_with_unusual_rows_in_several(tmp_path, monkeypatch):
    import shelfwise.data.bulk as bulk_module

    rows = (GOOD + UNUSUAL) * 40
    path = write(tmp_path, rows)
    monkeypatch.setattr(bulk_module, "BLOCK_BYTES", 1 << 10)  # a block every ~20 rows
    bulk = load_events_bulk(path, ",", {}, "keep", TimeBounds(), utcnow())
    assert bulk is not None
    pd.testing.assert_frame_equal(bulk, load_records(path, "events", bulk=False))
    assert len(bulk) == len(rows)
    bad = write(tmp_path, [*rows, with_cell(GOOD[0], "type", "teleport")], "bad.csv")
    with pytest.raises(RowValidationError) as info:
        load_records(bad, "events")
    # every UNUSUAL row holds one quoted line break: 40 of them, and the header
    assert (info.value.line, info.value.field) == (len(rows) + 40 + 2, "type")


def test_the_columns_take_the_common_rows_and_leave_the_unusual_ones(tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from shelfwise.data.bulk import _check_block

    path = write(tmp_path, GOOD + UNUSUAL)
    table = pacsv.read_csv(
        path,
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(COLUMNS, pa.string()), strings_can_be_null=False
        ),
    )
    block = table.combine_chunks().to_batches()[0]
    ok, _ = _check_block(block, TimeBounds(), utcnow())
    # the quoted query with a line break (UNUSUAL[1]) is Arrow's to read: the columns take it
    assert ok.tolist() == [True] * len(GOOD) + [False, True, False, False]
