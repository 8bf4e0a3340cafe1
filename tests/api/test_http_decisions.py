"""Decisions over HTTP on both placements: a reject is HTTP 200 with every reason and its
numbers; retries are idempotent; reservations are released by cancel and by fills."""

from __future__ import annotations

import pytest
from httpkit import aged_out, codes, fresh_ts, reason

pytestmark = pytest.mark.anyio

approx = lambda x: pytest.approx(x, rel=1e-9, abs=1e-6)


# ------------------------------------------------------------------------------ rejects
async def test_reject_is_200_with_every_reason_and_its_limit_and_value(api):
    """10,000 USD account, 1 lot max, 5x max leverage, 1:10 margin, max loss 1,000.

    Buy 2 lots EURUSD at market (ask 1.10020, mid 1.10010) with a stop-loss at 1.09500:
    - MAX_POSITION_SIZE: 2 lots > 1
    - MAX_LEVERAGE: 2 x 100,000 x 1.1001 = 220,020 notional / 10,000 equity = 22.002x > 5x
    - INSUFFICIENT_MARGIN: 220,020 x 10 % = 22,002 > 10,000 allowed (margin call level 100 %)
    - DAILY_LOSS_LIMIT / MAX_LOSS_LIMIT: loss at the stop (1.10020 - 1.09500) x 2 x 100,000 =
      1,040 > 500 daily and > 1,000 max loss.
    """
    acct = api.id("a")
    await api.register("a", balance=10_000, max_position_lots=1, max_leverage=5, account_leverage=10,
                       max_loss_limit=1_000)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    r = await api.client.post("/v1/orders/check",
                              json=api.order(acct, "EURUSD", "buy", 2.0, stop_loss=1.09500, take_profit=1.12))
    assert r.status_code == 200
    d = r.json()
    assert d["decision"] == "reject" and d["account_id"] == acct
    assert sorted(codes(d["reasons"])) == sorted(["MAX_POSITION_SIZE", "MAX_LEVERAGE", "INSUFFICIENT_MARGIN",
                                                  "DAILY_LOSS_LIMIT", "MAX_LOSS_LIMIT"])
    expect = {"MAX_POSITION_SIZE": (1.0, 2.0), "MAX_LEVERAGE": (5.0, 22.002), "INSUFFICIENT_MARGIN": (10_000, 22_002),
              "DAILY_LOSS_LIMIT": (500, 1_040), "MAX_LOSS_LIMIT": (1_000, 1_040)}
    for code, (limit, value) in expect.items():
        x = reason(d, code)
        assert x["limit"] == approx(limit) and x["value"] == approx(value), x
        assert x["message"]
    assert 50 <= d["risk_score"] <= 100
    assert (await api.view(acct))["reservations"] == []  # nothing reserved on a reject


async def test_single_rule_rejects_name_their_code(api):
    acct = api.id("a")
    await api.register("a", max_open_positions=1, max_orders_per_second=1000)
    await api.marks({"EURUSD": (1.10000, 1.10020), "XAUUSD": (2300.00, 2300.50)})

    # never priced, and no NZD->USD rate from any mark: fail closed
    d = await api.check(acct, "AUDNZD", "buy", 0.1)
    assert d["decision"] == "reject" and sorted(codes(d["reasons"])) == ["NO_CONVERSION_RATE", "NO_PRICE"]
    # a limit price gives a price, still no rate
    d = await api.check(acct, "AUDNZD", "buy", 0.1, price=1.09)
    assert codes(d["reasons"]) == ["NO_CONVERSION_RATE"]

    d = await api.check(acct, "EURUSD", "buy", 5.01)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["MAX_POSITION_SIZE"]
    assert reason(d, "MAX_POSITION_SIZE")["limit"] == 5 and reason(d, "MAX_POSITION_SIZE")["value"] == approx(5.01)

    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)
    d = await api.check(acct, "XAUUSD", "buy", 0.1)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["MAX_OPEN_POSITIONS"]
    assert reason(d, "MAX_OPEN_POSITIONS")["limit"] == 1 and reason(d, "MAX_OPEN_POSITIONS")["value"] == 2

    # adding to the open instrument is fine; a leverage-breaking size is not (10x of ~100k equity)
    assert (await api.check(acct, "EURUSD", "buy", 1.0))["decision"] == "accept"
    d = await api.check(acct, "EURUSD", "buy", 4.0)  # worst case 6 lots > 5, and ~6.6x leverage is fine
    assert codes(d["reasons"]) == ["MAX_POSITION_SIZE"]


