"""Fills (netting): average price on add, realized P&L on close = (close − avg) × lots × contract
size × quote→account rate, partial close, flip through flat, commission and swap to the balance."""

from __future__ import annotations

import pytest
from unitkit import T0, make_account, make_fill, make_marks, make_order, set_mark

from riskactors.domain import UnknownInstrument
from riskactors.domain.views import account_view


def test_opening_fill_creates_a_position_at_the_fill_price(account, marks):
    out = account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    pos = account.positions["EURUSD"]
    assert (pos.quantity, pos.average_price, pos.opened_at) == (0.5, 1.0, T0)
    assert out["realized_pnl"] == 0.0 and out["balance"] == 10_000
    assert out["position"]["quantity"] == 0.5 and out["position"]["average_price"] == 1.0


def test_realized_pnl_on_full_close_is_price_move_times_lots_times_contract_size(account, marks):
    account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    out = account.apply_fill(make_fill(side="sell", quantity=0.5, price=1.002), marks, T0)
    assert out["realized_pnl"] == pytest.approx(0.002 * 0.5 * 100_000)  # 100 USD
    assert account.balance == pytest.approx(10_100)
    assert account.positions == {}
    assert out["position"] is None


def test_short_position_realizes_profit_when_price_falls(account, marks):
    account.apply_fill(make_fill(side="sell", quantity=0.3, price=1.0), marks, T0)
    out = account.apply_fill(make_fill(side="buy", quantity=0.3, price=0.999), marks, T0)
    assert out["realized_pnl"] == pytest.approx(30.0)


def test_commission_and_swap_are_added_to_the_balance(account, marks):
    account.apply_fill(make_fill(quantity=0.5, price=1.0, commission=-3.5), marks, T0)
    out = account.apply_fill(make_fill(side="sell", quantity=0.5, price=1.002, commission=-3.5, swap=-1.25),
                             marks, T0)
    assert out["realized_pnl"] == pytest.approx(100.0)
    assert out["net_pnl"] == pytest.approx(100.0 - 3.5 - 1.25)
    assert account.balance == pytest.approx(10_000 + 100 - 7 - 1.25)
    assert account.day_realized_pnl == pytest.approx(100 - 7 - 1.25)


def test_positive_swap_credits_the_balance(account, marks):
    account.apply_fill(make_fill(quantity=0.1, price=1.0, swap=2.0), marks, T0)
    assert account.balance == pytest.approx(10_002)


def test_partial_close_realizes_the_closed_part_and_keeps_the_average(marks):
    acct = make_account(balance=100_000)
    acct.apply_fill(make_fill(quantity=1.0, price=1.0), marks, T0)
    out = acct.apply_fill(make_fill(side="sell", quantity=0.4, price=1.005), marks, T0)
    assert out["realized_pnl"] == pytest.approx(0.005 * 0.4 * 100_000)  # 200
    pos = acct.positions["EURUSD"]
    assert pos.quantity == pytest.approx(0.6) and pos.average_price == 1.0
    assert pos.realized_pnl == pytest.approx(200)


def test_average_price_on_add_is_lot_weighted(account, marks):
    account.apply_fill(make_fill(quantity=0.2, price=1.0), marks, T0)
    account.apply_fill(make_fill(quantity=0.3, price=1.005), marks, T0)
    pos = account.positions["EURUSD"]
    assert pos.quantity == pytest.approx(0.5)
    assert pos.average_price == pytest.approx((0.2 * 1.0 + 0.3 * 1.005) / 0.5)  # 1.003
    out = account.apply_fill(make_fill(side="sell", quantity=0.5, price=1.004), marks, T0)
    assert out["realized_pnl"] == pytest.approx(0.001 * 0.5 * 100_000)  # 50


def test_flip_through_flat_realizes_the_old_position_and_opens_the_rest_at_the_fill_price(account, marks):
    account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    out = account.apply_fill(make_fill(side="sell", quantity=0.8, price=1.002, ts=T0 + 60), marks, T0 + 60)
    assert out["realized_pnl"] == pytest.approx(100.0)  # only the 0.5 lots closed
    pos = account.positions["EURUSD"]
    assert pos.quantity == pytest.approx(-0.3)
    assert pos.average_price == 1.002
    assert pos.opened_at == T0 + 60
    # closing the new short at 1.001 realizes 0.001 x 0.3 x 100,000 = 30
    out = account.apply_fill(make_fill(side="buy", quantity=0.3, price=1.001), marks, T0 + 60)
    assert out["realized_pnl"] == pytest.approx(30.0)
    assert account.balance == pytest.approx(10_130)


