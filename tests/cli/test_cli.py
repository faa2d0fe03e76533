"""The `shelfwise` command as a user runs it."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shelfwise.cli import main
from shelfwise.data.datasets import is_available
from shelfwise.store import open_store

ITEMS = (
    "item_id,title,category,brand,price\n"
    "A1,Chef Knife,Home > Kitchen > Knives,Acme,39.5\n"
    "A2,Bread Knife,Home > Kitchen > Knives,Acme,20\n"
    "B1,Kettle,Home > Kitchen > Appliances,Boil,35\n"
)
EVENTS = (
    "event_id,user_id,item_id,type,value,query,timestamp\n"
    "e1,u1,A1,view,,,2026-01-01T10:00:00Z\n"
    "e2,u1,A1,purchase,39.5,,2026-01-01T10:05:00Z\n"
    "e3,u2,,search,,knife,2026-01-02T09:00:00Z\n"
    "e4,u2,A2,click,,,2026-01-02T09:00:10Z\n"
)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shelfwise", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "items.csv").write_text(ITEMS)
    (tmp_path / "events.csv").write_text(EVENTS)
    return tmp_path


def test_stats_sparsity_without_a_catalogue(files, capsys):
    url = f"duckdb:///{files / 'events_only.duckdb'}"
    assert main(["ingest", "--events", str(files / "events.csv"), "--store", url]) == 0
    capsys.readouterr()
    assert main(["stats", "--store", url, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["items"] == 0
    # 2 users x 2 interacted items (A1, A2), 2 pairs: half the cells
    assert stats["matrix"] == {"users": 2, "items": 2}
    assert stats["sparsity"] == pytest.approx(0.5)


def test_ingest_then_stats_json(files, capsys):
    url = f"duckdb:///{files / 's.duckdb'}"
    assert (
        main(
            [
                "ingest",
                "--items",
                str(files / "items.csv"),
                "--events",
                str(files / "events.csv"),
                "--store",
                url,
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["stats", "--store", url, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["items"], stats["users"], stats["events"]) == (3, 2, 4)
    assert stats["events_by_type"] == {"click": 1, "purchase": 1, "search": 1, "view": 1}
    assert stats["top_categories"] == {"Home": 3}
    assert stats["user_item_pairs"] == 2
    assert stats["sparsity"] == pytest.approx(1 - 2 / 6, abs=1e-6)
    # idempotent: the same files again change nothing
    assert (
        main(
            [
                "ingest",
                "--items",
                str(files / "items.csv"),
                "--events",
                str(files / "events.csv"),
                "--store",
                url,
                "--json",
            ]
        )
        == 0
    )
    again = json.loads(capsys.readouterr().out)
    assert again["events"] == 0 and again["duplicate_events"] == 4


def test_bad_row_fails_and_leaves_store_unchanged(files):
    url = f"duckdb:///{files / 's.duckdb'}"
    assert run_cli("ingest", "--items", str(files / "items.csv"), "--store", url).returncode == 0
    with open_store(url) as store:
        before = (store.counts(), store.fingerprint())
    (files / "more_items.csv").write_text(ITEMS.replace("A1,", "A9,") + "C1,Cup,Home,X,abc\n")
    bad_events = EVENTS + "e5,u3,A1,purchase,,,not-a-time\n"
    (files / "bad_events.csv").write_text(bad_events)
    proc = run_cli(
        "ingest",
        "--items",
        str(files / "more_items.csv"),
        "--events",
        str(files / "bad_events.csv"),
        "--store",
        url,
    )
    assert proc.returncode != 0
    assert "more_items.csv, line 5, field 'price'" in proc.stderr
    (files / "more_items.csv").write_text(ITEMS.replace("A1,", "A9,"))
    proc = run_cli(
        "ingest",
        "--items",
        str(files / "more_items.csv"),
        "--events",
        str(files / "bad_events.csv"),
        "--store",
        url,
    )
    assert proc.returncode != 0
    assert "bad_events.csv, line 6, field 'timestamp'" in proc.stderr
    with open_store(url) as store:
        assert (store.counts(), store.fingerprint()) == before  # the valid items file too


def test_unknown_columns_flag(files, capsys):
    (files / "items.csv").write_text(
        ITEMS.replace("price\n", "price,colour\n")
        .replace("39.5\n", "39.5,red\n")
        .replace("20\n", "20,\n")
        .replace("35\n", "35,\n")
    )
    url = f"duckdb:///{files / 's.duckdb'}"
    code = main(
        [
            "ingest",
            "--items",
            str(files / "items.csv"),
            "--store",
            url,
            "--unknown-columns",
            "reject",
        ]
    )
    assert code == 2 and "field 'colour'" in capsys.readouterr().err
    assert main(["ingest", "--items", str(files / "items.csv"), "--store", url]) == 0
    with open_store(url) as store:
        attrs = store.items(["A1"]).loc[0, "attributes"]
    assert json.loads(attrs) == {"colour": "red"}


def test_usage_errors(files, capsys):
    assert main(["ingest", "--store", f"duckdb:///{files / 's.duckdb'}"]) == 2
    assert "nothing to ingest" in capsys.readouterr().err
    assert main(["ingest", "--items", "x.csv", "--map", "bad"]) == 2
    assert "KIND.SOURCE_COLUMN=FIELD" in capsys.readouterr().err
    assert main(["stats", "--store", "mysql://x"]) == 2
    assert "duckdb" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "counts"),
    [("movielens-100k", (1682, 943, 100000)), ("amazon-beauty", (12101, 22363, 198502))],
)
def test_ingest_dataset_by_name(tmp_path, capsys, name, counts):
    if not is_available(name):
        pytest.skip(f"{name} not found")
    url = f"duckdb:///{tmp_path / 'real.duckdb'}"
    assert main(["ingest", "--dataset", name, "--store", url]) == 0
    capsys.readouterr()
    assert main(["stats", "--store", url, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["items"], stats["users"], stats["events"]) == counts


def test_versions_list_activate_and_rollback(tmp_path: Path, capsys: Any) -> None:
    """`shelfwise versions`: the registry's bundles and tuned models, served ones marked."""
    import numpy as np
    import scipy.sparse as sp

    from shelfwise.artifacts.registry import Registry
    from shelfwise.recommenders import create

    registry = Registry(tmp_path / "reg")
    with registry.draft("bundle") as draft:
        (draft.path / "catalog.parquet").write_bytes(b"x")
        draft.manifest = {"counts": {"items": 3, "users": 2}}
    registry.activate(draft.version)
    x = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    tuned = registry.save_model(create("ease", l2=1.0).fit(x), {"validation": {"ndcg@10": 0.5}})
    argv = ["--artifacts", str(tmp_path / "reg")]
    assert main(["versions", "activate", tuned, *argv]) == 0
    assert "active: v0003 (bundle)" in capsys.readouterr().out  # derived, serving v0002
    assert main(["versions", "list", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("  v0001") and "3 items, 2 users" in lines[1]
    assert lines[2].startswith("* v0002") and "ease ndcg@10 0.5000" in lines[2]
    assert lines[3].startswith("* v0003") and "serving v0002 (from v0001)" in lines[3]
    assert main(["versions", "rollback", *argv]) == 0
    assert "active: v0001 (bundle)" in capsys.readouterr().out
    assert main(["versions", "rollback", *argv]) == 2  # nothing before v0001: a clear error
    assert "nothing to roll back" in capsys.readouterr().err


def test_building_the_parser_reads_no_settings_and_defaults_come_from_them(monkeypatch):
    """The parser is built without `Settings()` (no pydantic-settings, no train models);
    a default from the settings is read after parsing, from the environment."""
    script = (
        "import sys; from shelfwise.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('pydantic_settings', 'shelfwise.settings', "
        "'shelfwise.train.config', 'pandas', 'numpy') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"

    from shelfwise.cli import build_parser
    from shelfwise.cli.defaults import FromSettings, resolve

    monkeypatch.setenv("SHELFWISE_PATHS__ARTIFACTS", "/srv/registry")
    monkeypatch.setenv("SHELFWISE_TUNING__METRIC", "recall@20")
    args = build_parser().parse_args(["tune", "--model", "ease", "--dataset", "x"])
    assert isinstance(args.metric, FromSettings)
    resolve(args)
    assert args.metric == "recall@20" and args.models_dir == "/srv/registry"
    assert args.trials is None and args.seed == 42
    args = resolve(build_parser().parse_args(["build", "--artifacts", "here"]))
    assert args.artifacts == "here"
