"""The one `Settings` object: every knob of a Shelfwise process, in nested sections.

`Settings()` reads `SHELFWISE_*` environment variables (and nothing else reads the
environment: library code takes its settings as arguments). Each section can be set as a
whole or field by field, with `__` between section and field::

    SHELFWISE_STORE__URL=postgresql://shop@db/shop    # store.url
    SHELFWISE_SERVE__AUTH=false                        # serve.auth
    SHELFWISE_ENGINE__SESSION_ITEMS=20                 # engine.session_items
    SHELFWISE_TUNING__TIMEOUT=600                      # tuning.timeout

The short names of the first version keep working (`SHELFWISE_STORE`, `SHELFWISE_AUTH`,
`SHELFWISE_ARTIFACTS_DIR`, `SHELFWISE_SEARCH_MODE`, `SHELFWISE_CACHE_DIR`,
`SHELFWISE_DATA_DIR`, `SHELFWISE_WEB_KEY` and every `serve` field by its own name, e.g.
`SHELFWISE_RATE_LIMIT`); a nested name wins over a short one.

Sections: `store` (where the data lives), `paths` (registry, caches, public datasets),
`serve` (the HTTP service), `search` (how search finds candidates), `engine` (the serving
fallback chain: `serving.config.EngineConfig`, recorded in every bundle built from these
settings), `tuning` (defaults of `shelfwise tune` and the API's tune jobs) and `ingest`
(which event times a write accepts: `SHELFWISE_INGEST__MAX_FUTURE_SECONDS`,
`SHELFWISE_INGEST__MIN_TIMESTAMP`) and `impressions` (how served lists are logged: batch
size, flush interval, queue bound, sampling, retention; `SHELFWISE_IMPRESSIONS__...`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shelfwise.data.schemas import (
    DEFAULT_MAX_FUTURE_SECONDS,
    DEFAULT_MIN_TIMESTAMP,
    TimeBounds,
    to_utc,
)
from shelfwise.search.modes import SearchMode
from shelfwise.serving.config import EngineConfig

# The repository root when running from a checkout (src/shelfwise/settings.py -> ../../..).
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE_URL = "duckdb:///var/shelfwise.duckdb"

__all__ = [
    "DEFAULT_STORE_URL",
    "SHORT_NAMES",
    "EngineConfig",
    "ImpressionSettings",
    "IngestSettings",
    "PathSettings",
    "SearchSettings",
    "ServeSettings",
    "Settings",
    "StoreSettings",
    "TuningSettings",
    "find_data_dir",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class StoreSettings(_Section):
    """Where the catalogue, events, users and keys live."""

    url: str = DEFAULT_STORE_URL
    """`duckdb:///PATH` (embedded, one writer process) or `postgresql://...` (several API
    workers)."""


class PathSettings(_Section):
    """Folders on disk."""

    artifacts: Path = Path("var/artifacts")
    """The artifacts registry: bundles and tuned models, one `ACTIVE` pointer."""
    cache: Path = Path("var/cache")
    """Caches that can be deleted at any time (catalogue embeddings under `embeddings/`)."""
    data: Path | None = None
    """The public datasets; None: `../shared/data` beside the working directory or the
    checkout, when present."""

    @property
    def embeddings(self) -> Path:
        """Where catalogue embeddings are cached."""
        return self.cache / "embeddings"

    def data_dir(self) -> Path | None:
        """The public datasets folder: `data`, else `../shared/data` if present."""
        return self.data if self.data is not None else find_data_dir()


class ServeSettings(_Section):
    """How `create_app()` runs the HTTP service."""

    auth: bool = True
    """Require API keys. Turn off only for a local demo (`shelfwise demo` does)."""
    rate_limit: float = Field(default=100.0, ge=0)
    """Requests a second per key (per client address without auth); 0 switches it off."""
    rate_burst: int = Field(default=200, ge=1)
    """How many requests a key may make in a burst above the steady rate."""
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    """Largest request body accepted, in bytes (413 above)."""
    cors_origins: str = ""
    """Comma-separated origins allowed by CORS ("*" for any); empty: no CORS headers."""
    key_cache_seconds: float = Field(default=10.0, ge=0)
    """Seconds a verified API key is trusted before it is looked up again."""
    max_batch: int = Field(default=1000, ge=1)
    """Most events in one POST /v1/events, most items in one POST /v1/items:batch."""
    event_gather_ms: float = Field(default=5.0, ge=0, le=1000)
    """Most milliseconds a group commit of events waits for as many requests as waited
    at the end of the previous one (`shelfwise.batching`); 0: take only what queued."""
    job_workers: int = Field(default=1, ge=1, le=4)
    """Background training/tuning jobs run at once (each in its own child process)."""
    max_queued_jobs: int = Field(default=8, ge=1, le=1000)
    """Most jobs waiting to start; a job asked for beyond it is refused (429)."""
    retrain_every_seconds: float = Field(default=0.0, ge=0)
    """Start a train job (activated if it passes the gate) this many seconds after the last
    one; 0: off."""
    retrain_after_events: int = Field(default=0, ge=0)
    """Start a train job once this many events were written since the last one; 0: off."""
    tail_seconds: float = Field(default=0.0, ge=0, le=10)
    """Least seconds between two reads of new events from the store (0: before every
    request; writes through this process are always read at once)."""
    refresh_seconds: float = Field(default=5.0, ge=0)
    """Seconds between catch-ups with other processes' writes (catalogue, erasures); 0: off."""
    rebuild: bool = False
    """Retrain the model bundle at start-up. Off: a server starts on the registry's active
    bundle whatever arrived in the store since it was built (newer events and catalogue
    changes are applied online) and builds one only when there is none usable."""
    fast_reads: bool = True
    """Answer the plain GETs of search, autocomplete, recommendations and similar items in
    plain ASGI (`serve.readlane`: the route's work and bytes, without FastAPI's routing and
    validation); off: every request goes through FastAPI."""
    search_cache: int = Field(default=4096, ge=0, le=1_000_000)
    """Answers of searches without a user kept in memory (an LRU emptied by every catalogue
    change, `serve.search.SearchCache`); 0: off."""
    web_key: str | None = None
    """A `read,write` API key inlined into the storefront pages (like a publishable key);
    None: the pages call the API without a key (fine with `auth` off)."""

    def cors_list(self) -> list[str]:
        """The CORS origins as a list."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


class SearchSettings(_Section):
    """How search finds candidates by default."""

    mode: Literal["auto"] | SearchMode = "auto"
    """`auto` (the default: hybrid, BM25F and MiniLM dense retrieval fused with a tuned
    weight, when the embedding model loads; lexical when it does not, and the server says
    why in `/v1/search`'s `query_info`), `lexical` (BM25F only), `hybrid` or `semantic`
    (dense only). Every mode but `lexical` embeds the catalogue at build time (cached under
    `paths.cache/embeddings`) and trains the bundle's re-ranker with the dense features. A
    request may ask for another mode with `?mode=`."""

    @property
    def dense(self) -> bool:
        """Whether dense retrieval is switched on."""
        return self.mode != "lexical"


class TuningSettings(_Section):
    """Defaults of `shelfwise tune` and of the API's tune jobs (flags and job fields win)."""

    metric: str = "ndcg@10"
    sampler: str = "tpe"
    pruner: str = "median"
    trials: int | None = Field(default=None, ge=1)
    """Trials per study (None: 50, or unlimited with a timeout)."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds per study (None: no time limit)."""
    seed: int = 42
    build_budget_seconds: float = Field(default=0.0, ge=0)
    """Seconds a bundle build spends tuning its personalisation model (`shelfwise build`,
    the library); 0: off, the default configurations are served. The winner is refitted on
    all the interactions; a later build of the same store reuses it (`--retune` tunes
    again)."""
    demo_budget_seconds: float = Field(default=180.0, ge=0)
    """The tuning budget of `shelfwise demo` / `make demo` (0: off)."""
    build_model: str = "auto"
    """What a build tunes: a registry name, or `auto` (the best of `build_candidates`)."""
    build_candidates: tuple[str, ...] = ("itemknn", "ease")
    """The models `auto` searches over at build time (item-item models: they serve from a
    request's history; EASE inverts an items x items matrix, keep catalogues moderate)."""


class IngestSettings(_Section):
    """Which event times the write paths accept (`POST /v1/events`, `shelfwise ingest`):
    a time outside these bounds is refused with a 422 / an error naming the row."""

    max_future_seconds: float = Field(default=DEFAULT_MAX_FUTURE_SECONDS, ge=0, le=86_400 * 7)
    """Most seconds an event's timestamp may lie ahead of this server's clock (the
    sender's clock skew)."""
    min_timestamp: datetime = DEFAULT_MIN_TIMESTAMP
    """The earliest event timestamp accepted (ISO-8601; naive is UTC). Lower it to ingest
    older history."""

    def time_bounds(self) -> TimeBounds:
        """These bounds for the library's checks (`TimeBounds`)."""
        return TimeBounds(self.max_future_seconds, to_utc(self.min_timestamp))


class ImpressionSettings(_Section):
    """How the API logs what it served (`experiments.impressions.ImpressionLog`): a writer
    thread stores queued impressions in batches, off the request path."""

    batch_size: int = Field(default=2000, ge=1, le=100_000)
    """Most impressions stored in one write."""
    flush_seconds: float = Field(default=0.5, ge=0, le=60)
    """Seconds the writer waits for a batch to fill before storing what has arrived."""
    max_queue: int = Field(default=100_000, ge=1, le=10_000_000)
    """Most impressions waiting to be written; beyond it new ones are dropped and counted
    (the store is slower than the traffic), so memory stays bounded."""
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    """Share of the lists outside any experiment that are logged (at random; a list of a
    running experiment's variant is always logged, so its results stay complete)."""
    retention_days: float | None = Field(default=None, gt=0)
    """Days an impression is kept: older ones are deleted at start-up and then hourly by
    the writer; None keeps them all."""


SHORT_NAMES: dict[str, tuple[str, str]] = {
    "store": ("store", "url"),
    "artifacts_dir": ("paths", "artifacts"),
    "cache_dir": ("paths", "cache"),
    "data_dir": ("paths", "data"),
    "search_mode": ("search", "mode"),
    **{name: ("serve", name) for name in ServeSettings.model_fields},
}
"""The short names of the first version (`SHELFWISE_<NAME>`) -> (section, field)."""


class _NestedNames(EnvSettingsSource):
    """`SHELFWISE_<SECTION>__<FIELD>` (and a section as JSON). `SHELFWISE_STORE` is also the
    short name of `store.url`: a value that is not JSON is left to `_ShortNames`."""

    def prepare_field_value(
        self, field_name: str, field: FieldInfo, value: Any, value_is_complex: bool
    ) -> Any:
        try:
            return super().prepare_field_value(field_name, field, value, value_is_complex)
        except ValueError:
            if field_name not in SHORT_NAMES:
                raise
            return self.explode_env_vars(field_name, field, self.env_vars) or None


class _ShortNames(EnvSettingsSource):
    """`SHELFWISE_<NAME>` for the short names, mapped into their sections."""

    def __call__(self) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        for name, (section, field) in SHORT_NAMES.items():
            value = self.env_vars.get(f"{self.env_prefix}{name}".lower())
            if value is not None:
                found.setdefault(section, {})[field] = value
        return found

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False


class Settings(BaseSettings):
    """Process-wide settings; see the module doc for the environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="SHELFWISE_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    store: StoreSettings = Field(default_factory=StoreSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    tuning: TuningSettings = Field(default_factory=TuningSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    impressions: ImpressionSettings = Field(default_factory=ImpressionSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then nested variables, then the short names."""
        return (
            init_settings,
            _NestedNames(settings_cls),
            _ShortNames(settings_cls),
            file_secret_settings,
        )

    def with_(self, **sections: dict[str, Any]) -> Settings:
        """A copy with some fields of some sections replaced, e.g.
        `settings.with_(serve={"auth": False}, paths={"artifacts": path})`."""
        update = {}
        for name, fields in sections.items():
            current = getattr(self, name)
            update[name] = type(current).model_validate({**current.model_dump(), **fields})
        return self.model_copy(update=update)

    def to_env(self) -> dict[str, str]:
        """These settings as nested `SHELFWISE_*` variables (for child processes, such as
        uvicorn's workers, that build their own `Settings()`)."""
        out: dict[str, str] = {}
        for section in ("store", "paths", "serve", "search", "tuning", "ingest", "impressions"):
            for field, value in getattr(self, section).model_dump(mode="json").items():
                if value is not None:
                    if isinstance(value, bool):
                        text = str(value).lower()
                    elif isinstance(value, list | dict):  # complex fields are read as JSON
                        text = json.dumps(value)
                    else:
                        text = str(value)
                    out[f"SHELFWISE_{section.upper()}__{field.upper()}"] = text
        out["SHELFWISE_ENGINE"] = self.engine.model_dump_json()
        return out


def find_data_dir() -> Path | None:
    """`../shared/data` beside the current directory or beside the checkout, if present."""
    for base in (Path.cwd(), _REPO_ROOT):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


def data_dir() -> Path | None:
    """Where the public datasets live: `Settings().paths` (`SHELFWISE_DATA_DIR`), else
    `../shared/data` if present. The library's default when no folder is passed."""
    return Settings().paths.data_dir()
