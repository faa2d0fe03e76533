"""`load_records` (what `shelfwise ingest` reads files with) refuses poison naming the line
and the field; `shelfwise ingest` then writes nothing; the time bounds are settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shelfwise.cli import main
from shelfwise.data.io import load_records
from shelfwise.data.schemas import TimeBounds
from shelfwise.errors import RowValidationError
from shelfwise.store import open_store

GOOD = {"user_id": "u1", "item_id": "K1", "type": "view", "timestamp": "2026-01-02T10:00:00Z"}


def _jsonl(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({**GOOD, "timestamp": "9999-12-31T23:59:59Z"}, "timestamp", "in the future"),
        ({**GOOD, "timestamp": "1999-12-31T00:00:00Z"}, "timestamp", "before 2000-01-01"),
        ({**GOOD, "user_id": "u\u0000"}, "user_id", "NUL byte"),
        ('{"user_id": "u\\ud800", "item_id": "K1", "type": "view"}', "user_id", "surrogate"),
        ('{"user_id": "u1", "item_id": "K1", "type": "rating", "value": NaN}', "value", "finite"),
        ('{"user_id": "u1", "item_id": "K1", "type": "rating", "value": 1e309}', "value", "finite"),
        ({**GOOD, "item_id": ["a"]}, "item_id", "must be a string, got list"),
        ({**GOOD, "session_id": {"a": 1}}, "session_id", "must be a string, got dict"),
    ],
)
def test_poison_in_a_file_names_the_line_and_field(
    tmp_path: Path, bad: dict[str, Any] | str, field: str, words: str
) -> None:
    path = _jsonl(tmp_path / "events.jsonl", [GOOD, GOOD, bad])
    with pytest.raises(RowValidationError) as info:
        load_records(path, "events")
    assert (info.value.line, info.value.field) == (3, field)
    assert words in info.value.detail


def test_numeric_ids_in_files_stay_accepted(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "events.jsonl", [{**GOOD, "user_id": 5, "item_id": 7.0}])
    frame = load_records(path, "events")
    assert frame[["user_id", "item_id"]].iloc[0].tolist() == ["5", "7"]


def test_time_bounds_are_arguments(tmp_path: Path) -> None:
    old = {**GOOD, "timestamp": "1995-06-01T00:00:00Z"}
    path = _jsonl(tmp_path / "events.jsonl", [old])
    with pytest.raises(RowValidationError, match=r"ingest\.min_timestamp"):
        load_records(path, "events")
    floor = datetime(1990, 1, 1, tzinfo=UTC)
    assert len(load_records(path, "events", bounds=TimeBounds(min_timestamp=floor))) == 1
    assert len(load_records(path, "events", bounds=None)) == 1


def test_ingest_refuses_the_file_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    old = {**GOOD, "timestamp": "1995-06-01T00:00:00Z"}
    path = _jsonl(tmp_path / "events.jsonl", [GOOD, old])
    assert main(["ingest", "--events", str(path), "--store", url]) != 0
    assert "line 2" in capsys.readouterr().err
    with open_store(url) as store:
        assert store.counts()["events"] == 0
    monkeypatch.setenv("SHELFWISE_INGEST__MIN_TIMESTAMP", "1990-01-01T00:00:00Z")
    assert main(["ingest", "--events", str(path), "--store", url]) == 0
    with open_store(url) as store:
        assert store.counts()["events"] == 2
