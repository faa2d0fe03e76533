"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema).

Requests are strict: unknown fields are rejected and every field has bounds, so a bad
request fails with 422 naming the field, never deeper in the stack.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shelfwise.data.schemas import Event, Item
from shelfwise.errors import ConfigError
from shelfwise.profiles.profile import UserProfile

MAX_BATCH = 1000
ID_PATTERN = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"  # some visible text, no controls
PageType = Literal["home", "product", "category", "cart", "search", "checkout", "other"]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error."""

    model_config = ConfigDict(extra="forbid")


# -- results ---------------------------------------------------------------------------------
class ItemOut(BaseModel):
    """One search or recommendation result."""

    item_id: str
    title: str | None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    score: float
    source: str | None = Field(
        default=None,
        description="the step that produced it: personalised, session, trending, popular, "
        "similar, content, bought_together, search",
    )


class RecommendationsOut(BaseModel):
    """Answer of GET /v1/users/{user_id}/recommendations."""

    user_id: str
    strategy: str = Field(description="the first fallback step that contributed")
    model_version: str = Field(description="the model bundle served")
    model: str = Field(description="the personalisation model, e.g. itemknn or itemknn@v0003")
    items: list[ItemOut]


class RelatedOut(BaseModel):
    """Answer of GET /v1/items/{item_id}/similar and .../bought-together."""

    item_id: str
    strategy: str
    model_version: str
    items: list[ItemOut]


class FacetValue(BaseModel):
    """One value of a facet and how many matching items have it."""

    value: str
    count: int


class SearchOut(BaseModel):
    """Answer of GET /v1/search."""

    query: str
    total: int = Field(description="matching items across all pages")
    page: int
    per_page: int
    items: list[ItemOut]
    facets: dict[str, list[FacetValue]] = Field(default_factory=dict)
    engine: str = Field(
        default="bm25",
        description="what answered: service (lexical), service+hybrid, service+semantic, "
        "with +ltr when the learned re-ranker ordered the results; bm25 is the fallback index",
    )
    mode: str | None = Field(
        default=None,
        description="the retrieval that answered: lexical, semantic, hybrid (browse for an "
        "empty query)",
    )
    notice: str | None = Field(
        default=None, description="why the answer differs from what was asked, if it does"
    )


class AutocompleteOut(BaseModel):
    """Answer of GET /v1/autocomplete."""

    prefix: str
    suggestions: list[str]


# -- events ----------------------------------------------------------------------------------
class EventBatch(Strict):
    """Several events in one request (at most MAX_BATCH)."""

    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH)


class EventsAck(BaseModel):
    """Events written to the store (durable) before this answer was sent."""

    accepted: int = Field(description="new events stored")
    duplicates: int = Field(description="events whose event_id was already stored")


# -- catalogue -------------------------------------------------------------------------------
class ItemIn(Strict):
    """An item's fields for PUT /v1/items/{item_id} (the id comes from the path)."""

    title: str = Field(min_length=1, max_length=1000)
    description: str = Field(default="", max_length=100_000)
    category: str = Field(default="", max_length=1000, description="path, 'A > B > C'")
    brand: str = Field(default="", max_length=256)
    price: float | None = Field(default=None, ge=0, le=1e12)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    in_stock: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class ItemBatch(Strict):
    """Items for POST /v1/items:batch (at most MAX_BATCH)."""

    items: list[Item] = Field(min_length=1, max_length=MAX_BATCH)


class ItemsAck(BaseModel):
    """Items written to the store and served from now on."""

    upserted: int
    new: int
    item_ids: list[str]


class ItemRecord(BaseModel):
    """A catalogue row as stored."""

    item_id: str
    title: str | None
    description: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    currency: str | None = None
    in_stock: bool = True
    attributes: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class Deleted(BaseModel):
    """What a DELETE removed."""

    deleted: dict[str, int]


# -- users -----------------------------------------------------------------------------------
ProfileOut = UserProfile


# -- models and jobs -------------------------------------------------------------------------
class ModelVersion(BaseModel):
    """One version of the registry (a bundle or a tuned model) with what it was trained on
    and how it scored."""

    version: str
    kind: Literal["bundle", "model"] = "bundle"
    active: bool
    created_at: str | None = None
    models: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    parent: str | None = Field(default=None, description="a derived bundle's parent bundle")
    serving_model: str | None = Field(
        default=None, description="the tuned model version a bundle serves"
    )


class ModelList(BaseModel):
    """All stored versions, newest first."""

    active: str | None
    versions: list[ModelVersion]


class JobIn(Strict):
    """A background job: `train` a new bundle from the store, or `tune` a model."""

    kind: Literal["train", "tune"]
    activate: bool = Field(
        default=False,
        description="serve the result when the job succeeds (train: only if the new bundle "
        "passes the gate, a held-out metric not worse than the served bundle's)",
    )
    model: str | None = Field(
        default=None, max_length=64, description="tune: which model (a tunable model or auto)"
    )
    trials: int = Field(default=20, ge=1, le=1000, description="tune: Optuna trials")
    timeout_s: float | None = Field(default=None, gt=0, le=86_400, description="tune: seconds")

    @field_validator("model")
    @classmethod
    def _tunable(cls, model: str | None) -> str | None:
        from shelfwise.serve.jobs import check_tune_model

        try:
            check_tune_model(model)
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("model: ")) from None
        return model

    @model_validator(mode="after")
    def _fields_of_kind(self) -> JobIn:
        given = sorted({"model", "timeout_s", "trials"} & self.model_fields_set)
        if self.kind == "train" and given:
            raise ValueError(f"{', '.join(given)}: only tune jobs take these fields")
        return self


class JobOut(BaseModel):
    """State of a background job."""

    job_id: str
    kind: str
    trigger: str = Field(default="api", description="api, or what started it (schedule, events)")
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: dict[str, Any] | None = Field(
        default=None, description="the phase a running job is in"
    )
    result: dict[str, Any] | None = None
    error: str | None = None


# -- ops -------------------------------------------------------------------------------------
class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"]


class Ready(BaseModel):
    """Readiness: the store answers and a bundle is loaded."""

    status: Literal["ready"]
    model_version: str
    items: int
    users: int
    events: int


class AdminSummary(BaseModel):
    """Counts for the admin page."""

    store: dict[str, int]
    event_types: dict[str, int]
    model_version: str
    catalog_served: int
    auth: bool
    jobs: list[JobOut]


class KeyOut(BaseModel):
    """An API key's public record (never the key or its hash)."""

    key_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreateIn(Strict):
    """A new API key."""

    scopes: list[Literal["read", "write", "admin"]] = Field(min_length=1, max_length=3)
    name: str = Field(default="", max_length=200)


class KeyCreated(KeyOut):
    """The new key, shown this once."""

    key: str
