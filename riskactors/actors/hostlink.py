"""A direct socket from a front to a host, for the call the order router makes on every order.

A Ray actor call costs the caller 0.6–1.0 ms of CPU on this project's 2-core machines
(``load_tests/bench_hotpath.py`` measures it), more than the check itself. So a host in Ray
(:class:`~riskactors.actors.ray_runtime.RemoteHost`) also serves :data:`LINK_METHODS` (checks,
fills, cancels, marks, ticks, views) on a socket of its own, and
:class:`~riskactors.actors.ray_runtime.RayTransport` sends those calls there when it can. Ray still places, names, restarts and fences the hosts, and every other
call goes through Ray.

What does not change:

- **One call at a time per host.** A link call and a Ray call hold the same lock
  (:class:`LinkServer` ``lock``), so a host runs calls one after another as before. Checks from
  every front and path are decided in the order the host takes them (exactly K under
  concurrency).
- **Journal before answer, one fsync per batch.** A link call runs the same host method,
  which journals it. The requests that have arrived whole when the host reads its sockets,
  from every front connected, run one after another as one commit group
  (:meth:`AccountHost.commit_group`): their
  records are written and forced to disk once, after the last of them, and only then are
  their replies sent. A commit the fence refuses answers every call of the group fenced.
- **Fail closed.** A link that is down, refused or slow never answers for the host:
  - a call that was not sent goes through Ray;
  - an idempotent call (every one of :data:`LINK_METHODS`) whose link broke after it was sent
    goes through Ray too. Ray waits for a restarting actor within the call's timeout;
  - a call past its timeout, or refused by a fenced instance, is
    :class:`~riskactors.exceptions.ShardUnavailable` (503, a check is rejected).
- **Who may call.** The host makes a random token when it starts and hands it out only
  through a Ray call (``link_endpoint``), which Ray's own authentication guards. A connection
  that does not present it first is closed.

The wire: frames of a 4-byte big-endian length and a msgpack body. The client sends the
token first and gets ``[0, 0, host_id]`` back. A request is ``[id, method, args]`` and its
reply ``[id, kind, value]``: kind 0 is the result, 1 a fenced instance (``value`` says why),
2 any other failure (``"Type: message"``) and 3 an answer msgpack cannot carry (the call goes
through Ray). A front on the host's node connects to an
abstract Unix socket (Linux; no file is left behind), any other front to the TCP port.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import struct
import threading
from typing import Any

import msgpack

from ..exceptions import ShardUnavailable
from ..persistence import Fenced

__all__ = ["LINK_METHODS", "HostLink", "LinkDown", "LinkServer"]

log = logging.getLogger("riskactors.actors")

#: Host methods a link carries: the order router's calls (checks, fills, cancels), the marks a
#: host is sent, the clock's ticks and the account view. Each is idempotent (checks on their
#: ``order_id``, fills on their ``fill_id``, cancels and marks on their keys, ticks and views
#: change nothing when repeated), which is what lets a call whose link broke be sent again
#: through Ray.
LINK_METHODS = frozenset({"check_many", "fill", "fill_many", "cancel", "apply_marks", "advance_to", "view"})
_HEADER = struct.Struct(">I")
#: Largest frame either side reads (bytes): a batch of checks is a few KB per order.
MAX_FRAME = 64 << 20


class LinkDown(Exception):
    """The link cannot carry the call. ``sent``: the request may have reached the host."""

    def __init__(self, message: str, sent: bool):
        super().__init__(message)
        self.sent = sent


def _plain(obj: Any) -> Any:
    """What msgpack cannot pack as it is: numpy scalars (``item()``) and sets (lists)."""
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    item = getattr(obj, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot send {type(obj).__name__} over a host link")


def _pack(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True, default=_plain)
    return _HEADER.pack(len(body)) + body


async def _read(reader: asyncio.StreamReader) -> Any:
    """The next frame's body, unpacked; raises ``asyncio.IncompleteReadError`` at EOF."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes is over {MAX_FRAME}")
    return msgpack.unpackb(await reader.readexactly(size), raw=False, strict_map_key=False)


