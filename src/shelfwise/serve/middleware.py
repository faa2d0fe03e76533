"""ASGI middleware: request body limit (413), Prometheus metrics and a privacy-safe access log.

Written as plain ASGI callables rather than `BaseHTTPMiddleware`, which would buffer
bodies and cost a task per request.

- Body limit: a request whose `Content-Length` exceeds `max_body_bytes` is answered 413
  before the app reads it; a chunked body is counted as it streams and cut off at the limit.
- Metrics (`prometheus_client`, one registry per app): `shelfwise_http_requests_total`
  {method, route, status} and `shelfwise_http_request_duration_seconds` {method, route},
  labelled by the route *template* (`/v1/users/{user_id}/recommendations`), never the raw
  path, which keeps the label set small and ids out of the metrics; plus
  `shelfwise_model_info` {version, serving} for the active model; and the events' group
  commit: `shelfwise_event_commits_total`, `shelfwise_event_commit_requests_total` and
  `shelfwise_event_commit_events_total` (requests / commits is the mean group size).
- Access log (logger `shelfwise.access`): method, route template, status, milliseconds and
  the API key id. Never the raw path or query string, which carry user ids and search text.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("shelfwise.access")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The app's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shelfwise_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shelfwise_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model = Gauge(
            "shelfwise_model_info",
            "The model bundle being served (value 1) and the personalisation model.",
            ["version", "serving"],
            registry=self.registry,
        )
        self._model_labels: tuple[str, str] | None = None
        # the labelled children by (method, route, status): `labels()` takes a lock and
        # builds a key on every call, which costs more than the increment itself
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._writer_stats: Callable[[], Mapping[str, int]] | None = None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its latency under its method, route template and status."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            if len(self._children) < 10_000:  # route templates only: a small set
                self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_event_writer(self, stats: Callable[[], Mapping[str, int]]) -> None:
        """Export the group commit's counters (`EventWriter.stats`: groups, requests and
        events written); a later call replaces the source."""
        if self._writer_stats is None:
            self.registry.register(_GroupCommitCollector(self))
        self._writer_stats = stats

    def set_model(self, version: str, serving: str) -> None:
        """Point the model gauge at the active version."""
        labels = (version, serving)
        if labels == self._model_labels:
            return
        if self._model_labels is not None:
            self.model.remove(*self._model_labels)
        self.model.labels(*labels).set(1)
        self._model_labels = labels


class _GroupCommitCollector(Collector):
    """The event writer's counters, read at scrape time."""

    HELP: ClassVar[dict[str, tuple[str, str]]] = {
        "groups": ("shelfwise_event_commits", "Group commits of POST /v1/events."),
        "requests": (
            "shelfwise_event_commit_requests",
            "Event requests written by the group commits.",
        ),
        "events": ("shelfwise_event_commit_events", "Events written by the group commits."),
    }

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        source = self.metrics._writer_stats
        stats = source() if source is not None else {}
        for key, (name, documentation) in self.HELP.items():
            yield CounterMetricFamily(name, documentation, value=float(stats.get(key, 0)))

    def describe(self) -> Iterator[CounterMetricFamily]:
        return self.collect()


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ServiceMiddleware:
    """Body limit + metrics + access log around the whole app (see the module doc)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.too_large = {
            "detail": f"the request body is larger than the limit of {max_body_bytes:,} bytes",
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = str(scope.get("method", "GET"))
        status = 500
        response_started = False
        limit = self.max_body_bytes
        too_large = self.too_large
        length = _content_length(scope)
        if length is not None and length > limit:
            await _send_json(send, 413, too_large)
            self._record(scope, method, 413, started)
            return
        received = 0
        cut_off = False

        async def counting_receive() -> Message:
            # Past the limit: answer 413 now and tell the app the client left, so it stops
            # reading; whatever it tries to send afterwards is dropped.
            nonlocal received, cut_off, status, response_started
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    if not response_started:
                        status, response_started = 413, True
                        await _send_json(send, 413, too_large)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, response_started
            if cut_off:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not cut_off:
                raise
        finally:
            self._record(scope, method, status, started)

    def _record(self, scope: Scope, method: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(method, template, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            state = scope.get("state") or {}
            principal = state.get("principal") if isinstance(state, dict) else None
            key_id = getattr(principal, "key_id", None) or "-"
            access_log.info(
                "%s %s %d %.1fms key=%s", method, template, status, elapsed * 1000, key_id
            )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
