"""API keys with scopes, and per-key rate limiting.

Keys. A key reads `swk_<key_id>_<secret>`: `key_id` is 12 public hex characters (shown by
`shelfwise keys list`, used to revoke), `secret` is `secrets.token_urlsafe(32)`, i.e. 256
random bits. The store keeps only `sha256(secret)` (hex). A plain SHA-256 is enough here and
a slow hash (scrypt, bcrypt) would buy nothing: slow hashes protect *low-entropy* secrets
(passwords) against offline guessing, whereas guessing one of 2**256 random tokens is
infeasible at any hash speed. A fast hash also keeps verification off the request's critical
path (microseconds instead of the ~50 ms scrypt is tuned to take). The hash is compared with
`hmac.compare_digest`, and a verified key is cached for `cache_seconds` (default 10 s), so a
revocation made by another process takes effect within that time (at once in the process
that revoked it).

Scopes. `read` (search, autocomplete, recommendations, similar and bought-together items),
`write` (post events), `admin` (catalogue, models, users, admin API). `admin` implies the
other two, so one admin key can do everything; `read` and `write` are independent, so a
storefront usually holds a `read,write` key.

Rate limiting. One token bucket per key (per client address when auth is off): `rate`
tokens a second, at most `burst` saved up; a request takes one token, and a request that
finds the bucket empty gets 429 with `Retry-After` = the seconds until a token is back.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from shelfwise.errors import ConfigError
from shelfwise.store import ApiKeyRecord, Store

SCOPES: tuple[str, ...] = ("read", "write", "admin")
KEY_PREFIX = "swk"
_KEY_ID_HEX = 12


def parse_scopes(value: str | Iterable[str]) -> tuple[str, ...]:
    """`"read,write"` (or a list) -> `("read", "write")`; `ConfigError` naming a bad scope."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    scopes = [p.strip().lower() for p in parts if p and p.strip()]
    if not scopes:
        raise ConfigError(f"scopes: give at least one of {', '.join(SCOPES)}")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ConfigError(
            f"scopes: unknown scope '{unknown[0]}'; use one or more of {', '.join(SCOPES)}"
        )
    return tuple(s for s in SCOPES if s in scopes)  # canonical order, no repeats


def grants(scopes: Iterable[str], needed: str) -> bool:
    """Whether a key with `scopes` may do what `needed` allows (`admin` implies all)."""
    held = set(scopes)
    return needed in held or "admin" in held


def hash_secret(secret: str) -> str:
    """SHA-256 of the secret part of a key, hex (see the module doc for why not scrypt)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """`swk_<key_id>_<secret>` -> (key_id, secret), or None if it is not shaped like a key."""
    prefix, _, rest = key.strip().partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_id) != _KEY_ID_HEX or len(secret) < 32:
        return None
    if any(c not in "0123456789abcdef" for c in key_id):
        return None
    return key_id, secret


def create_key(
    store: Store, scopes: str | Iterable[str], name: str = ""
) -> tuple[str, ApiKeyRecord]:
    """Make a new key, store its hash, and return (the key - shown once, its record)."""
    canonical = parse_scopes(scopes)
    name = name.strip()
    if len(name) > 200:
        raise ConfigError("name: at most 200 characters")
    key_id = secrets.token_hex(_KEY_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        key_id=key_id,
        name=name,
        scopes=canonical,
        key_hash=hash_secret(secret),
        created_at=datetime.now(UTC),
    )
    store.add_api_key(record)
    return f"{KEY_PREFIX}_{key_id}_{secret}", record


@dataclass(frozen=True)
class Principal:
    """Who is calling: a verified key, or the anonymous caller when auth is off."""

    key_id: str | None
    scopes: tuple[str, ...]
    name: str = ""

    @property
    def rate_key(self) -> str:
        """The identity rate limits are counted against."""
        return f"key:{self.key_id}" if self.key_id else "anonymous"


class KeyVerifier:
    """Checks presented keys against the store, caching lookups for `cache_seconds`."""

    def __init__(self, store: Store, cache_seconds: float = 10.0, max_cached: int = 10_000):
        self.store = store
        self.cache_seconds = cache_seconds
        self.max_cached = max_cached
        self._cache: OrderedDict[str, tuple[float, ApiKeyRecord | None]] = OrderedDict()
        self._lock = threading.Lock()

    def _record(self, key_id: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
            if hit is not None and now - hit[0] < self.cache_seconds:
                return hit[1]
        record = self.store.get_api_key(key_id)
        with self._lock:
            self._cache[key_id] = (now, record)
            self._cache.move_to_end(key_id)
            while len(self._cache) > self.max_cached:
                self._cache.popitem(last=False)
        return record

    def answers_from_cache(self, key: str) -> bool:
        """Whether `verify(key)` can answer without reading the store (a malformed key, or
        a lookup of its key id cached less than `cache_seconds` ago): the async auth
        dependency then verifies inline instead of in a worker thread."""
        parts = split_key(key)
        if parts is None:
            return True
        with self._lock:
            hit = self._cache.get(parts[0])
        return hit is not None and time.monotonic() - hit[0] < self.cache_seconds

    def verify(self, key: str) -> Principal | None:
        """The caller a key stands for, or None if it is malformed, unknown or revoked."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        record = self._record(key_id)
        if record is None or not record.active:
            return None
        if not hmac.compare_digest(record.key_hash, hash_secret(secret)):
            return None
        return Principal(key_id=record.key_id, scopes=record.scopes, name=record.name)

    def forget(self, key_id: str) -> None:
        """Drop a cached lookup (after a revocation in this process)."""
        with self._lock:
            self._cache.pop(key_id, None)


class RateLimiter:
    """Token buckets by identity: `rate` tokens/s, capacity `burst`; `rate` <= 0 disables."""

    def __init__(self, rate: float, burst: int, max_buckets: int = 100_000) -> None:
        if burst < 1 and rate > 0:
            raise ConfigError(f"rate_burst must be >= 1 when rate limiting is on, got {burst}")
        self.rate = rate
        self.burst = burst
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when `rate` <= 0."""
        return self.rate > 0

    def acquire(self, identity: str, now: float | None = None) -> float:
        """Take one token: 0.0 if granted, else the seconds until one will be available."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(identity, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[identity] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[identity] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            self._buckets.move_to_end(identity)
            while len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        return wait


def retry_after_header(wait: float) -> str:
    """Seconds for a Retry-After header: a whole number, at least 1."""
    return str(max(1, math.ceil(wait)))
