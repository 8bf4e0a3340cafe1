"""Baseline for the load test: a bare FastAPI + pydantic ``POST /v1/orders/check``.

Same request body and response shape as the real endpoint (``api/schemas.py``:
``OrderCheck`` in, ``DecisionOut`` out, FastAPI validating both), but no risk logic, no Ray,
no middleware and no metrics: the floor of what FastAPI + uvicorn cost per request on this
machine. ``load_tests/run_bench.py`` measures it beside the real server in the same run.

The models are copied (not imported from ``api``) so that importing this app pulls in
nothing but FastAPI and pydantic; keep them in step with ``api/schemas.py``.

Run it alone with::

    .venv/bin/uvicorn --app-dir load_tests baseline_app:app --host 127.0.0.1 --port 8101 --log-level warning
"""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["app", "OrderCheck", "DecisionOut"]

Id = Field(min_length=1, max_length=128)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class OrderCheck(_Strict):
    """Same fields and constraints as ``api.schemas.OrderCheck``."""

    order_id: str = Id
    account_id: str = Id
    instrument: str = Field(min_length=1, max_length=64)
    side: str = Field(min_length=1, max_length=16, description="buy or sell")
    quantity: float = Field(description="Lots, > 0")
    price: float | None = Field(None, description="Limit price; market orders use the mark")
    stop_loss: float | None = None
    take_profit: float | None = None
    ts: float | None = Field(None, ge=0, description="Event time, epoch seconds; default server time")


class ReasonOut(BaseModel):
    code: str
    limit: float | None
    value: float | None
    message: str


class DecisionOut(BaseModel):
    """Same shape as ``api.schemas.DecisionOut``."""

    order_id: str
    account_id: str
    decision: Literal["accept", "reject"]
    reasons: list[ReasonOut]
    warnings: list[ReasonOut]
    risk_score: float
    reduces_position: bool = False


app = FastAPI(title="riskactors load-test baseline")


@app.post("/v1/orders/check", response_model=DecisionOut)
async def check_order(body: OrderCheck):
    """Always ``accept``: no risk logic, only request and response validation."""
    return {"order_id": body.order_id, "account_id": body.account_id, "decision": "accept",
            "reasons": [], "warnings": [], "risk_score": 0.0, "reduces_position": False}


@app.get("/ready")
async def ready():
    return {"status": "ready"}


@app.get("/health")
async def health():
    return {"status": "ok"}