def test_contract_size_of_gold_is_100_ounces(account):
    marks = make_marks(("XAUUSD", 2000.0))
    account.apply_fill(make_fill(instrument="XAUUSD", quantity=0.1, price=2000.0), marks, T0)
    out = account.apply_fill(make_fill(instrument="XAUUSD", side="sell", quantity=0.1, price=2010.0), marks, T0)
    assert out["realized_pnl"] == pytest.approx(10.0 * 0.1 * 100)  # 100 USD


def test_floating_pnl_uses_bid_for_longs_and_ask_for_shorts(account):
    marks = make_marks(("EURUSD", 1.0, 1.0002), ("GBPUSD", 1.25, 1.2503))
    account.apply_fill(make_fill(quantity=1.0, price=1.0002), marks, T0)  # bought at the ask
    account.apply_fill(make_fill(instrument="GBPUSD", side="sell", quantity=1.0, price=1.25), marks, T0)
    v = account_view(account, marks, T0)
    by = {p["instrument"]: p for p in v["positions"]}
    assert by["EURUSD"]["floating_pnl"] == pytest.approx(-20.0)
    assert by["GBPUSD"]["floating_pnl"] == pytest.approx(-30.0)
    assert v["equity"] == pytest.approx(10_000 - 50)
    assert v["floating_pnl"] == pytest.approx(-50)


def test_fill_of_an_unknown_instrument_raises_and_changes_nothing(account, marks):
    seq = account.event_seq
    with pytest.raises(UnknownInstrument):
        account.apply_fill(make_fill(instrument="NOPE"), marks, T0)
    assert account.positions == {} and account.event_seq == seq


def test_fill_is_journalled(account, marks):
    f = make_fill(quantity=0.5, price=1.0, commission=-1.0)
    account.apply_fill(f, marks, T0)
    ev = [e for e in account.events if e["type"] == "fill_applied"]
    assert len(ev) == 1 and ev[0]["fill_id"] == f.fill_id and ev[0]["commission"] == -1.0


def test_view_notional_margin_and_leverage(account, marks):
    set_mark(marks, "EURUSD", 1.0)
    account.apply_fill(make_fill(quantity=0.5, price=1.0), marks, T0)
    v = account_view(account, marks, T0)
    assert v["notional"] == pytest.approx(50_000)
    assert v["margin_used"] == pytest.approx(500)  # 1:100
    assert v["free_margin"] == pytest.approx(9_500)
    assert v["margin_level"] == pytest.approx(2_000)  # per cent
    assert v["leverage"] == pytest.approx(5.0)


@pytest.mark.parametrize("change", [{"side": "hold"}, {"quantity": 0.0}, {"quantity": -0.5},
                                    {"quantity": float("nan")}, {"price": 0.0}, {"price": -1.0}])
def test_malformed_fill_raises_value_error_before_any_state_change(account, marks, change):
    later = T0 + 6 * 3600  # after the 17:00 New York roll: not even the day may roll
    seq, day = account.event_seq, account.trading_day
    kwargs = {"quantity": 0.5, "price": 1.0, "ts": later, "commission": -1.0}
    kwargs.update(change)
    with pytest.raises(ValueError):
        account.apply_fill(make_fill(**kwargs), marks, later)
    assert account.positions == {} and account.balance == 10_000
    assert account.event_seq == seq and account.trading_day == day


def test_fill_of_another_instrument_does_not_release_the_order_reservation(account, marks):
    set_mark(marks, "GBPUSD", 1.25)
    o = make_order(quantity=0.5)
    account.submit(o, marks, T0)
    account.apply_fill(make_fill(instrument="GBPUSD", quantity=0.5, price=1.25, order_id=o.order_id), marks, T0)
    assert account.reservations[o.order_id].quantity == 0.5
