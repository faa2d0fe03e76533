"""Settings read from the environment (`SHELFWISE_*`) with sensible local defaults."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

# The repository root when running from a checkout (src/shelfwise/settings.py -> ../../..).
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE_URL = "duckdb:///var/shelfwise.duckdb"


class Settings(BaseSettings):
    """Process-wide settings; every field can be set as `SHELFWISE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SHELFWISE_", extra="ignore")

    store: str = DEFAULT_STORE_URL
    data_dir: Path | None = None
    artifacts_dir: Path = Path("var/artifacts")


def data_dir() -> Path | None:
    """Where the public datasets live: `SHELFWISE_DATA_DIR`, else `../shared/data` if present.

    `../shared/data` is looked for beside the current directory and beside the checkout.
    """
    env = os.environ.get("SHELFWISE_DATA_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), _REPO_ROOT):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None
