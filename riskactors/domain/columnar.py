"""Columnar valuation: many accounts re-valued on a mark at once, with numpy.

A mark that every account of a host holds would otherwise value each account alone
(:func:`riskactors.domain.valuation.value`, about 16 µs each in Python). A :class:`Block` holds
the figures of a set of accounts that only a fill, a day roll or a limit change moves (per
position: average price, signed lots, contract size; per account: balance, floors, limits) in
numpy arrays, and :meth:`Block.value` values all of them on the latest marks in a few array
operations.

The arithmetic is the scalar one, operation for operation and in the same order (each
element is the same IEEE-754 double expression; sums run in position order through
:func:`numpy.bincount`, which adds in input order from 0.0), so a block's equity, floors,
risk score and warnings are *equal* to the scalar path's, not close to them (a property test
holds them equal: ``tests/unit/test_columnar.py``). Rounding the risk score to 0.1 uses
Python's :func:`round`, as the scalar path does (numpy's rounding differs in the last digit).

Only accounts on which a mark is *quiet* take the columnar path: it changes their figures and
nothing else. :meth:`Block.value` flags for the exact scalar path (``Account.revalue``) every
account where a mark could do more: one that breaches a loss floor (equity under the daily or
max-loss floor by more than :data:`~riskactors.domain.model.MONEY_EPS`, an active account), or
holds an instrument without a mark or a conversion rate. For a quiet account the scalar path
records no event, and changes only the last price and rate of its positions, its clock, its
equity high-water mark (and with it a ``trailing_intraday`` max-loss floor, which the risk
figures use while the breach test uses the floor before the mark, as
:meth:`~riskactors.domain.account.Account.revalue` does) and its consolidation row:
:meth:`Block.settle` does those.

A block is a cache: its owner (the host) gives each account a version that changes whenever
the account changes (a block's own settle moves it in that block too); an account whose
version is not the block's takes the exact path, and the owner rebuilds the block when an
eighth of it did. An account filed under several symbols (a position quoted in a currency
converted through another pair, or positions in several instruments) is in several blocks, so
marks of its symbols in turn make it stale in the others: such accounts mostly take the exact
path.
"""

from __future__ import annotations

import math
from collections.abc import Container, MutableMapping, Sequence

import numpy as np

from .accountstate import AccountState
from .codes import AccountStatus, MaxLossMode
from .marks import LatestMarks
from .model import MONEY_EPS
from .rollup import Row
from .valuation import RISK_SCORE_WEIGHTS, margin_rate, max_loss_floor

__all__ = ["Block", "Shift", "Values"]

_W = tuple(RISK_SCORE_WEIGHTS[k] for k in ("leverage", "margin", "daily_loss", "max_loss", "positions"))
if tuple(RISK_SCORE_WEIGHTS) != ("leverage", "margin", "daily_loss", "max_loss", "positions"):  # pragma: no cover
    raise ImportError("the risk score's terms changed order: the columnar sum must follow it")


class Values:
    """The figures :meth:`Block.value` computes, one array element per account of the block
    (or per position: ``exit_price``, ``rate``; per held instrument: ``net_notional``,
    ``gross_notional``). Money in account currency; ``exact`` marks the accounts that must take
    the scalar path; ``risk_unrounded`` is the risk score before the rounding to 0.1 that
    :meth:`Block.settle` does with Python's :func:`round`; ``hwm`` and ``max_floor`` are the
    high-water mark and max-loss floor after the mark."""

    __slots__ = ("equity", "exact", "exit_price", "gross_notional", "headroom", "hwm", "max_floor", "net_notional",
                 "rate", "risk_unrounded", "warned")

    def __init__(self, **arrays: np.ndarray) -> None:
        for k, v in arrays.items():
            setattr(self, k, v)


class Shift:
    """How one challenge's rollup changes when a block files its new rows (money in account
    currency): ``totals`` currency → (Δ equity, Δ daily P&L), ``exposure`` symbol → (Δ net
    notional, Δ gross notional) (quote currency), ``risk`` Δ Σ risk score, ``rows`` how many
    rows were replaced, and ``flips`` (row before, row after) for each row whose warning flag
    changed (the warned and weekend counts). Balances, statuses, lots and flags other than the
    warning do not change on a quiet mark. See :meth:`riskactors.domain.rollup.Rollup.shift`."""

    __slots__ = ("exposure", "flips", "risk", "rows", "totals")

    def __init__(self) -> None:
        self.totals: dict[str, tuple[float, float]] = {}
        self.exposure: dict[str, tuple[float, float]] = {}
        self.risk = 0.0
        self.rows = 0
        self.flips: list[tuple[Row, Row]] = []


