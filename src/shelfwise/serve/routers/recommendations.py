"""GET /v1/users/{user_id}/recommendations, /v1/items/{item_id}/similar and
/v1/items/{item_id}/bought-together (scope: read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from shelfwise.serve.deps import ReadDep, Services, ServicesDep, answer
from shelfwise.serve.measure import Decision, experiments_of, served
from shelfwise.serve.schemas import ID_PATTERN, ItemOut, PageType, RecommendationsOut, RelatedOut
from shelfwise.serving import RecContext, Recommendation

router = APIRouter(prefix="/v1", tags=["recommendations"])

UserId = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN)]
ItemId = Annotated[str, Path(min_length=1, max_length=256, pattern=ID_PATTERN)]
K = Annotated[int, Query(ge=1, le=100)]


def _items(rec: Recommendation) -> list[ItemOut]:
    return [ItemOut(**i) for i in rec.items]


def _served(
    services: ServicesDep,
    list_type: str,
    rec: Recommendation,
    user_id: str | None = None,
    decision: Decision | None = None,
    exposed: bool = True,
) -> tuple[str, list[ItemOut]]:
    """Log the list as an impression: (its request id, the items in the order shown)."""
    items = _items(rec)
    ids = [i.item_id for i in items]
    return served(
        services,
        list_type,
        items,
        ids,
        user_id,
        decision,
        exposed,
        policy=rec.strategy,
        model_version=rec.model_version,
    )


@router.get("/users/{user_id}/recommendations", response_model=RecommendationsOut)
async def recommendations(
    services: ServicesDep,
    _: ReadDep,
    user_id: UserId,
    k: K = 10,
    page_type: PageType | None = None,
    item: Annotated[
        str | None, Query(min_length=1, max_length=256, description="the item on the page")
    ] = None,
    category: Annotated[str | None, Query(min_length=1, max_length=1000)] = None,
    session: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    exclude: Annotated[
        list[str] | None, Query(max_length=200, description="item ids not to return")
    ] = None,
    model: Annotated[
        str | None, Query(max_length=64, description="a model of the active bundle")
    ] = None,
) -> RecommendationsOut:
    """Personalised, then session-based, then trending in the category, then popular.

    Unknown users get an answer too: the steps that need no history fill the list.
    """
    context = RecContext(page_type=page_type, item_id=item, category=category, session_id=session)
    reads = services.reads_store("recommend", user=True)
    return await answer(
        reads, recommendations_body, services, user_id, k, context, tuple(exclude or ()), model
    )


def recommendations_body(
    services: Services,
    user_id: str,
    k: int,
    context: RecContext,
    exclude: tuple[str, ...],
    model: str | None,
) -> RecommendationsOut:
    """The recommendations route's work (in memory unless `Services.reads_store` says
    otherwise)."""
    decision = experiments_of(services).decide(user_id, "recommendations")
    wanted = decision.variant.model if decision else None
    chosen = model or wanted  # a model asked for by name wins over the variant's
    exposed = not (decision and decision.overridden({"model": model}))
    rec = services.engine.recommend(user_id, k, chosen, context, exclude)
    request_id, items = _served(services, "recommendations", rec, user_id, decision, exposed)
    return RecommendationsOut(
        user_id=user_id,
        strategy=rec.strategy,
        model_version=rec.model_version,
        model=rec.model,
        items=items,
        request_id=request_id,
    )


def related_body(services: Services, chain: str, item_id: str, k: int) -> RelatedOut:
    """The similar and bought-together routes' work: `chain` for the page's item."""
    engine = services.engine
    rec = engine.similar(item_id, k) if chain == "similar" else engine.bought_together(item_id, k)
    request_id, items = _served(services, chain, rec)
    return RelatedOut(
        item_id=item_id,
        strategy=rec.strategy,
        model_version=rec.model_version,
        items=items,
        request_id=request_id,
    )


@router.get("/items/{item_id}/similar", response_model=RelatedOut)
async def similar(services: ServicesDep, _: ReadDep, item_id: ItemId, k: K = 10) -> RelatedOut:
    """Items like this one (collaborative, then content, category, popular); 404 if unknown."""
    reads = services.reads_store("similar")
    return await answer(reads, related_body, services, "similar", item_id, k)


@router.get("/items/{item_id}/bought-together", response_model=RelatedOut)
async def bought_together(
    services: ServicesDep, _: ReadDep, item_id: ItemId, k: K = 10
) -> RelatedOut:
    """Items bought in the same baskets, then similar ones; 404 if the item is unknown."""
    reads = services.reads_store("bought_together")
    return await answer(reads, related_body, services, "bought_together", item_id, k)
