"""Prop-firm tools: the news calendar, position sizing and limit-reduction recommendations."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from ..auth import require
from ..deps import ServiceDep
from ..schemas import CalendarIn, PositionSizeIn, PositionSizeOut, RecommendationDecision

router = APIRouter(tags=["prop-firm rules"])

RecId = Annotated[str, Path(min_length=3, max_length=200)]


@router.post("/v1/calendar", dependencies=[require("admin")])
async def post_calendar(body: CalendarIn, service: ServiceDep):
    """Add or replace economic-calendar events (by ``event_id``) for the ``NEWS_BLACKOUT`` rule."""
    return await service.calendar([e.model_dump() for e in body.events])


@router.get("/v1/calendar", dependencies=[require("ops")])
async def get_calendar(service: ServiceDep):
    """Every calendar event, in time order."""
    return {"events": await service.calendar_events()}


@router.post("/v1/accounts/{account_id}/position-size", response_model=PositionSizeOut,
             dependencies=[require("router", "ops")])
async def position_size(account_id: str, body: PositionSizeIn, service: ServiceDep):
    """Recommended lots for a trade from ``entry`` to ``stop_loss`` risking ``risk_amount``
    (account currency) or ``risk_fraction`` of the balance, rounded down to the lot step and
    capped by max position size, leverage and free margin; ``bound_by`` names the cap."""
    return await service.position_size(account_id, body.model_dump(), service.now())


@router.get("/v1/recommendations", dependencies=[require("ops")])
async def list_recommendations(service: ServiceDep,
                               account_id: str | None = Query(None, min_length=1, max_length=128),
                               status: Literal["pending", "applied", "dismissed", "superseded"] | None = None):
    """Limit-reduction recommendations (one account or the firm), oldest first."""
    return {"recommendations": await service.recommendations(account_id, status)}


@router.post("/v1/recommendations/{recommendation_id}/apply", dependencies=[require("admin")])
async def apply_recommendation(service: ServiceDep, body: RecommendationDecision,
                               recommendation_id: RecId):
    """Apply a pending recommendation: the account's limits change (recorded). 409 if it is
    not pending any more."""
    return await service.decide_recommendation(recommendation_id, True, body.by, body.reason, service.now())


@router.post("/v1/recommendations/{recommendation_id}/dismiss", dependencies=[require("admin")])
async def dismiss_recommendation(service: ServiceDep, body: RecommendationDecision,
                                 recommendation_id: RecId):
    """Dismiss a pending recommendation; nothing changes."""
    return await service.decide_recommendation(recommendation_id, False, body.by, body.reason, service.now())
