"""Settings of the HTTP service, from `SHELFWISE_*` environment variables.

Kept beside the app rather than in `shelfwise.settings`, so the library stays free of
service concerns; both read the same environment (`SHELFWISE_STORE`, ...).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shelfwise.search.modes import SearchMode
from shelfwise.settings import DEFAULT_STORE_URL


class ServeSettings(BaseSettings):
    """How `create_app()` builds the service; every field is `SHELFWISE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="SHELFWISE_", extra="ignore")

    store: str = DEFAULT_STORE_URL
    #: The artifacts registry: bundles and tuned models (`shelfwise tune --models-dir`).
    artifacts_dir: Path = Path("var/artifacts")
    #: Require API keys. Turn off only for a local demo (`shelfwise demo` does).
    auth: bool = True
    #: Requests a second per key (per client address without auth); 0 switches it off.
    rate_limit: float = Field(default=100.0, ge=0)
    #: How many requests a key may make in a burst above the steady rate.
    rate_burst: int = Field(default=200, ge=1)
    #: Largest request body accepted, in bytes (413 above).
    max_body_bytes: int = Field(default=1_000_000, ge=1_024)
    #: Comma-separated origins allowed by CORS ("*" for any); empty: no CORS headers.
    cors_origins: str = ""
    #: Seconds a verified API key is trusted before it is looked up again.
    key_cache_seconds: float = Field(default=10.0, ge=0)
    #: Most events in one POST /v1/events, most items in one POST /v1/items:batch.
    max_batch: int = Field(default=1000, ge=1)
    #: Background training/tuning jobs run one at a time in this many worker threads.
    job_workers: int = Field(default=1, ge=1, le=4)
    #: Least seconds between two reads of new events from the store (0: before every
    #: request; writes through this process are always read at once).
    tail_seconds: float = Field(default=0.0, ge=0, le=10)
    #: Seconds between catch-ups with other processes' writes (catalogue, erasures); 0: off.
    refresh_seconds: float = Field(default=5.0, ge=0)
    #: Rebuild the model bundle at startup even if it matches the store.
    rebuild: bool = False
    #: How GET /v1/search finds candidates by default: `lexical` (BM25F), or `hybrid`
    #: (BM25F and dense retrieval fused by RRF) / `semantic` (dense only), which switch on
    #: dense retrieval (MiniLM embeddings in faiss, cached under
    #: `$SHELFWISE_CACHE_DIR/embeddings`) and train the bundle's re-ranker with the dense
    #: features. A request may ask for another mode with `?mode=`.
    search_mode: SearchMode = "lexical"

    @property
    def search_dense(self) -> bool:
        """Whether dense retrieval is switched on."""
        return self.search_mode != "lexical"

    def cors_list(self) -> list[str]:
        """The CORS origins as a list."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]
