"""Columnar valuation (``riskactors.domain.columnar``) gives the figures of the scalar path exactly.

A host values the holders of a marked instrument in one numpy block when at least
``columnar_from`` accounts hold it. The block's arithmetic is the scalar one in the same order,
so the comparison here is ``==`` on floats, not a tolerance: account states, consolidation
rows, breaches and rollups of a columnar host equal those of a host that values one account
at a time, whatever the plans (static, trailing intraday with and without lock, trailing end of
day, soft daily loss), position modes, currencies and the sequence of fills, marks, day rolls,
limit changes and kill switches.
"""

from __future__ import annotations

import copy
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unitkit import T0

from riskactors.actors import AccountHost
from riskactors.domain import Mark, account_to_state, default_plan_registry
from riskactors.domain.columnar import Block
from riskactors.domain.rollup import account_row
from riskactors.domain.valuation import value

_MID = {"EURUSD": 1.1, "GBPJPY": 190.0, "USDJPY": 150.0, "EURJPY": 165.0, "XAUUSD": 2300.0}
_SYMS = tuple(_MID)
_BASE = {"max_position_lots": 1000.0, "max_leverage": 50.0, "account_leverage": 500.0,
         "daily_loss_limit": 3_000.0, "max_loss_limit": 6_000.0}
#: (plan, limit overrides): every max-loss mode and daily-loss kind the block must follow
_PLANS = (
    ("moderate", {}),
    ("moderate", {"max_loss_mode": "trailing_intraday"}),
    ("moderate", {"max_loss_mode": "trailing_intraday", "max_loss_lock": 100_000.0}),
    ("one_step_trailing", {}),
    ("moderate", {"daily_loss_mode": "soft", "daily_loss_reference": "max_balance_equity"}),
)
_ACCOUNTS = [(f"a{i}", f"u{i % 3}", ("USD", "JPY", "EUR")[i % 3], i % 2 == 1, _PLANS[i % len(_PLANS)])
             for i in range(10)]


def _host(columnar_from: int, opened: bool = True) -> AccountHost:
    host = AccountHost("h", {"columnar_from": columnar_from})
    host.apply_marks([_mark(s, m, T0) for s, m in _MID.items()], T0)
    for account_id, user, ccy, hedging, (plan, overrides) in _ACCOUNTS:
        limits = {**_BASE, **overrides}
        spec = {"account_id": account_id, "user_id": user, "challenge_id": f"c{int(account_id[1:]) % 2}",
                "currency": ccy, "initial_balance": 100_000.0, "plan": plan, "limits": limits,
                "position_mode": "hedging" if hedging else "netting",
                "resolved_limits": default_plan_registry().resolve(plan, None, 100_000.0, limits)[1].to_dict()}
        assert "error" not in host.register(spec, [], [], T0)
    for n, (account_id, *_) in enumerate(_ACCOUNTS if opened else ()):  # positions to start from, rows made
        sym = _SYMS[n % 3]
        host.fill(_fill(f"open{n}", account_id, sym, _MID[sym], T0, "buy" if n % 2 else "sell", 1.0), T0)
    host.rollup("firm", None, 3, T0)
    return host


def _mark(sym: str, mid: float, ts: float, spread: float = 0.0) -> dict:
    return {"instrument": sym, "bid": mid * (1 - spread), "ask": mid * (1 + spread), "ts": ts}


def _fill(fill_id, account_id, sym, price, ts, side="buy", lots=1.0) -> dict:
    return {"fill_id": fill_id, "account_id": account_id, "instrument": sym, "side": side, "quantity": lots,
            "price": price, "ts": ts}


def _state(host: AccountHost) -> list[dict]:
    return [account_to_state(a) for a in host.accounts.values()]


_ids = st.sampled_from([a[0] for a in _ACCOUNTS])
_steps = st.lists(st.one_of(
    st.tuples(st.just("fill"), _ids, st.sampled_from(_SYMS), st.sampled_from(["buy", "sell"]),
              st.sampled_from([0.5, 1.0, 3.0])),
    st.tuples(st.just("mark"), st.lists(st.tuples(st.sampled_from(_SYMS), st.floats(-0.06, 0.06)),
                                        min_size=1, max_size=3), st.sampled_from([0.0, 1e-4])),
    st.tuples(st.just("wait"), st.sampled_from([60.0, 6 * 3600.0, 86_400.0])),
    st.tuples(st.just("limits"), _ids, st.sampled_from([2_000.0, 4_000.0])),
    st.tuples(st.just("kill"), st.sampled_from(["u0", "u1"])),
    st.tuples(st.just("read")),
), min_size=1, max_size=30)


