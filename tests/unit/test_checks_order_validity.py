"""INVALID_ORDER, UNKNOWN_INSTRUMENT, NO_PRICE and NO_CONVERSION_RATE at their boundaries."""

from __future__ import annotations

import math

import pytest
from unitkit import T0, accepted, codes, make_account, make_marks, make_order, reason, set_mark

from riskactors.domain import ReasonCode


# ---------------------------------------------------------------- INVALID_ORDER
@pytest.mark.parametrize("quantity", [0.0, -0.01, -1.0, math.nan, math.inf])
def test_non_positive_or_non_finite_quantity_is_rejected_invalid_order(account, marks, quantity):
    d = account.check(make_order(quantity=quantity), marks, T0)
    assert not d.accepted
    assert ReasonCode.INVALID_ORDER in codes(d)
    assert "quantity" in reason(d, ReasonCode.INVALID_ORDER).message


def test_minimum_lot_quantity_is_accepted(account, marks):
    d = account.check(make_order(quantity=0.01), marks, T0)
    assert d.accepted, codes(d)


@pytest.mark.parametrize("side", ["hold", "BUY", "", "long"])
def test_bad_side_is_rejected_invalid_order_naming_the_side(account, marks, side):
    d = account.check(make_order(side=side), marks, T0)
    assert codes(d) == [ReasonCode.INVALID_ORDER]
    assert "side" in d.reasons[0].message


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_buy_and_sell_sides_are_accepted(account, marks, side):
    assert account.check(make_order(side=side), marks, T0).accepted


@pytest.mark.parametrize("quantity", [0.015, 0.011, 1.005])
def test_quantity_not_a_multiple_of_the_lot_step_is_rejected_invalid_order(account, marks, quantity):
    d = account.check(make_order(quantity=quantity), marks, T0)
    assert ReasonCode.INVALID_ORDER in codes(d)
    assert "lot step" in reason(d, ReasonCode.INVALID_ORDER).message


@pytest.mark.parametrize("quantity", [0.02, 0.07, 0.29, 0.57, 1.01, 2.01, 4.99])
def test_quantity_on_the_lot_step_is_valid_despite_float_representation(marks, quantity):
    acct = make_account(balance=1_000_000)
    d = acct.check(make_order(quantity=quantity), marks, T0)
    assert d.accepted, codes(d)


def test_quantity_under_the_minimum_lot_is_rejected_invalid_order(account, marks):
    d = account.check(make_order(quantity=0.005), marks, T0)
    assert ReasonCode.INVALID_ORDER in codes(d)
    assert any("minimum" in r.message for r in d.reasons)


@pytest.mark.parametrize("field", ["price", "stop_loss", "take_profit"])
@pytest.mark.parametrize("value", [-1.0, 0.0])
def test_non_positive_price_fields_are_rejected_invalid_order(account, marks, field, value):
    d = account.check(make_order(**{field: value}), marks, T0)
    assert not d.accepted
    assert ReasonCode.INVALID_ORDER in codes(d)
    assert any(field in r.message for r in d.reasons if r.code == ReasonCode.INVALID_ORDER)


def test_smallest_positive_limit_price_is_valid(account, marks):
    d = account.check(make_order(price=0.00001, side="buy"), marks, T0)
    assert ReasonCode.INVALID_ORDER not in codes(d)
    assert d.accepted


def test_every_invalid_field_is_reported_separately(account, marks):
    d = account.check(make_order(side="hold", quantity=-1, price=-1.0), marks, T0)
    msgs = [r.message for r in d.reasons if r.code == ReasonCode.INVALID_ORDER]
    assert len(msgs) == 3
    assert any("side" in m for m in msgs) and any("quantity" in m for m in msgs) and any("price" in m for m in msgs)


def test_invalid_orders_do_not_count_in_the_rate_window(marks):
    acct = make_account(max_orders_per_second=1)
    acct.submit(make_order(quantity=-1), marks, T0)
    d = acct.submit(make_order(), marks, T0)
    assert accepted(d), codes(d)


# ---------------------------------------------------------------- UNKNOWN_INSTRUMENT
def test_unknown_symbol_is_rejected_unknown_instrument(account, marks):
    d = account.check(make_order(instrument="FOOBAR"), marks, T0)
    assert codes(d) == [ReasonCode.UNKNOWN_INSTRUMENT]
    assert "FOOBAR" in d.reasons[0].message
    assert d.reasons[0].limit is None and d.reasons[0].value is None


