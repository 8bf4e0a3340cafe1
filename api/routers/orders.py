"""Order router endpoints: pre-trade check, cancel, fills, marks (JSON or msgpack)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from ..auth import require
from ..deps import MetricsDep, RegistryDep, ServiceDep, future_error
from ..errors import unprocessable
from ..fastcheck import run_check
from ..msgpack import MSGPACK
from ..schemas import CancelRequest, CancelResult, DecisionOut, FillIn, FillResult, MarksIn, MarksResult, OrderCheck

router = APIRouter(tags=["order router"], dependencies=[require("router")])

_MSGPACK_DOC = {"requestBody": {"content": {MSGPACK: {"schema": {"type": "object"}}}}}


@router.post("/v1/orders/check", response_model=DecisionOut, openapi_extra=_MSGPACK_DOC,
             responses={503: {"model": DecisionOut, "description": "Host unreachable: fail closed"}})
async def check_order(body: OrderCheck, service: ServiceDep, metrics: MetricsDep, request: Request):
    """Pre-trade check at ``ts`` (default: the deployment clock). A reject is HTTP 200 with
    every reason; HTTP 503 with ``SERVICE_UNAVAILABLE`` if the account's host cannot be reached
    (fail closed). ``late: true`` when ``ts`` fell in a trading day the account had already
    rolled past (it is booked to the current one). A ``ts`` more than ``max_future_seconds``
    after the wall clock is a 422."""
    if body.ts is not None and (error := future_error(request, body.ts, ["body", "ts"])):
        return JSONResponse(status_code=422, content={"detail": [error]})
    status, content = await run_check(service, metrics, body)
    # the host's decision already has the DecisionOut shape (tests assert it against the
    # schema); answering it directly skips a second validation on the hot path
    return JSONResponse(content, status_code=status, headers={"Retry-After": "1"} if status == 503 else None)


@router.post("/v1/orders/{order_id}/cancel", response_model=CancelResult, openapi_extra=_MSGPACK_DOC)
async def cancel_order(order_id: str, service: ServiceDep, request: Request,
                       body: Annotated[CancelRequest | None, Body()] = None):
    """Release the order's reservation (idempotent). ``account_id`` is optional: the front
    remembers which account checked the order, or searches the hosts."""
    body = body or CancelRequest()
    if error := future_error(request, body.ts, ["body", "ts"]):
        return JSONResponse(status_code=422, content={"detail": [error]})
    now = body.ts if body.ts is not None else service.now()
    return await service.cancel(order_id, body.account_id, now)


@router.post("/v1/fills", response_model=FillResult, openapi_extra=_MSGPACK_DOC)
async def report_fill(body: FillIn, service: ServiceDep, registry: RegistryDep, metrics: MetricsDep,
                      request: Request):
    """Apply an execution report at ``ts`` (default: the deployment clock; idempotent on
    ``fill_id``; same id, other content → 409). ``late: true`` when it was booked to a later
    trading day than its ``ts``; a ``ts`` more than ``max_future_seconds`` after the wall clock
    is a 422."""
    if body.instrument not in registry:
        return unprocessable(["body", "instrument"], f"unknown instrument {body.instrument!r}")
    if error := future_error(request, body.ts, ["body", "ts"]):
        return JSONResponse(status_code=422, content={"detail": [error]})
    fill = body.model_dump()
    now = body.ts if body.ts is not None else service.now()
    fill["ts"] = now
    result = await service.fill(fill, now)
    for b in result["breach"]:
        metrics.breaches.labels(b["code"]).inc()
    return result


@router.post("/v1/marks", response_model=MarksResult, openapi_extra=_MSGPACK_DOC)
async def post_marks(body: MarksIn, service: ServiceDep, registry: RegistryDep, metrics: MetricsDep,
                     request: Request):
    """Price updates; re-values every account and may trip breaches (returned).

    A mark older than the last one applied for its instrument is ignored and counted
    (``stale``). A mark stamped more than ``max_future_seconds`` (default 60) after the
    server's wall clock, or of an unknown instrument, is a 422 naming it, and nothing of the
    request is applied. Historic marks (a replay) are accepted; a mark without ``ts`` is at the
    deployment clock."""
    now = service.now()
    marks, errors = [], []
    for i, m in enumerate(body.marks):
        if m.instrument not in registry:
            errors.append({"loc": ["body", "marks", i, "instrument"], "msg": f"unknown instrument {m.instrument!r}",
                           "type": "value_error"})
        if error := future_error(request, m.ts, ["body", "marks", i, "ts"], "mark_in_future"):
            errors.append(error)
        marks.append({"instrument": m.instrument, "bid": m.bid, "ask": m.ask, "ts": m.ts if m.ts is not None else now})
    if errors:
        return JSONResponse(status_code=422, content={"detail": errors})
    result = await service.marks(marks)
    metrics.marks_applied.inc(result["applied"])
    metrics.marks_stale.inc(result["stale"])
    for code, n in result["breaches_by_code"].items():
        metrics.breaches.labels(code).inc(n)
    return result
