"""An account's life, top to bottom: the events that change an :class:`AccountState`.

The state's fields are in :mod:`riskactors.domain.accountstate`; here is everything that
changes them, in the order an account lives it:

1. **opened** — :class:`Account` (``account_opened``);
2. **time passes** — :meth:`Account.advance`: every time-driven event due up to the clock, in
   the order of its due instant: day rolls (one per trading day, with the recommendations a
   roll raises), reservation expiries, the time-limit failure;
3. **orders** — :meth:`Account.check` (pure) and :meth:`Account.submit` (the rate window
   moves; an accepted order reserves), :meth:`Account.cancel`;
4. **fills** — :meth:`Account.apply_fill`: positions, balance, the day's results;
5. **marks** — :meth:`Account.on_market`: re-valuation, breaches and the challenge outcome;
6. **status** — every status change goes through :meth:`Account._transition` and the table
   :data:`TRANSITIONS`, which names each allowed change and its cause and refuses the rest;
7. **ops** — kill switches, limits, plan binding, recommendation decisions.

Every change is recorded in ``events`` with a sequence number. Time is always an argument
(``now``, epoch seconds), never read here, so replays are exact; a time-driven event is
recorded at its due instant, so when a host learns that time has passed does not change what
it records. Views, summaries and sizing read accounts from :mod:`riskactors.domain.views`.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from .accountstate import MAX_CLOSED_TRADES, MAX_EVENTS, AccountConfig, AccountState, bounded_append
from .challenge import objectives, recommendation
from .checks import check_order
from .codes import AccountStatus, DailyLossMode, KillMode, KillScope, PositionMode, ReasonCode, Side
from .errors import (
    ConversionUnavailable,
    FillConflict,
    InvalidFill,
    InvalidTransition,
    OrderConflict,
    RecommendationConflict,
    UnknownInstrument,
    UnknownOrder,
    UnknownRecommendation,
)
from .limits import Limits
from .marks import LatestMarks
from .memo import pack, unpack
from .model import LOT_EPS, MONEY_EPS, ClosedTrade, Decision, Fill, KillSwitch, Order, Reservation
from .news import NewsCalendar
from .positions import apply_plan, plan_fill
from .state import account_to_state, state_fields
from .valuation import Valuation, max_loss_floor, value, valued_position

__all__ = ["TRANSITIONS", "Account", "AccountConfig", "Cause", "account_from_state"]

_MAX_REMEMBERED_ORDERS = 20_000
#: Fill ids remembered per account for idempotency; a retry older than this many later
#: fills of the same account would be applied again (documented limit).
_MAX_REMEMBERED_FILLS = 200_000
_MAX_RECOMMENDATIONS = 100
#: Checks kept for the rate window: those within this many seconds of the latest.
_RATE_WINDOW = 1.0


class Cause(StrEnum):
    """Why an account's status changes (the ``cause`` of a transition)."""

    BREACH = "breach"  #: a hard loss limit broken (DAILY_LOSS_LIMIT hard, MAX_LOSS_LIMIT)
    TIME_LIMIT = "time_limit"  #: the challenge's calendar days ran out before it passed
    SOFT_DAILY_LOSS = "soft_daily_loss"  #: a soft daily-loss breach: blocked for the trading day
    OBJECTIVES_MET = "objectives_met"  #: every objective of the challenge met, account flat
    OPS = "ops"  #: an explicit ops action (``PUT /v1/accounts/{id}/status``)


_A, _P, _F, _D = AccountStatus.ACTIVE, AccountStatus.PASSED, AccountStatus.FAILED, AccountStatus.DISABLED
#: (status before, status after) → the causes allowed to make that change. Anything else is
#: refused (:class:`~riskactors.domain.errors.InvalidTransition`). ``passed`` is reached only by
#: meeting the objectives; a breach or a time limit fails only an active account.
TRANSITIONS: dict[tuple[AccountStatus, AccountStatus], frozenset[Cause]] = {
    (_A, _F): frozenset({Cause.BREACH, Cause.TIME_LIMIT, Cause.OPS}),
    (_A, _P): frozenset({Cause.OBJECTIVES_MET}),
    (_A, _A): frozenset({Cause.SOFT_DAILY_LOSS, Cause.OPS}),
    (_A, _D): frozenset({Cause.OPS}),
    **{(src, dst): frozenset({Cause.OPS}) for src in (_P, _F, _D) for dst in (_A, _F, _D)},
}
#: What a cause does besides the status: trip the account kill switch in ``reduce_only`` (so
#: the firm can still flatten), or block new orders until the next trading day.
_TRIPS_KILL_SWITCH = frozenset({Cause.BREACH, Cause.TIME_LIMIT})
_BLOCKS_THE_DAY = frozenset({Cause.SOFT_DAILY_LOSS})


