"""MAX_POSITION_SIZE, MAX_OPEN_POSITIONS, MAX_LEVERAGE, INSUFFICIENT_MARGIN, DAILY_LOSS_LIMIT and
MAX_LOSS_LIMIT at their boundaries (just inside: accept; just outside: reject with limit and value),
and every applicable reason returned at once.

Prices: EURUSD at 1.0 with zero spread, so 1 lot = 100,000 USD notional and a stop-loss 0.01
below the entry costs 1,000 USD per lot.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from unitkit import NY, T0, accepted, codes, make_account, make_fill, make_marks, make_order, reason, set_mark

from riskactors.domain import AccountStatus, KillMode, KillScope, KillSwitch, ReasonCode


# ---------------------------------------------------------------- MAX_POSITION_SIZE
def test_order_reaching_max_position_lots_exactly_is_accepted(marks):
    acct = make_account(balance=100_000)  # moderate: 5 lots, 10x
    assert acct.check(make_order(quantity=5.0), marks, T0).accepted


def test_order_one_step_over_max_position_lots_is_rejected_max_position_size(marks):
    acct = make_account(balance=100_000)
    d = acct.check(make_order(quantity=5.01), marks, T0)
    assert codes(d) == [ReasonCode.MAX_POSITION_SIZE]
    r = reason(d, ReasonCode.MAX_POSITION_SIZE)
    assert r.limit == 5.0 and r.value == pytest.approx(5.01)


def test_max_position_size_counts_the_existing_position(marks):
    acct = make_account(balance=100_000)
    acct.apply_fill(make_fill(quantity=3.0, price=1.0), marks, T0)
    assert acct.check(make_order(quantity=2.0), marks, T0).accepted
    d = acct.check(make_order(quantity=2.01), marks, T0)
    assert reason(d, ReasonCode.MAX_POSITION_SIZE).value == pytest.approx(5.01)


def test_max_position_size_applies_to_short_side(marks):
    acct = make_account(balance=100_000)
    assert acct.check(make_order(side="sell", quantity=5.0), marks, T0).accepted
    d = acct.check(make_order(side="sell", quantity=5.01), marks, T0)
    assert codes(d) == [ReasonCode.MAX_POSITION_SIZE]


def test_flip_order_is_measured_by_the_resulting_position(marks):
    acct = make_account(balance=100_000)
    acct.apply_fill(make_fill(quantity=3.0, price=1.0), marks, T0)
    # sell 8 from +3 ends at -5: allowed; sell 8.01 ends at -5.01
    assert acct.check(make_order(side="sell", quantity=8.0), marks, T0).accepted
    d = acct.check(make_order(side="sell", quantity=8.01), marks, T0)
    assert reason(d, ReasonCode.MAX_POSITION_SIZE).value == pytest.approx(5.01)


# ---------------------------------------------------------------- MAX_OPEN_POSITIONS
SIX_USD_MARKETS = [("EURUSD", 1.0), ("GBPUSD", 1.25), ("AUDUSD", 0.65), ("NZDUSD", 0.6), ("XAUUSD", 2000.0),
                   ("USDJPY", 150.0)]


def test_fifth_open_instrument_is_accepted_and_sixth_rejected_max_open_positions():
    acct = make_account()  # moderate: 5 open positions
    marks = make_marks(*SIX_USD_MARKETS)
    for sym, _ in SIX_USD_MARKETS[:4]:
        acct.apply_fill(make_fill(instrument=sym, quantity=0.01, price=marks.get(sym).mid), marks, T0)
    fifth = acct.submit(make_order(instrument="XAUUSD"), marks, T0)  # reservation counts as open
    assert accepted(fifth), codes(fifth)
    d = acct.check(make_order(instrument="USDJPY"), marks, T0)
    assert codes(d) == [ReasonCode.MAX_OPEN_POSITIONS]
    r = reason(d, ReasonCode.MAX_OPEN_POSITIONS)
    assert r.limit == 5 and r.value == 6


def test_adding_to_an_already_open_instrument_at_max_open_positions_is_accepted():
    acct = make_account()
    marks = make_marks(*SIX_USD_MARKETS)
    for sym, px in SIX_USD_MARKETS[:5]:
        acct.apply_fill(make_fill(instrument=sym, quantity=0.01, price=px), marks, T0)
    assert acct.check(make_order(instrument="EURUSD"), marks, T0).accepted
    assert codes(acct.check(make_order(instrument="USDJPY"), marks, T0)) == [ReasonCode.MAX_OPEN_POSITIONS]


def test_cancelled_reservation_frees_an_open_position_slot():
    acct = make_account(plan="conservative")  # 3 open positions
    marks = make_marks(*SIX_USD_MARKETS)
    ids = []
    for sym, _ in SIX_USD_MARKETS[:3]:
        o = make_order(instrument=sym)
        assert accepted(acct.submit(o, marks, T0))
        ids.append(o.order_id)
    assert codes(acct.check(make_order(instrument="NZDUSD"), marks, T0)) == [ReasonCode.MAX_OPEN_POSITIONS]
    acct.cancel(ids[0], T0)
    assert acct.check(make_order(instrument="NZDUSD"), marks, T0).accepted


# ---------------------------------------------------------------- MAX_LEVERAGE
def test_order_reaching_max_leverage_exactly_is_accepted(account, marks):
    # 1 lot EURUSD at 1.0 = 100,000 USD / 10,000 equity = 10x = max
    assert account.check(make_order(quantity=1.0), marks, T0).accepted


def test_order_one_step_over_max_leverage_is_rejected_with_leverage_value(account, marks):
    d = account.check(make_order(quantity=1.01), marks, T0)
    assert codes(d) == [ReasonCode.MAX_LEVERAGE]
    r = reason(d, ReasonCode.MAX_LEVERAGE)
    assert r.limit == 10.0 and r.value == pytest.approx(10.1)


def test_max_leverage_uses_equity_including_floating_loss(account, marks):
    account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    set_mark(marks, "EURUSD", 0.998, ts=T0 + 1)  # floating -100: equity 9,900
    # worst-case notional after the order: (0.5 + q) lots x 99,800 USD/lot; max = 99,000 USD
    assert account.check(make_order(quantity=0.49), marks, T0 + 1).accepted  # 0.99 x 99,800 = 98,802
    d = account.check(make_order(quantity=0.5), marks, T0 + 1)  # 1.0 x 99,800 = 99,800 > 99,000
    assert reason(d, ReasonCode.MAX_LEVERAGE).value == pytest.approx(99_800 / 9_900)


def test_non_positive_equity_rejects_new_exposure_max_leverage(marks):
    acct = make_account(daily_loss_limit=50_000, max_loss_limit=50_000)
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-10_000), marks, T0)  # equity 0
    d = acct.check(make_order(), marks, T0)
    r = reason(d, ReasonCode.MAX_LEVERAGE)
    assert r.limit == 10.0 and r.value is None


# ---------------------------------------------------------------- INSUFFICIENT_MARGIN
def margin_bound_account(**overrides):
    """Margin binds before leverage: 1:10 margin (10 % of notional), 100x max leverage."""
    return make_account(account_leverage=10, max_leverage=100, **overrides)


def test_order_using_all_free_margin_is_accepted(marks):
    acct = margin_bound_account()
    d = acct.check(make_order(quantity=1.0), marks, T0)  # margin 10,000 = equity
    assert d.accepted, codes(d)


def test_order_one_step_over_free_margin_is_rejected_insufficient_margin(marks):
    acct = margin_bound_account()
    d = acct.check(make_order(quantity=1.01), marks, T0)
    assert codes(d) == [ReasonCode.INSUFFICIENT_MARGIN]
    r = reason(d, ReasonCode.INSUFFICIENT_MARGIN)
    assert r.limit == pytest.approx(10_000) and r.value == pytest.approx(10_100)


def test_margin_call_level_200_percent_halves_the_margin_allowed(marks):
    acct = margin_bound_account(margin_call_level=200)
    assert acct.check(make_order(quantity=0.5), marks, T0).accepted  # margin 5,000 = 10,000 x 100/200
    r = reason(acct.check(make_order(quantity=0.51), marks, T0), ReasonCode.INSUFFICIENT_MARGIN)
    assert r.limit == pytest.approx(5_000) and r.value == pytest.approx(5_100)


def test_instrument_margin_rate_floor_applies_when_above_account_leverage(marks):
    # XAUUSD margin rate 2 % > 1 / 100: 1 lot at 2,000 = 200,000 notional, 4,000 margin
    acct = make_account(max_leverage=100, margin_call_level=100, balance=4_000,
                        daily_loss_limit=1_000, max_loss_limit=1_000)
    set_mark(marks, "XAUUSD", 2000.0)
    assert acct.check(make_order(instrument="XAUUSD", quantity=1.0), marks, T0).accepted
    r = reason(acct.check(make_order(instrument="XAUUSD", quantity=1.01), marks, T0), ReasonCode.INSUFFICIENT_MARGIN)
    assert r.value == pytest.approx(4_040)


# ---------------------------------------------------------------- DAILY_LOSS_LIMIT (stop-loss projection)
def test_loss_at_stop_loss_equal_to_daily_limit_is_accepted(account, marks):
    # 0.5 lot, stop 0.01 below: 500 USD = moderate daily limit
    d = account.check(make_order(quantity=0.5, stop_loss=0.99), marks, T0)
    assert d.accepted, codes(d)


def test_loss_at_stop_loss_over_daily_limit_is_rejected_daily_loss_limit(account, marks):
    d = account.check(make_order(quantity=0.51, stop_loss=0.99), marks, T0)
    assert codes(d) == [ReasonCode.DAILY_LOSS_LIMIT]
    r = reason(d, ReasonCode.DAILY_LOSS_LIMIT)
    assert r.limit == 500 and r.value == pytest.approx(510)


def test_daily_loss_projection_adds_the_current_daily_loss(account, marks):
    account.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-200), marks, T0)  # daily loss 200
    assert account.check(make_order(quantity=0.3, stop_loss=0.99), marks, T0).accepted  # 200 + 300
    d = account.check(make_order(quantity=0.31, stop_loss=0.99), marks, T0)  # 200 + 310
    assert codes(d) == [ReasonCode.DAILY_LOSS_LIMIT]
    assert reason(d, ReasonCode.DAILY_LOSS_LIMIT).value == pytest.approx(510)


def test_sell_stop_loss_above_the_bid_is_projected_as_a_loss(account):
    marks = make_marks(("EURUSD", 1.0, 1.0002))
    # sell at the bid 1.0, stop 1.01: 0.01 x 100,000 x lots
    assert account.check(make_order(side="sell", quantity=0.5, stop_loss=1.01), marks, T0).accepted
    d = account.check(make_order(side="sell", quantity=0.51, stop_loss=1.01), marks, T0)
    assert reason(d, ReasonCode.DAILY_LOSS_LIMIT).value == pytest.approx(510)


def test_limit_order_projects_stop_loss_from_its_limit_price(account, marks):
    # limit 0.995, stop 0.985: 0.01 below the limit price, not 0.015 below the mark
    assert account.check(make_order(quantity=0.5, price=0.995, stop_loss=0.985), marks, T0).accepted
    d = account.check(make_order(quantity=0.51, price=0.995, stop_loss=0.985), marks, T0)
    assert reason(d, ReasonCode.DAILY_LOSS_LIMIT).value == pytest.approx(510)


def test_order_without_stop_loss_is_not_projected(account, marks):
    assert account.check(make_order(quantity=1.0), marks, T0).accepted


# ---------------------------------------------------------------- MAX_LOSS_LIMIT (stop-loss projection)
def _account_with_loss_from_earlier_days(marks, per_day: float = 400.0, days: int = 4):
    """Moderate account (daily 500, max 2,000) that lost ``per_day`` (commission) on each of
    ``days`` trading days, never breaching the daily limit; returns it and a time on the next day."""
    acct = make_account()
    rolls = [datetime(2025, 5, 6 + i, 17, 0, 1, tzinfo=NY).timestamp() for i in range(days)]
    for at in [T0] + rolls[:-1]:
        acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-per_day, ts=at), marks, at)
        assert acct.breaches == []
    now = rolls[-1]
    set_mark(marks, "EURUSD", 1.0, ts=now)  # a fresh price (rule STALE_PRICE)
    acct.on_market(marks, now)
    assert acct.day_start_balance == pytest.approx(10_000 - per_day * days)
    return acct, now


def test_loss_at_stop_loss_reaching_max_loss_limit_is_accepted(marks):
    acct, now = _account_with_loss_from_earlier_days(marks)
    d = acct.check(make_order(quantity=0.4, stop_loss=0.99, ts=now), marks, now)  # 1,600 + 400 = 2,000
    assert d.accepted, codes(d)


def test_loss_at_stop_loss_over_max_loss_limit_is_rejected_max_loss_limit_only(marks):
    acct, now = _account_with_loss_from_earlier_days(marks)
    d = acct.check(make_order(quantity=0.41, stop_loss=0.99, ts=now), marks, now)  # 1,600 + 410
    assert codes(d) == [ReasonCode.MAX_LOSS_LIMIT]  # the daily loss is only 410 today
    r = reason(d, ReasonCode.MAX_LOSS_LIMIT)
    assert r.limit == 2_000 and r.value == pytest.approx(2_010)


def test_max_loss_limit_from_overrides_binds_before_daily(marks):
    acct = make_account(daily_loss_limit=5_000, max_loss_limit=1_000)
    assert acct.check(make_order(quantity=0.5, stop_loss=0.98), marks, T0).accepted  # 1,000 at the stop
    d = acct.check(make_order(quantity=0.51, stop_loss=0.98), marks, T0)
    assert codes(d) == [ReasonCode.MAX_LOSS_LIMIT]
    assert reason(d, ReasonCode.MAX_LOSS_LIMIT).value == pytest.approx(1_020)


# ---------------------------------------------------------------- every reason, not just the first
def test_order_breaking_three_rules_gets_three_reason_codes(account, marks):
    # 6 lots: > 5 lots, 60x > 10x, and 600 USD at the stop > 500 daily (but < 2,000 max)
    d = account.check(make_order(quantity=6.0, stop_loss=0.999), marks, T0)
    assert sorted(codes(d)) == sorted([ReasonCode.MAX_POSITION_SIZE, ReasonCode.MAX_LEVERAGE,
                                       ReasonCode.DAILY_LOSS_LIMIT])
    assert reason(d, ReasonCode.DAILY_LOSS_LIMIT).value == pytest.approx(600)


def test_order_breaking_four_rules_gets_four_reason_codes(account, marks):
    # 6,000 USD at the stop also breaks the 2,000 max loss
    d = account.check(make_order(quantity=6.0, stop_loss=0.99), marks, T0)
    assert set(codes(d)) == {ReasonCode.MAX_POSITION_SIZE, ReasonCode.MAX_LEVERAGE,
                             ReasonCode.DAILY_LOSS_LIMIT, ReasonCode.MAX_LOSS_LIMIT}
    assert len(codes(d)) == 4


def test_kill_switch_status_and_exposure_reasons_are_all_returned(account, marks):
    account.set_kill_switch(KillSwitch(KillScope.FIRM, None, KillMode.HALT, "incident", "ops", T0), T0)
    account.set_status(AccountStatus.DISABLED, "ops", "review", T0)
    d = account.check(make_order(quantity=1.01), marks, T0)
    assert set(codes(d)) == {ReasonCode.KILL_SWITCH, ReasonCode.ACCOUNT_NOT_ACTIVE, ReasonCode.MAX_LEVERAGE}


def test_submitted_decision_dict_carries_every_reason_with_limit_and_value(account, marks):
    d = account.submit(make_order(quantity=6.0), marks, T0)
    assert d["decision"] == "reject"
    by_code = {r["code"]: r for r in d["reasons"]}
    assert set(by_code) == {"MAX_POSITION_SIZE", "MAX_LEVERAGE"}
    assert by_code["MAX_POSITION_SIZE"]["limit"] == 5.0 and by_code["MAX_POSITION_SIZE"]["value"] == pytest.approx(6.0)
    assert by_code["MAX_LEVERAGE"]["value"] == pytest.approx(60.0)
    assert account.reservations == {}
