"""The one Settings object: sections, environment variables (nested and short), precedence,
copies with changes, and the round trip to child processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from shelfwise.serving.config import EngineConfig
from shelfwise.settings import ServeSettings, Settings


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("SHELFWISE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_in_every_section(env: pytest.MonkeyPatch) -> None:
    s = Settings()
    assert s.store.url == "duckdb:///var/shelfwise.duckdb"
    assert s.paths.artifacts == Path("var/artifacts")
    assert s.paths.embeddings == Path("var/cache/embeddings")
    assert s.serve.auth is True and s.serve.rate_limit == 100.0
    assert s.search.mode == "auto" and s.search.dense
    assert s.engine == EngineConfig()
    assert s.tuning.sampler == "tpe" and s.tuning.timeout is None


def test_nested_and_short_environment_names(env: pytest.MonkeyPatch) -> None:
    env.setenv("SHELFWISE_STORE", "postgresql://short@db/shop")
    env.setenv("SHELFWISE_AUTH", "false")
    env.setenv("SHELFWISE_SEARCH_MODE", "hybrid")
    env.setenv("SHELFWISE_CACHE_DIR", "/tmp/c")
    env.setenv("SHELFWISE_ENGINE__SESSION_ITEMS", "20")
    env.setenv("SHELFWISE_TUNING__TIMEOUT", "600")
    s = Settings()
    assert s.store.url == "postgresql://short@db/shop"
    assert s.serve.auth is False and s.search.dense
    assert s.paths.embeddings == Path("/tmp/c/embeddings")
    assert s.engine.session_items == 20 and s.engine.session_gap_minutes == 30.0
    assert s.tuning.timeout == 600.0
    env.setenv("SHELFWISE_STORE__URL", "postgresql://nested@db/shop")  # nested wins
    assert Settings().store.url == "postgresql://nested@db/shop"
    assert Settings(store={"url": "duckdb:///x.duckdb"}).store.url == "duckdb:///x.duckdb"


def test_bad_values_name_the_field(env: pytest.MonkeyPatch) -> None:
    env.setenv("SHELFWISE_SERVE__RATE_LIMIT", "-1")
    with pytest.raises(ValidationError, match=r"serve\.rate_limit"):
        Settings()
    env.delenv("SHELFWISE_SERVE__RATE_LIMIT")
    env.setenv("SHELFWISE_SEARCH_MODE", "fuzzy")
    with pytest.raises(ValidationError, match=r"search\.mode"):
        Settings()
    with pytest.raises(ValidationError, match="extra"):
        ServeSettings(atuh=False)  # type: ignore[call-arg]


def test_with_changes_one_section_and_keeps_the_rest(env: pytest.MonkeyPatch) -> None:
    s = Settings(serve=ServeSettings(auth=False, rate_limit=5))
    t = s.with_(serve={"rate_limit": 0}, paths={"artifacts": Path("/r")})
    assert (t.serve.auth, t.serve.rate_limit, t.paths.artifacts) == (False, 0, Path("/r"))
    assert (s.serve.rate_limit, s.paths.artifacts) == (5, Path("var/artifacts"))
    with pytest.raises(ValidationError):
        s.with_(serve={"rate_limit": -3})


def test_to_env_round_trips_through_a_child_process(env: pytest.MonkeyPatch) -> None:
    s = Settings(
        store={"url": "duckdb:///shop.duckdb"},
        serve={"auth": False, "refresh_seconds": 0, "web_key": "k"},
        search={"mode": "semantic"},
        engine={"session_items": 7, "recommend_steps": ["session", "popular"]},
    )
    code = "from shelfwise.settings import Settings; print(Settings().model_dump_json())"
    child_env = {**os.environ, **s.to_env()}  # the fixture cleared every SHELFWISE_ name
    out = subprocess.run(
        [sys.executable, "-c", code], env=child_env, capture_output=True, text=True, check=True
    ).stdout
    assert Settings.model_validate_json(out) == s
