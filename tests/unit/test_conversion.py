"""Quote → account currency conversion from FX marks: direct pair, inverse pair, cross through
USD; never an assumed 1.0; a fill without a rate raises and changes nothing."""

from __future__ import annotations

import copy

import pytest
from unitkit import T0, make_account, make_fill, make_marks, make_order, set_mark

from riskactors.domain import ConversionUnavailable, LatestMarks, Mark, default_registry
from riskactors.domain.views import account_view


# ---------------------------------------------------------------- LatestMarks.rate
def test_rate_of_a_currency_to_itself_is_one():
    assert make_marks().rate("USD", "USD") == 1.0


def test_direct_pair_gives_its_mid_and_the_inverse_gives_one_over_mid():
    marks = make_marks(("USDJPY", 149.9, 150.1))
    assert marks.rate("USD", "JPY") == pytest.approx(150.0)
    assert marks.rate("JPY", "USD") == pytest.approx(1 / 150.0)


def test_cross_through_usd_when_no_direct_pair_is_marked():
    marks = make_marks(("USDCHF", 0.9), ("EURUSD", 1.1))
    assert marks.rate("CHF", "EUR") == pytest.approx(1 / 0.9 / 1.1)
    set_mark(marks, "EURCHF", 0.97)  # a marked direct pair wins over the cross
    assert marks.rate("CHF", "EUR") == pytest.approx(1 / 0.97)


def test_no_rate_is_none_never_one():
    marks = make_marks(("EURUSD", 1.1), ("XAUUSD", 2000.0))
    assert marks.rate("JPY", "USD") is None
    assert marks.rate("JPY", "EUR") is None  # EUR->USD known, JPY->USD not
    assert marks.rate("XAU", "USD") is None  # only fx pairs convert


def test_freshest_of_two_symbols_for_the_same_pair_is_used():
    marks = make_marks(("USDJPY", 150.0, 150.0, T0), ("usdjpy.", 151.0, 151.0, T0 + 1))
    assert marks.rate("USD", "JPY") == pytest.approx(151.0)


def test_older_mark_is_ignored():
    marks = LatestMarks(default_registry())
    assert marks.apply(Mark("EURUSD", 1.1, 1.1, T0 + 5))
    assert not marks.apply(Mark("EURUSD", 1.0, 1.0, T0))
    assert marks.get("EURUSD").bid == 1.1
    assert len(marks) == 1


# ---------------------------------------------------------------- realized P&L in account currency
def test_usd_account_trading_usdjpy_realizes_jpy_pnl_converted_at_one_over_usdjpy_mid(account):
    marks = make_marks(("USDJPY", 150.0))
    account.apply_fill(make_fill(instrument="USDJPY", quantity=1.0, price=150.0), marks, T0)
    set_mark(marks, "USDJPY", 151.49, 151.51, ts=T0 + 1)
    out = account.apply_fill(make_fill(instrument="USDJPY", side="sell", quantity=1.0, price=151.5), marks, T0 + 1)
    pnl_jpy = 1.5 * 1.0 * 100_000
    assert out["realized_pnl"] == pytest.approx(pnl_jpy / 151.5)  # 990.10 USD
    assert account.balance == pytest.approx(10_000 + pnl_jpy / 151.5)


def test_usd_account_usdjpy_floating_pnl_is_converted_at_the_latest_mark(account):
    marks = make_marks(("USDJPY", 150.0))
    account.apply_fill(make_fill(instrument="USDJPY", quantity=1.0, price=150.0), marks, T0)
    set_mark(marks, "USDJPY", 151.5, ts=T0 + 1)
    v = account_view(account, marks, T0 + 1)
    assert v["floating_pnl"] == pytest.approx(150_000 / 151.5)
    assert v["notional"] == pytest.approx(100_000)  # 1 lot of USD is 100,000 USD


