"""The front's peer book for HEDGING_ACROSS_ACCOUNTS: which of a user's other accounts are long
or short an instrument, from positions after fills and pending opening orders."""

from __future__ import annotations

from riskactors.domain import PeerBook


def test_peers_are_the_users_other_accounts_by_direction_never_the_account_itself():
    book = PeerBook()
    book.update_position("u", "A", "EURUSD", 1.0, 0.0)
    book.update_position("u", "B", "EURUSD", 0.0, 0.5)
    book.update_position("u", "C", "EURUSD", 0.2, 0.2)  # a hedging account holding both sides
    book.update_position("v", "D", "EURUSD", 0.0, 3.0)  # another user
    assert book.peers("u", "A", "EURUSD", 0.0) == (("C",), ("B", "C"))
    assert book.peers("u", "X", "GBPUSD", 0.0) == ((), ())


def test_a_flat_account_drops_out():
    book = PeerBook()
    book.update_position("u", "A", "EURUSD", 1.0, 0.0)
    book.update_position("u", "A", "EURUSD", 0.0, 0.0)
    assert book.peers("u", "B", "EURUSD", 0.0) == ((), ())


def test_a_pending_opening_order_counts_until_filled_cancelled_or_expired():
    book = PeerBook()
    book.add_pending("o1", "u", "A", "EURUSD", -1, expires_at=30.0, now=0.0)
    assert book.peers("u", "B", "EURUSD", 29.9) == ((), ("A",))
    assert book.peers("u", "B", "EURUSD", 30.0) == ((), ())  # expired at 30 s
    book.add_pending("o2", "u", "A", "EURUSD", 1, expires_at=60.0, now=30.0)
    book.remove_pending("o2")  # filled or cancelled
    assert book.peers("u", "B", "EURUSD", 31.0) == ((), ())
    book.remove_pending("never-seen")  # unknown ids are ignored


def test_orders_never_filled_nor_cancelled_are_pruned_when_later_ones_arrive():
    book = PeerBook()
    for i in range(1_000):
        book.add_pending(f"o{i}", "u", f"A{i}", "EURUSD", 1, expires_at=i + 30.0, now=float(i))
    assert len(book._pending) == 30  # expiring after now = 999: orders 970 … 999
