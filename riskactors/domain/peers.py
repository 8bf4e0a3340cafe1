"""Which direction a user holds on an instrument in their *other* accounts (rule
``HEDGING_ACROSS_ACCOUNTS``).

Every account of a user lives on one host (placement by user, see
``riskactors.actors.placement``), so the host derives the peers of a check from its own
accounts, inside the actor call that decides it: exact with any number of fronts, and nothing
to keep or rebuild elsewhere. A peer is *long* if it holds long lots on the instrument or has a
pending opening buy reserved there (not yet filled, cancelled or expired), *short* likewise.
Source of the rule: FTMO's and FundingPips' terms forbid opposite positions on one instrument
across a trader's accounts.
"""

from __future__ import annotations

from collections.abc import Iterable

from .accountstate import AccountState

__all__ = ["directions", "peers_of"]


def directions(acct: AccountState, instrument: str) -> tuple[bool, bool]:
    """(long, short) of ``acct`` on ``instrument``: open positions and opening reservations."""
    long = short = False
    for p in acct.positions.values():
        if p.instrument == instrument:
            long = long or p.quantity > 0
            short = short or p.quantity < 0
    buys, sells = acct.reserved_lots(instrument, opening_only=True)
    return long or buys > 0, short or sells < 0


def peers_of(accounts: Iterable[AccountState], account_id: str, instrument: str) -> tuple[tuple[str, ...],
                                                                                      tuple[str, ...]]:
    """(accounts long, accounts short) on ``instrument`` among ``accounts`` (a user's accounts),
    ``account_id`` itself left out; each sorted by id."""
    longs: list[str] = []
    shorts: list[str] = []
    for acct in accounts:
        if acct.account_id == account_id:
            continue
        long, short = directions(acct, instrument)
        if long:
            longs.append(acct.account_id)
        if short:
            shorts.append(acct.account_id)
    return tuple(sorted(longs)), tuple(sorted(shorts))
