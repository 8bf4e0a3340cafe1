"""A host or supervisor rebuilt from its storage root has exactly the state it had (no Ray).

``AccountHost`` and ``Supervisor`` are plain classes: here they run in-process with a storage
root in a temporary directory, are dropped, and are constructed again from the same root, as
Ray does when it restarts an actor.
"""

from __future__ import annotations

import asyncio
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unitkit import T0, make_limits

from riskactors.actors import LocalTransport, Supervisor
from riskactors.actors.host import AccountHost
from riskactors.domain import account_to_state, marks_to_state, news_to_state
from riskactors.persistence import encode_frame

DAY = 86_400.0


def _cfg(root, fsync="batch", every=10_000, mode=None) -> dict:
    return {"storage": {"root": str(root), "fsync": fsync, "fsync_interval_seconds": 1.0,
                        "snapshot_every_events": every, "snapshot_every_seconds": 1e9, "snapshot_mode": mode}}


def _spec(account_id: str, mode: str = "netting") -> dict:
    limits = make_limits("moderate", 10_000, max_orders_per_second=1_000).to_dict()
    return {"account_id": account_id, "user_id": "u1", "challenge_id": "c1", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "plan_version": 1, "resolved_limits": limits,
            "position_mode": mode}


def _mark(px: float, ts: float) -> dict:
    return {"instrument": "EURUSD", "bid": px, "ask": px + 0.0001, "ts": ts}


def _state(host: AccountHost) -> dict:
    return {"accounts": {a: account_to_state(x) for a, x in sorted(host.accounts.items())},
            "marks": marks_to_state(host.latest), "news": news_to_state(host.news), "clock": host.clock}


def _session(host: AccountHost) -> list:
    """A day of trading on three accounts: marks, checks (accepted and rejected), fills,
    a cancel, a kill switch, a limit change, a breach and a day roll seen by a read."""
    out = []
    for i, mode in enumerate(("netting", "hedging", "netting")):
        out.append(host.register(_spec(f"a{i}", mode), [], [_mark(1.1, T0)], T0))
    for k in range(12):
        now = T0 + 60 * k
        acct = f"a{k % 3}"
        out.append(host.check_many([{"order_id": f"o{k}", "account_id": acct, "instrument": "EURUSD",
                                     "side": "buy" if k % 4 else "sell", "quantity": 0.5 + k, "ts": now}], [now]))
        if k % 2 == 0:
            out.append(host.fill({"fill_id": f"f{k}", "order_id": f"o{k}", "account_id": acct, "instrument": "EURUSD",
                                  "side": "buy" if k % 4 else "sell", "quantity": 0.5 + k, "price": 1.1001,
                                  "ts": now}, now))
        out.append(host.apply_marks([_mark(1.1 - 0.0004 * k, now)], now))
    out.append(host.cancel("a1", "o1", T0 + 900))
    out.append(host.set_kill_switch({"active": True, "scope": "user", "id": "u1", "mode": "halt", "reason": "ops",
                                     "by": "desk", "at": T0 + 901, "breach": False}, None, T0 + 901))
    out.append(host.patch_limits("a2", {"max_open_positions": 3}, "admin", "tighter", T0 + 902))
    out.append(host.apply_marks([_mark(1.0, T0 + 903)], T0 + 903))  # a large move: breaches
    out.append(host.view("a0", T0 + DAY))  # a read projects the next day on the side: nothing journaled
    out.append(host.summaries(None, T0 + DAY + 1))
    out.append(host.advance_to(T0 + DAY + 2))  # the clock's tick rolls every account: journaled
    return out


def test_rebuilt_host_equals_the_one_that_crashed_and_a_host_without_storage(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path))
    plain = AccountHost("shard-0", {})
    assert _session(host) == _session(plain)
    rebuilt = AccountHost("shard-0", _cfg(tmp_path))
    assert _state(rebuilt) == _state(host) == _state(plain)
    assert rebuilt.recovery["replayed"] > 0 and rebuilt.recovery["snapshot_seq"] is None
    assert any(b["action"] == "breach" for b in rebuilt.breaches(None))


def test_snapshots_compact_the_journal_and_recovery_is_unchanged(tmp_path):
    # inline: every snapshot falls exactly when due (in the background one due while the
    # previous is still being written waits for the next call; test_background_snapshot.py)
    host = AccountHost("shard-0", _cfg(tmp_path, every=5, mode="inline"))
    _session(host)
    rebuilt = AccountHost("shard-0", _cfg(tmp_path, every=5, mode="inline"))
    assert _state(rebuilt) == _state(host)
    assert rebuilt.recovery["snapshot_seq"] is not None and rebuilt.recovery["replayed"] < 5
    segments = os.listdir(tmp_path / "hosts" / "shard-0" / "journal")
    assert len(os.listdir(tmp_path / "hosts" / "shard-0" / "snapshots")) == 2
    assert len(segments) <= 3  # compacted: only what the older kept snapshot does not cover


