"""Bulk routes: ``POST /v1/accounts/batch`` (admin) and ``POST /v1/fills/batch`` (router).

Up to :data:`~api.schemas.MAX_BATCH_ITEMS` items; the envelope (not a list, too many items) is
validated as a whole (422), then every item on its own: a bad item is answered in its result
(``status`` what the single route would have answered, ``error`` with ``loc`` inside the item)
and never blocks the others, and nothing of it is applied. Items apply in their order, so two
items for one account apply in the order given. When an item got 503 the answer carries
``Retry-After: 1`` (and an ``Idempotency-Key`` does not remember it): retrying is safe, because
fills are idempotent on ``fill_id`` and a registration identical to the existing account
answers 200 with ``existing: true``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from ..auth import require
from ..deps import MetricsDep, RegistryDep, ServiceDep, future_error
from ..errors import item_error
from ..msgpack import MSGPACK
from ..schemas import AccountCreate, AccountsBatchIn, AccountsBatchOut, FillIn, FillsBatchIn, FillsBatchOut

router = APIRouter(tags=["bulk"])

_MSGPACK_DOC = {"requestBody": {"content": {MSGPACK: {"schema": {"type": "object"}}}}}


def _invalid(exc: ValidationError) -> dict[str, Any]:
    """The first validation error of an item, ``loc`` inside it."""
    first = exc.errors()[0]
    return {"code": first["type"], "message": first["msg"], "loc": [str(p) if not isinstance(p, int) else p
                                                                     for p in first["loc"]]}


def _item_id(item: Any, field: str) -> str | None:
    value = item.get(field) if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _answer(response: Response, results: list[dict[str, Any]], where: list[int], outcomes: list[Any],
            applied: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Fill ``results[where[k]]`` from ``outcomes[k]``: an exception as its status and error, a
    success as ``applied(outcome)``; ``Retry-After: 1`` when an item got 503."""
    for i, outcome in zip(where, outcomes):
        if isinstance(outcome, Exception):
            status, error = item_error(outcome)
            results[i].update(status=status, error=error)
        else:
            results[i].update(applied(outcome))
    if any(r["status"] == 503 for r in results):
        response.headers["Retry-After"] = "1"
    return {"results": results}


@router.post("/v1/accounts/batch", response_model=AccountsBatchOut, openapi_extra=_MSGPACK_DOC,
             dependencies=[require("admin")])
async def register_accounts(body: AccountsBatchIn, service: ServiceDep, response: Response):
    """Register up to 10,000 accounts (the items of ``POST /v1/accounts``), one result per item
    in order: 201, 200 ``existing: true`` (the same account registered before: a retry), or the
    single route's error status with ``error``."""
    results: list[dict[str, Any]] = [{"account_id": _item_id(item, "account_id"), "status": 0}
                                     for item in body.accounts]
    specs, nows, where = [], [], []
    for i, item in enumerate(body.accounts):
        try:
            parsed = AccountCreate.model_validate(item)
        except ValidationError as exc:
            results[i].update(status=422, error=_invalid(exc))
            continue
        if parsed.opened_at is None and service.clock.kind == "events" and service.now() == 0:
            results[i].update(status=422, error={
                "code": "missing", "loc": ["opened_at"],
                "message": "required until the events clock has seen an event"})
            continue
        spec = parsed.model_dump(exclude={"opened_at"})
        spec["limits"] = parsed.limits.model_dump(exclude_unset=True) if parsed.limits else {}
        specs.append(spec)
        nows.append(parsed.opened_at if parsed.opened_at is not None else service.now())
        where.append(i)
    def registered(view: dict[str, Any]) -> dict[str, Any]:
        existing = bool(view.pop("existing", False))
        return {"status": 200 if existing else 201, "existing": existing, "account": view}

    return _answer(response, results, where, await service.register_many(specs, nows), registered)


@router.post("/v1/fills/batch", response_model=FillsBatchOut, openapi_extra=_MSGPACK_DOC,
             dependencies=[require("router")])
async def report_fills(body: FillsBatchIn, service: ServiceDep, registry: RegistryDep, metrics: MetricsDep,
                       request: Request, response: Response):
    """Apply up to 10,000 execution reports (the items of ``POST /v1/fills``, drop-copy feeds
    and replays), in order per account, one result per item: 200 (``fill.duplicate`` for a
    retried ``fill_id``) or the single route's error status with ``error``."""
    results: list[dict[str, Any]] = [{"fill_id": _item_id(item, "fill_id"), "status": 0} for item in body.fills]
    fills, nows, where = [], [], []
    for i, item in enumerate(body.fills):
        try:
            parsed = FillIn.model_validate(item)
        except ValidationError as exc:
            results[i].update(status=422, error=_invalid(exc))
            continue
        if parsed.instrument not in registry:
            results[i].update(status=422, error={"code": "value_error", "loc": ["instrument"],
                                                 "message": f"unknown instrument {parsed.instrument!r}"})
            continue
        if error := future_error(request, parsed.ts, ["ts"]):
            results[i].update(status=422, error={"code": error["type"], "loc": error["loc"], "message": error["msg"]})
            continue
        fill = parsed.model_dump()
        fill["ts"] = now = parsed.ts if parsed.ts is not None else service.now()
        fills.append(fill)
        nows.append(now)
        where.append(i)
    def filled(result: dict[str, Any]) -> dict[str, Any]:
        for b in result["breach"]:
            metrics.breaches.labels(b["code"]).inc()
        return {"status": 200, "fill": result}

    return _answer(response, results, where, await service.fill_many(fills, nows), filled)
