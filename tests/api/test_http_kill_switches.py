"""Kill switches over HTTP, both placements: firm, user and challenge scopes reach exactly the
accounts they cover; ``reduce_only`` lets closing orders through; a breach from a mark fails
the account and trips its switch until ops release it."""

from __future__ import annotations

import pytest
from httpkit import codes, reason

pytestmark = pytest.mark.anyio


async def _accepts(api, acct, side="buy", qty=0.01, instrument="EURUSD") -> bool:
    d = await api.check(acct, instrument, side, qty)
    return d["decision"] == "accept"


async def test_firm_kill_switch_blocks_every_account_and_release_restores_them(api):
    a, b = api.id("a"), api.id("b")
    await api.register("a", user="u1", challenge="c1")
    await api.register("b", user="u2", challenge="c2")
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    assert await _accepts(api, a) and await _accepts(api, b)
    try:
        out = await api.kill("firm", None, reason="market halt drill")
        assert out["switch"]["scope"] == "firm" and out["switch"]["id"] is None and out["switch"]["mode"] == "halt"
        assert out["accounts_affected"] >= 2
        # an account registered while the firm switch is active inherits it
        late = (await api.register("late", user="u3", challenge="c3"))
        assert late["kill_switch"]["active"] is True and late["kill_switch"]["scope"] == "firm"
        for acct in (a, b, api.id("late")):
            d = await api.check(acct, "EURUSD", "buy", 0.01)
            assert d["decision"] == "reject" and codes(d["reasons"]) == ["KILL_SWITCH"], d
            assert "firm" in reason(d, "KILL_SWITCH")["message"]
            assert "market halt drill" in reason(d, "KILL_SWITCH")["message"]
            # halt blocks closing orders as well
            assert not await _accepts(api, acct, side="sell")
        ks = (await api.view(a))["kill_switch"]
        assert ks["active"] is True and ks["mode"] == "halt" and ks["scope"] == "firm"
        assert ks["reason"] == "market halt drill" and ks["by"] == "tester" and ks["at"] > 0
        firm = (await api.client.get("/v1/risk/firm")).json()
        assert [s["scope"] for s in firm["kill_switches"]] == ["firm"]
        assert firm["killed"] >= 3
    finally:
        released = await api.release("firm", None, reason="drill over")
    assert released["released"] is True and released["accounts_released"] >= 3
    for acct in (a, b, api.id("late")):
        assert await _accepts(api, acct), acct
        assert (await api.view(acct))["kill_switch"]["active"] is False
    assert (await api.client.get("/v1/risk/firm")).json()["kill_switches"] == []


async def test_user_and_challenge_switches_reach_their_accounts_and_no_others(api):
    # a: (u1, c1)  b: (u1, c2)  c: (u2, c1)
    a, b, c = api.id("a"), api.id("b"), api.id("c")
    await api.register("a", user="u1", challenge="c1")
    await api.register("b", user="u1", challenge="c2")
    await api.register("c", user="u2", challenge="c1")
    await api.marks({"EURUSD": (1.10000, 1.10020)})

    out = await api.kill("user", api.id("u1"), reason="trader under review")
    assert out["accounts_affected"] == 2
    assert [await _accepts(api, x) for x in (a, b, c)] == [False, False, True]
    d = await api.check(a, "EURUSD", "buy", 0.01)
    assert f"user {api.id('u1')}" in reason(d, "KILL_SWITCH")["message"]
    user_risk = (await api.client.get(f"/v1/risk/users/{api.id('u1')}")).json()
    assert user_risk["killed"] == 2 and [s["id"] for s in user_risk["kill_switches"]] == [api.id("u1")]
    rel = await api.release("user", api.id("u1"))
    assert rel["released"] is True and rel["accounts_released"] == 2
    assert [await _accepts(api, x) for x in (a, b, c)] == [True, True, True]

    out = await api.kill("challenge", api.id("c1"), reason="cohort paused")
    assert out["accounts_affected"] == 2
    assert [await _accepts(api, x) for x in (a, b, c)] == [False, True, False]
    d = await api.check(c, "EURUSD", "buy", 0.01)
    assert f"challenge {api.id('c1')}" in reason(d, "KILL_SWITCH")["message"]
    assert (await api.view(c))["kill_switch"]["scope"] == "challenge"

    # an account joining the paused challenge later is paused too
    await api.register("d", user="u3", challenge="c1")
    assert not await _accepts(api, api.id("d"))
    rel = await api.release("challenge", api.id("c1"))
    assert rel["accounts_released"] == 3
    assert [await _accepts(api, x) for x in (a, b, c, api.id("d"))] == [True, True, True, True]

    # releasing what is not set is a 200 that releases nothing
    rel = await api.release("user", api.id("u2"))
    assert rel["released"] is False and rel["accounts_released"] == 0