def test_the_rebuilt_host_continues_exactly_like_the_original(tmp_path):
    import shutil

    host = AccountHost("shard-0", _cfg(tmp_path / "a", every=7))
    _session(host)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # a copy: two writers on one root are fenced
    rebuilt = AccountHost("shard-0", _cfg(tmp_path / "b", every=7))
    for h in (host, rebuilt):
        h.release_kill_switch("user", "u1", "resume", "desk", None, T0 + DAY + 5)
    more = [{"order_id": "late", "account_id": "a1", "instrument": "EURUSD", "side": "buy", "quantity": 0.1,
             "ts": T0 + DAY + 6}]
    assert host.check_many(more, [T0 + DAY + 6]) == rebuilt.check_many(more, [T0 + DAY + 6])
    assert _state(rebuilt) == _state(host)


def test_torn_frame_at_the_end_of_the_journal_is_dropped(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path))
    _session(host)
    expected = _state(host)
    journal = tmp_path / "hosts" / "shard-0" / "journal"
    last = max(os.listdir(journal))
    with open(journal / last, "ab") as f:
        f.write(encode_frame(["fill", [{"fill_id": "never-acknowledged"}, T0]])[:11])
    rebuilt = AccountHost("shard-0", _cfg(tmp_path))
    assert rebuilt.recovery["torn_frames_dropped"] == 1
    assert _state(rebuilt) == expected


def test_a_retried_check_after_recovery_returns_the_first_decision_once(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path))
    host.register(_spec("a0"), [], [_mark(1.1, T0)], T0)
    order = {"order_id": "o1", "account_id": "a0", "instrument": "EURUSD", "side": "buy", "quantity": 0.5, "ts": T0}
    first = host.check_many([order], [T0])
    assert first[0]["decision"] == "accept"
    rebuilt = AccountHost("shard-0", _cfg(tmp_path))  # the reply was lost; the router retries
    assert rebuilt.check_many([order], [T0]) == first
    assert len(rebuilt.accounts["a0"].reservations) == 1


def test_reads_write_nothing_even_when_they_project_a_day_roll(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path))
    host.register(_spec("a0"), [], [], T0)
    seq = host._store.journal.seq
    host.view("a0", T0 + 1)
    host.summaries(None, T0 + 2)
    assert host.view("a0", T0 + DAY)["trading_day"] != host.view("a0")["trading_day"]  # projected
    host.recommendations(None, None, T0 + DAY)
    host.closed_trades(None, T0 + DAY)
    host.apply_marks([_mark(1.1, T0 - 10)], T0)  # applied to an empty marks: journaled
    host.apply_marks([_mark(1.1, T0 - 20)], T0)  # stale: ignored, not journaled
    assert host._store.journal.seq == seq + 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(["check", "fill", "cancel", "mark", "view", "wait"]),
                                st.integers(0, 2), st.floats(0.01, 3.0), st.floats(-0.02, 0.02)),
                      min_size=1, max_size=40),
       every=st.sampled_from([3, 10_000]), fsync=st.sampled_from(["always", "batch", "interval"]))
def test_property_replaying_the_journal_reproduces_the_state(tmp_path_factory, steps, every, fsync):
    root = tmp_path_factory.mktemp("j")
    host = AccountHost("h", _cfg(root, fsync, every))
    for i in range(3):
        host.register(_spec(f"a{i}", "hedging" if i == 1 else "netting"), [], [_mark(1.1, T0)], T0)
    now, px = T0, 1.1
    for n, (op, acct_i, qty, move) in enumerate(steps):
        acct = f"a{acct_i}"
        if op == "check":
            host.check_many([{"order_id": f"o{n}", "account_id": acct, "instrument": "EURUSD",
                              "side": "buy" if move >= 0 else "sell", "quantity": round(qty, 2), "ts": now}], [now])
        elif op == "fill":
            host.fill({"fill_id": f"f{n}", "account_id": acct, "instrument": "EURUSD",
                       "side": "buy" if move >= 0 else "sell", "quantity": round(qty, 2), "price": px, "ts": now}, now)
        elif op == "cancel":
            host.cancel(acct, f"o{max(n - 1, 0)}", now)
        elif op == "mark":
            px = max(0.5, px + move)
            host.apply_marks([_mark(px, now)], now)
        elif op == "view":
            host.view(acct, now)
        else:
            now += 3_600.0 * qty * 10  # up to 30 h: reservations expire, days roll
    if fsync == "interval":
        host._store.journal.sync()
    assert _state(AccountHost("h", _cfg(root, fsync, every))) == _state(host)


