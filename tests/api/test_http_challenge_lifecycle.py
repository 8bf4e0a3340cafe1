"""The challenge lifecycle through HTTP on a real Ray: ``active → passed`` when the profit target
and the minimum trading days are met (flat), ``active → failed`` on a max-loss breach from a mark
or when the time limit runs out; a soft daily-loss breach keeps the account active but blocks
opening orders for the rest of the trading day.

Times: a check or a fill takes its time from ``ts``; registration from ``opened_at``; a view
from the server clock (so a view of an account opened more than a day ago is past a one-day
time limit)."""

from __future__ import annotations

import time

import pytest
from httpkit import codes, reason

pytestmark = pytest.mark.anyio

DAY = 86_400.0
# A small challenge: the moderate template's limits, 100 of closed profit and 1 trading day to pass.
CHALLENGE_RULES = {"max_leverage": 10, "account_leverage": 100, "max_position_lots": 5, "max_open_positions": 5,
                   "daily_loss_limit": 500, "max_loss_limit": 2000, "max_loss_mode": "static",
                   "max_orders_per_second": 1000, "profit_target": 100, "min_trading_days": 1}


async def _challenge_plan(api) -> str:
    pid = api.id("challenge")
    r = await api.client.post("/v1/plans", json={"id": pid, "name": "Small challenge", "rules": CHALLENGE_RULES})
    assert r.status_code == 201, r.text
    r = await api.client.post(f"/v1/plans/{pid}/activate")
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    return pid


