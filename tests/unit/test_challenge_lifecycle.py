"""Challenge lifecycle (``riskactors.domain.challenge``): profit target + minimum trading days +
flat → ``passed``; the time limit → ``failed`` with ``TIME_LIMIT``; consistency as a condition
for passing. A passed account accepts only position-reducing orders.

Money is USD; one lot of EURUSD moves 10 USD per 0.0001. ``DAY1`` … are noon New York on
consecutive trading days (the day rolls at 17:00 New York).
"""

from __future__ import annotations

from datetime import date

import pytest
from unitkit import T0, accepted, codes, make_account, make_fill, make_order, reason, set_mark

from riskactors.domain import AccountStatus, KillMode, ReasonCode
from riskactors.domain.views import account_view

DAY = 86_400.0
DAY1, DAY2, DAY3 = T0, T0 + DAY, T0 + 2 * DAY


def _challenge(**overrides):
    """10,000 USD account with a 1,000 USD profit target (loss limits out of the way; the marks
    of ``T0`` stay usable for the whole challenge: the price age is not the rule under test)."""
    params = {"profit_target": 1_000, "max_leverage": 100, "daily_loss_limit": 5_000, "max_loss_limit": 5_000,
              "max_mark_age_seconds": 120 * 86_400.0, **overrides}
    return make_account(**params)


def _open(acct, marks, ts, quantity=1.0, price=1.0):
    set_mark(marks, "EURUSD", price, ts=ts)
    return acct.apply_fill(make_fill(quantity=quantity, price=price, ts=ts), marks, ts)


def _close(acct, marks, ts, quantity=1.0, price=1.0, commission=0.0):
    set_mark(marks, "EURUSD", price, ts=ts)
    return acct.apply_fill(make_fill(side="sell", quantity=quantity, price=price, ts=ts, commission=commission),
                           marks, ts)


def _round_trip(acct, marks, ts, close_price, quantity=1.0, commission=0.0):
    """Open ``quantity`` lots long at 1.0 at ``ts`` and close them 10 minutes later."""
    _open(acct, marks, ts, quantity)
    return _close(acct, marks, ts + 600, quantity, close_price, commission)


# ---------------------------------------------------------------- profit target, trading days, flat
def test_profit_target_with_min_trading_days_and_flat_passes(marks):
    acct = _challenge(min_trading_days=2)
    out = _round_trip(acct, marks, DAY1, 1.01)  # +1,000 on 2025-05-06
    assert out["status"] == "active"
    progress = account_view(acct, marks, DAY1 + 600)["objectives"]
    assert progress["profit_target"]["met"] is True and progress["profit_target"]["profit"] == pytest.approx(1_000)
    assert progress["min_trading_days"] == {"required": 2, "days": 1, "met": False}
    assert progress["all_met"] is False
    _open(acct, marks, DAY2, quantity=0.01, price=1.0)  # second trading day, but not flat
    assert acct.trading_days == 2 and acct.status is AccountStatus.ACTIVE
    out = _close(acct, marks, DAY2 + 600, quantity=0.01, price=1.0)
    assert out["status"] == "passed" and acct.status is AccountStatus.PASSED
    assert [e["type"] for e in acct.events].count("challenge_passed") == 1
    v = account_view(acct, marks, DAY2 + 600)
    assert v["status"] == "passed" and v["objectives"]["all_met"] is True and v["objectives"]["flat"] is True
    assert acct.switches == {}  # passing is not a kill


def test_profit_target_one_cent_short_stays_active(marks):
    acct = _challenge()
    _round_trip(acct, marks, DAY1, 1.01, commission=-0.01)  # 1,000 − 0.01
    assert acct.balance == pytest.approx(10_999.99)
    assert acct.status is AccountStatus.ACTIVE
    progress = account_view(acct, marks, DAY1 + 600)["objectives"]
    assert progress["profit_target"]["met"] is False
    assert progress["profit_target"]["profit"] == pytest.approx(999.99)


def test_floating_profit_does_not_pass_and_an_open_position_blocks_passing(marks):
    acct = _challenge()
    _open(acct, marks, DAY1, quantity=2.0)
    set_mark(marks, "EURUSD", 1.02, ts=DAY1 + 1)  # +4,000 floating
    acct.on_market(marks, DAY1 + 1)
    assert acct.status is AccountStatus.ACTIVE
    _close(acct, marks, DAY1 + 600, quantity=1.0, price=1.01)  # +1,000 closed, 1 lot still open
    assert acct.balance == pytest.approx(11_000)
    assert acct.status is AccountStatus.ACTIVE
    assert account_view(acct, marks, DAY1 + 600)["objectives"]["flat"] is False
    _close(acct, marks, DAY1 + 700, quantity=1.0, price=1.0)  # the rest at break-even: flat
    assert acct.status is AccountStatus.PASSED


def test_a_trading_day_counts_only_when_a_trade_was_opened_that_day(marks):
    acct = _challenge(min_trading_days=2)
    _open(acct, marks, DAY1)
    _close(acct, marks, DAY2, price=1.01)  # +1,000 closed on 2025-05-07, nothing opened that day
    assert acct.trading_day == date(2025, 5, 7)
    assert acct.trading_days == 1
    assert acct.status is AccountStatus.ACTIVE
    _round_trip(acct, marks, DAY3, 1.0, quantity=0.01)
    assert acct.trading_days == 2
    assert acct.status is AccountStatus.PASSED


def test_no_profit_target_never_passes(marks):
    acct = _challenge(profit_target=None)
    _round_trip(acct, marks, DAY1, 1.05)
    assert acct.status is AccountStatus.ACTIVE
    assert account_view(acct, marks, DAY1 + 600)["objectives"]["all_met"] is False


