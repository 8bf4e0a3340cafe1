"""Property tests of one account and one mark marks under random call sequences (hypothesis).

A drawn program mixes order checks (``Account.submit``, retries of earlier orders included),
fills (of pending orders: partial, whole, beyond the order or on the other side; unsolicited ones; hedging fills naming a ticket,
some closing more than the ticket holds; duplicates of earlier fills), cancels, marks
(``LatestMarks.apply`` then ``Account.on_market``), time advancing across reservation expiries and
trading-day rolls (``Account.advance``) and views, with a strictly non-decreasing ``now``, on a
USD account (netting or hedging; the ``moderate``, ``one_step_trailing`` or ``two_step_phase1``
plan) trading EURUSD, XAUUSD and USDJPY near real prices. Every call is first resolved into a
concrete one (its arguments and ``now``) so it can be replayed.

Invariants checked after every step:

1. equity = balance + floating P&L (``acct.snapshot``), and the floating P&L is the documented
   formula Σ (exit − average) × lots × contract size × rate, within 1e-6 × scale;
2. reservation bookkeeping: the running sums per instrument equal a recomputation over
   ``reservations``; buy sums ≥ −1e-9 and sell sums ≤ 1e-9; no reservation holds 0 lots or a
   sign other than its order's side; the opening count matches and ``pending_opening_orders()``
   ≥ 0; each live reservation has its entry on the expiry heap, which keeps the heap property;
3. a call that raises (conflicting retry, invalid fill, unknown order) leaves the state unchanged;
4. accepted exposure is within the limits at the moment of acceptance — see
   :func:`assert_within_limits_after_acceptance` for exactly what is asserted;

and at the end of a program:

5. replaying the recorded calls on a fresh account built with the same constructor arguments
   returns equal results for every call and ends in an equal ``account_to_state``; restoring
   from a state (and marks state) taken in the middle (through msgpack) and applying the rest
   gives the same results and the same final state.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unitkit import T0, make_limits, make_marks

from riskactors.domain import (
    Account,
    AccountConfig,
    AccountStatus,
    DomainError,
    Fill,
    LatestMarks,
    Mark,
    Order,
    Side,
    account_from_state,
    account_to_state,
    default_registry,
    marks_from_state,
    marks_to_state,
)
from riskactors.domain.model import LOT_EPS, MONEY_EPS
from riskactors.domain.valuation import effective_lots, instrument_exposure, max_loss_floor, price_of, rate_of, value
from riskactors.domain.views import account_summary, account_view

CFG = AccountConfig()
SYMBOLS = ("EURUSD", "XAUUSD", "USDJPY")
START = {"EURUSD": (1.08000, 1.08010), "XAUUSD": (3300.00, 3300.30), "USDJPY": (145.000, 145.020)}
POINT = {"EURUSD": 0.00001, "XAUUSD": 0.01, "USDJPY": 0.001}
DIGITS = {"EURUSD": 5, "XAUUSD": 2, "USDJPY": 3}
#: plan → (initial balance, limit overrides)
PLANS = {
    "moderate": (10_000.0, {}),
    "one_step_trailing": (100_000.0, {"max_position_lots": 2.0, "margin_call_level": 400.0}),
    "two_step_phase1": (100_000.0, {"max_daily_trades": 6, "cooldown_seconds": 120.0, "max_position_lots": 3.0,
                                    "max_open_positions": 4}),
}
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def market() -> LatestMarks:
    return make_marks(*((s, bid, ask, T0) for s, (bid, ask) in START.items()))


# ---------------------------------------------------------------------- the drawn program
dts = st.sampled_from([0.0, 0.0, 0.25, 1.0, 3.0, 12.0, 31.0])
op_check = st.tuples(st.just("check"), st.sampled_from(SYMBOLS), st.sampled_from(["buy", "sell"]),
                     st.one_of(st.integers(1, 60), st.integers(1, 300)), st.sampled_from(["market", "market", "limit"]),
                     st.one_of(st.none(), st.integers(5, 400)), st.one_of(st.none(), st.integers(0, 5)), dts)
op_retry = st.tuples(st.just("retry"), st.integers(0, 50), st.booleans(), dts)
op_fill = st.tuples(st.just("fill"), st.integers(0, 20), st.sampled_from([0.25, 0.5, 1.0, 1.0, 1.5]),
                    st.integers(-5, 5), st.integers(0, 7).map(lambda n: n == 0), dts)
op_free_fill = st.tuples(st.just("free_fill"), st.sampled_from(SYMBOLS), st.sampled_from(["buy", "sell"]),
                         st.integers(1, 80), st.one_of(st.none(), st.integers(0, 5)), st.booleans(), dts)
op_fill_again = st.tuples(st.just("fill_again"), st.integers(0, 50), dts)
op_cancel = st.tuples(st.just("cancel"), st.integers(0, 50), st.integers(0, 9).map(lambda n: n == 0), dts)
op_mark = st.tuples(st.just("mark"), st.sampled_from(SYMBOLS), st.integers(-150, 150), st.integers(0, 3), dts)
op_advance = st.tuples(st.just("advance"), st.sampled_from([0.5, 40.0, 900.0, 6 * 3600.0, 86_400.0, 2.5 * 86_400.0]))
op_view = st.tuples(st.just("view"), dts)
ops = st.one_of(op_check, op_check, op_retry, op_fill, op_fill, op_free_fill, op_fill_again, op_cancel, op_mark,
                op_mark, op_advance, op_view)


@dataclass
class Call:
    """One concrete call: ``kind`` (submit, fill, cancel, mark, advance, view), its argument, ``now``."""

    kind: str
    arg: Any
    now: float


@dataclass
class Driver:
    """Resolves drawn ops into concrete calls against the current state and runs them."""

    acct: Account
    marks: LatestMarks
    now: float = T0
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    seq: int = 0

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    def quote(self, symbol: str, side: str, bps: int = 0) -> float:
        m = self.marks.get(symbol)
        px = m.ask if side == "buy" else m.bid
        return round(px * (1 + bps / 10_000), DIGITS[symbol])

    def resolve(self, op: tuple) -> Call | None:
        kind = op[0]
        self.now += op[-1]
        now = self.now
        if kind == "check":
            _, sym, side, steps, how, sl_bps, ticket, _ = op
            qty = steps / 100
            price = self.quote(sym, side, -10 if side == "buy" else 10) if how == "limit" else None
            entry = price if price is not None else self.quote(sym, side)
            sl = None if sl_bps is None else round(entry * (1 - Side(side).sign * sl_bps / 10_000), DIGITS[sym])
            position_id = None
            if ticket is not None and self.acct.hedging and self.acct.positions:
                pos = list(self.acct.positions.values())[ticket % len(self.acct.positions)]
                sym, position_id = pos.instrument, pos.position_id
                side = "sell" if pos.quantity > 0 else "buy"
                qty = min(qty, round(abs(pos.quantity), 2)) or 0.01
                sl = None
            o = Order(self.next_id("o"), "acc-1", sym, side, qty, now, price, sl, None, position_id)
            self.orders.append(o)
            return Call("submit", o, now)
        if kind == "retry":
            _, index, same, _ = op
            if not self.orders:
                return None
            o = self.orders[index % len(self.orders)]
            return Call("submit", o if same else replace(o, quantity=o.quantity + 0.01), now)
        if kind == "fill":
            _, index, fraction, slip, other_side, _ = op
            if not self.acct.reservations:
                return None
            r = list(self.acct.reservations.values())[index % len(self.acct.reservations)]
            qty = max(0.01, round(abs(r.quantity) * fraction, 2))  # 1.5: more than reserved
            side = "buy" if (r.quantity > 0) != other_side else "sell"  # other_side: a broker surprise
            f = Fill(self.next_id("f"), "acc-1", r.instrument, side, qty, self.quote(r.instrument, side, slip), now,
                     r.order_id, commission=-round(3.5 * qty, 2))
            self.fills.append(f)
            return Call("fill", f, now)
        if kind == "free_fill":
            _, sym, side, steps, ticket, over, _ = op
            qty, position_id = steps / 100, None
            if ticket is not None and self.acct.hedging and self.acct.positions:
                pos = list(self.acct.positions.values())[ticket % len(self.acct.positions)]
                sym, position_id = pos.instrument, pos.position_id
                side = "sell" if pos.quantity > 0 else "buy"
                qty = round(abs(pos.quantity) + (0.01 if over else 0.0), 2)
            f = Fill(self.next_id("f"), "acc-1", sym, side, qty, self.quote(sym, side), now,
                     commission=-round(3.5 * qty, 2), position_id=position_id)
            self.fills.append(f)
            return Call("fill", f, now)
        if kind == "fill_again":
            _, index, _ = op
            return Call("fill", self.fills[index % len(self.fills)], now) if self.fills else None
        if kind == "cancel":
            _, index, unknown, _ = op
            if unknown or not self.orders:
                return Call("cancel", "never-checked", now)
            return Call("cancel", self.orders[index % len(self.orders)].order_id, now)
        if kind == "mark":
            _, sym, bps, spread, _ = op
            mid = self.marks.get(sym).mid * (1 + bps / 10_000)
            bid = round(mid, DIGITS[sym])
            return Call("mark", Mark(sym, bid, round(bid + spread * POINT[sym], DIGITS[sym]), now), now)
        if kind == "advance":
            return Call("advance", None, now)
        return Call("view", None, now)


def run(acct: Account, marks: LatestMarks, call: Call) -> tuple:
    """Run ``call``; its result, or the domain error it raised (type and message)."""
    try:
        if call.kind == "submit":
            return ("ok", acct.submit(call.arg, marks, call.now))
        if call.kind == "fill":
            return ("ok", acct.apply_fill(call.arg, marks, call.now))
        if call.kind == "cancel":
            return ("ok", acct.cancel(call.arg, call.now))
        if call.kind == "mark":
            return ("ok", marks.apply(call.arg), acct.on_market(marks, call.now))
        if call.kind == "advance":
            return ("ok", acct.advance(call.now, marks))
        return ("ok", account_view(acct, marks, call.now), account_summary(acct, marks, call.now))
    except DomainError as exc:
        return ("error", type(exc).__name__, str(exc))


# ---------------------------------------------------------------------- invariants
def assert_equity_is_balance_plus_floating(acct: Account, marks: LatestMarks) -> None:
    snap = value(acct, marks)
    registry = marks.registry
    reference = 0.0
    scale = max(1.0, abs(acct.balance))
    for p in acct.positions.values():
        inst = registry.get(p.instrument)
        mark = marks.get(p.instrument)
        exit_price = mark.bid if p.quantity > 0 else mark.ask
        rate = marks.rate(inst.quote_currency, acct.currency)
        term = (exit_price - p.average_price) * p.quantity * inst.contract_size * rate
        reference += term
        scale = max(scale, abs(term), abs(p.quantity) * inst.contract_size * mark.mid * rate)
    tol = 1e-6 * scale
    assert abs(snap.equity - (acct.balance + snap.floating_pnl)) <= tol
    assert abs(snap.floating_pnl - reference) <= tol


def assert_reservation_bookkeeping(acct: Account) -> None:
    expected: dict[str, list[float]] = {}
    sides = {oid: fp[1] for oid, (fp, _) in acct.orders.items()}
    for oid, r in acct.reservations.items():
        assert oid == r.order_id
        assert abs(r.quantity) > LOT_EPS, f"reservation {oid} holds {r.quantity} lots"
        if oid in sides:
            assert math.copysign(1, r.quantity) == Side(sides[oid]).sign, f"reservation {oid} has the wrong sign"
        sums = expected.setdefault(r.instrument, [0.0, 0.0, 0, 0.0, 0.0])
        side = 0 if r.quantity > 0 else 1
        sums[side] += r.quantity
        sums[2] += 1
        if not r.reduces_position:
            sums[3 + side] += r.quantity
    assert expected.keys() == acct.reserved.keys()
    for inst, sums in acct.reserved.items():
        want = expected[inst]
        assert sums[2] == want[2]
        for i in (0, 1, 3, 4):
            assert abs(sums[i] - want[i]) <= 1e-9, (inst, i, sums, want)
        assert sums[0] >= -1e-9 and sums[3] >= -1e-9 and sums[1] <= 1e-9 and sums[4] <= 1e-9
    opening = sum(1 for r in acct.reservations.values() if not r.reduces_position)
    assert acct.pending_opening_orders() == opening >= 0
    heap_entries = set(acct.expiry)
    for oid, r in acct.reservations.items():
        assert (r.expires_at, oid) in heap_entries
    heap = acct.expiry
    assert all(heap[(i - 1) // 2] <= heap[i] for i in range(1, len(heap)))


def open_before(acct: Account, order: Order) -> bool:
    """Netting: is ``order.instrument`` open (position or reservation, worst case > 0) now?"""
    pos = acct.positions.get(order.instrument)
    net = pos.quantity if pos is not None else 0.0
    buys, sells = acct.reserved_lots(order.instrument)
    return max(abs(net + buys), abs(net + sells)) > LOT_EPS


def assert_within_limits_after_acceptance(acct: Account, marks: LatestMarks, order: Order, was_open: bool) -> None:
    """The state right after ``submit`` accepted ``order`` (opening exposure) obeys the exposure
    rules of :mod:`riskactors.domain.checks`, recomputed from the account's public figures —
    ``held_lots``, ``reserved_lots`` / ``reserved_instruments``, ``pending_opening_orders``,
    ``snapshot`` (``price_of``, ``rate_of``, ``margin_allowed``, ``equity``), ``daily_reference``,
    :func:`max_loss_floor`, :func:`effective_lots` and :func:`instrument_exposure` — the helpers
    the check itself uses, with the order now held as a reservation:

    - MAX_POSITION_SIZE: netting max(|net + buys|, |net + sells|) on the instrument; hedging
      max(long + opening buys, short + opening sells) — ≤ ``max_position_lots``;
    - MAX_OPEN_POSITIONS: netting, when the instrument was not open before, instruments whose
      worst case is > 0; hedging, tickets + opening reservations — ≤ ``max_open_positions``;
    - MAX_LEVERAGE: Σ notional of the worst-case lots (hedging: :func:`effective_lots`,
      maximised over which pending side fills) at mid / equity ≤ ``max_leverage``, equity > 0;
    - INSUFFICIENT_MARGIN: Σ margin of those lots ≤ ``margin_allowed()``;
    - DAILY_LOSS_LIMIT / MAX_LOSS_LIMIT: loss so far + the order's loss at its stop-loss ≤ limit;
    - the account is active, without kill switch, not soft-blocked, within the rate window, and
      (when the plan sets them) within ``max_daily_trades`` and past the cooldown.

    (Reducing orders are exempt from these rules and are not asserted here.) Tolerances are the
    check's (``LOT_EPS``, ``MONEY_EPS``) plus 1e-9 relative for summation order.
    """
    limits = acct.limits
    now = order.ts
    snap = value(acct, marks)
    registry = marks.registry
    lots: dict[str, float] = {}
    if acct.hedging:
        held = acct.held_lots()
        for s in set(held) | set(acct.reserved_instruments(opening_only=True)):
            long_, short = held.get(s, (0.0, 0.0))
            buys, sells = acct.reserved_lots(s, opening_only=True)
            lots[s] = max(effective_lots(long_ + x, short + y, limits.exposure.hedged_margin_factor)
                          for x in (0.0, buys) for y in (0.0, -sells))
        long_, short = held.get(order.instrument, (0.0, 0.0))
        buys, sells = acct.reserved_lots(order.instrument, opening_only=True)
        size = max(long_ + buys, short - sells)
        assert len(acct.positions) + acct.pending_opening_orders() <= limits.exposure.max_open_positions
    else:
        for s in set(acct.positions) | set(acct.reserved_instruments()):
            pos = acct.positions.get(s)
            net = pos.quantity if pos is not None else 0.0
            buys, sells = acct.reserved_lots(s)
            lots[s] = max(abs(net + buys), abs(net + sells))
        size = lots[order.instrument]
        if not was_open:
            assert sum(1 for v in lots.values() if v > LOT_EPS) <= limits.exposure.max_open_positions
    assert size <= limits.exposure.max_position_lots + LOT_EPS
    notional = margin = 0.0
    for s, n in lots.items():
        if n <= LOT_EPS:
            continue
        inst = registry.get(s)
        e = instrument_exposure(inst, n, price_of(acct, marks, s), rate_of(acct, marks, inst.quote_currency, s), limits)
        notional += e.notional
        margin += e.margin
    assert snap.equity > 0
    assert notional / snap.equity <= limits.exposure.max_leverage * (1 + 1e-9) + 1e-12
    assert margin <= snap.margin_allowed * (1 + 1e-9) + MONEY_EPS
    inst = registry.get(order.instrument)
    mark = marks.get(order.instrument)
    sign = Side(order.side).sign
    entry = order.price if order.price is not None else (mark.ask if sign > 0 else mark.bid)
    rate = marks.rate(inst.quote_currency, acct.currency)
    sl_loss = 0.0 if order.stop_loss is None else \
        max(0.0, (entry - order.stop_loss) * sign) * order.quantity * inst.contract_size * rate
    assert acct.daily_reference() - snap.equity + sl_loss <= limits.loss.daily_loss_limit + MONEY_EPS
    assert max_loss_floor(acct) + limits.loss.max_loss_limit - snap.equity + sl_loss <= limits.loss.max_loss_limit + MONEY_EPS
    assert acct.status is AccountStatus.ACTIVE and not acct.switches
    assert acct.soft_blocked_day != acct.trading_day
    assert sum(1 for t in acct.recent_checks if now - 1.0 < t <= now) <= limits.orders.max_orders_per_second
    if limits.orders.max_daily_trades is not None:
        assert acct.day_opened_trades + acct.pending_opening_orders() <= limits.orders.max_daily_trades
    if limits.orders.cooldown_seconds is not None and acct.last_losing_close is not None:
        assert now >= acct.last_losing_close + limits.orders.cooldown_seconds


# ---------------------------------------------------------------------- the properties
def new_account(plan: str, mode: str) -> Account:
    balance, overrides = PLANS[plan]
    return Account("acc-1", "user-1", "ch-1", "USD", balance, plan, make_limits(plan, balance, **overrides), T0,
                   CFG, position_mode=mode)


def through_msgpack(x):
    return msgpack.unpackb(msgpack.packb(x, strict_types=True), strict_map_key=True)


@PROPERTY_SETTINGS
@given(plan=st.sampled_from(sorted(PLANS)), mode=st.sampled_from(["netting", "hedging"]),
       program=st.lists(ops, min_size=10, max_size=40), cut=st.floats(0.0, 1.0))
def test_random_call_sequences_keep_the_invariants_and_replay_exactly(plan, mode, program, cut):
    driver = Driver(new_account(plan, mode), market())
    acct, marks = driver.acct, driver.marks
    calls: list[Call] = []
    results: list[tuple] = []
    middle = min(len(program), int(cut * (len(program) + 1)))
    snapshot = None
    for i, op in enumerate(program):
        if i == middle:
            snapshot = (len(calls), through_msgpack(account_to_state(acct)), through_msgpack(marks_to_state(marks)))
        call = driver.resolve(op)
        if call is None:
            continue
        before = account_to_state(acct)
        was_open = call.kind == "submit" and not acct.hedging and open_before(acct, call.arg)
        known = call.kind == "submit" and call.arg.order_id in acct.orders
        result = run(acct, marks, call)
        calls.append(call)
        results.append(result)
        if result[0] == "error":  # a refused call changes nothing
            assert account_to_state(acct) == before, result
        elif call.kind == "submit" and not known and result[1]["decision"] == "accept" \
                and not result[1]["reduces_position"]:
            assert_within_limits_after_acceptance(acct, marks, call.arg, was_open)
        assert_equity_is_balance_plus_floating(acct, marks)
        assert_reservation_bookkeeping(acct)
    if snapshot is None:
        snapshot = (len(calls), through_msgpack(account_to_state(acct)), through_msgpack(marks_to_state(marks)))
    final = account_to_state(acct)

    # replay from scratch: same constructor arguments, same calls → same results, same state
    fresh, fresh_book = new_account(plan, mode), market()
    assert [run(fresh, fresh_book, c) for c in calls] == results
    assert account_to_state(fresh) == final
    assert marks_to_state(fresh_book) == marks_to_state(marks)

    # restore from the middle, apply the rest → same results from there, same final state
    k, acct_state, marks_state = snapshot
    restored = account_from_state(acct_state, CFG)
    restored_book = marks_from_state(marks_state, default_registry())
    assert [run(restored, restored_book, c) for c in calls[k:]] == results[k:]
    assert account_to_state(restored) == final


@PROPERTY_SETTINGS
@given(program=st.lists(ops, min_size=1, max_size=25), mode=st.sampled_from(["netting", "hedging"]))
def test_state_round_trip_is_exact_after_any_call_sequence(program, mode):
    driver = Driver(new_account("moderate", mode), market())
    for op in program:
        call = driver.resolve(op)
        if call is not None:
            run(driver.acct, driver.marks, call)
    state = account_to_state(driver.acct)
    assert through_msgpack(state) == state
    assert account_to_state(account_from_state(state, CFG)) == state
    marks_state = marks_to_state(driver.marks)
    assert marks_to_state(marks_from_state(through_msgpack(marks_state), default_registry())) == marks_state


def test_the_invariant_helpers_catch_broken_bookkeeping():
    # guard against vacuous invariants: corrupt the running sums and the heap, expect failures
    acct, marks = new_account("moderate", "netting"), market()
    o = Order("o1", "acc-1", "EURUSD", "buy", 0.1, T0)
    assert acct.submit(o, marks, T0)["decision"] == "accept"
    assert_within_limits_after_acceptance(acct, marks, o, was_open=False)
    assert_reservation_bookkeeping(acct)
    acct.reserved["EURUSD"][0] += 0.01
    try:
        assert_reservation_bookkeeping(acct)
    except AssertionError:
        pass
    else:  # pragma: no cover
        raise AssertionError("corrupted running sums went unnoticed")
    acct.reserved["EURUSD"][0] -= 0.01
    heapq.heappop(acct.expiry)
    try:
        assert_reservation_bookkeeping(acct)
    except AssertionError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a reservation missing from the expiry heap went unnoticed")
