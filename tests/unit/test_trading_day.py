"""Trading-day boundary (default 17:00 America/New_York, DST-aware) and the day roll that resets
the daily loss reference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from unitkit import NY, T0, codes, make_account, make_fill, make_order, set_mark

from riskactors.domain import AccountConfig, ReasonCode, TradingDayCalendar
from riskactors.domain.views import account_view


def ny(*args) -> float:
    return datetime(*args, tzinfo=NY).timestamp()


def utc(*args) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


# ---------------------------------------------------------------- calendar
def test_default_calendar_is_1700_new_york():
    cal = TradingDayCalendar()
    assert (cal.rollover, cal.tz) == ("17:00", "America/New_York")
    assert AccountConfig().calendar == cal


def test_day_of_just_before_and_at_the_roll():
    cal = TradingDayCalendar()
    assert cal.day_of(ny(2025, 5, 6, 16, 59, 59)) == date(2025, 5, 6)
    assert cal.day_of(ny(2025, 5, 6, 16, 59, 59) + 0.999) == date(2025, 5, 6)
    assert cal.day_of(ny(2025, 5, 6, 17, 0, 0)) == date(2025, 5, 7)
    assert cal.day_of(ny(2025, 5, 7, 0, 0, 0)) == date(2025, 5, 7)
    assert cal.day_of(ny(2025, 5, 7, 16, 59, 59)) == date(2025, 5, 7)


def test_start_of_is_the_previous_local_day_at_the_roll():
    cal = TradingDayCalendar()
    assert cal.start_of(date(2025, 5, 7)) == ny(2025, 5, 6, 17, 0)
    for d in (date(2025, 3, 9), date(2025, 3, 10), date(2025, 11, 2), date(2025, 11, 3), date(2025, 12, 31)):
        start = cal.start_of(d)
        assert cal.day_of(start) == d
        assert cal.day_of(start - 0.001) == d - timedelta(days=1)


def test_roll_follows_new_york_daylight_saving_time_in_utc():
    cal = TradingDayCalendar()
    # EDT (UTC-4): 17:00 NY = 21:00 UTC; EST (UTC-5): 17:00 NY = 22:00 UTC
    assert cal.day_of(utc(2025, 7, 1, 20, 59, 59)) == date(2025, 7, 1)
    assert cal.day_of(utc(2025, 7, 1, 21, 0, 0)) == date(2025, 7, 2)
    assert cal.day_of(utc(2025, 1, 15, 21, 30)) == date(2025, 1, 15)
    assert cal.day_of(utc(2025, 1, 15, 22, 0)) == date(2025, 1, 16)


def test_other_rollover_and_zone_rolls_at_local_midnight():
    cal = TradingDayCalendar("00:00", "Europe/Prague")
    prague = ZoneInfo("Europe/Prague")
    before = cal.day_of(datetime(2025, 5, 6, 23, 59, 59, tzinfo=prague).timestamp())
    at = cal.day_of(datetime(2025, 5, 7, 0, 0, tzinfo=prague).timestamp())
    end = cal.day_of(datetime(2025, 5, 7, 23, 59, 59, tzinfo=prague).timestamp())
    assert at == before + timedelta(days=1) and end == at
    # a roll before noon labels the day by the date it starts on: the calendar date (FTMO's day)
    assert at == date(2025, 5, 7)
    assert cal.start_of(date(2025, 5, 7)) == datetime(2025, 5, 7, 0, 0, tzinfo=prague).timestamp()


@pytest.mark.parametrize("rollover,tz", [("25:00", "America/New_York"), ("5pm", "America/New_York"),
                                         ("17:00", "Mars/Olympus_Mons")])
def test_bad_calendar_configuration_raises_value_error(rollover, tz):
    with pytest.raises(ValueError):
        TradingDayCalendar(rollover, tz)


# ---------------------------------------------------------------- the roll on an account
def test_event_after_1700_new_york_resets_day_start_balance_and_daily_loss(marks):
    acct = make_account()
    assert acct.trading_day == date(2025, 5, 6)
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-300), marks, T0)
    assert account_view(acct, marks, T0)["daily_loss"] == pytest.approx(300)
    # before the roll: 300 lost today + 300 at the stop > 500
    assert codes(acct.check(make_order(quantity=0.3, stop_loss=0.99), marks, T0)) == [ReasonCode.DAILY_LOSS_LIMIT]

    acct.on_market(marks, ny(2025, 5, 6, 16, 59, 59))
    assert acct.trading_day == date(2025, 5, 6) and acct.day_start_balance == 10_000

    roll = ny(2025, 5, 6, 17, 0, 0)
    set_mark(marks, "EURUSD", 1.0, ts=roll)
    acct.on_market(marks, roll)
    assert acct.trading_day == date(2025, 5, 7)
    assert acct.trading_days == 1  # days with a trade opened: only 2025-05-06
    assert acct.day_start_balance == pytest.approx(9_700)
    assert acct.day_start_equity == pytest.approx(9_700)
    assert acct.day_realized_pnl == 0.0
    v = account_view(acct, marks, roll)
    assert v["daily_loss"] == 0.0 and v["daily_loss_floor"] == pytest.approx(9_200)
    assert v["max_loss"] == pytest.approx(300)  # max loss still counts from the initial balance
    assert acct.check(make_order(quantity=0.5, stop_loss=0.99), marks, roll).accepted
    rolled = [e for e in acct.events if e["type"] == "day_rolled"]
    assert len(rolled) == 1 and rolled[0]["trading_day"] == "2025-05-07"


def test_submit_and_fill_also_roll_the_day(marks):
    acct = make_account()
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-300), marks, T0)
    later = ny(2025, 5, 6, 18, 0)
    acct.submit(make_order(ts=later), marks, later)
    assert acct.trading_day == date(2025, 5, 7) and acct.day_start_balance == pytest.approx(9_700)
    acct2 = make_account()
    acct2.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-300, ts=later), marks, later)
    # the roll happens before the fill: the commission counts in the new day
    assert acct2.day_start_balance == 10_000 and acct2.trading_day == date(2025, 5, 7)


def test_several_days_without_events_roll_once_per_day_each_at_its_boundary(marks):
    acct = make_account()
    acct.on_market(marks, ny(2025, 5, 9, 12, 0))
    assert acct.trading_day == date(2025, 5, 9) and acct.trading_days == 0
    rolled = [e for e in acct.events if e["type"] == "day_rolled"]
    assert [e["ended"] for e in rolled] == ["2025-05-06", "2025-05-07", "2025-05-08"]
    assert [e["at"] for e in rolled] == [ny(2025, 5, d, 17, 0) for d in (6, 7, 8)]  # the due instants


def test_day_roll_across_spring_forward_happens_at_1700_edt(marks):
    # 2025-03-09: New York moves from EST (UTC-5) to EDT (UTC-4) at 02:00
    created = ny(2025, 3, 9, 10, 0)
    acct = make_account(now=created)
    assert acct.trading_day == date(2025, 3, 9)
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-300, ts=created), marks, created)
    acct.on_market(marks, utc(2025, 3, 9, 20, 59, 59))  # 16:59:59 EDT
    assert acct.trading_day == date(2025, 3, 9) and acct.day_start_balance == 10_000
    acct.on_market(marks, utc(2025, 3, 9, 21, 0, 0))  # 17:00 EDT (would be 16:00 on the old EST offset)
    assert acct.trading_day == date(2025, 3, 10) and acct.day_start_balance == pytest.approx(9_700)


def test_day_roll_across_fall_back_happens_at_1700_est(marks):
    # 2025-11-02: New York moves from EDT (UTC-4) back to EST (UTC-5) at 02:00
    created = ny(2025, 11, 2, 10, 0)
    acct = make_account(now=created)
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-300, ts=created), marks, created)
    acct.on_market(marks, utc(2025, 11, 2, 21, 30))  # 16:30 EST (17:30 on the old EDT offset)
    assert acct.trading_day == date(2025, 11, 2) and acct.day_start_balance == 10_000
    acct.on_market(marks, utc(2025, 11, 2, 22, 0))  # 17:00 EST
    assert acct.trading_day == date(2025, 11, 3) and acct.day_start_balance == pytest.approx(9_700)


def test_account_on_a_custom_calendar_rolls_at_its_own_boundary(marks):
    cal = TradingDayCalendar("00:00", "Europe/Prague")
    prague = ZoneInfo("Europe/Prague")
    created = datetime(2025, 5, 6, 12, 0, tzinfo=prague).timestamp()
    acct = make_account(now=created, config=AccountConfig(calendar=cal))
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-100, ts=created), marks, created)
    acct.on_market(marks, ny(2025, 5, 6, 17, 30))  # 23:30 Prague: no roll on this calendar
    assert acct.day_start_balance == 10_000
    acct.on_market(marks, datetime(2025, 5, 7, 0, 0, tzinfo=prague).timestamp())
    assert acct.day_start_balance == pytest.approx(9_900)
