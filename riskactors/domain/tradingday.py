"""Trading-day boundary: the firm's day rolls at a local time in a time zone.

Default 17:00 America/New_York (the FX market's conventional day end). A trading day is
labelled by the local date on which it **ends**: with a 17:00 roll, 2025-05-06 16:59 New York
is day 2025-05-06 and 17:00 the same evening starts day 2025-05-07.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["TradingDayCalendar"]


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
        if local.timetz().replace(tzinfo=None) >= self._time:  # type: ignore[attr-defined]
            return local.date() + timedelta(days=1)
        return local.date()

    def start_of(self, day: date) -> float:
        """Epoch second at which trading day ``day`` starts (the previous local day's roll)."""
        prev = day - timedelta(days=1)
        local = datetime.combine(prev, self._time, tzinfo=self._zone)  # type: ignore[attr-defined]
        return local.timestamp()
