"""The deployment clock over HTTP (issue 9): an ``events`` deployment of the test's own, two shards.

Worked times: ``T0`` is 2025-05-06 12:00 New York; the default trading day rolls at 17:00 New
York (``ROLL``). Accounts are USD on ``moderate``; EURUSD is marked at 1.10000/1.10020.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from httpkit import Api

pytestmark = pytest.mark.anyio

NY = ZoneInfo("America/New_York")
T0 = datetime(2025, 5, 6, 12, 0, tzinfo=NY).timestamp()
ROLL = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()


@pytest.fixture
async def events(fresh_deployment, uid):
    """(Api, runtime) over an ``events`` deployment of this test's own (two shards)."""
    from tests.conftest import asgi_client

    settings, runtime = fresh_deployment("sharded", shards=2, clock="events")
    async with asgi_client(settings, runtime) as client:
        yield Api(client, uid), runtime


async def _register(api: Api, name: str, opened_at: float | None = T0, **limits) -> dict:
    body = {"account_id": api.id(name), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": 100_000.0, "plan": "moderate", "limits": {"max_orders_per_second": 1000, **limits}}
    if opened_at is not None:
        body["opened_at"] = opened_at
    r = await api.client.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def _marks(api: Api, ts: float) -> None:
    r = await api.client.post("/v1/marks", json={"marks": [
        {"instrument": "EURUSD", "bid": 1.10000, "ask": 1.10020, "ts": ts}]})
    assert r.status_code == 200, r.text


async def _journal_seqs(runtime) -> list:
    return [p["journal_seq"] for p in await asyncio.gather(*(
        runtime.service.transport.call(h, "ping") for h in await runtime.service._all_hosts()))]


async def test_reading_twice_seconds_apart_gives_identical_answers_and_journals_nothing(events):
    api, runtime = events
    for name in ("a", "b", "c"):
        await _register(api, name)
    await _marks(api, T0 + 10)
    d = await api.check(api.id("a"), "EURUSD", "buy", 1.0, ts=T0 + 20)
    assert d["decision"] == "accept", d
    await api.fill(api.id("a"), "EURUSD", "buy", 1.0, 1.10020, ts=T0 + 21, order_id=d["order_id"])
    seqs = await _journal_seqs(runtime)
    paths = [f"/v1/accounts/{api.id('a')}", f"/v1/accounts/{api.id('b')}", "/v1/risk/firm",
             f"/v1/risk/challenges/{api.id('c1')}", f"/v1/analytics/users/{api.id('u1')}", "/v1/recommendations"]
    first = [(await api.client.get(p)).json() for p in paths]
    await asyncio.sleep(1.5)  # the wall clock moves; the events clock does not
    second = [(await api.client.get(p)).json() for p in paths]
    assert first == second
    assert first[0]["as_of"] == T0 + 21 and first[0]["positions"][0]["mark_age_seconds"] == 11.0
    assert await _journal_seqs(runtime) == seqs  # no frame from reads


async def test_an_event_after_the_roll_rolls_every_account_on_every_shard_before_it_is_applied(events):
    api, runtime = events
    names = [f"a{i}" for i in range(6)]  # spread over both shards
    for name in names:
        await _register(api, name)
    await _marks(api, T0 + 1)
    await api.fill(api.id("a0"), "EURUSD", "buy", 0.1, 1.10020, ts=T0 + 2, commission=-5.0)
    assert (await api.view(api.id("a0")))["trading_day"] == "2025-05-06"
    await _marks(api, ROLL + 30)  # the first event of the next trading day
    seqs = await _journal_seqs(runtime)
    for name in names:
        v = await api.view(api.id(name))
        assert v["trading_day"] == "2025-05-07" and v["as_of"] == ROLL + 30
    assert await _journal_seqs(runtime) == seqs
    events_a0 = (await api.client.get(f"/v1/accounts/{api.id('a0')}/events")).json()["events"]
    rolled = [e for e in events_a0 if e["type"] == "day_rolled"]
    assert [(e["at"], e["ended"], e["ended_result"]) for e in rolled] == [(ROLL, "2025-05-06", -5.0)]


async def test_a_late_fill_is_booked_to_the_current_trading_day_and_says_late(events):
    api, _ = events
    acct = api.id("a")
    await _register(api, "a")
    await _marks(api, ROLL + 60)
    f = await api.fill(acct, "EURUSD", "buy", 0.1, 1.10020, ts=ROLL - 60, commission=-3.0)
    assert f["late"] is True
    on_time = await api.fill(acct, "EURUSD", "sell", 0.1, 1.10000, ts=ROLL + 61)
    assert on_time["late"] is False
    v = await api.view(acct)
    assert v["trading_day"] == "2025-05-07" and v["trading_days"] == 1 and v["day_opened_trades"] == 1
    assert v["day_realized_pnl"] == pytest.approx(-3.0 - 2.0)  # commission and the 2-pip loss, both today


async def test_a_projection_with_at_is_computed_on_the_side_and_at_before_the_clock_is_422(events):
    api, runtime = events
    acct = api.id("a")
    await _register(api, "a", time_limit_days=30)
    await _marks(api, T0 + 5)
    seqs = await _journal_seqs(runtime)
    r = await api.client.get(f"/v1/accounts/{acct}", params={"at": "2025-06-05T16:00:00Z"})  # T0 + 30 days
    assert r.status_code == 200, r.text
    projected = r.json()
    assert projected["status"] == "failed" and projected["breaches"][0]["code"] == "TIME_LIMIT"
    assert projected["as_of"] == T0 + 30 * 86_400
    just_before = (await api.client.get(f"/v1/accounts/{acct}", params={"at": T0 + 30 * 86_400 - 1})).json()
    assert just_before["status"] == "active" and just_before["trading_day"] == "2025-06-05"
    firm = (await api.client.get("/v1/risk/firm", params={"at": T0 + 30 * 86_400})).json()
    assert firm["as_of"] == T0 + 30 * 86_400 and firm["accounts_by_status"]["failed"] == 1
    now = await api.view(acct)
    assert now["status"] == "active" and now["trading_day"] == "2025-05-06" and now["as_of"] == T0 + 5
    assert await _journal_seqs(runtime) == seqs
    r = await api.client.get(f"/v1/accounts/{acct}", params={"at": T0 + 4})
    assert r.status_code == 422
    (err,) = r.json()["detail"]
    assert err["loc"] == ["query", "at"] and err["type"] == "at_before_clock"
    r = await api.client.get("/v1/risk/firm", params={"at": T0 + 400 * 86_400})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "at_too_far"


async def test_registration_without_opened_at_needs_an_event_first_then_opens_at_the_clock(events):
    api, _ = events
    body = {"account_id": api.id("x"), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": 100_000.0, "plan": "moderate"}
    r = await api.client.post("/v1/accounts", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "opened_at"], r.text
    await _marks(api, T0 + 7)
    r = await api.client.post("/v1/accounts", json=body)
    assert r.status_code == 201 and r.json()["created_at"] == T0 + 7, r.text


async def test_a_check_stamped_beyond_the_allowed_skew_is_422_in_both_clocks(events, api):
    import time

    events_api, _ = events
    for client_api in (events_api, api):  # the events deployment, then the session's wall one
        await _register(client_api, "f", opened_at=T0)
        ahead = time.time() + 3_600
        r = await client_api.client.post("/v1/orders/check", json=client_api.order(
            client_api.id("f"), "EURUSD", "buy", 0.1, ts=ahead))
        assert r.status_code == 422 and r.json()["detail"][0]["type"] == "ts_in_future", r.text
        r = await client_api.client.post("/v1/fills", json={
            "fill_id": client_api.fill_id(), "account_id": client_api.id("f"), "instrument": "EURUSD",
            "side": "buy", "quantity": 0.1, "price": 1.1, "ts": ahead})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "ts"], r.text