# ---------------------------------------------------------------- a passed account
def _passed(marks):
    acct = _challenge()
    _round_trip(acct, marks, DAY1, 1.01)
    assert acct.status is AccountStatus.PASSED
    return acct


def test_passed_account_rejects_new_opening_orders_with_account_not_active(marks):
    acct = _passed(marks)
    d = acct.check(make_order(quantity=0.01), marks, DAY1 + 700)
    assert codes(d) == [ReasonCode.ACCOUNT_NOT_ACTIVE]
    assert reason(d, ReasonCode.ACCOUNT_NOT_ACTIVE).limit is None


def test_passed_account_accepts_reducing_orders(marks):
    acct = _passed(marks)
    # a late execution of an order sent before the pass leaves a position to close
    acct.apply_fill(make_fill(quantity=0.1, price=1.01, ts=DAY1 + 700), marks, DAY1 + 700)
    assert acct.status is AccountStatus.PASSED
    out = acct.submit(make_order(side="sell", quantity=0.1, ts=DAY1 + 701), marks, DAY1 + 701)
    assert accepted(out) and out["reduces_position"] is True
    assert codes(acct.check(make_order(side="buy", quantity=0.1), marks, DAY1 + 701)) == [
        ReasonCode.ACCOUNT_NOT_ACTIVE]


# ---------------------------------------------------------------- time limit
def test_time_limit_one_second_before_the_deadline_is_still_active(marks):
    acct = _challenge(time_limit_days=30)
    deadline = T0 + 30 * DAY
    assert acct.on_market(marks, deadline - 1) == []
    assert acct.status is AccountStatus.ACTIVE
    tl = account_view(acct, marks, deadline - 1)["objectives"]["time_limit"]
    assert tl == {"days": 30, "deadline": deadline, "expired": False}


def test_time_limit_at_the_deadline_fails_the_account_with_a_time_limit_breach(marks):
    acct = _challenge(time_limit_days=30)
    deadline = T0 + 30 * DAY
    events = acct.on_market(marks, deadline)
    assert [e["code"] for e in events] == [ReasonCode.TIME_LIMIT]
    ev = events[0]
    assert ev["account_id"] == "acc-1" and ev["limit"] == 30 and ev["value"] == pytest.approx(30)
    assert acct.status is AccountStatus.FAILED
    assert [b["code"] for b in acct.breaches] == [ReasonCode.TIME_LIMIT]
    (switch,) = acct.switches.values()
    assert switch.mode is KillMode.REDUCE_ONLY and switch.breach
    v = account_view(acct, marks, deadline)
    assert v["status"] == "failed" and v["objectives"]["time_limit"]["expired"] is True
    assert acct.on_market(marks, deadline + 1) == []  # reported once


def test_time_limit_breach_is_reported_by_the_fill_that_crosses_the_deadline(marks):
    acct = _challenge(time_limit_days=30)
    deadline = T0 + 30 * DAY
    _open(acct, marks, T0)
    out = _close(acct, marks, deadline, price=1.001)
    assert [b["code"] for b in out["breach"]] == [ReasonCode.TIME_LIMIT]
    assert out["status"] == "failed"


def test_time_limit_fails_an_order_submitted_at_the_deadline(marks):
    acct = _challenge(time_limit_days=30)
    deadline = T0 + 30 * DAY
    assert accepted(acct.submit(make_order(ts=deadline - 1), marks, deadline - 1))
    d = acct.submit(make_order(ts=deadline), marks, deadline)
    assert codes(d) == [ReasonCode.KILL_SWITCH, ReasonCode.ACCOUNT_NOT_ACTIVE]
    assert acct.status is AccountStatus.FAILED


def test_time_limit_does_not_fail_a_passed_account(marks):
    acct = _challenge(time_limit_days=30)
    _round_trip(acct, marks, DAY1, 1.01)
    assert acct.status is AccountStatus.PASSED
    assert acct.on_market(marks, T0 + 31 * DAY) == []
    assert acct.status is AccountStatus.PASSED and acct.breaches == []


# ---------------------------------------------------------------- consistency
def test_best_day_exactly_at_the_consistency_fraction_passes(marks):
    acct = _challenge(consistency_fraction=0.5)
    _round_trip(acct, marks, DAY1, 1.005)  # +500
    assert acct.status is AccountStatus.ACTIVE  # profit 500 < target
    _round_trip(acct, marks, DAY2, 1.005)  # +500: best day 500 = 0.5 × 1,000
    assert acct.status is AccountStatus.PASSED
    c = account_view(acct, marks, DAY2 + 600)["objectives"]["consistency"]
    assert c["met"] is True and c["best_day_share"] == pytest.approx(0.5)


def test_best_day_a_bit_over_the_consistency_fraction_does_not_pass(marks):
    acct = _challenge(consistency_fraction=0.5)
    _round_trip(acct, marks, DAY1, 1.0050001)  # +500.01
    _round_trip(acct, marks, DAY2, 1.0049999)  # +499.99: total 1,000, best day 50.001 %
    assert acct.balance == pytest.approx(11_000)
    assert acct.status is AccountStatus.ACTIVE
    v = account_view(acct, marks, DAY2 + 600)
    c = v["objectives"]["consistency"]
    assert c["met"] is False
    assert c["max_fraction"] == 0.5
    assert c["best_day_profit"] == pytest.approx(500.01) and c["total_profit"] == pytest.approx(1_000)
    assert c["best_day_share"] == pytest.approx(0.50001)
    assert v["objectives"]["profit_target"]["met"] is True and v["objectives"]["all_met"] is False


def test_consistency_without_profit_is_not_met(marks):
    acct = _challenge(consistency_fraction=0.5)
    assert account_view(acct, marks, T0)["objectives"]["consistency"]["met"] is False
