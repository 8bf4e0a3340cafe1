"""User, challenge and firm kill switches on a host, applied to each account when it is next
touched instead of to every account in the call that sets them.

A scope switch set on a host of 12,500 accounts used to visit each of them inside the call
(about 12 ms per host, 115 ms for a firm switch at 100,000 accounts on this machine). Now the
call appends it to a log and answers: O(1) per host. Every path that reads or changes an
account first brings it up to date with the log (:meth:`ScopeSwitches.sync`: the switches set
or released since, matching its user, challenge or the firm, applied in log order at their
own instants, exactly as the eager call did), so no check that starts after the answer is
accepted, and the account's state and events are the same as if it had been visited then
(a hypothesis property in ``tests/unit/test_scope_switches.py`` holds a lazy host equal to an
eager one). Account-scope switches stay eager (one account).

The log is part of the host's state: replaying the journal rebuilds it; a snapshot is taken
of accounts brought up to date first, so it needs no log (see ``AccountHost``).
"""

from __future__ import annotations

import bisect
from typing import Any

from ..domain import Account, KillSwitch

__all__ = ["ScopeSwitches"]


def matches(acct: Account, scope: str, scope_id: str | None) -> bool:
    """True when a ``scope``/``scope_id`` switch applies to ``acct``."""
    if scope == "firm":
        return True
    if scope == "challenge":
        return acct.challenge_id == scope_id
    return scope == "user" and acct.user_id == scope_id


class ScopeSwitches:
    """The log of scope switches set and released on one host, and how far each account got.

    Entries are ``(n, op, scope, scope_id, payload, at)``: ``op`` ``set`` (payload the
    :class:`KillSwitch`) or ``release`` (payload ``(reason, by)``), ``n`` increasing from 1.
    """

    def __init__(self) -> None:
        self.log: list[tuple[int, str, str, str | None, Any, float]] = []
        self.n = 0
        self._seen: dict[str, int] = {}  # account id -> the last entry applied to it
        #: (scope, scope_id) -> the switch set on this host and not released since
        self.active: dict[tuple[str, str | None], KillSwitch] = {}

    def joined(self, account_id: str) -> None:
        """An account registered now: it was given the switches in force, so the log up to
        here is not for it."""
        self._seen[account_id] = self.n

    def caught_up(self, account_ids) -> None:
        """Accounts restored from a snapshot, which holds them brought up to date."""
        for a in account_ids:
            self._seen[a] = self.n

    def set(self, switch: KillSwitch, at: float) -> None:
        """Log ``switch`` (scope user, challenge or firm) set at ``at``."""
        self.n += 1
        self.log.append((self.n, "set", str(switch.scope), switch.scope_id, switch, at))
        self.active[switch.key] = switch

    def release(self, scope: str, scope_id: str | None, reason: str, by: str, at: float) -> bool:
        """Log the release of ``scope``/``scope_id`` at ``at``. Returns True if it was set here."""
        self.n += 1
        self.log.append((self.n, "release", scope, scope_id, (reason, by), at))
        return self.active.pop((scope, scope_id), None) is not None

    def sync(self, acct: Account) -> bool:
        """Apply to ``acct`` the entries logged since it was last brought up to date, in order.
        Returns True when one changed it."""
        seen = self._seen.get(acct.account_id, 0)
        if seen == self.n:
            return False
        changed = False
        start = bisect.bisect_right(self.log, seen, key=lambda e: e[0])
        for _, op, scope, scope_id, payload, at in self.log[start:]:
            if not matches(acct, scope, scope_id):
                continue
            if op == "set":
                acct.set_kill_switch(payload, at)
                changed = True
            else:
                changed = acct.release_kill_switch(scope, scope_id, payload[0], payload[1], at) or changed
        self._seen[acct.account_id] = self.n
        return changed

    def trim(self) -> None:
        """Drop the entries every account has (call after bringing them all up to date)."""
        if self.log and all(v == self.n for v in self._seen.values()):
            self.log.clear()
