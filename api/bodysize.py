"""Request body size and content types, as a small pure ASGI middleware.

Runs outermost (before idempotency, msgpack decoding and routing) and reads the body once:

- a body larger than ``max_body_bytes`` is refused with **413** ``PAYLOAD_TOO_LARGE``: at once
  when ``Content-Length`` says so, otherwise as soon as the streamed (chunked) bytes pass it,
  without buffering more than the limit;
- a ``POST``/``PUT``/``PATCH``/``DELETE`` with a body whose ``Content-Type`` is not JSON or
  msgpack (:data:`ACCEPTED_TYPES`; a missing one included) is refused with **415**
  ``UNSUPPORTED_MEDIA_TYPE`` naming the accepted types.

Both answers are ``{"detail": {"code", "message", "loc", …}}`` (:func:`api.errors.problem`),
in msgpack when the request's ``Accept`` asks for it. The accepted body is handed on as one
chunk; nothing downstream reads the network again until it waits for a disconnect.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack

from .errors import problem

__all__ = ["ACCEPTED_TYPES", "MUTATING", "BodySizeMiddleware", "Receive", "Send", "header", "read_body", "replay_body",
           "send_problem"]

#: Request content types a mutating endpoint accepts (parameters such as ``charset`` aside).
ACCEPTED_TYPES: tuple[str, ...] = ("application/json", "application/msgpack", "application/x-msgpack")
#: Methods whose requests change state (and may carry a body).
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MSGPACK = (b"application/msgpack", b"application/x-msgpack")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _TooLarge(Exception):
    """The streamed body passed the limit (internal signal of :func:`read_body`)."""


def header(scope: dict[str, Any], name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes), ``None`` when absent."""
    for k, v in scope.get("headers", ()):
        if k == name:
            return v
    return None


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body; ``None`` if the client disconnected first.

    Raises
    ------
    _TooLarge
        More than ``limit`` bytes arrived (reading stops there).
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise _TooLarge(size)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` in one message, then defers to the client's ``receive``
    (so a disconnect is still seen)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def send_problem(scope: dict[str, Any], send: Send, status: int, body: dict[str, Any]) -> None:
    """Answer ``status`` with the error ``body`` (JSON, or msgpack when ``Accept`` asks for it)."""
    accept = (header(scope, b"accept") or b"").lower()
    if any(t in accept for t in _MSGPACK):
        raw, ctype = msgpack.packb(body, use_bin_type=True), _MSGPACK[0]
    else:
        raw, ctype = json.dumps(body).encode(), b"application/json"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(raw)).encode())]})
    await send({"type": "http.response.body", "body": raw})


def _too_large(limit: int, size: int | None) -> dict[str, Any]:
    got = f" ({size} bytes)" if size is not None else ""
    return problem("PAYLOAD_TOO_LARGE", f"request body{got} exceeds the limit of {limit} bytes",
                   loc=["body"], limit=limit)


class BodySizeMiddleware:
    """413 for bodies over ``max_body_bytes``, 415 for mutating requests whose body is neither
    JSON nor msgpack (see the module docstring).

    Parameters
    ----------
    app : ASGI app
    max_body_bytes : int
        Largest accepted body, bytes (``Settings.max_body_bytes``, default 1 MiB).
    batch_max_body_bytes : int, optional
        Largest body of a batch route (a path ending in ``/batch``; ``Settings.max_batch_body_bytes``,
        default 32 MiB); default: ``max_body_bytes``.
    """

    def __init__(self, app: Any, max_body_bytes: int, batch_max_body_bytes: int | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.batch_max_body_bytes = batch_max_body_bytes or max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.batch_max_body_bytes if scope["path"].endswith("/batch") else self.max_body_bytes
        try:
            declared = int(header(scope, b"content-length") or b"")
        except ValueError:
            declared = None
        if declared is not None and declared > limit:
            return await send_problem(scope, send, 413, _too_large(limit, declared))
        try:
            body = await read_body(receive, limit)  # chunked bodies are counted as they stream in
        except _TooLarge:
            return await send_problem(scope, send, 413, _too_large(limit, None))
        if body is None:  # the client went away
            return None
        if body and scope["method"] in MUTATING:
            ctype = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower().decode("latin-1")
            if ctype not in ACCEPTED_TYPES:
                given = repr(ctype) if ctype else "a body without Content-Type"
                return await send_problem(scope, send, 415, problem(
                    "UNSUPPORTED_MEDIA_TYPE", f"{given} is not accepted: send {', '.join(ACCEPTED_TYPES)}",
                    loc=["header", "content-type"], accepted=list(ACCEPTED_TYPES)))
        return await self.app(scope, replay_body(body, receive), send)
