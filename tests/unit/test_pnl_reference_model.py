"""Cross-check of the netting P&L (average price, partial closes, flips) against a naive cash-flow
reference model: whatever the path, total P&L = Σ cash flows of the fills + position × mark price
× contract size (money in USD, EURUSD on a USD account, so the conversion rate is 1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unitkit import T0, make_account, make_fill, make_marks, set_mark

from riskactors.domain.views import account_view

CONTRACT = 100_000

fills = st.lists(
    st.tuples(st.sampled_from(["buy", "sell"]),
              st.integers(min_value=1, max_value=300),        # hundredths of a lot
              st.integers(min_value=9_000, max_value=11_000),  # price in 1/10,000
              st.integers(min_value=-500, max_value=0)),       # commission in cents
    min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(steps=fills, last=st.integers(min_value=9_000, max_value=11_000))
def test_balance_plus_floating_equals_the_naive_cash_flow_model(steps, last):
    acct = make_account(balance=1_000_000)
    marks = make_marks(("EURUSD", 1.0))
    cash = 0.0
    lots = 0.0
    for i, (side, hundredths, px, cents) in enumerate(steps):
        q, price, commission = hundredths / 100, px / 10_000, cents / 100
        acct.apply_fill(make_fill(side=side, quantity=q, price=price, commission=commission), marks, T0 + i)
        sign = 1 if side == "buy" else -1
        cash += -sign * q * price * CONTRACT + commission
        lots += sign * q
    mark = last / 10_000
    set_mark(marks, "EURUSD", mark, ts=T0 + len(steps))
    view = account_view(acct, marks, T0 + len(steps))
    expected_equity = 1_000_000 + cash + lots * mark * CONTRACT
    assert view["equity"] == pytest.approx(expected_equity, rel=1e-9, abs=1e-4)
    held = acct.positions.get("EURUSD")
    assert (held.quantity if held else 0.0) == pytest.approx(lots, abs=1e-9)
    if held is None:
        assert view["floating_pnl"] == 0.0
        assert acct.balance == pytest.approx(1_000_000 + cash, rel=1e-9, abs=1e-4)
