"""Soft-threshold warnings: raised at exactly ``warning_fraction`` × limit, not just below it,
and never turning an accept into a reject."""

from __future__ import annotations

import pytest
from unitkit import T0, make_account, make_fill, make_order, warning, warning_codes

from riskactors.domain import WarningCode
from riskactors.domain.views import account_view


# ---------------------------------------------------------------- LEVERAGE_WARNING
def test_leverage_at_exactly_80_percent_of_max_warns(account, marks):
    d = account.check(make_order(quantity=0.8), marks, T0)  # 80,000 / 10,000 = 8x = 0.8 x 10x
    assert d.accepted
    w = warning(d, WarningCode.LEVERAGE_WARNING)
    assert w.limit == 10 and w.value == pytest.approx(8.0)
    assert warning_codes(d) == [WarningCode.LEVERAGE_WARNING]


def test_leverage_just_below_80_percent_of_max_does_not_warn(account, marks):
    d = account.check(make_order(quantity=0.79), marks, T0)
    assert d.accepted and warning_codes(d) == []


# ---------------------------------------------------------------- MARGIN_WARNING
def _margin_bound():
    return make_account(account_leverage=10, max_leverage=100)  # margin 10 % of notional


def test_margin_at_exactly_80_percent_of_allowed_warns(marks):
    d = _margin_bound().check(make_order(quantity=0.8), marks, T0)  # 8,000 of 10,000
    assert d.accepted
    w = warning(d, WarningCode.MARGIN_WARNING)
    assert w.limit == pytest.approx(10_000) and w.value == pytest.approx(8_000)
    assert warning_codes(d) == [WarningCode.MARGIN_WARNING]


def test_margin_just_below_80_percent_of_allowed_does_not_warn(marks):
    d = _margin_bound().check(make_order(quantity=0.79), marks, T0)
    assert d.accepted and warning_codes(d) == []


def test_margin_warning_follows_margin_call_level(marks):
    acct = make_account(account_leverage=10, max_leverage=100, margin_call_level=200)  # allowed 5,000
    assert WarningCode.MARGIN_WARNING in warning_codes(acct.check(make_order(quantity=0.4), marks, T0))
    assert warning_codes(acct.check(make_order(quantity=0.39), marks, T0)) == []


# ---------------------------------------------------------------- DAILY_LOSS_WARNING
def test_daily_loss_at_exactly_80_percent_of_limit_warns(account, marks):
    account.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-400), marks, T0)
    d = account.check(make_order(), marks, T0)
    assert d.accepted
    w = warning(d, WarningCode.DAILY_LOSS_WARNING)
    assert w.limit == 500 and w.value == pytest.approx(400)
    assert warning_codes(d) == [WarningCode.DAILY_LOSS_WARNING]


def test_daily_loss_just_below_80_percent_of_limit_does_not_warn(account, marks):
    account.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-399.99), marks, T0)
    d = account.check(make_order(), marks, T0)
    assert d.accepted and warning_codes(d) == []


def test_daily_loss_warning_includes_the_loss_at_the_stop_loss(account, marks):
    d = account.check(make_order(quantity=0.4, stop_loss=0.99), marks, T0)  # 400 at the stop
    assert d.accepted
    assert warning(d, WarningCode.DAILY_LOSS_WARNING).value == pytest.approx(400)
    assert warning_codes(account.check(make_order(quantity=0.39, stop_loss=0.99), marks, T0)) == []


# ---------------------------------------------------------------- MAX_LOSS_WARNING
def _max_loss_bound():
    return make_account(daily_loss_limit=5_000, max_loss_limit=2_000)


def test_max_loss_at_exactly_80_percent_of_limit_warns(marks):
    acct = _max_loss_bound()
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-1_600), marks, T0)
    d = acct.check(make_order(), marks, T0)
    assert d.accepted
    w = warning(d, WarningCode.MAX_LOSS_WARNING)
    assert w.limit == 2_000 and w.value == pytest.approx(1_600)
    assert warning_codes(d) == [WarningCode.MAX_LOSS_WARNING]


def test_max_loss_just_below_80_percent_of_limit_does_not_warn(marks):
    acct = _max_loss_bound()
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-1_599.99), marks, T0)
    d = acct.check(make_order(), marks, T0)
    assert d.accepted and warning_codes(d) == []


# ---------------------------------------------------------------- elsewhere
def test_warning_fraction_override_moves_the_threshold(marks):
    acct = make_account(warning_fraction=0.5)
    assert warning_codes(acct.check(make_order(quantity=0.5), marks, T0)) == [WarningCode.LEVERAGE_WARNING]
    assert warning_codes(acct.check(make_order(quantity=0.49), marks, T0)) == []


def test_reducing_order_reports_the_current_warnings(account, marks):
    account.apply_fill(make_fill(quantity=0.8, price=1.0), marks, T0)  # 8x now
    d = account.check(make_order(side="sell", quantity=0.1), marks, T0)
    assert d.accepted and d.reduces_position
    assert warning_codes(d) == [WarningCode.LEVERAGE_WARNING]


def test_account_view_lists_the_current_warnings(account, marks):
    account.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-400), marks, T0)
    assert [w["code"] for w in account_view(account, marks, T0)["warnings"]] == ["DAILY_LOSS_WARNING"]
