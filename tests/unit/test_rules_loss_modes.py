"""Loss references of a rule pack at their boundaries: max loss ``static`` / ``trailing_intraday`` /
``trailing_eod`` with and without a lock, daily loss from ``balance`` or ``max_balance_equity``,
and ``hard`` vs ``soft`` daily loss.

Money is USD (account currency). One lot of EURUSD moves 10 USD per 0.0001, so equity figures in
the comments are exact up to float rounding (well under ``MONEY_EPS``): a mark exactly at a floor
never breaches, a mark 1 USD of equity below it does.
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
from unitkit import NY, T0, accepted, codes, make_account, make_fill, make_order, reason, set_mark

from riskactors.domain import AccountStatus, KillMode, ReasonCode
from riskactors.domain.views import account_view

#: 2025-05-06 17:00 New York: the first trading-day roll after ``T0``.
ROLL = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()


def _long_one_lot(marks, **overrides):
    """10,000 USD account long 1 lot EURUSD at 1.0 (10 USD per 0.0001). Max loss 1,000; daily loss
    5,000 so only the max-loss rule can fire, unless ``overrides`` say otherwise."""
    params = {"daily_loss_limit": 5_000, "max_loss_limit": 1_000, "max_leverage": 100, **overrides}
    acct = make_account(**params)
    acct.apply_fill(make_fill(quantity=1.0, price=1.0), marks, T0)
    return acct


def _mark(acct, marks, price, ts):
    """Mark EURUSD at ``price`` (zero spread) and re-value; returns the breach events."""
    set_mark(marks, "EURUSD", price, ts=ts)
    return acct.on_market(marks, ts)


def _assert_max_loss_breach(events, acct, floor, value):
    assert [e["code"] for e in events] == [ReasonCode.MAX_LOSS_LIMIT]
    ev = events[0]
    assert ev["limit"] == acct.limits.loss.max_loss_limit
    assert ev["floor"] == pytest.approx(floor)
    assert ev["value"] == pytest.approx(value)
    assert acct.status is AccountStatus.FAILED


# ---------------------------------------------------------------- max loss: static
def test_static_floor_is_initial_balance_minus_limit_and_ignores_a_high_water_mark(marks):
    acct = _long_one_lot(marks)
    assert _mark(acct, marks, 1.01, T0 + 1) == []  # equity 11,000
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(9_000)
    assert _mark(acct, marks, 0.99, T0 + 2) == []  # equity 9,000: exactly at the floor
    assert acct.status is AccountStatus.ACTIVE
    _assert_max_loss_breach(_mark(acct, marks, 0.9899, T0 + 3), acct, floor=9_000, value=1_010)  # 8,990


def test_static_floor_ignores_the_lock(marks):
    acct = _long_one_lot(marks, max_loss_lock=9_500)
    _mark(acct, marks, 1.01, T0 + 1)
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(9_000)
    assert _mark(acct, marks, 0.99, T0 + 2) == []  # 9,000: the lock would have breached here
    _assert_max_loss_breach(_mark(acct, marks, 0.98999, T0 + 3), acct, floor=9_000, value=1_001)


# ---------------------------------------------------------------- max loss: trailing_intraday
def test_trailing_intraday_floor_follows_the_equity_high_water_mark(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_intraday")
    assert _mark(acct, marks, 1.01, T0 + 1) == []  # equity 11,000: new high-water mark
    assert acct.high_water_mark == pytest.approx(11_000)
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(10_000)
    assert _mark(acct, marks, 1.0, T0 + 2) == []  # 10,000: exactly at the floor
    assert acct.high_water_mark == pytest.approx(11_000)  # never comes down
    _assert_max_loss_breach(_mark(acct, marks, 0.99999, T0 + 3), acct, floor=10_000, value=1_001)  # 9,999


def test_trailing_intraday_floor_with_a_lock_trails_until_the_lock(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_intraday", max_loss_lock=9_500)
    _mark(acct, marks, 1.002, T0 + 1)  # high-water mark 10,200: floor 9,200, still under the lock
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(9_200)
    assert _mark(acct, marks, 0.992, T0 + 2) == []  # 9,200: at the floor
    _assert_max_loss_breach(_mark(acct, marks, 0.99199, T0 + 3), acct, floor=9_200, value=1_001)


def test_trailing_intraday_floor_never_rises_above_the_lock(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_intraday", max_loss_lock=9_500)
    _mark(acct, marks, 1.01, T0 + 1)  # high-water mark 11,000: unlocked floor would be 10,000
    assert acct.high_water_mark == pytest.approx(11_000)
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(9_500)
    assert _mark(acct, marks, 0.995, T0 + 2) == []  # 9,500: at the locked floor
    assert acct.status is AccountStatus.ACTIVE
    # value = floor + limit − equity = 9,500 + 1,000 − 9,499
    _assert_max_loss_breach(_mark(acct, marks, 0.99499, T0 + 3), acct, floor=9_500, value=1_001)


# ---------------------------------------------------------------- max loss: trailing_eod
def test_trailing_eod_floor_ignores_intraday_equity_peaks(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_eod")
    _mark(acct, marks, 1.01, T0 + 1)  # equity 11,000 intraday
    assert acct.eod_high_water_mark == 10_000
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(9_000)
    assert _mark(acct, marks, 0.99, T0 + 2) == []  # 9,000: trailing_intraday would have failed at 10,000
    _assert_max_loss_breach(_mark(acct, marks, 0.98999, T0 + 3), acct, floor=9_000, value=1_001)


def test_trailing_eod_high_water_mark_takes_the_balance_not_the_equity_at_the_roll(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_eod")
    _mark(acct, marks, 1.01, T0 + 1)  # +1,000 floating, still open at the roll
    _mark(acct, marks, 1.01, ROLL)
    assert acct.trading_day == date(2025, 5, 7)
    assert acct.eod_high_water_mark == 10_000
    assert account_view(acct, marks, ROLL)["max_loss_floor"] == pytest.approx(9_000)


def _eod_high_water_at_11k(marks, **overrides):
    """trailing_eod account that closed +1,000 on 2025-05-06, rolled to 2025-05-07 and re-opened
    1 lot long at 1.01 (equity 11,000)."""
    acct = _long_one_lot(marks, max_loss_mode="trailing_eod", **overrides)
    set_mark(marks, "EURUSD", 1.01, ts=T0 + 1)
    acct.apply_fill(make_fill(side="sell", quantity=1.0, price=1.01, ts=T0 + 1), marks, T0 + 1)
    assert acct.balance == pytest.approx(11_000)
    # not before the roll: the floor moves only at the end of the day
    assert account_view(acct, marks, T0 + 1)["max_loss_floor"] == pytest.approx(9_000)
    _mark(acct, marks, 1.01, ROLL)
    assert acct.eod_high_water_mark == pytest.approx(11_000)
    acct.apply_fill(make_fill(quantity=1.0, price=1.01, ts=ROLL + 1), marks, ROLL + 1)
    return acct


def test_trailing_eod_floor_rises_at_the_day_roll(marks):
    acct = _eod_high_water_at_11k(marks)
    assert account_view(acct, marks, ROLL + 1)["max_loss_floor"] == pytest.approx(10_000)
    assert _mark(acct, marks, 1.0, ROLL + 2) == []  # 10,000: at the floor
    _assert_max_loss_breach(_mark(acct, marks, 0.99999, ROLL + 3), acct, floor=10_000, value=1_001)


def test_trailing_eod_floor_never_rises_above_the_lock(marks):
    acct = _eod_high_water_at_11k(marks, max_loss_lock=9_500)
    assert account_view(acct, marks, ROLL + 1)["max_loss_floor"] == pytest.approx(9_500)
    assert _mark(acct, marks, 0.995, ROLL + 2) == []  # equity 11,000 − 1,500 = 9,500: at the lock
    _assert_max_loss_breach(_mark(acct, marks, 0.99499, ROLL + 3), acct, floor=9_500, value=1_001)


def test_trailing_max_loss_projection_in_a_check_uses_the_locked_floor(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_intraday", max_loss_lock=9_500)
    _mark(acct, marks, 1.01, T0 + 1)  # equity 11,000, floor locked at 9,500: room 1,500 before the floor
    # a 0.5-lot buy at 1.01 whose stop 0.03 lower risks 1,500 = the room (rule: the stop may not take
    # equity below the floor; (floor + limit − equity) + loss at the stop ≤ max_loss_limit)
    assert acct.check(make_order(quantity=0.5, stop_loss=0.98), marks, T0 + 1).accepted
    d = acct.check(make_order(quantity=0.5, stop_loss=0.9799), marks, T0 + 1)
    assert codes(d) == [ReasonCode.MAX_LOSS_LIMIT]
    assert reason(d, ReasonCode.MAX_LOSS_LIMIT).limit == 1_000
    assert reason(d, ReasonCode.MAX_LOSS_LIMIT).value == pytest.approx(1_005)


# ---------------------------------------------------------------- daily loss reference
def _floating_at_roll(marks, price, **overrides):
    """10,000 USD account (daily loss 500, max loss 2,000) long 1 lot at 1.0, marked at ``price``
    through the 17:00 roll so the new day starts with that floating P&L."""
    acct = _long_one_lot(marks, daily_loss_limit=500, max_loss_limit=2_000, **overrides)
    _mark(acct, marks, price, T0 + 1)
    _mark(acct, marks, price, ROLL)
    assert acct.trading_day == date(2025, 5, 7)
    return acct


def _assert_daily_breach(events, acct, floor, value):
    assert [e["code"] for e in events] == [ReasonCode.DAILY_LOSS_LIMIT]
    ev = events[0]
    assert ev["limit"] == 500
    assert ev["floor"] == pytest.approx(floor) and ev["value"] == pytest.approx(value)
    assert "soft" not in ev


def test_balance_reference_starts_the_day_at_the_balance_despite_floating_profit(marks):
    acct = _floating_at_roll(marks, 1.01)  # balance 10,000, equity 11,000 at the roll
    assert acct.daily_reference() == 10_000
    assert account_view(acct, marks, ROLL)["daily_loss_floor"] == pytest.approx(9_500)
    assert _mark(acct, marks, 0.995, ROLL + 1) == []  # equity 9,500: at the floor
    _assert_daily_breach(_mark(acct, marks, 0.99499, ROLL + 2), acct, floor=9_500, value=501)


def test_max_balance_equity_reference_starts_the_day_at_the_higher_equity(marks):
    acct = _floating_at_roll(marks, 1.01, daily_loss_reference="max_balance_equity")
    assert acct.daily_reference() == pytest.approx(11_000)
    assert account_view(acct, marks, ROLL)["daily_loss_floor"] == pytest.approx(10_500)
    assert _mark(acct, marks, 1.005, ROLL + 1) == []  # equity 10,500: at the floor
    _assert_daily_breach(_mark(acct, marks, 1.00499, ROLL + 2), acct, floor=10_500, value=501)


@pytest.mark.parametrize("reference", ["balance", "max_balance_equity"])
def test_floating_loss_at_the_roll_leaves_the_reference_at_the_balance(marks, reference):
    acct = _floating_at_roll(marks, 0.997, daily_loss_reference=reference)  # equity 9,700 at the roll
    assert acct.day_start_equity == pytest.approx(9_700)
    assert acct.daily_reference() == 10_000
    assert _mark(acct, marks, 0.995, ROLL + 1) == []  # 9,500
    _assert_daily_breach(_mark(acct, marks, 0.99499, ROLL + 2), acct, floor=9_500, value=501)


# ---------------------------------------------------------------- daily loss mode: hard vs soft
def test_hard_daily_loss_breach_fails_the_account_and_kills_it_reduce_only(marks):
    acct = _long_one_lot(marks, daily_loss_limit=500, max_loss_limit=2_000, daily_loss_mode="hard")
    assert _mark(acct, marks, 0.995, T0 + 1) == []
    events = _mark(acct, marks, 0.99499, T0 + 2)
    _assert_daily_breach(events, acct, floor=9_500, value=501)
    assert acct.status is AccountStatus.FAILED
    (switch,) = acct.switches.values()
    assert switch.mode is KillMode.REDUCE_ONLY and switch.breach
    v = account_view(acct, marks, T0 + 2)
    assert v["status"] == "failed" and v["daily_loss_blocked"] is False


def _soft_breached(marks):
    """Soft daily loss 500: long 1 lot, marked to equity 9,499 (soft breach), then back to 1.0."""
    acct = _long_one_lot(marks, daily_loss_limit=500, max_loss_limit=2_000, daily_loss_mode="soft",
                         max_mark_age_seconds=2 * 86_400.0)  # marks stay usable: the age is not under test
    assert _mark(acct, marks, 0.995, T0 + 1) == []  # at the floor: no breach
    assert account_view(acct, marks, T0 + 1)["daily_loss_blocked"] is False
    events = _mark(acct, marks, 0.99499, T0 + 2)
    assert [e["code"] for e in events] == [ReasonCode.DAILY_LOSS_LIMIT]
    ev = events[0]
    assert ev["soft"] is True and ev["type"] == "soft_breach" and ev["account_id"] == "acc-1"
    assert ev["limit"] == 500 and ev["value"] == pytest.approx(501) and ev["floor"] == pytest.approx(9_500)
    assert ev["blocked_day"] == "2025-05-06"
    return acct


def test_soft_daily_loss_breach_keeps_the_account_active_and_blocks_the_day(marks):
    acct = _soft_breached(marks)
    assert acct.status is AccountStatus.ACTIVE
    assert acct.switches == {}
    v = account_view(acct, marks, T0 + 2)
    assert v["status"] == "active" and v["daily_loss_blocked"] is True
    assert v["kill_switch"]["active"] is False
    assert _mark(acct, marks, 0.99, T0 + 3) == []  # reported once per trading day


def test_soft_blocked_day_rejects_new_orders_with_daily_loss_limit_even_after_recovery(marks):
    acct = _soft_breached(marks)
    _mark(acct, marks, 1.0, T0 + 3)  # equity back to 10,000: the exposure rule alone would accept
    d = acct.check(make_order(quantity=0.01), marks, T0 + 3)
    assert codes(d) == [ReasonCode.DAILY_LOSS_LIMIT]
    r = reason(d, ReasonCode.DAILY_LOSS_LIMIT)
    assert r.limit == 500 and r.value is None


def test_soft_blocked_day_still_accepts_reducing_orders(marks):
    acct = _soft_breached(marks)
    for qty in (0.5, 1.0):
        d = acct.check(make_order(side="sell", quantity=qty), marks, T0 + 3)
        assert d.accepted and d.reduces_position and d.reasons == ()


def test_soft_block_ends_at_the_next_trading_day(marks):
    acct = _soft_breached(marks)
    _mark(acct, marks, 1.0, T0 + 3)
    before_roll = ROLL - 1
    assert codes(acct.submit(make_order(quantity=0.01, ts=before_roll), marks, before_roll)) == [
        ReasonCode.DAILY_LOSS_LIMIT]
    out = acct.submit(make_order(quantity=0.01, ts=ROLL), marks, ROLL)
    assert accepted(out), out
    assert acct.status is AccountStatus.ACTIVE
    assert account_view(acct, marks, ROLL)["daily_loss_blocked"] is False


def test_soft_daily_loss_mode_still_fails_the_account_on_max_loss(marks):
    acct = _long_one_lot(marks, daily_loss_limit=500, max_loss_limit=1_000, daily_loss_mode="soft")
    events = _mark(acct, marks, 0.98999, T0 + 1)  # equity 8,999: both floors crossed
    assert [e["code"] for e in events] == [ReasonCode.DAILY_LOSS_LIMIT, ReasonCode.MAX_LOSS_LIMIT]
    assert events[0]["soft"] is True and "soft" not in events[1]
    assert acct.status is AccountStatus.FAILED


def test_a_lock_under_the_starting_floor_never_loosens_the_trailing_floor(marks):
    acct = _long_one_lot(marks, max_loss_mode="trailing_intraday", max_loss_lock=8_000)
    assert account_view(acct, marks, T0)["max_loss_floor"] == pytest.approx(9_000)  # not 8,000
    assert _mark(acct, marks, 0.99, T0 + 1) == []  # equity 9,000: at the floor
    _assert_max_loss_breach(_mark(acct, marks, 0.9899, T0 + 2), acct, floor=9_000, value=1_010)


def test_a_profit_today_is_room_for_the_daily_loss_projection(marks):
    acct = make_account(daily_loss_limit=500, max_loss_limit=5_000, max_leverage=100)
    acct.apply_fill(make_fill(quantity=1.0, price=1.0), marks, T0)
    set_mark(marks, "EURUSD", 1.002, ts=T0 + 1)  # +200 today: 700 of room before the daily floor 9,500
    acct.on_market(marks, T0 + 1)
    assert acct.check(make_order(quantity=0.35, stop_loss=0.982), marks, T0 + 1).accepted  # 700 at the stop
    d = acct.check(make_order(quantity=0.35, stop_loss=0.9819), marks, T0 + 1)
    assert codes(d) == [ReasonCode.DAILY_LOSS_LIMIT]
    assert reason(d, ReasonCode.DAILY_LOSS_LIMIT).value == pytest.approx(500 + 3.5)


def test_a_soft_block_with_equity_still_under_the_floor_gives_one_daily_loss_reason(marks):
    acct = _long_one_lot(marks, daily_loss_limit=500, daily_loss_mode="soft")
    _mark(acct, marks, 0.99, T0 + 1)  # −1,000 today: soft breach, still under the floor
    assert account_view(acct, marks, T0 + 1)["daily_loss_blocked"]
    d = acct.check(make_order(quantity=0.1, stop_loss=0.98), marks, T0 + 1)
    assert [r.code for r in d.reasons].count(ReasonCode.DAILY_LOSS_LIMIT) == 1
    assert reason(d, ReasonCode.DAILY_LOSS_LIMIT).value is not None  # the numeric one is kept
