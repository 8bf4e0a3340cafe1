"""``GET /v1/cluster`` from the supervisor's side (no Ray): hosts with their accounts and
journal epochs grouped by node, fronts by heartbeat, a fenced host listed unavailable."""

from __future__ import annotations

import asyncio

import httpx
from unitkit import T0

from api import create_app
from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
from riskactors.settings import Settings


def _cfg(root) -> dict:
    return {"storage": {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0,
                        "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}}


def _deployment(root):
    transport = LocalTransport()
    hosts = [AccountHost(f"shard-{i}", _cfg(root)) for i in range(2)]
    supervisor = Supervisor(transport, "sharded", hosts, _cfg(root))
    return transport, hosts, supervisor


def _register(supervisor: Supervisor, n: int) -> None:
    async def go():
        for i in range(n):
            spec = {"account_id": f"a{i}", "user_id": f"u{i}", "challenge_id": "c", "currency": "USD",
                    "initial_balance": 10_000.0, "plan": "moderate"}
            assert "view" in await supervisor.register(spec, T0)

    asyncio.run(go())


def test_hosts_show_their_accounts_and_epochs_grouped_by_node(tmp_path):
    _, hosts, supervisor = _deployment(tmp_path)
    _register(supervisor, 6)
    view = asyncio.run(supervisor.cluster(T0))
    by_host = {h["host_id"]: h for h in view["hosts"]}
    assert sorted(by_host) == ["shard-0", "shard-1"]
    assert {k: h["accounts"] for k, h in by_host.items()} == {h.host_id: len(h.accounts) for h in hosts}
    assert sum(h["accounts"] for h in view["hosts"]) == view["accounts"] == 6
    assert all(h["available"] and h["epoch"] == 1 for h in view["hosts"])
    assert view["supervisor_epoch"] == 1 and view["shards"] == 2 and view["placement"] == "sharded"
    (node,) = view["nodes"]  # in-process: both hosts in one process
    assert sorted(node["hosts"]) == ["shard-0", "shard-1"] and node["accounts"] == 6


def test_fronts_are_listed_while_they_beat_and_forgotten_after_15_s(tmp_path):
    _, _, supervisor = _deployment(tmp_path)
    front = {"front_id": "node-a:101", "host": "node-a", "pid": 101, "listen": "0.0.0.0:8000", "version": "x",
             "started_at": T0}
    assert supervisor.front_seen(front, T0) == 1
    assert supervisor.front_seen({**front, "front_id": "node-b:7", "pid": 7}, T0 + 10) == 2
    fronts = asyncio.run(supervisor.cluster(T0 + 14))["fronts"]
    assert [f["front_id"] for f in fronts] == ["node-a:101", "node-b:7"] and fronts[0]["last_seen"] == T0
    assert [f["front_id"] for f in asyncio.run(supervisor.cluster(T0 + 15.5))["fronts"]] == ["node-b:7"]


def test_a_fenced_host_is_listed_unavailable(tmp_path):
    _, _, supervisor = _deployment(tmp_path)
    _register(supervisor, 2)
    AccountHost("shard-1", _cfg(tmp_path))  # a second instance of shard-1 on the same root
    by_host = {h["host_id"]: h for h in asyncio.run(supervisor.cluster(T0))["hosts"]}
    assert by_host["shard-0"]["available"] is True
    assert by_host["shard-1"]["available"] is False and "fenced" in by_host["shard-1"]["error"]


def test_the_route_answers_the_view(tmp_path):
    transport, hosts, supervisor = _deployment(tmp_path)
    _register(supervisor, 3)
    app = create_app(Settings(storage_root=None), RiskService(transport, supervisor, hosts, "sharded"))

    async def get():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.get("/v1/cluster")

    r = asyncio.run(get())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accounts"] == 3 and sorted(h["host_id"] for h in body["hosts"]) == ["shard-0", "shard-1"]
    assert all(h["epoch"] == 1 for h in body["hosts"])
