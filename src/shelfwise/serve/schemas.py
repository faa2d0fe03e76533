"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema).

Requests are strict: unknown fields are rejected and every field has bounds, so a bad
request fails with 422 naming the field, never deeper in the stack. Poison is refused the
same way (see `shelfwise.data.schemas`): NUL bytes, lone surrogates, `NaN` / `Infinity` /
`1e309`, ids that are not strings; event times outside the `ingest` settings' bounds are
refused by `refuse_bad_times` (the events router), naming the row and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from shelfwise.data.schemas import Event, Item, TimeBounds, poison_problem, utcnow
from shelfwise.errors import ConfigError
from shelfwise.profiles.profile import UserProfile
from shelfwise.profiles.push import PushPlan

MAX_BATCH = 1000
ID_PATTERN = r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$"  # some visible text, no controls
PageType = Literal["home", "product", "category", "cart", "search", "checkout", "other"]


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, and so are poison values (NUL bytes,
    lone surrogates, non-finite numbers)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_poison(cls, v: Any) -> Any:
        problem = poison_problem(v)
        if problem:
            raise ValueError(problem)
        return v


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
    request_id: str | None = Field(
        default=None,
        description="this list's id: send it with the clicks, carts and purchases it leads to",
    )


class RelatedOut(BaseModel):
    """Answer of GET /v1/items/{item_id}/similar and .../bought-together."""

    item_id: str
    strategy: str
    model_version: str
    items: list[ItemOut]
    request_id: str | None = Field(
        default=None,
        description="this list's id: send it with the clicks, carts and purchases it leads to",
    )


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
    query_info: dict[str, Any] = Field(
        default_factory=dict,
        description="how the query was read: corrections, the text searched, detected price, "
        "brand and category (each with `applied`: filter, boost, relaxed or none)",
    )
    request_id: str | None = Field(
        default=None,
        description="this list's id: send it with the clicks, carts and purchases it leads to",
    )


class PushPlanOut(PushPlan):
    """Answer of GET /v1/users/{user_id}/push-plan."""

    request_id: str | None = Field(
        default=None,
        description="this plan's id: send it with the clicks and purchases the push leads to",
    )


class AutocompleteOut(BaseModel):
    """Answer of GET /v1/autocomplete."""

    prefix: str
    suggestions: list[str]


# -- events ----------------------------------------------------------------------------------
class EventIn(Event):
    """An event as a request sends it: ids must be JSON strings."""

    strict_ids: ClassVar[bool] = True


class EventBatch(Strict):
    """Several events in one request (at most MAX_BATCH)."""

    events: list[EventIn] = Field(min_length=1, max_length=MAX_BATCH)

    @field_validator("*", mode="before")
    @classmethod
    def _no_poison(cls, v: Any) -> Any:
        return v  # each row checks itself, so that the error names the row and the field


def _event_or_batch(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict) and "events" in value:
        return "batch"
    if isinstance(value, EventBatch):
        return "batch"
    return "event"


#: A bare JSON array of events, for clients that buffer (at most `serve.max_batch`).
EventArray = Annotated[list[EventIn], Field(min_length=1)]

#: The body of POST /v1/events: one event, `{"events": [...]}` or an array; errors name
#: `body.batch.events.<row>.<field>` / `body.array.<row>.<field>` for a batch.
EventsBody = Annotated[
    Annotated[EventIn, Tag("event")]
    | Annotated[EventBatch, Tag("batch")]
    | Annotated[EventArray, Tag("array")],
    Discriminator(_event_or_batch),
]


def refuse_bad_times(
    events: Sequence[Event], bounds: TimeBounds, batch: bool | str, now: datetime | None = None
) -> None:
    """Raise a 422 (`RequestValidationError`) naming every event whose timestamp is outside
    `bounds`, by row index for a batch; nothing is written then."""
    now = now or utcnow()
    errors = []
    for row, event in enumerate(events):
        problem = bounds.problem(event.timestamp, now)
        if problem:
            # the same places as pydantic's errors of the tagged union (`EventsBody`)
            loc: tuple[str | int, ...] = ("body", "event", "timestamp")
            if batch == "batch" or batch is True:
                loc = ("body", "batch", "events", row, "timestamp")
            elif batch == "array":
                loc = ("body", "array", row, "timestamp")
            errors.append({"type": "value_error", "loc": loc, "msg": problem})
    if errors:
        raise RequestValidationError(errors)


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


class ItemRow(Item):
    """An item as a request sends it: `item_id` must be a JSON string."""

    strict_ids: ClassVar[bool] = True


class ItemBatch(Strict):
    """Items for POST /v1/items:batch (at most MAX_BATCH)."""

    items: list[ItemRow] = Field(min_length=1, max_length=MAX_BATCH)

    @field_validator("*", mode="before")
    @classmethod
    def _no_poison(cls, v: Any) -> Any:
        return v  # each row checks itself, so that the error names the row and the field


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
    unknown_item_events: int = Field(
        default=0, description="events naming an item not in the catalogue (accepted, kept)"
    )
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
