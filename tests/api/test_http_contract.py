"""HTTP contract end to end on both placements: register -> marks -> check -> fill -> view ->
close -> balance, with every expected number computed by hand from contract sizes; plus the
health, readiness and documentation endpoints.

Floating P&L = (exit price - average price) x signed lots x contract size x rate(quote->USD);
exit is the bid for a long. Notional = |lots| x contract size x mid x rate; margin =
notional x max(instrument margin rate, 1/100). USDJPY converts JPY -> USD at 1 / mid(USDJPY).
"""

from __future__ import annotations

import pytest
from httpkit import CONTRACT, codes

pytestmark = pytest.mark.anyio

approx = lambda x: pytest.approx(x, rel=1e-9, abs=1e-6)


async def test_register_trade_value_and_close_gives_exact_numbers(api):
    acct = api.id("a")
    created = await api.register("a")
    assert created["account_id"] == acct and created["user_id"] == api.id("u1")
    assert created["challenge_id"] == api.id("c1") and created["currency"] == "USD" and created["plan"] == "moderate"
    assert created["balance"] == 100_000 and created["equity"] == 100_000 and created["floating_pnl"] == 0
    assert created["positions"] == [] and created["reservations"] == [] and created["status"] == "active"
    assert created["kill_switch"]["active"] is False and created["warnings"] == []
    assert created["limits"]["max_position_lots"] == 5 and created["limits"]["daily_loss_limit"] == 500
    assert created["limits"]["max_orders_per_second"] == 1000  # the override
    assert created["margin_used"] == 0 and created["margin_level"] is None and created["free_margin"] == 100_000

    await api.marks({"EURUSD": (1.10000, 1.10020), "XAUUSD": (2300.00, 2300.50), "USDJPY": (150.000, 150.020)})

    # -- EURUSD: check (reservation), then fill at the ask with 7 USD commission
    d = await api.check(acct, "EURUSD", "buy", 1.0)
    assert d["decision"] == "accept" and d["reasons"] == [] and d["reduces_position"] is False
    assert d["order_id"] and d["account_id"] == acct and 0 <= d["risk_score"] <= 100
    v = await api.view(acct)
    assert [(r["order_id"], r["instrument"], r["quantity"]) for r in v["reservations"]] == [(d["order_id"], "EURUSD", 1.0)]
    # reserved margin: 1 lot x 100,000 x mid 1.1001 x 1 %
    assert v["reserved_margin"] == approx(1.1001 * 100_000 * 0.01)

    f = await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020, order_id=d["order_id"], commission=-7.0)
    assert f["duplicate"] is False and f["realized_pnl"] == 0 and f["net_pnl"] == approx(-7)
    assert f["balance"] == approx(99_993) and f["breach"] == []
    assert f["position"]["quantity"] == 1.0 and f["position"]["average_price"] == approx(1.1002)

    # -- XAUUSD 2 lots at 2300.50 (10 USD commission), USDJPY 1 lot at 150.020 (no commission)
    await api.trade(acct, "XAUUSD", "buy", 2.0, 2300.50, commission=-10.0)
    await api.trade(acct, "USDJPY", "buy", 1.0, 150.020)
    v = await api.view(acct)
    assert v["reservations"] == [] and v["balance"] == approx(99_983)

    # -- prices move up
    await api.marks({"EURUSD": (1.10500, 1.10520), "XAUUSD": (2310.00, 2310.50), "USDJPY": (151.000, 151.020)})
    jpy_usd = 1 / ((151.000 + 151.020) / 2)
    fl_eur = (1.10500 - 1.10020) * 1 * CONTRACT["EURUSD"]                 # 480.00
    fl_xau = (2310.00 - 2300.50) * 2 * CONTRACT["XAUUSD"]                 # 1,900.00
    fl_jpy = (151.000 - 150.020) * 1 * CONTRACT["USDJPY"] * jpy_usd       # 98,000 JPY = 648.96 USD
    floating = fl_eur + fl_xau + fl_jpy
    equity = 99_983 + floating
    notional = {"EURUSD": 1 * CONTRACT["EURUSD"] * 1.10510,                  # 110,510
                "XAUUSD": 2 * CONTRACT["XAUUSD"] * 2310.25,                  # 462,050
                "USDJPY": 1 * CONTRACT["USDJPY"] * 151.010 * jpy_usd}        # 100,000 USD
    margin = notional["EURUSD"] * 0.01 + notional["XAUUSD"] * 0.02 + notional["USDJPY"] * 0.01

    v = await api.view(acct)
    pos = {p["instrument"]: p for p in v["positions"]}
    assert sorted(pos) == ["EURUSD", "USDJPY", "XAUUSD"]
    assert pos["EURUSD"]["quantity"] == 1.0 and pos["EURUSD"]["average_price"] == approx(1.1002)
    assert pos["EURUSD"]["floating_pnl"] == approx(fl_eur) and fl_eur == approx(480)
    assert pos["XAUUSD"]["quantity"] == 2.0 and pos["XAUUSD"]["average_price"] == approx(2300.50)
    assert pos["XAUUSD"]["floating_pnl"] == approx(fl_xau) and fl_xau == approx(1900)
    assert pos["USDJPY"]["quantity"] == 1.0 and pos["USDJPY"]["average_price"] == approx(150.020)
    assert pos["USDJPY"]["floating_pnl"] == approx(fl_jpy) and fl_jpy == approx(98_000 / 151.01)
    assert pos["USDJPY"]["quote_currency"] == "JPY"
    assert v["balance"] == approx(99_983)
    assert v["floating_pnl"] == approx(floating)
    assert v["equity"] == approx(equity)
    assert v["daily_pnl"] == approx(equity - 100_000)
    assert v["notional"] == approx(sum(notional.values()))
    assert notional["USDJPY"] == approx(100_000)  # one lot of USDJPY is 100,000 USD
    for sym, n in notional.items():
        assert pos[sym]["notional"] == approx(n), sym
    assert v["margin_used"] == approx(margin)
    assert v["free_margin"] == approx(equity - margin)
    assert v["margin_level"] == approx(equity / margin * 100)
    assert v["leverage"] == approx(sum(notional.values()) / equity)
    assert v["warnings"] == [] and v["status"] == "active" and 0 < v["risk_score"] < 50

    # -- close EURUSD at the bid: realizes 480, minus 7 commission
    d = await api.check(acct, "EURUSD", "sell", 1.0)
    assert d["decision"] == "accept" and d["reduces_position"] is True
    f = await api.fill(acct, "EURUSD", "sell", 1.0, 1.10500, order_id=d["order_id"], commission=-7.0)
    assert f["realized_pnl"] == approx(480) and f["net_pnl"] == approx(473)
    assert f["position"] is None and f["balance"] == approx(99_983 + 473)

    # -- close the rest
    await api.trade(acct, "XAUUSD", "sell", 2.0, 2310.00)
    f = await api.trade(acct, "USDJPY", "sell", 1.0, 151.000)
    assert f["realized_pnl"] == approx(fl_jpy)
    final = 99_983 + 473 + 1900 + fl_jpy
    v = await api.view(acct)
    assert v["positions"] == [] and v["reservations"] == []
    assert v["balance"] == approx(final) and v["equity"] == approx(final) and v["floating_pnl"] == 0
    assert v["day_realized_pnl"] == approx(final - 100_000)
    assert v["daily_pnl"] == approx(final - 100_000)
    assert v["margin_used"] == 0 and v["margin_level"] is None and v["notional"] == 0
    assert v["free_margin"] == approx(final)

    # the account's journal has every step, in order
    r = await api.client.get(f"/v1/accounts/{acct}/events", params={"limit": 2000})
    assert r.status_code == 200
    kinds = [e["type"] for e in r.json()["events"]]
    assert kinds[0] == "account_opened"
    assert kinds.count("fill_applied") == 6 and kinds.count("order_checked") == 6


