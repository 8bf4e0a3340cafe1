"""The account state machine: one trading account's risk state and the events that change it.

State changes only through events — order checked (reservation), fill applied, order
cancelled, reservations expired, marks applied, trading day rolled, kill switch set or
released, limits changed — each recorded in ``events`` with a sequence number. Time is always
an argument (``now``, epoch seconds), never read here, so replays are exact.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from .checks import Snapshot, check_order
from .codes import AccountStatus, DailyLossReference, KillMode, KillScope, MaxLossMode, ReasonCode, Side
from .errors import ConversionUnavailable, FillConflict, InvalidFill, OrderConflict, UnknownInstrument, UnknownOrder
from .limits import Limits
from .marks import MarkBook
from .model import INACTIVE_KILL_SWITCH, LOT_EPS, MONEY_EPS, Decision, Fill, KillSwitch, Order, Position, Reservation
from .tradingday import TradingDayCalendar
from .valuation import margin_rate, position_floating

__all__ = ["Account", "AccountConfig"]

_MAX_REMEMBERED_ORDERS = 20_000
_MAX_EVENTS = 2_000
#: Fill ids remembered per account for idempotency; a retry older than this many later
#: fills of the same account would be applied again (documented limit).
_MAX_REMEMBERED_FILLS = 200_000


@dataclass(frozen=True)
class AccountConfig:
    """Host-level settings an account needs: reservation TTL (seconds) and the day calendar."""

    reservation_ttl: float = 30.0
    calendar: TradingDayCalendar = field(default_factory=TradingDayCalendar)


class Account:
    """Risk state of one account (netting: one position per instrument).

    Parameters
    ----------
    account_id, user_id, challenge_id : str
        Identity and the consolidation keys.
    currency : str
        Account currency (3-letter code); every money amount of the account is in it.
    initial_balance : float
        Starting balance, account currency, > 0.
    plan : str
        Name of the plan the limits came from.
    limits : Limits
        Resolved limits (plan + overrides).
    now : float
        Creation time, epoch seconds; fixes the first trading day.
    config : AccountConfig
    """

    def __init__(self, account_id: str, user_id: str, challenge_id: str, currency: str,
                 initial_balance: float, plan: str, limits: Limits, now: float,
                 config: AccountConfig | None = None):
        self.account_id = account_id
        self.user_id = user_id
        self.challenge_id = challenge_id
        self.currency = currency.upper()
        self.initial_balance = float(initial_balance)
        self.plan = plan
        self.limits = limits
        self.config = config or AccountConfig()
        self.created_at = now
        self.balance = self.initial_balance
        self.positions: dict[str, Position] = {}
        self.reservations: dict[str, Reservation] = {}
        # running [buy lots, sell lots] of reservations per instrument and an expiry heap, so a
        # check does not scan every outstanding reservation (kept by _reserve/_unreserve)
        self._reserved: dict[str, list[float]] = {}
        self._expiry: list[tuple[float, str]] = []
        self.status = AccountStatus.ACTIVE
        self.switches: dict[tuple[str, str | None], KillSwitch] = {}
        self.trading_day = self.config.calendar.day_of(now)
        self.trading_days = 1
        self.day_start_balance = self.balance
        self.day_start_equity = self.balance
        self.day_realized_pnl = 0.0
        self.high_water_mark = self.balance
        self.breaches: list[dict[str, Any]] = []
        self.events: deque[dict[str, Any]] = deque(maxlen=_MAX_EVENTS)
        self.event_seq = 0
        self._orders: OrderedDict[str, tuple[tuple, dict[str, Any]]] = OrderedDict()
        self._fills: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self._recent_checks: deque[float] = deque()
        self._record("account_opened", now, initial_balance=self.initial_balance, plan=plan,
                     limits=limits.to_dict())

    # ------------------------------------------------------------------ journal
    def _record(self, kind: str, at: float, **data: Any) -> dict[str, Any]:
        self.event_seq += 1
        event = {"seq": self.event_seq, "type": kind, "at": at, **data}
        self.events.append(event)
        return event

    # ------------------------------------------------------------------ valuation
    def snapshot(self, book: MarkBook) -> Snapshot:
        """Current valuation against ``book`` (see :mod:`riskactors.domain.valuation`)."""
        registry = book.registry
        floating = 0.0
        per_position: dict[str, tuple[float, float, float]] = {}
        for sym, pos in self.positions.items():
            inst = registry.get(sym)
            f, px, rate = position_floating(pos, inst, book, self.currency)
            per_position[sym] = (f, px, rate)
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
        """Initial balance (static) or equity high-water mark (trailing), account currency."""
        if self.limits.max_loss_mode is MaxLossMode.TRAILING:
            return self.high_water_mark
        return self.initial_balance

    # ------------------------------------------------------------------ time-driven events
    def advance(self, now: float, book: MarkBook) -> None:
        """Apply time-driven events due at ``now``: day roll and reservation expiry."""
        day = self.config.calendar.day_of(now)
        if day > self.trading_day:
            snap = self.snapshot(book)
            self.trading_day = day
            self.trading_days += 1
            self.day_start_balance = self.balance
            self.day_start_equity = snap.equity
            self.day_realized_pnl = 0.0
            self._record("day_rolled", now, trading_day=day.isoformat(),
                         start_balance=self.balance, start_equity=snap.equity)
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expires_at, oid = heapq.heappop(heap)
            r = self.reservations.get(oid)
            if r is None or r.expires_at != expires_at:
                continue  # already filled or cancelled
            self._unreserve(oid)
            self._record("reservation_expired", now, order_id=oid, instrument=r.instrument, quantity=r.quantity)

    # ------------------------------------------------------------------ reservation index
    def _reserve(self, r: Reservation) -> None:
        self.reservations[r.order_id] = r
        sums = self._reserved.setdefault(r.instrument, [0.0, 0.0, 0])
        sums[0 if r.quantity > 0 else 1] += r.quantity
        sums[2] += 1
        heapq.heappush(self._expiry, (r.expires_at, r.order_id))

    def _unreserve(self, order_id: str) -> Reservation:
        r = self.reservations.pop(order_id)
        sums = self._reserved[r.instrument]
        sums[0 if r.quantity > 0 else 1] -= r.quantity
        sums[2] -= 1
        if sums[2] == 0:
            del self._reserved[r.instrument]  # reset: no float drift survives an empty book
        return r

    def reserved_lots(self, instrument: str) -> tuple[float, float]:
        """(buy lots ≥ 0, sell lots ≤ 0) reserved on ``instrument`` by pending orders."""
        sums = self._reserved.get(instrument)
        return (sums[0], sums[1]) if sums else (0.0, 0.0)

    def reserved_instruments(self) -> dict[str, tuple[float, float]]:
        """Instrument → (buy lots, sell lots) of every pending reservation."""
        return {inst: (sums[0], sums[1]) for inst, sums in self._reserved.items()}

    # ------------------------------------------------------------------ checks
    def check(self, order: Order, book: MarkBook, now: float) -> Decision:
        """Pure pre-trade check of ``order`` against the current state (no state change).

        See :func:`riskactors.domain.checks.check_order` for every rule.
        """
        return check_order(self.snapshot(book), order, now)

    def submit(self, order: Order, book: MarkBook, now: float) -> dict[str, Any]:
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
        decision = self.check(order, book, now)
        if not any(r.code in (ReasonCode.INVALID_ORDER, ReasonCode.UNKNOWN_INSTRUMENT) for r in decision.reasons):
            self._recent_checks.append(now)
        if decision.accepted:
            side = Side(order.side)
            self._reserve(Reservation(
                order_id=order.order_id, instrument=order.instrument, quantity=side.sign * order.quantity,
                price=order.price, created_at=now, expires_at=now + self.config.reservation_ttl,
                reduces_position=decision.reduces_position))
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
        """Apply an execution report to position, balance, day P&L and reservation.

        Netting: a fill in the position's direction moves the average price; against it,
        realizes (fill price − average price) × closed lots × sign × contract size × rate
        (quote → account at the latest marks) and may flip the position at the fill price.
        Commission and swap are added to the balance as given (a charge is negative).

        Returns
        -------
        dict
            ``fill_id``, ``account_id``, ``duplicate``, ``realized_pnl`` (gross of commission
            and swap), ``net_pnl`` (realized + commission + swap), ``position`` (after),
            ``balance``, ``breach`` (list of breach events this fill caused).

        Raises
        ------
        FillConflict
            Same ``fill_id`` with different content.
        UnknownInstrument
            Instrument not in the registry.
        ConversionUnavailable
            No quote → account rate is known; nothing is changed.
        InvalidFill
            Side not buy/sell, or quantity / price not a finite number > 0; nothing is changed.
        """
        prior = self._fills.get(fill.fill_id)
        if prior is not None:
            if prior[0] != fill.fingerprint():
                raise FillConflict(fill.fill_id, "fill_id already applied with different content")
            return {**prior[1], "duplicate": True}
        inst = book.registry.get(fill.instrument)
        if inst is None:
            raise UnknownInstrument(fill.instrument, "instrument not in the registry")
        rate = book.rate(inst.quote_currency, self.currency)
        if rate is None:
            raise ConversionUnavailable(fill.instrument,
                                        f"no {inst.quote_currency}->{self.currency} rate from marks")
        if fill.side not in (Side.BUY.value, Side.SELL.value):
            raise InvalidFill(fill.fill_id, f"side must be buy or sell, got {fill.side!r}")
        sign = Side(fill.side).sign
        for name in ("quantity", "price"):
            v = getattr(fill, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise InvalidFill(fill.fill_id, f"{name} must be a finite number > 0, got {v!r}")
        self.advance(now, book)
        delta = sign * fill.quantity
        pos = self.positions.get(fill.instrument)
        realized = 0.0
        if pos is None:
            pos = Position(fill.instrument, delta, fill.price, now, fill.price, rate)
            self.positions[fill.instrument] = pos
        elif pos.quantity * delta > 0:
            total = abs(pos.quantity) + abs(delta)
            pos.average_price = (abs(pos.quantity) * pos.average_price + abs(delta) * fill.price) / total
            pos.quantity += delta
        else:
            closed = min(abs(delta), abs(pos.quantity))
            direction = 1.0 if pos.quantity > 0 else -1.0
            realized = (fill.price - pos.average_price) * closed * direction * inst.contract_size * rate
            pos.realized_pnl += realized
            new_qty = pos.quantity + delta
            if abs(new_qty) <= LOT_EPS:
                del self.positions[fill.instrument]
                pos.quantity = 0.0
            elif new_qty * pos.quantity < 0:  # flipped through flat
                pos.quantity = new_qty
                pos.average_price = fill.price
                pos.opened_at = now
            else:
                pos.quantity = new_qty
        pos.last_price = fill.price
        pos.last_conversion = rate
        net = realized + fill.commission + fill.swap
        self.balance += net
        self.day_realized_pnl += net
        if fill.order_id is not None:
            r = self.reservations.get(fill.order_id)
            if r is not None and r.instrument == fill.instrument:
                remaining = r.quantity - delta if r.quantity * delta > 0 else r.quantity
                if abs(remaining) <= LOT_EPS or remaining * r.quantity < 0:
                    self._unreserve(fill.order_id)
                else:
                    self._reserved[r.instrument][0 if r.quantity > 0 else 1] += remaining - r.quantity
                    r.quantity = remaining
        position_view = self._position_view(pos, inst, book) if fill.instrument in self.positions else None
        self._record("fill_applied", now, fill_id=fill.fill_id, order_id=fill.order_id,
                     instrument=fill.instrument, side=fill.side, quantity=fill.quantity, price=fill.price,
                     realized_pnl=realized, commission=fill.commission, swap=fill.swap)
        breaches = self.on_market(book, now)
        result = {"fill_id": fill.fill_id, "account_id": self.account_id, "duplicate": False,
                  "realized_pnl": realized, "net_pnl": net, "position": position_view,
                  "balance": self.balance, "breach": breaches}
        self._fills[fill.fill_id] = (fill.fingerprint(), result)
        if len(self._fills) > _MAX_REMEMBERED_FILLS:  # oldest first (dicts keep insertion order)
            del self._fills[next(iter(self._fills))]
        return result

    # ------------------------------------------------------------------ marks and breaches
    def on_market(self, book: MarkBook, now: float) -> list[dict[str, Any]]:
        """Re-value after new marks (or a fill): high-water mark and hard-rule breaches.

        Breach (prop-firm style, equity includes floating P&L, commission and swap):
        ``DAILY_LOSS_LIMIT`` when equity < daily reference − daily loss limit;
        ``MAX_LOSS_LIMIT`` when equity < max-loss reference − max loss limit (each with
        tolerance :data:`MONEY_EPS`). A breach sets status ``failed`` and trips the account
        kill switch in ``reduce_only`` so the firm can still flatten the account.

        Returns
        -------
        list of dict
            Breach events caused now (empty if none).
        """
        self.advance(now, book)
        snap = self.snapshot(book)
        for sym, (_, px, rate) in snap.per_position.items():
            pos = self.positions[sym]
            pos.last_price = px
            pos.last_conversion = rate
        self.high_water_mark = max(self.high_water_mark, snap.equity)
        if self.status is not AccountStatus.ACTIVE:
            return []
        found = []
        daily_floor = self.daily_reference() - self.limits.daily_loss_limit
        if snap.equity < daily_floor - MONEY_EPS:
            found.append((ReasonCode.DAILY_LOSS_LIMIT, self.limits.daily_loss_limit,
                          self.daily_reference() - snap.equity, daily_floor))
        max_floor = self.max_loss_reference() - self.limits.max_loss_limit
        if snap.equity < max_floor - MONEY_EPS:
            found.append((ReasonCode.MAX_LOSS_LIMIT, self.limits.max_loss_limit,
                          self.max_loss_reference() - snap.equity, max_floor))
        if not found:
            return []
        self.status = AccountStatus.FAILED
        events = []
        for code, limit, loss, floor in found:
            event = self._record("breach", now, code=str(code), limit=limit, value=loss, floor=floor,
                                 equity=snap.equity,
                                 message=f"{code}: loss {loss:.2f} {self.currency} > limit {limit:.2f} "
                                         f"(equity {snap.equity:.2f} < floor {floor:.2f})")
            self.breaches.append(event)
            events.append({**event, "account_id": self.account_id})
        first = found[0][0]
        self.set_kill_switch(KillSwitch(KillScope.ACCOUNT, self.account_id, KillMode.REDUCE_ONLY,
                                        f"breach: {first}", "system", now, breach=True), now)
        return events

    # ------------------------------------------------------------------ kill switches and limits
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
        self._record("limits_changed", now, by=by, reason=reason, before=before, after=limits.to_dict())

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

    # ------------------------------------------------------------------ views
    def _position_view(self, pos: Position, inst, book: MarkBook) -> dict[str, Any]:
        f, px, rate = position_floating(pos, inst, book, self.currency)
        mark = book.get(pos.instrument)
        mid = mark.mid if mark is not None else px  # notional at mid, as in the checks (valuation docs)
        return {"instrument": pos.instrument, "quantity": pos.quantity, "average_price": pos.average_price,
                "mark_price": px, "floating_pnl": f, "realized_pnl": pos.realized_pnl,
                "notional": abs(pos.quantity) * inst.contract_size * mid * rate,
                "quote_currency": inst.quote_currency, "opened_at": pos.opened_at}

    def view(self, book: MarkBook, now: float | None = None) -> dict[str, Any]:
        """The account view of the HTTP contract (money in account currency).

        ``margin_level`` is per cent (``None`` when no margin is used), ``leverage`` is ×
        (``None`` when equity ≤ 0), ``risk_score`` 0–100.
        """
        snap = self.snapshot(book)
        registry = book.registry
        positions = [self._position_view(p, registry.get(s), book) for s, p in sorted(self.positions.items())]
        margin_used = sum(p["notional"] * margin_rate(registry.get(p["instrument"]), self.limits)
                          for p in positions)
        notional = sum(p["notional"] for p in positions)
        equity = snap.equity
        metrics = snap.metrics(margin_used, notional, len(positions))
        reserved_margin = sum(snap.reservation_margin(r) for r in self.reservations.values())
        return {
            "account_id": self.account_id,
            "user_id": self.user_id,
            "challenge_id": self.challenge_id,
            "currency": self.currency,
            "plan": self.plan,
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
            "warnings": [w.to_dict() for w in metrics["warnings"]],
            "trading_day": self.trading_day.isoformat(),
            "trading_days": self.trading_days,
            "day_start_balance": self.day_start_balance,
            "day_start_equity": self.day_start_equity,
            "daily_loss": metrics["daily_loss"],
            "daily_loss_floor": self.daily_reference() - self.limits.daily_loss_limit,
            "max_loss": metrics["max_loss"],
            "max_loss_floor": self.max_loss_reference() - self.limits.max_loss_limit,
            "high_water_mark": self.high_water_mark,
            "breaches": list(self.breaches),
            "created_at": self.created_at,
        }

    def summary(self, book: MarkBook) -> dict[str, Any]:
        """Compact figures for consolidation (see :mod:`riskactors.domain.aggregate`)."""
        v = self.view(book)
        headroom = min(
            (v["equity"] - v["daily_loss_floor"]) / self.limits.daily_loss_limit,
            (v["equity"] - v["max_loss_floor"]) / self.limits.max_loss_limit,
        )
        exposure = {}
        for p in v["positions"]:
            inst = book.registry.get(p["instrument"])
            mark = book.get(p["instrument"])
            mid = mark.mid if mark is not None else p["mark_price"]  # at mid, like the view's notional
            exposure[p["instrument"]] = {
                "net_lots": p["quantity"], "gross_lots": abs(p["quantity"]),
                "quote_currency": inst.quote_currency,
                "net_notional_quote": p["quantity"] * inst.contract_size * mid,
                "gross_notional_quote": abs(p["quantity"]) * inst.contract_size * mid,
            }
        return {
            "account_id": self.account_id, "user_id": self.user_id, "challenge_id": self.challenge_id,
            "currency": self.currency, "status": v["status"], "balance": v["balance"], "equity": v["equity"],
            "daily_pnl": v["daily_pnl"], "risk_score": v["risk_score"], "warnings": [w["code"] for w in v["warnings"]],
            "breached": bool(self.breaches), "killed": v["kill_switch"]["active"],
            "breach_headroom": headroom, "exposure": exposure,
        }
