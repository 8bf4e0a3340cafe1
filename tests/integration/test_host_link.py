"""Pre-trade checks (and fills, views) over the host link (:mod:`riskactors.actors.hostlink`) on the session's Ray:
they go over it, a shard killed with SIGKILL fails them closed or hands them to Ray until its
new instance offers a new link, and ``host_link=False`` keeps every call on Ray."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest

from riskactors.exceptions import ShardUnavailable
from tests.conftest import asgi_client

pytestmark = pytest.mark.anyio


def _account(aid: str) -> dict:
    return {"account_id": aid, "user_id": f"u-{aid}", "challenge_id": "c-link", "currency": "USD",
            "initial_balance": 100_000, "plan": "moderate", "limits": {"max_orders_per_second": 10_000}}


def _order(oid: str, aid: str, lots: float = 0.1) -> dict:
    return {"order_id": oid, "account_id": aid, "instrument": "EURUSD", "side": "buy", "quantity": lots,
            "ts": time.time()}


async def _setup(c, aid: str) -> None:
    now = time.time()
    r = await c.post("/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002, "ts": now}]})
    assert r.status_code == 200, r.text
    assert (await c.post("/v1/accounts", json=_account(aid))).status_code == 201


async def test_checks_go_over_the_link_and_decide_as_through_ray(fresh_deployment, uid):
    settings, runtime = fresh_deployment("sharded", shards=1, timeout=10.0)
    transport = runtime.service.transport
    async with asgi_client(settings, runtime) as c:
        await _setup(c, f"{uid}-a")
        before = transport.link_calls["check_many"]
        answers = [(await c.post("/v1/orders/check", json=_order(f"{uid}-o{i}", f"{uid}-a", 2.0))).json()
                   for i in range(4)]
        assert transport.link_calls["check_many"] == before + 4
        # 5 lots at most under "moderate": two of 2 lots fit, the third does not
        assert [a["decision"] for a in answers] == ["accept", "accept", "reject", "reject"]
        assert [r["code"] for r in answers[2]["reasons"]] == ["MAX_POSITION_SIZE"]
        # the same order again (a retry) answers the decision taken, through either path
        again = (await c.post("/v1/orders/check", json=_order(f"{uid}-o0", f"{uid}-a", 2.0))).json()
        assert again["decision"] == "accept" and again["order_id"] == f"{uid}-o0"
        fill = {"fill_id": f"{uid}-f0", "order_id": f"{uid}-o0", "account_id": f"{uid}-a", "instrument": "EURUSD",
                "side": "buy", "quantity": 2.0, "price": 1.1002, "ts": time.time()}
        assert (await c.post("/v1/fills", json=fill)).status_code == 200
        view = (await c.get(f"/v1/accounts/{uid}-a")).json()
        assert [p["quantity"] for p in view["positions"]] == [2.0]
        assert transport.link_calls["fill"] == 1 and transport.link_calls["view"] == 1


async def test_a_killed_shard_fails_checks_closed_then_its_new_instance_is_linked(fresh_deployment, uid, ray_session):
    settings, runtime = fresh_deployment("sharded", shards=1, timeout=10.0)
    transport = runtime.service.transport
    async with asgi_client(settings, runtime) as c:
        await _setup(c, f"{uid}-k")
        first = (await c.post("/v1/orders/check", json=_order(f"{uid}-k0", f"{uid}-k"))).json()
        assert first["decision"] == "accept" and transport.link_calls["check_many"] == 1
        pid = (await transport.call(runtime.shards[0], "ping"))["pid"]
        os.kill(pid, signal.SIGKILL)
        # in flight or next: answered by the restarted instance through Ray, or 503 fail-closed
        r = await c.post("/v1/orders/check", json=_order(f"{uid}-k1", f"{uid}-k"))
        assert (r.status_code, r.json()["decision"]) in ((200, "accept"), (503, "reject")), r.text
        if r.status_code == 503:
            assert [x["code"] for x in r.json()["reasons"]] == ["SERVICE_UNAVAILABLE"]
        deadline = time.monotonic() + 60
        while True:  # Ray restarts it (its ping may time out while the new process starts)
            with contextlib.suppress(ShardUnavailable):
                if (await transport.call(runtime.shards[0], "ping"))["pid"] != pid:
                    break
            assert time.monotonic() < deadline, "the shard was not restarted"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.1)  # a failed connection is tried again after 1 s
        linked = transport.link_calls["check_many"]
        retry = (await c.post("/v1/orders/check", json=_order(f"{uid}-k0", f"{uid}-k"))).json()
        assert retry["decision"] == "accept"  # the decision journaled before the kill
        assert transport.link_calls["check_many"] == linked + 1  # over a link to the new instance
        new_pid = (await transport.call(runtime.shards[0], "ping"))["pid"]
        assert new_pid != pid


async def test_with_host_link_off_every_call_goes_through_ray(fresh_deployment, uid):
    settings, runtime = fresh_deployment("sharded", shards=1, timeout=10.0, host_link=False)
    transport = runtime.service.transport
    async with asgi_client(settings, runtime) as c:
        await _setup(c, f"{uid}-r")
        r = await c.post("/v1/orders/check", json=_order(f"{uid}-r0", f"{uid}-r"))
        assert r.json()["decision"] == "accept"
        assert not transport.link_calls
        assert await transport.call(runtime.shards[0], "link_endpoint") is None