async def test_order_rate_limit_counts_checks_in_the_sliding_second(api):
    acct = api.id("a")
    await api.register("a", max_orders_per_second=2)
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    ts = fresh_ts()
    decisions = [await api.check(acct, "EURUSD", "buy", 0.01, ts=ts + i * 0.1) for i in range(3)]
    assert [d["decision"] for d in decisions] == ["accept", "accept", "reject"]
    assert codes(decisions[2]["reasons"]) == ["ORDER_RATE_LIMIT"]
    assert reason(decisions[2], "ORDER_RATE_LIMIT")["limit"] == 2 and reason(decisions[2], "ORDER_RATE_LIMIT")["value"] == 3
    # a second later the window has moved on
    assert (await api.check(acct, "EURUSD", "buy", 0.01, ts=ts + 1.5))["decision"] == "accept"


async def test_disabled_account_accepts_nothing_until_reactivated(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)
    r = await api.client.put(f"/v1/accounts/{acct}/status", json={"status": "disabled", "reason": "KYC", "by": "ops"})
    assert r.status_code == 200 and r.json()["status"] == "disabled"
    for side in ("buy", "sell"):  # not even a closing order
        d = await api.check(acct, "EURUSD", side, 0.5)
        assert d["decision"] == "reject" and codes(d["reasons"]) == ["ACCOUNT_NOT_ACTIVE"]
    r = await api.client.put(f"/v1/accounts/{acct}/status", json={"status": "active", "reason": "KYC done"})
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await api.check(acct, "EURUSD", "sell", 0.5))["decision"] == "accept"
    events = (await api.client.get(f"/v1/accounts/{acct}/events")).json()["events"]
    assert [(e["before"], e["after"]) for e in events if e["type"] == "status_changed"] == \
        [("active", "disabled"), ("disabled", "active")]