def test_symbols_are_case_sensitive_eurusd_dot_is_known_but_eurusd_lowercase_without_dot_is_not(account):
    marks = make_marks(("eurusd.", 1.0))
    assert account.check(make_order(instrument="eurusd."), marks, T0).accepted
    assert codes(account.check(make_order(instrument="eurusd"), marks, T0)) == [ReasonCode.UNKNOWN_INSTRUMENT]


# ---------------------------------------------------------------- NO_PRICE
def test_market_order_without_any_mark_is_rejected_no_price(account):
    marks = make_marks()
    d = account.check(make_order(instrument="EURUSD"), marks, T0)
    assert codes(d) == [ReasonCode.NO_PRICE]
    assert "EURUSD" in d.reasons[0].message


def test_limit_price_makes_an_unmarked_instrument_priceable(account):
    marks = make_marks()
    d = account.check(make_order(instrument="EURUSD", price=1.0), marks, T0)
    assert d.accepted, codes(d)


def test_limit_price_on_unmarked_instrument_is_still_checked_against_leverage(account):
    marks = make_marks()
    # 1 lot at 1.0 = 100,000 USD = 10x of 10,000: at the limit
    assert account.check(make_order(quantity=1.0, price=1.0), marks, T0).accepted
    d = account.check(make_order(quantity=1.0, price=1.01), marks, T0)
    r = reason(d, ReasonCode.MAX_LEVERAGE)
    assert r.limit == 10.0 and r.value == pytest.approx(10.1)


def test_mark_on_another_instrument_does_not_price_the_order(account):
    marks = make_marks(("GBPUSD", 1.3))
    assert codes(account.check(make_order(instrument="EURUSD"), marks, T0)) == [ReasonCode.NO_PRICE]


# ---------------------------------------------------------------- NO_CONVERSION_RATE
def test_usd_account_trading_eurjpy_without_any_jpy_usd_mark_is_rejected_no_conversion_rate(account):
    # EURJPY is priced, and EURUSD is marked, but JPY->USD needs USDJPY (or usdjpy.):
    # the cross through USD does not apply because USD is one of the two currencies.
    marks = make_marks(("EURJPY", 160.0), ("EURUSD", 1.1))
    d = account.check(make_order(instrument="EURJPY"), marks, T0)
    assert codes(d) == [ReasonCode.NO_CONVERSION_RATE]
    assert "JPY->USD" in d.reasons[0].message


def test_usd_account_trading_eurjpy_is_priceable_once_usdjpy_is_marked(account):
    marks = make_marks(("EURJPY", 160.0), ("EURUSD", 1.1))
    set_mark(marks, "USDJPY", 150.0)
    d = account.check(make_order(instrument="EURJPY"), marks, T0)
    assert d.accepted, codes(d)


def test_usd_account_trading_eurjpy_accepts_the_broker_usdjpy_dot_symbol_as_rate(account):
    marks = make_marks(("EURJPY", 160.0), ("usdjpy.", 150.0))
    assert account.check(make_order(instrument="EURJPY"), marks, T0).accepted


def test_no_price_and_no_conversion_rate_are_both_reported(account):
    marks = make_marks()
    d = account.check(make_order(instrument="EURJPY"), marks, T0)
    assert sorted(codes(d)) == sorted([ReasonCode.NO_PRICE, ReasonCode.NO_CONVERSION_RATE])


def test_eur_account_trading_gbpjpy_without_usd_legs_is_rejected_no_conversion_rate():
    acct = make_account(currency="EUR")
    marks = make_marks(("GBPJPY", 190.0), ("USDJPY", 150.0))  # JPY->USD known, USD->EUR not
    assert codes(acct.check(make_order(instrument="GBPJPY"), marks, T0)) == [ReasonCode.NO_CONVERSION_RATE]
    set_mark(marks, "EURUSD", 1.1)  # now JPY->USD->EUR
    assert acct.check(make_order(instrument="GBPJPY"), marks, T0).accepted


def test_reason_with_non_finite_numbers_serializes_them_as_null():
    from riskactors.domain import Reason

    d = Reason("MAX_LEVERAGE", "equity ≤ 0", float("inf"), float("nan")).to_dict()
    assert d == {"code": "MAX_LEVERAGE", "limit": None, "value": None, "message": "equity ≤ 0"}
