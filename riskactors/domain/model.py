"""Value objects of the risk core: orders, fills, marks, decisions, positions, kill switches.

Units: quantities in lots (signed where stated: + long, − short), prices in the instrument's
quote currency, money in account currency, times in seconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .codes import DecisionKind, KillMode, KillScope

__all__ = [
    "LOT_EPS",
    "MONEY_EPS",
    "CalendarEvent",
    "ClosedTrade",
    "Decision",
    "Fill",
    "KillSwitch",
    "Mark",
    "Order",
    "Position",
    "Reason",
    "Reservation",
]

#: Tolerance (account currency) when comparing money against a limit: a value within
#: ``MONEY_EPS`` of its limit counts as at the limit (accepted), never over it.
MONEY_EPS = 1e-6
#: Tolerance in lots when comparing quantities.
LOT_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Order:
    """An order to check. ``side`` is kept as given so a bad side is a reject, not a crash.

    Attributes
    ----------
    quantity : float
        Lots, must be > 0. ``price``: limit price (quote currency) or ``None`` for market.
    stop_loss, take_profit : float or None
        Prices in quote currency. A stop-loss is used to size the order's worst-case loss.
    ts : float
        Event time, epoch seconds.
    position_id : str or None
        Hedging accounts: the open position (ticket) this order closes or reduces; ``None``
        opens a new ticket. Ignored by netting accounts.
    peers : tuple or None
        Filled in by the host, not by clients: ``(long account ids, short account ids)`` of
        the user's *other* accounts on this instrument (rule ``HEDGING_ACROSS_ACCOUNTS``).
    """

    order_id: str
    account_id: str
    instrument: str
    side: str
    quantity: float
    ts: float
    price: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    position_id: str | None = None
    peers: tuple | None = None

    def fingerprint(self) -> tuple:
        """Content that must match for a retried check of the same ``order_id``."""
        return (self.instrument, self.side, self.quantity, self.price, self.stop_loss, self.take_profit,
                self.position_id)


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution report. ``commission`` and ``swap`` are signed amounts in account
    currency added to the balance (MetaTrader convention: a charge is negative)."""

    fill_id: str
    account_id: str
    instrument: str
    side: str
    quantity: float
    price: float
    ts: float
    order_id: str | None = None
    commission: float = 0.0
    swap: float = 0.0
    position_id: str | None = None
    stop_loss: float | None = None
    take_profit: float | None = None

    def fingerprint(self) -> tuple:
        """Content that must match for a retried report of the same ``fill_id``."""
        return (self.order_id, self.instrument, self.side, self.quantity, self.price,
                self.commission, self.swap, self.position_id, self.stop_loss, self.take_profit)


@dataclass(frozen=True, slots=True)
class Mark:
    """A price update: ``bid`` ≤ ``ask`` in quote currency at ``ts`` (epoch seconds)."""

    instrument: str
    bid: float
    ask: float
    ts: float

    @property
    def mid(self) -> float:
        """(bid + ask) / 2."""
        return (self.bid + self.ask) / 2.0


@dataclass(frozen=True, slots=True)
class Reason:
    """Why an order was rejected, or a warning.

    ``limit`` and ``value`` share a unit (named in ``message``); both are ``None`` for rules
    that are not numeric (kill switch, status, unknown instrument).
    """

    code: str
    message: str
    limit: float | None = None
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": str(self.code), "limit": _finite_or_none(self.limit),
                "value": _finite_or_none(self.value), "message": self.message}


