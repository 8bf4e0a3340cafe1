"""Hard-rule breaches evaluated after marks and fills: daily loss and max loss (static and
trailing). A breach fails the account and trips its kill switch in reduce_only."""

from __future__ import annotations

from datetime import datetime

import pytest
from unitkit import NY, T0, accepted, codes, make_account, make_fill, make_order, set_mark

from riskactors.domain import AccountStatus, ReasonCode
from riskactors.domain.views import account_view


def _long_one_lot(marks, **overrides):
    """10,000 USD moderate account (daily 500, max 2,000) long 1 lot EURUSD at 1.0: 10 USD per pip."""
    acct = make_account(**overrides)
    acct.apply_fill(make_fill(quantity=1.0, price=1.0), marks, T0)
    return acct


# ---------------------------------------------------------------- daily loss
def test_mark_just_above_the_daily_floor_does_not_breach(marks):
    acct = _long_one_lot(marks)
    set_mark(marks, "EURUSD", 0.99501, 0.99503, ts=T0 + 1)  # equity 9,501
    assert acct.on_market(marks, T0 + 1) == []
    assert acct.status is AccountStatus.ACTIVE and acct.switches == {}


def test_mark_exactly_at_the_daily_floor_does_not_breach(marks):
    acct = _long_one_lot(marks)
    set_mark(marks, "EURUSD", 0.995, ts=T0 + 1)  # equity 9,500 = 10,000 - 500
    assert acct.on_market(marks, T0 + 1) == []
    assert acct.status is AccountStatus.ACTIVE


def test_mark_below_the_daily_floor_fails_the_account_and_trips_reduce_only_kill_switch(marks):
    acct = _long_one_lot(marks)
    set_mark(marks, "EURUSD", 0.99499, 0.99501, ts=T0 + 1)  # equity 9,499
    events = acct.on_market(marks, T0 + 1)
    assert [e["code"] for e in events] == ["DAILY_LOSS_LIMIT"]
    ev = events[0]
    assert ev["account_id"] == "acc-1" and ev["limit"] == 500
    assert ev["value"] == pytest.approx(501) and ev["floor"] == pytest.approx(9_500)
    assert ev["equity"] == pytest.approx(9_499)
    assert acct.status is AccountStatus.FAILED
    (switch,) = acct.switches.values()
    assert str(switch.scope) == "account" and switch.scope_id == "acc-1"
    assert str(switch.mode) == "reduce_only" and switch.breach is True and switch.by == "system"
    assert [b["code"] for b in acct.breaches] == ["DAILY_LOSS_LIMIT"]
    journal = [e["type"] for e in acct.events]
    assert "breach" in journal and "kill_switch_set" in journal
    v = account_view(acct, marks, T0 + 1)
    assert v["status"] == "failed" and v["risk_score"] == 100.0
    assert v["kill_switch"]["active"] is True and v["kill_switch"]["breach"] is True


def test_breach_is_reported_once(marks):
    acct = _long_one_lot(marks)
    set_mark(marks, "EURUSD", 0.99, ts=T0 + 1)
    assert len(acct.on_market(marks, T0 + 1)) == 1
    set_mark(marks, "EURUSD", 0.98, ts=T0 + 2)
    assert acct.on_market(marks, T0 + 2) == []
    assert len(acct.breaches) == 1


def test_breached_account_can_close_but_not_open(marks):
    acct = _long_one_lot(marks)
    set_mark(marks, "EURUSD", 0.99, ts=T0 + 1)
    acct.on_market(marks, T0 + 1)
    close = acct.submit(make_order(side="sell", quantity=1.0), marks, T0 + 1)
    assert accepted(close) and close["reduces_position"] is True
    d = acct.submit(make_order(side="buy"), marks, T0 + 1)
    assert codes(d)[:2] == [ReasonCode.KILL_SWITCH, ReasonCode.ACCOUNT_NOT_ACTIVE]
    assert ReasonCode.DAILY_LOSS_LIMIT in codes(d)  # the loss is already over the limit


def test_commission_on_a_fill_can_breach_and_the_fill_reports_it(marks):
    acct = make_account()
    out = acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-500.01), marks, T0)
    assert [b["code"] for b in out["breach"]] == ["DAILY_LOSS_LIMIT"]
    assert acct.status is AccountStatus.FAILED