class Block:
    """A set of accounts in columnar form, for re-valuing them together.

    Parameters
    ----------
    accounts : sequence of AccountState
        The accounts, each with at least one open position.
    rows : sequence of Row
        Each account's current consolidation row.
    versions : sequence of int
        Each account's version now (see the module docstring and :meth:`settle`).
    latest : LatestMarks
        Only its instrument registry is read (contract sizes, quote currencies, margin rates).

    Raises
    ------
    KeyError
        A position's instrument is not in the registry (a state the scalar path rejects too).
    """

    def __init__(self, accounts: Sequence[AccountState], rows: Sequence[Row], versions: Sequence[int],
                 latest: LatestMarks) -> None:
        registry = latest.registry
        self.accounts = list(accounts)
        self.rows = list(rows)
        self.versions = list(versions)
        self.positions: list = []  # every position, account by account, in each account's order
        inst_of: dict[str, int] = {}
        rate_of: dict[tuple[str, str], int] = {}
        p_acct, p_entry, p_avg, p_q, p_cs, p_inst, p_rate = [], [], [], [], [], [], []
        e_acct, e_inst, e_rate, e_cs, e_hmf, e_mr = [], [], [], [], [], []
        n = len(self.accounts)
        # per account (money in account currency): balance, day-start balance, daily-loss reference,
        # daily and max loss limits, max-loss floor, equity high-water mark, margin-call level (%),
        # max leverage (x), warning fraction, open positions / max open positions, max-loss lock
        # (NaN: none) and the starting floor (initial balance - max loss limit)
        (self.balance, self.day_start, self.reference, self.daily_limit, self.max_limit, self.max_floor, self.hwm,
         self.call_level, self.max_leverage, self.warning, self.positions_used, self.lock,
         self.start_floor) = (np.empty(n) for _ in range(13))
        self.active = np.zeros(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        self.intraday = np.zeros(n, dtype=bool)  # max-loss floor trails the equity high-water mark
        for i, acct in enumerate(self.accounts):
            limits = acct.limits
            loss, exposure = limits.loss, limits.exposure
            entry_of: dict[str, int] = {}
            for pos in acct.positions.values():
                sym = pos.instrument
                inst = registry.get(sym)
                if inst is None:
                    raise KeyError(sym)
                k = inst_of.setdefault(sym, len(inst_of))
                r = rate_of.setdefault((inst.quote_currency, acct.currency), len(rate_of))
                e = entry_of.get(sym)
                if e is None:
                    e = entry_of[sym] = len(e_acct)
                    e_acct.append(i)
                    e_inst.append(k)
                    e_rate.append(r)
                    e_cs.append(inst.contract_size)
                    e_hmf.append(exposure.hedged_margin_factor)
                    e_mr.append(margin_rate(inst, limits))
                self.positions.append(pos)
                p_acct.append(i)
                p_entry.append(e)
                p_avg.append(pos.average_price)
                p_q.append(pos.quantity)
                p_cs.append(inst.contract_size)
                p_inst.append(k)
                p_rate.append(r)
            self.balance[i] = acct.balance
            self.day_start[i] = acct.day_start_balance
            self.reference[i] = acct.daily_reference()
            self.daily_limit[i] = loss.daily_loss_limit
            self.max_limit[i] = loss.max_loss_limit
            self.max_floor[i] = max_loss_floor(acct)
            self.hwm[i] = acct.high_water_mark
            self.call_level[i] = exposure.margin_call_level
            self.max_leverage[i] = exposure.max_leverage
            self.warning[i] = limits.warning_fraction
            self.positions_used[i] = len(acct.positions) / exposure.max_open_positions
            self.intraday[i] = loss.max_loss_mode is MaxLossMode.TRAILING_INTRADAY
            self.lock[i] = math.nan if loss.max_loss_lock is None else loss.max_loss_lock
            self.start_floor[i] = acct.initial_balance - loss.max_loss_limit
            self.active[i] = acct.status is AccountStatus.ACTIVE
            self.failed[i] = acct.status is AccountStatus.FAILED
        self.symbols = list(inst_of)
        self.rate_keys = list(rate_of)
        self.p_acct, self.p_entry, self.p_inst, self.p_rate = (np.asarray(x, dtype=np.intp)
                                                               for x in (p_acct, p_entry, p_inst, p_rate))
        self.p_avg, self.p_q, self.p_cs = (np.asarray(x, dtype=float) for x in (p_avg, p_q, p_cs))
        self.p_long = self.p_q > 0
        self.e_acct, self.e_inst, self.e_rate = (np.asarray(x, dtype=np.intp) for x in (e_acct, e_inst, e_rate))
        self.e_cs, self.e_hmf, self.e_mr = (np.asarray(x, dtype=float) for x in (e_cs, e_hmf, e_mr))
        self.stale = 0  # accounts changed since the build (the owner counts them)
        self._starts = (np.searchsorted(self.p_acct, np.arange(n + 1)).tolist(),
                        np.searchsorted(self.e_acct, np.arange(n + 1)).tolist())
        self._index_rows()

    def _index_rows(self) -> None:
        """The rows' groups (challenge; challenge and currency; challenge and symbol per held
        instrument) and their figures the rollups hold now (``r_*``), for :meth:`_shifts`."""
        ch_of: dict[str, int] = {}
        cc_of: dict[tuple[str, str], int] = {}
        cs_of: dict[tuple[str, str], int] = {}
        a_ch, a_cc, e_cs, r_net, r_gross = [], [], [], [], []
        for row in self.rows:
            a_ch.append(ch_of.setdefault(row.challenge_id, len(ch_of)))
            a_cc.append(cc_of.setdefault((row.challenge_id, row.currency), len(cc_of)))
            for x in row.exposure:
                e_cs.append(cs_of.setdefault((row.challenge_id, x[0]), len(cs_of)))
                r_net.append(x[4])
                r_gross.append(x[5])
        self.ch_keys, self.cc_keys, self.cs_keys = list(ch_of), list(cc_of), list(cs_of)
        self.a_ch, self.a_cc, self.e_cs_group = (np.asarray(x, dtype=np.intp) for x in (a_ch, a_cc, e_cs))
        self.r_net, self.r_gross = np.asarray(r_net, dtype=float), np.asarray(r_gross, dtype=float)
        self.r_equity = np.fromiter((r.equity for r in self.rows), float, len(self.rows))
        self.r_daily = np.fromiter((r.daily_pnl for r in self.rows), float, len(self.rows))
        self.r_risk = np.fromiter((r.risk_score for r in self.rows), float, len(self.rows))
        self.r_warned = np.fromiter((r.warned for r in self.rows), bool, len(self.rows))

    def __len__(self) -> int:
        return len(self.accounts)

    def value(self, latest: LatestMarks) -> Values:
        """Every account of the block valued on ``latest`` (formulas of
        :mod:`riskactors.domain.valuation` and :func:`riskactors.domain.checks.risk_and_warned`,
        in the same order of operations). Changes nothing."""
        n, n_entries = len(self.accounts), len(self.e_acct)
        marks = [latest.get(s) for s in self.symbols]
        nan = math.nan
        bid = np.array([nan if m is None else m.bid for m in marks])
        ask = np.array([nan if m is None else m.ask for m in marks])
        mid = np.array([nan if m is None else m.mid for m in marks])
        rates = [latest.rate(q, c) for q, c in self.rate_keys]
        rate = np.array([nan if r is None else r for r in rates])
        # positions: floating P&L = (exit − average) × lots × contract size × rate
        exit_price = np.where(self.p_long, bid[self.p_inst], ask[self.p_inst])
        p_rate = rate[self.p_rate]
        floating = np.bincount(self.p_acct, (exit_price - self.p_avg) * self.p_q * self.p_cs * p_rate, n)
        priced = np.isfinite(exit_price) & np.isfinite(p_rate)
        unpriced = np.bincount(self.p_acct, ~priced, n) > 0
        equity = self.balance + floating
        # held instruments: effective lots, notional at mid, margin
        q = self.p_q
        long_lots = np.bincount(self.p_entry, np.where(self.p_long, q, 0.0), n_entries)
        short_lots = np.bincount(self.p_entry, np.where(self.p_long, 0.0, -q), n_entries)
        lots = np.abs(long_lots - short_lots) + 2.0 * self.e_hmf * np.minimum(long_lots, short_lots)
        e_mid = mid[self.e_inst]
        e_notional = np.abs(lots) * self.e_cs * e_mid * rate[self.e_rate]
        notional = np.bincount(self.e_acct, e_notional, n)
        margin = np.bincount(self.e_acct, e_notional * self.e_mr, n)
        p_mid = mid[self.p_inst]
        net_notional = np.bincount(self.p_entry, q * self.p_cs * p_mid, n_entries)
        gross_notional = np.bincount(self.p_entry, np.abs(q) * self.p_cs * p_mid, n_entries)
        # loss figures and the screen for the exact path (Account._on_valued)
        allowed = np.maximum(0.0, equity) * 100.0 / self.call_level
        daily_floor = self.reference - self.daily_limit
        daily_loss = np.maximum(0.0, self.reference - equity)
        max_loss = np.maximum(0.0, self.max_floor + self.max_limit - equity)
        breaching = self.active & ((equity < daily_floor - MONEY_EPS) | (equity < self.max_floor - MONEY_EPS))
        exact = unpriced | breaching
        # a new high-water mark moves a trailing_intraday floor (valuation.max_loss_floor); the
        # risk figures below use the floor after it, as Account.revalue's valuation does
        raised = equity > self.hwm
        hwm = np.where(raised, equity, self.hwm)
        trailed = hwm - self.max_limit
        locked = np.maximum(np.minimum(trailed, self.lock), self.start_floor)
        max_floor = np.where(raised & self.intraday, np.where(np.isnan(self.lock), trailed, locked), self.max_floor)
        max_loss = np.maximum(0.0, max_floor + self.max_limit - equity)
        # risk score and warnings (checks._utilisation, risk_score, _limit_hits)
        with np.errstate(divide="ignore", invalid="ignore"):
            leverage = np.where(equity > 0, notional / np.where(equity > 0, equity, 1.0), math.inf)
            u_margin = np.where(allowed > 0, margin / np.where(allowed > 0, allowed, 1.0),
                                np.where(margin > 0, 1.0, 0.0))
        u = (leverage / self.max_leverage, u_margin, daily_loss / self.daily_limit, max_loss / self.max_limit,
             self.positions_used)
        mean = np.zeros(n)
        top = np.zeros(n)
        for w, x in zip(_W, u, strict=True):
            x = np.minimum(1.0, np.maximum(0.0, x))
            mean = mean + w * x
            top = np.maximum(top, x)
        risk_unrounded = 100.0 * (0.5 * top + 0.5 * mean)
        wf = self.warning
        warned = (((leverage != math.inf) & (leverage >= wf * self.max_leverage - 1e-12) & (leverage > 0))
                  | ((margin > 0) & (margin >= wf * allowed - MONEY_EPS))
                  | ((daily_loss > 0) & (daily_loss >= wf * self.daily_limit - MONEY_EPS))
                  | ((max_loss > 0) & (max_loss >= wf * self.max_limit - MONEY_EPS)))
        headroom = np.minimum((equity - daily_floor) / self.daily_limit, (equity - max_floor) / self.max_limit)
        return Values(equity=equity, exact=exact, hwm=hwm, max_floor=max_floor, exit_price=exit_price, rate=p_rate,
                      risk_unrounded=risk_unrounded, warned=warned, headroom=headroom, net_notional=net_notional,
                      gross_notional=gross_notional)

    def settle(self, values: Values, todo: set[str], now: float, versions: MutableMapping[str, int],
               changed: Container[str]) -> tuple[list[Row], dict[str, Shift]]:
        """Apply ``values`` to the quiet accounts of the block that are in ``todo`` (and
        remove them from it): their positions' last price and rate, their clock (to
        ``max(clock, now)``), their high-water mark, and a new row, as the scalar path would.

        Accounts flagged ``exact`` stay in ``todo``, and so does every account changed since
        the block was built (its version in ``versions`` is not the block's, or it is in
        ``changed``); :attr:`stale` counts those (the owner rebuilds on many). A settled
        account's version moves on here and in the block: another block holding it (an account
        filed under several symbols) has its figures from before, so it is stale there.

        Returns
        -------
        rows : list of Row
            The new rows (the owner files them; the accounts' versions stay).
        shifts : dict
            Challenge id → the :class:`Shift` of its rollup from the rows before to these.
        """
        exact = values.exact.tolist()
        equity = values.equity.tolist()
        risk = values.risk_unrounded.tolist()
        warned = values.warned.tolist()
        headroom = values.headroom.tolist()
        day_start = self.day_start.tolist()
        failed = self.failed.tolist()
        exit_price = values.exit_price.tolist()
        rate = values.rate.tolist()
        net_n = values.net_notional.tolist()
        gross_n = values.gross_notional.tolist()
        starts, e_starts = self._starts
        raised = (values.hwm != self.hwm).tolist()
        positions, rows, built = self.positions, self.rows, self.versions
        made: list[Row] = []
        done: list[int] = []
        self.stale = 0
        for i, acct in enumerate(self.accounts):
            account_id = acct.account_id
            if account_id not in todo:
                continue
            if versions.get(account_id) != built[i] or account_id in changed:
                self.stale += 1
                continue
            if exact[i]:
                continue
            todo.discard(account_id)
            versions[account_id] = built[i] = built[i] + 1  # another block holding it: now stale there
            for j in range(starts[i], starts[i + 1]):
                pos = positions[j]
                pos.last_price = exit_price[j]
                pos.last_conversion = rate[j]
            acct.clock = max(acct.clock, now)
            if raised[i]:
                acct.high_water_mark = equity[i]  # a Python float, as the scalar path stores
                self.hwm[i] = equity[i]
                self.max_floor[i] = values.max_floor[i]
            old = rows[i]
            e0 = e_starts[i]
            if e_starts[i + 1] - e0 == 1:
                x = old.exposure[0]
                exposure = ((x[0], x[1], x[2], x[3], net_n[e0], gross_n[e0]),)
            else:
                exposure = tuple((x[0], x[1], x[2], x[3], net_n[e0 + k], gross_n[e0 + k])
                                 for k, x in enumerate(old.exposure))
            e = equity[i]
            row = Row(account_id, old.user_id, old.challenge_id, old.currency, old.status, old.balance, e,
                      e - day_start[i], 100.0 if failed[i] else round(risk[i], 1), warned[i], old.weekend,
                      old.breached, old.killed, headroom[i], exposure)
            rows[i] = row
            made.append(row)
            done.append(i)
        return made, self._shifts(done, made, values)

    def _shifts(self, done: list[int], made: list[Row], values: Values) -> dict[str, Shift]:
        """Per challenge, the change of the rollup's sums from the rows the accounts ``done``
        had (kept in the block's ``r_*`` arrays) to ``made``; updates those arrays."""
        if not done:
            return {}
        idx = np.asarray(done, dtype=np.intp)
        equity = values.equity[idx]
        daily = equity - self.day_start[idx]
        risk = np.fromiter((r.risk_score for r in made), float, len(made))
        warned = values.warned[idx]
        ch, cc = self.a_ch[idx], self.a_cc[idx]
        d_equity = np.bincount(cc, equity - self.r_equity[idx], len(self.cc_keys)).tolist()
        d_daily = np.bincount(cc, daily - self.r_daily[idx], len(self.cc_keys)).tolist()
        d_risk = np.bincount(ch, risk - self.r_risk[idx], len(self.ch_keys)).tolist()
        n_rows = np.bincount(ch, None, len(self.ch_keys)).tolist()
        mask = np.zeros(len(self.accounts), dtype=bool)
        mask[idx] = True
        e_idx = np.flatnonzero(mask[self.e_acct])
        cs = self.e_cs_group[e_idx]
        d_net = np.bincount(cs, values.net_notional[e_idx] - self.r_net[e_idx], len(self.cs_keys)).tolist()
        d_gross = np.bincount(cs, values.gross_notional[e_idx] - self.r_gross[e_idx], len(self.cs_keys)).tolist()
        flipped = np.flatnonzero(warned != self.r_warned[idx]).tolist()
        self.r_equity[idx], self.r_daily[idx], self.r_risk[idx], self.r_warned[idx] = equity, daily, risk, warned
        self.r_net[e_idx] = values.net_notional[e_idx]
        self.r_gross[e_idx] = values.gross_notional[e_idx]
        shifts = {c: Shift() for k, c in enumerate(self.ch_keys) if n_rows[k]}
        for k, (c, currency) in enumerate(self.cc_keys):
            if c in shifts:
                shifts[c].totals[currency] = (d_equity[k], d_daily[k])
        for k, (c, symbol) in enumerate(self.cs_keys):
            if c in shifts:
                shifts[c].exposure[symbol] = (d_net[k], d_gross[k])
        for k, c in enumerate(self.ch_keys):
            if c in shifts:
                shifts[c].risk, shifts[c].rows = d_risk[k], n_rows[k]
        for f in flipped:  # the row before differs in its warning flag (all a flip is used for)
            row = made[f]
            shifts[row.challenge_id].flips.append((row._replace(warned=not row.warned), row))
        return shifts