async def _register(api, name: str, **body) -> dict:
    limits = body.pop("limits", {})
    payload = {"account_id": api.id(name), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
               "initial_balance": 100_000.0, "plan": "moderate",
               "limits": {"max_orders_per_second": 1000, **limits}, **body}
    r = await api.client.post("/v1/accounts", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_profitable_round_trip_passes_the_challenge_and_one_cent_short_does_not(api):
    """Long 1 lot EURUSD at 1.10020, closed at 1.10120: (1.10120 − 1.10020) × 100,000 = 100.00
    closed profit = the target, flat, 1 trading day: passed. The same trade with a 0.01
    commission closes 99.99: still active."""
    pid = await _challenge_plan(api)
    win, short = api.id("win"), api.id("short")
    view = await api.register("win", plan=pid)
    assert view["status"] == "active" and view["plan"] == pid
    assert view["objectives"]["profit_target"] == {"target": 100.0, "profit": 0.0, "met": False}
    await api.register("short", plan=pid)
    await api.marks({"EURUSD": (1.10000, 1.10020)})

    opened = await api.trade(win, "EURUSD", "buy", 1.0, 1.10020)
    assert opened["status"] == "active" and opened["closed_trade"] is None
    v = await api.view(win)
    obj = v["objectives"]
    assert obj["min_trading_days"] == {"required": 1, "days": 1, "met": True}
    assert obj["flat"] is False and obj["all_met"] is False and v["status"] == "active"

    closed = await api.trade(win, "EURUSD", "sell", 1.0, 1.10120)
    assert closed["status"] == "passed"
    assert closed["closed_trade"]["pnl"] == pytest.approx(100.0)
    assert closed["balance"] == pytest.approx(100_100.0) and closed["breach"] == []
    v = await api.view(win)
    assert v["status"] == "passed" and v["positions"] == [] and v["breaches"] == []
    assert v["kill_switch"]["active"] is False
    obj = v["objectives"]
    assert obj["profit_target"] == {"target": 100.0, "profit": pytest.approx(100.0), "met": True}
    assert obj["min_trading_days"] == {"required": 1, "days": 1, "met": True}
    assert obj["consistency"]["met"] is True and obj["consistency"]["max_fraction"] is None
    assert obj["time_limit"] == {"days": None, "deadline": None, "expired": False}
    assert obj["flat"] is True and obj["all_met"] is True
    events = (await api.client.get(f"/v1/accounts/{win}/events")).json()["events"]
    passed = [e for e in events if e["type"] == "challenge_passed"]
    assert len(passed) == 1 and passed[0]["objectives"]["all_met"] is True

    # a passed account takes no new exposure
    d = await api.check(win, "EURUSD", "buy", 0.1)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["ACCOUNT_NOT_ACTIVE"]
    assert "passed" in reason(d, "ACCOUNT_NOT_ACTIVE")["message"]

    # one cent short of the target: stays active, objectives say why
    await api.trade(short, "EURUSD", "buy", 1.0, 1.10020)
    closed = await api.trade(short, "EURUSD", "sell", 1.0, 1.10120, commission=-0.01)
    assert closed["status"] == "active" and closed["net_pnl"] == pytest.approx(99.99)
    v = await api.view(short)
    assert v["status"] == "active" and v["balance"] == pytest.approx(100_099.99)
    obj = v["objectives"]
    assert obj["profit_target"] == {"target": 100.0, "profit": pytest.approx(99.99), "met": False}
    assert obj["min_trading_days"]["met"] is True and obj["flat"] is True and obj["all_met"] is False
    assert (await api.check(short, "EURUSD", "buy", 0.1))["decision"] == "accept"


async def test_a_max_loss_breach_from_a_mark_fails_the_account(api):
    """Max loss 1,000 (static), daily loss raised to 5,000 so only max loss can trip. Long 1 lot
    at 1.10020, bid 1.08900: floating (1.08900 − 1.10020) × 100,000 = −1,120, equity 98,880 <
    floor 99,000."""
    acct = api.id("a")
    await _register(api, "a", limits={"daily_loss_limit": 5_000, "max_loss_limit": 1_000})
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)

    out = await api.marks({"EURUSD": (1.09500, 1.09520)})  # −520: inside the limit
    assert not [b for b in out["breaches"] if b["account_id"] == acct]
    assert (await api.view(acct))["status"] == "active"

    out = await api.marks({"EURUSD": (1.08900, 1.08920)})
    mine = [b for b in out["breaches"] if b["account_id"] == acct]
    assert len(mine) == 1, out["breaches"]
    br = mine[0]
    assert br["code"] == "MAX_LOSS_LIMIT" and br["type"] == "breach"
    assert br["limit"] == 1_000 and br["floor"] == pytest.approx(99_000.0)
    assert br["value"] == pytest.approx(1_120.0) and br["equity"] == pytest.approx(98_880.0)

    v = await api.view(acct)
    assert v["status"] == "failed" and v["risk_score"] == 100
    assert [(b["code"], b["value"]) for b in v["breaches"]] == [("MAX_LOSS_LIMIT", pytest.approx(1_120.0))]
    assert v["max_loss"] == pytest.approx(1_120.0) and v["max_loss_floor"] == pytest.approx(99_000.0)
    ks = v["kill_switch"]
    assert ks["active"] is True and ks["mode"] == "reduce_only" and ks["breach"] is True
    assert "MAX_LOSS_LIMIT" in ks["reason"]
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    # the loss already beyond the limit is a reason of its own
    assert sorted(codes(d["reasons"])) == ["ACCOUNT_NOT_ACTIVE", "KILL_SWITCH", "MAX_LOSS_LIMIT"]
    # closing is still possible
    assert (await api.check(acct, "EURUSD", "sell", 1.0))["decision"] == "accept"


