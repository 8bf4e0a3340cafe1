"""Reservations: an accepted order holds its exposure until filled, cancelled or expired, so two
orders that each fit but together exceed a limit are not both accepted."""

from __future__ import annotations

import pytest
from unitkit import T0, accepted, codes, make_account, make_fill, make_order, reason

from riskactors.domain import AccountConfig, ReasonCode, UnknownOrder


# ---------------------------------------------------------------- two orders, one limit
def test_two_orders_each_within_max_position_lots_second_rejected(marks):
    acct = make_account(balance=100_000)  # 5 lots, 10x
    assert accepted(acct.submit(make_order(quantity=3.0), marks, T0))
    d = acct.submit(make_order(quantity=3.0), marks, T0)
    assert codes(d) == [ReasonCode.MAX_POSITION_SIZE]
    r = reason(d, ReasonCode.MAX_POSITION_SIZE)
    assert r["limit"] == 5.0 and r["value"] == pytest.approx(6.0)
    assert len(acct.reservations) == 1


def test_two_orders_each_within_max_leverage_second_rejected(account, marks):
    assert accepted(account.submit(make_order(quantity=0.6), marks, T0))  # 6x
    d = account.submit(make_order(quantity=0.6), marks, T0)  # 12x together
    assert codes(d) == [ReasonCode.MAX_LEVERAGE]
    assert reason(d, ReasonCode.MAX_LEVERAGE)["value"] == pytest.approx(12.0)
    assert accepted(account.submit(make_order(quantity=0.4), marks, T0))  # exactly 10x together


def test_opposite_reservations_on_a_flat_instrument_count_the_worst_side_only(marks):
    acct = make_account(balance=100_000)
    assert accepted(acct.submit(make_order(side="buy", quantity=5.0), marks, T0))
    assert accepted(acct.submit(make_order(side="sell", quantity=5.0), marks, T0))
    assert codes(acct.submit(make_order(side="sell", quantity=0.01), marks, T0)) == [ReasonCode.MAX_POSITION_SIZE]


def test_reservation_is_recorded_with_signed_quantity_and_expiry(account, marks):
    o = make_order(side="sell", quantity=0.2, price=1.001)
    account.submit(o, marks, T0)
    r = account.reservations[o.order_id]
    assert r.quantity == -0.2 and r.price == 1.001 and r.instrument == "EURUSD"
    assert r.created_at == T0 and r.expires_at == T0 + 30.0
    assert r.reduces_position is False


def test_rejected_order_holds_no_reservation(account, marks):
    o = make_order(quantity=2.0)
    assert not accepted(account.submit(o, marks, T0))
    assert o.order_id not in account.reservations


# ---------------------------------------------------------------- release by fill
def test_full_fill_releases_the_reservation_into_the_position(marks):
    acct = make_account(balance=100_000)
    o = make_order(quantity=3.0)
    acct.submit(o, marks, T0)
    acct.apply_fill(make_fill(quantity=3.0, price=1.0, order_id=o.order_id), marks, T0)
    assert acct.reservations == {}
    assert acct.positions["EURUSD"].quantity == 3.0
    assert accepted(acct.submit(make_order(quantity=2.0), marks, T0))


def test_partial_fill_releases_only_the_filled_part(marks):
    acct = make_account(balance=100_000)
    o = make_order(quantity=3.0)
    acct.submit(o, marks, T0)
    acct.apply_fill(make_fill(quantity=1.0, price=1.0, order_id=o.order_id), marks, T0)
    assert acct.reservations[o.order_id].quantity == pytest.approx(2.0)
    assert acct.positions["EURUSD"].quantity == 1.0
    # position 1 + reserved 2 = 3: room for exactly 2 more lots
    d = acct.check(make_order(quantity=2.01), marks, T0)
    assert reason(d, ReasonCode.MAX_POSITION_SIZE).value == pytest.approx(5.01)
    assert accepted(acct.submit(make_order(quantity=2.0), marks, T0))
    acct.apply_fill(make_fill(quantity=2.0, price=1.0, order_id=o.order_id), marks, T0)
    assert o.order_id not in acct.reservations


def test_fill_without_order_id_leaves_reservations_alone(account, marks):
    o = make_order(quantity=0.5)
    account.submit(o, marks, T0)
    account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    assert account.reservations[o.order_id].quantity == 0.5


# ---------------------------------------------------------------- release by cancel
def test_cancel_releases_the_reservation(account, marks):
    o = make_order(quantity=0.6)
    account.submit(o, marks, T0)
    out = account.cancel(o.order_id, T0 + 1)
    assert out["released"] is True and out["reservation"]["quantity"] == 0.6
    assert account.reservations == {}
    assert accepted(account.submit(make_order(quantity=1.0), marks, T0 + 1))
    assert any(e["type"] == "order_cancelled" and e["order_id"] == o.order_id for e in account.events)


def test_cancel_is_idempotent(account, marks):
    o = make_order(quantity=0.6)
    account.submit(o, marks, T0)
    account.cancel(o.order_id, T0)
    seq = account.event_seq
    again = account.cancel(o.order_id, T0)
    assert again == {"order_id": o.order_id, "account_id": "acc-1", "released": False, "reservation": None}
    assert account.event_seq == seq


def test_cancel_of_a_rejected_order_releases_nothing(account, marks):
    o = make_order(quantity=2.0)
    account.submit(o, marks, T0)
    assert account.cancel(o.order_id, T0)["released"] is False


def test_cancel_of_an_unknown_order_raises_unknown_order(account):
    with pytest.raises(UnknownOrder) as exc:
        account.cancel("never-seen", T0)
    assert exc.value.subject == "never-seen" and exc.value.code == "UNKNOWN_ORDER"


# ---------------------------------------------------------------- release by expiry
def test_reservation_expires_after_its_ttl(marks):
    acct = make_account(balance=100_000, config=AccountConfig(reservation_ttl=5.0))
    o = make_order(quantity=3.0)
    acct.submit(o, marks, T0)
    assert codes(acct.submit(make_order(quantity=3.0), marks, T0 + 4.999)) == [ReasonCode.MAX_POSITION_SIZE]
    assert accepted(acct.submit(make_order(quantity=3.0), marks, T0 + 5.0))
    assert o.order_id not in acct.reservations
    expired = [e for e in acct.events if e["type"] == "reservation_expired"]
    assert [e["order_id"] for e in expired] == [o.order_id]


def test_advance_expires_due_reservations_only(marks):
    acct = make_account(config=AccountConfig(reservation_ttl=10.0))
    early, late = make_order(), make_order()
    acct.submit(early, marks, T0)
    acct.submit(late, marks, T0 + 5)
    acct.advance(T0 + 10, marks)
    assert list(acct.reservations) == [late.order_id]
    acct.advance(T0 + 15, marks)
    assert acct.reservations == {}


def test_pure_check_does_not_expire_or_reserve(marks):
    acct = make_account(config=AccountConfig(reservation_ttl=1.0))
    o = make_order()
    acct.submit(o, marks, T0)
    acct.check(make_order(), marks, T0 + 100)
    assert list(acct.reservations) == [o.order_id]


def test_fill_after_expiry_still_applies_to_the_position(marks):
    acct = make_account(config=AccountConfig(reservation_ttl=1.0))
    o = make_order(quantity=0.5)
    acct.submit(o, marks, T0)
    acct.apply_fill(make_fill(quantity=0.5, price=1.0, order_id=o.order_id, ts=T0 + 2), marks, T0 + 2)
    assert acct.reservations == {}
    assert acct.positions["EURUSD"].quantity == 0.5
