"""``Idempotency-Key`` on every mutating request, as a pure ASGI middleware.

A ``POST``/``PUT``/``PATCH``/``DELETE`` may carry ``Idempotency-Key: <1–255 visible ASCII
characters>`` (any other value: **422** naming ``["header", "Idempotency-Key"]``). The first
response to that key is then remembered by the deployment's ledger (an actor shared by every
front, journaled, see :mod:`riskactors.actors.idempotency`), and any front:

- replays it byte for byte (status, headers, body) to a repeat of the *same* request, with one
  more header, ``Idempotent-Replayed: true``; the repeat changes nothing;
- answers **409** ``IDEMPOTENCY_KEY_REUSED`` to the same key sent with a *different* request;
- answers **409** ``IDEMPOTENCY_KEY_IN_USE`` when the key's first request is still running
  (on this or another front) after ``wait_seconds``; within that time the repeat waits for it
  and gets its replay.

"Same request" is a SHA-256 fingerprint of the method, path, query string, ``Content-Type``
and the raw body (as sent: a msgpack and a JSON body differ). The replay is the first response
as it was sent, in the encoding that request's ``Accept`` chose. Keys are scoped by the
caller's credential (a SHA-256 of the ``Authorization`` and ``X-API-Key`` header values, empty
when absent), so two clients can never collide or read each other's responses; a 401/403 is
stored like any other 4xx, under the credential that got it.

**5xx responses are not stored** (nor requests that raised, nor answers with ``Retry-After``: a
batch in which an item got 503): a 503 while a host recovers must be retryable with the same key,
and the retry runs the request for real. When the ledger itself
cannot be reached, a keyed request is answered 503 ``SERVICE_UNAVAILABLE`` without running (the
key's promise cannot be kept, so nothing is done).

Within one front, requests with one key are also serialised by a per-key :class:`asyncio.Lock`,
so only requests on different fronts ever poll the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from riskactors.actors.idempotency import StoredResponse
from riskactors.exceptions import ShardUnavailable

from .bodysize import ACCEPTED_TYPES, MUTATING, Receive, Send, header, read_body, replay_body, send_problem
from .errors import problem

__all__ = ["HEADER", "IdempotencyMiddleware", "KeyLocks", "document_idempotency", "valid_key"]

HEADER = "Idempotency-Key"
_HEADER = b"idempotency-key"
_REPLAYED = (b"idempotent-replayed", b"true")
log = logging.getLogger("riskactors.api")


def valid_key(raw: bytes) -> bool:
    """1–255 visible ASCII characters (``!`` to ``~``: no space, no control, no non-ASCII)."""
    return 1 <= len(raw) <= 255 and all(0x21 <= b <= 0x7E for b in raw)


class KeyLocks:
    """Per-key :class:`asyncio.Lock` objects, freed when no request holds or waits for them."""

    def __init__(self) -> None:
        self._locks: dict[bytes, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def lock(self, key: bytes) -> _KeyLock:
        """Async context manager serialising the requests of one key."""
        return _KeyLock(self._locks, key)


class _KeyLock:
    def __init__(self, locks: dict, key: bytes):
        self.locks = locks
        self.key = key

    async def __aenter__(self) -> None:
        lock, users = self.locks.get(self.key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self.locks[self.key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._release_user()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.locks[self.key][0].release()
        self._release_user()

    def _release_user(self) -> None:
        lock, users = self.locks[self.key]
        if users <= 1:
            del self.locks[self.key]
        else:
            self.locks[self.key] = (lock, users - 1)


def _digest(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:  # length-prefixed: no two different part lists hash alike
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.digest()


class IdempotencyMiddleware:
    """See the module docstring.

    Parameters
    ----------
    app : ASGI app
    service : callable
        Returns the front's :class:`~riskactors.actors.service.RiskService` (its ledger calls
        ``idempotency_begin``/``idempotency_finish``); called per request, since the service
        is set at start-up.
    metrics : FrontMetrics or None
        ``idempotent_replays`` and ``idempotency_conflicts`` are incremented.
    wait_seconds : float
        How long a repeat waits for the key's first request, still running elsewhere.
    """

    def __init__(self, app: Any, service: Callable[[], Any], metrics: Any = None, wait_seconds: float = 10.0):
        self.app = app
        self.service = service
        self.metrics = metrics
        self.wait_seconds = wait_seconds
        self.locks = KeyLocks()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            return await self.app(scope, receive, send)
        keys = [v for k, v in scope.get("headers", ()) if k == _HEADER]
        if not keys:
            return await self.app(scope, receive, send)
        raw = keys[0]
        if len(keys) > 1 or not valid_key(raw):
            why = "send it once" if len(keys) > 1 else "it must be 1 to 255 visible ASCII characters, no spaces"
            return await send_problem(scope, send, 422, {"detail": [{
                "loc": ["header", HEADER], "msg": f"invalid {HEADER}: {why}", "type": "idempotency_key_invalid"}]})

        body = await read_body(receive)
        if body is None:
            return None
        credential = _digest(header(scope, b"authorization") or b"", header(scope, b"x-api-key") or b"")
        slot = credential + raw
        fingerprint = _digest(scope["method"].encode(), scope.get("raw_path") or scope["path"].encode(),
                              scope.get("query_string", b""), header(scope, b"content-type") or b"", body)
        service = self.service()
        async with self.locks.lock(slot):
            try:
                verdict = await self._begin(service, slot, fingerprint)
            except ShardUnavailable as exc:
                return await send_problem(scope, send, 503, problem(
                    "SERVICE_UNAVAILABLE", f"the {HEADER} ledger is unavailable ({exc}); nothing was done, retry"))
            state = verdict["state"]
            key = raw.decode("ascii")
            if state == "replay":
                return await self._replay(send, verdict["response"])
            if state == "conflict":
                if self.metrics is not None:
                    self.metrics.idempotency_conflicts.inc()
                return await send_problem(scope, send, 409, problem(
                    "IDEMPOTENCY_KEY_REUSED",
                    f"{HEADER} {key!r} was already used for a different request (method, path, query, "
                    "Content-Type or body differ); use a new key for a new request",
                    subject=key, loc=["header", HEADER]))
            if state == "busy":
                return await send_problem(scope, send, 409, problem(
                    "IDEMPOTENCY_KEY_IN_USE",
                    f"the first request with {HEADER} {key!r} is still running after {self.wait_seconds:g} s; "
                    "retry with the same key later", subject=key, loc=["header", HEADER]))
            await self._run(scope, receive, send, service, slot, verdict["claim"], fingerprint, body)
        return None

    async def _begin(self, service: Any, slot: bytes, fingerprint: bytes) -> dict[str, Any]:
        """The ledger's verdict, waiting (20 ms doubling to 250 ms) while the key is busy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        delay = 0.02
        while True:
            verdict = await service.idempotency_begin(slot, fingerprint, time.time())
            if verdict["state"] != "busy" or loop.time() + delay > deadline:
                return verdict
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def _run(self, scope: dict[str, Any], receive: Receive, send: Send, service: Any, slot: bytes,
                   claim: str, fingerprint: bytes, body: bytes) -> None:
        start: dict[str, Any] = {}
        parts: list[bytes] = []
        complete = False

        async def capture(message: dict[str, Any]) -> None:
            nonlocal complete
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                complete = not message.get("more_body", False)
            await send(message)

        response = None
        try:
            await self.app(scope, replay_body(body, receive), capture)
            status = start.get("status", 500)
            headers = tuple(start.get("headers", ()))
            partial = any(k.lower() == b"retry-after" for k, _ in headers)  # a batch with an item that got 503
            if complete and status < 500 and not partial:  # a 5xx stays retryable with the same key
                response = StoredResponse(fingerprint, status, headers, b"".join(parts), time.time())
        finally:
            try:
                await service.idempotency_finish(slot, claim, response)
            except Exception as exc:  # noqa: BLE001 - answered already; a retry runs again (ids absorb it)
                log.warning("%s response not recorded: %s", HEADER, exc)

    async def _replay(self, send: Send, stored: StoredResponse) -> None:
        if self.metrics is not None:
            self.metrics.idempotent_replays.inc()
        await send({"type": "http.response.start", "status": stored.status,
                    "headers": [*stored.headers, _REPLAYED]})
        await send({"type": "http.response.body", "body": stored.body})