@pytest.mark.parametrize("deployment", ["sharded"], indirect=True)
async def test_the_time_limit_fails_an_account_at_opened_at_plus_one_day(api):
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    now = time.time()

    # "late": opened 1 day and 1 second ago; its history up to the clock applies at registration,
    # so the caller that registers it is told at once (the registration answers it failed)
    late = api.id("late")
    opened_late = now - DAY - 1
    reg = await _register(api, "late", opened_at=opened_late, limits={"time_limit_days": 1})
    assert reg["created_at"] == opened_late and reg["status"] == "failed"
    assert reg["objectives"]["time_limit"] == {"days": 1, "deadline": opened_late + DAY, "expired": True}
    assert [b["code"] for b in reg["breaches"]] == ["TIME_LIMIT"]
    br = reg["breaches"][0]
    assert br["limit"] == 1.0 and br["value"] == 1.0 and br["at"] == opened_late + DAY  # at its due instant
    assert reg["kill_switch"]["active"] is True and reg["kill_switch"]["mode"] == "reduce_only"
    assert "TIME_LIMIT" in reg["kill_switch"]["reason"]
    assert (await api.view(late))["status"] == "failed"

    # "edge": opened a minute ago; projected 1 s before and exactly at opened_at + 86,400
    edge = api.id("edge")
    opened = now - 60
    await _register(api, "edge", opened_at=opened, limits={"time_limit_days": 1})
    before = (await api.client.get(f"/v1/accounts/{edge}", params={"at": opened + DAY - 1})).json()
    assert before["status"] == "active" and before["as_of"] == opened + DAY - 1
    at = (await api.client.get(f"/v1/accounts/{edge}", params={"at": opened + DAY})).json()
    assert at["status"] == "failed" and [b["code"] for b in at["breaches"]] == ["TIME_LIMIT"]
    assert at["breaches"][0]["value"] == pytest.approx(1.0) and at["breaches"][0]["at"] == opened + DAY
    assert (await api.view(edge))["status"] == "active"  # a projection is computed on the side
    d = await api.check(edge, "EURUSD", "buy", 0.1)
    assert d["decision"] == "accept", d


@pytest.mark.parametrize("deployment", ["sharded"], indirect=True)
async def test_a_soft_daily_loss_breach_blocks_opening_orders_but_keeps_the_account_active(api):
    """Daily loss 500, soft. Long 1 lot at 1.10020, bid 1.09400: loss 620 > 500."""
    acct = api.id("a")
    await _register(api, "a", limits={"daily_loss_mode": "soft"})
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)

    out = await api.marks({"EURUSD": (1.09400, 1.09420)})
    mine = [b for b in out["breaches"] if b["account_id"] == acct]
    assert len(mine) == 1, out["breaches"]
    br = mine[0]
    assert br["code"] == "DAILY_LOSS_LIMIT" and br["soft"] is True and br["type"] == "soft_breach"
    assert br["limit"] == 500 and br["value"] == pytest.approx(620.0) and br["floor"] == pytest.approx(99_500.0)

    v = await api.view(acct)
    assert v["status"] == "active" and v["daily_loss_blocked"] is True
    assert v["kill_switch"]["active"] is False
    assert [b["type"] for b in v["breaches"]] == ["soft_breach"]
    assert v["breaches"][0]["blocked_day"] == v["trading_day"]

    # even after the price recovers, opening orders are blocked for the rest of the day
    out = await api.marks({"EURUSD": (1.10000, 1.10020)})
    assert not [b for b in out["breaches"] if b["account_id"] == acct]
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["DAILY_LOSS_LIMIT"]
    r = reason(d, "DAILY_LOSS_LIMIT")
    assert "soft daily-loss breach" in r["message"] and r["limit"] == 500
    d = await api.check(acct, "XAUUSD", "buy", 0.01, price=2300.0)
    assert "DAILY_LOSS_LIMIT" in codes(d["reasons"])
    # a closing order is accepted
    d = await api.check(acct, "EURUSD", "sell", 1.0)
    assert d["decision"] == "accept" and d["reduces_position"] is True

    # a second dip the same day records no second breach
    out = await api.marks({"EURUSD": (1.09300, 1.09320)})
    assert not [b for b in out["breaches"] if b["account_id"] == acct]
    v = await api.view(acct)
    assert v["status"] == "active" and len(v["breaches"]) == 1


@pytest.mark.parametrize("deployment", ["sharded"], indirect=True)
async def test_consolidated_risk_counts_a_passed_account_by_its_status(api):
    acct = api.id("win")
    await _register(api, "win", limits={"profit_target": 100, "min_trading_days": 1})
    await _register(api, "open")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)
    assert (await api.trade(acct, "EURUSD", "sell", 1.0, 1.10120))["status"] == "passed"
    r = await api.client.get(f"/v1/risk/challenges/{api.id('c1')}")
    assert r.status_code == 200, r.text
    risk = r.json()
    assert risk["accounts"] == 2
    assert sum(risk["accounts_by_status"].values()) == 2, risk["accounts_by_status"]
    assert risk["accounts_by_status"].get("passed") == 1 and risk["accounts_by_status"]["active"] == 1
