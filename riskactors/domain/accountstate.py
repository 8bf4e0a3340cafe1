"""What an account *is*: its state, field by field, with how each field is stored.

:class:`AccountState` holds every attribute of one trading account, and nothing else; the
account's life — the events that change these fields — is :class:`riskactors.domain.account.Account`,
a subclass that adds behaviour, not state. Keeping the fields here lets the valuation, the
checks, the prop-firm rules and the views read an account without importing the state
machine (no import circle).

Each field declares how the journal and snapshots store it (``codec=`` in its metadata): this
one list is the exact state format (:mod:`riskactors.domain.state`). A field without a codec
is refused at import, so a new field cannot be forgotten by serialisation.

Units: money in account currency, quantities in signed lots (+ long, − short), times in epoch
seconds, trading days as ``datetime.date``.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any

from .codes import AccountStatus, DailyLossReference, KillMode, KillScope, MaxLossMode, PositionMode
from .limits import Limits
from .memo import pack, unpack
from .model import INACTIVE_KILL_SWITCH, ClosedTrade, KillSwitch, Position, Reservation
from .plain import dataclass_from, fields_of, tuples
from .tradingday import TradingDayCalendar

__all__ = ["AccountConfig", "AccountState", "Codec", "collect_codecs", "stored_fields"]

#: Closed trades kept per account for the analytics (oldest dropped first; documented limit).
MAX_CLOSED_TRADES = 100_000
#: Events kept per account (``GET /v1/accounts/{id}/events``; oldest dropped first).
MAX_EVENTS = 2_000


def bounded_append(items: list, item: Any, limit: int) -> None:
    """Append ``item``; once ``items`` grows 5 % past ``limit`` the oldest are dropped in one
    go, so the newest ``limit`` are always kept and at most ``limit + limit // 20`` are held
    (amortised O(1); a plain list costs an account a few hundred bytes less than a deque)."""
    items.append(item)
    if len(items) > limit + limit // 20:
        del items[: len(items) - limit]


@dataclass(frozen=True)
class AccountConfig:
    """Host-level settings an account needs: reservation TTL (seconds) and the day calendar."""

    reservation_ttl: float = 30.0
    calendar: TradingDayCalendar = field(default_factory=TradingDayCalendar)


@dataclass(frozen=True)
class Codec:
    """How one field is stored: ``dump`` (value → plain data) and ``load`` (plain → value).

    ``load`` receives a private plain copy and may keep it.
    """

    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


def _same(x: Any) -> Any:
    return x


_PLAIN = Codec(_same, _same)
_DATE = Codec(lambda d: None if d is None else d.isoformat(), lambda s: None if s is None else date.fromisoformat(s))
_LIMITS = Codec(lambda lim: lim.to_dict(), Limits.from_dict)


def _enum(cls: type) -> Codec:
    return Codec(lambda e: e.value, cls)


def _ordered(cls: type) -> Codec:
    """A dict of dataclass values, as ``[[key, {fields}], …]`` (order kept)."""
    return Codec(lambda d: [[k, fields_of(v)] for k, v in d.items()],
                 lambda s: {k: dataclass_from(cls, v, f"{cls.__name__}.{k}") for k, v in s})


_PAIRS = Codec(lambda d: [[k, v] for k, v in d.items()], lambda s: {k: v for k, v in s})
_ORDERED_PAIRS = Codec(lambda d: [[k, v] for k, v in d.items()], lambda s: OrderedDict((k, v) for k, v in s))
_HEAP = Codec(lambda h: [[at, oid] for at, oid in h], lambda s: [(at, oid) for at, oid in s])
_SORTED_SET = Codec(sorted, set)
_KEYS = Codec(list, lambda s: OrderedDict((k, None) for k in s))
_SWITCHES = Codec(
    lambda d: [[[scope, sid], {"scope": sw.scope.value, "id": sw.scope_id, "mode": sw.mode.value, "reason": sw.reason,
                               "by": sw.by, "at": sw.at, "breach": sw.breach}] for (scope, sid), sw in d.items()],
    lambda s: {(scope, sid): KillSwitch(KillScope(sw["scope"]), sw["id"], KillMode(sw["mode"]), sw["reason"],
                                        sw["by"], sw["at"], sw["breach"]) for (scope, sid), sw in s})
_CLOSED_TRADES = Codec(
    lambda q: {"maxlen": MAX_CLOSED_TRADES, "items": [fields_of(t) for t in q]},
    lambda s: [dataclass_from(ClosedTrade, t, "closed_trades") for t in s["items"]])
_EVENTS = Codec(lambda q: {"maxlen": MAX_EVENTS, "items": list(q)}, lambda s: list(s["items"]))
#: remembered answers are marshal bytes in memory (:mod:`~riskactors.domain.memo`), dicts when stored
_DECISIONS = Codec(lambda d: [[k, fp, unpack(r)] for k, (fp, r) in d.items()],
                   lambda s: OrderedDict((k, (tuples(fp), pack(r))) for k, fp, r in s))
_FILL_RESULTS = Codec(lambda d: [[k, fp, unpack(r)] for k, (fp, r) in d.items()],
                      lambda s: {k: (tuples(fp), pack(r)) for k, fp, r in s})
_LIST = Codec(list, list)


def _stored(codec: Codec, **kw: Any) -> Any:
    return field(metadata={"codec": codec}, **kw)


def _derived(**kw: Any) -> Any:
    return field(metadata={"derived": True}, repr=False, compare=False, **kw)


@dataclass(eq=False, slots=True)
class AccountState:
    """Every attribute of one account (module docstring). Build accounts with
    :class:`~riskactors.domain.account.Account`; this class only holds and reads state.

    Attributes
    ----------
    account_id, user_id, challenge_id : str
        Identity and the consolidation keys.
    currency : str
        Account currency (3-letter code).
    initial_balance, balance : float
        Starting balance; closed P&L plus deposits (account currency).
    plan, plan_version : str, int or None
        The plan the limits came from and its version.
    limits : Limits
    position_mode : PositionMode
    created_at : float
        When the account's history starts (``opened_at``), epoch seconds.
    clock : float
        The instant up to which the time-driven events (day roll, reservation expiry, time
        limit) have been applied; never decreases.
    positions, reservations : dict
        Open positions by key (netting: symbol; hedging: ticket) and pending reservations by
        order id.
    reserved : dict
        Running sums of reservations per instrument — ``[buys, sells, count, opening buys,
        opening sells]`` — so a check never scans every reservation.
    opening_reservations : int
        Reservations of orders that open exposure.
    expiry : list
        Heap of ``(expires_at, order_id)``.
    status : AccountStatus
    switches : dict
        Active kill switches by ``(scope, id)``.
    trading_day : date
    day_start_balance, day_start_equity : float
    high_water_mark, eod_high_water_mark : float
        Equity high-water mark; high-water mark of end-of-day balances.
    soft_blocked_day : date or None
        The trading day a soft daily-loss breach blocks.
    active_days : set of str
        Trading days (ISO) with at least one trade opened.
    day_opened_trades : int
    day_results : dict
        Trading day (ISO) → closed result that day (realized + commission + swap).
    hft_count : int
    last_losing_close : float or None
    closed_trades : list of ClosedTrade
        The newest :data:`MAX_CLOSED_TRADES`, oldest first (see :func:`bounded_append`).
    closed_ids : OrderedDict
        Hedging tickets already closed (a fill cannot reopen one).
    recommendations : OrderedDict
    losing_days : int
        Losing trading days in a row since the last recommendation.
    breaches : list of dict
    events : list of dict
    event_seq : int
    orders, fills : dict
        Idempotency memories: id → (fingerprint, answer).
    recent_checks : list of float
        Times of the checks in the rate window, sorted.
    """

    account_id: str = _stored(_PLAIN)
    user_id: str = _stored(_PLAIN)
    challenge_id: str = _stored(_PLAIN)
    currency: str = _stored(_PLAIN)
    initial_balance: float = _stored(_PLAIN)
    plan: str = _stored(_PLAIN)
    plan_version: int | None = _stored(_PLAIN)
    limits: Limits = _stored(_LIMITS)
    position_mode: PositionMode = _stored(_enum(PositionMode))
    created_at: float = _stored(_PLAIN)
    clock: float = _stored(_PLAIN)
    balance: float = _stored(_PLAIN)
    positions: dict[str, Position] = _stored(_ordered(Position), default_factory=dict)
    reservations: dict[str, Reservation] = _stored(_ordered(Reservation), default_factory=dict)
    reserved: dict[str, list[float]] = _stored(_PAIRS, default_factory=dict)
    opening_reservations: int = _stored(_PLAIN, default=0)
    expiry: list[tuple[float, str]] = _stored(_HEAP, default_factory=list)
    status: AccountStatus = _stored(_enum(AccountStatus), default=AccountStatus.ACTIVE)
    switches: dict[tuple[str, str | None], KillSwitch] = _stored(_SWITCHES, default_factory=dict)
    trading_day: date = _stored(_DATE, default=date(1970, 1, 1))
    day_start_balance: float = _stored(_PLAIN, default=0.0)
    day_start_equity: float = _stored(_PLAIN, default=0.0)
    high_water_mark: float = _stored(_PLAIN, default=0.0)
    eod_high_water_mark: float = _stored(_PLAIN, default=0.0)
    soft_blocked_day: date | None = _stored(_DATE, default=None)
    active_days: set[str] = _stored(_SORTED_SET, default_factory=set)
    day_opened_trades: int = _stored(_PLAIN, default=0)
    day_results: dict[str, float] = _stored(_PAIRS, default_factory=dict)
    hft_count: int = _stored(_PLAIN, default=0)
    last_losing_close: float | None = _stored(_PLAIN, default=None)
    closed_trades: list[ClosedTrade] = _stored(_CLOSED_TRADES, default_factory=list)
    closed_ids: OrderedDict[str, None] = _stored(_KEYS, default_factory=OrderedDict)
    recommendations: OrderedDict[str, dict[str, Any]] = _stored(_ORDERED_PAIRS, default_factory=OrderedDict)
    losing_days: int = _stored(_PLAIN, default=0)
    breaches: list[dict[str, Any]] = _stored(_PLAIN, default_factory=list)
    events: list[dict[str, Any]] = _stored(_EVENTS, default_factory=list)
    event_seq: int = _stored(_PLAIN, default=0)
    orders: OrderedDict[str, tuple[tuple, dict[str, Any]]] = _stored(_DECISIONS, default_factory=OrderedDict)
    fills: dict[str, tuple[tuple, dict[str, Any]]] = _stored(_FILL_RESULTS, default_factory=dict)
    recent_checks: list[float] = _stored(_LIST, default_factory=list)
    config: AccountConfig = _derived(default_factory=AccountConfig)
    calendar: TradingDayCalendar = _derived(default_factory=TradingDayCalendar)

    # ------------------------------------------------------------------ reads
    @property
    def hedging(self) -> bool:
        """True in hedging position mode (every ticket its own position)."""
        return self.position_mode is PositionMode.HEDGING

    @property
    def trading_days(self) -> int:
        """Trading days with at least one trade opened (the minimum-trading-days objective)."""
        return len(self.active_days)

    @property
    def day_realized_pnl(self) -> float:
        """Closed result of the current trading day (account currency)."""
        return self.day_results.get(self.trading_day.isoformat(), 0.0)

    def daily_reference(self) -> float:
        """Start-of-day reference of the daily loss (account currency): the day's start
        balance, or the higher of start balance and start equity (``max_balance_equity``)."""
        if self.limits.loss.daily_loss_reference is DailyLossReference.MAX_BALANCE_EQUITY:
            return max(self.day_start_balance, self.day_start_equity)
        return self.day_start_balance

    def max_loss_reference(self) -> float:
        """Initial balance (static), equity high-water mark (trailing_intraday) or end-of-day
        balance high-water mark (trailing_eod), account currency."""
        mode = self.limits.loss.max_loss_mode
        if mode is MaxLossMode.TRAILING_INTRADAY:
            return self.high_water_mark
        if mode is MaxLossMode.TRAILING_EOD:
            return self.eod_high_water_mark
        return self.initial_balance

    def positions_on(self, instrument: str) -> list[Position]:
        """Open positions on ``instrument`` (netting: at most one; hedging: every ticket)."""
        if not self.hedging:
            pos = self.positions.get(instrument)
            return [pos] if pos is not None else []
        return [p for p in self.positions.values() if p.instrument == instrument]

    def held_lots(self) -> dict[str, tuple[float, float]]:
        """Instrument → (long lots ≥ 0, short lots ≥ 0) of the open positions."""
        out: dict[str, list[float]] = {}
        for p in self.positions.values():
            sides = out.setdefault(p.instrument, [0.0, 0.0])
            if p.quantity > 0:
                sides[0] += p.quantity
            else:
                sides[1] -= p.quantity
        return {k: (v[0], v[1]) for k, v in out.items()}

    def reserved_lots(self, instrument: str, opening_only: bool = False) -> tuple[float, float]:
        """(buy lots ≥ 0, sell lots ≤ 0) reserved on ``instrument`` by pending orders
        (``opening_only``: only orders that open exposure)."""
        sums = self.reserved.get(instrument)
        if not sums:
            return (0.0, 0.0)
        return (sums[3], sums[4]) if opening_only else (sums[0], sums[1])

    def reserved_instruments(self, opening_only: bool = False) -> dict[str, tuple[float, float]]:
        """Instrument → (buy lots, sell lots) of the pending reservations."""
        i = 3 if opening_only else 0
        return {inst: (sums[i], sums[i + 1]) for inst, sums in self.reserved.items()}

    def pending_opening_orders(self) -> int:
        """Reservations of orders that open exposure (count)."""
        return self.opening_reservations

    def pending_reducing(self, position_id: str) -> float:
        """Lots (≥ 0) of pending orders that reduce the hedging ticket ``position_id``."""
        return sum(abs(r.quantity) for r in self.reservations.values() if r.position_id == position_id)

    def recent_check_count(self, now: float) -> int:
        """Checks in the sliding window (now − 1 s, now]; reads only."""
        window = self.recent_checks
        return bisect.bisect_right(window, now) - bisect.bisect_right(window, now - 1.0)

    def knows_order(self, order_id: str) -> bool:
        """True if ``order_id`` was checked on this account (and is still remembered)."""
        return order_id in self.reservations or order_id in self.orders

    def effective_kill_switch(self) -> dict[str, Any]:
        """The most restrictive active switch as a dict (halt over reduce_only; account scope
        first), or the inactive switch ``{"active": False, …}``."""
        rank = {"account": 0, "user": 1, "challenge": 2, "firm": 3}
        active = sorted(self.switches.values(), key=lambda s: (s.mode is not KillMode.HALT, rank[str(s.scope)]))
        return active[0].to_dict() if active else dict(INACTIVE_KILL_SWITCH)

    def next_due(self) -> float:
        """The earliest instant (epoch seconds) a time-driven event falls due: the next day
        roll, the first reservation expiry, or the time-limit deadline of an active account."""
        due = self.calendar.start_of(self.trading_day + timedelta(days=1))
        if self.expiry:  # the account keeps the heap's top a live reservation
            due = min(due, self.expiry[0][0])
        deadline = self.time_limit_deadline()
        if deadline is not None and self.status is AccountStatus.ACTIVE:
            due = min(due, deadline)
        return due

    def time_limit_deadline(self) -> float | None:
        """``created_at`` + ``time_limit_days`` × 86,400 s, or ``None`` without a time limit."""
        days = self.limits.objectives.time_limit_days
        return None if days is None else self.created_at + days * 86_400.0


def stored_fields() -> dict[str, Codec]:
    """Field name → codec of every stored field of :class:`AccountState`, in field order."""
    return dict(_STORED)


def collect_codecs(cls: type) -> dict[str, Codec]:
    """Field name → codec of the stored fields of dataclass ``cls``.

    Raises
    ------
    TypeError
        A field declares neither a codec nor that it is derived (it would not be stored).
    """
    out: dict[str, Codec] = {}
    for f in fields(cls):
        if f.metadata.get("derived"):
            continue
        codec = f.metadata.get("codec")
        if not isinstance(codec, Codec):
            raise TypeError(f"{cls.__name__}.{f.name} has no serialisation rule: give it _stored(codec) or "
                            f"_derived()")
        out[f.name] = codec
    return out


_STORED = collect_codecs(AccountState)
