"""The account state machine: one trading account's risk state and the events that change it.

State changes only through events — order checked (reservation), fill applied, order
cancelled, reservations expired, marks applied, trading day rolled, kill switch set or
released, limits changed — each recorded in ``events`` with a sequence number. Time is always
an argument (``now``, epoch seconds), never read here, so replays are exact.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Any

from .challenge import objectives, recommendation
from .checks import Snapshot, check_order
from .codes import (
    AccountStatus,
    DailyLossMode,
    DailyLossReference,
    KillMode,
    KillScope,
    MaxLossMode,
    PositionMode,
    ReasonCode,
    Side,
)
from .errors import (
    ConversionUnavailable,
    FillConflict,
    InvalidFill,
    OrderConflict,
    RecommendationConflict,
    UnknownInstrument,
    UnknownOrder,
    UnknownRecommendation,
)
from .limits import Limits
from .marks import MarkBook
from .model import (
    INACTIVE_KILL_SWITCH,
    LOT_EPS,
    MONEY_EPS,
    ClosedTrade,
    Decision,
    Fill,
    KillSwitch,
    Order,
    Position,
    Reservation,
)
from .positions import apply_plan, plan_fill
from .rules import NewsCalendar, max_loss_floor, weekend_warning
from .sizing import position_size
from .tradingday import TradingDayCalendar
from .valuation import effective_lots, instrument_exposure, position_floating

__all__ = ["Account", "AccountConfig"]

_MAX_REMEMBERED_ORDERS = 20_000
_MAX_EVENTS = 2_000
#: Fill ids remembered per account for idempotency; a retry older than this many later
#: fills of the same account would be applied again (documented limit).
_MAX_REMEMBERED_FILLS = 200_000
#: Closed trades kept per account for the analytics (oldest dropped first; documented limit).
_MAX_CLOSED_TRADES = 100_000
_MAX_RECOMMENDATIONS = 100


@dataclass(frozen=True)
class AccountConfig:
    """Host-level settings an account needs: reservation TTL (seconds) and the day calendar."""

    reservation_ttl: float = 30.0
    calendar: TradingDayCalendar = field(default_factory=TradingDayCalendar)


def _is_below(stop: Any, entry: Any) -> bool:
    """True when ``stop`` < ``entry`` (a buy); bad values fall through to the sizing checks."""
    try:
        return float(stop) < float(entry)
    except (TypeError, ValueError):
        return True


class Account:
    """Risk state of one account, in netting or hedging position mode.

    Parameters
    ----------
    account_id, user_id, challenge_id : str
        Identity and the consolidation keys.
    currency : str
        Account currency (3-letter code); every money amount of the account is in it.
    initial_balance : float
        Starting balance, account currency, > 0.
    plan : str
        Id of the plan the limits came from; ``plan_version`` its version (``None`` when the
        limits did not come from a versioned plan).
    limits : Limits
        Resolved limits and rules (plan + overrides).
    now : float
        Creation time, epoch seconds; fixes the first trading day and the time-limit clock.
    config : AccountConfig
    position_mode : PositionMode
        ``netting`` (default) or ``hedging``.
    """

    def __init__(self, account_id: str, user_id: str, challenge_id: str, currency: str,
                 initial_balance: float, plan: str, limits: Limits, now: float,
                 config: AccountConfig | None = None, position_mode: str = "netting",
                 plan_version: int | None = None):
        self.account_id = account_id
        self.user_id = user_id
        self.challenge_id = challenge_id
        self.currency = currency.upper()
        self.initial_balance = float(initial_balance)
        self.plan = plan
        self.plan_version = plan_version
        self.limits = limits
        self.config = config or AccountConfig()
        self.calendar = limits.calendar(self.config.calendar)
        self.position_mode = PositionMode(position_mode)
        self.created_at = now
        self.balance = self.initial_balance
        self.positions: dict[str, Position] = {}
        self.reservations: dict[str, Reservation] = {}
        # running sums of reservations per instrument — [buys, sells, count, opening buys,
        # opening sells] — and an expiry heap, so a check never scans every reservation
        self._reserved: dict[str, list[float]] = {}
        self._opening_reservations = 0
        self._expiry: list[tuple[float, str]] = []
        self.status = AccountStatus.ACTIVE
        self.switches: dict[tuple[str, str | None], KillSwitch] = {}
        self.trading_day = self.calendar.day_of(now)
        self.day_start_balance = self.balance
        self.day_start_equity = self.balance
        self.high_water_mark = self.balance
        self.eod_high_water_mark = self.balance
        self.soft_blocked_day = None
        self.active_days: set[str] = set()
        self.day_opened_trades = 0
        #: trading day (ISO date) → closed result that day (realized + commission + swap)
        self.day_results: dict[str, float] = {}
        self.hft_count = 0
        self.last_losing_close: float | None = None
        self.closed_trades: deque[ClosedTrade] = deque(maxlen=_MAX_CLOSED_TRADES)
        self._closed_ids: OrderedDict[str, None] = OrderedDict()
        self.recommendations: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._losing_days = 0
        self.breaches: list[dict[str, Any]] = []
        self.events: deque[dict[str, Any]] = deque(maxlen=_MAX_EVENTS)
        self.event_seq = 0
        self._orders: OrderedDict[str, tuple[tuple, dict[str, Any]]] = OrderedDict()
        self._fills: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self._recent_checks: deque[float] = deque()
        self._record("account_opened", now, initial_balance=self.initial_balance, plan=plan,
                     plan_version=plan_version, position_mode=str(self.position_mode), limits=limits.to_dict())

    # ------------------------------------------------------------------ journal
    def _record(self, kind: str, at: float, **data: Any) -> dict[str, Any]:
        self.event_seq += 1
        event = {"seq": self.event_seq, "type": kind, "at": at, **data}
        self.events.append(event)
        return event

    @property
    def trading_days(self) -> int:
        """Trading days with at least one trade opened (the minimum-trading-days objective)."""
        return len(self.active_days)

    @property
    def day_realized_pnl(self) -> float:
        """Closed result of the current trading day (account currency)."""
        return self.day_results.get(self.trading_day.isoformat(), 0.0)

    @property
    def hedging(self) -> bool:
        return self.position_mode is PositionMode.HEDGING

    # ------------------------------------------------------------------ valuation
    def snapshot(self, book: MarkBook) -> Snapshot:
        """Current valuation against ``book`` (see :mod:`riskactors.domain.valuation`)."""
        registry = book.registry
        floating = 0.0
        per_position: dict[str, tuple[float, float, float]] = {}
        for key, pos in self.positions.items():
            f, px, rate = position_floating(pos, registry.get(pos.instrument), book, self.currency)
            per_position[key] = (f, px, rate)
            floating += f
        equity = self.balance + floating
        return Snapshot(account=self, book=book, floating_pnl=floating, equity=equity,
                        per_position=per_position)

    def daily_reference(self) -> float:
        """Start-of-day reference of the daily loss (account currency)."""
        if self.limits.daily_loss_reference is DailyLossReference.MAX_BALANCE_EQUITY:
            return max(self.day_start_balance, self.day_start_equity)
        return self.day_start_balance

    def max_loss_reference(self) -> float:
        """Initial balance (static), equity high-water mark (trailing_intraday) or end-of-day
        balance high-water mark (trailing_eod), account currency."""
        mode = self.limits.max_loss_mode
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

    # ------------------------------------------------------------------ time-driven events
    def advance(self, now: float, book: MarkBook) -> list[dict[str, Any]]:
        """Apply the time-driven events due at ``now``: day roll, reservation expiry, time limit.

        Returns
        -------
        list of dict
            Breach events caused now (the ``TIME_LIMIT`` failure; empty if none).
        """
        events: list[dict[str, Any]] = []
        day = self.calendar.day_of(now)
        if day > self.trading_day:
            self._roll_day(day, now, book)
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires_at, oid = heapq.heappop(heap)
            r = self.reservations.get(oid)
            if r is None or r.expires_at != expires_at:
                continue  # already filled or cancelled
            self._unreserve(oid)
            self._record("reservation_expired", now, order_id=oid, instrument=r.instrument, quantity=r.quantity)
        limit_days = self.limits.time_limit_days
        if (limit_days is not None and self.status is AccountStatus.ACTIVE
                and now >= self.created_at + limit_days * 86_400.0):
            events.append(self._fail(ReasonCode.TIME_LIMIT, now, limit=float(limit_days),
                                     value=(now - self.created_at) / 86_400.0,
                                     message=f"{ReasonCode.TIME_LIMIT}: {limit_days} calendar days ran out before "
                                             f"the objectives were met"))
        return events

    def _roll_day(self, day, now: float, book: MarkBook) -> None:
        ended = self.trading_day.isoformat()
        result = self.day_results.get(ended, 0.0)
        self.eod_high_water_mark = max(self.eod_high_water_mark, self.balance)
        if result < 0:
            self._losing_days += 1
        elif result > 0:
            self._losing_days = 0
        if result != 0:
            rec = recommendation(self, ended, result, self.day_start_balance, self._losing_days, now)
            if rec is not None:
                self._add_recommendation(rec, now)
        snap = self.snapshot(book)
        self.trading_day = day
        self.day_start_balance = self.balance
        self.day_start_equity = snap.equity
        self.day_opened_trades = 0
        self._record("day_rolled", now, trading_day=day.isoformat(), ended=ended, ended_result=result,
                     start_balance=self.balance, start_equity=snap.equity,
                     eod_high_water_mark=self.eod_high_water_mark)

    # ------------------------------------------------------------------ reservation index
    def _reserve(self, r: Reservation) -> None:
        self.reservations[r.order_id] = r
        sums = self._reserved.setdefault(r.instrument, [0.0, 0.0, 0, 0.0, 0.0])
        side = 0 if r.quantity > 0 else 1
        sums[side] += r.quantity
        sums[2] += 1
        if not r.reduces_position:
            sums[3 + side] += r.quantity
            self._opening_reservations += 1
        heapq.heappush(self._expiry, (r.expires_at, r.order_id))

    def _unreserve(self, order_id: str) -> Reservation:
        r = self.reservations.pop(order_id)
        sums = self._reserved[r.instrument]
        side = 0 if r.quantity > 0 else 1
        sums[side] -= r.quantity
        sums[2] -= 1
        if not r.reduces_position:
            sums[3 + side] -= r.quantity
            self._opening_reservations -= 1
        if sums[2] == 0:
            del self._reserved[r.instrument]  # reset: no float drift survives an empty book
        return r

    def _shrink_reservation(self, r: Reservation, remaining: float) -> None:
        sums = self._reserved[r.instrument]
        side = 0 if r.quantity > 0 else 1
        sums[side] += remaining - r.quantity
        if not r.reduces_position:
            sums[3 + side] += remaining - r.quantity
        r.quantity = remaining

    def reserved_lots(self, instrument: str, opening_only: bool = False) -> tuple[float, float]:
        """(buy lots ≥ 0, sell lots ≤ 0) reserved on ``instrument`` by pending orders
        (``opening_only``: only orders that open exposure)."""
        sums = self._reserved.get(instrument)
        if not sums:
            return (0.0, 0.0)
        return (sums[3], sums[4]) if opening_only else (sums[0], sums[1])

    def reserved_instruments(self, opening_only: bool = False) -> dict[str, tuple[float, float]]:
        """Instrument → (buy lots, sell lots) of the pending reservations."""
        i = 3 if opening_only else 0
        return {inst: (sums[i], sums[i + 1]) for inst, sums in self._reserved.items()}

    def pending_opening_orders(self) -> int:
        """Reservations of orders that open exposure (count)."""
        return self._opening_reservations

    def pending_reducing(self, position_id: str) -> float:
        """Lots (≥ 0) of pending orders that reduce the hedging ticket ``position_id``."""
        return sum(abs(r.quantity) for r in self.reservations.values() if r.position_id == position_id)

    # ------------------------------------------------------------------ checks
    def check(self, order: Order, book: MarkBook, now: float, news: NewsCalendar | None = None) -> Decision:
        """Pure pre-trade check of ``order`` against the current state (no state change).

        See :func:`riskactors.domain.checks.check_order` for every rule.
        """
        return check_order(self.snapshot(book), order, now, news)

    def submit(self, order: Order, book: MarkBook, now: float, news: NewsCalendar | None = None) -> dict[str, Any]:
        """Check ``order`` and apply the result: rate-window entry and, if accepted, a reservation.

        Idempotent on ``order_id``: a retry with the same content returns the first decision
        and changes nothing.

        Returns
        -------
        dict
            The decision (``Decision.to_dict()``).

        Raises
        ------
        OrderConflict
            ``order_id`` was checked before with different content.
        """
        prior = self._orders.get(order.order_id)
        if prior is not None:
            if prior[0] != order.fingerprint():
                raise OrderConflict(order.order_id, "order_id already checked with different content")
            return prior[1]
        self.advance(now, book)
        decision = self.check(order, book, now, news)
        if not any(r.code in (ReasonCode.INVALID_ORDER, ReasonCode.UNKNOWN_INSTRUMENT) for r in decision.reasons):
            self._recent_checks.append(now)
        if decision.accepted:
            side = Side(order.side)
            self._reserve(Reservation(
                order_id=order.order_id, instrument=order.instrument, quantity=side.sign * order.quantity,
                price=order.price, created_at=now, expires_at=now + self.config.reservation_ttl,
                reduces_position=decision.reduces_position,
                position_id=order.position_id if self.hedging and decision.reduces_position else None))
        result = decision.to_dict()
        self._orders[order.order_id] = (order.fingerprint(), result)
        if len(self._orders) > _MAX_REMEMBERED_ORDERS:
            self._orders.popitem(last=False)
        self._record("order_checked", now, order_id=order.order_id, decision=result["decision"],
                     reasons=[r["code"] for r in result["reasons"]])
        return result

    def recent_check_count(self, now: float) -> int:
        """Checks counted in the sliding window (now − 1 s, now]."""
        window = self._recent_checks
        while window and window[0] <= now - 1.0:
            window.popleft()
        return sum(1 for t in window if t <= now)

    def knows_order(self, order_id: str) -> bool:
        """True if ``order_id`` was checked on this account (and is still remembered)."""
        return order_id in self.reservations or order_id in self._orders

    def cancel(self, order_id: str, now: float) -> dict[str, Any]:
        """Release the reservation of ``order_id``. Idempotent.

        Raises
        ------
        UnknownOrder
            The order was never checked on this account.
        """
        r = self._unreserve(order_id) if order_id in self.reservations else None
        if r is not None:
            self._record("order_cancelled", now, order_id=order_id, instrument=r.instrument, quantity=r.quantity)
            return {"order_id": order_id, "account_id": self.account_id, "released": True,
                    "reservation": r.to_dict()}
        if self.knows_order(order_id):
            return {"order_id": order_id, "account_id": self.account_id, "released": False,
                    "reservation": None}
        raise UnknownOrder(order_id, "order_id unknown on this account")

    # ------------------------------------------------------------------ fills
    def apply_fill(self, fill: Fill, book: MarkBook, now: float) -> dict[str, Any]:
        """Apply an execution report to positions, balance, day P&L and reservation.

        Positions change as :mod:`riskactors.domain.positions` says (netting or hedging).
        Commission and swap are added to the balance as given (a charge is negative). A fill
        without stop-loss / take-profit takes those of the order it fills, if known. A fill
        that starts a position counts as a trade opened today; a position that goes flat is a
        closed trade (HFT count when it lasted < ``hft_seconds``; a loss starts the cooldown).

        Returns
        -------
        dict
            ``fill_id``, ``account_id``, ``user_id``, ``duplicate``, ``realized_pnl`` (gross
            of commission and swap), ``net_pnl`` (realized + commission + swap), ``position``
            (after; ``None`` when flat), ``closed_trade`` (or ``None``), ``balance``,
            ``instrument_lots`` ([long, short] lots on the instrument after), ``breach``
            (breach events this fill caused), ``status``.

        Raises
        ------
        FillConflict
            Same ``fill_id`` with different content.
        UnknownInstrument
            Instrument not in the registry.
        ConversionUnavailable
            No quote → account rate is known; nothing is changed.
        InvalidFill
            Side not buy/sell, quantity / price not a finite number > 0, or (hedging) a
            ``position_id`` it cannot reduce; nothing is changed.
        """
        prior = self._fills.get(fill.fill_id)
        if prior is not None:
            if prior[0] != fill.fingerprint():
                raise FillConflict(fill.fill_id, "fill_id already applied with different content")
            return {**prior[1], "duplicate": True}
        fingerprint = fill.fingerprint()
        inst = book.registry.get(fill.instrument)
        if inst is None:
            raise UnknownInstrument(fill.instrument, "instrument not in the registry")
        rate = book.rate(inst.quote_currency, self.currency)
        if rate is None:
            raise ConversionUnavailable(fill.instrument,
                                        f"no {inst.quote_currency}->{self.currency} rate from marks")
        if fill.side not in (Side.BUY.value, Side.SELL.value):
            raise InvalidFill(fill.fill_id, f"side must be buy or sell, got {fill.side!r}")
        for name in ("quantity", "price"):
            v = getattr(fill, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise InvalidFill(fill.fill_id, f"{name} must be a finite number > 0, got {v!r}")
        fill = self._with_order_levels(fill)
        if self.hedging and fill.position_id is None and fill.order_id is not None:
            r = self.reservations.get(fill.order_id)
            if r is not None and r.position_id is not None:  # the fill of an order that named its ticket
                fill = replace(fill, position_id=r.position_id)
        plan = plan_fill(self.positions, self._closed_ids, fill, self.position_mode, now)
        early = self.advance(now, book)
        today = self.trading_day.isoformat()
        net = fill.commission + fill.swap
        outcome = apply_plan(self.positions, plan, fill, inst, rate, now, net, today, self.account_id)
        net += outcome.realized
        self.balance += net
        self.day_results[today] = self.day_results.get(today, 0.0) + net
        if outcome.opened:
            self.day_opened_trades += 1
            self.active_days.add(today)
        if outcome.closed is not None:
            self._on_close(outcome.closed, now)
        self._release_filled(fill, plan.delta)
        position_view = self._position_view(outcome.position, inst, book) if outcome.position is not None else None
        self._record("fill_applied", now, fill_id=fill.fill_id, order_id=fill.order_id, position_id=plan.key,
                     instrument=fill.instrument, side=fill.side, quantity=fill.quantity, price=fill.price,
                     realized_pnl=outcome.realized, commission=fill.commission, swap=fill.swap)
        breaches = early + self.on_market(book, now)
        long_lots, short_lots = self.held_lots().get(fill.instrument, (0.0, 0.0))
        result = {"fill_id": fill.fill_id, "account_id": self.account_id, "user_id": self.user_id,
                  "duplicate": False, "realized_pnl": outcome.realized, "net_pnl": net, "position": position_view,
                  "closed_trade": outcome.closed.to_dict() if outcome.closed is not None else None,
                  "balance": self.balance, "instrument_lots": [long_lots, short_lots], "breach": breaches,
                  "status": str(self.status)}
        self._fills[fill.fill_id] = (fingerprint, result)
        if len(self._fills) > _MAX_REMEMBERED_FILLS:  # oldest first (dicts keep insertion order)
            del self._fills[next(iter(self._fills))]
        return result

    def _with_order_levels(self, fill: Fill) -> Fill:
        if fill.order_id is None or (fill.stop_loss is not None and fill.take_profit is not None):
            return fill
        prior = self._orders.get(fill.order_id)
        if prior is None:
            return fill
        _, _, _, _, sl, tp, _ = prior[0]
        return replace(fill, stop_loss=fill.stop_loss if fill.stop_loss is not None else sl,
                       take_profit=fill.take_profit if fill.take_profit is not None else tp)

    def _on_close(self, trade: ClosedTrade, now: float) -> None:
        self.closed_trades.append(trade)
        if self.hedging:
            self._closed_ids[trade.position_id] = None
            if len(self._closed_ids) > _MAX_REMEMBERED_FILLS:
                self._closed_ids.popitem(last=False)
        if trade.hold_seconds < self.limits.hft_seconds:
            self.hft_count += 1
        if trade.pnl < -MONEY_EPS:
            self.last_losing_close = now
        self._record("position_closed", now, trade=trade.to_dict())

    def _release_filled(self, fill: Fill, delta: float) -> None:
        if fill.order_id is None:
            return
        r = self.reservations.get(fill.order_id)
        if r is None or r.instrument != fill.instrument:
            return
        remaining = r.quantity - delta if r.quantity * delta > 0 else r.quantity
        if abs(remaining) <= LOT_EPS or remaining * r.quantity < 0:
            self._unreserve(fill.order_id)
        else:
            self._shrink_reservation(r, remaining)

    # ------------------------------------------------------------------ marks, breaches, lifecycle
    def on_market(self, book: MarkBook, now: float) -> list[dict[str, Any]]:
        """Re-value after new marks (or a fill): high-water mark, breaches and the challenge.

        Breach (prop-firm style, equity includes floating P&L, commission and swap):
        ``DAILY_LOSS_LIMIT`` when equity < daily reference − daily loss limit;
        ``MAX_LOSS_LIMIT`` when equity < the max-loss floor (:func:`rules.max_loss_floor`),
        each with tolerance :data:`MONEY_EPS`. A hard breach sets status ``failed`` and trips
        the account kill switch in ``reduce_only`` so the firm can still flatten the account.
        A soft daily-loss breach blocks new orders until the next trading day (status stays
        ``active``). Then, with every objective met, the account passes
        (:mod:`riskactors.domain.challenge`).

        Returns
        -------
        list of dict
            Breach events caused now (empty if none); a soft breach has ``"soft": True``.
        """
        events = self.advance(now, book)  # a TIME_LIMIT failure is a breach caused now too
        snap = self.snapshot(book)
        for key, (_, px, rate) in snap.per_position.items():
            pos = self.positions[key]
            pos.last_price = px
            pos.last_conversion = rate
        self.high_water_mark = max(self.high_water_mark, snap.equity)
        if self.status is not AccountStatus.ACTIVE:
            return events
        daily_floor = self.daily_reference() - self.limits.daily_loss_limit
        hard: list[tuple[ReasonCode, float, float, float]] = []
        if snap.equity < daily_floor - MONEY_EPS:
            loss = self.daily_reference() - snap.equity
            if self.limits.daily_loss_mode is DailyLossMode.HARD:
                hard.append((ReasonCode.DAILY_LOSS_LIMIT, self.limits.daily_loss_limit, loss, daily_floor))
            elif self.soft_blocked_day != self.trading_day:
                self.soft_blocked_day = self.trading_day
                event = self._record("soft_breach", now, code=str(ReasonCode.DAILY_LOSS_LIMIT),
                                     trading_day=self.trading_day.isoformat(),
                                     limit=self.limits.daily_loss_limit, value=loss, floor=daily_floor,
                                     equity=snap.equity, blocked_day=self.trading_day.isoformat(),
                                     message=f"{ReasonCode.DAILY_LOSS_LIMIT} (soft): loss {loss:.2f} "
                                             f"{self.currency} > limit {self.limits.daily_loss_limit:.2f}; new "
                                             f"orders blocked until the next trading day")
                self.breaches.append(event)
                events.append({**event, "account_id": self.account_id, "soft": True})
        max_floor = max_loss_floor(self)
        if snap.equity < max_floor - MONEY_EPS:
            hard.append((ReasonCode.MAX_LOSS_LIMIT, self.limits.max_loss_limit, max_floor + self.limits.max_loss_limit
                         - snap.equity, max_floor))
        for code, limit, loss, floor in hard:
            events.append(self._fail(code, now, limit=limit, value=loss, floor=floor, equity=snap.equity,
                                     message=f"{code}: loss {loss:.2f} {self.currency} > limit {limit:.2f} "
                                             f"(equity {snap.equity:.2f} < floor {floor:.2f})"))
        if self.status is AccountStatus.ACTIVE and self.limits.profit_target is not None and not self.positions:
            progress = objectives(self, now)
            if progress["all_met"]:
                self.status = AccountStatus.PASSED
                self._record("challenge_passed", now, objectives=progress)
        return events

    def _fail(self, code: ReasonCode, now: float, **data: Any) -> dict[str, Any]:
        """Fail the account for ``code`` (breach event, status ``failed``, account kill switch
        ``reduce_only``); returns the event with ``account_id``."""
        event = self._record("breach", now, code=str(code), trading_day=self.trading_day.isoformat(), **data)
        self.breaches.append(event)
        if self.status is AccountStatus.ACTIVE:
            self.status = AccountStatus.FAILED
            self.set_kill_switch(KillSwitch(KillScope.ACCOUNT, self.account_id, KillMode.REDUCE_ONLY,
                                            f"breach: {code}", "system", now, breach=True), now)
        return {**event, "account_id": self.account_id}

    # ------------------------------------------------------------------ kill switches, limits, plan
    def set_kill_switch(self, switch: KillSwitch, now: float) -> None:
        """Activate ``switch`` (replacing one of the same scope and id)."""
        self.switches[switch.key] = switch
        self._record("kill_switch_set", now, switch=switch.to_dict())

    def release_kill_switch(self, scope: str, scope_id: str | None, reason: str, by: str, now: float) -> bool:
        """Release the switch of ``scope``/``scope_id``. Returns False if none was active."""
        switch = self.switches.pop((str(scope), scope_id), None)
        if switch is None:
            return False
        self._record("kill_switch_released", now, scope=str(scope), id=scope_id, reason=reason, by=by)
        return True

    def set_limits(self, limits: Limits, by: str, reason: str, now: float) -> None:
        """Replace the limits; the change (before and after) is recorded."""
        before = self.limits.to_dict()
        self.limits = limits
        self.calendar = limits.calendar(self.config.calendar)
        self._record("limits_changed", now, by=by, reason=reason, before=before, after=limits.to_dict())

    def bind_plan(self, plan: str, version: int | None, limits: Limits, by: str, reason: str, now: float) -> None:
        """Rebind the account to ``plan`` version ``version`` with its resolved ``limits`` (recorded)."""
        before = {"plan": self.plan, "version": self.plan_version, "limits": self.limits.to_dict()}
        self.plan, self.plan_version = plan, version
        self.limits = limits
        self.calendar = limits.calendar(self.config.calendar)
        self._record("plan_bound", now, by=by, reason=reason, before=before,
                     after={"plan": plan, "version": version, "limits": limits.to_dict()})

    def set_status(self, status: AccountStatus, by: str, reason: str, now: float) -> None:
        """Set the status explicitly (ops action), recorded."""
        before = self.status
        self.status = AccountStatus(status)
        self._record("status_changed", now, before=str(before), after=str(self.status), by=by, reason=reason)

    def effective_kill_switch(self) -> dict[str, Any]:
        """The most restrictive active switch (halt over reduce_only; account scope first)."""
        order = {"account": 0, "user": 1, "challenge": 2, "firm": 3}
        active = sorted(self.switches.values(), key=lambda s: (s.mode is not KillMode.HALT, order[str(s.scope)]))
        return active[0].to_dict() if active else dict(INACTIVE_KILL_SWITCH)

    # ------------------------------------------------------------------ position sizing
    def size_position(self, request: dict[str, Any], book: MarkBook) -> dict[str, Any]:
        """Recommended lots for a trade from ``entry`` to ``stop_loss`` risking ``risk_amount``
        (account currency) or ``risk_fraction`` (0–1 of balance), capped by this account's
        max position size (lots already held or reserved that way counted), leverage (current
        notional counted) and free margin (margin used and reserved counted). See
        :func:`riskactors.domain.sizing.position_size`.

        Raises
        ------
        UnknownInstrument, ConversionUnavailable, SizingError
        """
        symbol = request["instrument"]
        inst = book.registry.get(symbol)
        if inst is None:
            raise UnknownInstrument(symbol, "instrument not in the registry")
        rate = book.rate(inst.quote_currency, self.currency)
        if rate is None:
            raise ConversionUnavailable(symbol, f"no {inst.quote_currency}->{self.currency} rate from marks")
        snap = self.snapshot(book)
        notional, margin = self.exposure(snap)
        margin += sum(snap.reservation_margin(r) for r in self.reservations.values())
        long_lots, short_lots = self.held_lots().get(symbol, (0.0, 0.0))
        buys, sells = self.reserved_lots(symbol, opening_only=self.hedging)
        buying = _is_below(request.get("stop_loss"), request.get("entry"))
        if self.hedging:
            held = long_lots + buys if buying else short_lots - sells
        else:
            net = long_lots - short_lots
            held = max(0.0, net + buys) if buying else max(0.0, -(net + sells))
        rec = position_size(instrument=inst, entry=request.get("entry"), stop_loss=request.get("stop_loss"),
                            rate=rate, balance=self.balance, equity=snap.equity, limits=self.limits,
                            risk_amount=request.get("risk_amount"), risk_fraction=request.get("risk_fraction"),
                            held_lots=held, other_notional=notional, margin_used=margin)
        return {"account_id": self.account_id, "instrument": symbol, "currency": self.currency, **rec.to_dict()}

    # ------------------------------------------------------------------ recommendations
    def _add_recommendation(self, rec: dict[str, Any], now: float) -> None:
        for old in self.recommendations.values():
            if old["status"] == "pending":
                old["status"] = "superseded"
        self._losing_days = 0
        rec_id = f"R{self.event_seq + 1}-{self.account_id}"
        rec = {"recommendation_id": rec_id, **rec}
        self.recommendations[rec_id] = rec
        if len(self.recommendations) > _MAX_RECOMMENDATIONS:
            self.recommendations.popitem(last=False)
        # a copy: the event keeps the recommendation as raised (a journal entry never changes);
        # its later status is in recommendation_applied/_dismissed or the next raise (superseded)
        self._record("recommendation_raised", now, recommendation=dict(rec))

    def decide_recommendation(self, rec_id: str, apply: bool, by: str, reason: str, now: float) -> dict[str, Any]:
        """Apply (new limits, recorded) or dismiss a pending recommendation.

        Raises
        ------
        UnknownRecommendation
            No such recommendation on this account.
        RecommendationConflict
            It is no longer pending.
        """
        rec = self.recommendations.get(rec_id)
        if rec is None:
            raise UnknownRecommendation(rec_id, "recommendation unknown on this account")
        if rec["status"] != "pending":
            raise RecommendationConflict(rec_id, f"recommendation is {rec['status']}, not pending")
        if apply:
            limits = self.limits.with_overrides(rec["proposed"])
            self.set_limits(limits, by, reason or f"recommendation {rec_id} applied", now)
        rec["status"] = "applied" if apply else "dismissed"
        rec["decided_by"], rec["decided_at"], rec["decision_reason"] = by, now, reason
        self._record("recommendation_" + rec["status"], now, recommendation_id=rec_id, by=by, reason=reason)
        return dict(rec)

    # ------------------------------------------------------------------ views
    def _position_view(self, pos: Position, inst, book: MarkBook) -> dict[str, Any]:
        f, px, rate = position_floating(pos, inst, book, self.currency)
        mark = book.get(pos.instrument)
        mid = mark.mid if mark is not None else px  # notional at mid, as in the checks (valuation docs)
        return {"position_id": pos.position_id, "instrument": pos.instrument, "quantity": pos.quantity,
                "average_price": pos.average_price, "mark_price": px, "floating_pnl": f,
                "realized_pnl": pos.realized_pnl, "notional": abs(pos.quantity) * inst.contract_size * mid * rate,
                "quote_currency": inst.quote_currency, "opened_at": pos.opened_at,
                "stop_loss": pos.stop_loss, "take_profit": pos.take_profit}

    def exposure(self, snap: Snapshot) -> tuple[float, float]:
        """(notional, margin) of the open positions, account currency; a hedging account's
        instrument counts :func:`~riskactors.domain.valuation.effective_lots`."""
        notional = margin = 0.0
        registry = snap.book.registry
        for sym, (long_lots, short_lots) in self.held_lots().items():
            inst = registry.get(sym)
            lots = effective_lots(long_lots, short_lots, self.limits.hedged_margin_factor)
            rate = snap.rate_of(inst.quote_currency, sym)
            e = instrument_exposure(inst, lots, snap.price_of(sym), rate if rate is not None else 0.0, self.limits)
            notional += e.notional
            margin += e.margin
        return notional, margin

    def view(self, book: MarkBook, now: float | None = None) -> dict[str, Any]:
        """The account view of the HTTP contract (money in account currency).

        ``margin_level`` is per cent (``None`` when no margin is used), ``leverage`` is ×
        (``None`` when equity ≤ 0), ``risk_score`` 0–100.
        """
        now = self.created_at if now is None else now
        snap = self.snapshot(book)
        registry = book.registry
        positions = [self._position_view(p, registry.get(p.instrument), book)
                     for _, p in sorted(self.positions.items())]
        notional, margin_used = self.exposure(snap)
        equity = snap.equity
        metrics = snap.metrics(margin_used, notional, len(positions))
        warnings = [w.to_dict() for w in metrics["warnings"]]
        weekend = weekend_warning(self, now)
        if weekend is not None:
            warnings.append(weekend.to_dict())
        reserved_margin = sum(snap.reservation_margin(r) for r in self.reservations.values())
        return {
            "account_id": self.account_id,
            "user_id": self.user_id,
            "challenge_id": self.challenge_id,
            "currency": self.currency,
            "plan": self.plan,
            "plan_version": self.plan_version,
            "position_mode": str(self.position_mode),
            "initial_balance": self.initial_balance,
            "balance": self.balance,
            "equity": equity,
            "floating_pnl": snap.floating_pnl,
            "daily_pnl": equity - self.day_start_balance,
            "day_realized_pnl": self.day_realized_pnl,
            "margin_used": margin_used,
            "reserved_margin": reserved_margin,
            "free_margin": equity - margin_used,
            "margin_level": (equity / margin_used * 100.0) if margin_used > 0 else None,
            "leverage": (notional / equity) if equity > 0 else None,
            "notional": notional,
            "positions": positions,
            "reservations": [r.to_dict() for r in self.reservations.values()],
            "limits": self.limits.to_dict(),
            "status": str(self.status),
            "kill_switch": self.effective_kill_switch(),
            "kill_switches": [s.to_dict() for s in self.switches.values()],
            "risk_score": metrics["risk_score"],
            "warnings": warnings,
            "trading_day": self.trading_day.isoformat(),
            "trading_days": self.trading_days,
            "day_opened_trades": self.day_opened_trades,
            "day_start_balance": self.day_start_balance,
            "day_start_equity": self.day_start_equity,
            "daily_loss": metrics["daily_loss"],
            "daily_loss_floor": self.daily_reference() - self.limits.daily_loss_limit,
            "daily_loss_blocked": self.soft_blocked_day == self.trading_day,
            "max_loss": metrics["max_loss"],
            "max_loss_floor": max_loss_floor(self),
            "high_water_mark": self.high_water_mark,
            "eod_high_water_mark": self.eod_high_water_mark,
            "objectives": objectives(self, now),
            "closed_trades": len(self.closed_trades),
            "hft_count": self.hft_count,
            "last_losing_close": self.last_losing_close,
            "recommendations": [dict(r) for r in self.recommendations.values() if r["status"] == "pending"],
            "breaches": list(self.breaches),
            "created_at": self.created_at,
        }

    def summary(self, book: MarkBook, now: float | None = None) -> dict[str, Any]:
        """Compact figures for consolidation (see :mod:`riskactors.domain.aggregate`)."""
        v = self.view(book, now)
        headroom = min(
            (v["equity"] - v["daily_loss_floor"]) / self.limits.daily_loss_limit,
            (v["equity"] - v["max_loss_floor"]) / self.limits.max_loss_limit,
        )
        exposure: dict[str, dict[str, Any]] = {}
        for p in v["positions"]:
            inst = book.registry.get(p["instrument"])
            mark = book.get(p["instrument"])
            mid = mark.mid if mark is not None else p["mark_price"]  # at mid, like the view's notional
            row = exposure.setdefault(p["instrument"], {"net_lots": 0.0, "gross_lots": 0.0,
                                                        "quote_currency": inst.quote_currency,
                                                        "net_notional_quote": 0.0, "gross_notional_quote": 0.0})
            row["net_lots"] += p["quantity"]
            row["gross_lots"] += abs(p["quantity"])
            row["net_notional_quote"] += p["quantity"] * inst.contract_size * mid
            row["gross_notional_quote"] += abs(p["quantity"]) * inst.contract_size * mid
        return {
            "account_id": self.account_id, "user_id": self.user_id, "challenge_id": self.challenge_id,
            "currency": self.currency, "status": v["status"], "balance": v["balance"], "equity": v["equity"],
            "daily_pnl": v["daily_pnl"], "risk_score": v["risk_score"], "warnings": [w["code"] for w in v["warnings"]],
            "breached": any(not b.get("soft") and b.get("type") == "breach" for b in self.breaches),
            "killed": v["kill_switch"]["active"], "breach_headroom": headroom, "exposure": exposure,
        }
