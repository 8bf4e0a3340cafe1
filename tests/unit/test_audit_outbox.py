"""An applied admin action never loses its audit entry, and never gets two.

Account-level actions (limits, status, plan binding, recommendations, account kill switches)
keep their entry in the host's outbox, made from the journaled call; a front delivers it and
the heartbeat drains what is left (``RiskService.drain_audits``). Supervisor-level actions
(scope kill switches, plans, calendar, analytics config) journal the entry in the action's own
record and derive it on recovery when the audit log missed it. The supervisor skips a key it
has, so a repeated delivery adds nothing.
"""

from __future__ import annotations

import asyncio

import pytest
from unitkit import T0

from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
from riskactors.actors.clock import DeploymentClock
from riskactors.actors.service import ACTOR
from riskactors.exceptions import ShardUnavailable


class Flaky(LocalTransport):
    """Fails the named methods while they are in ``down``."""

    def __init__(self):
        super().__init__()
        self.down: set[str] = set()

    async def call(self, target, method, *args, timeout=None):
        if method in self.down:
            raise ShardUnavailable(f"{method}: supervisor restarting")
        return await super().call(target, method, *args, timeout=timeout)


def _cfg(root) -> dict:
    return {"storage": {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0,
                        "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}}


def _deployment(root):
    transport = Flaky()
    shards = [AccountHost(f"shard-{i}", _cfg(root)) for i in range(2)]
    supervisor = Supervisor(transport, "sharded", shards, _cfg(root))
    service = RiskService(transport, supervisor, shards, "sharded", clock=DeploymentClock("events"))
    return transport, shards, supervisor, service


def _entries(supervisor: Supervisor, action: str) -> list[dict]:
    return [e for e in supervisor.audit_log if e["action"] == action]


async def _registered(service: RiskService) -> None:
    await service.register({"account_id": "A", "user_id": "u1", "challenge_id": "c1", "currency": "USD",
                            "initial_balance": 10_000.0, "plan": "moderate"}, T0)


def test_an_account_action_answers_and_keeps_its_entry_when_the_audit_log_is_down(tmp_path):
    async def go():
        transport, shards, supervisor, service = _deployment(tmp_path)
        await _registered(service)
        ACTOR.set(("desk-1", "admin"))
        transport.down = {"audit_append_many"}
        view = await service.patch_limits("A", {"max_open_positions": 3}, "risk", "tighter", T0 + 1)
        assert view["limits"]["max_open_positions"] == 3 and "audit" not in view  # done, and said so
        assert _entries(supervisor, "limits_changed") == []
        (pending,) = [e for h in shards for e in h.outbox.values()]
        assert (pending["actor"], pending["role"], pending["by"], pending["reason"]) == ("desk-1", "admin", "risk",
                                                                                        "tighter")
        transport.down = set()
        assert await service.drain_audits() == 1
        assert await service.drain_audits() == 0  # delivered once
        (entry,) = _entries(supervisor, "limits_changed")
        assert entry["after"]["max_open_positions"] == 3 and entry["key"] == pending["key"]
        assert all(not h.outbox for h in shards)

    asyncio.run(go())


def test_an_entry_left_by_a_crash_before_delivery_comes_back_from_the_host_journal(tmp_path):
    async def go():
        transport, _, supervisor, service = _deployment(tmp_path)
        await _registered(service)
        transport.down = {"audit_append_many"}
        await service.set_status("A", "disabled", "ops", "review", T0 + 1)
        await service.patch_limits("A", {"max_open_positions": 4}, "ops", "again", T0 + 2)
        transport.down = set()
        await service.patch_limits("A", {"max_open_positions": 5}, "ops", "third", T0 + 3)  # delivered at once
        # the hosts "crash" with two entries undelivered: rebuilt from their journals
        rebuilt = [AccountHost(f"shard-{i}", _cfg(tmp_path)) for i in range(2)]
        assert sorted(e["action"] for h in rebuilt for e in h.outbox.values()) == [
            "limits_changed", "limits_changed", "status_changed"]  # the delivered one too: its ack is not journaled
        again = RiskService(transport, supervisor, rebuilt, "sharded", clock=DeploymentClock("events"))
        supervisor.hosts = {h.host_id: h for h in rebuilt}
        assert await again.drain_audits() == 2  # the third was in the log already: skipped
        assert [e["reason"] for e in _entries(supervisor, "limits_changed")] == ["third", "again"]
        assert len(_entries(supervisor, "status_changed")) == 1

    asyncio.run(go())


def test_a_supervisor_action_whose_audit_commit_was_lost_gets_its_entry_on_recovery(tmp_path, monkeypatch):
    async def go():
        transport, shards, supervisor, service = _deployment(tmp_path)
        await _registered(service)
        ACTOR.set(("desk-2", "ops"))
        original = Supervisor.audit_append_many

        def crash(self, entries):  # the process dies after the action's record, before its audit entry
            raise SystemExit("killed")

        monkeypatch.setattr(Supervisor, "audit_append_many", crash)
        with pytest.raises(SystemExit):
            await service.set_kill_switch("challenge", "c1", "halt", "incident", "desk", T0 + 1)
        monkeypatch.setattr(Supervisor, "audit_append_many", original)
        supervisor._journal.close()
        supervisor._audit_journal.close()
        recovered = Supervisor(transport, "sharded", shards, _cfg(tmp_path))
        (entry,) = _entries(recovered, "kill_switch_set")
        assert (entry["actor"], entry["scope_id"], entry["reason"]) == ("desk-2", "c1", "incident")
        assert entry["after"]["accounts_affected"] is None  # not known when it was journaled
        again = Supervisor(transport, "sharded", shards, _cfg(tmp_path))
        assert len(_entries(again, "kill_switch_set")) == 1  # derived once, not at every start

    asyncio.run(go())


def test_account_kill_switch_and_recommendation_entries_come_from_the_host(tmp_path):
    async def go():
        _, shards, supervisor, service = _deployment(tmp_path)
        await _registered(service)
        ACTOR.set(("desk-3", "ops"))
        out = await service.set_kill_switch("account", "A", "reduce_only", "margin", "desk", T0 + 1)
        assert out["accounts_affected"] == 1
        (entry,) = _entries(supervisor, "kill_switch_set")
        assert entry["key"].startswith("shard-") and entry["after"]["accounts_affected"] == 1
        assert entry["actor"] == "desk-3" and entry["account_id"] == "A"
        await service.release_kill_switch("account", "A", "resolved", "desk", T0 + 2)
        (released,) = _entries(supervisor, "kill_switch_released")
        assert released["after"] == {"accounts_released": 1}
        assert all(not h.outbox for h in shards)

    asyncio.run(go())
