"""The economic calendar ops post (``POST /v1/calendar``), read by rule ``NEWS_BLACKOUT``.

A calendar entry is a schedule, not an event: adding one never moves the deployment clock.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from .instruments import Instrument
from .model import CalendarEvent

__all__ = ["NewsCalendar"]


class NewsCalendar:
    """Economic-calendar events, sorted by time (ops post them with ``POST /v1/calendar``)."""

    def __init__(self, events: Iterable[CalendarEvent] = ()):
        self._events: dict[str, CalendarEvent] = {}
        self._times: list[tuple[float, str]] = []
        self.add(events)

    def add(self, events: Iterable[CalendarEvent]) -> int:
        """Add or replace events by ``event_id``; returns how many were new or changed."""
        changed = 0
        for e in events:
            if self._events.get(e.event_id) != e:
                self._events[e.event_id] = e
                changed += 1
        if changed:
            self._times = sorted((e.at, e.event_id) for e in self._events.values())
        return changed

    def __len__(self) -> int:
        return len(self._events)

    def events(self) -> list[CalendarEvent]:
        """Every event, in time order."""
        return [self._events[i] for _, i in self._times]

    def near(self, inst: Instrument, now: float, minutes: float) -> list[CalendarEvent]:
        """Events affecting ``inst`` with ``|at − now| ≤ minutes`` (inclusive)."""
        lo = bisect.bisect_left(self._times, (now - minutes * 60.0, ""))
        out = []
        for at, eid in self._times[lo:]:
            if at > now + minutes * 60.0:
                break
            e = self._events[eid]
            if e.affects(inst.symbol, inst.base_currency, inst.quote_currency):
                out.append(e)
        return out
