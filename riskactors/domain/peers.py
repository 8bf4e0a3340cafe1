"""Which direction each user holds per instrument across their accounts (rule
``HEDGING_ACROSS_ACCOUNTS``).

A user's accounts may live on different hosts, so no single account actor can see them all.
The front keeps this book from what passes through it: the position of every account after
each fill, and accepted orders that open exposure until they are filled, cancelled or their
reservation expires. A check then carries the user's *other* accounts that are long or short
the instrument (``Order.peers``). Source of the rule: FTMO's and FundingPips' terms forbid
opposite positions on one instrument across a trader's accounts.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

__all__ = ["PeerBook"]


class PeerBook:
    """Per user and instrument: accounts long, accounts short, pending opening orders."""

    def __init__(self) -> None:
        # (user, instrument) -> account -> (long lots, short lots)
        self._held: dict[tuple[str, str], dict[str, tuple[float, float]]] = defaultdict(dict)
        # order id -> (user, instrument, account, sign, expires_at)
        self._pending: dict[str, tuple[str, str, str, int, float]] = {}
        self._pending_by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._expiry: list[tuple[float, str]] = []  # (expires_at, order id): pending orders are pruned

    def update_position(self, user_id: str, account_id: str, instrument: str, long_lots: float,
                        short_lots: float) -> None:
        """Record the account's lots on ``instrument`` after a fill (both ≥ 0)."""
        key = (user_id, instrument)
        if long_lots > 0 or short_lots > 0:
            self._held[key][account_id] = (long_lots, short_lots)
        else:
            self._held[key].pop(account_id, None)
            if not self._held[key]:
                del self._held[key]

    def add_pending(self, order_id: str, user_id: str, account_id: str, instrument: str, sign: int,
                    expires_at: float, now: float) -> None:
        """An accepted order that opens exposure (``sign`` +1 buy, −1 sell) until ``expires_at``.

        Pending orders expired at ``now`` are forgotten first, so orders that are never filled
        nor cancelled do not accumulate."""
        heap = self._expiry
        while heap and heap[0][0] <= now:
            expired_at, old = heapq.heappop(heap)
            item = self._pending.get(old)
            if item is not None and item[4] == expired_at:
                self.remove_pending(old)
        self._pending[order_id] = (user_id, instrument, account_id, sign, expires_at)
        self._pending_by_key[(user_id, instrument)].add(order_id)
        heapq.heappush(heap, (expires_at, order_id))

    def remove_pending(self, order_id: str) -> None:
        """Forget a pending order (filled or cancelled). Unknown ids are ignored."""
        item = self._pending.pop(order_id, None)
        if item is not None:
            key = (item[0], item[1])
            self._pending_by_key[key].discard(order_id)
            if not self._pending_by_key[key]:
                del self._pending_by_key[key]

    def peers(self, user_id: str, account_id: str, instrument: str, now: float) -> tuple[tuple[str, ...],
                                                                                           tuple[str, ...]]:
        """(accounts long, accounts short) of the user's other accounts on ``instrument``,
        positions and unexpired pending orders included."""
        key = (user_id, instrument)
        longs: set[str] = set()
        shorts: set[str] = set()
        for acct, (long_lots, short_lots) in self._held.get(key, {}).items():
            if acct == account_id:
                continue
            if long_lots > 0:
                longs.add(acct)
            if short_lots > 0:
                shorts.add(acct)
        for oid in list(self._pending_by_key.get(key, ())):
            _, _, acct, sign, expires_at = self._pending[oid]
            if expires_at <= now:
                self.remove_pending(oid)
                continue
            if acct != account_id:
                (longs if sign > 0 else shorts).add(acct)
        return tuple(sorted(longs)), tuple(sorted(shorts))