class LinkServer:
    """Serves :data:`LINK_METHODS` of ``host`` on an abstract Unix socket and a TCP port, from
    a thread of its own; every group of calls (the requests read together in one turn of its
    loop, from any connection, committed together) holds ``lock``, which the host's Ray calls
    hold too.

    Parameters
    ----------
    host : AccountHost
        The host whose methods are called.
    lock : threading.Lock
        Held around every call (see the module docstring).
    tcp_host : str
        Address the TCP port binds (the node's address, so fronts on other nodes can connect).
    """

    def __init__(self, host: Any, lock: threading.Lock, tcp_host: str = "127.0.0.1"):
        self.host = host
        self.lock = lock
        self.token = secrets.token_hex(16)
        self._unix_name = f"\0riskactors-link-{secrets.token_hex(8)}"
        self._tcp_host = tcp_host
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.base_events.Server] = []
        self._transports: set[asyncio.Transport] = set()
        self._waiting: list[tuple[_LinkProtocol, list[Any]]] = []  # read, not yet run (see _queue)
        self._port: int | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="riskactors-link", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise RuntimeError(f"host link did not start: {self._failure}") from self._failure

    def endpoint(self) -> dict[str, Any]:
        """``{"unix", "tcp_host", "tcp_port", "token"}``: where and how to connect."""
        return {"unix": self._unix_name, "tcp_host": self._tcp_host, "tcp_port": self._port, "token": self.token}

    def close(self) -> None:
        """Stop serving and drop every connection (their calls in flight get no answer)."""
        if not self._loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for transport in list(self._transports):
            transport.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._servers.append(self._loop.run_until_complete(
                self._loop.create_unix_server(self._serve, path=self._unix_name)))
            tcp = self._loop.run_until_complete(self._loop.create_server(self._serve, self._tcp_host, 0))
            self._port = tcp.sockets[0].getsockname()[1]
            self._servers.append(tcp)
        except BaseException as exc:  # noqa: BLE001 - reported by the constructor
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def _serve(self) -> _LinkProtocol:
        return _LinkProtocol(self)

    def _queue(self, protocol: _LinkProtocol, requests: list[Any]) -> None:
        """Hold ``requests`` until every connection the loop found readable this turn has been
        read, then answer them all as one group (:meth:`_drain`): one fsync for the calls of
        every front that arrived together."""
        if not self._waiting:
            self._loop.call_soon(self._drain)
        self._waiting.append((protocol, requests))

    def _drain(self) -> None:
        waiting, self._waiting = self._waiting, []
        calls = [request for _, requests in waiting for request in requests]
        frames = self._answer(calls)
        at = 0
        for protocol, requests in waiting:
            protocol.reply(b"".join(frames[at:at + len(requests)]))
            at += len(requests)

    def _answer(self, requests: list[Any]) -> list[bytes]:
        """The reply frame of each of ``requests`` (``[id, method, args]`` each, in arrival order): run
        one after another under the lock in one commit group (:meth:`AccountHost.commit_group`),
        so the journaled ones share one fsync, and answered only once that commit is done. A
        commit refused by the fence answers every one of them fenced, any other commit failure
        answers every one of them failed: none is acknowledged unless it is durable."""
        replies: list[tuple[int, int, Any]] = []
        group = getattr(self.host, "commit_group", contextlib.nullcontext)
        try:
            with self.lock, group():
                for req_id, method, args in requests:
                    replies.append((req_id, *self._call(method, args)))
        except Fenced as exc:
            replies = [(req_id, 1, str(exc)) for req_id, _, _ in requests]
        except Exception as exc:
            log.exception("link commit of %d calls failed", len(requests))
            replies = [(req_id, 2, f"{type(exc).__name__}: {exc}") for req_id, _, _ in requests]
        frames = []
        for (req_id, kind, value), (_, method, _) in zip(replies, requests, strict=True):
            try:
                frames.append(_pack([req_id, kind, value]))
            except (TypeError, ValueError) as exc:  # an answer msgpack cannot carry: Ray can
                log.warning("link answer of %s not sent: %s", method, exc)
                frames.append(_pack([req_id, 3, str(exc)]))
        return frames

    def _call(self, method: str, args: list[Any]) -> tuple[int, Any]:
        """(kind, value) of one request (module docstring); the caller holds the lock."""
        if method not in LINK_METHODS:
            return 2, f"ValueError: {method!r} is not a link method"
        try:
            return 0, getattr(self.host, method)(*args)
        except Fenced as exc:
            return 1, str(exc)
        except Exception as exc:  # a bug in the host: the front raises it
            log.exception("link call %s failed", method)
            return 2, f"{type(exc).__name__}: {exc}"


