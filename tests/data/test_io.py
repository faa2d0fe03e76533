import gzip
import json

import pandas as pd
import pytest

from shelfwise.data.io import load_records, write_jsonl
from shelfwise.errors import DataError, RowValidationError

ITEMS_CSV = (
    "item_id,title,category,brand,price,in_stock,colour\n"
    "A1,Chef Knife,Home>Kitchen> Knives,Acme,39.5,true,red\n"
    'A2,"Cutting Board, ""Large""",Home > Kitchen,Acme,,0,\n'
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_items_validated_and_unknown_columns_kept(tmp_path):
    frame = load_records(write(tmp_path, "items.csv", ITEMS_CSV), "items")
    assert frame["item_id"].tolist() == ["A1", "A2"]
    assert frame.loc[0, "category"] == "Home > Kitchen > Knives"
    assert frame.loc[1, "title"] == 'Cutting Board, "Large"'
    assert frame.loc[0, "price"] == 39.5 and pd.isna(frame.loc[1, "price"])
    assert frame["in_stock"].tolist() == [True, False]
    assert json.loads(frame.loc[0, "attributes"]) == {"colour": "red"}
    assert json.loads(frame.loc[1, "attributes"]) == {}


def test_unknown_columns_rejected_by_flag(tmp_path):
    path = write(tmp_path, "items.csv", ITEMS_CSV)
    with pytest.raises(RowValidationError) as info:
        load_records(path, "items", unknown="reject")
    assert info.value.line == 2 and info.value.field == "colour"
    assert "items.csv, line 2, field 'colour'" in str(info.value)


def test_bad_row_names_file_line_and_field(tmp_path):
    text = ITEMS_CSV + "A3,Bread Knife,Home,Acme,-4,true,blue\n"
    with pytest.raises(RowValidationError) as info:
        load_records(write(tmp_path, "items.csv", text), "items")
    err = info.value
    assert (err.line, err.field) == (4, "price")
    assert "greater than or equal to 0" in str(err) and "items.csv" in str(err)


def test_line_numbers_count_quoted_newlines(tmp_path):
    text = 'item_id,title,description\nA1,Knife,"two\nlines"\nA2,,x\n'
    with pytest.raises(RowValidationError) as info:
        load_records(write(tmp_path, "items.csv", text), "items")
    assert (info.value.line, info.value.field) == (4, "title")


def test_column_mapping(tmp_path):
    text = "sku,name,cost\nX,Kettle,20\n"
    frame = load_records(
        write(tmp_path, "i.csv", text),
        "items",
        mapping={"sku": "item_id", "name": "title", "cost": "price"},
    )
    assert frame.loc[0, ["item_id", "title", "price"]].tolist() == ["X", "Kettle", 20.0]
    with pytest.raises(DataError, match="not items fields"):
        load_records(write(tmp_path, "j.csv", text), "items", mapping={"sku": "nope"})


def test_jsonl_events_with_errors(tmp_path):
    good = [
        {
            "event_id": "e1",
            "user_id": "u1",
            "item_id": "A1",
            "type": "view",
            "timestamp": "2026-01-02T03:04:05Z",
        },
        {"user_id": "u1", "type": "search", "query": "knife", "timestamp": 1767323045},
    ]
    path = write(tmp_path, "events.jsonl", "\n".join(json.dumps(r) for r in good) + "\n\n")
    frame = load_records(path, "events")
    assert frame["type"].tolist() == ["view", "search"]
    assert frame.loc[1, "item_id"] is None
    assert frame.loc[0, "timestamp"] == pd.Timestamp("2026-01-02 03:04:05")
    assert frame.loc[1, "timestamp"] == pd.Timestamp("2026-01-02 03:04:05")

    bad = [*good, {"user_id": "u2", "item_id": "A1", "type": "like"}]
    path = write(tmp_path, "bad.jsonl", "\n".join(json.dumps(r) for r in bad))
    with pytest.raises(RowValidationError) as info:
        load_records(path, "events")
    assert (info.value.line, info.value.field) == (3, "type")
    assert "add_to_cart" in str(info.value)  # lists the valid types

    path = write(tmp_path, "bad2.jsonl", '{"user_id": "u1", "type": "view"}\n')
    with pytest.raises(RowValidationError, match="needs an 'item_id'"):
        load_records(path, "events")
    path = write(tmp_path, "bad3.jsonl", '{"user_id": "u1",\n')
    with pytest.raises(RowValidationError, match="line 1: invalid JSON"):
        load_records(path, "events")


def test_parquet_and_gzip(tmp_path):
    frame = pd.DataFrame({"user_id": ["u1", "u2"], "segment": ["vip", None]})
    frame.to_parquet(tmp_path / "users.parquet")
    users = load_records(tmp_path / "users.parquet", "users")
    assert users["user_id"].tolist() == ["u1", "u2"]
    assert json.loads(users.loc[0, "attributes"]) == {"segment": "vip"}
    with gzip.open(tmp_path / "items.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(ITEMS_CSV)
    assert len(load_records(tmp_path / "items.csv.gz", "items")) == 2

    bad = pd.DataFrame({"user_id": ["u1", " "]})
    bad.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(RowValidationError) as info:
        load_records(tmp_path / "bad.parquet", "users")
    assert (info.value.line, info.value.field) == (2, "user_id")


def test_write_jsonl_round_trip(tmp_path):
    frame = load_records(write(tmp_path, "items.csv", ITEMS_CSV), "items")
    write_jsonl(frame, tmp_path / "out.jsonl")
    again = load_records(tmp_path / "out.jsonl", "items")
    pd.testing.assert_frame_equal(frame, again)


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot tell the format"):
        load_records(write(tmp_path, "x.xlsx", ""), "items")
    with pytest.raises(DataError, match="no such file"):
        load_records(tmp_path / "missing.csv", "items")


def test_records_become_frames_in_runs_with_the_same_result(tmp_path, monkeypatch):
    # FRAME_ROWS records at a time: with runs of 2 the 5 events give the same frame
    path = tmp_path / "events.csv"
    rows = ["user_id,item_id,type,timestamp,value"] + [
        f"u{i},i{i % 3},{'rating' if i == 4 else 'view'},2026-01-0{i + 1}T10:00:00Z,"
        + ("4.5" if i == 4 else "")
        for i in range(5)
    ]
    path.write_text("\n".join(rows) + "\n")
    whole = load_records(path, "events")
    monkeypatch.setattr("shelfwise.data.io.FRAME_ROWS", 2)
    runs = load_records(path, "events")
    pd.testing.assert_frame_equal(runs, whole)
    assert runs["user_id"].tolist() == ["u0", "u1", "u2", "u3", "u4"]
    assert runs["value"].isna().tolist() == [True, True, True, True, False]
    assert runs["value"].iloc[4] == 4.5
