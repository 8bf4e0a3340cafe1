"""Hedging position mode (MetaTrader hedging accounts): every ticket is its own position, a fill
naming an open ``position_id`` reduces that ticket, invalid fills change nothing, open positions
count tickets, and a hedged pair is charged ``hedged_margin_factor`` of full margin per lot.

Money is USD; EURUSD: 100,000 units per lot, margin rate 1 % (account leverage 1:100).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from unitkit import T0, codes, make_account, make_fill, make_limits, make_order, reason, set_mark

from riskactors.domain import (
    Account,
    AccountStatus,
    InvalidFill,
    KillMode,
    KillScope,
    KillSwitch,
    ReasonCode,
)
from riskactors.domain.views import account_view


def _hedging(**overrides) -> Account:
    """10,000 USD ``moderate`` account in hedging mode (leverage cap lifted)."""
    limits = make_limits(**{"max_leverage": 100, **overrides})
    return Account("h-1", "user-1", "ch-1", "USD", 10_000, "moderate", limits, T0, position_mode="hedging")


def _fill(side, quantity, price, ticket=None, ts=T0, **kw):
    return replace(make_fill("EURUSD", side, quantity, price, account_id="h-1", ts=ts, **kw), position_id=ticket)


def _order(side, quantity, ticket=None, **kw):
    return replace(make_order("EURUSD", side, quantity, account_id="h-1", **kw), position_id=ticket)


def _state(acct):
    """Everything an invalid fill must leave alone."""
    return ({k: (p.quantity, p.average_price, p.realized_pnl) for k, p in acct.positions.items()},
            acct.balance, acct.day_realized_pnl, len(acct.closed_trades), acct.event_seq, acct.day_opened_trades)


# ---------------------------------------------------------------- tickets
def test_fills_with_position_ids_open_separate_tickets_long_and_short(marks):
    acct = _hedging()
    a = acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    b = acct.apply_fill(_fill("sell", 0.5, 1.0, "T2"), marks, T0)
    c = acct.apply_fill(_fill("buy", 0.2, 1.0, "T3"), marks, T0)
    assert {k: p.quantity for k, p in acct.positions.items()} == {"T1": 1.0, "T2": -0.5, "T3": 0.2}
    assert {p.instrument for p in acct.positions.values()} == {"EURUSD"}
    assert a["instrument_lots"] == [1.0, 0.0] and b["instrument_lots"] == [1.0, 0.5]
    assert c["instrument_lots"] == [pytest.approx(1.2), 0.5]
    assert acct.held_lots() == {"EURUSD": (pytest.approx(1.2), 0.5)}
    assert acct.day_opened_trades == 3 and acct.balance == 10_000
    view = account_view(acct, marks, T0)
    assert view["position_mode"] == "hedging"
    assert [(p["position_id"], p["quantity"]) for p in view["positions"]] == [("T1", 1.0), ("T2", -0.5), ("T3", 0.2)]


def test_fill_without_position_id_opens_a_ticket_named_by_the_fill_id(marks):
    acct = _hedging()
    fill = _fill("buy", 0.1, 1.0)
    acct.apply_fill(fill, marks, T0)
    assert list(acct.positions) == [fill.fill_id]


def test_closing_fill_naming_a_long_ticket_realizes_exactly_its_pnl(marks):
    acct = _hedging()
    acct.apply_fill(_fill("buy", 1.0, 1.1, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 1.0, 1.1, "T2"), marks, T0)
    out = acct.apply_fill(_fill("sell", 1.0, 1.105, "T1", ts=T0 + 120), marks, T0 + 120)
    # (1.105 − 1.1) × 1 lot × 100,000 × +1 = +500
    assert out["realized_pnl"] == pytest.approx(500)
    assert out["position"] is None and out["closed_trade"]["position_id"] == "T1"
    assert acct.balance == pytest.approx(10_500)
    assert list(acct.positions) == ["T2"] and acct.positions["T2"].quantity == -1.0  # the hedge is untouched


def test_partial_close_of_a_short_ticket_then_the_rest(marks):
    acct = _hedging()
    acct.apply_fill(_fill("sell", 0.5, 1.1, "S1"), marks, T0)
    out = acct.apply_fill(_fill("buy", 0.2, 1.098, "S1", ts=T0 + 120), marks, T0 + 120)
    # (1.098 − 1.1) × 0.2 × 100,000 × −1 = +40
    assert out["realized_pnl"] == pytest.approx(40) and out["closed_trade"] is None
    assert acct.positions["S1"].quantity == pytest.approx(-0.3)
    out = acct.apply_fill(_fill("buy", 0.3, 1.102, "S1", ts=T0 + 240, commission=-3), marks, T0 + 240)
    # (1.102 − 1.1) × 0.3 × 100,000 × −1 = −60; net −63 with the commission
    assert out["realized_pnl"] == pytest.approx(-60) and out["net_pnl"] == pytest.approx(-63)
    assert acct.positions == {}
    assert acct.balance == pytest.approx(10_000 + 40 - 63)
    trade = out["closed_trade"]
    assert trade["side"] == "sell" and trade["lots"] == pytest.approx(0.5)
    assert trade["pnl"] == pytest.approx(-23)
    assert trade["close_price"] == pytest.approx((1.098 * 0.2 + 1.102 * 0.3) / 0.5)


def test_closed_trades_are_recorded_per_ticket(marks):
    acct = _hedging()
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 1.0, 1.0, "T2"), marks, T0)
    acct.apply_fill(_fill("sell", 1.0, 1.001, "T1", ts=T0 + 100), marks, T0 + 100)
    acct.apply_fill(_fill("buy", 1.0, 1.001, "T2", ts=T0 + 200), marks, T0 + 200)
    trades = {t.position_id: t for t in acct.closed_trades}
    assert list(trades) == ["T1", "T2"]
    assert (trades["T1"].side, trades["T1"].lots, trades["T1"].pnl) == ("buy", 1.0, pytest.approx(100))
    assert (trades["T2"].side, trades["T2"].lots, trades["T2"].pnl) == ("sell", 1.0, pytest.approx(-100))
    assert trades["T1"].open_time == T0 and trades["T1"].close_time == T0 + 100
    assert trades["T2"].hold_seconds == 200
    assert all(t.instrument == "EURUSD" and t.account_id == "h-1" for t in trades.values())
    assert acct.balance == pytest.approx(10_000)


# ---------------------------------------------------------------- invalid fills change nothing
@pytest.mark.parametrize("bad", [
    pytest.param(lambda: _fill("buy", 0.1, 1.0, "T1"), id="same-side-on-a-ticket"),
    pytest.param(lambda: _fill("sell", 1.01, 1.0, "T1"), id="more-than-the-ticket"),
    pytest.param(lambda: _fill("buy", 0.1, 1.0, "C1"), id="already-closed-ticket"),
    pytest.param(lambda: replace(_fill("sell", 0.1, 1.0, "T1"), instrument="GBPUSD"), id="other-instrument"),
])
def test_invalid_hedging_fill_raises_and_changes_nothing(marks, bad):
    set_mark(marks, "GBPUSD", 1.0)
    acct = _hedging()
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 0.5, 1.0, "C1"), marks, T0)
    acct.apply_fill(_fill("buy", 0.5, 1.0, "C1"), marks, T0)  # C1 closed
    before = _state(acct)
    fill = bad()
    with pytest.raises(InvalidFill) as err:
        acct.apply_fill(fill, marks, T0 + 1)
    assert err.value.subject == fill.fill_id
    assert _state(acct) == before
    # not remembered as applied: the same fill_id can be sent again, and fails again
    with pytest.raises(InvalidFill):
        acct.apply_fill(fill, marks, T0 + 1)


def test_closing_exactly_the_ticket_lots_is_valid(marks):
    acct = _hedging()
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 1.0, 1.0, "T1"), marks, T0)
    assert acct.positions == {}


# ---------------------------------------------------------------- MAX_OPEN_POSITIONS counts tickets
def test_open_positions_count_tickets_not_instruments(marks):
    acct = _hedging(max_open_positions=2)
    acct.apply_fill(_fill("buy", 0.1, 1.0, "T1"), marks, T0)
    assert acct.check(_order("sell", 0.1), marks, T0).accepted  # second ticket: 2 ≤ 2
    acct.apply_fill(_fill("sell", 0.1, 1.0, "T2"), marks, T0)
    d = acct.check(_order("buy", 0.1), marks, T0)
    assert codes(d) == [ReasonCode.MAX_OPEN_POSITIONS]
    r = reason(d, ReasonCode.MAX_OPEN_POSITIONS)
    assert r.limit == 2 and r.value == 3


def test_pending_opening_order_counts_as_an_open_ticket(marks):
    acct = _hedging(max_open_positions=2)
    acct.apply_fill(_fill("buy", 0.1, 1.0, "T1"), marks, T0)
    assert acct.submit(_order("buy", 0.1), marks, T0)["decision"] == "accept"
    assert reason(acct.check(_order("buy", 0.1), marks, T0), ReasonCode.MAX_OPEN_POSITIONS).value == 3


# ---------------------------------------------------------------- hedged margin
@pytest.mark.parametrize("factor,lots", [(0.5, 1.0), (0.0, 0.0), (1.0, 2.0)])
def test_hedged_pair_is_charged_the_factor_of_full_margin(marks, factor, lots):
    acct = _hedging(hedged_margin_factor=factor)
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 1.0, 1.0, "T2"), marks, T0)
    view = account_view(acct, marks, T0)
    # margin = charged lots × 100,000 × price 1.0 × 1 % ; 1 lot long + 1 short → |1 − 1| + 2 × factor × 1 lots
    assert view["margin_used"] == pytest.approx(lots * 1_000)
    assert view["notional"] == pytest.approx(lots * 100_000)


def test_unhedged_remainder_is_charged_in_full(marks):
    acct = _hedging(hedged_margin_factor=0.5)
    acct.apply_fill(_fill("buy", 1.5, 1.0, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 1.0, 1.0, "T2"), marks, T0)
    assert account_view(acct, marks, T0)["margin_used"] == pytest.approx((0.5 + 1.0) * 1_000)


# ---------------------------------------------------------------- reducing a ticket
def _killed_with_tickets(marks):
    acct = _hedging()
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    acct.apply_fill(_fill("sell", 0.5, 1.0, "T2"), marks, T0)
    acct.set_kill_switch(KillSwitch(KillScope.ACCOUNT, "h-1", KillMode.REDUCE_ONLY, "ops", "ops", T0), T0)
    return acct


@pytest.mark.parametrize("side,qty,ticket", [("sell", 1.0, "T1"), ("sell", 0.3, "T1"), ("buy", 0.5, "T2")])
def test_order_naming_a_ticket_on_the_opposite_side_reduces_and_passes_reduce_only(marks, side, qty, ticket):
    acct = _killed_with_tickets(marks)
    d = acct.check(_order(side, qty, ticket), marks, T0)
    assert d.accepted and d.reduces_position and d.reasons == ()


@pytest.mark.parametrize("side,qty,ticket", [
    ("sell", 0.1, None),  # opposite side but no ticket: opens a new short ticket
    ("buy", 0.1, "T1"),  # same side as the ticket
    ("sell", 1.01, "T1"),  # more than the ticket
    ("sell", 0.1, "nope"),  # unknown ticket
])
def test_order_that_does_not_reduce_a_ticket_is_blocked_by_reduce_only(marks, side, qty, ticket):
    acct = _killed_with_tickets(marks)
    d = acct.check(_order(side, qty, ticket), marks, T0)
    assert not d.reduces_position
    assert codes(d) == [ReasonCode.KILL_SWITCH]


def test_pending_close_of_a_ticket_shrinks_what_is_still_reducible(marks):
    acct = _killed_with_tickets(marks)
    first = acct.submit(_order("sell", 0.6, "T1"), marks, T0)
    assert first["reduces_position"] is True
    assert acct.check(_order("sell", 0.4, "T1"), marks, T0).reduces_position
    assert not acct.check(_order("sell", 0.41, "T1"), marks, T0).reduces_position


def test_failed_hedging_account_can_close_a_ticket(marks):
    acct = _hedging(daily_loss_limit=500)
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    set_mark(marks, "EURUSD", 0.99, ts=T0 + 1)  # −1,000: daily loss breach
    acct.on_market(marks, T0 + 1)
    assert acct.status is AccountStatus.FAILED
    d = acct.check(_order("sell", 1.0, "T1"), marks, T0 + 1)
    assert d.accepted and d.reduces_position
    assert set(codes(acct.check(_order("sell", 1.0), marks, T0 + 1))) >= {ReasonCode.KILL_SWITCH,
                                                                         ReasonCode.ACCOUNT_NOT_ACTIVE}


@pytest.mark.parametrize("factor,hedge_ok", [(0.5, True), (1.0, False)])
def test_order_check_charges_a_hedge_at_the_factor(marks, factor, hedge_ok):
    # 1,000 USD equity supports 1,000 USD of margin (margin call level 100 %): exactly 1 lot at 1.0
    limits = make_limits(balance=1_000, max_leverage=1_000, hedged_margin_factor=factor)
    acct = Account("h-1", "user-1", "ch-1", "USD", 1_000, "moderate", limits, T0, position_mode="hedging")
    acct.apply_fill(_fill("buy", 1.0, 1.0, "T1"), marks, T0)
    hedge = acct.check(_order("sell", 1.0), marks, T0)  # new short ticket: |1 − 1| + 2 × factor × 1 lots
    assert hedge.accepted is hedge_ok and not hedge.reduces_position
    if not hedge_ok:
        r = reason(hedge, ReasonCode.INSUFFICIENT_MARGIN)
        assert r.limit == pytest.approx(1_000) and r.value == pytest.approx(2_000)
    more = acct.check(_order("buy", 0.01), marks, T0)  # 1.01 lots long
    r = reason(more, ReasonCode.INSUFFICIENT_MARGIN)
    assert r.limit == pytest.approx(1_000) and r.value == pytest.approx(1_010)


def test_fill_without_position_id_of_an_order_naming_a_ticket_closes_that_ticket(marks):
    acct = _hedging()
    acct.apply_fill(_fill("buy", 1.0, 1.1000, ticket="t1"), marks, T0)
    assert acct.submit(_order("sell", 1.0, ticket="t1", order_id="close-t1"), marks, T0 + 1)["reduces_position"]
    acct.apply_fill(replace(_fill("sell", 1.0, 1.1010, ts=T0 + 2), order_id="close-t1"), marks, T0 + 2)
    assert acct.positions == {}  # closed t1, did not open a short hedge
    assert [t.position_id for t in acct.closed_trades] == ["t1"]


@pytest.mark.parametrize("mode", ["hedging", "netting"])
def test_closing_fill_stamped_before_the_position_opened_is_invalid_and_changes_nothing(marks, mode):
    acct = _hedging() if mode == "hedging" else make_account(max_leverage=100)
    acct.apply_fill(replace(_fill("buy", 1.0, 1.1, ticket="t1", ts=T0 + 10), account_id=acct.account_id), marks, T0 + 10)
    before = _state(acct)
    with pytest.raises(InvalidFill) as exc:
        acct.apply_fill(replace(_fill("sell", 1.0, 1.1, ticket="t1", ts=T0), account_id=acct.account_id), marks, T0)
    assert exc.value.field == "ts"
    assert _state(acct) == before and not acct.closed_trades
