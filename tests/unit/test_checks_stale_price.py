"""Rule ``STALE_PRICE``: a position-increasing order is never priced on an old mark or rate.

Worked numbers: the maximum mark age is 300 s (every instrument of the shipped registry) unless
the plan overrides it; the age is the check's time minus the mark's ``ts``, never below 0. A
market order is priced on the mark (ask for a buy); a limit order on its own price, so only its
P&L conversion rate can be stale. A reducing order is never rejected for staleness.
"""

from __future__ import annotations

import pytest
from unitkit import T0, codes, make_account, make_fill, make_marks, make_order, reason, set_mark, warning, warning_codes

from riskactors.domain import Order, ReasonCode, WarningCode, account_view


def _long(marks, **overrides):
    """A 10,000 USD account holding 0.1 lot EURUSD (bought at 1.0 at T0)."""
    acct = make_account(**overrides)
    acct.apply_fill(make_fill(quantity=0.1, price=1.0, ts=T0), marks, T0)
    return acct


def test_a_market_order_on_a_mark_exactly_the_maximum_age_old_is_accepted(marks):
    d = make_account().check(make_order(ts=T0 + 300), marks, T0 + 300)
    assert d.accepted, codes(d)


def test_a_market_order_on_a_mark_just_over_the_maximum_age_is_rejected_with_limit_and_value(marks):
    d = make_account().check(make_order(ts=T0 + 300.001), marks, T0 + 300.001)
    assert codes(d) == [ReasonCode.STALE_PRICE]
    r = reason(d, ReasonCode.STALE_PRICE)
    assert r.limit == 300 and r.value == pytest.approx(300.001)
    assert "EURUSD" in r.message and "300" in r.message


def test_a_mark_stamped_after_the_check_has_age_zero(marks):
    set_mark(marks, "EURUSD", 1.0, ts=T0 + 50)
    assert make_account().check(make_order(ts=T0 + 10), marks, T0 + 10).accepted


def test_a_limit_order_is_priced_on_its_own_price_not_on_the_stale_mark(marks):
    d = make_account().check(make_order(price=1.0, ts=T0 + 3_600), marks, T0 + 3_600)
    assert d.accepted, codes(d)


def test_a_reducing_order_on_a_stale_mark_is_accepted(marks):
    acct = _long(marks)
    later = T0 + 3_600
    close = make_order(side="sell", quantity=0.1, ts=later)
    assert acct.check(close, marks, later).accepted
    assert codes(acct.check(make_order(side="buy", quantity=0.1, ts=later), marks, later)) == [ReasonCode.STALE_PRICE]


def test_a_hedging_close_of_a_ticket_on_a_stale_mark_is_accepted(marks):
    acct = make_account()
    acct.position_mode = acct.position_mode.HEDGING
    acct.apply_fill(make_fill(quantity=0.2, price=1.0, ts=T0, fill_id="t-1"), marks, T0)
    later = T0 + 7_200
    close = Order("c-1", "acc-1", "EURUSD", "sell", 0.2, later, position_id="t-1")
    assert acct.check(close, marks, later).accepted
    opening = Order("c-2", "acc-1", "EURUSD", "sell", 0.2, later)  # no ticket named: opens one
    assert codes(acct.check(opening, marks, later)) == [ReasonCode.STALE_PRICE]


def test_the_plan_overrides_the_maximum_for_every_instrument(marks):
    acct = make_account(max_mark_age_seconds=10)
    assert acct.check(make_order(ts=T0 + 10), marks, T0 + 10).accepted
    r = reason(acct.check(make_order(ts=T0 + 11), marks, T0 + 11), ReasonCode.STALE_PRICE)
    assert (r.limit, r.value) == (10, 11)


def test_warn_action_accepts_with_a_stale_price_warning(marks):
    acct = make_account(stale_price_action="warn")
    d = acct.check(make_order(ts=T0 + 301), marks, T0 + 301)
    assert d.accepted and WarningCode.STALE_PRICE_WARNING in warning_codes(d)
    w = warning(d, WarningCode.STALE_PRICE_WARNING)
    assert (w.limit, w.value) == (300, 301)


def test_a_direct_conversion_rate_older_than_the_maximum_is_stale():
    # EURJPY on a USD account converts JPY → USD through the USDJPY mark
    marks = make_marks(("EURJPY", 160.0, 160.0, T0 + 400), ("USDJPY", 145.0, 145.0, T0))
    acct = make_account(max_leverage=100)
    fresh = T0 + 300
    assert acct.check(make_order("EURJPY", ts=fresh), marks, fresh).accepted
    later = T0 + 300.5
    r = reason(acct.check(make_order("EURJPY", ts=later), marks, later), ReasonCode.STALE_PRICE)
    assert r.value == pytest.approx(300.5) and "JPY->USD" in r.message and "USDJPY" in r.message


def test_a_rate_crossed_through_usd_is_as_old_as_its_older_leg():
    # EURCAD on an MXN account: CAD → USD (USDCAD) × USD → MXN (USDMXN)
    marks = make_marks(("EURCAD", 1.5, 1.5, T0 + 500), ("USDCAD", 1.37, 1.37, T0 + 100), ("USDMXN", 18.0, 18.0, T0 + 500))
    acct = make_account(currency="MXN", balance=200_000, max_leverage=100, daily_loss_limit=10_000,
                        max_loss_limit=20_000)
    assert acct.check(make_order("EURCAD", ts=T0 + 400), marks, T0 + 400).accepted  # older leg 300 s
    d = acct.check(make_order("EURCAD", ts=T0 + 401), marks, T0 + 401)
    r = reason(d, ReasonCode.STALE_PRICE)
    assert r.value == pytest.approx(301) and "CAD->MXN" in r.message and "USDCAD × USDMXN" in r.message


def test_views_show_each_positions_mark_age_at_the_views_as_of(marks):
    acct = _long(marks)
    view = account_view(acct, marks, T0 + 42)
    assert view["as_of"] == T0 + 42 and view["positions"][0]["mark_age_seconds"] == 42
