"""``application/msgpack`` bodies, both ways, as a small ASGI middleware.

A request with ``Content-Type: application/msgpack`` is decoded and handed to the app as
JSON; a request with ``Accept: application/msgpack`` gets its (JSON) response re-encoded as
msgpack, errors included. Other requests pass through untouched.
"""

from __future__ import annotations

import json

import msgpack

__all__ = ["MSGPACK", "MsgpackMiddleware"]

MSGPACK = "application/msgpack"
_TYPES = (b"application/msgpack", b"application/x-msgpack")


def _header(scope, name: bytes) -> bytes:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v
    return b""


class MsgpackMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        ctype = _header(scope, b"content-type").split(b";")[0].strip().lower()
        accept = _header(scope, b"accept").lower()
        decode = ctype in _TYPES
        encode = any(t in accept for t in _TYPES)
        if not decode and not encode:
            return await self.app(scope, receive, send)

        if decode:
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            try:
                body = json.dumps(msgpack.unpackb(b"".join(chunks), raw=False)).encode()
            except Exception as exc:  # noqa: BLE001 - any decoding failure is a 422
                body = None
                error = json.dumps({"detail": [{"loc": ["body"], "msg": f"invalid msgpack body: {exc}",
                                                "type": "msgpack_decode_error"}]}).encode()
            if body is None:
                return await self._send_error(send, error, encode)
            headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            scope = dict(scope, headers=headers)
            sent = False

            async def receive():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.disconnect"}

        if not encode:
            return await self.app(scope, receive, send)

        start: dict = {}
        parts: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] == "http.response.body":
                parts.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                raw = b"".join(parts)
                headers = [(k, v) for k, v in start.get("headers", []) if k not in (b"content-type", b"content-length")]
                rtype = _header(start, b"content-type")
                if rtype.startswith(b"application/json") and raw:
                    raw = msgpack.packb(json.loads(raw), use_bin_type=True)
                    headers.append((b"content-type", MSGPACK.encode()))
                elif rtype:
                    headers.append((b"content-type", rtype))
                headers.append((b"content-length", str(len(raw)).encode()))
                await send({"type": "http.response.start", "status": start["status"], "headers": headers})
                await send({"type": "http.response.body", "body": raw})
                return
            await send(message)

        return await self.app(scope, receive, capture)

    async def _send_error(self, send, error: bytes, encode: bool):
        body = msgpack.packb(json.loads(error), use_bin_type=True) if encode else error
        ctype = MSGPACK.encode() if encode else b"application/json"
        await send({"type": "http.response.start", "status": 422,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