# ------------------------------------------------------------------------------ idempotency
async def test_retried_check_returns_the_identical_decision_and_reserves_once(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    order = api.order(acct, "EURUSD", "buy", 1.0, stop_loss=1.0990)
    first = await api.client.post("/v1/orders/check", json=order)
    again = await api.client.post("/v1/orders/check", json=order)
    later = await api.client.post("/v1/orders/check", json={**order, "ts": fresh_ts() + 0.5})  # retry after a timeout
    assert first.status_code == again.status_code == later.status_code == 200
    assert first.json()["decision"] == "accept"
    assert again.json() == first.json() and later.json() == first.json()
    v = await api.view(acct)
    assert [(r["order_id"], r["quantity"]) for r in v["reservations"]] == [(order["order_id"], 1.0)]

    # a retried reject stays the identical reject
    big = api.order(acct, "EURUSD", "buy", 9.0)
    r1 = (await api.client.post("/v1/orders/check", json=big)).json()
    r2 = (await api.client.post("/v1/orders/check", json=big)).json()
    assert r1["decision"] == "reject" and r1 == r2
    assert len((await api.view(acct))["reservations"]) == 1


async def test_retried_fill_is_a_duplicate_and_changes_nothing(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    d = await api.check(acct, "EURUSD", "buy", 1.0)
    fill = {"fill_id": api.id("f1"), "order_id": d["order_id"], "account_id": acct, "instrument": "EURUSD",
            "side": "buy", "quantity": 1.0, "price": 1.10020, "commission": -7.0, "swap": -1.5, "ts": fresh_ts()}
    first = (await api.client.post("/v1/fills", json=fill)).json()
    assert first["duplicate"] is False and first["balance"] == approx(100_000 - 8.5)
    before = await api.view(acct)
    for _ in range(2):
        r = await api.client.post("/v1/fills", json=fill)
        assert r.status_code == 200
        again = r.json()
        assert again["duplicate"] is True
        assert {**again, "duplicate": False} == first
    after = await api.view(acct)
    assert after["balance"] == before["balance"] == approx(99_991.5)
    assert aged_out(after["positions"]) == aged_out(before["positions"]) and after["positions"][0]["quantity"] == 1.0
    events = (await api.client.get(f"/v1/accounts/{acct}/events")).json()["events"]
    assert sum(1 for e in events if e["type"] == "fill_applied") == 1


# ------------------------------------------------------------------------------ reservations
async def test_cancel_releases_the_reservation_with_or_without_account_id(api, deployment):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    d1 = await api.check(acct, "EURUSD", "buy", 1.0)
    d2 = await api.check(acct, "EURUSD", "sell", 0.5)
    d3 = await api.check(acct, "EURUSD", "buy", 0.2)
    assert {r["order_id"] for r in (await api.view(acct))["reservations"]} == {d1["order_id"], d2["order_id"],
                                                                               d3["order_id"]}
    r = await api.client.post(f"/v1/orders/{d1['order_id']}/cancel", json={"account_id": acct, "ts": fresh_ts()})
    assert r.status_code == 200
    out = r.json()
    assert out["released"] is True and out["account_id"] == acct and out["order_id"] == d1["order_id"]
    assert out["reservation"]["quantity"] == 1.0 and out["reservation"]["instrument"] == "EURUSD"
    # idempotent: a second cancel is a 200 that releases nothing
    r = await api.client.post(f"/v1/orders/{d1['order_id']}/cancel", json={"account_id": acct})
    assert r.status_code == 200 and r.json()["released"] is False and r.json()["reservation"] is None

    # without a body: the front remembers which account checked the order
    r = await api.client.post(f"/v1/orders/{d2['order_id']}/cancel")
    assert r.status_code == 200 and r.json()["released"] is True and r.json()["account_id"] == acct
    assert r.json()["reservation"]["quantity"] == -0.5

    # a second front (another worker) that never saw the order finds it on the hosts
    import httpx

    from api import create_app
    from riskactors.actors.ray_runtime import RayTransport
    from riskactors.actors.service import RiskService

    settings, runtime = deployment
    other = RiskService(RayTransport(settings.call_timeout_seconds), runtime.supervisor, runtime.shards,
                        settings.placement)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings, other)),
                                 base_url="http://other.test") as c2:
        r = await c2.post(f"/v1/orders/{d3['order_id']}/cancel", json={})
        assert r.status_code == 200, r.text
        assert r.json()["released"] is True and r.json()["account_id"] == acct
    v = await api.view(acct)
    assert v["reservations"] == [] and v["reserved_margin"] == 0


async def test_fills_release_the_reservation_partially_then_fully(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    d = await api.check(acct, "EURUSD", "buy", 1.0)
    await api.fill(acct, "EURUSD", "buy", 0.4, 1.10020, order_id=d["order_id"])
    v = await api.view(acct)
    assert [(r["order_id"], r["quantity"]) for r in v["reservations"]] == [(d["order_id"], approx(0.6))]
    assert v["positions"][0]["quantity"] == approx(0.4)
    await api.fill(acct, "EURUSD", "buy", 0.6, 1.10030, order_id=d["order_id"])
    v = await api.view(acct)
    assert v["reservations"] == []
    assert v["positions"][0]["quantity"] == approx(1.0)
    assert v["positions"][0]["average_price"] == approx((0.4 * 1.10020 + 0.6 * 1.10030) / 1.0)
    # the released room is usable again: 5 lots max, 1 held
    assert (await api.check(acct, "EURUSD", "buy", 4.0))["decision"] == "accept"
    assert (await api.check(acct, "EURUSD", "buy", 0.01))["decision"] == "reject"
