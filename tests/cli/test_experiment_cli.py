"""`shelfwise experiment create|status|stop` on a real DuckDB store, and the same through a
running server's API (`--api`: the production app served by uvicorn on a local port)."""

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from shelfwise.cli import main
from shelfwise.cli.experiment import spec_from_args
from shelfwise.errors import ConfigError
from shelfwise.experiments.impressions import utc_now
from shelfwise.store import open_store
from shelfwise.store.measure import impressions_frame


def args(**fields: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "experiment_id": "e1",
        "spec": None,
        "variants": None,
        "weights": None,
        "set": None,
        "description": "",
    }
    base.update(fields)
    return argparse.Namespace(**base)


def test_spec_from_variants_weights_and_sets() -> None:
    spec = spec_from_args(
        args(
            variants="control,new",
            weights="3,1",
            set=["new.understand=false", "new.exploration.epsilon=0.2", "new.model=itemknn"],
        )
    )
    assert spec == {
        "experiment_id": "e1",
        "variants": [
            {"name": "control", "weight": 3.0},
            {
                "name": "new",
                "weight": 1.0,
                "understand": False,
                "exploration": {"epsilon": 0.2},
                "model": "itemknn",
            },
        ],
    }
    with pytest.raises(ConfigError, match="--weights: 1 weights for 2 variants"):
        spec_from_args(args(variants="a,b", weights="1"))
    with pytest.raises(ConfigError, match="no variant 'c'"):
        spec_from_args(args(variants="a,b", set=["c.model=x"]))
    with pytest.raises(ConfigError, match="at least two variants"):
        spec_from_args(args(variants="a"))


def test_create_status_stop_on_a_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"duckdb:///{tmp_path / 's.duckdb'}"
    code = main(
        [
            "experiment", "create", "knobs", "--store", url, "--variants", "control,literal",
            "--set", "literal.understand=false", "--json",
        ]
    )  # fmt: skip
    assert code == 0
    created = json.loads(capsys.readouterr().out)
    assert created["status"] == "running"
    assert created["spec"]["variants"][1]["understand"] is False
    # a second experiment on the same surface is refused with a clear error
    assert main(["experiment", "create", "other", "--store", url, "--variants", "a,b",
                 "--set", "b.search_mode=lexical"]) == 2  # fmt: skip
    assert "running on search" in capsys.readouterr().err
    # a bad field is named
    assert main(["experiment", "create", "bad", "--store", url, "--variants", "a,b",
                 "--set", "b.weight=-2"]) == 2  # fmt: skip
    assert "variants.1.weight" in capsys.readouterr().err
    with open_store(url) as store:  # six exposed users, three per variant
        start = datetime.fromisoformat(created["created_at"])
        assert start <= utc_now()
        store.append_impressions(
            impressions_frame(
                [
                    {"request_id": f"r{i}", "timestamp": start + timedelta(microseconds=i + 1),
                     "user_id": f"u{i}", "list_type": "search", "query": "q",
                     "items": ["A"], "experiment_id": "knobs",
                     "variant": "control" if i % 2 else "literal", "exposed": True}
                    for i in range(6)
                ]
            )
        )  # fmt: skip
    assert main(["experiment", "status", "--store", url]) == 0
    assert "knobs" in capsys.readouterr().out
    assert main(["experiment", "status", "knobs", "--store", url, "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["srm"]["counts"] == {"control": 3, "literal": 3}
    assert results["variants"]["control"]["users"] == 3
    assert main(["experiment", "status", "knobs", "--store", url]) == 0
    text = capsys.readouterr().out
    assert "control" in text and "literal" in text and "ctr" in text
    assert main(["experiment", "stop", "knobs", "--store", url]) == 0
    assert "knobs stopped" in capsys.readouterr().out
    assert main(["experiment", "status", "nope", "--store", url]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err


def test_create_status_stop_through_a_running_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--api URL --key KEY` against the production app served by uvicorn over TCP: the
    experiment made by the CLI shapes what the server answers, and the CLI reads back the
    server's own exposure counts."""
    import httpx

    from shelfwise.artifacts import ensure_bundle
    from shelfwise.data.demo import DemoConfig, generate
    from shelfwise.serve import create_app
    from shelfwise.serve.security import create_key
    from shelfwise.serving import Engine
    from shelfwise.settings import Settings
    from shelfwise.testing.server import serve_in_thread

    demo = generate(DemoConfig(seed=3, n_items=300, n_users=60, days=30))
    with open_store(f"duckdb:///{tmp_path / 's.duckdb'}") as store:
        store.ingest(items=demo.items, users=demo.users, events=demo.events)
        bundle, _ = ensure_bundle(store, tmp_path / "artifacts")
        admin, _ = create_key(store, "admin", "cli test")
        shop, _ = create_key(store, "read,write", "storefront")
        app = create_app(Engine(store, bundle), Settings())  # API keys required
        with serve_in_thread(app) as base:
            api = ["--api", base, "--key", admin]
            assert main(["experiment", "create", "recs", *api, "--variants", "a,b",
                         "--set", "b.model=popularity", "--json"]) == 0  # fmt: skip
            created = json.loads(capsys.readouterr().out)
            assert created["experiment_id"] == "recs" and created["status"] == "running"
            # the server's store has it: the CLI went through the API, not around it
            assert store.get_experiment("recs") is not None
            assert main(["experiment", "status", *api]) == 0
            listed = capsys.readouterr().out
            assert "recs" in listed and "running" in listed
            users = [str(u) for u in demo.users["user_id"].head(20)]
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {shop}"}) as c:
                for user in users:
                    r = c.get(f"/v1/users/{user}/recommendations", params={"k": 5})
                    assert r.status_code == 200, r.text
                    assert len(r.json()["request_id"]) == 32
            assert main(["experiment", "status", "recs", *api, "--json"]) == 0
            results = json.loads(capsys.readouterr().out)
            counts = results["srm"]["counts"]
            assert sum(counts.values()) == len(users) and set(counts) <= {"a", "b"}
            assert main(["experiment", "stop", "recs", *api]) == 0
            assert "recs stopped" in capsys.readouterr().out
            assert store.get_experiment("recs").status == "stopped"  # type: ignore[union-attr]
            # a read-only key may not create; the refusal is the server's, passed on
            assert main(["experiment", "create", "other", "--api", base, "--key", shop,
                         "--variants", "a,b", "--set", "b.model=popularity"]) == 2  # fmt: skip
            assert "403" in capsys.readouterr().err
