"""The running reservation index (per-instrument buy/sell sums, expiry heap) agrees with a naive
recomputation over ``Account.reservations`` after any sequence of reserve/fill/cancel/expire."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unitkit import T0, make_account, make_fill, make_marks, make_order

from riskactors.domain import AccountConfig

SYMBOLS = ["EURUSD", "GBPUSD"]
step = st.tuples(st.sampled_from(["order", "fill", "cancel", "tick"]), st.sampled_from(SYMBOLS),
                 st.sampled_from(["buy", "sell"]), st.integers(1, 30), st.integers(0, 10))


def _naive(acct):
    sums = {}
    for r in acct.reservations.values():
        b, s = sums.get(r.instrument, (0.0, 0.0))
        sums[r.instrument] = (b + r.quantity, s) if r.quantity > 0 else (b, s + r.quantity)
    return sums


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40))
def test_reservation_index_matches_naive_sums(steps):
    acct = make_account("aggressive", 1_000_000, config=AccountConfig(reservation_ttl=5.0),
                        max_position_lots=1_000, max_open_positions=10, max_orders_per_second=1_000,
                        max_leverage=1e6, account_leverage=1e6)
    marks = make_marks(("EURUSD", 1.0), ("GBPUSD", 1.0))
    now = T0
    orders = []
    for kind, sym, side, lots, dt in steps:
        now += dt * 0.5
        if kind == "order":
            o = make_order(sym, side, lots / 100, ts=now)
            if acct.submit(o, marks, now)["decision"] == "accept":
                orders.append(o)
        elif kind == "fill" and orders:
            o = orders[lots % len(orders)]
            acct.apply_fill(make_fill(o.instrument, o.side, o.quantity / 2, 1.0, order_id=o.order_id, ts=now),
                            marks, now)
        elif kind == "cancel" and orders:
            acct.cancel(orders[lots % len(orders)].order_id, now)
        else:
            acct.advance(now, marks)
        naive = _naive(acct)
        index = acct.reserved_instruments()
        assert set(index) == set(naive)
        for inst, (b, s) in naive.items():
            assert index[inst][0] == pytest.approx(b, abs=1e-9)
            assert index[inst][1] == pytest.approx(s, abs=1e-9)
        if kind == "tick":  # advance() expired everything due
            assert all(r.expires_at > now for r in acct.reservations.values())
