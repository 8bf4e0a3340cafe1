"""Mapping of core and infrastructure errors to HTTP responses.

422: bad input (the ``detail`` names the field, FastAPI's shape); 404: unknown account or
order; 409: conflicts (duplicate account, reused order/fill id, missing conversion rate for a
fill, an ``Idempotency-Key`` reused with another request); 413: body over ``max_body_bytes``;
415: a body that is neither JSON nor msgpack; 503: a host cannot be reached (a check then
answers ``reject`` with ``SERVICE_UNAVAILABLE``).

Shapes: a 422 is FastAPI's ``{"detail": [{"loc", "msg", "type"}]}`` (``type`` is the stable
code, ``loc`` the field path); every other error is ``{"detail": {"code", "message", …}}``
(:func:`problem`). Non-finite numbers echoed back in a 422 (``NaN`` sent in JSON) are
rendered as strings so the error itself stays valid JSON.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from riskactors.domain import (
    ConversionUnavailable,
    DomainError,
    DuplicateAccount,
    FillConflict,
    InvalidFill,
    LimitsError,
    OrderConflict,
    PlanConflict,
    PlanNotFound,
    RecommendationConflict,
    SizingError,
    UnknownAccount,
    UnknownInstrument,
    UnknownOrder,
    UnknownRecommendation,
)
from riskactors.exceptions import ShardUnavailable

__all__ = ["ERROR_RESPONSES", "install_error_handlers", "item_error", "limits_loc", "problem", "unprocessable"]

log = logging.getLogger("riskactors.api")

_STATUS = {UnknownAccount: 404, UnknownOrder: 404, PlanNotFound: 404, UnknownRecommendation: 404,
           DuplicateAccount: 409, OrderConflict: 409, FillConflict: 409, ConversionUnavailable: 409, PlanConflict: 409,
           RecommendationConflict: 409}
#: LimitsError fields that are top-level body fields rather than limits.
_BODY_FIELDS = {"plan", "plan_version", "id", "initial_balance", "position_mode"}


def limits_loc(exc: LimitsError) -> list[str]:
    """Where a ``LimitsError`` points inside a registration body (``["limits", field]`` or a
    top-level field such as ``["plan"]``)."""
    if "." in exc.field or exc.field in _BODY_FIELDS:
        return exc.field.split(".")
    return ["limits", exc.field]


def item_error(exc: Exception) -> tuple[int, dict[str, Any]]:
    """(status, ``{"code", "message", "loc"}``) of a batch item that failed with ``exc``: the
    status the single call would have answered; ``loc`` is inside the item."""
    if isinstance(exc, LimitsError):
        return 422, {"code": "value_error", "message": exc.message, "loc": limits_loc(exc)}
    if isinstance(exc, SizingError):
        return 422, {"code": "value_error", "message": exc.message, "loc": [exc.field]}
    if isinstance(exc, UnknownInstrument):
        return 422, {"code": "value_error", "message": f"unknown instrument {exc.subject!r}", "loc": ["instrument"]}
    if isinstance(exc, InvalidFill):
        return 422, {"code": "value_error", "message": exc.message, "loc": [exc.field] if exc.field else []}
    if isinstance(exc, ShardUnavailable):
        return 503, {"code": "SERVICE_UNAVAILABLE", "message": str(exc), "loc": []}
    if isinstance(exc, DomainError):
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 409)
        return status, {"code": exc.code, "message": exc.message, "loc": [exc.field] if exc.field else []}
    raise exc  # a bug: the request fails as a whole (500), never silently


def unprocessable(loc: list, msg: str, kind: str = "value_error") -> JSONResponse:
    """A 422 in FastAPI's validation shape: ``{"detail": [{"loc", "msg", "type"}]}``."""
    return JSONResponse(status_code=422, content={"detail": [{"loc": loc, "msg": msg, "type": kind}]})


def problem(code: str, message: str, **extra: Any) -> dict:
    """The body of a non-422 error: ``{"detail": {"code", "message", **extra}}`` (``code`` is
    stable, e.g. ``PAYLOAD_TOO_LARGE``; ``extra`` may name a ``subject`` or a ``loc``)."""
    return {"detail": {"code": code, "message": message, **extra}}


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its string (``nan``, ``inf``, ``-inf``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


_PROBLEM = {"type": "object", "properties": {"detail": {}}}
#: Error answers every route may give, documented in OpenAPI.
ERROR_RESPONSES: dict = {
    404: {"description": "Unknown account, order, user, challenge, plan or recommendation",
          "content": {"application/json": {"schema": _PROBLEM}}},
    409: {"description": "Conflict: duplicate account, reused order/fill id, no conversion rate, plan version "
                         "not bindable or activatable, recommendation not pending, Idempotency-Key reused "
                         "with another request (IDEMPOTENCY_KEY_REUSED)",
          "content": {"application/json": {"schema": _PROBLEM}}},
    422: {"description": "Invalid input; detail[].loc names the field"},
    503: {"description": "A risk host cannot be reached (fail closed)",
          "content": {"application/json": {"schema": _PROBLEM}}},
}


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        # FastAPI's own handler echoes ``input``; a NaN/inf input would make that 422 a 500
        return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # an unparsable body (bad JSON): bad input is a 422 here
            return unprocessable(["body"], str(exc.detail), "body_parse_error")
        return await http_exception_handler(request, exc)

    @app.exception_handler(LimitsError)
    async def _limits(request: Request, exc: LimitsError):
        return unprocessable(["body", *limits_loc(exc)], exc.message)

    @app.exception_handler(SizingError)
    async def _sizing(request: Request, exc: SizingError):
        return unprocessable(["body", exc.field], exc.message)

    @app.exception_handler(UnknownInstrument)
    async def _instrument(request: Request, exc: UnknownInstrument):
        return unprocessable(["body", "instrument"], f"unknown instrument {exc.subject!r}")

    @app.exception_handler(InvalidFill)
    async def _invalid_fill(request: Request, exc: InvalidFill):
        return unprocessable(["body", exc.field] if exc.field else ["body"], exc.message)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError):
        status = next((s for cls, s in _STATUS.items() if isinstance(exc, cls)), 409)
        return JSONResponse(status_code=status, content={"detail": exc.to_dict()})

    @app.exception_handler(ShardUnavailable)
    async def _unavailable(request: Request, exc: ShardUnavailable):
        return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                            content={"detail": {"code": "SERVICE_UNAVAILABLE", "message": str(exc)}})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):  # pragma: no cover - a bug by definition
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(status_code=500, content={"detail": {"code": "INTERNAL", "message": type(exc).__name__}})
