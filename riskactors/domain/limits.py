"""Account limits and the plans (limit templates and prop-firm rule packs) they come from.

Plans are data: ``riskactors/data/plans.json`` ships the three limit templates of the seed
(``conservative``, ``moderate``, ``aggressive``) and prop-firm plans. A plan gives each limit
either as an amount in account currency or, for the loss limits, as a fraction of the
initial balance (``daily_loss_limit_fraction``, ``max_loss_limit_fraction``), resolved when an
account binds to the plan. Per-account overrides replace single fields afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from enum import StrEnum
from functools import cache
from typing import Any

from .codes import DailyLossMode, DailyLossReference, MaxLossMode, RuleAction
from .errors import FieldError
from .tradingday import TradingDayCalendar, WeeklyClose

__all__ = ["FRACTION_FIELDS", "LIMIT_FIELDS", "Limits", "LimitsError"]


class LimitsError(FieldError):
    """A limit or plan value is invalid. ``field`` names the offending field."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits and prop-firm rules one account is checked against (a resolved plan).

    Amounts are in account currency; ``None`` switches an optional rule off. Each rule's
    semantics and source are in :mod:`riskactors.domain.rules` and the README.

    Attributes
    ----------
    max_leverage : float
        Cap on total notional (positions + reservations, account currency) / equity, in ×.
    account_leverage : float
        Margin leverage (100 means 1:100): required margin = notional × max(instrument
        margin rate, 1 / account leverage).
    max_position_lots : float
        Cap on |lots| per instrument after the order, same-direction reservations included
        (hedging accounts: on the larger of the long and the short side).
    max_open_positions : int
        Cap on open positions (netting: instruments; hedging: tickets), pending reservations
        that open one included.
    daily_loss_limit : float
        Loss allowed below the trading day's start reference (account currency).
    daily_loss_reference : DailyLossReference
        ``balance`` or ``max_balance_equity`` at the start of the trading day.
    daily_loss_mode : DailyLossMode
        ``hard`` (a breach fails the account) or ``soft`` (blocks new orders until the next
        trading day).
    max_loss_limit : float
        Loss allowed below the max-loss reference (account currency).
    max_loss_mode : MaxLossMode
        ``static`` (initial balance), ``trailing_intraday`` (equity high-water mark) or
        ``trailing_eod`` (end-of-day balance high-water mark).
    max_loss_lock : float or None
        Floor level (account currency) at which a trailing floor stops rising; ``None``: never.
    max_orders_per_second : int
        Order checks allowed per account in any sliding one-second window.
    margin_call_level : float
        Margin level, **per cent** (equity / margin × 100), under which new exposure is
        rejected. 100 means "free margin must stay ≥ 0".
    warning_fraction : float
        Fraction (0–1) of a limit at which a warning is raised. Default 0.8.
    hedged_margin_factor : float
        Hedging accounts: fraction (0–1) of full margin charged on each lot of a hedged
        (long and short) pair; 0.5 charges the pair like one side (MetaTrader "hedged margin").
    profit_target : float or None
        Closed profit (balance − initial balance, account currency) needed to pass.
    min_trading_days : int
        Trading days with at least one trade opened needed to pass.
    time_limit_days : int or None
        Calendar days from the account's start after which it fails if it has not passed.
    consistency_fraction : float or None
        Fraction 0–1: the best trading day's profit must be ≤ this × total profit to pass.
    stop_loss_required, take_profit_required : bool
        Orders opening exposure must carry a stop-loss / take-profit.
    max_risk_per_trade_fraction : float or None
        Fraction 0–1 of balance: loss at the order's stop-loss must be ≤ this × balance.
    max_daily_trades : int or None
        Trades opened per trading day (fills that open a position + pending opening orders).
    cooldown_seconds : float or None
        No new opening order for this many seconds after a losing close.
    news_blackout_minutes : float or None
        No opening order on an affected instrument within ± this many minutes of a calendar event.
    weekly_close : str
        Weekly market close, ``"<Mon..Sun> HH:MM <IANA zone>"``. Default ``"Fri 17:00 America/New_York"``.
    weekend_buffer_minutes : float or None
        No new position within this many minutes before ``weekly_close``; positions still open
        then are warned about. ``None``: rule off.
    hedging_across_accounts : RuleAction or None
        Opposite positions of one user on one instrument in two accounts: ``reject`` or ``warn``.
    hft_seconds : float
        A trade closed within this many seconds of its opening counts as HFT. Default 60.
    hft_max_trades : int or None
        HFT trades allowed; beyond that ``hft_action`` applies to opening orders.
    hft_action : RuleAction
        ``warn`` or ``reject``.
    trading_day_rollover, trading_day_timezone : str or None
        The plan's trading-day boundary (e.g. ``"00:00"``, ``"Europe/Prague"`` for FTMO);
        ``None`` uses the server's.
    recommend_losing_streak_days : int or None
        Losing trading days in a row that raise a limit-reduction recommendation.
    recommend_day_loss_fraction : float or None
        A single day's loss beyond this fraction (0–1) of the day's start balance raises one.
    recommend_reduction : float
        Fraction (0–1) by which a recommendation cuts the daily loss and position limits.
    """

    max_leverage: float = 10.0
    account_leverage: float = 100.0
    max_position_lots: float = 5.0
    max_open_positions: int = 5
    daily_loss_limit: float = 500.0
    daily_loss_reference: DailyLossReference = DailyLossReference.BALANCE
    daily_loss_mode: DailyLossMode = DailyLossMode.HARD
    max_loss_limit: float = 1000.0
    max_loss_mode: MaxLossMode = MaxLossMode.STATIC
    max_loss_lock: float | None = None
    max_orders_per_second: int = 10
    margin_call_level: float = 100.0
    warning_fraction: float = 0.8
    hedged_margin_factor: float = 0.5
    profit_target: float | None = None
    min_trading_days: int = 0
    time_limit_days: int | None = None
    consistency_fraction: float | None = None
    stop_loss_required: bool = False
    take_profit_required: bool = False
    max_risk_per_trade_fraction: float | None = None
    max_daily_trades: int | None = None
    cooldown_seconds: float | None = None
    news_blackout_minutes: float | None = None
    weekly_close: str = "Fri 17:00 America/New_York"
    weekend_buffer_minutes: float | None = None
    hedging_across_accounts: RuleAction | None = None
    hft_seconds: float = 60.0
    hft_max_trades: int | None = None
    hft_action: RuleAction = RuleAction.WARN
    trading_day_rollover: str | None = None
    trading_day_timezone: str | None = None
    recommend_losing_streak_days: int | None = 3
    recommend_day_loss_fraction: float | None = None
    recommend_reduction: float = 0.4

    def __post_init__(self) -> None:
        for name in ("max_leverage", "account_leverage", "max_position_lots",
                     "daily_loss_limit", "max_loss_limit", "margin_call_level", "hft_seconds"):
            _number(name, getattr(self, name), low=0.0)
        for name in ("profit_target", "max_loss_lock", "cooldown_seconds", "news_blackout_minutes",
                     "weekend_buffer_minutes"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), low=0.0, allow_zero=name != "profit_target"
                        and name != "max_loss_lock")
        for name in ("max_open_positions", "max_orders_per_second"):
            _integer(name, getattr(self, name), 1)
        _integer("min_trading_days", self.min_trading_days, 0)
        for name in ("time_limit_days", "max_daily_trades", "recommend_losing_streak_days"):
            if getattr(self, name) is not None:
                _integer(name, getattr(self, name), 1)
        if self.hft_max_trades is not None:
            _integer("hft_max_trades", self.hft_max_trades, 0)
        for name in ("warning_fraction", "consistency_fraction", "max_risk_per_trade_fraction",
                     "recommend_day_loss_fraction", "recommend_reduction"):
            if getattr(self, name) is not None:
                _fraction(name, getattr(self, name))
        _fraction("hedged_margin_factor", self.hedged_margin_factor, allow_zero=True)
        for name in ("stop_loss_required", "take_profit_required"):
            if not isinstance(getattr(self, name), bool):
                raise LimitsError(name, f"must be true or false, got {getattr(self, name)!r}")
        _enum(self, "max_loss_mode", MaxLossMode)
        _enum(self, "daily_loss_reference", DailyLossReference)
        _enum(self, "daily_loss_mode", DailyLossMode)
        _enum(self, "hft_action", RuleAction)
        if self.hedging_across_accounts is not None:
            _enum(self, "hedging_across_accounts", RuleAction)
        try:
            WeeklyClose.parse(self.weekly_close)
        except ValueError as exc:
            raise LimitsError("weekly_close", str(exc)) from None
        if (self.trading_day_rollover is None) != (self.trading_day_timezone is None):
            raise LimitsError("trading_day_rollover", "trading_day_rollover and trading_day_timezone go together")
        if self.trading_day_rollover is not None:
            try:
                TradingDayCalendar(self.trading_day_rollover, self.trading_day_timezone)
            except (ValueError, TypeError) as exc:
                field = "trading_day_timezone" if "time zone" in str(exc) else "trading_day_rollover"
                raise LimitsError(field, str(exc)) from None

    @property
    def trails(self) -> bool:
        """True for the trailing max-loss modes."""
        return self.max_loss_mode is not MaxLossMode.STATIC

    def calendar(self, default: TradingDayCalendar) -> TradingDayCalendar:
        """The plan's trading-day calendar, or ``default`` when the plan sets none."""
        if self.trading_day_rollover is None:
            return default
        return _calendar(self.trading_day_rollover, self.trading_day_timezone)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Limits:
        """A copy with ``overrides`` (field → value) applied; ``None`` switches an optional rule off.

        Raises
        ------
        LimitsError
            Unknown field or invalid value (a required limit set to ``None`` included).
        """
        if not overrides:
            return self
        unknown = set(overrides) - set(LIMIT_FIELDS)
        if unknown:
            name = min(unknown)
            raise LimitsError(name, "unknown limit field")
        return replace(self, **overrides)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        """Limits from :meth:`to_dict` output (every field given; unknown fields rejected).

        Raises
        ------
        LimitsError
        """
        return cls().with_overrides(data)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (enums as strings)."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, StrEnum):
                d[k] = str(v)
        return d