def _supervisor(root) -> Supervisor:
    shards = [AccountHost("shard-0", _cfg(root))]
    return Supervisor(LocalTransport(), "sharded", shards, _cfg(root))


def test_supervisor_registry_switches_plans_config_and_calendar_survive_a_restart(tmp_path):
    async def scenario():
        sup = _supervisor(tmp_path)
        spec = {"account_id": "a1", "user_id": "u1", "challenge_id": "c1", "currency": "USD",
                "initial_balance": 10_000.0, "plan": "moderate", "limits": {"max_open_positions": 4}}
        await sup.register(spec, T0)
        await sup.set_kill_switch("challenge", "c1", "halt", "review", "desk", T0 + 1)
        await sup.set_kill_switch("user", "u9", "reduce_only", "review", "desk", T0 + 2)
        await sup.release_kill_switch("user", "u9", "ok", "admin", T0 + 3)
        doc = {"id": "custom", "name": "Custom", "rules": {"daily_loss_limit_fraction": 0.04,
                                                           "max_loss_limit_fraction": 0.08}}
        sup.plan_create(doc, T0 + 4)
        sup.plan_activate("custom", None, T0 + 5)
        sup.update_behaviour_config({"hft_seconds": 90})
        await sup.calendar_add([{"event_id": "nfp", "at": T0 + 3_600, "title": "NFP", "currencies": ["USD"]}])
        sup.audit_append({"at": T0 + 6, "actor": "desk", "role": "ops", "action": "kill_switch_set",
                          "reason": "review", "before": None, "after": {"scope": "challenge"}})
        return sup

    sup = asyncio.run(scenario())
    again = _supervisor(tmp_path)
    assert again.accounts == sup.accounts and dict(again.by_user) == dict(sup.by_user)
    assert list(again.switches) == [("challenge", "c1")]
    assert again.plans.list() == sup.plans.list()
    assert again.behaviour.to_dict() == sup.behaviour.to_dict()
    assert again.calendar_list() == sup.calendar_list()
    assert again.audit_log == sup.audit_log and again.audit_log[0]["audit_id"] == 1
    # an account registered after the restart gets the challenge switch and the calendar
    result = asyncio.run(again.register({"account_id": "a2", "user_id": "u2", "challenge_id": "c1", "currency": "USD",
                                         "initial_balance": 10_000.0, "plan": "custom"}, T0 + 7))
    assert result["view"]["kill_switch"]["scope"] == "challenge"


def test_a_restart_with_another_shard_count_is_refused_clearly(tmp_path):
    import pytest

    asyncio.run(_supervisor(tmp_path).register({"account_id": "a1", "user_id": "u1", "challenge_id": "c1",
                                                "currency": "USD", "initial_balance": 1e4, "plan": "moderate"},
                                               T0))
    shards = [AccountHost(f"shard-{i}", {}) for i in range(8)]  # user u1: shard 5 of 8, shard 0 of 1
    with pytest.raises(ValueError, match="with 8 shards would place elsewhere"):
        Supervisor(LocalTransport(), "sharded", shards, _cfg(tmp_path))


def test_a_registration_journaled_without_its_audit_entry_gets_one_derived_on_recovery(tmp_path):
    sup = _supervisor(tmp_path)
    spec = {"account_id": "a1", "user_id": "u1", "challenge_id": "c1", "currency": "USD", "initial_balance": 1e4,
            "plan": "moderate"}
    asyncio.run(sup.register(spec, T0, ["desk", "admin"]))
    (entry,) = sup.audit_log
    assert (entry["action"], entry["account_id"], entry["actor"], entry["role"], entry["at"]) == (
        "account_registered", "a1", "desk", "admin", T0)
    # a crash between the registry's commit and the audit log's: the audit journal loses the entry
    audit_dir = tmp_path / "supervisor" / "audit"
    for name in os.listdir(audit_dir):
        os.remove(audit_dir / name)
    again = _supervisor(tmp_path)
    (derived,) = again.audit_log
    assert derived["action"] == "account_registered" and derived["account_id"] == "a1"
    assert derived["actor"] == "system" and "derived" in derived["reason"]
    assert derived["after"]["user_id"] == "u1" and derived["after"]["initial_balance"] == 1e4
    assert _supervisor(tmp_path).audit_log == again.audit_log  # derived once, then journaled
