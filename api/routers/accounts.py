"""Accounts: register, view, events, limits, status."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from ..auth import require
from ..deps import AsOfDep, ServiceDep
from ..errors import unprocessable
from ..schemas import AccountCreate, AccountPage, AccountView, LimitsPatch, StatusChange

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.post("", status_code=201, response_model=AccountView, dependencies=[require("admin")])
async def register_account(body: AccountCreate, service: ServiceDep):
    """Register one account bound to a plan (limit template or prop-firm plan) with optional
    limit overrides. 409 if the id exists; 422 for an unknown plan or invalid limit. Its
    history starts at ``opened_at`` (default: the deployment clock; an ``events`` deployment
    that has seen no event yet has no time to give: 422 naming ``opened_at``)."""
    spec = body.model_dump(exclude={"opened_at"})
    spec["limits"] = body.limits.model_dump(exclude_unset=True) if body.limits else {}
    if body.opened_at is None and service.clock.kind == "events" and service.now() == 0:
        return unprocessable(["body", "opened_at"], "required until the events clock has seen an event: the "
                                                    "deployment has no time yet to open the account at")
    now = body.opened_at if body.opened_at is not None else service.now()
    return await service.register(spec, now)


@router.get("", response_model=AccountPage, dependencies=[require("ops")])
async def list_accounts(service: ServiceDep, at: AsOfDep,
                        challenge_id: str | None = Query(None, min_length=1, max_length=128),
                        user_id: str | None = Query(None, min_length=1, max_length=128),
                        status: Literal["active", "passed", "failed", "disabled"] | None = None,
                        cursor: str | None = Query(None, min_length=1, max_length=128,
                                                   description="The next_cursor of the previous page"),
                        limit: int = Query(100, ge=1, le=1000)):
    """Accounts in stable (``account_id``) order, a page at a time, filtered by challenge, user
    and status: summary rows (balance, equity, daily P&L, status, risk score, headroom to the
    nearest breach) and ``next_cursor`` (``null`` on the last page)."""
    return await service.list_accounts(user_id, challenge_id, status, cursor, limit, at)


@router.get("/{account_id}", response_model=AccountView, dependencies=[require("ops")])
async def get_account(account_id: str, service: ServiceDep, at: AsOfDep):
    """The account's risk view as of the deployment clock, or projected at ``at`` (money in
    account currency). A read never changes state."""
    return await service.view(account_id, at)


@router.get("/{account_id}/events", dependencies=[require("ops")])
async def get_events(account_id: str, service: ServiceDep, limit: int = Query(100, ge=1, le=2000)):
    """The account's most recent events (fills, breaches, kill switches, limit changes…)."""
    return await service.events(account_id, limit)


@router.patch("/{account_id}/limits", response_model=AccountView, dependencies=[require("admin")])
async def patch_limits(account_id: str, body: LimitsPatch, service: ServiceDep):
    """Change limits; the change (before, after, by, reason) is recorded as an event."""
    overrides = body.model_dump(exclude_unset=True, exclude={"by", "reason"})
    return await service.patch_limits(account_id, overrides, body.by, body.reason, service.now())


@router.put("/{account_id}/status", response_model=AccountView, dependencies=[require("admin")])
async def set_status(account_id: str, body: StatusChange, service: ServiceDep):
    """Ops status change: ``disabled`` blocks every order, ``active`` re-enables (recorded)."""
    return await service.set_status(account_id, body.status, body.by, body.reason, service.now())