def _run(host: AccountHost, steps) -> list:
    """Apply ``steps`` to ``host``; returns every call's answer."""
    out, ts = [], T0
    for n, step in enumerate(steps, 1):
        ts += 1.0
        kind = step[0]
        if kind == "fill":
            _, acct, sym, side, lots = step
            out.append(host.fill(_fill(f"f{n}", acct, sym, host.latest.get(sym).mid, ts, side, lots), ts))
        elif kind == "mark":  # a burst of three ticks: the later ones find the holders' rows current
            _, moves, spread = step
            for k in (1.0, 0.5, 0.75):
                ts += 0.25
                out.append(host.apply_marks([_mark(s, _MID[s] * (1 + m * k), ts, spread) for s, m in moves], ts))
        elif kind == "read":
            out.append(host.rollup("firm", None, 3, ts))
        elif kind == "wait":
            ts += step[1]
            out.append(host.advance_to(ts))
        elif kind == "limits":
            out.append(host.patch_limits(step[1], {"daily_loss_limit": step[2]}, "ops", "test", ts))
        else:
            switch = {"scope": "user", "id": step[1], "mode": "reduce_only", "reason": "test", "by": "ops",
                      "at": ts}
            out.append(host.set_kill_switch(switch, None, ts))
    return out


def test_the_generated_steps_reach_the_columnar_path():
    host = _host(1)
    steps = [("fill", "a0", "EURUSD", "buy", 1.0), ("fill", "a1", "GBPJPY", "sell", 3.0),
             ("mark", [("EURUSD", 0.001), ("USDJPY", -0.01)], 0.0), ("read",), ("mark", [("GBPJPY", 0.002)], 1e-4)]
    settled = []
    settle = Block.settle

    def counting(self, *args):
        made, shifts = settle(self, *args)
        settled.extend(row.account_id for row in made)
        return made, shifts

    Block.settle = counting
    try:
        _run(host, steps)
    finally:
        Block.settle = settle
    assert len(set(settled)) >= 8  # most of the 10 accounts, on the ticks after the first


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps)
def test_a_columnar_host_ends_exactly_like_one_valuing_each_account(steps):
    columnar, scalar = _host(1), _host(0)
    assert _same(_run(columnar, steps), _run(scalar, steps))  # reads: their sums to rounding
    assert _state(columnar) == _state(scalar)
    assert columnar._rows == scalar._rows  # figures equal as floats, not close
    for scope, scope_id in (("firm", None), ("challenge", "c0"), ("user", "u1")):
        # the rows are equal; the running sums over them are updated in another order (rounding)
        assert _same(columnar.rollup(scope, scope_id, 5), scalar.rollup(scope, scope_id, 5))


def _same(x, y) -> bool:
    """``x == y``, floats within 1e-9 relative or 1e-6 absolute (money: a running sum of terms of 1e7
    that cancel keeps some 1e-9 of rounding)."""
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    return x == y


def _held_host(columnar_from: int, n: int = 40, plan: str = "moderate", overrides=None) -> AccountHost:
    """``n`` USD accounts each long 1 lot of EURUSD at 1.1 (the block's common case)."""
    host = AccountHost("h", {"columnar_from": columnar_from})
    host.apply_marks([_mark("EURUSD", 1.1, T0)], T0)
    limits = {**_BASE, **(overrides or {})}
    resolved = default_plan_registry().resolve(plan, None, 100_000.0, limits)[1].to_dict()
    for i in range(n):
        spec = {"account_id": f"a{i}", "user_id": f"u{i}", "challenge_id": "c", "currency": "USD",
                "initial_balance": 100_000.0, "plan": plan, "limits": limits, "resolved_limits": resolved}
        host.register(spec, [], [], T0)
        host.fill(_fill(f"f{i}", f"a{i}", "EURUSD", 1.1, T0, lots=1.0 + i % 3), T0)
    host.rollup("firm", None, 5, T0)  # every row current: the block takes them all
    return host


def test_a_quiet_mark_is_valued_in_the_block_and_moves_only_figures():
    columnar, scalar = _held_host(8), _held_host(0)
    for k, mid in enumerate((1.0995, 1.0990, 1.1010), 1):  # down, down, up (a new high-water mark)
        marks = [_mark("EURUSD", mid, T0 + k)]
        assert columnar.apply_marks(marks, T0 + k) == scalar.apply_marks(marks, T0 + k)
        block = columnar._blocks["EURUSD"]
        assert len(block) == 40 and block.stale == 0
    assert _state(columnar) == _state(scalar) and columnar._rows == scalar._rows
    assert columnar.accounts["a0"].high_water_mark == pytest.approx(100_000.0 + 1.0 * 100_000 * 0.001)


def test_a_breaching_mark_takes_the_exact_path_and_trips_the_same_breaches():
    columnar, scalar = _held_host(8), _held_host(0)
    # 1 lot: −2,500 USD (inside both limits); 2 lots: −5,000 (daily loss 3,000 out); 3 lots: −7,500 (both out)
    marks = [_mark("EURUSD", 1.1 - 0.0250, T0 + 1)]
    got, want = columnar.apply_marks(marks, T0 + 1), scalar.apply_marks(marks, T0 + 1)
    assert got == want
    assert got["breaches_by_code"] == {"DAILY_LOSS_LIMIT": 26, "MAX_LOSS_LIMIT": 13}
    failed = {a for a, acct in columnar.accounts.items() if str(acct.status) == "failed"}
    assert failed == {f"a{i}" for i in range(40) if i % 3} and _state(columnar) == _state(scalar)