def test_jpy_account_trading_eurusd_converts_usd_pnl_via_usdjpy():
    acct = make_account(plan="two_step_phase1", balance=10_000_000, currency="JPY")
    marks = make_marks(("EURUSD", 1.1), ("USDJPY", 150.0))
    acct.apply_fill(make_fill(quantity=1.0, price=1.1), marks, T0)
    set_mark(marks, "EURUSD", 1.11, ts=T0 + 1)
    set_mark(marks, "USDJPY", 152.0, ts=T0 + 1)
    out = acct.apply_fill(make_fill(side="sell", quantity=1.0, price=1.11), marks, T0 + 1)
    assert out["realized_pnl"] == pytest.approx(0.01 * 100_000 * 152.0)  # 152,000 JPY
    assert acct.balance == pytest.approx(10_152_000)


def test_eur_account_trading_usdchf_converts_chf_pnl_through_usd():
    acct = make_account(balance=10_000, currency="EUR")
    marks = make_marks(("USDCHF", 0.9), ("EURUSD", 1.1))  # no EURCHF mark: CHF->USD->EUR
    acct.apply_fill(make_fill(instrument="USDCHF", quantity=1.0, price=0.9), marks, T0)
    set_mark(marks, "USDCHF", 0.91, ts=T0 + 1)
    out = acct.apply_fill(make_fill(instrument="USDCHF", side="sell", quantity=1.0, price=0.91), marks, T0 + 1)
    pnl_chf = 0.01 * 100_000
    assert out["realized_pnl"] == pytest.approx(pnl_chf * (1 / 0.91) * (1 / 1.1))
    assert acct.positions == {}


def test_eur_account_gbpjpy_cross_check_uses_converted_notional():
    acct = make_account(balance=100_000, currency="EUR", max_leverage=100)
    marks = make_marks(("GBPJPY", 200.0), ("USDJPY", 160.0), ("EURUSD", 1.25))
    # 1 lot GBPJPY = 100,000 x 200 JPY = 20,000,000 JPY -> /160 USD -> /1.25 EUR = 100,000 EUR
    acct.apply_fill(make_fill(instrument="GBPJPY", quantity=1.0, price=200.0), marks, T0)
    assert account_view(acct, marks, T0)["notional"] == pytest.approx(100_000)


# ---------------------------------------------------------------- unknown rate
def test_fill_without_a_conversion_rate_raises_and_changes_nothing(account):
    marks = make_marks(("EURJPY", 160.0), ("EURUSD", 1.1))
    account.apply_fill(make_fill(quantity=0.1, price=1.1), marks, T0)
    o = "ord-pending"
    account.submit(make_order(order_id=o, quantity=0.1), marks, T0)
    before = (account.balance, copy.deepcopy(account.positions), copy.deepcopy(account.reservations),
              account.event_seq, account.trading_day, account.day_start_balance)
    f = make_fill(instrument="EURJPY", quantity=0.1, price=160.0, order_id=o, commission=-5.0)
    later = T0 + 6 * 3600  # after the 17:00 New York roll: not even the day roll may happen
    with pytest.raises(ConversionUnavailable) as exc:
        account.apply_fill(f, marks, later)
    assert exc.value.code == "NO_CONVERSION_RATE" and "JPY->USD" in exc.value.message
    after = (account.balance, account.positions, account.reservations, account.event_seq, account.trading_day,
             account.day_start_balance)
    assert after == before
    # once the rate is known the same fill applies (the failed attempt was not remembered)
    set_mark(marks, "USDJPY", 150.0, ts=T0 + 1)
    out = account.apply_fill(f, marks, T0 + 1)
    assert out["duplicate"] is False and "EURJPY" in account.positions


def test_mark_with_the_same_ts_replaces_the_held_one():
    marks = LatestMarks(default_registry())
    assert marks.apply(Mark("EURUSD", 1.1, 1.1, T0))
    assert marks.apply(Mark("EURUSD", 1.2, 1.2, T0))
    assert marks.get("EURUSD").bid == 1.2
