"""Stable codes and enumerations of the risk core.

Every value here is part of the public HTTP contract: codes are never renamed, only added.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "AccountStatus",
    "DailyLossMode",
    "DailyLossReference",
    "DecisionKind",
    "KillMode",
    "KillScope",
    "MaxLossMode",
    "PlanStatus",
    "PositionMode",
    "ReasonCode",
    "RuleAction",
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
    # prop-firm rule packs (issue 3); see riskactors.domain.rules for each rule and its source
    STOP_LOSS_REQUIRED = "STOP_LOSS_REQUIRED"
    TAKE_PROFIT_REQUIRED = "TAKE_PROFIT_REQUIRED"
    MAX_RISK_PER_TRADE = "MAX_RISK_PER_TRADE"
    MAX_DAILY_TRADES = "MAX_DAILY_TRADES"
    COOLDOWN = "COOLDOWN"
    NEWS_BLACKOUT = "NEWS_BLACKOUT"
    WEEKEND_HOLDING = "WEEKEND_HOLDING"
    HEDGING_ACROSS_ACCOUNTS = "HEDGING_ACROSS_ACCOUNTS"
    HFT_LIMIT = "HFT_LIMIT"
    TIME_LIMIT = "TIME_LIMIT"
    # time as data (issue 9): a position-increasing order priced on an old mark or rate
    STALE_PRICE = "STALE_PRICE"


class WarningCode(StrEnum):
    """Soft-threshold warning codes, raised at ``warning_fraction`` of a limit."""

    LEVERAGE_WARNING = "LEVERAGE_WARNING"
    MARGIN_WARNING = "MARGIN_WARNING"
    DAILY_LOSS_WARNING = "DAILY_LOSS_WARNING"
    MAX_LOSS_WARNING = "MAX_LOSS_WARNING"
    WEEKEND_HOLDING_WARNING = "WEEKEND_HOLDING_WARNING"
    HFT_WARNING = "HFT_WARNING"
    HEDGING_ACROSS_ACCOUNTS_WARNING = "HEDGING_ACROSS_ACCOUNTS_WARNING"
    STALE_PRICE_WARNING = "STALE_PRICE_WARNING"


class AccountStatus(StrEnum):
    """Lifecycle status of an account.

    ``active`` trades normally; ``failed`` (a hard rule was breached, or the challenge's time
    limit ran out) and ``passed`` (the challenge's objectives were met) accept only
    position-reducing orders; ``disabled`` accepts nothing.
    """

    ACTIVE = "active"
    PASSED = "passed"
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

    ``static``: initial balance − limit (FTMO). ``trailing_intraday``: high-water mark of
    equity − limit. ``trailing_eod``: high-water mark of end-of-day balance − limit (Topstep).
    The trailing floors stop rising at the plan's lock level, if it has one. ``trailing`` is
    accepted on input as the older name of ``trailing_intraday``.
    """

    STATIC = "static"
    TRAILING_INTRADAY = "trailing_intraday"
    TRAILING_EOD = "trailing_eod"

    @classmethod
    def _missing_(cls, value):
        if value == "trailing":
            return cls.TRAILING_INTRADAY
        return None


class DailyLossMode(StrEnum):
    """What a daily-loss breach does.

    ``hard``: the account fails (FTMO). ``soft``: new orders are blocked until the next
    trading day and the account stays active (Topstep's daily loss limit).
    """

    HARD = "hard"
    SOFT = "soft"


class PositionMode(StrEnum):
    """``netting``: one position per instrument. ``hedging``: every ticket is its own position
    (MetaTrader hedging accounts); a fill naming an open ``position_id`` reduces that ticket."""

    NETTING = "netting"
    HEDGING = "hedging"


class RuleAction(StrEnum):
    """What a count-based rule does beyond its count: ``warn`` or ``reject``."""

    WARN = "warn"
    REJECT = "reject"


class PlanStatus(StrEnum):
    """Lifecycle of a plan version: ``draft`` → ``active`` → ``superseded``."""

    DRAFT = "draft"
    ACTIVE = "active"
    SUPERSEDED = "superseded"


class DailyLossReference(StrEnum):
    """Start-of-day reference the daily loss is measured from.

    ``balance``: start-of-day balance (FTMO style). ``max_balance_equity``: the higher of
    start-of-day balance and start-of-day equity (The5ers style).
    """

    BALANCE = "balance"
    MAX_BALANCE_EQUITY = "max_balance_equity"
