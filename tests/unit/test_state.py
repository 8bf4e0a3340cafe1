"""Exact state serialization of the pure core (``riskactors.domain.state``).

Accounts are driven into many states (netting and hedging, positions, partly filled and
pending reservations, stale expiry-heap entries, kill switches, closed trades, recommendations,
soft and hard breaches, a passed challenge, day rolls, integer timestamps). For each:

- the state round trip is exact, attribute by attribute (order, types, deque maxlen included);
- the state holds only msgpack-safe plain types and survives a msgpack round trip unchanged;
- a restored account (from the msgpack bytes) and the original return identical results for
  the same further calls, and end in the same state.

Prices are near real levels (EURUSD 1.08, XAUUSD 3,300, USDJPY 145) on USD accounts.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import OrderedDict, deque
from datetime import date

import msgpack
import pytest
from unitkit import T0, make_account, make_limits, make_marks, set_mark

from riskactors.domain import (
    STATE_VERSION,
    Account,
    AccountConfig,
    AccountStatus,
    CalendarEvent,
    ClosedTrade,
    DomainError,
    Fill,
    KillMode,
    KillScope,
    KillSwitch,
    LatestMarks,
    Limits,
    LimitsError,
    NewsCalendar,
    Order,
    Position,
    Reservation,
    TradingDayCalendar,
    account_from_state,
    account_to_state,
    default_plan_registry,
    default_registry,
    marks_from_state,
    marks_to_state,
    news_from_state,
    news_to_state,
)
from riskactors.domain import state as state_module
from riskactors.domain.accountstate import AccountState, collect_codecs, stored_fields
from riskactors.domain.views import account_summary, account_view, size_position

CFG = AccountConfig()
DAY = 86_400.0
PLAIN_ATOMS = (type(None), bool, int, float, str)


# ---------------------------------------------------------------------- helpers
def market(ts: float = T0) -> LatestMarks:
    """EURUSD, XAUUSD and USDJPY marked near real levels (USD account: USDJPY gives JPY→USD)."""
    return make_marks(("EURUSD", 1.0800, 1.0801, ts), ("XAUUSD", 3300.0, 3300.3, ts), ("USDJPY", 145.00, 145.02, ts))


def order(oid: str, instrument: str, side: str, qty: float, ts: float, *, price=None, sl=None, tp=None,
          position_id=None) -> Order:
    return Order(oid, "acc-1", instrument, side, qty, ts, price, sl, tp, position_id)


def fill(fid: str, instrument: str, side: str, qty: float, price: float, ts: float, *, order_id=None,
         commission: float = 0.0, position_id=None) -> Fill:
    return Fill(fid, "acc-1", instrument, side, qty, price, ts, order_id, commission, 0.0, position_id)


def accept(acct: Account, marks: LatestMarks, o: Order, now: float) -> dict:
    d = acct.submit(o, marks, now)
    assert d["decision"] == "accept", d["reasons"]
    return d


def move(acct: Account, marks: LatestMarks, symbol: str, bid: float, ask: float, now: float) -> list:
    set_mark(marks, symbol, bid, ask, now)
    return acct.on_market(marks, now)


def assert_plain(x, path: str = "state") -> None:
    """Every value is None/bool/int/float/str (exact types) or a list/dict of them, str keys."""
    if type(x) in PLAIN_ATOMS:
        return
    if type(x) is list:
        for i, v in enumerate(x):
            assert_plain(v, f"{path}[{i}]")
        return
    assert type(x) is dict, f"{path}: {type(x).__name__} is not plain data"
    for k, v in x.items():
        assert type(k) is str, f"{path}: key {k!r} is not a str"
        assert_plain(v, f"{path}.{k}")


def msgpack_round_trip(state):
    """``state`` through msgpack with strict types (no tuples, no subclasses) and back."""
    packed = msgpack.packb(state, strict_types=True)
    return msgpack.unpackb(packed, strict_map_key=True)


def assert_same_attributes(a: Account, b: Account) -> None:
    """Attribute-by-attribute equality, mapping order, container types and deque maxlen included."""
    names = [f.name for f in dataclasses.fields(a)]
    assert names == [f.name for f in dataclasses.fields(b)]
    for name, va in ((n, getattr(a, n)) for n in names):
        vb = getattr(b, name)
        assert type(va) is type(vb), name
        assert va == vb, name
        if isinstance(va, dict):
            assert list(va.items()) == list(vb.items()), f"{name}: order differs"
            assert [type(k) for k in va] == [type(k) for k in vb], name
        if isinstance(va, deque):
            assert va.maxlen == vb.maxlen, name
        if isinstance(va, (list, deque)):
            assert [type(v) for v in va] == [type(v) for v in vb], name
    for (fa, _), (fb, _) in zip(a.orders.values(), b.orders.values(), strict=True):
        assert type(fa) is tuple and type(fb) is tuple and fa == fb
    for (fa, _), (fb, _) in zip(a.fills.values(), b.fills.values(), strict=True):
        assert type(fa) is tuple and type(fb) is tuple and fa == fb
    assert all(type(e) is tuple for e in b.expiry)
    for key, p in a.positions.items():  # every field, by value and type (hedging-ticket fields too)
        q = b.positions[key]
        for f in dataclasses.fields(Position):
            assert type(getattr(p, f.name)) is type(getattr(q, f.name)), f.name
            assert getattr(p, f.name) == getattr(q, f.name), f.name


# ---------------------------------------------------------------------- scenarios
def fresh_netting():
    return make_account("moderate", 10_000), market(), T0


def netting_busy():
    """Positions on three instruments, a partly filled and a pending reservation, a cancelled one
    and an expired one (stale heap entries), a closed trade, two kill switches, moved marks."""
    acct, marks, now = make_account("moderate", 100_000), market(), T0
    accept(acct, marks, order("o-1", "EURUSD", "buy", 0.5, now, sl=1.076), now)
    acct.apply_fill(fill("f-1", "EURUSD", "buy", 0.2, 1.0801, now + 1, order_id="o-1", commission=-1.4), marks, now + 1)
    accept(acct, marks, order("o-2", "XAUUSD", "sell", 0.1, now + 2), now + 2)
    acct.apply_fill(fill("f-2", "XAUUSD", "sell", 0.1, 3300.0, now + 3, order_id="o-2", commission=-0.7), marks, now + 3)
    accept(acct, marks, order("o-3", "USDJPY", "buy", 0.2, now + 4, price=144.90), now + 4)
    acct.apply_fill(fill("f-3", "USDJPY", "buy", 0.2, 144.90, now + 5, order_id="o-3"), marks, now + 5)
    accept(acct, marks, order("o-4", "EURUSD", "sell", 0.3, now + 6, price=1.0850), now + 6)
    acct.cancel("o-4", now + 7)  # stale heap entry
    accept(acct, marks, order("o-5", "XAUUSD", "buy", 0.05, now + 8, price=3290.0), now + 8)
    acct.advance(now + 50, marks)  # o-1 rest and o-5 expire
    accept(acct, marks, order("o-6", "EURUSD", "buy", 0.1, now + 60, sl=1.075, tp=1.09), now + 60)
    acct.apply_fill(fill("f-4", "EURUSD", "buy", 0.04, 1.0801, now + 61, order_id="o-6"), marks, now + 61)
    move(acct, marks, "EURUSD", 1.0812, 1.0813, now + 62)
    acct.apply_fill(fill("f-5", "XAUUSD", "buy", 0.1, 3297.5, now + 63, commission=-0.7), marks, now + 63)  # closes
    acct.submit(order("o-7", "EURUSD", "buy", 0.123, now + 64), marks, now + 64)  # rejected: not a lot step
    acct.set_kill_switch(KillSwitch(KillScope.USER, "user-1", KillMode.REDUCE_ONLY, "ops review", "ops", now + 65),
                         now + 65)
    acct.set_kill_switch(KillSwitch(KillScope.FIRM, None, KillMode.HALT, "drill", "ops", now + 66), now + 66)
    acct.release_kill_switch("firm", None, "drill over", "ops", now + 67)
    accept(acct, marks, order("o-8", "EURUSD", "sell", 0.1, now + 68), now + 68)  # reducing under reduce_only
    move(acct, marks, "XAUUSD", 3305.1, 3305.4, now + 69)
    return acct, marks, now + 70


def hedging_busy():
    """Hedging tickets both ways, a reducing reservation naming its ticket, a partly and a fully
    closed ticket (closed ids), an unsolicited ticket."""
    acct = Account("acc-1", "user-1", "ch-1", "USD", 100_000, "moderate", make_limits("moderate", 100_000), T0,
                   CFG, position_mode="hedging", plan_version=2)
    marks, now = market(), T0
    accept(acct, marks, order("h-1", "EURUSD", "buy", 0.3, now), now)
    acct.apply_fill(fill("hf-1", "EURUSD", "buy", 0.3, 1.0801, now + 1, order_id="h-1", position_id="T1"), marks, now + 1)
    accept(acct, marks, order("h-2", "EURUSD", "sell", 0.2, now + 2, sl=1.09), now + 2)
    acct.apply_fill(fill("hf-2", "EURUSD", "sell", 0.2, 1.0800, now + 3, order_id="h-2", position_id="T2"), marks,
                    now + 3)
    accept(acct, marks, order("h-3", "EURUSD", "sell", 0.1, now + 4, position_id="T1"), now + 4)  # reduces T1
    acct.apply_fill(fill("hf-3", "EURUSD", "sell", 0.05, 1.0803, now + 5, order_id="h-3"), marks, now + 5)
    accept(acct, marks, order("h-4", "XAUUSD", "buy", 0.02, now + 6), now + 6)
    acct.apply_fill(fill("hf-4", "XAUUSD", "buy", 0.02, 3300.3, now + 7, order_id="h-4", position_id="T3"), marks,
                    now + 7)
    acct.apply_fill(fill("hf-5", "XAUUSD", "sell", 0.02, 3301.0, now + 8, position_id="T3"), marks, now + 8)  # closes
    acct.apply_fill(fill("hf-6", "USDJPY", "sell", 0.1, 145.00, now + 9), marks, now + 9)  # ticket = fill id
    move(acct, marks, "EURUSD", 1.0790, 1.0791, now + 10)
    accept(acct, marks, order("h-5", "EURUSD", "buy", 0.1, now + 11, position_id="T2"), now + 11)  # reduces T2
    accept(acct, marks, order("h-6", "EURUSD", "sell", 0.1, now + 11), now + 11)  # opens a new ticket
    return acct, marks, now + 12


def failed():
    """A hard max-loss (and daily-loss) breach: status failed, account kill switch reduce_only."""
    acct, marks, now = make_account("moderate", 10_000), market(), T0
    accept(acct, marks, order("o-1", "EURUSD", "buy", 0.9, now), now)
    acct.apply_fill(fill("f-1", "EURUSD", "buy", 0.9, 1.0801, now + 1, order_id="o-1"), marks, now + 1)
    breaches = move(acct, marks, "EURUSD", 1.0500, 1.0501, now + 2)
    assert acct.status is AccountStatus.FAILED and breaches
    return acct, marks, now + 3


def with_recommendations():
    """Two losing days: a superseded and a pending limit-reduction recommendation."""
    acct, marks, now = make_account("moderate", 10_000, recommend_losing_streak_days=1), market(), T0
    for day in range(2):
        t = now + day * DAY
        acct.apply_fill(fill(f"f-{day}a", "EURUSD", "buy", 0.1, 1.0801, t), marks, t)
        acct.apply_fill(fill(f"f-{day}b", "EURUSD", "sell", 0.1, 1.0790, t + 120), marks, t + 120)
    acct.advance(now + 2 * DAY, marks)
    assert [r["status"] for r in acct.recommendations.values()] == ["superseded", "pending"]
    return acct, marks, now + 2 * DAY


def soft_blocked():
    """one_step_trailing: soft daily-loss breach (orders blocked today), trailing EOD floor, a day roll."""
    acct, marks, now = make_account("one_step_trailing", 100_000), market(), T0
    acct.apply_fill(fill("f-1", "XAUUSD", "buy", 1.0, 3300.3, now), marks, now)
    move(acct, marks, "XAUUSD", 3330.0, 3330.3, now + 60)
    acct.apply_fill(fill("f-2", "XAUUSD", "sell", 1.0, 3330.0, now + 61), marks, now + 61)  # +2,970 closed
    acct.advance(now + DAY, marks)  # EOD high-water mark rises
    acct.apply_fill(fill("f-3", "XAUUSD", "buy", 2.0, 3300.3, now + DAY + 60), marks, now + DAY + 60)
    events = move(acct, marks, "XAUUSD", 3275.0, 3275.3, now + DAY + 120)
    assert any(e.get("soft") for e in events) and acct.status is AccountStatus.ACTIVE
    assert acct.soft_blocked_day == acct.trading_day
    return acct, marks, now + DAY + 121


def passed_with_int_times():
    """two_step_phase1 (Prague trading day), integer timestamps, plan_version: four profitable days."""
    t0 = int(T0)
    acct = Account("acc-1", "user-1", "ch-1", "usd", 100_000, "two_step_phase1",
                   make_limits("two_step_phase1", 100_000), t0, CFG, plan_version=1)
    marks = make_marks(("EURUSD", 1.08, 1.08, t0), ("XAUUSD", 3300, 3300, t0), ("USDJPY", 145, 145, t0))
    for day in range(4):
        t = t0 + day * 86_400
        px = 1.08 + day * 0.013
        acct.apply_fill(fill(f"f-{day}a", "EURUSD", "buy", 2, px, t), marks, t)
        set_mark(marks, "EURUSD", px + 0.013, px + 0.013, t + 3600)
        acct.on_market(marks, t + 3600)
        acct.apply_fill(fill(f"f-{day}b", "EURUSD", "sell", 2, px + 0.013, t + 3601), marks, t + 3601)
    assert acct.status is AccountStatus.PASSED and type(acct.created_at) is int
    return acct, marks, t0 + 4 * 86_400


SCENARIOS = {f.__name__: f for f in (fresh_netting, netting_busy, hedging_busy, failed, with_recommendations,
                                     soft_blocked, passed_with_int_times)}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request):
    return SCENARIOS[request.param]()


# ---------------------------------------------------------------------- continuation
def outcome(fn, *args, **kwargs):
    """The result of a call (deep-copied at once) or the domain error it raised."""
    try:
        return ("ok", copy.deepcopy(fn(*args, **kwargs)))
    except (DomainError, LimitsError) as exc:
        return ("error", type(exc).__name__, str(exc))


def carry_on(acct: Account, marks: LatestMarks, now: float) -> list:
    """The same further calls on any account: retries of remembered orders and fills, new orders
    and fills, cancels, marks, expiries, a day roll, views, sizing, ops actions, the events."""
    out = []
    if acct.orders:  # a retry rebuilt from the stored fingerprint returns the stored decision
        oid, (fp, _) = next(reversed(acct.orders.items()))
        inst, side, qty, price, sl, tp, pid = fp
        out.append(outcome(acct.submit, Order(oid, "acc-1", inst, side, qty, now, price, sl, tp, pid), marks, now))
        out.append(outcome(acct.submit, Order(oid, "acc-1", inst, side, 7.0, now, price, sl, tp, pid), marks, now))
    if acct.fills:
        fid, (fp, _) = next(iter(acct.fills.items()))
        oid, inst, side, qty, price, comm, swap, pid, sl, tp = fp
        retry = Fill(fid, "acc-1", inst, side, qty, price, now, oid, comm, swap, pid, sl, tp)
        out.append(outcome(acct.apply_fill, retry, marks, now))
        out.append(outcome(acct.apply_fill, dataclasses.replace(retry, price=price * 1.01), marks, now))
    out.append(outcome(acct.submit, order("n-1", "EURUSD", "buy", 0.1, now + 1, sl=1.075), marks, now + 1))
    out.append(outcome(acct.submit, order("n-2", "XAUUSD", "sell", 0.05, now + 2, price=3310.0), marks, now + 2))
    out.append(outcome(acct.submit, order("n-3", "USDJPY", "buy", 0.2, now + 3), marks, now + 3))
    for p in list(acct.positions.values()):  # one reducing order per position (hedging: names the ticket)
        side = "sell" if p.quantity > 0 else "buy"
        o = order(f"r-{p.position_id}", p.instrument, side, 0.01, now + 4,
                  position_id=p.position_id if acct.hedging else None)
        out.append(outcome(acct.submit, o, marks, now + 4))
    out.append(outcome(acct.apply_fill, fill("nf-1", "EURUSD", "buy", 0.05, 1.0801, now + 5, order_id="n-1"),
                       marks, now + 5))
    out.append(outcome(acct.apply_fill, fill("nf-2", "EURUSD", "buy", 0.05, 1.0802, now + 6, order_id="n-1",
                                             commission=-0.35), marks, now + 6))
    if acct.reservations:
        out.append(outcome(acct.cancel, next(iter(acct.reservations)), now + 7))
    out.append(outcome(acct.cancel, "never-seen", now + 7))
    set_mark(marks, "EURUSD", 1.0788, 1.0789, now + 8)
    out.append(outcome(acct.on_market, marks, now + 8))
    out.append(outcome(acct.advance, now + 45, marks))  # reservations expire
    for p in list(acct.positions.values())[:2]:  # close two positions (hedging: by ticket)
        side = "sell" if p.quantity > 0 else "buy"
        px = 1.0788 if p.instrument == "EURUSD" else marks.get(p.instrument).bid
        out.append(outcome(acct.apply_fill, fill(f"c-{p.position_id}", p.instrument, side, abs(p.quantity), px,
                                                 now + 50, position_id=p.position_id if acct.hedging else None),
                           marks, now + 50))
    out.append(outcome(account_view, acct, marks, now + 51))
    out.append(outcome(account_summary, acct, marks, now + 51))
    out.append(outcome(size_position, acct, {"instrument": "EURUSD", "entry": 1.0789, "stop_loss": 1.0739,
                                            "risk_fraction": 0.005}, marks))
    out.append(outcome(lambda: acct.check(order("p-1", "XAUUSD", "buy", 0.02, now + 52), marks, now + 52).to_dict()))
    for rec_id, rec in list(acct.recommendations.items()):
        out.append(outcome(acct.decide_recommendation, rec_id, rec["status"] == "pending", "ops", "ok", now + 53))
    for scope, scope_id in list(acct.switches):
        out.append(outcome(acct.release_kill_switch, scope, scope_id, "review done", "ops", now + 54))
    acct.set_kill_switch(KillSwitch(KillScope.CHALLENGE, "ch-1", KillMode.HALT, "cohort halt", "ops", now + 55),
                         now + 55)
    out.append(outcome(acct.submit, order("n-4", "EURUSD", "buy", 0.01, now + 56), marks, now + 56))
    acct.release_kill_switch("challenge", "ch-1", "resumed", "ops", now + 57)
    acct.set_limits(acct.limits.with_overrides({"max_position_lots": 3.0}), "ops", "tighter", now + 58)
    set_mark(marks, "XAUUSD", 3290.0, 3290.3, now + DAY)
    out.append(outcome(acct.on_market, marks, now + DAY))  # day roll
    out.append(outcome(acct.submit, order("n-5", "XAUUSD", "buy", 0.03, now + DAY + 1, sl=3280.0), marks,
                       now + DAY + 1))
    out.append(outcome(account_view, acct, marks, now + DAY + 2))
    out.append(list(acct.events))
    return out


# ---------------------------------------------------------------------- account round trips
def test_account_state_round_trip_is_exact_attribute_by_attribute(scenario):
    acct, _, _ = scenario
    state = account_to_state(acct)
    restored = account_from_state(state, CFG)
    assert account_to_state(restored) == state
    assert_same_attributes(acct, restored)
    assert restored.config is CFG


def test_account_state_is_plain_msgpack_safe_data(scenario):
    acct, _, _ = scenario
    state = account_to_state(acct)
    assert_plain(state)
    assert msgpack_round_trip(state) == state
    assert state["version"] == STATE_VERSION == 2


def test_restored_account_gives_identical_results_for_the_same_further_calls(scenario):
    acct, marks, now = scenario
    packed = msgpack.packb(account_to_state(acct), strict_types=True)  # as a snapshot on storage would
    restored_book = marks_from_state(msgpack.unpackb(msgpack.packb(marks_to_state(marks)), strict_map_key=True),
                                    default_registry())
    restored = account_from_state(msgpack.unpackb(packed, strict_map_key=True), CFG)
    original_results = carry_on(acct, marks, now)
    restored_results = carry_on(restored, restored_book, now)
    assert restored_results == original_results
    assert account_to_state(restored) == account_to_state(acct)
    assert_same_attributes(acct, restored)
    assert marks_to_state(restored_book) == marks_to_state(marks)


def test_restore_does_not_record_a_second_account_opened_event(scenario):
    acct, _, _ = scenario
    restored = account_from_state(account_to_state(acct), CFG)
    assert restored.event_seq == acct.event_seq
    assert [e["type"] for e in restored.events].count("account_opened") == \
        [e["type"] for e in acct.events].count("account_opened") <= 1


def test_state_shares_nothing_mutable_with_the_account_or_its_restorations():
    acct, marks, now = netting_busy()
    state = account_to_state(acct)
    frozen = copy.deepcopy(state)
    one, two = account_from_state(state, CFG), account_from_state(state, CFG)
    carry_on(acct, marks, now)
    carry_on(one, marks_from_state(marks_to_state(marks), default_registry()), now)
    assert state == frozen  # neither the source account nor a restored one changed the snapshot
    assert account_to_state(two) == frozen


def test_hedging_state_keeps_ticket_fields_and_closed_ticket_ids():
    acct, _, _ = hedging_busy()
    restored = account_from_state(account_to_state(acct), CFG)
    assert restored.hedging and set(restored.positions) == {"T1", "T2", "hf-6"}
    assert list(restored.closed_ids) == ["T3"]
    reducing = [r for r in restored.reservations.values() if r.position_id is not None]
    assert reducing and all(r.reduces_position for r in reducing)
    assert restored.pending_reducing("T1") == acct.pending_reducing("T1")
    t1 = restored.positions["T1"]
    assert (t1.closed_lots, t1.exit_value, t1.max_lots) == (acct.positions["T1"].closed_lots,
                                                            acct.positions["T1"].exit_value, 0.3)


def test_pending_reservation_expires_at_the_same_instant_after_restore():
    acct, marks, _ = netting_busy()
    restored = account_from_state(account_to_state(acct), CFG)
    assert restored.expiry == acct.expiry and restored.reserved == acct.reserved
    expiry = min(r.expires_at for r in acct.reservations.values())
    for a in (acct, restored):
        a.advance(expiry - 1e-3, marks)
    assert restored.reservations.keys() == acct.reservations.keys() != set()
    for a in (acct, restored):
        a.advance(expiry, marks)
    assert account_to_state(restored) == account_to_state(acct)


def test_restored_account_runs_under_the_given_config_and_derives_its_calendar():
    acct, _, _ = fresh_netting()
    config = AccountConfig(reservation_ttl=5.0, calendar=TradingDayCalendar("00:00", "UTC"))
    restored = account_from_state(account_to_state(acct), config)
    assert restored.config is config and restored.calendar == config.calendar
    prague, _, _ = passed_with_int_times()
    restored = account_from_state(account_to_state(prague), config)
    assert restored.calendar == TradingDayCalendar("00:00", "Europe/Prague") == prague.calendar


def test_dates_enums_and_sets_are_stored_as_plain_values():
    acct, _, _ = soft_blocked()
    state = account_to_state(acct)
    assert state["trading_day"] == acct.trading_day.isoformat() == state["soft_blocked_day"]
    assert state["active_days"] == sorted(acct.active_days) and len(state["active_days"]) == 2
    assert state["status"] == "active" and state["position_mode"] == "netting"
    assert state["limits"]["max_loss_mode"] == "trailing_eod"
    restored = account_from_state(state, CFG)
    assert type(restored.trading_day) is date and restored.soft_blocked_day == restored.trading_day
    assert restored.status is AccountStatus.ACTIVE and type(restored.active_days) is set


def test_recommendation_raised_event_keeps_the_recommendation_as_raised():
    # found by the behavioural test: the event held the live dict, so a later apply rewrote it
    acct, _, now = with_recommendations()
    rec_id = next(r for r, rec in acct.recommendations.items() if rec["status"] == "pending")
    acct.decide_recommendation(rec_id, True, "ops", "agreed", now)
    raised = [e["recommendation"] for e in acct.events if e["type"] == "recommendation_raised"]
    assert [r["status"] for r in raised] == ["pending", "pending"]
    assert acct.recommendations[rec_id]["status"] == "applied"


# ---------------------------------------------------------------------- drift guard and errors
def test_every_account_attribute_is_stored_or_explicitly_derived(scenario):
    # fails when Account gains an attribute that is not a declared field of AccountState
    acct, _, _ = scenario
    declared = {f.name for f in dataclasses.fields(AccountState)}
    # slots: an account has exactly the declared fields and cannot be given another
    assert not hasattr(acct, "__dict__") and set(AccountState.__slots__) == declared
    with pytest.raises(AttributeError):
        acct.undeclared = 1
    derived = {f.name for f in dataclasses.fields(AccountState) if f.metadata.get("derived")}
    assert derived == {"config", "calendar"}
    assert set(account_to_state(acct)) == declared - derived | {"version"}
    assert list(account_to_state(acct))[1:] == list(stored_fields())


def test_a_field_without_a_serialisation_rule_is_refused():
    @dataclasses.dataclass(eq=False)
    class Grown(AccountState):
        mood: str = "calm"  # a new field with no codec

    with pytest.raises(TypeError, match=r"Grown\.mood has no serialisation rule"):
        collect_codecs(Grown)
    assert collect_codecs(AccountState) == stored_fields()


def test_stored_dataclasses_carry_every_field():
    acct, _, _ = netting_busy()
    state = account_to_state(acct)
    names = [f.name for f in dataclasses.fields(Position)]
    assert all(list(p) == names for _, p in state["positions"])
    assert all(list(r) == [f.name for f in dataclasses.fields(Reservation)] for _, r in state["reservations"])
    assert all(list(t) == [f.name for f in dataclasses.fields(ClosedTrade)] for t in state["closed_trades"]["items"])
    assert state["events"]["maxlen"] == 2_000 and state["closed_trades"]["maxlen"] == 100_000


@pytest.mark.parametrize("version", [0, 3, "1", None])
def test_unknown_state_version_is_a_clear_value_error(version):
    state = account_to_state(make_account())
    state["version"] = version
    with pytest.raises(ValueError, match=r"unknown account state version .* reads versions 1 and 2"):
        account_from_state(state, CFG)


def test_missing_or_unknown_state_keys_are_named():
    state = account_to_state(make_account())
    del state["balance"]
    state["colour"] = "blue"
    with pytest.raises(ValueError, match=r"missing \['balance'\], unknown \['colour'\]"):
        account_from_state(state, CFG)
    with pytest.raises(TypeError, match="must be a dict"):
        account_from_state([], CFG)
    state = account_to_state(netting_busy()[0])
    del state["positions"][0][1]["charges"]
    with pytest.raises(ValueError, match=r"Position fields do not match \(missing \['charges'\]"):
        account_from_state(state, CFG)


def test_a_value_that_is_not_plain_data_is_reported_with_its_path():
    acct = make_account()
    acct.events[0]["oops"] = {"when": date(2025, 5, 6)}
    with pytest.raises(TypeError, match=r"account\.events\.items\[0\]\.oops\.when: date value"):
        account_to_state(acct)


def test_tuples_in_journal_data_become_lists_like_msgpack_makes_them():
    acct = make_account()
    acct._record("note", T0, pair=("a", 1))
    state = account_to_state(acct)
    assert state["events"]["items"][-1]["pair"] == ["a", 1]
    assert msgpack_round_trip(state) == state


# ---------------------------------------------------------------------- limits
@pytest.mark.parametrize("plan", default_plan_registry().ids())
def test_limits_round_trip_exactly_through_their_dict(plan):
    limits = make_limits(plan, 100_000)
    back = Limits.from_dict(limits.to_dict())
    assert back == limits and back.to_dict() == limits.to_dict()
    assert [type(v) for v in back.to_dict().values()] == [type(v) for v in limits.to_dict().values()]
    assert msgpack_round_trip(limits.to_dict()) == limits.to_dict()


def test_limits_round_trip_keeps_none_and_every_optional_rule():
    limits = make_limits("moderate", 10_000, profit_target=1_000.0, time_limit_days=30, max_daily_trades=4,
                      cooldown_seconds=90.0, news_blackout_minutes=2, weekend_buffer_minutes=15.0,
                      hedging_across_accounts="warn", hft_max_trades=3, hft_action="reject",
                      recommend_losing_streak_days=None, max_loss_mode="trailing", max_loss_lock=10_000.0,
                      trading_day_rollover="00:00", trading_day_timezone="Europe/Prague")
    d = limits.to_dict()
    assert d["recommend_losing_streak_days"] is None and d["max_loss_mode"] == "trailing_intraday"
    assert Limits.from_dict(d) == limits and Limits.from_dict(d).to_dict() == d


# ---------------------------------------------------------------------- marks and news
def test_book_round_trip_keeps_latest_marks_rates_and_newer_only_rule():
    marks = market()
    set_mark(marks, "EURUSD", 1.0805, 1.0806, T0 + 5)
    set_mark(marks, "GBPUSD", 1.3300, 1.3302, T0 + 6)
    state = marks_to_state(marks)
    assert state[0] == {"instrument": "EURUSD", "bid": 1.0805, "ask": 1.0806, "ts": T0 + 5}
    assert_plain(state)
    assert msgpack_round_trip(state) == state
    restored = marks_from_state(state, default_registry())
    assert marks_to_state(restored) == state and len(restored) == 4
    for pair in (("JPY", "USD"), ("EUR", "USD"), ("GBP", "JPY"), ("XAU", "USD")):
        assert restored.rate(*pair) == marks.rate(*pair)
    stale = dataclasses.replace(marks.get("EURUSD"), bid=1.0, ask=1.0, ts=T0)
    assert marks.apply(stale) is restored.apply(stale) is False


def test_book_state_errors():
    assert marks_to_state(LatestMarks(default_registry())) == []
    assert len(marks_from_state([], default_registry())) == 0
    twice = marks_to_state(market()) * 2
    with pytest.raises(ValueError, match="appears twice"):
        marks_from_state(twice, default_registry())
    with pytest.raises(TypeError, match="list of marks"):
        marks_from_state({"EURUSD": 1.08}, default_registry())


def test_news_round_trip_keeps_events_in_time_order_with_tuples():
    news = NewsCalendar([
        CalendarEvent("nfp", T0 + 3600, "US non-farm payrolls", ("USD",), (), "high"),
        CalendarEvent("ecb", T0 + 600, "ECB rate decision", ("EUR",), ("EURUSD", "EURGBP"), "high"),
        CalendarEvent("boj", T0 - 60, "", ("JPY",)),
    ])
    state = news_to_state(news)
    assert [e["event_id"] for e in state] == ["boj", "ecb", "nfp"]
    assert state[1]["instruments"] == ["EURUSD", "EURGBP"]
    assert_plain(state)
    assert msgpack_round_trip(state) == state
    restored = news_from_state(state)
    assert restored.events() == news.events() and news_to_state(restored) == state
    assert all(type(e.currencies) is tuple and type(e.instruments) is tuple for e in restored.events())
    eurusd = default_registry().get("EURUSD")
    assert restored.near(eurusd, T0, 15) == news.near(eurusd, T0, 15) != []
    assert news_to_state(news_from_state([])) == []
    with pytest.raises(TypeError, match="list of events"):
        news_from_state({"nfp": {}})


def test_restored_news_gives_the_same_blackout_decision():
    acct = make_account("moderate", 10_000, news_blackout_minutes=5)
    news = NewsCalendar([CalendarEvent("cpi", T0 + 120, "US CPI", ("USD",))])
    restored_acct = account_from_state(account_to_state(acct), CFG)
    restored_news = news_from_state(news_to_state(news))
    o = order("o-1", "EURUSD", "buy", 0.1, T0)
    a = acct.submit(o, market(), T0, news)
    b = restored_acct.submit(o, market(), T0, restored_news)
    assert a == b and a["reasons"][0]["code"] == "NEWS_BLACKOUT"


def test_public_api_exports_the_state_functions():
    from riskactors import domain

    for name in ("STATE_VERSION", "account_to_state", "marks_to_state", "marks_from_state", "news_to_state",
                 "news_from_state", "state_fields"):
        assert name in state_module.__all__
        assert name == "state_fields" or name in domain.__all__
    assert "account_from_state" in domain.__all__
    restored = account_from_state(account_to_state(make_account()), CFG)
    assert type(restored.orders) is OrderedDict and type(restored.recommendations) is OrderedDict


def test_bounded_histories_keep_the_newest_limit_and_never_more_than_five_per_cent_over():
    from riskactors.domain.accountstate import MAX_EVENTS, bounded_append

    items: list[int] = []
    for i in range(MAX_EVENTS + MAX_EVENTS // 20):  # just inside: nothing dropped yet
        bounded_append(items, i, MAX_EVENTS)
    assert len(items) == MAX_EVENTS + MAX_EVENTS // 20 and items[0] == 0
    bounded_append(items, -1, MAX_EVENTS)  # just outside: the oldest go in one step
    assert len(items) == MAX_EVENTS and items[-1] == -1 and items[0] == MAX_EVENTS // 20 + 1
    acct = make_account()
    for k in range(MAX_EVENTS + 200):
        acct.set_status(AccountStatus.DISABLED if k % 2 else AccountStatus.ACTIVE, "ops", "flip", acct.clock + 1)
    assert MAX_EVENTS <= len(acct.events) <= MAX_EVENTS + MAX_EVENTS // 20
    assert acct.events[-1]["seq"] == acct.event_seq  # the newest kept
    restored = account_from_state(account_to_state(acct), CFG)
    assert restored.events == acct.events  # exact: the bound is kept as events are added