def test_an_account_changed_since_the_block_was_built_takes_the_exact_path():
    columnar, scalar = _held_host(8), _held_host(0)
    for h in (columnar, scalar):
        h.apply_marks([_mark("EURUSD", 1.1001, T0 + 1)], T0 + 1)  # builds the block
        h.fill(_fill("g", "a0", "EURUSD", 1.1001, T0 + 2, lots=5.0), T0 + 2)  # a0's position changes
        h.apply_marks([_mark("EURUSD", 1.0990, T0 + 3)], T0 + 3)
    assert columnar._blocks["EURUSD"].stale == 1  # a0, valued the exact way
    assert _state(columnar) == _state(scalar) and columnar._rows == scalar._rows


def test_a_block_is_rebuilt_when_many_of_its_accounts_changed():
    host = _held_host(8)
    host.apply_marks([_mark("EURUSD", 1.1001, T0 + 1)], T0 + 1)
    first = host._blocks["EURUSD"]
    for i in range(10):  # a quarter of the 40 accounts trade
        host.fill(_fill(f"g{i}", f"a{i}", "EURUSD", 1.1001, T0 + 2), T0 + 2)
    host.apply_marks([_mark("EURUSD", 1.0999, T0 + 3)], T0 + 3)
    assert host._blocks["EURUSD"] is first and first.stale == 10
    host.apply_marks([_mark("EURUSD", 1.0998, T0 + 4)], T0 + 4)
    rebuilt = host._blocks["EURUSD"]
    assert rebuilt is not first and rebuilt.stale == 0 and len(rebuilt) == 40


def test_below_columnar_from_the_host_values_one_by_one():
    host = _held_host(41)
    host.apply_marks([_mark("EURUSD", 1.1001, T0 + 1)], T0 + 1)
    assert host._blocks == {}


def test_block_values_equal_the_scalar_valuation_of_each_account():
    host = _host(0, opened=False)
    ts = T0
    for n, (acct, sym, side) in enumerate([("a1", "EURUSD", "buy"), ("a1", "EURUSD", "sell"), ("a1", "GBPJPY", "buy"),
                                           ("a2", "XAUUSD", "sell"), ("a3", "EURJPY", "buy"), ("a3", "USDJPY", "buy")]):
        ts += 1
        host.fill(_fill(f"f{n}", acct, sym, _MID[sym], ts, side, 2.0), ts)
    host.apply_marks([_mark(s, m * 1.01, ts + 1, 1e-4) for s, m in _MID.items()], ts + 1)
    accts = [a for a in host.accounts.values() if a.positions]
    rows = [account_row(a, host.latest) for a in accts]
    block = Block(accts, rows, [0] * len(accts), host.latest)
    for s, m in _MID.items():
        host.latest.apply(Mark(s, m * 0.995, m * 0.995 * 1.0002, ts + 2))
    vals = block.value(host.latest)
    assert vals.hwm.tolist() != block.hwm.tolist()  # some high-water marks rise
    assert vals.exact.tolist() == [True, False, False]  # a1 breaches
    for i, acct in enumerate(accts):
        assert vals.equity[i] == value(acct, host.latest).equity
        after = copy.deepcopy(acct)
        events, val = after.revalue(host.latest, ts + 2, advance=False)  # what the scalar path makes of it
        assert bool(events) == vals.exact[i]
        if events:
            continue
        row = account_row(after, host.latest, val)
        assert vals.hwm[i] == after.high_water_mark and vals.max_floor[i] == val.max_loss_floor
        assert vals.headroom[i] == row.headroom and bool(vals.warned[i]) == row.warned
        assert (100.0 if block.failed[i] else round(float(vals.risk_unrounded[i]), 1)) == row.risk_score


def test_an_instrument_without_a_conversion_rate_takes_the_exact_path():
    host = _host(0, opened=False)
    host.fill(_fill("f", "a1", "GBPJPY", 190.0, T0 + 1), T0 + 1)  # a1 is a JPY account: no conversion needed
    host.fill(_fill("g", "a0", "GBPJPY", 190.0, T0 + 1), T0 + 1)  # a0 (USD) converts JPY through USDJPY
    accts = [host.accounts["a0"], host.accounts["a1"]]
    block = Block(accts, [account_row(a, host.latest) for a in accts], [0, 0], host.latest)
    fresh = AccountHost("x").latest  # the same registry, no marks at all
    vals = block.value(fresh)
    assert vals.exact.tolist() == [True, True] and math.isnan(vals.equity[0])
