"""Order router endpoints: pre-trade check, cancel, fills, marks (JSON or msgpack)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from riskactors.exceptions import ShardUnavailable

from ..deps import MetricsDep, RegistryDep, ServiceDep
from ..errors import unprocessable
from ..msgpack import MSGPACK
from ..schemas import CancelRequest, CancelResult, DecisionOut, FillIn, FillResult, MarksIn, MarksResult, OrderCheck

router = APIRouter(tags=["order router"])

_MSGPACK_DOC = {"requestBody": {"content": {MSGPACK: {"schema": {"type": "object"}}}}}


@router.post("/v1/orders/check", response_model=DecisionOut, openapi_extra=_MSGPACK_DOC,
             responses={503: {"model": DecisionOut, "description": "Host unreachable: fail closed"}})
async def check_order(body: OrderCheck, service: ServiceDep, metrics: MetricsDep):
    """Pre-trade check. A reject is HTTP 200 with every reason; HTTP 503 with
    ``SERVICE_UNAVAILABLE`` if the account's host cannot be reached (fail closed)."""
    t0 = time.perf_counter()
    order = body.model_dump()
    now = body.ts if body.ts is not None else service.now()
    order["ts"] = now
    try:
        decision = await service.check(order, now)
    except ShardUnavailable as exc:
        metrics.unavailable.inc()
        return JSONResponse(status_code=503, content={
            "order_id": body.order_id, "account_id": body.account_id, "decision": "reject",
            "reasons": [{"code": "SERVICE_UNAVAILABLE", "limit": None, "value": None,
                         "message": f"risk host unavailable, failing closed: {exc}"}],
            "warnings": [], "risk_score": 100.0, "reduces_position": False})
    metrics.checks.labels(decision["decision"]).inc()
    for r in decision["reasons"]:
        metrics.reasons.labels(r["code"]).inc()
    metrics.check_seconds.observe(time.perf_counter() - t0)
    # the host's decision already has the DecisionOut shape (tests assert it against the
    # schema); answering it directly skips a second validation on the hot path
    return JSONResponse(decision)


@router.post("/v1/orders/{order_id}/cancel", response_model=CancelResult, openapi_extra=_MSGPACK_DOC)
async def cancel_order(order_id: str, service: ServiceDep, body: Annotated[CancelRequest | None, Body()] = None):
    """Release the order's reservation (idempotent). ``account_id`` is optional: the front
    remembers which account checked the order, or searches the hosts."""
    body = body or CancelRequest()
    now = body.ts if body.ts is not None else service.now()
    return await service.cancel(order_id, body.account_id, now)


@router.post("/v1/fills", response_model=FillResult, openapi_extra=_MSGPACK_DOC)
async def report_fill(body: FillIn, service: ServiceDep, registry: RegistryDep, metrics: MetricsDep):
    """Apply an execution report (idempotent on ``fill_id``; same id, other content → 409)."""
    if body.instrument not in registry:
        return unprocessable(["body", "instrument"], f"unknown instrument {body.instrument!r}")
    fill = body.model_dump()
    now = body.ts if body.ts is not None else service.now()
    fill["ts"] = now
    result = await service.fill(fill, now)
    for b in result["breach"]:
        metrics.breaches.labels(b["code"]).inc()
    return result


@router.post("/v1/marks", response_model=MarksResult, openapi_extra=_MSGPACK_DOC)
async def post_marks(body: MarksIn, service: ServiceDep, registry: RegistryDep, metrics: MetricsDep):
    """Price updates; re-values every account and may trip breaches (returned)."""
    now = service.now()
    marks = []
    for i, m in enumerate(body.marks):
        if m.instrument not in registry:
            return unprocessable(["body", "marks", i, "instrument"], f"unknown instrument {m.instrument!r}")
        marks.append({"instrument": m.instrument, "bid": m.bid, "ask": m.ask, "ts": m.ts if m.ts is not None else now})
    result = await service.marks(marks)
    for b in result["breaches"]:
        metrics.breaches.labels(b["code"]).inc()
    return result
