"""Account limits: the resolved rules one account is checked against, in readable groups.

Plans are data (``riskactors/data/plans.json``, :mod:`riskactors.domain.plans`): a plan gives
each limit either as an amount in account currency or, for the loss limits, as a fraction of
the initial balance (``daily_loss_limit_fraction`` …), resolved when an account binds to it.
Per-account overrides replace single fields afterwards.

:class:`Limits` groups its 37 parameters by what they govern — :class:`LossLimits`,
:class:`ExposureLimits`, :class:`Objectives`, :class:`OrderRules`, :class:`Schedule` and
:class:`RecommendationRules` — plus ``warning_fraction``, which applies to every limit. The
HTTP contract, plans and the journal keep the flat parameter names (``max_leverage``,
``daily_loss_limit`` …): :meth:`Limits.of`, :meth:`Limits.to_dict`, :meth:`Limits.from_dict`
and :meth:`Limits.with_overrides` speak them; code reads ``limits.loss.daily_loss_limit``.
Each rule's meaning and source are in :mod:`riskactors.domain.checks`,
:mod:`riskactors.domain.rules`, :mod:`riskactors.domain.challenge` and the README.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from functools import cache
from typing import Any

from .codes import DailyLossMode, DailyLossReference, MaxLossMode, RuleAction
from .errors import FieldError
from .tradingday import TradingDayCalendar, WeeklyClose

__all__ = [
    "FRACTION_FIELDS",
    "LIMIT_FIELDS",
    "LIMIT_FIELD_TYPES",
    "ExposureLimits",
    "Limits",
    "LimitsError",
    "LossLimits",
    "Objectives",
    "OrderRules",
    "RecommendationRules",
    "Schedule",
]


class LimitsError(FieldError):
    """A limit or plan value is invalid. ``field`` names the offending (flat) field."""


@dataclass(frozen=True, slots=True)
class LossLimits:
    """How far equity may fall (money in account currency; a prop firm's "drawdown" limits).

    Attributes
    ----------
    daily_loss_limit : float
        Loss allowed below the trading day's start reference.
    daily_loss_reference : DailyLossReference
        ``balance`` (FTMO) or ``max_balance_equity`` (The5ers) at the start of the trading day.
    daily_loss_mode : DailyLossMode
        ``hard``: a breach fails the account (FTMO); ``soft``: it blocks new orders until the
        next trading day (Topstep).
    max_loss_limit : float
        Loss allowed below the max-loss reference: the drawdown limit.
    max_loss_mode : MaxLossMode
        ``static`` (initial balance), ``trailing_intraday`` (equity high-water mark) or
        ``trailing_eod`` (end-of-day balance high-water mark, Topstep).
    max_loss_lock : float or None
        Floor level at which a trailing floor stops rising; ``None``: never.
    """

    daily_loss_limit: float = 500.0
    daily_loss_reference: DailyLossReference = DailyLossReference.BALANCE
    daily_loss_mode: DailyLossMode = DailyLossMode.HARD
    max_loss_limit: float = 1000.0
    max_loss_mode: MaxLossMode = MaxLossMode.STATIC
    max_loss_lock: float | None = None

    def __post_init__(self) -> None:
        _number("daily_loss_limit", self.daily_loss_limit, 0.0)
        _number("max_loss_limit", self.max_loss_limit, 0.0)
        if self.max_loss_lock is not None:
            _number("max_loss_lock", self.max_loss_lock, 0.0)
        _enum(self, "max_loss_mode", MaxLossMode)
        _enum(self, "daily_loss_reference", DailyLossReference)
        _enum(self, "daily_loss_mode", DailyLossMode)

    @property
    def trails(self) -> bool:
        """True for the trailing max-loss modes."""
        return self.max_loss_mode is not MaxLossMode.STATIC


@dataclass(frozen=True, slots=True)
class ExposureLimits:
    """How much the account may hold (MetaTrader margin conventions).

    Attributes
    ----------
    max_leverage : float
        Cap on total notional (positions + reservations, account currency) / equity, ×.
    account_leverage : float
        Margin leverage (100 means 1:100): margin = notional × max(instrument margin rate,
        1 / account leverage).
    max_position_lots : float
        Cap on |lots| per instrument after the order, same-direction reservations included
        (hedging accounts: on the larger of the long and the short side).
    max_open_positions : int
        Cap on open positions (netting: instruments; hedging: tickets), pending reservations
        that open one included.
    margin_call_level : float
        Margin level, **per cent** (equity / margin × 100), under which new exposure is
        rejected; 100 means "free margin must stay ≥ 0".
    hedged_margin_factor : float
        Hedging accounts: fraction (0–1) of full margin charged on each lot of a hedged pair;
        0.5 charges the pair like one side (MetaTrader "hedged margin").
    """

    max_leverage: float = 10.0
    account_leverage: float = 100.0
    max_position_lots: float = 5.0
    max_open_positions: int = 5
    margin_call_level: float = 100.0
    hedged_margin_factor: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_leverage", "account_leverage", "max_position_lots", "margin_call_level"):
            _number(name, getattr(self, name), 0.0)
        _integer("max_open_positions", self.max_open_positions, 1)
        _fraction("hedged_margin_factor", self.hedged_margin_factor, allow_zero=True)


@dataclass(frozen=True, slots=True)
class Objectives:
    """What a challenge account must do to pass (FTMO's evaluation objectives).

    Attributes
    ----------
    profit_target : float or None
        Closed profit (balance − initial balance, account currency) needed to pass.
    min_trading_days : int
        Trading days with at least one trade opened needed to pass.
    time_limit_days : int or None
        Calendar days (× 86,400 s) from the account's start after which it fails unless passed.
    consistency_fraction : float or None
        Fraction 0–1: the best trading day's profit must be ≤ this × total profit to pass.
    """

    profit_target: float | None = None
    min_trading_days: int = 0
    time_limit_days: int | None = None
    consistency_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.profit_target is not None:
            _number("profit_target", self.profit_target, 0.0)
        _integer("min_trading_days", self.min_trading_days, 0)
        if self.time_limit_days is not None:
            _integer("time_limit_days", self.time_limit_days, 1)
        if self.consistency_fraction is not None:
            _fraction("consistency_fraction", self.consistency_fraction)


@dataclass(frozen=True, slots=True)
class OrderRules:
    """Rules on each order that opens exposure (a reducing order is never blocked by them).

    Attributes
    ----------
    max_orders_per_second : int
        Order checks allowed per account in any sliding one-second window.
    max_mark_age_seconds : float or None
        Oldest mark (and conversion rate) a position-increasing order may be priced on,
        seconds; ``None``: each instrument's own maximum (registry, at most 300 s).
    stale_price_action : RuleAction
        ``reject`` (``STALE_PRICE``) or ``warn`` (``STALE_PRICE_WARNING``; replays use it).
    stop_loss_required, take_profit_required : bool
        Orders must carry a stop-loss / take-profit.
    max_risk_per_trade_fraction : float or None
        Fraction 0–1 of balance: loss at the order's stop-loss must be ≤ this × balance.
    max_daily_trades : int or None
        Trades opened per trading day (opening fills + pending opening orders).
    cooldown_seconds : float or None
        No new order for this many seconds after a losing close.
    news_blackout_minutes : float or None
        No order on an affected instrument within ± this many minutes of a calendar event.
    weekend_buffer_minutes : float or None
        No new position within this many minutes before the weekly close; open positions then
        are warned about.
    hedging_across_accounts : RuleAction or None
        Opposite positions of one user on one instrument in two accounts: ``reject``/``warn``.
    hft_seconds : float
        A trade closed within this many seconds of its opening counts as HFT. Default 60.
    hft_max_trades : int or None
        HFT trades allowed; beyond that ``hft_action`` applies to opening orders.
    hft_action : RuleAction
        ``warn`` or ``reject``.
    """

    max_orders_per_second: int = 10
    max_mark_age_seconds: float | None = None
    stale_price_action: RuleAction = RuleAction.REJECT
    stop_loss_required: bool = False
    take_profit_required: bool = False
    max_risk_per_trade_fraction: float | None = None
    max_daily_trades: int | None = None
    cooldown_seconds: float | None = None
    news_blackout_minutes: float | None = None
    weekend_buffer_minutes: float | None = None
    hedging_across_accounts: RuleAction | None = None
    hft_seconds: float = 60.0
    hft_max_trades: int | None = None
    hft_action: RuleAction = RuleAction.WARN

    def __post_init__(self) -> None:
        _integer("max_orders_per_second", self.max_orders_per_second, 1)
        _number("hft_seconds", self.hft_seconds, 0.0)
        if self.max_mark_age_seconds is not None:
            _number("max_mark_age_seconds", self.max_mark_age_seconds, 0.0)
        for name in ("cooldown_seconds", "news_blackout_minutes", "weekend_buffer_minutes"):
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), 0.0, allow_zero=True)
        if self.max_daily_trades is not None:
            _integer("max_daily_trades", self.max_daily_trades, 1)
        if self.hft_max_trades is not None:
            _integer("hft_max_trades", self.hft_max_trades, 0)
        if self.max_risk_per_trade_fraction is not None:
            _fraction("max_risk_per_trade_fraction", self.max_risk_per_trade_fraction)
        for name in ("stop_loss_required", "take_profit_required"):
            if not isinstance(getattr(self, name), bool):
                raise LimitsError(name, f"must be true or false, got {getattr(self, name)!r}")
        _enum(self, "hft_action", RuleAction)
        _enum(self, "stale_price_action", RuleAction)
        if self.hedging_across_accounts is not None:
            _enum(self, "hedging_across_accounts", RuleAction)


@dataclass(frozen=True, slots=True)
class Schedule:
    """The account's calendar: trading-day boundary and weekly close.

    Attributes
    ----------
    trading_day_rollover, trading_day_timezone : str or None
        The plan's trading-day boundary (``"00:00"``, ``"Europe/Prague"`` for FTMO);
        ``None`` uses the server's (17:00 America/New_York).
    weekly_close : str
        Weekly market close, ``"<Mon..Sun> HH:MM <IANA zone>"``.
    """

    trading_day_rollover: str | None = None
    trading_day_timezone: str | None = None
    weekly_close: str = "Fri 17:00 America/New_York"

    def __post_init__(self) -> None:
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
                name = "trading_day_timezone" if "time zone" in str(exc) else "trading_day_rollover"
                raise LimitsError(name, str(exc)) from None

    def calendar(self, default: TradingDayCalendar) -> TradingDayCalendar:
        """The plan's trading-day calendar, or ``default`` when the plan sets none."""
        if self.trading_day_rollover is None:
            return default
        return _calendar(self.trading_day_rollover, self.trading_day_timezone)


@dataclass(frozen=True, slots=True)
class RecommendationRules:
    """When a day roll recommends cutting limits (house rule, :mod:`riskactors.domain.challenge`).

    Attributes
    ----------
    recommend_losing_streak_days : int or None
        Losing trading days in a row that raise a limit-reduction recommendation.
    recommend_day_loss_fraction : float or None
        A single day's loss beyond this fraction (0–1) of the day's start balance raises one.
    recommend_reduction : float
        Fraction (0–1) by which a recommendation cuts the daily loss and position limits.
    """

    recommend_losing_streak_days: int | None = 3
    recommend_day_loss_fraction: float | None = None
    recommend_reduction: float = 0.4

    def __post_init__(self) -> None:
        if self.recommend_losing_streak_days is not None:
            _integer("recommend_losing_streak_days", self.recommend_losing_streak_days, 1)
        if self.recommend_day_loss_fraction is not None:
            _fraction("recommend_day_loss_fraction", self.recommend_day_loss_fraction)
        _fraction("recommend_reduction", self.recommend_reduction)


_GROUPS: dict[str, type] = {"loss": LossLimits, "exposure": ExposureLimits, "objectives": Objectives,
                            "orders": OrderRules, "schedule": Schedule, "recommendations": RecommendationRules}


@dataclass(frozen=True, slots=True)
class Limits:
    """Every limit and rule one account is checked against (a resolved plan), by group.

    Attributes
    ----------
    loss : LossLimits
    exposure : ExposureLimits
    objectives : Objectives
    orders : OrderRules
    schedule : Schedule
    recommendations : RecommendationRules
    warning_fraction : float
        Fraction (0–1) of a limit at which a warning is raised. Default 0.8.

    Build one from flat parameter names with :meth:`of`; the defaults are the ``moderate``
    template's shape (see each group).
    """

    loss: LossLimits = field(default_factory=LossLimits)
    exposure: ExposureLimits = field(default_factory=ExposureLimits)
    objectives: Objectives = field(default_factory=Objectives)
    orders: OrderRules = field(default_factory=OrderRules)
    schedule: Schedule = field(default_factory=Schedule)
    recommendations: RecommendationRules = field(default_factory=RecommendationRules)
    warning_fraction: float = 0.8

    def __post_init__(self) -> None:
        _fraction("warning_fraction", self.warning_fraction)

    @classmethod
    def of(cls, **flat: Any) -> Limits:
        """Limits from flat parameters (``Limits.of(max_leverage=5, daily_loss_limit=250)``);
        the others keep their defaults.

        Raises
        ------
        LimitsError
            Unknown field or invalid value.
        """
        return _DEFAULT.with_overrides(flat)

    def calendar(self, default: TradingDayCalendar) -> TradingDayCalendar:
        """The plan's trading-day calendar, or ``default`` (see :meth:`Schedule.calendar`)."""
        return self.schedule.calendar(default)

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Limits:
        """A copy with flat ``overrides`` (field → value) applied; ``None`` switches an
        optional rule off.

        Raises
        ------
        LimitsError
            Unknown field or invalid value (a required limit set to ``None`` included).
        """
        if not overrides:
            return self
        unknown = set(overrides) - set(LIMIT_FIELDS)
        if unknown:
            raise LimitsError(min(unknown), "unknown limit field")
        changes: dict[str, Any] = {}
        for group, names in _GROUP_FIELDS.items():
            mine = {k: overrides[k] for k in names if k in overrides}
            if mine:
                changes[group] = replace(getattr(self, group), **mine)
        if "warning_fraction" in overrides:
            changes["warning_fraction"] = overrides["warning_fraction"]
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limits:
        """Limits from :meth:`to_dict` output (flat names; unknown fields rejected).

        Raises
        ------
        LimitsError

        Notes
        -----
        Equal inputs give the same (immutable) object, so the accounts of one plan share one
        ``Limits`` instead of a copy each (at most :data:`_INTERNED` distinct ones are kept).
        """
        try:
            key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in data.items())
            held = _INTERN.get(key)
        except TypeError:  # an unhashable value: validated (and refused) below
            key, held = None, None
        if held is None:
            held = _DEFAULT.with_overrides(data)
            if key is not None:
                if len(_INTERN) >= _INTERNED:
                    _INTERN.clear()
                _INTERN[key] = held
        return held

    def shared_dict(self) -> dict[str, Any]:
        """:meth:`to_dict`, one dict for every caller with equal limits (what an account's
        ``account_opened`` event keeps: 100,000 accounts of one plan hold one). Never change it."""
        return _shared_dict(self)

    def to_dict(self) -> dict[str, Any]:
        """Flat plain dict of every parameter (enums as strings), in :data:`LIMIT_FIELDS` order."""
        out: dict[str, Any] = {}
        for group, names in _GROUP_FIELDS.items():
            g = getattr(self, group)
            for name in names:
                v = getattr(g, name)
                out[name] = str(v) if isinstance(v, StrEnum) else v
        out["warning_fraction"] = self.warning_fraction
        return {name: out[name] for name in LIMIT_FIELDS}


@functools.lru_cache(maxsize=4096)
def _shared_dict(limits: Limits) -> dict[str, Any]:
    return limits.to_dict()


#: Distinct limits kept by :meth:`Limits.from_dict` (plans × versions × override sets in use).
_INTERNED = 4096
_INTERN: dict[tuple, Limits] = {}


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


def _enum(obj: Any, name: str, enum: type[StrEnum]) -> None:
    try:
        object.__setattr__(obj, name, enum(getattr(obj, name)))
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise LimitsError(name, f"must be one of {allowed}, got {getattr(obj, name)!r}") from None


@cache
def _calendar(rollover: str, tz: str) -> TradingDayCalendar:
    return TradingDayCalendar(rollover, tz)


#: Group attribute → the flat parameter names it holds.
_GROUP_FIELDS: dict[str, tuple[str, ...]] = {g: tuple(f.name for f in fields(cls)) for g, cls in _GROUPS.items()}
#: Flat parameter names of the HTTP contract and plans, in their documented order.
LIMIT_FIELDS: tuple[str, ...] = (
    "max_leverage", "account_leverage", "max_position_lots", "max_open_positions", "daily_loss_limit",
    "daily_loss_reference", "daily_loss_mode", "max_loss_limit", "max_loss_mode", "max_loss_lock",
    "max_orders_per_second", "margin_call_level", "warning_fraction", "hedged_margin_factor", "profit_target",
    "min_trading_days", "time_limit_days", "consistency_fraction", "stop_loss_required", "take_profit_required",
    "max_risk_per_trade_fraction", "max_daily_trades", "cooldown_seconds", "news_blackout_minutes", "weekly_close",
    "weekend_buffer_minutes", "hedging_across_accounts", "hft_seconds", "hft_max_trades", "hft_action",
    "trading_day_rollover", "trading_day_timezone", "recommend_losing_streak_days", "recommend_day_loss_fraction",
    "recommend_reduction", "max_mark_age_seconds", "stale_price_action")
#: Flat parameter name → its annotation as text (``"float | None"`` …), for plan validation.
LIMIT_FIELD_TYPES: dict[str, str] = {
    **{f.name: str(f.type) for cls in _GROUPS.values() for f in fields(cls)}, "warning_fraction": "float"}
assert set(LIMIT_FIELDS) == set(LIMIT_FIELD_TYPES), "every group field has a flat name"
_DEFAULT = Limits()
#: Plan fields given as a fraction of the initial balance → the amount field they resolve to.
FRACTION_FIELDS = {"daily_loss_limit_fraction": "daily_loss_limit",
                   "max_loss_limit_fraction": "max_loss_limit",
                   "profit_target_fraction": "profit_target",
                   "max_loss_lock_fraction": "max_loss_lock"}
