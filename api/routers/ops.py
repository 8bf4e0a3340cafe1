"""Operations: kill switches and consolidated risk."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query

from ..auth import require
from ..deps import AsOfDep, ServiceDep
from ..schemas import ClusterView, ConsolidatedRisk, KillSwitchIn

router = APIRouter(tags=["operations"])


@router.post("/v1/kill-switch", dependencies=[require("ops")])
async def activate_kill_switch(body: KillSwitchIn, service: ServiceDep):
    """Activate a kill switch for an account, user, challenge or the firm. ``halt`` blocks
    every order; ``reduce_only`` lets position-reducing orders through."""
    return await service.set_kill_switch(body.scope, body.id, body.mode, body.reason, body.by, service.now())


@router.delete("/v1/kill-switch/firm", dependencies=[require("admin")])
async def release_firm_kill_switch(service: ServiceDep, reason: str = Query(min_length=1, max_length=1000),
                                   by: str = Query("ops", min_length=1, max_length=128)):
    """Release the firm-wide switch."""
    return await service.release_kill_switch("firm", None, reason, by, service.now())


@router.delete("/v1/kill-switch/{scope}/{scope_id}", dependencies=[require("admin")])
async def release_kill_switch(service: ServiceDep, scope: Literal["account", "user", "challenge"] = Path(),
                              scope_id: str = Path(min_length=1, max_length=128),
                              reason: str = Query(min_length=1, max_length=1000),
                              by: str = Query("ops", min_length=1, max_length=128)):
    """Release a switch. A breach-tripped account switch stays until released here; the
    account's ``failed`` status is not changed by a release."""
    return await service.release_kill_switch(scope, scope_id, reason, by, service.now())


async def _consolidated(service, scope: str, scope_id: str | None, top: int, at: float | None = None):
    result = await service.consolidated(scope, scope_id, top, at)
    if scope != "firm" and result["accounts"] == 0:
        raise HTTPException(status_code=404, detail={"code": f"UNKNOWN_{scope.upper()}",
                                                     "message": f"no accounts for {scope} {scope_id!r}"})
    return result


@router.get("/v1/risk/users/{user_id}", response_model=ConsolidatedRisk, dependencies=[require("ops")])
async def user_risk(user_id: str, service: ServiceDep, at: AsOfDep, top: int = Query(10, ge=1, le=1000)):
    """Consolidated risk of one user's accounts (as of the clock, or projected at ``at``)."""
    return await _consolidated(service, "user", user_id, top, at)


@router.get("/v1/risk/challenges/{challenge_id}", response_model=ConsolidatedRisk,
            dependencies=[require("ops")])
async def challenge_risk(challenge_id: str, service: ServiceDep, at: AsOfDep, top: int = Query(10, ge=1, le=1000)):
    """Consolidated risk of a challenge (cohort), as of the clock or projected at ``at``."""
    return await _consolidated(service, "challenge", challenge_id, top, at)


@router.get("/v1/risk/firm", response_model=ConsolidatedRisk, dependencies=[require("ops")])
async def firm_risk(service: ServiceDep, at: AsOfDep, top: int = Query(10, ge=1, le=1000)):
    """Consolidated risk of the whole firm, as of the clock or projected at ``at``."""
    return await _consolidated(service, "firm", None, top, at)


@router.get("/v1/cluster", response_model=ClusterView, dependencies=[require("ops")])
async def cluster(service: ServiceDep):
    """The deployment on its cluster: nodes, the shards on each with their accounts and journal
    epochs, and the fronts attached. A shard that does not answer is listed unavailable."""
    return await service.cluster()