def _number(name: str, value: Any, low: float, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (value == low and not allow_zero):
        raise LimitsError(name, f"must be a finite number {'≥' if allow_zero else '>'} {low:g}, got {value!r}")


def _integer(name: str, value: Any, low: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise LimitsError(name, f"must be an integer ≥ {low}, got {value!r}")


def _fraction(name: str, value: Any, allow_zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value <= 1 if allow_zero else 0 < value <= 1):
        raise LimitsError(name, f"must be a fraction in {'[0' if allow_zero else '(0'}, 1], got {value!r}")


def _enum(limits: Limits, name: str, enum: type[StrEnum]) -> None:
    try:
        object.__setattr__(limits, name, enum(getattr(limits, name)))
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise LimitsError(name, f"must be one of {allowed}, got {getattr(limits, name)!r}") from None


@cache
def _calendar(rollover: str, tz: str) -> TradingDayCalendar:
    return TradingDayCalendar(rollover, tz)


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Limits))
#: Plan fields given as a fraction of the initial balance → the amount field they resolve to.
FRACTION_FIELDS = {"daily_loss_limit_fraction": "daily_loss_limit",
                   "max_loss_limit_fraction": "max_loss_limit",
                   "profit_target_fraction": "profit_target",
                   "max_loss_lock_fraction": "max_loss_lock"}
