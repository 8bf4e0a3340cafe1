"""Consolidated risk kept up to date by the host equals a recomputation from every account.

The host keeps one row per account and running sums per challenge and for itself
(``riskactors.domain.rollup``); the supervisor merges the hosts' parts. The reference is
``riskactors.domain.aggregate.consolidate`` over ``account_summary`` of every account, which
is what ``GET /v1/risk/*`` answered before. Hypothesis drives fills, marks, kill switches,
status changes, time passing (day rolls, a time limit, the weekend buffer) and reads ahead of
the host's clock (projected accounts), on accounts in three currencies.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unitkit import T0

from riskactors.actors import AccountHost
from riskactors.domain import default_plan_registry
from riskactors.domain.aggregate import consolidate
from riskactors.domain.rollup import Rollup, merge, part_of

FRIDAY_1645 = datetime(2025, 5, 9, 16, 45, tzinfo=ZoneInfo("America/New_York")).timestamp()  # T0's week
_MID = {"EURUSD": 1.1, "GBPJPY": 190.0, "USDJPY": 150.0, "XAUUSD": 2300.0}
_ACCOUNTS = [  # id, user, challenge, currency, overrides
    ("a1", "u1", "c1", "USD", {}),
    ("a2", "u1", "c1", "USD", {"weekend_buffer_minutes": 30}),
    ("a3", "u2", "c1", "JPY", {"time_limit_days": 2}),
    ("a4", "u3", "c2", "EUR", {"daily_loss_limit": 300.0}),
    ("a5", "u3", "c2", "USD", {"max_loss_mode": "trailing_intraday", "max_loss_limit": 400.0}),
]


def _approx(a, b, path="") -> None:
    """Equal, floats within rounding of a sum in another order."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (path, a, b)
        for k in a:
            _approx(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _approx(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (path, a, b)
    else:
        assert a == b, (path, a, b)


def _host(columnar_from: int = 0) -> AccountHost:
    host = AccountHost("h", {"columnar_from": columnar_from})
    host.apply_marks([{"instrument": s, "bid": m, "ask": m, "ts": T0} for s, m in _MID.items()], T0)
    for account_id, user, challenge, ccy, overrides in _ACCOUNTS:
        limits = {"max_position_lots": 100.0, "max_leverage": 1e6, "account_leverage": 1e6, **overrides}
        resolved = default_plan_registry().resolve("moderate", None, 10_000.0, limits)[1].to_dict()
        view = host.register({"account_id": account_id, "user_id": user, "challenge_id": challenge, "currency": ccy,
                              "initial_balance": 10_000.0, "plan": "moderate", "resolved_limits": resolved},
                             [], [], T0)
        assert "error" not in view, view
    return host


def _reference(host: AccountHost, scope: str, scope_id, at: float, top_n: int) -> dict:
    ids = [a for a, _, c, _, _ in (r for r in [(x[0], x[1], x[2], x[3], x[4]) for x in _ACCOUNTS])
           if scope == "firm" or (scope == "challenge" and c == scope_id)]
    if scope == "user":
        ids = [x[0] for x in _ACCOUNTS if x[1] == scope_id]
    return consolidate(host.summaries(ids, at), scope, scope_id, top_n)


def _kept(host: AccountHost, scope: str, scope_id, at: float, top_n: int) -> dict:
    return merge([host.rollup(scope, scope_id, top_n, at)], scope, scope_id, top_n)


def _agree(host: AccountHost, at: float) -> None:
    for scope, scope_id in (("firm", None), ("challenge", "c1"), ("challenge", "c2"), ("user", "u1"),
                            ("user", "u3"), ("challenge", "nobody")):
        for top_n in (1, 3):
            _approx(_kept(host, scope, scope_id, at, top_n), _reference(host, scope, scope_id, at, top_n),
                    f"{scope}:{scope_id}:{top_n}")


_ids = st.sampled_from([a[0] for a in _ACCOUNTS])
_steps = st.lists(st.one_of(
    st.tuples(st.just("fill"), _ids, st.sampled_from(sorted(_MID)), st.sampled_from(["buy", "sell"]),
              st.sampled_from([0.1, 0.5, 2.0])),
    st.tuples(st.just("mark"), st.sampled_from(sorted(_MID)), st.floats(-0.05, 0.05)),
    st.tuples(st.just("kill"), st.sampled_from([("firm", None), ("challenge", "c1"), ("user", "u3")]),
              st.booleans()),
    st.tuples(st.just("status"), _ids, st.sampled_from(["disabled", "active"])),
    st.tuples(st.just("time"), st.sampled_from([60.0, 3_600.0, 30_000.0, 86_400.0])),
    st.tuples(st.just("weekend")),
    st.tuples(st.just("read"), st.sampled_from([0.0, 600.0, 90_000.0, 200_000.0])),
), min_size=1, max_size=30)


@pytest.mark.parametrize("columnar_from", [0, 1], ids=["one-by-one", "columnar"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps)
def test_kept_rollups_equal_a_recomputation_from_every_account(columnar_from, steps):
    host = _host(columnar_from)  # columnar: every mark's holders valued in a block, rows filed by Shift
    for n, step in enumerate(steps, 1):
        now = host.clock + 1
        kind = step[0]
        if kind == "fill":
            _, acct, sym, side, lots = step
            host.fill({"fill_id": f"f{n}", "account_id": acct, "instrument": sym, "side": side, "quantity": lots,
                       "price": host.latest.get(sym).mid, "ts": now}, now)
        elif kind == "mark":  # two ticks: the second finds the holders' rows current (a block, when columnar)
            _, sym, move = step
            for k, tick in ((1.0, now), (0.5, now + 0.5)):
                mid = _MID[sym] * (1 + move * k)
                host.apply_marks([{"instrument": sym, "bid": mid, "ask": mid, "ts": tick}], tick)
        elif kind == "kill":
            _, (scope, scope_id), on = step
            ids = [a[0] for a in _ACCOUNTS if scope == "firm" or a[{"challenge": 2, "user": 1}[scope]] == scope_id]
            if on:
                host.set_kill_switch({"active": True, "scope": scope, "id": scope_id, "mode": "halt",
                                      "reason": "test", "by": "ops", "at": now, "breach": False}, ids, now)
            else:
                host.release_kill_switch(scope, scope_id, "test", "ops", ids, now)
        elif kind == "status":
            _, acct, status = step
            host.set_status(acct, status, "ops", "test", now)
        elif kind == "time":
            host.advance_to(host.clock + step[1])
        elif kind == "weekend":
            host.advance_to(max(host.clock, FRIDAY_1645))
        else:  # a read ahead of the clock: accounts due by then are projected
            _agree(host, host.clock + step[1])
    _agree(host, host.clock)


def test_a_read_ahead_of_the_clock_projects_the_day_roll_and_the_time_limit():
    host = _host()
    host.fill({"fill_id": "f1", "account_id": "a3", "instrument": "USDJPY", "side": "buy", "quantity": 0.01,
               "price": 150.0, "ts": T0 + 1}, T0 + 1)
    host.apply_marks([{"instrument": "USDJPY", "bid": 150.001, "ask": 150.001, "ts": T0 + 2}], T0 + 2)
    assert _kept(host, "challenge", "c1", T0 + 2, 3)["accounts_by_status"]["failed"] == 0
    later = T0 + 3 * 86_400  # a3's 2-day time limit has run out by then; every account rolled
    kept = _kept(host, "challenge", "c1", later, 3)
    assert kept["accounts_by_status"]["failed"] == 1  # a3, projected: its state is unchanged
    assert host.accounts["a3"].status.value == "active"
    _approx(kept, _reference(host, "challenge", "c1", later, 3))


def test_the_weekend_buffer_counts_accounts_holding_positions_only_inside_it():
    host = _host()
    host.fill({"fill_id": "f1", "account_id": "a2", "instrument": "EURUSD", "side": "buy", "quantity": 0.1,
               "price": 1.1, "ts": T0 + 1}, T0 + 1)
    assert _kept(host, "firm", None, FRIDAY_1645 - 20 * 60, 1)["in_warning"] == 0  # 35 min before the close
    assert _kept(host, "firm", None, FRIDAY_1645, 1)["in_warning"] == 1  # 15 min before
    _approx(_kept(host, "firm", None, FRIDAY_1645, 1), _reference(host, "firm", None, FRIDAY_1645, 1))


def test_the_sums_are_rebuilt_from_the_rows_and_still_agree():
    host = _host()
    host.fill({"fill_id": "f1", "account_id": "a1", "instrument": "EURUSD", "side": "buy", "quantity": 1.0,
               "price": 1.1, "ts": T0 + 1}, T0 + 1)
    from riskactors.actors.host import _REBUILD_EVERY

    marks = _REBUILD_EVERY * 20  # every mark replaces a1's row: past the rebuild bound of c1
    for k in range(marks):
        mid = 1.1 + 0.0001 * math.sin(k)
        host.apply_marks([{"instrument": "EURUSD", "bid": mid, "ask": mid, "ts": T0 + 2 + k}], T0 + 2 + k)
    c1 = host._challenges["c1"]
    assert c1.updates < 2 * marks  # rebuilt on the way (the count starts again)
    _agree(host, host.clock)


def test_merge_of_parts_is_the_consolidation_of_their_rows():
    host = _host()
    for i, (acct, sym) in enumerate((("a1", "EURUSD"), ("a4", "GBPJPY"), ("a5", "XAUUSD"))):
        host.fill({"fill_id": f"f{i}", "account_id": acct, "instrument": sym, "side": "sell", "quantity": 0.5,
                   "price": _MID[sym], "ts": T0 + 1}, T0 + 1)
    rows = host._rows
    host.rollup("firm", None, 3, T0 + 1)  # makes every row
    by_host = [part_of([rows["a1"], rows["a2"]], T0 + 1, 3), part_of([rows["a3"]], T0 + 1, 3),
               part_of([rows["a4"], rows["a5"]], T0 + 1, 3), part_of([], T0 + 1, 3)]
    _approx(merge(by_host, "firm", None, 3), _reference(host, "firm", None, T0 + 1, 3))
    assert merge([], "firm", None, 3)["risk_score"] == {"mean": 0.0, "max": 0.0}
    assert Rollup().part([], T0, 3)["risk_max"] is None


@pytest.mark.parametrize("top_n", [0, 1, 10])
def test_closest_to_breach_lists_at_most_top_n_active_accounts(top_n):
    host = _host()
    host.set_status("a1", "disabled", "ops", "test", T0 + 1)
    kept = _kept(host, "firm", None, T0 + 1, top_n)
    assert len(kept["closest_to_breach"]) == min(top_n, 4)
    assert "a1" not in [r["account_id"] for r in kept["closest_to_breach"]]
