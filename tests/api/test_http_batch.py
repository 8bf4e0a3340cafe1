"""``POST /v1/accounts/batch`` and ``POST /v1/fills/batch`` over the session's deployments (both
placements): one result per item in order with the single route's status, a bad item blocks
nothing and applies nothing, retries are safe, items of one account apply in order, envelope
errors are 422, msgpack works, and the audit log has one entry per applied registration."""

from __future__ import annotations

import msgpack
import pytest
from httpkit import fresh_ts

pytestmark = pytest.mark.anyio


def _account(api, name: str, **extra) -> dict:
    return {"account_id": api.id(name), "user_id": api.id(f"{name}-u"), "challenge_id": api.id("c"),
            "currency": "USD", "initial_balance": 100_000.0, "plan": "moderate",
            "limits": {"max_orders_per_second": 1000}, **extra}


def _fill(api, name: str, side: str, qty: float, **extra) -> dict:
    return {"fill_id": api.fill_id(), "account_id": api.id(name), "instrument": "EURUSD", "side": side,
            "quantity": qty, "price": 1.1002, "ts": fresh_ts(), **extra}


async def test_registrations_answer_per_item_in_order_and_a_bad_item_blocks_nothing(api):
    items = [_account(api, "a"), _account(api, "b", initial_balance=-5), "not an object",
             _account(api, "c", plan="no-such-plan"), _account(api, "d", limits={"max_leverage": 0}),
             _account(api, "e")]
    r = await api.client.post("/v1/accounts/batch", json={"accounts": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [201, 422, 422, 422, 422, 201]
    assert [x["account_id"] for x in results] == [api.id("a"), api.id("b"), None, api.id("c"), api.id("d"),
                                                  api.id("e")]
    assert results[1]["error"]["loc"] == ["initial_balance"] and results[1]["error"]["code"] == "greater_than"
    assert results[2]["error"]["loc"] == []
    assert results[3]["error"]["loc"] == ["plan"] and "no-such-plan" in results[3]["error"]["message"]
    assert results[4]["error"]["loc"] == ["limits", "max_leverage"]
    assert results[0]["account"]["account_id"] == api.id("a") and results[0]["account"]["balance"] == 100_000
    for name in ("b", "c", "d"):  # nothing of a bad item is applied
        assert (await api.client.get(f"/v1/accounts/{api.id(name)}")).status_code == 404
    assert (await api.view(api.id("e")))["user_id"] == api.id("e-u")


async def test_a_retry_answers_existing_and_another_identity_is_a_conflict(api):
    first = await api.client.post("/v1/accounts/batch", json={"accounts": [_account(api, "a")]})
    assert first.json()["results"][0]["status"] == 201
    again = await api.client.post("/v1/accounts/batch", json={"accounts": [
        _account(api, "a"), _account(api, "a", initial_balance=50_000.0), _account(api, "n"), _account(api, "n")]})
    results = again.json()["results"]
    assert [(x["status"], x["existing"]) for x in results] == [(200, True), (409, False), (201, False), (200, True)]
    assert results[0]["account"] == {**first.json()["results"][0]["account"], "as_of": results[0]["account"]["as_of"]}
    assert results[1]["error"]["code"] == "DUPLICATE_ACCOUNT"
    single = await api.client.post("/v1/accounts", json=_account(api, "a"))  # the single route keeps its 409
    assert single.status_code == 409
    audit = (await api.client.get("/v1/audit", params={"action": "account_registered"})).json()["entries"]
    mine = [e["account_id"] for e in audit if e["account_id"] in (api.id("a"), api.id("n"))]
    assert sorted(mine) == [api.id("a"), api.id("n")]  # one entry per account applied, none for retries


async def test_fills_apply_in_order_per_account_and_a_retry_is_a_duplicate(api):
    await api.marks({"EURUSD": (1.1000, 1.1002)})
    await api.register("x")
    await api.register("y", user="u2")
    items = [_fill(api, "x", "buy", 1.0), _fill(api, "y", "sell", 0.5), _fill(api, "x", "sell", 0.4),
             _fill(api, "nobody", "buy", 0.1), _fill(api, "x", "buy", 0.1, instrument="NOPE"),
             _fill(api, "x", "buy", 0.1, quantity=-1)]
    r = await api.client.post("/v1/fills/batch", json={"fills": items})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 200, 200, 404, 422, 422]
    assert results[2]["fill"]["instrument_lots"] == [pytest.approx(0.6), 0.0]  # after the 1.0 buy: in order
    assert results[3]["error"]["code"] == "UNKNOWN_ACCOUNT"
    assert results[4]["error"]["loc"] == ["instrument"] and results[5]["error"]["loc"] == ["quantity"]
    assert [x["fill_id"] for x in results] == [i["fill_id"] for i in items]
    retry = (await api.client.post("/v1/fills/batch", json={"fills": items[:3]})).json()["results"]
    assert [(x["status"], x["fill"]["duplicate"]) for x in retry] == [(200, True)] * 3
    view = await api.view(api.id("x"))
    assert [(p["instrument"], p["quantity"]) for p in view["positions"]] == [("EURUSD", pytest.approx(0.6))]


async def test_a_malformed_envelope_is_a_422_for_the_whole_request(api):
    r = await api.client.post("/v1/accounts/batch", json={"accounts": {"a": 1}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "accounts"]
    r = await api.client.post("/v1/fills/batch", json={"fills": [{}] * 10_001})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "too_long"
    r = await api.client.post("/v1/fills/batch", json={"fills": [], "extra": 1})
    assert r.status_code == 422


async def test_msgpack_in_and_out(api):
    body = msgpack.packb({"accounts": [_account(api, "m")]})
    r = await api.client.post("/v1/accounts/batch", content=body,
                              headers={"content-type": "application/msgpack", "accept": "application/msgpack"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/msgpack")
    (result,) = msgpack.unpackb(r.content)["results"]
    assert result["status"] == 201 and result["account"]["account_id"] == api.id("m")


# ------------------------------------------------------------------ a host that does not answer
def _local_app(fail_once: set[str]):
    import time

    import httpx

    from api import create_app
    from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
    from riskactors.exceptions import ShardUnavailable
    from riskactors.settings import Settings

    class Flaky(LocalTransport):
        async def call(self, target, method, *args, timeout=None):
            if method in fail_once:
                fail_once.discard(method)
                raise ShardUnavailable(f"{method}: host recovering")
            return await super().call(target, method, *args, timeout=timeout)

    settings = Settings(storage_root=None)
    transport = Flaky()
    shards = [AccountHost(f"shard-{i}", settings.host_config()) for i in range(2)]
    service = RiskService(transport, Supervisor(transport, "sharded", shards, settings.host_config()), shards,
                          "sharded")
    app = create_app(settings, service)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://local.test"), time.time()


async def test_an_item_that_got_503_says_retry_and_the_key_does_not_remember_it():
    client, now = _local_app({"fill_many"})
    async with client:
        accounts = [{"account_id": f"a{i}", "user_id": f"u{i}", "challenge_id": "c", "currency": "USD",
                     "initial_balance": 10_000, "plan": "moderate"} for i in range(2)]
        assert [x["status"] for x in (await client.post("/v1/accounts/batch", json={"accounts": accounts})
                                      ).json()["results"]] == [201, 201]
        await client.post("/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002,
                                                         "ts": now}]})
        fills = {"fills": [{"fill_id": f"f{i}", "account_id": f"a{i}", "instrument": "EURUSD", "side": "buy",
                            "quantity": 0.1, "price": 1.1002, "ts": now} for i in range(2)]}
        first = await client.post("/v1/fills/batch", json=fills, headers={"Idempotency-Key": "fb-1"})
        statuses = [x["status"] for x in first.json()["results"]]
        assert first.status_code == 200 and 503 in statuses and first.headers["retry-after"] == "1"
        unavailable = next(x for x in first.json()["results"] if x["status"] == 503)
        assert unavailable["error"]["code"] == "SERVICE_UNAVAILABLE" and unavailable["fill"] is None
        retry = await client.post("/v1/fills/batch", json=fills, headers={"Idempotency-Key": "fb-1"})
        assert "idempotent-replayed" not in retry.headers and "retry-after" not in retry.headers
        assert [x["status"] for x in retry.json()["results"]] == [200, 200]
        # a fill applied the first time is a duplicate now; one that got 503 is applied now
        assert [x["fill"]["duplicate"] for x in retry.json()["results"]] == [s == 200 for s in statuses]


async def test_batch_routes_take_bodies_over_the_single_routes_limit():
    client, _ = _local_app(set())
    async with client:
        items = [{"account_id": f"big-{i}", "user_id": f"u{i}", "challenge_id": "c" * 100, "currency": "USD",
                  "initial_balance": 10_000, "plan": "moderate"} for i in range(6_000)]
        r = await client.post("/v1/accounts/batch", json={"accounts": items})  # about 1.2 MB of JSON
        assert r.status_code == 200 and {x["status"] for x in r.json()["results"]} == {201}
        assert len(r.json()["results"]) == 6_000
        single = await client.post("/v1/accounts", content=b"{" + b" " * 1_100_000 + b"}",
                                   headers={"content-type": "application/json"})
        assert single.status_code == 413


async def test_accounts_page_in_stable_order_with_filters(api):
    items = [_account(api, f"p{i:02d}", challenge_id=api.id("pg")) for i in range(25)]
    items[3]["user_id"] = items[4]["user_id"] = api.id("two-accounts")
    assert {x["status"] for x in (await api.client.post("/v1/accounts/batch", json={"accounts": items})
                                  ).json()["results"]} == {201}
    r = await api.client.put(f"/v1/accounts/{api.id('p07')}/status", json={"status": "disabled", "reason": "review"})
    assert r.status_code == 200
    seen, cursor, pages = [], None, 0
    while True:
        params = {"challenge_id": api.id("pg"), "limit": 10} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/v1/accounts", params=params)).json()
        seen += [row["account_id"] for row in page["accounts"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == sorted(i["account_id"] for i in items)
    disabled = (await api.client.get("/v1/accounts", params={"challenge_id": api.id("pg"), "status": "disabled"})
                ).json()
    assert [row["account_id"] for row in disabled["accounts"]] == [api.id("p07")] and disabled["next_cursor"] is None
    by_user = (await api.client.get("/v1/accounts", params={"user_id": api.id("two-accounts")})).json()
    assert [row["account_id"] for row in by_user["accounts"]] == [api.id("p03"), api.id("p04")]
    assert by_user["accounts"][0]["equity"] == 100_000 and by_user["accounts"][0]["status"] == "active"
    bad = await api.client.get("/v1/accounts", params={"status": "sleeping"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]


async def test_a_mark_that_breaches_many_accounts_lists_a_bounded_number_and_counts_them_all(fresh_deployment, uid):
    from httpkit import Api

    from tests.conftest import asgi_client

    settings, runtime = fresh_deployment("sharded", max_breaches_listed=2)
    async with asgi_client(settings, runtime) as client:
        api = Api(client, uid)
        await api.marks({"EURUSD": (1.1000, 1.1002)})
        items = [_account(api, f"br{i}", initial_balance=10_000.0,
                          limits={"max_orders_per_second": 1000, "daily_loss_limit": 100, "max_loss_limit": 1000})
                 for i in range(5)]
        r = await client.post("/v1/accounts/batch", json={"accounts": items})
        assert {x["status"] for x in r.json()["results"]} == {201}
        fills = [_fill(api, f"br{i}", "buy", 0.1) for i in range(5)]
        assert {x["status"] for x in (await client.post("/v1/fills/batch", json={"fills": fills})).json()["results"]
                } == {200}
        out = await api.marks({"EURUSD": (1.0500, 1.0502)})  # -500 USD on each: the daily loss breached
        assert out["breach_count"] == 5 and len(out["breaches"]) == 2
        assert out["breaches_by_code"] == {"DAILY_LOSS_LIMIT": 5}
        audit = (await client.get("/v1/audit", params={"action": "breach"})).json()["entries"]
        assert len({e["account_id"] for e in audit}) == 5  # the rest are in the audit log
        metrics = (await client.get("/metrics")).text
        assert sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("riskactors_breaches_total{")) == 5
