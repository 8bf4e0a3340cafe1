"""Position-reducing orders: never blocked by exposure rules, so a trader can always close; a
close larger than the position (or than what is not already being closed) is not reducing."""

from __future__ import annotations

import pytest
from unitkit import T0, accepted, codes, make_account, make_fill, make_limits, make_marks, make_order, reason, set_mark

from riskactors.domain import AccountStatus, ReasonCode


def _over_limits_account(marks):
    """100,000 USD, long 4 lots, then limits tightened far below the position."""
    acct = make_account(balance=100_000)
    acct.apply_fill(make_fill(quantity=4.0, price=1.0), marks, T0)
    tight = make_limits("moderate", 100_000, max_position_lots=1, max_leverage=1, max_open_positions=1,
                        account_leverage=1, max_orders_per_second=1)
    acct.set_limits(tight, "ops", "tighten", T0)
    return acct


def test_account_over_its_limits_after_a_limit_change_can_still_close_partly(marks):
    acct = _over_limits_account(marks)
    d = acct.check(make_order(side="sell", quantity=1.0), marks, T0)
    assert d.accepted and d.reduces_position
    assert d.reasons == ()


def test_account_over_its_limits_after_a_limit_change_can_close_fully(marks):
    acct = _over_limits_account(marks)
    d = acct.check(make_order(side="sell", quantity=4.0), marks, T0)
    assert d.accepted and d.reduces_position


def test_account_over_its_limits_cannot_add(marks):
    acct = _over_limits_account(marks)
    d = acct.check(make_order(side="buy", quantity=0.01), marks, T0)
    assert not d.reduces_position
    assert {ReasonCode.MAX_POSITION_SIZE, ReasonCode.MAX_LEVERAGE, ReasonCode.INSUFFICIENT_MARGIN} <= set(codes(d))


def test_close_one_step_beyond_the_position_is_not_reducing_and_meets_exposure_rules(marks):
    acct = _over_limits_account(marks)
    d = acct.check(make_order(side="sell", quantity=4.01), marks, T0)
    assert not d.reduces_position
    assert not d.accepted
    # worst case per instrument is max(|+4|, |+4 - 4.01|): the unfilled order leaves the +4 lots
    assert reason(d, ReasonCode.MAX_POSITION_SIZE).value == pytest.approx(4.0)
    assert ReasonCode.MAX_LEVERAGE in codes(d)


def test_pending_reducing_orders_shrink_what_is_still_closable(marks):
    acct = make_account()
    acct.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    first = acct.submit(make_order(side="sell", quantity=0.3), marks, T0)
    assert first["reduces_position"] is True
    assert acct.check(make_order(side="sell", quantity=0.2), marks, T0).reduces_position
    assert not acct.check(make_order(side="sell", quantity=0.21), marks, T0).reduces_position


def test_same_side_order_is_never_reducing(marks):
    acct = make_account()
    acct.apply_fill(make_fill(side="sell", quantity=0.5, price=1.0), marks, T0)
    assert not acct.check(make_order(side="sell", quantity=0.01), marks, T0).reduces_position
    assert acct.check(make_order(side="buy", quantity=0.5), marks, T0).reduces_position


def test_reducing_order_needs_no_price_and_no_rate(account):
    marks = make_marks(("USDJPY", 150.0))
    account.apply_fill(make_fill(instrument="USDJPY", quantity=0.1, price=150.0), marks, T0)
    empty = make_marks()  # marks lost, e.g. after a restart: closing still passes
    d = account.check(make_order(instrument="USDJPY", side="sell", quantity=0.1), empty, T0)
    assert d.accepted and d.reduces_position
    set_mark(empty, "EURUSD", 1.0)
    assert codes(account.check(make_order(instrument="USDJPY", side="buy", quantity=0.1), empty, T0)) == [
        ReasonCode.NO_PRICE, ReasonCode.NO_CONVERSION_RATE]


def test_reducing_orders_are_not_rate_limited(marks):
    acct = make_account(max_orders_per_second=1)
    acct.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    assert accepted(acct.submit(make_order(side="buy"), marks, T0))
    assert codes(acct.submit(make_order(side="buy"), marks, T0)) == [ReasonCode.ORDER_RATE_LIMIT]
    assert accepted(acct.submit(make_order(side="sell", quantity=0.5), marks, T0))


def test_failed_account_close_is_reserved_as_reducing(marks):
    acct = make_account()
    acct.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    acct.set_status(AccountStatus.FAILED, "ops", "test", T0)
    o = make_order(side="sell", quantity=0.5)
    assert accepted(acct.submit(o, marks, T0))
    assert acct.reservations[o.order_id].reduces_position is True
    assert acct.reservations[o.order_id].quantity == -0.5
