"""Stable codes and enumerations of the risk core.

Every value here is part of the public HTTP contract: codes are never renamed, only added.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AccountStatus",
    "DailyLossReference",
    "DecisionKind",
    "KillMode",
    "KillScope",
    "MaxLossMode",
    "ReasonCode",
    "Side",
    "WarningCode",
]


class Side(StrEnum):
    """Order or fill side. ``buy`` adds +quantity lots, ``sell`` adds −quantity lots."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, −1 for sell."""
        return 1 if self is Side.BUY else -1


class DecisionKind(StrEnum):
    """Outcome of a pre-trade check."""

    ACCEPT = "accept"
    REJECT = "reject"


class ReasonCode(StrEnum):
    """Stable reject reason codes (see ``riskactors.domain.checks`` for each rule)."""

    KILL_SWITCH = "KILL_SWITCH"
    ACCOUNT_NOT_ACTIVE = "ACCOUNT_NOT_ACTIVE"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    NO_PRICE = "NO_PRICE"
    NO_CONVERSION_RATE = "NO_CONVERSION_RATE"
    INVALID_ORDER = "INVALID_ORDER"
    MAX_POSITION_SIZE = "MAX_POSITION_SIZE"
    MAX_OPEN_POSITIONS = "MAX_OPEN_POSITIONS"
    MAX_LEVERAGE = "MAX_LEVERAGE"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_LOSS_LIMIT = "MAX_LOSS_LIMIT"
    ORDER_RATE_LIMIT = "ORDER_RATE_LIMIT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


class WarningCode(StrEnum):
    """Soft-threshold warning codes, raised at ``warning_fraction`` of a limit."""

    LEVERAGE_WARNING = "LEVERAGE_WARNING"
    MARGIN_WARNING = "MARGIN_WARNING"
    DAILY_LOSS_WARNING = "DAILY_LOSS_WARNING"
    MAX_LOSS_WARNING = "MAX_LOSS_WARNING"


class AccountStatus(StrEnum):
    """Lifecycle status of an account.

    ``active`` trades normally; ``failed`` (a hard rule was breached) accepts only
    position-reducing orders; ``disabled`` accepts nothing.
    """

    ACTIVE = "active"
    FAILED = "failed"
    DISABLED = "disabled"


class KillScope(StrEnum):
    """Scope a kill switch applies to."""

    ACCOUNT = "account"
    USER = "user"
    CHALLENGE = "challenge"
    FIRM = "firm"


class KillMode(StrEnum):
    """``halt``: no order passes. ``reduce_only``: only position-reducing orders pass."""

    HALT = "halt"
    REDUCE_ONLY = "reduce_only"


class MaxLossMode(StrEnum):
    """Reference of the max-loss floor.

    ``static``: initial balance − limit. ``trailing``: high-water mark of equity − limit.
    """

    STATIC = "static"
    TRAILING = "trailing"


class DailyLossReference(StrEnum):
    """Start-of-day reference the daily loss is measured from.

    ``balance``: start-of-day balance (FTMO style). ``max_balance_equity``: the higher of
    start-of-day balance and start-of-day equity (The5ers style).
    """

    BALANCE = "balance"
    MAX_BALANCE_EQUITY = "max_balance_equity"
