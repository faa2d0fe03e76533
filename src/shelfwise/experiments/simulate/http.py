"""`HttpDriver`: simulated shoppers against a running `shelfwise serve`, over HTTP.

The server must serve the world's store: `shelfwise generate-demo` with the same seed,
items, users and days, ingested and built (the driver checks a few item ids). A browsing
visit is `GET /v1/users/{user_id}/recommendations?k=K` (with `model=NAME` for an arm whose
CONFIG names a model of the active bundle, nothing for `default`: what the server serves),
a search visit `GET /v1/search?q=QUERY&k=K&user=USER_ID`; what the shopper did is posted
back to `POST /v1/events` in batches (search, click, view, add_to_cart, purchase),
carrying the list's `request_id` when the server's answer has one, so the server's own
impressions and attribution see the simulated test. An arm whose CONFIG is `random` is
ranked here (the server has no random policy) and only its events are posted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pandas as pd
import scipy.sparse as sp

from shelfwise.errors import ConfigError, ShelfwiseError
from shelfwise.experiments.simulate.policies import DEFAULT, RANDOM, RandomPolicy, Slates
from shelfwise.experiments.simulate.run import Shown, Visits
from shelfwise.experiments.simulate.world import World

__all__ = ["HttpDriver"]

log = logging.getLogger(__name__)


class HttpDriver:
    """Lists from a Shelfwise server and events posted back to it (see the module doc).

    `arms` maps an arm name to its CONFIG (`default`, `random` or a model name of the active
    bundle). `client` is an `httpx.Client` whose base URL is the server (a FastAPI
    `TestClient` works too); `concurrency` requests are in flight at once. `clock` stamps
    the events: `simulated` (the simulated day's time, after the demo's last day) or `now`
    (the real time of posting, in order: what a live experiment started now counts).
    """

    def __init__(
        self,
        world: World,
        arms: Mapping[str, str],
        client: httpx.Client,
        concurrency: int = 8,
        batch: int = 500,
        clock: str = "simulated",
    ) -> None:
        if clock not in ("simulated", "now"):
            raise ConfigError(f"clock must be 'simulated' or 'now', got {clock!r}")
        self.world, self.arms, self.client, self.clock = world, dict(arms), client, clock
        self.concurrency, self.batch = max(1, concurrency), max(1, batch)
        self._index = {str(item): i for i, item in enumerate(world.item_ids)}
        self._pending: list[dict[str, Any]] = []
        self._event_seq = 0
        self.requests = 0
        self.unknown_items = 0
        self.posted = 0
        self.request_ids_seen = 0

    @classmethod
    def connect(
        cls,
        world: World,
        arms: Mapping[str, str],
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        concurrency: int = 8,
        clock: str = "simulated",
    ) -> HttpDriver:
        """A driver over a new `httpx.Client` to `url` (with `X-API-Key` when given)."""
        headers = {"X-API-Key": api_key} if api_key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        client = httpx.Client(base_url=url, headers=headers, timeout=timeout, limits=limits)
        return cls(world, arms, client, concurrency=concurrency, clock=clock)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self.client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ShelfwiseError(f"GET {path}: {exc}") from exc
        if response.status_code != 200:
            raise ShelfwiseError(
                f"GET {path} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json()

    def check(self, sample: int = 5) -> dict[str, Any]:
        """Fail clearly unless the server is ready and serves the world's catalogue."""
        ready = self.client.get("/readyz")
        if ready.status_code != 200:
            raise ShelfwiseError(f"the server is not ready: {ready.status_code} {ready.text}")
        ids = self.world.item_ids
        for item in ids[np.linspace(0, ids.size - 1, sample).astype(int)]:
            found = self.client.get(f"/v1/items/{item}")
            if found.status_code == 404:
                raise ConfigError(
                    f"the server has no item {item}: serve a store made by `shelfwise "
                    "generate-demo` with the simulation's --seed, --items, --users and --days"
                )
            if found.status_code != 200:
                raise ShelfwiseError(f"GET /v1/items/{item}: {found.status_code} {found.text}")
        return dict(ready.json())

    def _one(self, arm: str, user: int, k: int) -> tuple[list[int], str | None]:
        config = self.arms[arm]
        params: dict[str, Any] = {"k": k}
        if config != DEFAULT:
            params["model"] = config
        answer = self._get(f"/v1/users/{self.world.user_ids[user]}/recommendations", params)
        return self._found(answer, k)

    def _found(self, answer: Any, k: int) -> tuple[list[int], str | None]:
        ids = []
        for item in answer.get("items", []):
            idx = self._index.get(str(item.get("item_id")))
            if idx is None:
                self.unknown_items += 1
            else:
                ids.append(idx)
        request_id = answer.get("request_id")
        return ids[:k], (str(request_id) if request_id else None)

    def _shown(self, answers: list[tuple[list[int], str | None]], n: int, k: int) -> Shown:
        self.requests += len(answers)
        ids = np.full((n, k), -1, dtype=np.int64)
        request_ids: list[str | None] = []
        for row, (items, request_id) in enumerate(answers):
            ids[row, : len(items)] = items
            request_ids.append(request_id)
        self.request_ids_seen += sum(r is not None for r in request_ids)
        return Shown(Slates(ids), request_ids if any(request_ids) else None)

    def search(
        self, arm: str, users: np.ndarray, queries: np.ndarray, k: int, rng: np.random.Generator
    ) -> Shown:
        """`GET /v1/search?q=...&k=K&user=ID` for each visit (every arm alike: the server's
        search, personalised for the shopper)."""

        def one(row: int) -> tuple[list[int], str | None]:
            params = {"q": str(queries[row]), "k": k, "user": str(self.world.user_ids[users[row]])}
            return self._found(self._get("/v1/search", params), k)

        with ThreadPoolExecutor(self.concurrency) as pool:
            answers = list(pool.map(one, range(users.size)))
        return self._shown(answers, users.size, k)

    def show(self, arm: str, users: np.ndarray, k: int, rng: np.random.Generator) -> Shown:
        """The server's lists for a batch of visits (`random`: ranked here)."""
        if self.arms[arm] == RANDOM:
            empty = sp.csr_matrix((users.size, self.world.n_items), dtype=np.float32)
            return Shown(RandomPolicy(self.world.n_items).slates(users, empty, k, rng))
        with ThreadPoolExecutor(self.concurrency) as pool:
            answers = list(pool.map(lambda u: self._one(arm, int(u), k), users.tolist()))
        return self._shown(answers, users.size, k)

    def record(self, visits: Visits) -> None:
        """Queue the visits' events and post them in batches."""
        frame = visits.events(self.world)
        if self.clock == "now":
            # the real time, one microsecond apart in the simulated order
            now = pd.Timestamp.now(tz="UTC")
            frame["timestamp"] = now + pd.to_timedelta(np.arange(len(frame)), unit="us")
        for row in frame.to_dict("records"):
            self._event_seq += 1
            event: dict[str, Any] = {
                "event_id": f"sim-{row['session_id']}-{self._event_seq}",
                "user_id": row["user_id"],
                "type": row["type"],
                "session_id": row["session_id"],
                "timestamp": row["timestamp"].isoformat(),
            }
            if isinstance(row.get("item_id"), str):
                event["item_id"] = row["item_id"]
            if isinstance(row.get("query"), str):
                event["query"] = row["query"]
            if row["type"] == "purchase":
                event["value"] = float(row["value"])
            if isinstance(row.get("request_id"), str):
                event["request_id"] = row["request_id"]
            self._pending.append(event)
        # the next visit's list must see these events: post them before it is asked for
        self.flush()

    def flush(self) -> None:
        """Post every queued event."""
        while self._pending:
            chunk, self._pending = self._pending[: self.batch], self._pending[self.batch :]
            try:
                response = self.client.post("/v1/events", json={"events": chunk})
            except httpx.HTTPError as exc:
                raise ShelfwiseError(f"POST /v1/events: {exc}") from exc
            if response.status_code != 200:
                raise ShelfwiseError(
                    f"POST /v1/events answered {response.status_code}: {response.text[:300]}"
                )
            self.posted += len(chunk)

    def close(self) -> None:
        """Post what is left and close the client."""
        self.flush()
        self.client.close()