# --------------------------------------------------------------------------------- OpenAPI
_PARAMETER = {
    "name": HEADER, "in": "header", "required": False,
    "description": "Makes a retry safe: a repeat with the same key and the same request returns the first "
                   "response (header `Idempotent-Replayed: true`) and changes nothing; the same key with "
                   "another request is a 409 `IDEMPOTENCY_KEY_REUSED`. 5xx answers are not remembered. Keys "
                   "are remembered per credential by the deployment (every front), for a limited time; a "
                   "repeat while the first request still runs waits for it (409 `IDEMPOTENCY_KEY_IN_USE` "
                   "after a while).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
_PROBLEM = {"application/json": {"schema": {"type": "object", "properties": {"detail": {}}}}}
_RESPONSES = {
    "409": {"description": "Conflict (also IDEMPOTENCY_KEY_REUSED: the key was used for another request)",
            "content": _PROBLEM},
    "413": {"description": "Body over the size limit (PAYLOAD_TOO_LARGE)", "content": _PROBLEM},
    "415": {"description": f"Body not in {', '.join(ACCEPTED_TYPES)} (UNSUPPORTED_MEDIA_TYPE)",
            "content": _PROBLEM},
    "422": {"description": "Invalid input; detail[].loc names the field (also an invalid Idempotency-Key header)"},
}


def document_idempotency(app: FastAPI) -> None:
    """Add the ``Idempotency-Key`` header and the 409/413/415/422 answers to every mutating
    operation of the OpenAPI document (composes with other ``app.openapi`` wrappers)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        for path in schema.get("paths", {}).values():
            for method, op in path.items():
                if method.upper() not in MUTATING or not isinstance(op, dict):
                    continue
                params = op.setdefault("parameters", [])
                if not any(p.get("name") == HEADER and p.get("in") == "header" for p in params):
                    params.append(dict(_PARAMETER))
                responses = op.setdefault("responses", {})
                for status, answer in _RESPONSES.items():
                    responses.setdefault(status, answer)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
