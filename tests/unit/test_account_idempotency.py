"""Every mutating call is idempotent: a retried order check or fill changes nothing; the same id
with other content is a conflict."""

from __future__ import annotations

import copy

import pytest
from unitkit import T0, make_fill, make_order, set_mark

from riskactors.domain import FillConflict, Order, OrderConflict


def _state(acct):
    return (acct.balance, copy.deepcopy(acct.positions), copy.deepcopy(acct.reservations), acct.day_realized_pnl,
            acct.status, dict(acct.switches))


# ---------------------------------------------------------------- orders
def test_same_order_id_same_content_returns_the_same_decision_and_no_second_reservation(account, marks):
    o = make_order(quantity=0.6)
    first = account.submit(o, marks, T0)
    seq = account.event_seq
    again = account.submit(o, marks, T0 + 0.5)
    assert again == first
    assert len(account.reservations) == 1
    assert account.event_seq == seq
    assert account.reservations[o.order_id].quantity == 0.6


def test_retry_after_state_change_returns_the_original_decision(account, marks):
    o = make_order(quantity=0.6)
    first = account.submit(o, marks, T0)
    account.submit(make_order(quantity=0.4), marks, T0)  # now at 10x: a fresh check of o would reject
    assert account.submit(o, marks, T0 + 1) == first
    assert first["decision"] == "accept"


def test_retried_reject_stays_a_reject_and_reserves_nothing(account, marks):
    o = make_order(quantity=2.0)
    first = account.submit(o, marks, T0)
    assert first["decision"] == "reject"
    assert account.submit(o, marks, T0 + 1) == first
    assert account.reservations == {}


def test_retry_with_a_different_ts_is_the_same_order(account, marks):
    o = make_order(quantity=0.5)
    first = account.submit(o, marks, T0)
    retry = Order(o.order_id, o.account_id, o.instrument, o.side, o.quantity, T0 + 3)
    assert account.submit(retry, marks, T0 + 3) == first


@pytest.mark.parametrize("change", [{"quantity": 0.7}, {"side": "sell"}, {"instrument": "GBPUSD"},
                                    {"price": 1.0}, {"stop_loss": 0.99}, {"take_profit": 1.1}])
def test_same_order_id_different_content_raises_order_conflict(account, marks, change):
    o = make_order(quantity=0.6)
    account.submit(o, marks, T0)
    fields = {"order_id": o.order_id, "account_id": o.account_id, "instrument": o.instrument,
              "side": o.side, "quantity": o.quantity, "ts": o.ts}
    fields.update(change)
    with pytest.raises(OrderConflict) as exc:
        account.submit(Order(**fields), marks, T0)
    assert exc.value.subject == o.order_id and exc.value.code == "ORDER_CONFLICT"
    assert len(account.reservations) == 1 and account.reservations[o.order_id].quantity == 0.6


# ---------------------------------------------------------------- fills
def test_same_fill_id_twice_changes_nothing_the_second_time_and_says_duplicate(account, marks):
    f = make_fill(quantity=0.5, price=1.0, commission=-3.5, swap=-1.0)
    first = account.apply_fill(f, marks, T0)
    assert first["duplicate"] is False
    before = _state(account)
    seq = account.event_seq
    again = account.apply_fill(f, marks, T0 + 1)
    assert again["duplicate"] is True
    assert {k: v for k, v in again.items() if k != "duplicate"} == {k: v for k, v in first.items() if k != "duplicate"}
    assert _state(account) == before
    assert account.balance == pytest.approx(10_000 - 4.5)
    assert account.event_seq == seq


def test_duplicate_closing_fill_does_not_realize_twice(account, marks):
    account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    close = make_fill(side="sell", quantity=0.5, price=1.002)
    account.apply_fill(close, marks, T0)
    assert account.balance == pytest.approx(10_100)
    account.apply_fill(close, marks, T0)
    assert account.balance == pytest.approx(10_100)
    assert account.positions == {}


@pytest.mark.parametrize("change", [{"quantity": 0.6}, {"price": 1.001}, {"side": "sell"}, {"commission": -1.0},
                                    {"swap": -0.5}, {"order_id": "other"}, {"instrument": "GBPUSD"}])
def test_same_fill_id_different_content_raises_fill_conflict(account, marks, change):
    set_mark(marks, "GBPUSD", 1.25)
    f = make_fill(quantity=0.5, price=1.0)
    account.apply_fill(f, marks, T0)
    before = _state(account)
    kwargs = {"instrument": f.instrument, "side": f.side, "quantity": f.quantity, "price": f.price,
              "fill_id": f.fill_id, "order_id": f.order_id, "commission": f.commission, "swap": f.swap}
    kwargs.update(change)
    with pytest.raises(FillConflict) as exc:
        account.apply_fill(make_fill(**kwargs), marks, T0)
    assert exc.value.subject == f.fill_id and exc.value.code == "FILL_CONFLICT"
    assert _state(account) == before