def test_daily_loss_from_max_balance_equity_reference_uses_start_of_day_equity(marks):
    acct = _long_one_lot(marks, daily_loss_reference="max_balance_equity")
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)  # equity 11,000, balance 10,000
    roll = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()
    acct.on_market(marks, roll)
    assert acct.day_start_equity == pytest.approx(11_000) and acct.day_start_balance == 10_000
    assert acct.daily_reference() == pytest.approx(11_000)
    set_mark(marks, "EURUSD", 1.005, ts=roll + 1)  # equity 10,500: at the 11,000 - 500 floor
    assert acct.on_market(marks, roll + 1) == []
    set_mark(marks, "EURUSD", 1.0049, ts=roll + 2)  # 10,490
    assert [e["code"] for e in acct.on_market(marks, roll + 2)] == ["DAILY_LOSS_LIMIT"]


def test_balance_reference_ignores_start_of_day_floating_profit(marks):
    acct = _long_one_lot(marks)
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)
    roll = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()
    acct.on_market(marks, roll)
    set_mark(marks, "EURUSD", 1.0049, ts=roll + 1)  # equity 10,490: above 10,000 - 500
    assert acct.on_market(marks, roll + 1) == []


# ---------------------------------------------------------------- max loss: static vs trailing
def test_static_max_loss_floor_is_initial_balance_minus_limit(marks):
    acct = _long_one_lot(marks, daily_loss_limit=5_000, max_loss_limit=1_000)
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)  # equity 11,000
    acct.on_market(marks, T0 + 1)
    set_mark(marks, "EURUSD", 0.9999, ts=T0 + 2)  # equity 9,990: 1,010 below the high, 10 below initial
    assert acct.on_market(marks, T0 + 2) == []
    assert account_view(acct, marks, T0 + 2)["max_loss_floor"] == pytest.approx(9_000)
    set_mark(marks, "EURUSD", 0.99, ts=T0 + 3)  # exactly 9,000
    assert acct.on_market(marks, T0 + 3) == []
    set_mark(marks, "EURUSD", 0.9899, ts=T0 + 4)  # 8,990
    events = acct.on_market(marks, T0 + 4)
    assert [e["code"] for e in events] == ["MAX_LOSS_LIMIT"]
    assert events[0]["floor"] == pytest.approx(9_000) and events[0]["value"] == pytest.approx(1_010)


def test_trailing_max_loss_follows_the_high_water_mark(marks):
    acct = _long_one_lot(marks, daily_loss_limit=5_000, max_loss_limit=1_000, max_loss_mode="trailing")
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)  # equity 11,000: new high-water mark
    assert acct.on_market(marks, T0 + 1) == []
    assert acct.high_water_mark == pytest.approx(11_000)
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(10_000)
    set_mark(marks, "EURUSD", 1.0, ts=T0 + 2)  # equity 10,000 = HWM - limit: not a breach
    assert acct.on_market(marks, T0 + 2) == []
    assert acct.high_water_mark == pytest.approx(11_000)  # does not come down
    set_mark(marks, "EURUSD", 0.9999, ts=T0 + 3)  # equity 9,990: breach at HWM - limit, not initial - limit
    events = acct.on_market(marks, T0 + 3)
    assert [e["code"] for e in events] == ["MAX_LOSS_LIMIT"]
    assert events[0]["floor"] == pytest.approx(10_000) and events[0]["value"] == pytest.approx(1_010)
    assert acct.status is AccountStatus.FAILED


def test_trailing_high_water_mark_needs_on_market_to_move(marks):
    acct = _long_one_lot(marks, daily_loss_limit=5_000, max_loss_limit=1_000, max_loss_mode="trailing")
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)
    assert acct.high_water_mark == 10_000  # mark held in the marks, not yet applied to the account
    acct.on_market(marks, T0 + 1)
    assert acct.high_water_mark == pytest.approx(11_000)


def test_trailing_max_loss_projection_in_a_check_uses_the_high_water_mark(marks):
    acct = _long_one_lot(marks, daily_loss_limit=5_000, max_loss_limit=1_000, max_loss_mode="trailing",
                         max_leverage=100)
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)
    acct.on_market(marks, T0 + 1)
    set_mark(marks, "EURUSD", 1.008, ts=T0 + 2)  # equity 10,800: 200 below HWM
    assert acct.check(make_order(quantity=0.8, stop_loss=0.998), marks, T0 + 2).accepted  # 200 + 800
    d = acct.check(make_order(quantity=0.81, stop_loss=0.998), marks, T0 + 2)
    assert codes(d) == [ReasonCode.MAX_LOSS_LIMIT]
    assert d.reasons[0].value == pytest.approx(1_010)


def test_one_step_trailing_plan_resolves_to_a_trailing_account(marks):
    acct = make_account(plan="one_step_trailing", balance=100_000)
    assert acct.limits.loss.max_loss_limit == pytest.approx(6_000)
    assert acct.limits.loss.trails
    assert acct.max_loss_reference() == 100_000
