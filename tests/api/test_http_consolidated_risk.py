"""Consolidated risk by user, challenge and firm over HTTP, both placements.

Three 100,000 USD moderate accounts in one challenge (daily loss 500 -> floor 99,500; max loss
2,000 -> floor 98,000), two users:
  a (u1): long 1 EURUSD at 1.10020
  b (u1): short 0.5 EURUSD at 1.10000, long 1 XAUUSD at 2300.50
  c (u2): long 2 EURUSD at 1.10020
Marked at EURUSD 1.09900/1.09920 and XAUUSD 2298.00/2298.50:
  a: (1.09900 - 1.10020) x 1 x 100,000 = -120                        -> equity 99,880
  b: (1.09920 - 1.10000) x -0.5 x 100,000 = +40; (2298.00 - 2300.50) x 100 = -250 -> 99,790
  c: (1.09900 - 1.10020) x 2 x 100,000 = -240                        -> equity 99,760
Headroom = min((equity - 99,500) / 500, (equity - 98,000) / 2,000): a 0.76, b 0.58, c 0.52,
so c is closest to a breach, then b, then a.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.anyio

approx = lambda x: pytest.approx(x, rel=1e-9, abs=1e-6)


async def test_user_challenge_and_firm_views_consolidate_exactly(api):
    a, b, c = api.id("a"), api.id("b"), api.id("c")
    u1, u2, ch = api.id("u1"), api.id("u2"), api.id("c1")
    await api.register("a", user="u1", challenge="c1")
    await api.register("b", user="u1", challenge="c1")
    await api.register("c", user="u2", challenge="c1")
    await api.marks({"EURUSD": (1.10000, 1.10020), "XAUUSD": (2300.00, 2300.50)})
    await api.trade(a, "EURUSD", "buy", 1.0, 1.10020)
    await api.trade(b, "EURUSD", "sell", 0.5, 1.10000)
    await api.trade(b, "XAUUSD", "buy", 1.0, 2300.50)
    await api.trade(c, "EURUSD", "buy", 2.0, 1.10020)
    await api.marks({"EURUSD": (1.09900, 1.09920), "XAUUSD": (2298.00, 2298.50)})
    equity = {a: 99_880.0, b: 99_790.0, c: 99_760.0}
    for acct, eq in equity.items():
        assert (await api.view(acct))["equity"] == approx(eq), acct
    headroom = {acct: min((eq - 99_500) / 500, (eq - 98_000) / 2_000) for acct, eq in equity.items()}

    r = await api.client.get(f"/v1/risk/challenges/{ch}")
    assert r.status_code == 200, r.text
    chal = r.json()
    assert chal["scope"] == "challenge" and chal["id"] == ch
    assert chal["accounts"] == 3 and chal["accounts_by_status"] == {"active": 3, "passed": 0, "failed": 0,
                                                                     "disabled": 0}
    usd = chal["totals_by_currency"]["USD"]
    assert list(chal["totals_by_currency"]) == ["USD"]
    assert usd["accounts"] == 3 and usd["balance"] == approx(300_000)
    assert usd["equity"] == approx(sum(equity.values())) and usd["daily_pnl"] == approx(sum(equity.values()) - 300_000)
    eur, xau = chal["exposure"]["EURUSD"], chal["exposure"]["XAUUSD"]
    assert eur["net_lots"] == approx(2.5) and eur["gross_lots"] == approx(3.5) and eur["accounts"] == 3
    assert eur["quote_currency"] == "USD"
    assert eur["net_notional"] == approx(2.5 * 100_000 * 1.09910)
    assert eur["gross_notional"] == approx(3.5 * 100_000 * 1.09910)
    assert xau["net_lots"] == approx(1) and xau["gross_lots"] == approx(1) and xau["accounts"] == 1
    assert xau["gross_notional"] == approx(1 * 100 * 2298.25)
    assert [x["account_id"] for x in chal["closest_to_breach"]] == [c, b, a]
    for x in chal["closest_to_breach"]:
        assert x["breach_headroom"] == approx(headroom[x["account_id"]]) and x["currency"] == "USD"
        assert x["equity"] == approx(equity[x["account_id"]])
    assert headroom == {a: approx(0.76), b: approx(0.58), c: approx(0.52)}
    assert chal["in_warning"] == 0 and chal["breached"] == 0 and chal["killed"] == 0
    assert 0 < chal["risk_score"]["mean"] <= chal["risk_score"]["max"] <= 100
    top2 = (await api.client.get(f"/v1/risk/challenges/{ch}", params={"top": 2})).json()
    assert [x["account_id"] for x in top2["closest_to_breach"]] == [c, b]

    user1 = (await api.client.get(f"/v1/risk/users/{u1}")).json()
    assert user1["scope"] == "user" and user1["accounts"] == 2
    assert user1["totals_by_currency"]["USD"]["equity"] == approx(equity[a] + equity[b])
    assert user1["exposure"]["EURUSD"]["net_lots"] == approx(0.5)
    assert user1["exposure"]["EURUSD"]["gross_lots"] == approx(1.5)
    assert [x["account_id"] for x in user1["closest_to_breach"]] == [b, a]
    user2 = (await api.client.get(f"/v1/risk/users/{u2}")).json()
    assert user2["accounts"] == 1 and "XAUUSD" not in user2["exposure"]
    assert user2["exposure"]["EURUSD"]["net_lots"] == approx(2)

    firm = (await api.client.get("/v1/risk/firm", params={"top": 1000})).json()
    assert firm["scope"] == "firm" and firm["id"] is None and firm["accounts"] >= 3
    assert firm["totals_by_currency"]["USD"]["accounts"] >= 3
    assert type(firm["totals_by_currency"]["USD"]["accounts"]) is int  # a count, not 3.0
    assert firm["exposure"]["EURUSD"]["gross_lots"] >= 3.5
    listed = [x["breach_headroom"] for x in firm["closest_to_breach"]]
    assert listed == sorted(listed)
    assert {a, b, c} <= {x["account_id"] for x in firm["closest_to_breach"]}
    assert sum(firm["accounts_by_status"].values()) == firm["accounts"]

    # a user kill switch shows up as killed accounts in every view that covers them
    await api.kill("user", u1, reason="review")
    try:
        assert (await api.client.get(f"/v1/risk/challenges/{ch}")).json()["killed"] == 2
        user1 = (await api.client.get(f"/v1/risk/users/{u1}")).json()
        assert user1["killed"] == 2 and [s["scope"] for s in user1["kill_switches"]] == ["user"]
        assert (await api.client.get(f"/v1/risk/users/{u2}")).json()["killed"] == 0
        assert (await api.client.get("/v1/risk/firm")).json()["killed"] >= 2
    finally:
        await api.release("user", u1)
    assert (await api.client.get(f"/v1/risk/challenges/{ch}")).json()["killed"] == 0
