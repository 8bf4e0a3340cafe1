"""Placement and failure behaviour on a real (session) Ray."""

from __future__ import annotations

import asyncio
import time

import psutil
import pytest

from riskactors.actors.placement import stable_shard
from tests.conftest import asgi_client


def _account(aid: str, **extra) -> dict:
    return {"account_id": aid, "user_id": f"u-{aid}", "challenge_id": "c-ray", "currency": "USD",
            "initial_balance": 10_000, "plan": "moderate", **extra}


def test_stable_shard_is_deterministic_and_spreads():
    assert stable_shard("10452073", 4) == stable_shard("10452073", 4)
    counts = [0, 0, 0, 0]
    for i in range(4000):
        counts[stable_shard(f"acct-{i}", 4)] += 1
    assert min(counts) > 800  # roughly uniform: each shard within ±20 % of 1000


@pytest.fixture
def one_shard(fresh_deployment):
    return fresh_deployment("sharded", shards=1, timeout=2.0)


@pytest.mark.anyio
async def test_dead_shard_makes_check_fail_closed_with_503(one_shard, ray_session):
    settings, runtime = one_shard
    now = time.time()
    async with asgi_client(settings, runtime) as c:
        assert (await c.post("/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1,
                                                            "ts": now}]})).status_code == 200
        assert (await c.post("/v1/accounts", json=_account("dead-1"))).status_code == 201
        ok = await c.post("/v1/orders/check", json={"order_id": "d1", "account_id": "dead-1", "instrument": "EURUSD",
                                                    "side": "buy", "quantity": 0.1, "ts": now})
        assert ok.json()["decision"] == "accept"
        shard = runtime.shard_actors()[0]
        pid = ray_session.get(shard.ping.remote())["pid"]
        ray_session.kill(shard, no_restart=True)
        deadline = time.monotonic() + 30  # the process exits some 20 ms later; until then it may still answer
        while psutil.pid_exists(pid):
            assert time.monotonic() < deadline, "the killed shard's process is still running"
            await asyncio.sleep(0.01)
        r = await c.post("/v1/orders/check", json={"order_id": "d2", "account_id": "dead-1", "instrument": "EURUSD",
                                                   "side": "buy", "quantity": 0.1, "ts": now + 1})
        assert r.status_code == 503
        body = r.json()
        assert body["decision"] == "reject"
        assert [x["code"] for x in body["reasons"]] == ["SERVICE_UNAVAILABLE"]
        ready = await c.get("/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        view = await c.get("/v1/accounts/dead-1")
        assert view.status_code == 503 and view.json()["detail"]["code"] == "SERVICE_UNAVAILABLE"


@pytest.mark.anyio
async def test_dedicated_placement_gives_each_user_its_own_actor(dedicated_deployment, uid):
    settings, runtime = dedicated_deployment
    async with asgi_client(settings, runtime) as c:
        before = (await c.get("/ready")).json()["hosts"]
        for i in range(2):
            r = await c.post("/v1/accounts", json=_account(f"{uid}-{i}"))
            assert r.status_code == 201
        r = await c.post("/v1/accounts", json=_account(f"{uid}-0b", user_id=f"u-{uid}-0"))  # user 0's second
        assert r.status_code == 201
        ready = (await c.get("/ready")).json()
        assert ready["placement"] == "dedicated"
        assert ready["hosts"] == before + 2
        assert ready["host_accounts"][f"user-u-{uid}-0"] == 2
        assert ready["host_accounts"][f"user-u-{uid}-1"] == 1


@pytest.mark.anyio
async def test_sharded_placement_puts_account_on_its_users_hash_shard(sharded_deployment, uid):
    settings, runtime = sharded_deployment
    async with asgi_client(settings, runtime) as c:
        before = (await c.get("/ready")).json()["host_accounts"]
        aid = f"{uid}-s"
        assert (await c.post("/v1/accounts", json=_account(aid))).status_code == 201
        after = (await c.get("/ready")).json()["host_accounts"]
        shard = f"shard-{stable_shard(f'u-{aid}', settings.shards)}"
        assert after[shard] == before[shard] + 1
        assert sum(after.values()) == sum(before.values()) + 1


@pytest.mark.anyio
async def test_a_registration_waits_for_new_dedicated_hosts_beyond_the_call_timeout(fresh_deployment, uid):
    """Starting a dedicated host (a new worker process) takes longer than a call may: a batch
    that starts three hosts is answered 201 per item, not 503, with a call timeout of 1 s (three
    new worker processes take longer than that here; a first call to each must not)."""
    settings, runtime = fresh_deployment("dedicated", timeout=1.0)
    assert runtime.service.registration_timeout == 1.0 + settings.spawn_timeout_seconds
    items = [_account(f"{uid}-sp{i}") for i in range(3)]
    async with asgi_client(settings, runtime) as c:
        r = await c.post("/v1/accounts/batch", json={"accounts": items})
        assert r.status_code == 200, r.text
        assert [(x["account_id"], x["status"]) for x in r.json()["results"]] == [(i["account_id"], 201) for i in items]
        hosts = await runtime.service.transport.call(runtime.supervisor, "host_list", timeout=30.0)
        assert sorted(k for k, _ in hosts) == sorted(f"user-u-{uid}-sp{i}" for i in range(3))
