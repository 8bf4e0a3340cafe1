"""Trading-day boundary: the firm's day rolls at a local time in a time zone.

Default 17:00 America/New_York (the FX market's conventional day end). A trading day is
labelled by the local date that holds most of it: with a roll at or after 12:00 the date on
which it **ends** (a 17:00 roll: 2025-05-06 16:59 New York is day 2025-05-06 and 17:00 the
same evening starts day 2025-05-07, the FX convention); with a roll before 12:00 the date on
which it **starts** (a 00:00 Europe/Prague roll, FTMO's: the day is the calendar date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

__all__ = ["TradingDayCalendar", "WeeklyClose"]


@dataclass(frozen=True)
class TradingDayCalendar:
    """Maps instants to trading days.

    Parameters
    ----------
    rollover : str
        Local ``HH:MM`` at which a new trading day starts.
    tz : str
        IANA time zone name (``zoneinfo``), e.g. ``"America/New_York"``, ``"Europe/Prague"``.

    Raises
    ------
    ValueError
        Bad ``rollover`` format or unknown time zone.
    """

    rollover: str = "17:00"
    tz: str = "America/New_York"

    def __post_init__(self) -> None:
        try:
            hh, mm = self.rollover.split(":")
            t = time(int(hh), int(mm))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"rollover must be HH:MM, got {self.rollover!r}") from exc
        try:
            zone = ZoneInfo(self.tz)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError
            raise ValueError(f"unknown time zone {self.tz!r}") from exc
        object.__setattr__(self, "_time", t)
        object.__setattr__(self, "_zone", zone)

    def day_of(self, ts: float) -> date:
        """Trading day (the local date it ends on) containing epoch second ``ts``."""
        local = datetime.fromtimestamp(ts, tz=UTC).astimezone(self._zone)  # type: ignore[attr-defined]
        after_roll = local.timetz().replace(tzinfo=None) >= self._time  # type: ignore[attr-defined]
        if self._time.hour >= 12:  # type: ignore[attr-defined]
            return local.date() + timedelta(days=1) if after_roll else local.date()
        return local.date() if after_roll else local.date() - timedelta(days=1)

    def start_of(self, day: date) -> float:
        """Epoch second at which trading day ``day`` starts (its local roll). Cached: every
        check asks for the next roll of its account's day."""
        return _start_of(self.rollover, self.tz, day)


@lru_cache(maxsize=8192)
def _start_of(rollover: str, tz: str, day: date) -> float:
    hh, mm = rollover.split(":")
    at = time(int(hh), int(mm))
    start = day - timedelta(days=1) if at.hour >= 12 else day
    return datetime.combine(start, at, tzinfo=ZoneInfo(tz)).timestamp()


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class WeeklyClose:
    """The market's weekly close: a weekday, a local time and a time zone.

    Parameters
    ----------
    weekday : int
        0 = Monday … 6 = Sunday.
    at : datetime.time
        Local time of the close.
    tz : str
        IANA time zone name.
    """

    weekday: int
    at: time
    tz: str

    @classmethod
    def parse(cls, text: str) -> WeeklyClose:
        """Parse ``"<Mon..Sun> HH:MM <IANA zone>"``, e.g. ``"Fri 17:00 America/New_York"``.

        Raises
        ------
        ValueError
            Wrong shape, unknown weekday, bad time or unknown time zone.
        """
        return _parse_weekly_close(text)

    def next_close(self, ts: float) -> float:
        """Epoch second of the first weekly close at or after ``ts``."""
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(ts, tz=UTC).astimezone(zone)
        days_ahead = (self.weekday - local.weekday()) % 7
        for extra in (0, 7):
            day = local.date() + timedelta(days=days_ahead + extra)
            close = datetime.combine(day, self.at, tzinfo=zone).timestamp()
            if close >= ts:
                return close
        raise AssertionError("unreachable: a close within two weeks always exists")

    def minutes_to_close(self, ts: float) -> float:
        """Minutes from ``ts`` to the next weekly close (≥ 0)."""
        return (self.next_close(ts) - ts) / 60.0


@cache
def _parse_weekly_close(text: str) -> WeeklyClose:
    parts = text.split() if isinstance(text, str) else []
    if len(parts) != 3:
        raise ValueError(f"weekly close must look like 'Fri 17:00 America/New_York', got {text!r}")
    day, hhmm, tz = parts
    if day.capitalize()[:3] not in _WEEKDAYS:
        raise ValueError(f"unknown weekday {day!r}; use one of {', '.join(_WEEKDAYS)}")
    try:
        hh, mm = hhmm.split(":")
        at = time(int(hh), int(mm))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"time must be HH:MM, got {hhmm!r}") from exc
    try:
        ZoneInfo(tz)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise ValueError(f"unknown time zone {tz!r}") from exc
    return WeeklyClose(_WEEKDAYS.index(day.capitalize()[:3]), at, tz)
