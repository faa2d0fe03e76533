"""Shared fixtures: a throw-away PostgreSQL server and a fresh store per test, per backend.

`postgres_url` uses `SHELFWISE_TEST_POSTGRES_URL` if set; otherwise it starts a temporary
cluster from the newest `/usr/lib/postgresql/*/bin` (as the `postgres` user when running as
root, since initdb refuses root). Without either it skips, or fails when `CI=true`, since CI
must exercise PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

from shelfwise.store import Store, open_store

POSTGRES_URL_ENV = "SHELFWISE_TEST_POSTGRES_URL"

# The default search mode (`auto`: hybrid) embeds every catalogue a test builds with MiniLM;
# the tests of dense search ask for it (or clear this), the rest stay lexical and fast.
os.environ.setdefault("SHELFWISE_SEARCH_MODE", "lexical")


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI where PostgreSQL must be tested."""
    message = f"PostgreSQL unavailable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true, so this fails instead of skipping)", pytrace=False)
    pytest.skip(message)


def _postgres_bin() -> Path | None:
    """The bin folder of the newest installed PostgreSQL server, if any."""

    def version(path: str) -> tuple[int, ...]:
        found = re.search(r"/postgresql/([\d.]+)/bin", path)
        return tuple(int(p) for p in found.group(1).split(".")) if found else ()

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _TempCluster:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="shelfwise-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError as exc:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError("running as root and there is no 'postgres' user") from exc
            if shutil.which("runuser") is None:
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError("running as root and 'runuser' is missing")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
            self.user = "postgres"

    def _run(self, *args: str) -> None:
        command = [*self.prefix, str(self.bin_dir / args[0]), *args[1:]]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}): "
                f"{result.stdout}{result.stderr}{tail}"
            )

    def start(self) -> str:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-E", "UTF8", "--no-locale")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        log = str(self.root / "server.log")
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start"
        )
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server's admin database (the env URL, or a temporary cluster)."""
    env_url = os.environ.get(POSTGRES_URL_ENV)
    if env_url:
        yield env_url
        return
    bin_dir = _postgres_bin()
    if bin_dir is None:
        _unavailable(
            f"set {POSTGRES_URL_ENV} or install the PostgreSQL server "
            "(no /usr/lib/postgresql/*/bin/initdb)"
        )
    try:
        cluster = _TempCluster(bin_dir)
    except RuntimeError as exc:
        _unavailable(str(exc))
    try:
        url = cluster.start()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        cluster.stop()
        _unavailable(f"could not start a temporary server from {bin_dir}: {exc}")
    try:
        yield url
    finally:
        cluster.stop()


def _with_search_path(url: str, schema: str) -> str:
    """`url` with the libpq `options` parameter set to put `schema` first on the search path."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = f"{query.get('options', '')} -csearch_path={schema}".strip()
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture()
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """URL of a fresh, empty schema on the PostgreSQL server, dropped after the test.

    A schema per test isolates tests as well as a database would, at a fraction of the cost.
    """
    import psycopg

    name = f"shelfwise_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield _with_search_path(postgres_url, name)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh, empty store location, one per backend."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'store.duckdb'}"
    return str(request.getfixturevalue("postgres_schema"))


@pytest.fixture()
def store(store_url: str) -> Iterator[Store]:
    """A fresh, empty, open store, one per backend; closed after the test."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
