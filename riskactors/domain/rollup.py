"""Consolidated risk kept up to date as accounts change, instead of recomputed per read.

A :class:`Row` is one account's contribution (what :func:`riskactors.domain.views.account_summary`
gives, in a compact form); a :class:`Rollup` holds the running sums of a set of rows (a
challenge on one host). Adding, removing or replacing a row costs O(its instruments); a read
costs the sums plus one bounded-heap selection over the scope's rows for the greatest risk
score and the top-N closest to a breach (:meth:`Rollup.part`). A host's firm part is the
:func:`combine` of its challenges' parts. :func:`merge` combines the parts of several hosts
into the answer of :func:`riskactors.domain.aggregate.consolidate`, which stays the
definition (a property test holds the two equal).

Two parts of a summary depend on the instant it is read at, not only on the account's
state: the time-driven events due by then (a day roll resets the daily P&L, the time limit
fails the account), which the host handles by projecting the few accounts due, and the
weekend-holding warning, counted here per (weekly close, buffer) group of accounts and
evaluated at the read's instant (:meth:`Rollup.part`).

Sums are floating point: after many updates they drift from a fresh sum by rounding (about
1e-16 relative per update); the owner rebuilds a rollup from its rows when its updates exceed
a few hundred times its rows (:attr:`Rollup.updates`), which bounds the drift.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from .accountstate import AccountState
from .checks import risk_and_warned
from .marks import LatestMarks
from .tradingday import WeeklyClose
from .valuation import Valuation, position_floating, value

__all__ = ["Rollup", "Row", "account_row", "combine", "merge", "part_of"]

_STATUSES = ("active", "passed", "failed", "disabled")


class Row(NamedTuple):
    """One account's contribution to consolidated risk (money in account currency). A named
    tuple: a mark makes one per account it revalues, and a tuple is made in half the time of a
    frozen dataclass.

    ``warned``: a limit warning (leverage, margin, daily or max loss near its limit) holds
    now; ``weekend``: ``(weekly_close, buffer_minutes)`` when the account holds positions and
    its plan warns before the weekly close (``WEEKEND_HOLDING_WARNING``), else ``None``;
    ``exposure``: per instrument ``(symbol, quote_currency, net_lots, gross_lots,
    net_notional, gross_notional)``, notional in quote currency at mid.
    """

    account_id: str
    user_id: str
    challenge_id: str
    currency: str
    status: str
    balance: float
    equity: float
    daily_pnl: float
    risk_score: float
    warned: bool
    weekend: tuple[str, float] | None
    breached: bool
    killed: bool
    headroom: float
    exposure: tuple[tuple[str, str, float, float, float, float], ...]

    def in_warning(self, at: float) -> bool:
        """True when a warning holds at ``at`` (a limit warning, or the weekend buffer)."""
        if self.warned:
            return True
        return self.weekend is not None and _in_buffer(self.weekend, at)

    def closest(self) -> dict[str, Any]:
        """The ``closest_to_breach`` item of this account."""
        return {"account_id": self.account_id, "user_id": self.user_id, "challenge_id": self.challenge_id,
                "breach_headroom": self.headroom, "risk_score": self.risk_score, "equity": self.equity,
                "currency": self.currency}


def _in_buffer(weekend: tuple[str, float], at: float) -> bool:
    close, minutes = weekend
    return WeeklyClose.parse(close).minutes_to_close(at) <= minutes


def account_row(acct: AccountState, latest: LatestMarks, val: Valuation | None = None) -> Row:
    """The row of ``acct`` as it is now (no projection: the caller projects an account with
    events due first), from ``val`` when the caller has valued it at ``latest`` already.

    The same figures as :func:`riskactors.domain.views.account_summary` (headroom = min over
    daily and max loss of (equity − floor) / limit, a fraction; 0 means at the floor).
    """
    val = value(acct, latest) if val is None else val
    risk, warned = risk_and_warned(acct, val)
    loss = acct.limits.loss
    headroom = min((val.equity - val.daily_floor) / loss.daily_loss_limit,
                   (val.equity - val.max_loss_floor) / loss.max_loss_limit)
    exposure: dict[str, list] = {}
    registry = latest.registry
    for key, pos in acct.positions.items():
        inst = registry.get(pos.instrument)
        mark = latest.get(pos.instrument)
        if mark is not None:
            mid = mark.mid
        else:  # the view's mark price: the exit price from the last known price
            pv = val.positions.get(key) or position_floating(pos, inst, latest, acct.currency)
            mid = pv.exit_price
        q = pos.quantity
        e = exposure.get(pos.instrument)
        if e is None:
            e = exposure[pos.instrument] = [pos.instrument, inst.quote_currency, 0.0, 0.0, 0.0, 0.0]
        e[2] += q
        e[3] += abs(q)
        e[4] += q * inst.contract_size * mid
        e[5] += abs(q) * inst.contract_size * mid
    minutes = acct.limits.orders.weekend_buffer_minutes
    weekend = (acct.limits.schedule.weekly_close, float(minutes)) if minutes is not None and acct.positions else None
    return Row(acct.account_id, acct.user_id, acct.challenge_id, acct.currency, str(acct.status), acct.balance,
               val.equity, val.equity - acct.day_start_balance, risk, warned,
               weekend, any(not b.get("soft") and b.get("type") == "breach" for b in acct.breaches),
               bool(acct.switches) and acct.effective_kill_switch()["active"], headroom,
               tuple(tuple(e) for e in exposure.values()))


class Rollup:
    """Running sums over a set of rows (one challenge's accounts on one host). The owner keeps
    the current row of each account and hands them to :meth:`part` for the two figures that
    are a selection, not a sum: the greatest risk score and the top-N closest to a breach."""

    def __init__(self) -> None:
        self.accounts = 0
        self.by_status: Counter[str] = Counter()
        self.totals: dict[str, list[float]] = {}  # currency -> [balance, equity, daily_pnl, accounts]
        self.exposure: dict[str, list] = {}  # symbol -> [net_lots, gross_lots, net_n, gross_n, quote, accounts]
        self.warned = 0
        self.weekend: Counter[tuple[str, float]] = Counter()  # rows not warned, by weekend group
        self.breached = 0
        self.killed = 0
        self.risk_sum = 0.0
        #: adds and removes since the sums were last rebuilt (drift bound, module docstring)
        self.updates = 0

    def add(self, row: Row, sign: int = 1) -> None:
        """Add ``row`` (``sign=-1``: take it away; it must have been added)."""
        self.updates += 1
        self.accounts += sign
        self.by_status[row.status] += sign
        t = self.totals.get(row.currency)
        if t is None:
            t = self.totals[row.currency] = [0.0, 0.0, 0.0, 0]
        t[0] += sign * row.balance
        t[1] += sign * row.equity
        t[2] += sign * row.daily_pnl
        t[3] += sign
        if not t[3]:
            del self.totals[row.currency]
        for sym, quote, net, gross, net_n, gross_n in row.exposure:
            x = self.exposure.get(sym)
            if x is None:
                x = self.exposure[sym] = [0.0, 0.0, 0.0, 0.0, quote, 0]
            x[0] += sign * net
            x[1] += sign * gross
            x[2] += sign * net_n
            x[3] += sign * gross_n
            x[5] += sign
            if not x[5]:
                del self.exposure[sym]
        if row.warned:
            self.warned += sign
        elif row.weekend is not None:
            self.weekend[row.weekend] += sign
        self.breached += sign * row.breached
        self.killed += sign * row.killed
        self.risk_sum += sign * row.risk_score

    def remove(self, row: Row) -> None:
        """Take ``row`` away."""
        self.add(row, -1)

    def replace(self, old: Row, new: Row) -> None:
        """``remove(old)`` then ``add(new)``, in one pass when they differ only in figures (the
        same currency, status, flags and instruments: what a mark changes)."""
        if (old.currency != new.currency or old.status != new.status or old.warned != new.warned
                or old.weekend != new.weekend or old.breached != new.breached or old.killed != new.killed
                or len(old.exposure) != len(new.exposure)
                or any(a[0] != b[0] for a, b in zip(old.exposure, new.exposure))):
            self.add(old, -1)
            self.add(new)
            return
        self.updates += 2
        t = self.totals[new.currency]
        t[0] += new.balance - old.balance
        t[1] += new.equity - old.equity
        t[2] += new.daily_pnl - old.daily_pnl
        for a, b in zip(old.exposure, new.exposure):
            x = self.exposure[b[0]]
            x[0] += b[2] - a[2]
            x[1] += b[3] - a[3]
            x[2] += b[4] - a[4]
            x[3] += b[5] - a[5]
        self.risk_sum += new.risk_score - old.risk_score

    def shift(self, shift: Any) -> None:
        """Apply a :class:`riskactors.domain.columnar.Shift`: the summed change of many rows
        replaced at once by figures only (a quiet mark), as :meth:`replace` of each would (the
        sums' rounding aside), in O(currencies + instruments + rows whose warning flipped)."""
        self.updates += 2 * shift.rows
        for currency, (d_equity, d_daily) in shift.totals.items():
            t = self.totals[currency]
            t[1] += d_equity
            t[2] += d_daily
        for symbol, (d_net, d_gross) in shift.exposure.items():
            x = self.exposure[symbol]
            x[2] += d_net
            x[3] += d_gross
        self.risk_sum += shift.risk
        for old, new in shift.flips:
            for row, sign in ((old, -1), (new, 1)):
                if row.warned:
                    self.warned += sign
                elif row.weekend is not None:
                    self.weekend[row.weekend] += sign

    def part(self, rows: Iterable[Row], at: float, top_n: int,
             swaps: Iterable[tuple[Row, Row]] = ()) -> dict[str, Any]:
        """This rollup as one host's part of a consolidated answer, as of ``at``.

        Parameters
        ----------
        rows : iterable of Row
            The current rows of this rollup's accounts.
        at : float
            Epoch seconds the answer is as of (the weekend warning is evaluated at it).
        top_n : int
            How many accounts closest to a breach to give.
        swaps : iterable of (Row, Row)
            Rows replaced for this read only: (current row, row projected at ``at``).

        Returns
        -------
        dict
            ``accounts``, ``by_status``, ``totals``, ``exposure``, ``in_warning``,
            ``breached``, ``killed``, ``risk_sum``, ``risk_max`` (``None`` when empty) and
            ``closest`` (at most ``top_n`` items, closest first); see :func:`merge`.

        Notes
        -----
        The sums are read as kept; the maximum and the top-N are a bounded-heap selection
        over the rows (``heapq.nsmallest``: O(rows · log top-N), no sort), which costs less
        than keeping a heap through every revaluation (measured in ``load_tests/scale.py``:
        a lazily pruned heap cost about 3 µs per revalued account and 1 KB per account).
        """
        swaps = list(swaps)
        sums = self
        if swaps:
            sums = Rollup()
            sums.__dict__.update({k: (v.copy() if isinstance(v, Counter) else v) for k, v in self.__dict__.items()})
            sums.totals = {c: list(t) for c, t in self.totals.items()}
            sums.exposure = {s: list(x) for s, x in self.exposure.items()}
            for old, new in swaps:
                sums.remove(old)
                sums.add(new)
            projected = {old.account_id: new for old, new in swaps}
            rows = [projected.get(r.account_id, r) for r in rows]
        elif not isinstance(rows, list):
            rows = list(rows)
        risk_max = max((r.risk_score for r in rows), default=None)
        near = heapq.nsmallest(top_n, (r for r in rows if r.status == "active"), key=_closeness)
        weekend = sum(n for group, n in sums.weekend.items() if n and _in_buffer(group, at))
        return {"accounts": sums.accounts, "by_status": {s: sums.by_status.get(s, 0) for s in _STATUSES},
                "totals": {c: list(t) for c, t in sums.totals.items()},
                "exposure": {s: list(x) for s, x in sums.exposure.items()},
                "in_warning": sums.warned + weekend, "breached": sums.breached, "killed": sums.killed,
                "risk_sum": sums.risk_sum, "risk_max": risk_max, "closest": [r.closest() for r in near]}


def _closeness(r: Row) -> tuple[float, float, str]:
    return r.headroom, -r.risk_score, r.account_id


def part_of(rows: Iterable[Row], at: float, top_n: int) -> dict[str, Any]:
    """A part (see :meth:`Rollup.part`) computed afresh from ``rows`` (a user's few accounts)."""
    rows = list(rows)
    rollup = Rollup()
    for r in rows:
        rollup.add(r)
    return rollup.part(rows, at, top_n)


def combine(parts: Iterable[Mapping[str, Any]], top_n: int) -> dict[str, Any]:
    """Several parts (see :meth:`Rollup.part`) as one: sums added, the ``top_n`` closest of
    all, the greatest risk score."""
    accounts = in_warning = breached = killed = 0
    by_status: Counter[str] = Counter()
    totals: dict[str, list[float]] = {}
    exposure: dict[str, list] = {}
    risk_sum = 0.0
    risk_max: float | None = None
    closest: list[dict[str, Any]] = []
    for p in parts:
        accounts += p["accounts"]
        in_warning += p["in_warning"]
        breached += p["breached"]
        killed += p["killed"]
        by_status.update(p["by_status"])
        risk_sum += p["risk_sum"]
        if p["risk_max"] is not None:
            risk_max = p["risk_max"] if risk_max is None else max(risk_max, p["risk_max"])
        for c, t in p["totals"].items():
            held = totals.setdefault(c, [0.0, 0.0, 0.0, 0])
            for i in range(4):
                held[i] += t[i]
        for s, x in p["exposure"].items():
            held = exposure.setdefault(s, [0.0, 0.0, 0.0, 0.0, x[4], 0])
            for i in (0, 1, 2, 3, 5):
                held[i] += x[i]
        closest.extend(p["closest"])
    return {"accounts": accounts, "by_status": {s: by_status.get(s, 0) for s in _STATUSES}, "totals": totals,
            "exposure": exposure, "in_warning": in_warning, "breached": breached, "killed": killed,
            "risk_sum": risk_sum, "risk_max": risk_max,
            "closest": heapq.nsmallest(top_n, closest,
                                       key=lambda r: (r["breach_headroom"], -r["risk_score"], r["account_id"]))}


def merge(parts: Iterable[Mapping[str, Any]], scope: str, scope_id: str | None, top_n: int) -> dict[str, Any]:
    """Combine hosts' parts into the consolidated answer of
    :func:`riskactors.domain.aggregate.consolidate` (same keys, same meaning)."""
    c = combine(parts, top_n)
    accounts = c["accounts"]
    return {
        "scope": scope, "id": scope_id, "accounts": accounts, "accounts_by_status": c["by_status"],
        "totals_by_currency": {cur: {"balance": t[0], "equity": t[1], "daily_pnl": t[2], "accounts": t[3]}
                               for cur, t in sorted(c["totals"].items())},
        "exposure": {s: {"net_lots": x[0], "gross_lots": x[1], "net_notional": x[2], "gross_notional": x[3],
                         "quote_currency": x[4], "accounts": x[5]} for s, x in sorted(c["exposure"].items())},
        "in_warning": c["in_warning"], "breached": c["breached"], "killed": c["killed"],
        "risk_score": {"mean": c["risk_sum"] / accounts if accounts else 0.0, "max": c["risk_max"] or 0.0},
        "closest_to_breach": c["closest"],
    }
