"""The deployment clock: what moves time for every account of a deployment.

Two kinds, chosen when a server starts (``riskactors serve --clock``, ``RISKACTORS_CLOCK``):

- ``wall`` (live): the server's time, ``time.time()``;
- ``events`` (replays, back-tests): the latest ``ts`` of any event the deployment has
  received — checks, fills, marks and registrations with ``opened_at``. Calendar entries are a
  schedule, not an event: they do not move it.

Either way the clock never goes backwards. Time-driven transitions (day roll, reservation
expiry, time-limit failure) happen to every account when the clock passes their due instant:
hosts apply them before any event they receive, and the front's ticks bring the other hosts
along (every second in ``wall``; whenever an event moves the clock in ``events``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["ClockKind", "DeploymentClock", "HostTicker"]

ClockKind = Literal["wall", "events"]


class DeploymentClock:
    """The deployment clock seen by one front.

    Parameters
    ----------
    kind : {"wall", "events"}
    wall : callable
        The wall clock, epoch seconds (``time.time``; tests inject their own).
    start : float
        The clock's starting instant (``events``: the latest event the deployment's hosts have
        journaled, found at start-up; ``wall``: ignored unless later than the wall clock).
    """

    def __init__(self, kind: ClockKind = "wall", wall: Callable[[], float] = time.time, start: float = 0.0):
        if kind not in ("wall", "events"):
            raise ValueError(f"clock must be wall or events, got {kind!r}")
        self.kind = kind
        self._wall = wall
        self._last = float(start)

    def now(self) -> float:
        """The deployment clock, epoch seconds (never less than a value returned before)."""
        if self.kind == "wall":
            self._last = max(self._last, self._wall())
        return self._last

    def wall(self) -> float:
        """The wall clock (future events are refused against it, in both kinds)."""
        return self._wall()

    def observe(self, ts: float) -> bool:
        """An event stamped ``ts`` was received. In ``events`` it moves the clock if later;
        returns True when it did. In ``wall`` the clock is the server's time: nothing moves."""
        if self.kind == "events" and ts > self._last:
            self._last = float(ts)
            return True
        return False


class HostTicker:
    """Brings one host's clock to an instant with ``advance_to``, at most one call in flight:
    instants asked for meanwhile are coalesced into the next call (the latest wins)."""

    def __init__(self, transport: Any, host: Any):
        self.transport = transport
        self.host = host
        self.sent = float("-inf")
        self.wanted = float("-inf")
        self.last: dict[str, Any] | None = None
        self._task: asyncio.Future | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def want(self, now: float) -> asyncio.Future:
        """Ask for the host's clock to reach ``now``; the returned future ends when it has
        (with the host's last ``advance_to`` reply)."""
        self.wanted = max(self.wanted, now)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._task = asyncio.ensure_future(self._run())
        return self._task

    async def _run(self) -> dict[str, Any] | None:
        while self.sent < self.wanted:
            now = self.wanted
            self.last = await self.transport.call(self.host, "advance_to", now)
            self.sent = now
        return self.last
