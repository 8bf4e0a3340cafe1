"""``Idempotency-Key`` on every mutating request, as a pure ASGI middleware.

A ``POST``/``PUT``/``PATCH``/``DELETE`` may carry ``Idempotency-Key: <1–255 visible ASCII
characters>`` (any other value: **422** naming ``["header", "Idempotency-Key"]``). The front
then remembers the first response to that key and:

- replays it byte for byte (status, headers, body) to a repeat of the *same* request, with one
  more header, ``Idempotent-Replayed: true``; the repeat changes nothing;
- answers **409** ``IDEMPOTENCY_KEY_REUSED`` to the same key sent with a *different* request.

"Same request" is a SHA-256 fingerprint of the method, path, query string, ``Content-Type``
and the raw body (as sent: a msgpack and a JSON body differ). The replay is the first response
as it was sent, in the encoding that request's ``Accept`` chose. Keys are scoped by the
caller's credential (a SHA-256 of the ``Authorization`` and ``X-API-Key`` header values, empty
when absent), so two clients can never collide or read each other's responses; a 401/403 is
stored like any other 4xx, under the credential that got it.

Concurrent requests with one key are serialised (a per-key :class:`asyncio.Lock`): the second
waits for the first to finish and then gets its replay.

**5xx responses are not stored** (nor requests that raised): a 503 while a host recovers must
be retryable with the same key, and the retry runs the request for real.

Memory is bounded: the :class:`IdempotencyStore` is an LRU of at most ``idempotency_max_keys``
entries (and :data:`MAX_STORED_BYTES` of bodies), each forgotten ``idempotency_ttl_seconds``
after it was stored. It lives in the front process only: a restarted front, or another front
behind the same load balancer, does not know the key. For the order router that is safe
because its operations are idempotent on their own ids: a check on ``order_id`` (same order,
same decision; other content, 409), a fill on ``fill_id`` (a retry says ``duplicate: true``), a
cancel releases once, a registration on ``account_id`` (409 ``DUPLICATE_ACCOUNT``), and a mark
posted again sets the same price. A retry after a restart therefore still counts once; it only
may not get the byte-identical first answer. Operations staff's calls are not all idempotent by
themselves (a plan document posted twice is two versions, a limits change is recorded twice
with the same result): the key covers them within one front's memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from .bodysize import ACCEPTED_TYPES, MUTATING, Receive, Send, header, read_body, replay_body, send_problem
from .errors import problem

__all__ = ["HEADER", "MAX_STORED_BYTES", "IdempotencyMiddleware", "IdempotencyStore", "StoredResponse",
           "document_idempotency", "valid_key"]

HEADER = "Idempotency-Key"
#: Upper bound of the bodies kept by one store, bytes (least recently used evicted first).
MAX_STORED_BYTES = 256 * 1024 * 1024
_HEADER = b"idempotency-key"
_REPLAYED = (b"idempotent-replayed", b"true")


def valid_key(raw: bytes) -> bool:
    """1–255 visible ASCII characters (``!`` to ``~``: no space, no control, no non-ASCII)."""
    return 1 <= len(raw) <= 255 and all(0x21 <= b <= 0x7E for b in raw)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A response remembered under a key, with the fingerprint of the request that made it."""

    fingerprint: bytes
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    stored_at: float

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers)


class IdempotencyStore:
    """In-memory LRU of responses by key, with a time to live.

    Parameters
    ----------
    max_keys : int
        Entries kept at most; the least recently used goes first.
    ttl_seconds : float
        An entry older than this (since it was stored) is forgotten.
    max_bytes : int
        Bodies and headers kept at most, bytes.
    clock : callable
        Monotonic seconds (tests pass a fake).
    """

    def __init__(self, max_keys: int, ttl_seconds: float, max_bytes: int = MAX_STORED_BYTES,
                 clock: Callable[[], float] = time.monotonic):
        self.max_keys = max_keys
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[tuple[bytes, bytes], StoredResponse] = OrderedDict()
        self._bytes = 0
        self._locks: dict[tuple[bytes, bytes], tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes held (bodies and headers)."""
        return self._bytes

    def get(self, key: tuple[bytes, bytes]) -> StoredResponse | None:
        """The live entry of ``key`` (marked as recently used), ``None`` when absent or expired."""
        self._expire()
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() - entry.stored_at >= self.ttl_seconds:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[bytes, bytes], entry: StoredResponse) -> None:
        """Remember ``entry`` under ``key`` (replacing one), then evict down to the bounds."""
        if key in self._entries:
            self._drop(key)
        if entry.size > self.max_bytes:
            return
        self._entries[key] = entry
        self._bytes += entry.size
        while len(self._entries) > self.max_keys or self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: tuple[bytes, bytes]) -> None:
        self._bytes -= self._entries.pop(key).size

    def _expire(self) -> None:
        """Drop expired entries at the cold end (cheap: stops at the first live one)."""
        limit = self.clock() - self.ttl_seconds
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.stored_at > limit:
                return
            self._drop(key)

    def lock(self, key: tuple[bytes, bytes]) -> _KeyLock:
        """Async context manager serialising the requests of one key (freed when unused)."""
        return _KeyLock(self._locks, key)


class _KeyLock:
    def __init__(self, locks: dict, key: tuple[bytes, bytes]):
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
    store : IdempotencyStore
    metrics : FrontMetrics or None
        ``idempotent_replays`` and ``idempotency_conflicts`` are incremented.
    """

    def __init__(self, app: Any, store: IdempotencyStore, metrics: Any = None):
        self.app = app
        self.store = store
        self.metrics = metrics

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
        slot = (credential, raw)
        fingerprint = _digest(scope["method"].encode(), scope.get("raw_path") or scope["path"].encode(),
                              scope.get("query_string", b""), header(scope, b"content-type") or b"", body)

        async with self.store.lock(slot):
            stored = self.store.get(slot)
            if stored is not None:
                return await self._answer_repeat(scope, send, stored, fingerprint, raw)
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

            await self.app(scope, replay_body(body, receive), capture)
            status = start.get("status", 500)
            if complete and status < 500:  # a 5xx stays retryable with the same key
                self.store.put(slot, StoredResponse(fingerprint, status, tuple(start.get("headers", ())),
                                                    b"".join(parts), self.store.clock()))
        return None

    async def _answer_repeat(self, scope: dict[str, Any], send: Send, stored: StoredResponse, fingerprint: bytes,
                             raw: bytes) -> None:
        if stored.fingerprint != fingerprint:
            if self.metrics is not None:
                self.metrics.idempotency_conflicts.inc()
            key = raw.decode("ascii")
            return await send_problem(scope, send, 409, problem(
                "IDEMPOTENCY_KEY_REUSED",
                f"{HEADER} {key!r} was already used for a different request (method, path, query, "
                "Content-Type or body differ); use a new key for a new request",
                subject=key, loc=["header", HEADER]))
        if self.metrics is not None:
            self.metrics.idempotent_replays.inc()
        await send({"type": "http.response.start", "status": stored.status,
                    "headers": [*stored.headers, _REPLAYED]})
        await send({"type": "http.response.body", "body": stored.body})
        return None


# --------------------------------------------------------------------------------- OpenAPI
_PARAMETER = {
    "name": HEADER, "in": "header", "required": False,
    "description": "Makes a retry safe: a repeat with the same key and the same request returns the first "
                   "response (header `Idempotent-Replayed: true`) and changes nothing; the same key with "
                   "another request is a 409 `IDEMPOTENCY_KEY_REUSED`. 5xx answers are not remembered. Keys "
                   "are remembered per credential, in this front's memory, for a limited time.",
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
