"""ORDER_RATE_LIMIT: at most ``max_orders_per_second`` checks in the sliding window (now − 1 s, now]."""

from __future__ import annotations

import pytest
from unitkit import T0, accepted, codes, make_account, make_order, reason

from riskactors.domain import ReasonCode


def test_n_checks_in_the_same_second_are_accepted_and_the_next_is_rejected_order_rate_limit(marks):
    acct = make_account()  # moderate: 10 per second
    for _ in range(10):
        d = acct.submit(make_order(), marks, T0)
        assert accepted(d), codes(d)
    d = acct.submit(make_order(), marks, T0)
    assert codes(d) == [ReasonCode.ORDER_RATE_LIMIT]
    r = reason(d, ReasonCode.ORDER_RATE_LIMIT)
    assert r["limit"] == 10 and r["value"] == 11


def test_checks_spread_inside_one_second_count_together(marks):
    acct = make_account(plan="conservative")  # 5 per second
    for i in range(5):
        assert accepted(acct.submit(make_order(), marks, T0 + i * 0.2))
    d = acct.submit(make_order(), marks, T0 + 0.99)
    assert codes(d) == [ReasonCode.ORDER_RATE_LIMIT]


def test_rejected_checks_count_in_the_window(marks):
    acct = make_account(max_orders_per_second=2)
    assert not accepted(acct.submit(make_order(quantity=50.0), marks, T0))
    assert accepted(acct.submit(make_order(), marks, T0))
    assert codes(acct.submit(make_order(), marks, T0)) == [ReasonCode.ORDER_RATE_LIMIT]


def test_one_second_later_orders_are_accepted_again(marks):
    acct = make_account()
    for _ in range(11):
        acct.submit(make_order(), marks, T0)
    assert codes(acct.submit(make_order(), marks, T0 + 0.999)) == [ReasonCode.ORDER_RATE_LIMIT]
    d = acct.submit(make_order(), marks, T0 + 1.0)
    assert accepted(d), codes(d)


def test_idempotent_retry_is_not_counted_again(marks):
    acct = make_account(max_orders_per_second=1)
    o = make_order()
    assert accepted(acct.submit(o, marks, T0))
    for _ in range(5):
        assert accepted(acct.submit(o, marks, T0))


def test_pure_check_does_not_consume_the_rate_window(marks):
    acct = make_account(max_orders_per_second=1)
    for _ in range(5):
        assert acct.check(make_order(), marks, T0).accepted
    assert accepted(acct.submit(make_order(), marks, T0))
    d = acct.check(make_order(), marks, T0)
    assert codes(d) == [ReasonCode.ORDER_RATE_LIMIT]
    assert d.reasons[0].value == pytest.approx(2)