def _finite_or_none(x: float | None) -> float | None:
    """``x`` as a float, or ``None`` when absent or not finite (JSON has no infinity)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class Decision:
    """Result of a pre-trade check: every reason that applies, not just the first."""

    order_id: str
    account_id: str
    decision: DecisionKind
    reasons: tuple[Reason, ...] = ()
    warnings: tuple[Reason, ...] = ()
    risk_score: float = 0.0
    reduces_position: bool = False

    @property
    def accepted(self) -> bool:
        return self.decision is DecisionKind.ACCEPT

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "account_id": self.account_id,
            "decision": str(self.decision),
            "reasons": [r.to_dict() for r in self.reasons],
            "warnings": [w.to_dict() for w in self.warnings],
            "risk_score": self.risk_score,
            "reduces_position": self.reduces_position,
        }


@dataclass(slots=True)
class Position:
    """An open position: the net position in one instrument (netting) or one ticket (hedging).

    ``position_id`` is the instrument symbol in netting mode and the ticket in hedging mode.
    ``quantity`` signed lots; ``average_price`` quote currency; ``realized_pnl`` account
    currency, cumulative over the position's life (gross); ``charges`` the commission and swap
    booked on it (signed, account currency); ``max_lots`` the largest |quantity| it reached;
    ``exit_value`` Σ exit price × lots closed (for the average exit price); ``last_price`` /
    ``last_conversion`` the latest mark (or fill price) and quote→account rate used when no
    fresher one is known; ``stop_loss`` / ``take_profit`` the latest known levels.
    """

    instrument: str
    quantity: float
    average_price: float
    opened_at: float
    last_price: float
    last_conversion: float
    realized_pnl: float = 0.0
    position_id: str = ""
    charges: float = 0.0
    max_lots: float = 0.0
    exit_value: float = 0.0
    closed_lots: float = 0.0
    stop_loss: float | None = None
    take_profit: float | None = None

    def __post_init__(self) -> None:
        if not self.position_id:
            self.position_id = self.instrument
        self.max_lots = max(self.max_lots, abs(self.quantity))


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A position from open to flat (hedging: one ticket), as the analytics read it.

    Attributes
    ----------
    account_id, position_id, instrument : str
    side : str
        ``buy`` (long) or ``sell`` (short).
    lots : float
        Largest |lots| the position held.
    open_time, close_time : float
        Epoch seconds.
    open_price, close_price : float
        Average entry and average exit price, quote currency.
    pnl : float
        Net P&L, account currency: realized + commission + swap booked on the position.
    stop_loss_used, take_profit_used : bool
        A stop-loss / take-profit was set at any time in the position's life.
    close_day : str
        ISO date of the trading day the position closed in.
    """

    account_id: str
    position_id: str
    instrument: str
    side: str
    lots: float
    open_time: float
    close_time: float
    open_price: float
    close_price: float
    pnl: float
    stop_loss_used: bool
    take_profit_used: bool
    close_day: str

    @property
    def hold_seconds(self) -> float:
        """close_time − open_time, seconds."""
        return self.close_time - self.open_time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """An economic-calendar event posted by ops (rule ``NEWS_BLACKOUT``).

    ``at`` epoch seconds; an instrument is affected when its symbol is in ``instruments`` or
    its base or quote currency is in ``currencies``.
    """

    event_id: str
    at: float
    title: str = ""
    currencies: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    impact: str = "high"

    def affects(self, symbol: str, base: str, quote: str) -> bool:
        """True when the event concerns ``symbol`` or either of its currencies."""
        return symbol in self.instruments or base in self.currencies or quote in self.currencies

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["currencies"] = list(self.currencies)
        d["instruments"] = list(self.instruments)
        return d


@dataclass(slots=True)
class Reservation:
    """An accepted order's pending exposure: ``quantity`` signed lots still unfilled."""

    order_id: str
    instrument: str
    quantity: float
    price: float | None
    created_at: float
    expires_at: float
    reduces_position: bool = False
    position_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class KillSwitch:
    """An active kill switch. ``scope_id`` is ``None`` for the firm scope."""

    scope: KillScope
    scope_id: str | None
    mode: KillMode
    reason: str
    by: str
    at: float
    breach: bool = False

    @property
    def key(self) -> tuple[str, str | None]:
        return (str(self.scope), self.scope_id)

    def to_dict(self) -> dict[str, Any]:
        return {"active": True, "scope": str(self.scope), "id": self.scope_id, "mode": str(self.mode),
                "reason": self.reason, "by": self.by, "at": self.at, "breach": self.breach}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KillSwitch:
        return cls(scope=KillScope(d["scope"]), scope_id=d.get("id"), mode=KillMode(d["mode"]),
                   reason=d["reason"], by=d["by"], at=float(d["at"]), breach=bool(d.get("breach", False)))


INACTIVE_KILL_SWITCH: dict[str, Any] = {"active": False, "scope": None, "id": None, "mode": None,
                                        "reason": None, "by": None, "at": None, "breach": False}