async def test_patch_limits_is_applied_and_recorded_as_event(api):
    acct = api.id("a")
    await api.register("a")
    r = await api.client.patch(f"/v1/accounts/{acct}/limits",
                               json={"max_position_lots": 2.5, "by": "risk-desk", "reason": "new trader"})
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["max_position_lots"] == 2.5
    assert r.json()["limits"]["daily_loss_limit"] == 500  # untouched
    assert (await api.view(acct))["limits"]["max_position_lots"] == 2.5
    events = (await api.client.get(f"/v1/accounts/{acct}/events")).json()["events"]
    changed = [e for e in events if e["type"] == "limits_changed"]
    assert len(changed) == 1
    assert changed[0]["by"] == "risk-desk" and changed[0]["reason"] == "new trader"
    assert changed[0]["before"]["max_position_lots"] == 5 and changed[0]["after"]["max_position_lots"] == 2.5
    # the new limit is enforced
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    d = await api.check(acct, "EURUSD", "buy", 3.0)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["MAX_POSITION_SIZE"]


async def test_health_ready_docs_and_openapi(api, placement):
    c = api.client
    r = await c.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}

    await api.register("a")  # at least one account and, for dedicated, one host
    r = await c.get("/ready")
    assert r.status_code == 200, r.text
    ready = r.json()
    assert ready["status"] == "ready" and ready["placement"] == placement
    assert ready["accounts"] >= 1
    if placement == "sharded":
        assert ready["hosts"] == 2 and sorted(ready["host_accounts"]) == ["shard-0", "shard-1"]
    else:
        assert ready["hosts"] >= 1 and f"user-{api.id('u1')}" in ready["host_accounts"]
        assert ready["host_accounts"][f"user-{api.id('u1')}"] == 1  # one actor per user
    assert sum(ready["host_accounts"].values()) == ready["accounts"]

    r = await c.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
    r = await c.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path, method in [("/v1/accounts", "post"), ("/v1/accounts/{account_id}", "get"),
                         ("/v1/accounts/{account_id}/limits", "patch"), ("/v1/accounts/{account_id}/events", "get"),
                         ("/v1/orders/check", "post"), ("/v1/orders/{order_id}/cancel", "post"),
                         ("/v1/fills", "post"), ("/v1/marks", "post"), ("/v1/kill-switch", "post"),
                         ("/v1/kill-switch/firm", "delete"), ("/v1/kill-switch/{scope}/{scope_id}", "delete"),
                         ("/v1/risk/users/{user_id}", "get"), ("/v1/risk/challenges/{challenge_id}", "get"),
                         ("/v1/risk/firm", "get"), ("/health", "get"), ("/ready", "get")]:
        assert method in paths.get(path, {}), f"{method.upper()} {path} missing from openapi.json"
    assert "application/msgpack" in paths["/v1/orders/check"]["post"]["requestBody"]["content"]

    r = await c.get("/metrics")
    assert r.status_code == 200 and "riskactors_order_checks_total" in r.text