class _LinkProtocol(asyncio.Protocol):
    """One front's connection to a :class:`LinkServer`: the token first, then requests. Every
    request that has arrived whole when the socket is read joins the group of the loop's turn
    (:meth:`LinkServer._queue`), so the more calls the fronts have in flight, the fewer fsyncs."""

    def __init__(self, server: LinkServer):
        self.server = server
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.trusted = False

    def connection_made(self, transport: Any) -> None:  # asyncio's or uvloop's (Ray workers)
        self.transport = transport
        self.server._transports.add(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._transports.discard(self.transport)

    def reply(self, frames: bytes) -> None:
        """Send ``frames`` unless the front has gone (its calls' answers are then dropped)."""
        if not self.transport.is_closing():
            self.transport.write(frames)

    def pause_writing(self) -> None:  # a front that does not read its replies: stop reading it
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            bodies = self._frames()
            if not self.trusted and bodies:
                if bodies.pop(0) != self.server.token:
                    self.transport.close()  # not a front of this deployment: nothing is answered
                    return
                self.trusted = True
                self.transport.write(_pack([0, 0, self.server.host.host_id]))
            requests = []
            for body in bodies:
                req_id, method, args = body
                requests.append((req_id, method, args))
        except (ValueError, TypeError, msgpack.UnpackException):
            self.transport.close()  # not a frame: drop the connection
            return
        if requests:
            self.server._queue(self, requests)

    def _frames(self) -> list[Any]:
        """Every whole frame in the buffer, unpacked and removed from it."""
        out, buffer, at = [], self.buffer, 0
        while len(buffer) - at >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buffer, at)
            if size > MAX_FRAME:
                raise ValueError(f"frame of {size} bytes is over {MAX_FRAME}")
            if len(buffer) - at - _HEADER.size < size:
                break
            start = at + _HEADER.size
            out.append(msgpack.unpackb(buffer[start:start + size], raw=False, strict_map_key=False))
            at = start + size
        del buffer[:at]
        return out


class HostLink:
    """One front's connection to one host's :class:`LinkServer`; calls may overlap (each has
    its own id, replies come in the host's order)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host_id: str):
        self.host_id = host_id
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self.closed = False
        self._reading = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def open(cls, endpoint: dict[str, Any], same_node: bool, timeout: float) -> HostLink:
        """Connect to ``endpoint`` (:meth:`LinkServer.endpoint`): the Unix socket when
        ``same_node``, else (or when that fails) TCP; present the token. Raises ``OSError``,
        ``TimeoutError`` or ``LinkDown`` when it cannot."""
        async with asyncio.timeout(timeout):
            opened = None
            if same_node:
                with contextlib.suppress(OSError):
                    opened = await asyncio.open_unix_connection(endpoint["unix"])
            if opened is None:
                opened = await asyncio.open_connection(endpoint["tcp_host"], endpoint["tcp_port"])
                opened[1].get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader, writer = opened
            writer.write(_pack(endpoint["token"]))
            try:
                _, kind, host_id = await _read(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                writer.close()
                raise LinkDown(f"link refused: {exc!r}", sent=False) from None
        if kind != 0:
            writer.close()
            raise LinkDown(f"link refused: {host_id!r}", sent=False)
        return cls(reader, writer, host_id)

    async def call(self, method: str, args: list[Any], timeout: float) -> Any:
        """The host's answer to ``method(*args)``.

        Raises
        ------
        LinkDown
            The link is closed, or broke before the answer came, or the answer cannot be sent
            over it (``sent`` says whether the request may have reached the host).
        ShardUnavailable
            No answer within ``timeout`` seconds, or the instance is fenced.
        RuntimeError
            The host method failed (``"Type: message"``).
        """
        if self.closed:
            raise LinkDown("link closed", sent=False)
        req_id = next(self._ids)
        waiter = self._waiting[req_id] = asyncio.get_running_loop().create_future()
        try:
            self._writer.write(_pack([req_id, method, args]))
        except (ConnectionError, RuntimeError) as exc:
            self._waiting.pop(req_id, None)
            self.close()
            raise LinkDown(f"link write failed: {exc!r}", sent=False) from None
        try:
            async with asyncio.timeout(timeout):
                kind, value = await waiter
        except TimeoutError:
            raise ShardUnavailable(f"{method}: host {self.host_id} did not answer within {timeout:g} s") from None
        finally:
            self._waiting.pop(req_id, None)
        if kind == 0:
            return value
        if kind == 1:
            raise ShardUnavailable(f"{method}: {value}")
        if kind == 3:
            raise LinkDown(f"{method}: the answer cannot go over the link ({value})", sent=True)
        raise RuntimeError(f"{method} on host {self.host_id}: {value}")

    def close(self) -> None:
        """Close the connection; calls waiting get ``LinkDown(sent=True)``."""
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(LinkDown(f"link to {self.host_id} closed", sent=True))
        self._waiting.clear()
        if self._reading is not asyncio.current_task():
            self._reading.cancel()

    async def _read_replies(self) -> None:
        try:
            while True:
                req_id, kind, value = await _read(self._reader)
                waiter = self._waiting.get(req_id)
                if waiter is not None and not waiter.done():
                    waiter.set_result((kind, value))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, TypeError):
            pass
        finally:
            self.close()