class Account(AccountState):
    """One trading account, netting or hedging: its state and the events that change it.

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
        When the account's history starts (``opened_at``), epoch seconds: its first trading
        day, the time-limit clock and its own clock.
    config : AccountConfig
    position_mode : PositionMode
        ``netting`` (default) or ``hedging``.
    """

    __slots__ = ()  # behaviour only: every field is AccountState's (slots: no per-account dict)

    def __init__(self, account_id: str, user_id: str, challenge_id: str, currency: str,
                 initial_balance: float, plan: str, limits: Limits, now: float,
                 config: AccountConfig | None = None, position_mode: str = "netting",
                 plan_version: int | None = None):
        config = config or AccountConfig()
        calendar = limits.calendar(config.calendar)
        balance = float(initial_balance)
        super().__init__(
            account_id=account_id, user_id=user_id, challenge_id=challenge_id, currency=currency.upper(),
            initial_balance=balance, plan=plan, plan_version=plan_version, limits=limits,
            position_mode=PositionMode(position_mode), created_at=now, clock=now, balance=balance,
            trading_day=calendar.day_of(now), day_start_balance=balance, day_start_equity=balance,
            high_water_mark=balance, eod_high_water_mark=balance, config=config, calendar=calendar)
        self._record("account_opened", now, initial_balance=balance, plan=plan, plan_version=plan_version,
                     position_mode=str(self.position_mode), limits=limits.shared_dict())

    def _record(self, kind: str, at: float, **data: Any) -> dict[str, Any]:
        self.event_seq += 1
        event = {"seq": self.event_seq, "type": kind, "at": at, **data}
        bounded_append(self.events, event, MAX_EVENTS)
        return event

    # ================================================================== 2. time passes
    def advance(self, now: float, latest: LatestMarks) -> list[dict[str, Any]]:
        """Apply every time-driven event due at or before ``now``, in due order, and move the
        account's clock to ``now`` (never back).

        Due events: the day roll at each trading-day boundary (one roll per day, recorded at
        the boundary), a reservation's expiry (at ``expires_at``), the time-limit failure (at
        the deadline, ``TIME_LIMIT``). Each is recorded at its due instant.

        Returns
        -------
        list of dict
            Breach events caused (the ``TIME_LIMIT`` failure; empty if none).
        """
        events: list[dict[str, Any]] = []
        equity: list[float] = []  # nothing moves equity while time alone passes: value it once
        while True:
            roll_at = self.calendar.start_of(self.trading_day + timedelta(days=1))
            expiry_at = self.expiry[0][0] if self.expiry else None
            deadline = self.time_limit_deadline() if self.status is AccountStatus.ACTIVE else None
            due = min(x for x in (roll_at, expiry_at, deadline) if x is not None)
            if due > now:
                break
            if expiry_at is not None and due == expiry_at:
                self._expire(expiry_at)
            elif deadline is not None and due == deadline:
                days = self.limits.objectives.time_limit_days
                events.append(self._breach(ReasonCode.TIME_LIMIT, deadline, Cause.TIME_LIMIT, limit=float(days),
                                           value=float(days),
                                           message=f"{ReasonCode.TIME_LIMIT}: {days} calendar days ran out before "
                                                   f"the objectives were met"))
            else:
                if not equity:
                    equity.append(value(self, latest).equity)
                self._roll_day(roll_at, equity[0])
        self.clock = max(self.clock, now)
        return events

    def _expire(self, expires_at: float) -> None:
        _, oid = heapq.heappop(self.expiry)
        r = self.reservations.get(oid)
        if r is None or r.expires_at != expires_at:
            return  # already filled or cancelled (an entry left by an older state version)
        self._unreserve(oid)
        self._record("reservation_expired", expires_at, order_id=oid, instrument=r.instrument, quantity=r.quantity)

    def _roll_day(self, at: float, equity: float) -> None:
        ended = self.trading_day.isoformat()
        result = self.day_results.get(ended, 0.0)
        self.eod_high_water_mark = max(self.eod_high_water_mark, self.balance)
        if result < 0:
            self.losing_days += 1
        elif result > 0:
            self.losing_days = 0
        if result != 0:
            rec = recommendation(self, ended, result, self.day_start_balance, self.losing_days, at)
            if rec is not None:
                self._add_recommendation(rec, at)
        self.trading_day = self.trading_day + timedelta(days=1)
        self.day_start_balance = self.balance
        self.day_start_equity = equity
        self.day_opened_trades = 0
        self._record("day_rolled", at, trading_day=self.trading_day.isoformat(), ended=ended, ended_result=result,
                     start_balance=self.balance, start_equity=equity, eod_high_water_mark=self.eod_high_water_mark)

    def is_late(self, ts: float) -> bool:
        """True when ``ts`` falls in a trading day this account has already rolled past (such an
        event is booked to the current trading day)."""
        return ts < self.calendar.start_of(self.trading_day)

    # ================================================================== 3. orders
    def check(self, order: Order, latest: LatestMarks, now: float, news: NewsCalendar | None = None) -> Decision:
        """Pure pre-trade check of ``order`` at ``now`` against the current state (see
        :func:`riskactors.domain.checks.check_order` for every rule). Changes nothing."""
        return check_order(self, value(self, latest), latest, order, now, news)

    def submit(self, order: Order, latest: LatestMarks, now: float,
               news: NewsCalendar | None = None) -> dict[str, Any]:
        """Check ``order`` at ``now`` and apply the result: the check enters the rate window
        and, if accepted, the order reserves its exposure until ``now`` + the reservation TTL.

        Idempotent on ``order_id``: a retry with the same content returns the first decision
        and changes nothing.

        Returns
        -------
        dict
            The decision (``Decision.to_dict()``) plus ``late``: ``ts`` fell in a trading day
            the account had already rolled past.

        Raises
        ------
        OrderConflict
            ``order_id`` was checked before with different content.
        """
        prior = self.orders.get(order.order_id)
        if prior is not None:
            if prior[0] != order.fingerprint():
                raise OrderConflict(order.order_id, "order_id already checked with different content")
            return unpack(prior[1])
        self.advance(now, latest)
        decision = self.check(order, latest, now, news)
        if not any(r.code in (ReasonCode.INVALID_ORDER, ReasonCode.UNKNOWN_INSTRUMENT) for r in decision.reasons):
            self._count_check(now)
        if decision.accepted:
            self._reserve(Reservation(
                order_id=order.order_id, instrument=order.instrument, quantity=Side(order.side).sign * order.quantity,
                price=order.price, created_at=now, expires_at=now + self.config.reservation_ttl,
                reduces_position=decision.reduces_position,
                position_id=order.position_id if self.hedging and decision.reduces_position else None))
        result = decision.to_dict()
        result["late"] = self.is_late(now)
        self.orders[order.order_id] = (order.fingerprint(), pack(result))
        if len(self.orders) > _MAX_REMEMBERED_ORDERS:
            self.orders.popitem(last=False)
        self._record("order_checked", now, order_id=order.order_id, decision=result["decision"],
                     reasons=[r["code"] for r in result["reasons"]])
        return result

    def _count_check(self, now: float) -> None:
        window = self.recent_checks
        bisect.insort(window, now)
        cut = bisect.bisect_right(window, window[-1] - _RATE_WINDOW)
        del window[:cut]

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

    # reservation index: running sums and an expiry heap whose top is always a live reservation
    def _reserve(self, r: Reservation) -> None:
        self.reservations[r.order_id] = r
        sums = self.reserved.setdefault(r.instrument, [0.0, 0.0, 0, 0.0, 0.0])
        side = 0 if r.quantity > 0 else 1
        sums[side] += r.quantity
        sums[2] += 1
        if not r.reduces_position:
            sums[3 + side] += r.quantity
            self.opening_reservations += 1
        heapq.heappush(self.expiry, (r.expires_at, r.order_id))

    def _unreserve(self, order_id: str) -> Reservation:
        r = self.reservations.pop(order_id)
        sums = self.reserved[r.instrument]
        side = 0 if r.quantity > 0 else 1
        sums[side] -= r.quantity
        sums[2] -= 1
        if not r.reduces_position:
            sums[3 + side] -= r.quantity
            self.opening_reservations -= 1
        if sums[2] == 0:
            del self.reserved[r.instrument]  # reset: no float drift survives an empty index
        heap = self.expiry
        while heap and (heap[0][1] not in self.reservations
                        or self.reservations[heap[0][1]].expires_at != heap[0][0]):
            heapq.heappop(heap)
        return r

    def _shrink_reservation(self, r: Reservation, remaining: float) -> None:
        sums = self.reserved[r.instrument]
        side = 0 if r.quantity > 0 else 1
        sums[side] += remaining - r.quantity
        if not r.reduces_position:
            sums[3 + side] += remaining - r.quantity
        r.quantity = remaining

    # ================================================================== 4. fills
    def apply_fill(self, fill: Fill, latest: LatestMarks, now: float) -> dict[str, Any]:
        """Apply an execution report to positions, balance, day P&L and reservation.

        Positions change as :mod:`riskactors.domain.positions` says (netting or hedging).
        Commission and swap are added to the balance as given (a charge is negative). A fill
        without stop-loss / take-profit takes those of the order it fills, if known. A fill
        that starts a position counts as a trade opened today; a position that goes flat is a
        closed trade (HFT count when it lasted < ``hft_seconds``; a loss starts the cooldown).
        A fill whose ``ts`` falls in a trading day already rolled past is booked to the current
        trading day (``late``).

        Returns
        -------
        dict
            ``fill_id``, ``account_id``, ``user_id``, ``duplicate``, ``realized_pnl`` (gross
            of commission and swap), ``net_pnl`` (realized + commission + swap), ``position``
            (after; ``None`` when flat), ``closed_trade`` (or ``None``), ``balance``,
            ``instrument_lots`` ([long, short] lots on the instrument after), ``breach``
            (breach events this fill caused), ``status``, ``late``.

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
        prior = self.fills.get(fill.fill_id)
        if prior is not None:
            if prior[0] != fill.fingerprint():
                raise FillConflict(fill.fill_id, "fill_id already applied with different content")
            return {**unpack(prior[1]), "duplicate": True}
        fingerprint = fill.fingerprint()
        inst = latest.registry.get(fill.instrument)
        if inst is None:
            raise UnknownInstrument(fill.instrument, "instrument not in the registry")
        rate = latest.rate(inst.quote_currency, self.currency)
        if rate is None:
            raise ConversionUnavailable(fill.instrument, f"no {inst.quote_currency}->{self.currency} rate from marks")
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
        plan = plan_fill(self.positions, self.closed_ids, fill, self.position_mode, now)
        early = self.advance(now, latest)
        late = self.is_late(now)
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
        self._record("fill_applied", now, fill_id=fill.fill_id, order_id=fill.order_id, position_id=plan.key,
                     instrument=fill.instrument, side=fill.side, quantity=fill.quantity, price=fill.price,
                     realized_pnl=outcome.realized, commission=fill.commission, swap=fill.swap)
        breaches = early + self.on_market(latest, now)
        long_lots, short_lots = self.held_lots().get(fill.instrument, (0.0, 0.0))
        result = {"fill_id": fill.fill_id, "account_id": self.account_id, "user_id": self.user_id,
                  "duplicate": False, "realized_pnl": outcome.realized, "net_pnl": net,
                  "position": (valued_position(self, outcome.position, latest, now) if outcome.position is not None
                               else None),
                  "closed_trade": outcome.closed.to_dict() if outcome.closed is not None else None,
                  "balance": self.balance, "instrument_lots": [long_lots, short_lots], "breach": breaches,
                  "status": str(self.status), "late": late}
        self.fills[fill.fill_id] = (fingerprint, pack(result))
        if len(self.fills) > _MAX_REMEMBERED_FILLS:  # oldest first (dicts keep insertion order)
            del self.fills[next(iter(self.fills))]
        return result

    def _with_order_levels(self, fill: Fill) -> Fill:
        if fill.order_id is None or (fill.stop_loss is not None and fill.take_profit is not None):
            return fill
        prior = self.orders.get(fill.order_id)
        if prior is None:
            return fill
        _, _, _, _, sl, tp, _ = prior[0]
        return replace(fill, stop_loss=fill.stop_loss if fill.stop_loss is not None else sl,
                       take_profit=fill.take_profit if fill.take_profit is not None else tp)

    def _on_close(self, trade: ClosedTrade, now: float) -> None:
        bounded_append(self.closed_trades, trade, MAX_CLOSED_TRADES)
        if self.hedging:
            self.closed_ids[trade.position_id] = None
            if len(self.closed_ids) > _MAX_REMEMBERED_FILLS:
                self.closed_ids.popitem(last=False)
        if trade.hold_seconds < self.limits.orders.hft_seconds:
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

    # ================================================================== 5. marks
    def on_market(self, latest: LatestMarks, now: float) -> list[dict[str, Any]]:
        """Re-value after new marks (or a fill): high-water mark, breaches and the challenge.

        Breach (prop-firm style, equity includes floating P&L, commission and swap; the floors
        are :mod:`riskactors.domain.valuation`'s): ``DAILY_LOSS_LIMIT`` when equity < the daily
        floor, ``MAX_LOSS_LIMIT`` when equity < the max-loss floor, each with tolerance
        :data:`MONEY_EPS`. A hard breach fails the account (:data:`TRANSITIONS`, cause
        ``breach``); a soft daily-loss breach blocks new orders until the next trading day.
        Then, with every objective met, the account passes (:mod:`riskactors.domain.challenge`).

        Returns
        -------
        list of dict
            Breach events caused now (empty if none); a soft breach has ``"soft": True``.
        """
        return self.revalue(latest, now)[0]

    def revalue(self, latest: LatestMarks, now: float, advance: bool = True) -> tuple[list[dict[str, Any]], Valuation]:
        """:meth:`on_market`, also returning the valuation after it (the high-water mark
        moved: its max-loss floor is the new one), for callers that keep figures of it.
        ``advance=False``: the caller has applied every time-driven event due by ``now``
        already (a host whose clock is at ``now``), so only the account's clock moves."""
        if advance:
            events = self.advance(now, latest)  # a TIME_LIMIT failure is a breach caused now too
        else:
            events = []
            self.clock = max(self.clock, now)
        val = value(self, latest)
        for key, pv in val.positions.items():
            pos = self.positions[key]
            pos.last_price = pv.exit_price
            pos.last_conversion = pv.rate
        checked = val  # the breaches are checked on the floors before the high-water mark moves
        if val.equity > self.high_water_mark:
            self.high_water_mark = val.equity
            val = replace(val, max_loss_floor=max_loss_floor(self))
        self._on_valued(checked, now, events)
        return events, val

    def _on_valued(self, val: Valuation, now: float, events: list[dict[str, Any]]) -> None:
        """The breaches and the challenge pass of :meth:`on_market`, on ``val`` (its floors as
        before the high-water mark moved)."""
        if self.status is not AccountStatus.ACTIVE:
            return
        loss = self.limits.loss
        if val.equity < val.daily_floor - MONEY_EPS:
            lost = val.daily_reference - val.equity
            if loss.daily_loss_mode is DailyLossMode.HARD:
                events.append(self._breach(ReasonCode.DAILY_LOSS_LIMIT, now, Cause.BREACH,
                                           **_breach_numbers(ReasonCode.DAILY_LOSS_LIMIT, loss.daily_loss_limit, lost,
                                                             val.daily_floor, val.equity, self.currency)))
            elif self.soft_blocked_day != self.trading_day:
                events.append(self._soft_breach(now, lost, val.daily_floor, val.equity))
        if val.equity < val.max_loss_floor - MONEY_EPS:
            lost = val.max_loss_floor + loss.max_loss_limit - val.equity
            events.append(self._breach(ReasonCode.MAX_LOSS_LIMIT, now, Cause.BREACH,
                                       **_breach_numbers(ReasonCode.MAX_LOSS_LIMIT, loss.max_loss_limit, lost,
                                                         val.max_loss_floor, val.equity, self.currency)))
        if (self.status is AccountStatus.ACTIVE and self.limits.objectives.profit_target is not None
                and not self.positions):
            progress = objectives(self, now)
            if progress["all_met"]:
                self._transition(AccountStatus.PASSED, Cause.OBJECTIVES_MET, now)
                self._record("challenge_passed", now, objectives=progress)

    # ================================================================== 6. status
    def _transition(self, to: AccountStatus, cause: Cause, at: float, code: str | None = None) -> None:
        """Change the status from the current one to ``to`` for ``cause``, with the cause's
        effects (:data:`TRANSITIONS`).

        Raises
        ------
        InvalidTransition
            The table has no such change for that cause; nothing is changed.
        """
        if cause not in TRANSITIONS.get((self.status, to), ()):
            raise InvalidTransition(self.account_id, f"status {self.status} → {to} is not allowed for {cause}")
        self.status = to
        if cause in _TRIPS_KILL_SWITCH:
            self.set_kill_switch(KillSwitch(KillScope.ACCOUNT, self.account_id, KillMode.REDUCE_ONLY,
                                            f"breach: {code}", "system", at, breach=True), at)
        if cause in _BLOCKS_THE_DAY:
            self.soft_blocked_day = self.trading_day

    def _breach(self, code: ReasonCode, at: float, cause: Cause, **data: Any) -> dict[str, Any]:
        """Record a breach of ``code``; an active account fails for ``cause``. Returns the
        event with ``account_id``."""
        event = self._record("breach", at, code=str(code), trading_day=self.trading_day.isoformat(), **data)
        self.breaches.append(event)
        if self.status is AccountStatus.ACTIVE:
            self._transition(AccountStatus.FAILED, cause, at, str(code))
        return {**event, "account_id": self.account_id}

    def _soft_breach(self, at: float, lost: float, floor: float, equity: float) -> dict[str, Any]:
        limit = self.limits.loss.daily_loss_limit
        day = self.trading_day.isoformat()
        self._transition(AccountStatus.ACTIVE, Cause.SOFT_DAILY_LOSS, at)
        event = self._record("soft_breach", at, code=str(ReasonCode.DAILY_LOSS_LIMIT), trading_day=day, limit=limit,
                             value=lost, floor=floor, equity=equity, blocked_day=day,
                             message=f"{ReasonCode.DAILY_LOSS_LIMIT} (soft): loss {lost:.2f} {self.currency} > "
                                     f"limit {limit:.2f}; new orders blocked until the next trading day")
        self.breaches.append(event)
        return {**event, "account_id": self.account_id, "soft": True}

    def set_status(self, status: AccountStatus, by: str, reason: str, now: float) -> None:
        """Set the status explicitly (ops action, cause ``ops``), recorded.

        Raises
        ------
        InvalidTransition
            ``passed`` (reached only by meeting the objectives).
        """
        before = self.status
        self._transition(AccountStatus(status), Cause.OPS, now)
        self._record("status_changed", now, before=str(before), after=str(self.status), by=by, reason=reason)

    # ================================================================== 7. ops
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

    def _add_recommendation(self, rec: dict[str, Any], now: float) -> None:
        for old in self.recommendations.values():
            if old["status"] == "pending":
                old["status"] = "superseded"
        self.losing_days = 0
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

    # ================================================================== projections
    def projected(self, at: float, latest: LatestMarks) -> Account:
        """The account as it will be at ``at`` if nothing but time happens: day rolled,
        reservations expired, time limit applied. ``self`` when nothing falls due by then;
        otherwise a copy (this account is not changed, nothing is recorded)."""
        if self.next_due() > at:
            return self
        twin = account_from_state(account_to_state(self), self.config)
        twin.advance(at, latest)
        return twin


def _breach_numbers(code: ReasonCode, limit: float, lost: float, floor: float, equity: float,
                    ccy: str) -> dict[str, Any]:
    return {"limit": limit, "value": lost, "floor": floor, "equity": equity,
            "message": f"{code}: loss {lost:.2f} {ccy} > limit {limit:.2f} (equity {equity:.2f} < floor {floor:.2f})"}


def account_from_state(state: dict[str, Any], config: AccountConfig) -> Account:
    """Rebuild the account :func:`~riskactors.domain.state.account_to_state` described
    (any stored version; see :func:`~riskactors.domain.state.state_fields`).

    ``Account.__init__`` is not run (it would record a second ``account_opened`` event): every
    field is set from ``state``; ``calendar`` is derived from the limits and ``config.calendar``.

    Raises
    ------
    TypeError, ValueError, LimitsError
        As :func:`~riskactors.domain.state.state_fields`.
    """
    acct = Account.__new__(Account)
    for name, v in state_fields(state).items():
        setattr(acct, name, v)
    acct.config = config
    acct.calendar = acct.limits.calendar(config.calendar)
    return acct
