"""Prop-firm rules over HTTP (sharded placement): the order rules of a plan with their reason
codes and numbers, hedging position mode (tickets), position sizing, and limit-reduction
recommendations raised at the trading-day roll and applied or dismissed by ops.

Rules are switched on with per-account limit overrides on the ``moderate`` template. Rules that
depend on time take it from the check's ``ts``; several checks are stamped in the past (a news
event ten days ago, a Friday of 2025) so no other test of the session is near those instants.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from httpkit import Api, aged_out, codes, locs

from riskactors.domain import TradingDayCalendar

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("deployment", ["sharded"], indirect=True)]

EURUSD = (1.10000, 1.10020)
XAUUSD = (2300.00, 2300.50)


async def _register(api, name: str, *, user: str = "u1", balance: float = 100_000.0, opened_at: float | None = None,
                    position_mode: str | None = None, **limits) -> dict:
    body = {"account_id": api.id(name), "user_id": api.id(user), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": balance, "plan": "moderate", "limits": {"max_orders_per_second": 1000, **limits}}
    if opened_at is not None:
        body["opened_at"] = opened_at
    if position_mode is not None:
        body["position_mode"] = position_mode
    r = await api.client.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


# ------------------------------------------------------------------------------ order rules
async def test_stop_loss_required_rejects_an_opening_order_without_one(api):
    acct = api.id("a")
    await _register(api, "a", stop_loss_required=True)
    await api.marks({"EURUSD": EURUSD})
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["STOP_LOSS_REQUIRED"]
    r = d["reasons"][0]
    assert r["limit"] is None and r["value"] is None and "stop-loss" in r["message"]

    d = await api.check(acct, "EURUSD", "buy", 0.1, stop_loss=1.09500)
    assert d["decision"] == "accept", d
    await api.fill(acct, "EURUSD", "buy", 0.1, 1.10020, order_id=d["order_id"])
    # closing needs no stop-loss
    d = await api.check(acct, "EURUSD", "sell", 0.1)
    assert d["decision"] == "accept" and d["reduces_position"] is True
    # the position took the order's stop-loss
    assert (await api.view(acct))["positions"][0]["stop_loss"] == 1.09500


async def test_max_risk_per_trade_caps_the_loss_at_the_stop_loss(api):
    """1 % of 100,000 = 1,000. Buy 1 lot at the ask 1.10020: a stop at 1.09000 risks
    0.01020 × 100,000 = 1,020 (reject), at 1.09100 risks 920 (accept). The daily and max
    loss limits are raised so that only this rule speaks."""
    acct = api.id("a")
    await _register(api, "a", max_risk_per_trade_fraction=0.01, daily_loss_limit=5_000, max_loss_limit=10_000)
    await api.marks({"EURUSD": EURUSD})

    d = await api.check(acct, "EURUSD", "buy", 1.0, stop_loss=1.09000)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["MAX_RISK_PER_TRADE"]
    r = d["reasons"][0]
    assert r["limit"] == pytest.approx(1_000.0) and r["value"] == pytest.approx(1_020.0)
    assert "1,020.00 USD" in r["message"]

    d = await api.check(acct, "EURUSD", "buy", 1.0)
    assert codes(d["reasons"]) == ["MAX_RISK_PER_TRADE"]
    assert d["reasons"][0]["value"] is None and "unbounded" in d["reasons"][0]["message"]

    d = await api.check(acct, "EURUSD", "buy", 1.0, stop_loss=1.09100)
    assert d["decision"] == "accept", d
    # a sell stopped 0.00900 above the bid (900) is within the budget too
    d = await api.check(acct, "EURUSD", "sell", 1.0, stop_loss=1.10900)
    assert d["decision"] == "accept", d


async def test_max_daily_trades_counts_opening_fills_and_pending_opening_orders(api):
    acct = api.id("a")
    await _register(api, "a", max_daily_trades=2)
    await api.marks({"EURUSD": EURUSD, "XAUUSD": XAUUSD})

    await api.trade(acct, "EURUSD", "buy", 0.1, 1.10020)  # trade 1 (filled)
    pending = await api.check(acct, "XAUUSD", "buy", 0.1)  # trade 2 (pending)
    assert pending["decision"] == "accept", pending
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["MAX_DAILY_TRADES"]
    r = d["reasons"][0]
    assert r["limit"] == 2 and r["value"] == 3
    # closing is not a new trade
    d = await api.check(acct, "EURUSD", "sell", 0.1)
    assert d["decision"] == "accept" and d["reduces_position"] is True
    v = await api.view(acct)
    assert v["day_opened_trades"] == 1 and v["trading_days"] == 1
    # cancelling the pending order frees its slot
    r = await api.client.post(f"/v1/orders/{pending['order_id']}/cancel", json={"account_id": acct})
    assert r.status_code == 200 and r.json()["released"] is True, r.text
    assert (await api.check(acct, "XAUUSD", "buy", 0.1))["decision"] == "accept"


async def test_cooldown_after_a_losing_close_blocks_opening_orders(api):
    """A losing close at t: no new opening order before t + 300 s (t is 400 s ago: the checks
    are stamped between t and now, never in the future)."""
    acct = api.id("a")
    await _register(api, "a", cooldown_seconds=300)
    await api.marks({"EURUSD": EURUSD})
    t = time.time() - 400
    await api.fill(acct, "EURUSD", "buy", 0.1, 1.10020, ts=t - 10)
    closed = await api.fill(acct, "EURUSD", "sell", 0.1, 1.09920, ts=t)
    assert closed["closed_trade"]["pnl"] == pytest.approx(-10.0)
    assert (await api.view(acct))["last_losing_close"] == t

    d = await api.check(acct, "EURUSD", "buy", 0.1, ts=t + 60)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["COOLDOWN"]
    r = d["reasons"][0]
    assert r["limit"] == 300 and r["value"] == pytest.approx(60.0) and "240.0 s left" in r["message"]
    d = await api.check(acct, "EURUSD", "buy", 0.1, ts=t + 301)
    assert d["decision"] == "accept", d


async def test_news_blackout_rejects_orders_on_affected_instruments_within_the_window(api):
    """Blackout ±5 min around an EUR event: EURUSD is affected (base EUR), XAUUSD is not."""
    acct = api.id("a")
    await _register(api, "a", news_blackout_minutes=5)
    await api.marks({"EURUSD": EURUSD, "XAUUSD": XAUUSD})
    at = float(int(time.time()) - 10 * 86_400)
    event = {"event_id": api.id("ecb"), "at": at, "title": "ECB rate decision", "currencies": ["eur"]}
    r = await api.client.post("/v1/calendar", json={"events": [event]})
    assert r.status_code == 200, r.text
    assert r.json()["received"] == 1 and r.json()["events"] >= 1
    listed = [e for e in (await api.client.get("/v1/calendar")).json()["events"] if e["event_id"] == event["event_id"]]
    assert listed == [{**event, "currencies": ["EUR"], "instruments": [], "impact": "high"}]

    for offset, minutes in ((120, 2.0), (-240, 4.0), (300, 5.0)):
        d = await api.check(acct, "EURUSD", "buy", 0.1, ts=at + offset)
        assert d["decision"] == "reject" and codes(d["reasons"]) == ["NEWS_BLACKOUT"], (offset, d)
        r = d["reasons"][0]
        assert r["limit"] == 5 and r["value"] == pytest.approx(minutes) and "ECB rate decision" in r["message"]
    assert (await api.check(acct, "XAUUSD", "buy", 0.1, ts=at + 120))["decision"] == "accept"
    assert (await api.check(acct, "EURUSD", "buy", 0.1, ts=at + 301))["decision"] == "accept"
    assert (await api.check(acct, "EURUSD", "buy", 0.1, ts=at - 301))["decision"] == "accept"

    # an account registered after the event gets the calendar too
    late = api.id("late")
    await _register(api, "late", news_blackout_minutes=5)
    assert codes((await api.check(late, "EURUSD", "sell", 0.1, ts=at))["reasons"]) == ["NEWS_BLACKOUT"]

    # an event must name what it affects
    bad = {"event_id": api.id("bad"), "at": at}
    r = await api.client.post("/v1/calendar", json={"events": [bad]})
    assert locs(r)[0][:3] == ["body", "events", 0]
    r = await api.client.post("/v1/calendar", json={"events": [{**event, "impact": "huge"}]})
    assert locs(r) == [["body", "events", 0, "impact"]]


async def test_weekend_holding_rejects_new_positions_just_before_the_weekly_close(api):
    """Weekly close Fri 17:00 New York, buffer 30 min: Friday 2025-05-02 16:45 is 15 min before."""
    acct = api.id("a")
    await _register(api, "a", weekend_buffer_minutes=30)
    await api.marks({"EURUSD": EURUSD})
    close = datetime(2025, 5, 2, 17, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()

    d = await api.check(acct, "EURUSD", "buy", 0.1, ts=close - 15 * 60)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["WEEKEND_HOLDING"]
    r = d["reasons"][0]
    assert r["limit"] == 30 and r["value"] == pytest.approx(15.0)
    assert "Fri 17:00 America/New_York" in r["message"]
    assert (await api.check(acct, "EURUSD", "buy", 0.1, ts=close - 45 * 60))["decision"] == "accept"
    # Monday morning is days from the next close
    monday = (datetime.fromtimestamp(close, ZoneInfo("America/New_York")) + timedelta(days=3)).timestamp()
    assert (await api.check(acct, "EURUSD", "buy", 0.1, ts=monday))["decision"] == "accept"


async def test_hedging_across_accounts_rejects_or_warns_on_the_opposite_direction(api):
    """One user, four accounts: A holds the long; B rejects the hedge, C warns, D (another user)
    is not concerned."""
    a, b, c, d_ = api.id("a"), api.id("b"), api.id("c"), api.id("d")
    await _register(api, "a")
    await _register(api, "b", hedging_across_accounts="reject")
    await _register(api, "c", hedging_across_accounts="warn")
    await _register(api, "d", user="u2", hedging_across_accounts="reject")
    await api.marks({"EURUSD": EURUSD})
    await api.trade(a, "EURUSD", "buy", 1.0, 1.10020)

    d = await api.check(b, "EURUSD", "sell", 0.5)
    assert d["decision"] == "reject" and codes(d["reasons"]) == ["HEDGING_ACROSS_ACCOUNTS"]
    msg = d["reasons"][0]["message"]
    assert a in msg and api.id("u1") in msg and "EURUSD" in msg
    # the same direction is no hedge
    same = await api.check(b, "EURUSD", "buy", 0.1)
    assert same["decision"] == "accept", same
    r = await api.client.post(f"/v1/orders/{same['order_id']}/cancel", json={"account_id": b})
    assert r.status_code == 200, r.text

    warned = await api.check(c, "EURUSD", "sell", 0.5)
    assert warned["decision"] == "accept", warned
    assert "HEDGING_ACROSS_ACCOUNTS_WARNING" in codes(warned["warnings"])
    assert a in next(w for w in warned["warnings"] if w["code"] == "HEDGING_ACROSS_ACCOUNTS_WARNING")["message"]
    r = await api.client.post(f"/v1/orders/{warned['order_id']}/cancel", json={"account_id": c})
    assert r.status_code == 200, r.text

    assert (await api.check(d_, "EURUSD", "sell", 0.5))["decision"] == "accept"

    # A flat: nothing to hedge against any more
    await api.trade(a, "EURUSD", "sell", 1.0, 1.10000)
    assert (await api.check(b, "EURUSD", "sell", 0.5))["decision"] == "accept"


async def test_a_hedging_account_holds_tickets_and_a_closing_fill_closes_only_its_ticket(api):
    acct = api.id("h")
    view = await _register(api, "h", position_mode="hedging")
    assert view["position_mode"] == "hedging"
    await api.marks({"EURUSD": EURUSD})

    long_ = await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020, position_id="T1")
    assert long_["position"]["position_id"] == "T1" and long_["position"]["quantity"] == 1.0
    short = await api.trade(acct, "EURUSD", "sell", 0.5, 1.10000, position_id="T2")
    assert short["position"]["position_id"] == "T2" and short["position"]["quantity"] == -0.5
    assert short["instrument_lots"] == [1.0, 0.5] and short["closed_trade"] is None
    v = await api.view(acct)
    assert [(p["position_id"], p["instrument"], p["quantity"]) for p in v["positions"]] == [
        ("T1", "EURUSD", 1.0), ("T2", "EURUSD", -0.5)]

    # an order naming T1 on the other side closes it; without a ticket a sell opens a new one
    d = await api.check(acct, "EURUSD", "sell", 1.0, position_id="T1")
    assert d["decision"] == "accept" and d["reduces_position"] is True
    assert (await api.check(acct, "EURUSD", "sell", 0.1))["reduces_position"] is False
    closed = await api.fill(acct, "EURUSD", "sell", 1.0, 1.10100, position_id="T1", order_id=d["order_id"])
    assert closed["position"] is None and closed["instrument_lots"] == [0.0, 0.5]
    trade = closed["closed_trade"]
    assert trade["position_id"] == "T1" and trade["side"] == "buy" and trade["lots"] == 1.0
    assert trade["pnl"] == pytest.approx(80.0) and closed["realized_pnl"] == pytest.approx(80.0)
    v = await api.view(acct)
    assert [(p["position_id"], p["quantity"]) for p in v["positions"]] == [("T2", -0.5)]
    assert v["closed_trades"] == 1 and v["balance"] == pytest.approx(100_080.0)

    # fills a ticket cannot take are 422s and change nothing
    for body, words, field in (({"side": "sell", "quantity": 0.2, "position_id": "T2"}, "cannot add", "side"),
                               ({"side": "sell", "quantity": 0.2, "position_id": "T1"}, "already closed",
                                "position_id"),
                               ({"side": "buy", "quantity": 0.6, "position_id": "T2"}, "0.5 lots open", "quantity")):
        r = await api.client.post("/v1/fills", json={"fill_id": api.fill_id(), "account_id": acct,
                                                     "instrument": "EURUSD", "price": 1.10000, **body})
        assert locs(r) == [["body", field]], body
        assert words in r.json()["detail"][0]["msg"], r.json()
    v2 = await api.view(acct)
    assert aged_out(v2["positions"]) == aged_out(v["positions"]) and v2["balance"] == v["balance"]

    r = await api.client.post("/v1/accounts", json={"account_id": api.id("x"), "user_id": api.id("u1"),
                                                    "challenge_id": api.id("c1"), "currency": "USD",
                                                    "initial_balance": 1000, "plan": "moderate",
                                                    "position_mode": "both"})
    assert locs(r) == [["body", "position_mode"]]


# ------------------------------------------------------------------------------ position size
async def test_position_size_by_risk_by_max_position_and_422_naming_the_field(api):
    acct = api.id("a")
    await _register(api, "a")
    await api.marks({"EURUSD": EURUSD})
    url = f"/v1/accounts/{acct}/position-size"

    # 1 % of 100,000 = 1,000 over a 50-pip stop (0.00500 × 100,000 = 500 per lot) = 2.00 lots
    r = await api.client.post(url, json={"instrument": "EURUSD", "entry": 1.10000, "stop_loss": 1.09500,
                                         "risk_fraction": 0.01})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out == {**out, "account_id": acct, "instrument": "EURUSD", "currency": "USD", "lots": 2.0, "side": "buy",
                   "bound_by": "risk", "lot_step": 0.01, "min_lot": 0.01, "below_min_lot": False}
    assert out["risk_amount"] == pytest.approx(1_000.0) and out["loss_at_stop"] == pytest.approx(1_000.0)
    # caps: leverage 10 × 100,000 / (100,000 × 1.1) = 9.09; margin 100,000 / (110,000 × 1 %) = 90.9
    assert out["caps"] == {"risk": pytest.approx(2.0), "max_position_lots": 5.0,
                           "max_leverage": pytest.approx(1_000_000 / 110_000),
                           "free_margin": pytest.approx(100_000 / 1_100)}

    # holding 1 lot long, 5,000 of risk (10 lots) is capped by max position: 5 − 1 = 4 lots
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)
    r = await api.client.post(url, json={"instrument": "EURUSD", "entry": 1.10000, "stop_loss": 1.09500,
                                         "risk_amount": 5_000})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["lots"] == 4.0 and out["bound_by"] == "max_position_lots" and out["side"] == "buy"
    assert out["caps"]["max_position_lots"] == pytest.approx(4.0) and out["caps"]["risk"] == pytest.approx(10.0)
    assert out["loss_at_stop"] == pytest.approx(2_000.0) and out["risk_amount"] == 5_000
    # a sell is not capped by the long already held
    r = await api.client.post(url, json={"instrument": "EURUSD", "entry": 1.10000, "stop_loss": 1.10500,
                                         "risk_amount": 5_000})
    assert r.json()["side"] == "sell" and r.json()["caps"]["max_position_lots"] == 5.0

    # exactly one of risk_amount and risk_fraction
    base = {"instrument": "EURUSD", "entry": 1.10000, "stop_loss": 1.09500}
    for body in (base, {**base, "risk_amount": 100, "risk_fraction": 0.01}):
        r = await api.client.post(url, json=body)
        assert locs(r) == [["body", "risk_amount"]], r.json()
        assert "exactly one of risk_amount and risk_fraction" in r.json()["detail"][0]["msg"]
    r = await api.client.post(url, json={**base, "risk_fraction": 1.5})
    assert locs(r) == [["body", "risk_fraction"]]
    r = await api.client.post(url, json={**base, "stop_loss": 1.10000, "risk_amount": 100})
    assert locs(r) == [["body", "stop_loss"]]
    r = await api.client.post(url, json={**base, "instrument": "NOPE", "risk_amount": 100})
    assert locs(r) == [["body", "instrument"]]
    r = await api.client.post(f"/v1/accounts/{api.id('ghost')}/position-size", json={**base, "risk_amount": 100})
    assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_ACCOUNT", r.text


# ------------------------------------------------------------------------------ recommendations
def _yesterday_start(deployment) -> float:
    """An instant one hour into yesterday's trading day (the deployment's calendar)."""
    settings, _ = deployment
    cal = TradingDayCalendar(settings.trading_day_rollover, settings.trading_day_timezone)
    return cal.start_of(cal.day_of(time.time()) - timedelta(days=1)) + 3_600


async def _losing_day(api, acct: str, base: float) -> str:
    """Open and close 1 lot EURUSD at a 100 loss, 1 and 2 minutes after ``base``; returns the day."""
    await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020, ts=base + 60)
    closed = await api.fill(acct, "EURUSD", "sell", 1.0, 1.09920, ts=base + 120)
    assert closed["closed_trade"]["pnl"] == pytest.approx(-100.0)
    return closed["closed_trade"]["close_day"]


@pytest.fixture
async def yesterday_api(fresh_deployment, uid):
    """An :class:`Api` over a deployment of this test's own: its clock is moved only by this
    test's events, so trades stamped yesterday are yesterday's (on the session's deployment the
    clock is today, and they would be late, booked to today)."""
    from tests.conftest import asgi_client

    deployment = fresh_deployment("sharded", shards=1)
    async with asgi_client(*deployment) as client:
        yield Api(client, uid), deployment


async def test_a_losing_day_raises_a_recommendation_at_the_roll_that_ops_apply_or_dismiss(yesterday_api, deployment):
    api, own = yesterday_api  # (``deployment``, the module's parameter, is not used here)
    deployment = own
    base = _yesterday_start(deployment)
    a, b = api.id("a"), api.id("b")
    # a: one losing day in a row is a streak; b: a day's loss > 0.05 % of its start balance (50)
    await _register(api, "a", opened_at=base, recommend_losing_streak_days=1)
    await _register(api, "b", opened_at=base, recommend_losing_streak_days=None, recommend_day_loss_fraction=0.0005)
    r = await api.client.post("/v1/marks", json={"marks": [
        {"instrument": "EURUSD", "bid": EURUSD[0], "ask": EURUSD[1], "ts": base + 30}]})
    assert r.status_code == 200, r.text
    day_a = await _losing_day(api, a, base)
    day_b = await _losing_day(api, b, base)

    # a view as of the deployment clock (server time, the next trading day) shows the roll
    v = await api.view(a)
    assert v["trading_day"] > day_a
    assert len(v["recommendations"]) == 1
    r = await api.client.get("/v1/recommendations", params={"account_id": a})
    assert r.status_code == 200, r.text
    recs = r.json()["recommendations"]
    assert len(recs) == 1
    rec = recs[0]
    assert rec == v["recommendations"][0]
    assert rec["recommendation_id"].startswith("R") and rec["recommendation_id"].endswith(f"-{a}")
    assert rec["account_id"] == a and rec["trading_day"] == day_a and rec["status"] == "pending"
    assert rec["reasons"] == [{"code": "LOSING_STREAK", "message": rec["reasons"][0]["message"],
                               "limit": 1.0, "value": 1.0}]
    assert rec["reduction"] == 0.4
    assert rec["current"] == {"daily_loss_limit": 500.0, "max_position_lots": 5.0}
    assert rec["proposed"] == {"daily_loss_limit": pytest.approx(300.0), "max_position_lots": 3.0}
    assert v["limits"]["daily_loss_limit"] == 500  # nothing changes until ops decide

    # apply: the account's limits become the proposed ones (recorded)
    rid = rec["recommendation_id"]
    r = await api.client.post(f"/v1/recommendations/{rid}/apply", json={"by": "risk-desk", "reason": "agreed"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["recommendation"]["status"] == "applied" and out["recommendation"]["decided_by"] == "risk-desk"
    assert out["recommendation"]["decision_reason"] == "agreed"
    assert out["account"]["limits"]["daily_loss_limit"] == pytest.approx(300.0)
    assert out["account"]["limits"]["max_position_lots"] == 3.0
    v = await api.view(a)
    assert v["limits"]["daily_loss_limit"] == pytest.approx(300.0) and v["limits"]["max_position_lots"] == 3.0
    assert v["recommendations"] == []
    types = [e["type"] for e in (await api.client.get(f"/v1/accounts/{a}/events")).json()["events"]]
    assert types.index("recommendation_raised") < types.index("limits_changed") < types.index(
        "recommendation_applied")
    applied = (await api.client.get("/v1/recommendations", params={"account_id": a, "status": "applied"})).json()
    assert [x["recommendation_id"] for x in applied["recommendations"]] == [rid]
    assert (await api.client.get("/v1/recommendations",
                                 params={"account_id": a, "status": "pending"})).json()["recommendations"] == []

    # not pending any more: 409 for both decisions; unknown ids: 404
    for verb in ("apply", "dismiss"):
        r = await api.client.post(f"/v1/recommendations/{rid}/{verb}", json={})
        assert r.status_code == 409, r.text
        assert r.json()["detail"]["code"] == "RECOMMENDATION_CONFLICT" and "applied" in r.json()["detail"]["message"]
    for unknown in (f"R99999-{a}", f"R1-{api.id('ghost')}", "not-a-recommendation"):
        r = await api.client.post(f"/v1/recommendations/{unknown}/apply", json={})
        assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_RECOMMENDATION", (unknown, r.text)
    r = await api.client.get("/v1/recommendations", params={"account_id": api.id("ghost")})
    assert r.status_code == 404, r.text
    r = await api.client.get("/v1/recommendations", params={"status": "maybe"})
    assert locs(r) == [["query", "status"]]

    # b: raised for the day's loss; dismissing it changes no limit
    await api.view(b)
    recs = (await api.client.get("/v1/recommendations", params={"account_id": b})).json()["recommendations"]
    assert len(recs) == 1 and recs[0]["trading_day"] == day_b
    assert recs[0]["reasons"] == [{"code": "DAY_LOSS", "message": recs[0]["reasons"][0]["message"],
                                   "limit": pytest.approx(50.0), "value": pytest.approx(100.0)}]
    before = (await api.view(b))["limits"]
    r = await api.client.post(f"/v1/recommendations/{recs[0]['recommendation_id']}/dismiss",
                              json={"by": "risk-desk", "reason": "one bad day"})
    assert r.status_code == 200, r.text
    assert r.json()["recommendation"]["status"] == "dismissed"
    assert r.json()["account"]["limits"] == before
    assert (await api.view(b))["limits"] == before

    # the firm-wide list holds both, oldest first
    firm = (await api.client.get("/v1/recommendations")).json()["recommendations"]
    mine = [(x["account_id"], x["status"]) for x in firm if x["account_id"] in (a, b)]
    assert sorted(mine) == [(a, "applied"), (b, "dismissed")]
