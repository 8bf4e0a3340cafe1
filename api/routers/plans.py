"""Plans (rule packs) as versioned data, and binding accounts to them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from ..auth import require
from ..deps import ServiceDep
from ..schemas import AccountView, PlanActivate, PlanBinding, PlanIn, PlanVersionOut

router = APIRouter(tags=["plans"])

PlanId = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("/v1/plans", dependencies=[require("ops")])
async def list_plans(service: ServiceDep) -> list[dict]:
    """Every plan id with its active and latest version and each version's status."""
    return await service.plans()


@router.post("/v1/plans", status_code=201, response_model=PlanVersionOut, dependencies=[require("admin")])
async def create_plan(body: PlanIn, service: ServiceDep):
    """Add a plan version as a ``draft`` (a new id starts at version 1). 422 names the invalid
    field, e.g. ``rules.max_loss_limit_fraction``."""
    return await service.create_plan(body.model_dump(exclude_none=True), service.now())


@router.get("/v1/plans/{plan_id}", response_model=list[PlanVersionOut], dependencies=[require("ops")])
async def get_plan(service: ServiceDep, plan_id: PlanId):
    """Every version of a plan, oldest first. 404 for an unknown id."""
    return await service.plan(plan_id)


@router.post("/v1/plans/{plan_id}/activate", response_model=PlanVersionOut, dependencies=[require("admin")])
async def activate_plan(service: ServiceDep, plan_id: PlanId, body: Annotated[PlanActivate | None, Body()] = None):
    """Activate a draft (default: the latest); the previously active version is superseded.
    409 when there is no draft or the version is superseded."""
    version = body.version if body is not None else None
    return await service.activate_plan(plan_id, version, service.now())


@router.put("/v1/accounts/{account_id}/plan", response_model=AccountView, dependencies=[require("admin")])
async def bind_plan(account_id: str, body: PlanBinding, service: ServiceDep):
    """Rebind an account to an active plan version (recorded as a ``plan_bound`` event with
    before and after). The account keeps its state; limits are re-resolved from its initial
    balance."""
    return await service.bind_plan(account_id, body.plan, body.version, body.keep_overrides, body.by, body.reason,
                                   service.now())
