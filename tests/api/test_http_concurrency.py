"""Concurrent requests through HTTP against the real actors, both placements: one writer per
account means concurrent checks can never over-commit a limit, and one registration wins."""

from __future__ import annotations

import asyncio

import pytest
from httpkit import codes, fresh_ts

pytestmark = pytest.mark.anyio

K = 7
N = 50


async def test_50_concurrent_checks_accept_exactly_k_under_max_position_lots(api):
    """max_position_lots = K x 0.1: of 50 concurrent 0.1-lot buys exactly K are accepted and
    the other 43 are rejected with MAX_POSITION_SIZE (worst case K x 0.1 + 0.1 lots)."""
    acct = api.id("a")
    await api.register("a", max_position_lots=round(K * 0.1, 2), max_orders_per_second=10_000)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    orders = [api.order(acct, "EURUSD", "buy", 0.1) for _ in range(N)]
    assert len({o["order_id"] for o in orders}) == N
    responses = await asyncio.gather(*(api.client.post("/v1/orders/check", json=o) for o in orders))
    assert [r.status_code for r in responses] == [200] * N
    decisions = [r.json() for r in responses]
    accepted = [d for d in decisions if d["decision"] == "accept"]
    rejected = [d for d in decisions if d["decision"] == "reject"]
    assert len(accepted) == K and len(rejected) == N - K
    for d in rejected:
        assert codes(d["reasons"]) == ["MAX_POSITION_SIZE"], d
        assert d["reasons"][0]["limit"] == pytest.approx(K * 0.1)
        assert d["reasons"][0]["value"] == pytest.approx(K * 0.1 + 0.1)
    assert sorted(d["order_id"] for d in decisions) == sorted(o["order_id"] for o in orders)

    v = await api.view(acct)
    assert sorted(r["order_id"] for r in v["reservations"]) == sorted(d["order_id"] for d in accepted)
    assert sum(r["quantity"] for r in v["reservations"]) == pytest.approx(K * 0.1)

    # concurrent retries of all 50 return the same decisions and reserve nothing more
    again = await asyncio.gather(*(api.client.post("/v1/orders/check", json=o) for o in orders))
    assert [r.json() for r in again] == decisions
    assert len((await api.view(acct))["reservations"]) == K


async def test_concurrent_fills_and_cancels_keep_the_books_exact(api):
    acct = api.id("a")
    await api.register("a", max_orders_per_second=10_000)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    decisions = await asyncio.gather(*(api.check(acct, "EURUSD", "buy", 0.1) for _ in range(10)))
    assert all(d["decision"] == "accept" for d in decisions)
    fills = [{"fill_id": api.id(f"f{i}"), "order_id": d["order_id"], "account_id": acct, "instrument": "EURUSD",
              "side": "buy", "quantity": 0.1, "price": 1.10020, "commission": -0.7, "ts": fresh_ts()}
             for i, d in enumerate(decisions[:5])]
    # each fill sent twice, concurrently, with the cancels of the other five orders
    calls = [api.client.post("/v1/fills", json=f) for f in fills + fills]
    calls += [api.client.post(f"/v1/orders/{d['order_id']}/cancel", json={"account_id": acct})
              for d in decisions[5:]]
    responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    dup_flags = [r.json()["duplicate"] for r in responses[:10]]
    assert dup_flags.count(True) == 5 and dup_flags.count(False) == 5
    assert all(r.json()["released"] is True for r in responses[10:])
    v = await api.view(acct)
    assert v["reservations"] == []
    assert v["positions"][0]["quantity"] == pytest.approx(0.5)
    assert v["balance"] == pytest.approx(100_000 - 5 * 0.7)


async def test_concurrent_registrations_of_one_id_create_it_once(api):
    body = {"account_id": api.id("same"), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": 50_000, "plan": "moderate"}
    responses = await asyncio.gather(*(api.client.post("/v1/accounts", json=body) for _ in range(5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409]
    assert all(r.json()["detail"]["code"] == "DUPLICATE_ACCOUNT" for r in responses if r.status_code == 409)
    v = await api.view(api.id("same"))
    assert v["initial_balance"] == 50_000
    risk = (await api.client.get(f"/v1/risk/users/{api.id('u1')}")).json()
    assert risk["accounts"] == 1
