"""The pre-trade check without the framework around it: ``POST /v1/orders/check`` answered in
one ASGI step when the request is the plain, well-formed case.

The order router calls this route before every order, so the front's own cost per check is
what this module removes: FastAPI's routing, dependency resolution and request parsing, and
the three body-reading middlewares (body size, ``Idempotency-Key``, msgpack). It handles a
request only when nothing about it needs them:

- ``POST /v1/orders/check`` with ``Content-Type: application/json``, no ``Idempotency-Key``
  and no msgpack ``Accept``;
- a body within ``max_body_bytes`` that :class:`api.schemas.OrderCheck` accepts (the same
  model the route validates with, via pydantic's JSON parser), a ``ts`` not in the future;
- an API key with role ``router`` or ``admin`` (or auth off).

Everything else — a bad body, a missing key, a future ``ts``, msgpack, an idempotent retry —
is passed on unchanged (the body replayed) to the app, whose route answers it exactly as
before (422 naming the field, 401/403, 413, 415…). So the answers are the route's answers; a
test holds the two paths equal on the same requests (``tests/api/test_http_fastcheck.py``).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request

from riskactors.actors.service import ACTOR
from riskactors.exceptions import ShardUnavailable

from .auth import principal_of
from .bodysize import header, replay_body
from .deps import future_error
from .schemas import OrderCheck

__all__ = ["FastCheckMiddleware", "run_check"]

_PATH = "/v1/orders/check"
_ROLES = frozenset({"router", "admin"})
_JSON_HEADERS = [(b"content-type", b"application/json")]


class FastCheckMiddleware:
    """Answers the plain pre-trade check itself (module docstring); passes on the rest.

    Parameters
    ----------
    app : ASGI app
        The FastAPI app (its ``state`` holds the service, metrics and keys).
    max_body_bytes : int
        Largest body it reads itself; a larger one goes to the app (which answers 413).
    """

    def __init__(self, app: Any, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != _PATH
                or (header(scope, b"content-type") or b"").split(b";")[0].strip().lower() != b"application/json"
                or header(scope, b"idempotency-key") is not None or b"msgpack" in (header(scope, b"accept") or b"")):
            return await self.app(scope, receive, send)
        try:
            declared = int(header(scope, b"content-length") or b"0")
        except ValueError:
            declared = 0
        if declared > self.max_body_bytes:
            return await self.app(scope, receive, send)  # the body-size middleware answers 413
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None  # the client went away
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_body_bytes or not message.get("more_body"):
                break
        body = b"".join(chunks)
        if size > self.max_body_bytes or not await self._answer(scope, body, send):
            return await self.app(scope, replay_body(body, receive), send)
        return None

    async def _answer(self, scope: dict[str, Any], body: bytes, send: Any) -> bool:
        """Answer the check; False (nothing sent) when the route must answer it instead."""
        app = scope["app"]
        request = Request(scope)
        try:
            principal = principal_of(request)
        except Exception:  # noqa: BLE001 - 401: the route says why
            return False
        if principal.role not in _ROLES:
            return False
        try:
            order = OrderCheck.model_validate_json(body)
        except ValidationError:
            return False
        if order.ts is not None and future_error(request, order.ts, ["body", "ts"]) is not None:
            return False
        ACTOR.set((principal.name, principal.role if principal.authenticated else None))
        try:
            status, content = await run_check(app.state.service, app.state.metrics, order)
        except Exception:  # noqa: BLE001 - a core error (unknown account…): the route maps it
            return False
        await _send(send, status, content, [(b"retry-after", b"1")] if status == 503 else None)
        return True


async def run_check(service: Any, metrics: Any, order: OrderCheck) -> tuple[int, dict[str, Any]]:
    """The pre-trade check of a validated ``order``, as both paths answer it: ``(200, decision)``,
    or ``(503, a fail-closed reject)`` when the host cannot be reached (send ``Retry-After``).
    Counts the decision, its reasons and the front's latency. Raises the core's errors (an
    unknown account…), which the route maps."""
    t0 = time.perf_counter()
    fields = order.model_dump()
    now = order.ts if order.ts is not None else service.now()
    fields["ts"] = now
    try:
        decision = await service.check(fields, now)
    except ShardUnavailable as exc:
        metrics.unavailable.inc()
        return 503, {"order_id": order.order_id, "account_id": order.account_id, "decision": "reject",
                     "reasons": [{"code": "SERVICE_UNAVAILABLE", "limit": None, "value": None,
                                  "message": f"risk host unavailable, failing closed: {exc}"}],
                     "warnings": [], "risk_score": 100.0, "reduces_position": False, "late": False}
    metrics.checks.labels(decision["decision"]).inc()
    for r in decision["reasons"]:
        metrics.reasons.labels(r["code"]).inc()
    metrics.check_seconds.observe(time.perf_counter() - t0)
    return 200, decision


async def _send(send: Any, status: int, content: Any, extra: list | None = None) -> None:
    body = orjson.dumps(content)
    await send({"type": "http.response.start", "status": status,
                "headers": [*_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
