"""Crash safety: SIGKILL `shelfwise serve` while three clients post events (single events
and arrays, so that group commits are in flight), restart it, and find every acknowledged
event in the store (an event is acknowledged only after the commit of its group)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from shelfwise.store import open_store

from .conftest import fill


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(url: str, artifacts: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SHELFWISE_RATE_LIMIT": "0",
    }
    command = [
        sys.executable, "-m", "shelfwise", "serve", "--store", url, "--artifacts", str(artifacts),
        "--host", "127.0.0.1", "--port", str(port), "--no-auth",
    ]  # fmt: skip
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not become ready: {log.read_text()[-3000:]}")


def test_acknowledged_events_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    url = f"duckdb:///{db}"
    with open_store(url) as store:
        fill(store)
    artifacts, log = tmp_path / "artifacts", tmp_path / "server.log"
    port = _free_port()
    server = _start(url, artifacts, port, log)
    acked: list[str] = []
    stop = threading.Event()

    def post(tag: str, size: int) -> None:
        # several clients, so that groups of requests share a transaction when it dies;
        # `size` > 1 posts arrays (the batch form)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            i = 0
            while not stop.is_set():
                events = [
                    {
                        "event_id": f"crash-{tag}-{i + j}",
                        "user_id": f"c{(i + j) % 7}",
                        "item_id": "K1",
                        "type": "view",
                    }
                    for j in range(size)
                ]
                i += size
                try:
                    r = client.post("/v1/events", json=events[0] if size == 1 else events)
                except httpx.HTTPError:
                    continue  # the server is gone: not acknowledged
                if r.status_code == 200 and r.json()["accepted"] == size:
                    acked.extend(e["event_id"] for e in events)

    posters = [
        threading.Thread(target=post, args=(tag, size), daemon=True)
        for tag, size in (("a", 1), ("b", 1), ("c", 5))
    ]
    for poster in posters:
        poster.start()
    deadline = time.monotonic() + 60
    while len(acked) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.send_signal(signal.SIGKILL)  # mid-stream: requests are in flight
    server.wait(timeout=30)
    time.sleep(0.3)
    stop.set()
    for poster in posters:
        poster.join(timeout=30)
    assert len(acked) >= 80, log.read_text()[-3000:]

    server = _start(url, artifacts, port, log)  # recovers the store on restart
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).json()
        assert ready["events"] >= 19 + len(acked)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/events",
            json={"user_id": "after", "item_id": "K2", "type": "view"},
            timeout=5,
        )
        assert r.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    with open_store(url) as store:
        stored = set(store.events()["event_id"].dropna())
    missing = [e for e in acked if e not in stored]
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
