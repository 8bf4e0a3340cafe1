"""Trading-behaviour analytics, on v1 routes and on the routes of the earlier risk-signal
service (``/risk-report/{account_login}``, ``/risk/user/{user_id}``,
``/risk/challenge/{challenge_id}``, ``POST /admin/update-config``) so its clients keep working."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field

from ..auth import require
from ..deps import AsOfDep, ServiceDep

router = APIRouter(tags=["analytics"])

Id = Annotated[str, Path(min_length=1, max_length=128)]


@router.get("/v1/accounts/{account_id}/analytics", dependencies=[require("ops")])
async def account_analytics(service: ServiceDep, account_id: Id, at: AsOfDep):
    """Behaviour analytics of an account's closed trades: all trades and the last N."""
    return await service.analytics("account", account_id, at)


@router.get("/v1/analytics/users/{user_id}", dependencies=[require("ops")])
async def user_analytics(service: ServiceDep, user_id: Id, at: AsOfDep):
    """Analytics pooled over a user's accounts (404 when the user has none)."""
    return await _pooled(service, "user", user_id, at)


@router.get("/v1/analytics/challenges/{challenge_id}", dependencies=[require("ops")])
async def challenge_analytics(service: ServiceDep, challenge_id: Id, at: AsOfDep):
    """Analytics pooled over a challenge's accounts (404 when it has none)."""
    return await _pooled(service, "challenge", challenge_id, at)


@router.get("/v1/analytics/firm", dependencies=[require("ops")])
async def firm_analytics(service: ServiceDep, at: AsOfDep):
    """Analytics pooled over every account of the firm."""
    return await _pooled(service, "firm", None, at)


@router.get("/v1/analytics/config", dependencies=[require("ops")])
async def get_config(service: ServiceDep):
    """Thresholds and weights of the behaviour analytics."""
    return await service.behaviour_config()


async def _pooled(service, scope: str, scope_id: str | None, at: float | None = None) -> dict[str, Any]:
    result = await service.analytics(scope, scope_id, at)
    if scope != "firm" and result["accounts"] == 0:
        raise HTTPException(status_code=404, detail={"code": f"UNKNOWN_{scope.upper()}",
                                                     "message": f"no accounts for {scope} {scope_id!r}"})
    return result


# ------------------------------------------------------------------------------ legacy routes
class RiskReport(BaseModel):
    """The earlier risk-signal service's report: ``risk_score`` is the behaviour score (0–100)
    over the last ``window`` trades, ``risk_signals`` the flags raised; ``metrics`` is new."""

    trading_account_login: int | str = Field(description="The account, user or challenge id (an int when numeric)")
    risk_signals: list[str]
    risk_score: float
    last_trade_at: str | None = Field(description="ISO 8601 UTC close time of the latest trade")
    metrics: dict


class ConfigUpdate(BaseModel):
    """Threshold update of the earlier service (every field optional; fractions 0–1)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    window_size: int | None = Field(None, ge=1, le=100_000)
    win_ratio_threshold: float | None = Field(None, ge=0, le=1)
    drawdown_threshold: float | None = Field(None, gt=0, le=1)
    stop_loss_threshold: float | None = Field(None, ge=0, le=1)
    take_profit_threshold: float | None = Field(None, ge=0, le=1)
    risk_threshold: float | None = Field(None, ge=0, le=100)
    hft_duration: float | None = Field(None, ge=0, description="Seconds")
    initial_balance: float | None = Field(None, gt=0, description="Ignored: every account has its own")


_LEGACY_FIELDS = {"window_size": "window", "win_ratio_threshold": "win_ratio_threshold",
                  "drawdown_threshold": "drawdown_threshold", "stop_loss_threshold": "stop_loss_min_fraction",
                  "take_profit_threshold": "take_profit_min_fraction", "risk_threshold": "risk_threshold",
                  "hft_duration": "hft_seconds"}


def _report(scope_id: str, result: dict[str, Any]) -> dict[str, Any]:
    window = result["window"]
    if window["trades"] == 0:
        raise HTTPException(status_code=404, detail="No trades found")
    last = result.get("last_trade_at")
    return {"trading_account_login": int(scope_id) if scope_id.isdigit() else scope_id,
            "risk_signals": window["flags"], "risk_score": window["score"],
            "last_trade_at": datetime.fromtimestamp(last, UTC).isoformat() if last is not None else None,
            "metrics": window}


@router.get("/risk-report/{account_login}", response_model=RiskReport, dependencies=[require("ops")])
async def legacy_account_report(service: ServiceDep, account_login: Id):
    """Behaviour score and signals of one account over its last N trades (404: unknown account
    or no trades)."""
    return _report(account_login, await service.analytics("account", account_login))


@router.get("/risk/user/{user_id}", response_model=RiskReport, dependencies=[require("ops")])
async def legacy_user_report(service: ServiceDep, user_id: Id):
    """Behaviour score and signals pooled over a user's accounts, last N trades."""
    return _report(user_id, await _pooled(service, "user", user_id))


@router.get("/risk/challenge/{challenge_id}", response_model=RiskReport, dependencies=[require("ops")])
async def legacy_challenge_report(service: ServiceDep, challenge_id: Id):
    """Behaviour score and signals pooled over a challenge's accounts, last N trades."""
    return _report(challenge_id, await _pooled(service, "challenge", challenge_id))


@router.post("/admin/update-config", dependencies=[require("admin")])
async def legacy_update_config(body: ConfigUpdate, service: ServiceDep):
    """Change the analytics thresholds (the earlier service's field names); returns the
    resulting configuration."""
    updates = {_LEGACY_FIELDS[k]: v for k, v in body.model_dump(exclude_none=True).items() if k in _LEGACY_FIELDS}
    config = await service.behaviour_config(updates)
    note = " (initial_balance ignored: each account has its own)" if body.initial_balance is not None else ""
    return {"message": f"Configuration updated{note}", "config": config}