async def test_reduce_only_lets_a_closing_order_pass_and_rejects_opening_ones(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": (1.10000, 1.10020), "XAUUSD": (2300.00, 2300.50)})
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)
    out = await api.kill("account", acct, mode="reduce_only", reason="flatten only")
    assert out["accounts_affected"] == 1 and out["switch"]["mode"] == "reduce_only"
    v = await api.view(acct)
    assert v["kill_switch"] == {**v["kill_switch"], "active": True, "mode": "reduce_only", "scope": "account",
                                "id": acct, "reason": "flatten only", "by": "tester", "breach": False}

    closing = await api.check(acct, "EURUSD", "sell", 0.5)
    assert closing["decision"] == "accept" and closing["reduces_position"] is True
    opening = await api.check(acct, "EURUSD", "buy", 0.1)
    assert opening["decision"] == "reject" and codes(opening["reasons"]) == ["KILL_SWITCH"]
    assert "reduce_only" in opening["reasons"][0]["message"]
    new_instrument = await api.check(acct, "XAUUSD", "buy", 0.1)
    assert codes(new_instrument["reasons"]) == ["KILL_SWITCH"]
    # 0.5 of the 1.0 lot is already being closed: selling 1.0 more would flip short, not reduce
    flip = await api.check(acct, "EURUSD", "sell", 1.0)
    assert flip["decision"] == "reject" and flip["reduces_position"] is False
    assert (await api.check(acct, "EURUSD", "sell", 0.5))["decision"] == "accept"

    # halt replaces reduce_only on the same scope: nothing passes
    await api.kill("account", acct, mode="halt", reason="stop everything")
    assert not await _accepts(api, acct, side="sell", qty=0.01)
    await api.release("account", acct)
    assert await _accepts(api, acct, side="buy", qty=0.1)


async def test_breach_from_a_mark_fails_the_account_and_trips_reduce_only_until_released(api):
    """moderate plan: daily loss 500. Long 1 lot EURUSD at 1.10020; the bid falls to 1.09400:
    floating = (1.09400 - 1.10020) x 100,000 = -620, equity 99,380 < floor 99,500."""
    acct, other = api.id("a"), api.id("b")
    await api.register("a")
    await api.register("b")  # same user/challenge, no position: must not be touched
    await api.marks({"EURUSD": (1.10000, 1.10020)})
    await api.trade(acct, "EURUSD", "buy", 1.0, 1.10020)
    assert (await api.view(acct))["status"] == "active"

    out = await api.marks({"EURUSD": (1.09400, 1.09420)})
    mine = [b for b in out["breaches"] if b["account_id"] == acct]
    assert len(mine) == 1, out["breaches"]
    br = mine[0]
    assert br["code"] == "DAILY_LOSS_LIMIT" and br["limit"] == 500
    assert br["value"] == pytest.approx(620) and br["equity"] == pytest.approx(99_380) and br["floor"] == 99_500
    assert not [b for b in out["breaches"] if b["account_id"] == other]

    v = await api.view(acct)
    assert v["status"] == "failed" and v["risk_score"] == 100
    ks = v["kill_switch"]
    assert ks["active"] is True and ks["mode"] == "reduce_only" and ks["scope"] == "account"
    assert ks["id"] == acct and ks["breach"] is True and ks["by"] == "system" and "DAILY_LOSS_LIMIT" in ks["reason"]
    assert [b["code"] for b in v["breaches"]] == ["DAILY_LOSS_LIMIT"]
    assert v["equity"] == pytest.approx(99_380) and v["daily_loss"] == pytest.approx(620)
    assert (await api.view(other))["status"] == "active"

    # further marks, even a full recovery, change neither the status nor the switch, nor breach again
    for bid in (1.09300, 1.11000):
        out = await api.marks({"EURUSD": (bid, bid + 0.0002)})
        assert not [b for b in out["breaches"] if b["account_id"] == acct]
        v = await api.view(acct)
        assert v["status"] == "failed" and v["kill_switch"]["active"] is True and len(v["breaches"]) == 1

    # opening is refused; reducing is accepted
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    assert d["decision"] == "reject" and sorted(codes(d["reasons"])) == ["ACCOUNT_NOT_ACTIVE", "KILL_SWITCH"]
    d = await api.check(acct, "EURUSD", "sell", 1.0)
    assert d["decision"] == "accept" and d["reduces_position"] is True

    # ops release the switch; the account stays failed (only reducing orders)
    rel = await api.release("account", acct, reason="reviewed")
    assert rel["released"] is True and rel["accounts_released"] == 1
    v = await api.view(acct)
    assert v["kill_switch"]["active"] is False and v["status"] == "failed"
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    assert codes(d["reasons"]) == ["ACCOUNT_NOT_ACTIVE"]
    events = [e["type"] for e in (await api.client.get(f"/v1/accounts/{acct}/events")).json()["events"]]
    assert events.index("breach") < events.index("kill_switch_set") < events.index("kill_switch_released")
