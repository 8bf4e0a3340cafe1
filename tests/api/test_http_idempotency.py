"""``Idempotency-Key`` over HTTP (sharded placement): on every mutating endpoint a repeat with the
same key answers the first response byte for byte (``Idempotent-Replayed: true``) and changes
nothing read back; the same key with another request is a 409 ``IDEMPOTENCY_KEY_REUSED``.
Concurrent repeats apply once, 5xx answers are not remembered, keys are scoped by credential,
invalid keys are a 422 naming the header; the store is a bounded LRU with a time to live.

The table :data:`CASES` has one entry per mutating route; a test checks that it covers every
``POST``/``PUT``/``PATCH``/``DELETE`` route of the app, so a new route needs an entry here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import msgpack
import pytest
from fastapi.routing import APIRoute
from httpkit import Api, fresh_ts, locs

from api import create_app
from api.idempotency import KeyLocks
from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
from riskactors.actors.idempotency import IdempotencyStore, StoredResponse
from riskactors.domain import TradingDayCalendar
from riskactors.exceptions import ShardUnavailable
from riskactors.settings import ApiKey, Settings

pytestmark = pytest.mark.anyio

EURUSD = (1.10000, 1.10020)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
KEY = "Idempotency-Key"


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    params: dict[str, str] | None = None


@dataclass
class Prepared:
    """A request, another request for the same key, how to read the state they change, and
    what to undo afterwards (shared deployment)."""

    call: Call
    other: Call
    state: Callable[[], Awaitable[Any]]
    cleanup: Callable[[], Awaitable[None]] | None = None


async def send(api: Api, call: Call, key: str | None, **headers: str) -> httpx.Response:
    if key is not None:
        headers[KEY] = key
    kwargs: dict[str, Any] = {"headers": headers, "params": call.params}
    if call.json is not None:
        kwargs["json"] = call.json
    return await api.client.request(call.method, call.path, **kwargs)


# --------------------------------------------------------------------------- state read back
def _account_body(api: Api, name: str, **extra: Any) -> dict[str, Any]:
    return {"account_id": api.id(name), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": 100_000.0, "plan": "moderate", "limits": {"max_orders_per_second": 1000}, **extra}


async def account_state(api: Api, acct: str) -> dict[str, Any]:
    """See :meth:`Api.state`."""
    return await api.state(acct)


async def metric(api: Api, name: str) -> float:
    """The value of an unlabelled counter of this app's ``/metrics``."""
    text = (await api.client.get("/metrics")).text
    lines = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    assert lines, f"{name} not exposed"
    return float(lines[0].split()[1])


async def _with_position(api: Api, name: str = "a") -> str:
    acct = api.id(name)
    await api.register(name)
    await api.marks({"EURUSD": EURUSD})
    await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020)
    return acct


# ------------------------------------------------------------------------------ the table
async def _register(api: Api) -> Prepared:
    body = _account_body(api, "new")
    return Prepared(Call("POST", "/v1/accounts", body),
                    Call("POST", "/v1/accounts", {**body, "initial_balance": 5_000.0}),
                    lambda: account_state(api, api.id("new")))


async def _register_batch(api: Api) -> Prepared:
    body = {"accounts": [_account_body(api, "new")]}
    other = {"accounts": [_account_body(api, "new"), _account_body(api, "other")]}
    return Prepared(Call("POST", "/v1/accounts/batch", body), Call("POST", "/v1/accounts/batch", other),
                    lambda: account_state(api, api.id("new")))


async def _fill_batch(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    fill = {"fill_id": api.fill_id(), "account_id": acct, "instrument": "EURUSD", "side": "buy", "quantity": 1.0,
            "price": 1.10020, "ts": fresh_ts()}
    return Prepared(Call("POST", "/v1/fills/batch", {"fills": [fill]}),
                    Call("POST", "/v1/fills/batch", {"fills": [{**fill, "quantity": 2.0}]}),
                    lambda: account_state(api, acct))


async def _patch_limits(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    path = f"/v1/accounts/{acct}/limits"
    return Prepared(Call("PATCH", path, {"max_position_lots": 3, "reason": "tighter"}),
                    Call("PATCH", path, {"max_position_lots": 2, "reason": "tighter"}),
                    lambda: account_state(api, acct))


async def _set_status(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    path = f"/v1/accounts/{acct}/status"
    return Prepared(Call("PUT", path, {"status": "disabled", "reason": "review"}),
                    Call("PUT", path, {"status": "active", "reason": "review"}),
                    lambda: account_state(api, acct))


async def _check(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    order = api.order(acct, "EURUSD", "buy", 1.0)
    return Prepared(Call("POST", "/v1/orders/check", order),
                    Call("POST", "/v1/orders/check", {**order, "quantity": 2.0}),
                    lambda: account_state(api, acct))


async def _cancel(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    d = await api.check(acct, "EURUSD", "buy", 1.0)
    path = f"/v1/orders/{d['order_id']}/cancel"
    return Prepared(Call("POST", path, {"account_id": acct}),
                    Call("POST", path, {"account_id": acct, "ts": fresh_ts()}),
                    lambda: account_state(api, acct))


async def _fill(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    fill = {"fill_id": api.fill_id(), "account_id": acct, "instrument": "EURUSD", "side": "buy", "quantity": 1.0,
            "price": 1.10020, "commission": -7.0, "ts": fresh_ts()}
    return Prepared(Call("POST", "/v1/fills", fill), Call("POST", "/v1/fills", {**fill, "quantity": 2.0}),
                    lambda: account_state(api, acct))


async def _marks(api: Api) -> Prepared:
    acct = await _with_position(api)
    ts = fresh_ts()
    body = {"marks": [{"instrument": "EURUSD", "bid": 1.10100, "ask": 1.10120, "ts": ts}]}
    other = {"marks": [{"instrument": "EURUSD", "bid": 1.09000, "ask": 1.09020, "ts": ts}]}

    async def state():
        return (await account_state(api, acct), await metric(api, "riskactors_marks_applied_total"))

    return Prepared(Call("POST", "/v1/marks", body), Call("POST", "/v1/marks", other), state)


async def _kill_switch(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    body = {"scope": "account", "id": acct, "reason": "review", "by": "tester"}
    return Prepared(Call("POST", "/v1/kill-switch", body),
                    Call("POST", "/v1/kill-switch", {**body, "mode": "reduce_only"}),
                    lambda: account_state(api, acct))


async def _release_firm(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.kill("firm", None, reason="idempotency drill")

    async def state():
        firm = (await api.client.get("/v1/risk/firm")).json()
        return firm["kill_switches"], await account_state(api, acct)

    async def cleanup():
        firm = (await api.client.get("/v1/risk/firm")).json()
        if any(s["scope"] == "firm" for s in firm["kill_switches"]):
            await api.release("firm", None, reason="cleanup")

    return Prepared(Call("DELETE", "/v1/kill-switch/firm", params={"reason": "drill over", "by": "tester"}),
                    Call("DELETE", "/v1/kill-switch/firm", params={"reason": "other", "by": "tester"}),
                    state, cleanup)


async def _release(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.kill("account", acct)
    path = f"/v1/kill-switch/account/{acct}"
    return Prepared(Call("DELETE", path, params={"reason": "done", "by": "tester"}),
                    Call("DELETE", path, params={"reason": "done", "by": "someone else"}),
                    lambda: account_state(api, acct))


async def _create_plan(api: Api) -> Prepared:
    pid = api.id("plan")
    body = {"id": pid, "name": "idempotent", "rules": {"max_position_lots": 2, "daily_loss_limit_fraction": 0.01}}

    async def state():
        r = await api.client.get(f"/v1/plans/{pid}")
        return r.status_code, r.json()

    return Prepared(Call("POST", "/v1/plans", body), Call("POST", "/v1/plans", {**body, "name": "other"}), state)


async def _activate_plan(api: Api) -> Prepared:
    pid = api.id("plan")
    r = await api.client.post("/v1/plans", json={"id": pid, "rules": {"max_position_lots": 2}})
    assert r.status_code == 201, r.text

    async def state():
        return (await api.client.get(f"/v1/plans/{pid}")).json()

    path = f"/v1/plans/{pid}/activate"
    return Prepared(Call("POST", path, {"version": 1}), Call("POST", path, {}), state)


async def _bind_plan(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    path = f"/v1/accounts/{acct}/plan"
    body = {"plan": "aggressive", "reason": "upgrade", "by": "tester"}
    return Prepared(Call("PUT", path, body), Call("PUT", path, {**body, "plan": "conservative"}),
                    lambda: account_state(api, acct))


async def _calendar(api: Api) -> Prepared:
    # ten years ago: no order of the session is near it, whatever happens
    event = {"event_id": api.id("cpi"), "at": float(int(time.time()) - 3650 * 86_400), "title": "CPI",
             "currencies": ["USD"]}

    async def state():
        return [e for e in (await api.client.get("/v1/calendar")).json()["events"]
                if e["event_id"] == event["event_id"]]

    return Prepared(Call("POST", "/v1/calendar", {"events": [event]}),
                    Call("POST", "/v1/calendar", {"events": [{**event, "title": "NFP"}]}), state)


async def _position_size(api: Api) -> Prepared:
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    path = f"/v1/accounts/{acct}/position-size"
    body = {"instrument": "EURUSD", "entry": 1.10020, "stop_loss": 1.09520, "risk_amount": 500}
    return Prepared(Call("POST", path, body), Call("POST", path, {**body, "risk_amount": 250}),
                    lambda: account_state(api, acct))


async def _recommendation(api: Api, verb: str) -> Prepared:
    """A pending limit-reduction recommendation: one losing day yesterday, rolled today. On a
    deployment of the test's own: on the shared one the clock is already today, and trades
    stamped yesterday would be late, booked to today (no roll would follow them)."""
    await api.own()
    settings, _ = api.deployment
    cal = TradingDayCalendar(settings.trading_day_rollover, settings.trading_day_timezone)
    base = cal.start_of(cal.day_of(time.time()) - timedelta(days=1)) + 3_600
    acct = api.id("r")
    r = await api.client.post("/v1/accounts", json=_account_body(api, "r", opened_at=base, limits={
        "max_orders_per_second": 1000, "recommend_losing_streak_days": 1}))
    assert r.status_code == 201, r.text
    r = await api.client.post("/v1/marks", json={"marks": [
        {"instrument": "EURUSD", "bid": EURUSD[0], "ask": EURUSD[1], "ts": base + 30}]})
    assert r.status_code == 200, r.text
    await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020, ts=base + 60)
    await api.fill(acct, "EURUSD", "sell", 1.0, 1.09920, ts=base + 120)
    recs = (await api.view(acct))["recommendations"]
    assert len(recs) == 1, recs
    path = f"/v1/recommendations/{recs[0]['recommendation_id']}/{verb}"
    body = {"reason": "agreed", "by": "risk-desk"}
    return Prepared(Call("POST", path, body), Call("POST", path, {**body, "reason": "changed my mind"}),
                    lambda: account_state(api, acct))


async def _apply_recommendation(api: Api) -> Prepared:
    return await _recommendation(api, "apply")


async def _dismiss_recommendation(api: Api) -> Prepared:
    return await _recommendation(api, "dismiss")


async def _update_config(api: Api) -> Prepared:
    # the shared deployment's analytics config must not change: post its current window, and
    # as the "other" request the same plus a field the server ignores
    config = (await api.client.get("/v1/analytics/config")).json()
    body = {"window_size": config["window"]}

    async def state():
        return (await api.client.get("/v1/analytics/config")).json()

    return Prepared(Call("POST", "/admin/update-config", body),
                    Call("POST", "/admin/update-config", {**body, "initial_balance": 5_000}), state)


CASES: dict[tuple[str, str], Callable[[Api], Awaitable[Prepared]]] = {
    ("POST", "/v1/accounts"): _register,
    ("POST", "/v1/accounts/batch"): _register_batch,
    ("POST", "/v1/fills/batch"): _fill_batch,
    ("PATCH", "/v1/accounts/{account_id}/limits"): _patch_limits,
    ("PUT", "/v1/accounts/{account_id}/status"): _set_status,
    ("POST", "/v1/orders/check"): _check,
    ("POST", "/v1/orders/{order_id}/cancel"): _cancel,
    ("POST", "/v1/fills"): _fill,
    ("POST", "/v1/marks"): _marks,
    ("POST", "/v1/kill-switch"): _kill_switch,
    ("DELETE", "/v1/kill-switch/firm"): _release_firm,
    ("DELETE", "/v1/kill-switch/{scope}/{scope_id}"): _release,
    ("POST", "/v1/plans"): _create_plan,
    ("POST", "/v1/plans/{plan_id}/activate"): _activate_plan,
    ("PUT", "/v1/accounts/{account_id}/plan"): _bind_plan,
    ("POST", "/v1/calendar"): _calendar,
    ("POST", "/v1/accounts/{account_id}/position-size"): _position_size,
    ("POST", "/v1/recommendations/{recommendation_id}/apply"): _apply_recommendation,
    ("POST", "/v1/recommendations/{recommendation_id}/dismiss"): _dismiss_recommendation,
    ("POST", "/admin/update-config"): _update_config,
}


@pytest.fixture
def deployment(sharded_deployment):
    """Sharded placement only: the middleware sits in front of routing, placement cannot matter."""
    return sharded_deployment


@pytest.fixture
async def api(app_client, uid, deployment, fresh_deployment):
    """:class:`Api` that also knows its deployment (the recommendation setup needs its calendar);
    ``await api.own()`` moves it to a deployment of the test's own."""
    from tests.conftest import asgi_client

    async with app_client as client, contextlib.AsyncExitStack() as stack:
        a = Api(client, uid)
        a.deployment = deployment

        async def own() -> None:
            settings, runtime = fresh_deployment("sharded", shards=1)
            a.client = await stack.enter_async_context(asgi_client(settings, runtime))
            a.deployment = (settings, runtime)

        a.own = own
        yield a


def _routes(app) -> list[Any]:
    """Every route of the app (FastAPI ≥ 0.16x keeps included routers as one entry of
    ``app.routes``: ``iter_route_contexts`` flattens them)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI flattens app.routes itself
        return list(app.routes)
    return [getattr(rc, "route", rc) for rc in iter_route_contexts(app.routes)]


def test_the_table_covers_every_mutating_route_of_the_app():
    app = create_app(Settings(storage_root=None))
    routes = {(method, route.path) for route in _routes(app) if isinstance(route, APIRoute)
              for method in route.methods if method in MUTATING}
    assert len(routes) >= 18
    assert routes == set(CASES), {"missing": routes - set(CASES), "stale": set(CASES) - routes}
    documented = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops
                  if m.upper() in MUTATING}
    assert documented == set(CASES)


@pytest.mark.parametrize("route", list(CASES), ids=[f"{m} {p}" for m, p in CASES])
async def test_a_repeat_replays_the_first_answer_and_another_request_with_the_key_is_409(api, route):
    prepared = await CASES[route](api)
    key = api.id("key-" + hashlib.sha256(repr(route).encode()).hexdigest()[:12])
    try:
        first = await send(api, prepared.call, key)
        assert first.status_code < 300, (first.status_code, first.text)
        assert "idempotent-replayed" not in first.headers
        after_first = await prepared.state()

        again = await send(api, prepared.call, key)
        assert again.status_code == first.status_code
        assert again.content == first.content  # byte for byte
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert await prepared.state() == after_first  # the repeat changed nothing

        clash = await send(api, prepared.other, key)
        assert clash.status_code == 409, clash.text
        detail = clash.json()["detail"]
        assert detail["code"] == "IDEMPOTENCY_KEY_REUSED" and detail["subject"] == key
        assert key in detail["message"] and detail["loc"] == ["header", KEY]
        assert await prepared.state() == after_first  # nor did the other request

        # this app's counters saw one replay and one conflict
        assert await metric(api, "riskactors_idempotent_replays_total") == 1
        assert await metric(api, "riskactors_idempotency_conflicts_total") == 1
    finally:
        if prepared.cleanup is not None:
            await prepared.cleanup()


async def test_a_repeat_without_the_key_runs_again(api):
    """Control for the table: the same fill without a key is the service's own duplicate."""
    prepared = await _fill(api)
    first = await send(api, prepared.call, None)
    again = await send(api, prepared.call, None)
    assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
    assert "idempotent-replayed" not in again.headers


async def test_concurrent_repeats_of_a_fill_apply_once_and_get_the_same_answer(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    fill = Call("POST", "/v1/fills", {"fill_id": api.fill_id(), "account_id": acct, "instrument": "EURUSD",
                                      "side": "buy", "quantity": 1.0, "price": 1.10020, "commission": -7.0,
                                      "ts": fresh_ts()})
    answers = await asyncio.gather(*(send(api, fill, api.id("fill-key")) for _ in range(4)))
    assert [r.status_code for r in answers] == [200] * 4
    assert len({r.content for r in answers}) == 1 and answers[0].json()["duplicate"] is False
    assert sorted(r.headers.get("idempotent-replayed", "no") for r in answers) == ["no", "true", "true", "true"]
    v = await api.view(acct)
    assert v["balance"] == pytest.approx(100_000 - 7) and [p["quantity"] for p in v["positions"]] == [1.0]
    events = (await api.client.get(f"/v1/accounts/{acct}/events")).json()["events"]
    assert [e["type"] for e in events].count("fill_applied") == 1, [e["type"] for e in events]


async def test_concurrent_repeats_of_a_registration_all_get_the_201(api):
    """Without the key the second registration would be a 409 DUPLICATE_ACCOUNT."""
    call = Call("POST", "/v1/accounts", _account_body(api, "a"))
    answers = await asyncio.gather(*(send(api, call, api.id("reg-key")) for _ in range(3)))
    assert [r.status_code for r in answers] == [201] * 3
    assert len({r.content for r in answers}) == 1


async def test_a_4xx_is_remembered_too(api):
    """The first answer is the answer, even a 404: a retry cannot turn into another operation."""
    ghost = api.id("ghost")
    call = Call("PUT", f"/v1/accounts/{ghost}/status", {"status": "disabled", "reason": "x"})
    first = await send(api, call, api.id("k"))
    assert first.status_code == 404
    await api.register("ghost")
    again = await send(api, call, api.id("k"))
    assert again.status_code == 404 and again.content == first.content and again.headers["idempotent-replayed"]
    assert (await api.view(ghost))["status"] == "active"


async def test_keys_are_scoped_by_credential(api):
    """The same key from two credentials is two keys: no 409 and no replay across them."""
    key = api.id("shared-key")
    a = await send(api, Call("POST", "/v1/accounts", _account_body(api, "a")), key, **{"X-API-Key": "one"})
    b = await send(api, Call("POST", "/v1/accounts", _account_body(api, "b")), key, **{"X-API-Key": "two"})
    c = await send(api, Call("POST", "/v1/accounts", _account_body(api, "c")), key,
                   Authorization="Bearer three")
    assert (a.status_code, b.status_code, c.status_code) == (201, 201, 201)
    assert not any("idempotent-replayed" in r.headers for r in (a, b, c))
    again = await send(api, Call("POST", "/v1/accounts", _account_body(api, "a")), key, **{"X-API-Key": "one"})
    assert again.status_code == 201 and again.content == a.content and again.headers["idempotent-replayed"]
    clash = await send(api, Call("POST", "/v1/accounts", _account_body(api, "b")), key, **{"X-API-Key": "one"})
    assert clash.status_code == 409 and clash.json()["detail"]["code"] == "IDEMPOTENCY_KEY_REUSED"


async def test_another_path_query_or_content_type_with_the_key_is_409(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    order = api.order(acct, "EURUSD", "buy", 0.5)
    key = api.id("k")
    first = await send(api, Call("POST", "/v1/orders/check", order), key)
    assert first.status_code == 200
    for call in (Call("POST", "/v1/orders/check", order, params={"x": "1"}),
                 Call("POST", f"/v1/orders/{order['order_id']}/cancel", {"account_id": acct})):
        r = await send(api, call, key)
        assert r.status_code == 409 and r.json()["detail"]["code"] == "IDEMPOTENCY_KEY_REUSED", call
    r = await api.client.post("/v1/orders/check", content=msgpack.packb(order),
                              headers={KEY: key, "content-type": "application/msgpack"})
    assert r.status_code == 409
    assert [x["order_id"] for x in (await api.view(acct))["reservations"]] == [order["order_id"]]


async def test_a_msgpack_answer_is_replayed_in_msgpack(api):
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    fill = {"fill_id": api.fill_id(), "account_id": acct, "instrument": "EURUSD", "side": "buy", "quantity": 0.5,
            "price": 1.10020, "ts": fresh_ts()}
    headers = {KEY: api.id("mp"), "content-type": "application/msgpack", "accept": "application/msgpack"}
    first = await api.client.post("/v1/fills", content=msgpack.packb(fill), headers=headers)
    again = await api.client.post("/v1/fills", content=msgpack.packb(fill), headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content and again.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(again.content)["duplicate"] is False and again.headers["idempotent-replayed"] == "true"


async def test_an_invalid_key_is_422_naming_the_header_and_changes_nothing(api):
    body = _account_body(api, "a")
    for bad in ("", "has space", "x" * 256, "tab\there", b"caf\xc3\xa9"):
        r = await api.client.post("/v1/accounts", json=body, headers={KEY: bad})
        assert locs(r) == [["header", KEY]], bad
        assert r.json()["detail"][0]["type"] == "idempotency_key_invalid"
    r = await api.client.post("/v1/accounts", json=body, headers=[(KEY, "one"), (KEY, "two")])
    assert locs(r) == [["header", KEY]]
    assert (await api.client.get(f"/v1/accounts/{api.id('a')}")).status_code == 404
    ok = await api.client.post("/v1/accounts", json=body, headers={KEY: "~" + "x" * 254})
    assert ok.status_code == 201, ok.text


async def test_a_key_on_a_read_is_ignored(api):
    await api.register("a")
    path = f"/v1/accounts/{api.id('a')}"
    for _ in range(2):
        r = await api.client.get(path, headers={KEY: api.id("read")})
        assert r.status_code == 200 and "idempotent-replayed" not in r.headers
    r = await api.client.get(path, headers={KEY: "not valid"})
    assert r.status_code == 200


async def test_openapi_documents_the_header_on_every_mutating_operation(api):
    doc = (await api.client.get("/openapi.json")).json()
    for (method, path) in CASES:
        op = doc["paths"][path][method.lower()]
        params = [p for p in op["parameters"] if p["name"] == KEY]
        assert len(params) == 1 and params[0]["in"] == "header" and params[0]["required"] is False, path
        assert {"409", "413", "415", "422"} <= set(op["responses"]), path
    get = doc["paths"]["/v1/accounts/{account_id}"]["get"]
    assert all(p["name"] != KEY for p in get.get("parameters", []))


# ------------------------------------------------------------------ 5xx, auth (no Ray)
class FlakyTransport(LocalTransport):
    """In-process transport whose listed methods fail once, as a host still recovering would."""

    def __init__(self, fail_once: set[str]):
        self.fail_once = set(fail_once)
        self.calls: list[str] = []

    async def call(self, target, method, *args, timeout=None):
        self.calls.append(method)
        if method in self.fail_once:
            self.fail_once.discard(method)
            raise ShardUnavailable(f"{method}: host recovering")
        return await super().call(target, method, *args, timeout=timeout)


def _local_app(settings: Settings, transport: LocalTransport):
    shards = [AccountHost(f"shard-{i}", settings.host_config()) for i in range(2)]
    service = RiskService(transport, Supervisor(transport, "sharded", shards, settings.host_config()), shards,
                          "sharded")
    return create_app(settings, service)


@pytest.fixture
async def local():
    """A client over an in-process deployment whose first ``register`` and ``check_many`` fail."""
    transport = FlakyTransport({"register", "check_many"})
    app = _local_app(Settings(storage_root=None), transport)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://local.test") as client:
        yield client, app


async def test_a_5xx_is_not_remembered_and_the_retry_runs(local):
    client, app = local
    body = {"account_id": "a", "user_id": "u", "challenge_id": "c", "currency": "USD", "initial_balance": 10_000,
            "plan": "moderate"}
    first = await client.post("/v1/accounts", json=body, headers={KEY: "reg"})
    assert first.status_code == 503 and first.json()["detail"]["code"] == "SERVICE_UNAVAILABLE"
    retry = await client.post("/v1/accounts", json=body, headers={KEY: "reg"})
    assert retry.status_code == 201 and "idempotent-replayed" not in retry.headers
    third = await client.post("/v1/accounts", json=body, headers={KEY: "reg"})
    assert third.status_code == 201 and third.content == retry.content and third.headers["idempotent-replayed"]

    # the fail-closed 503 of a check (a JSON answer of the route itself) is not remembered either
    ts = time.time()
    r = await client.post("/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002,
                                                         "ts": ts}]})
    assert r.status_code == 200
    order = {"order_id": "o1", "account_id": "a", "instrument": "EURUSD", "side": "buy", "quantity": 0.1, "ts": ts}
    first = await client.post("/v1/orders/check", json=order, headers={KEY: "chk"})
    assert first.status_code == 503 and first.json()["reasons"][0]["code"] == "SERVICE_UNAVAILABLE"
    retry = await client.post("/v1/orders/check", json=order, headers={KEY: "chk"})
    assert retry.status_code == 200 and retry.json()["decision"] == "accept", retry.json()
    assert "idempotent-replayed" not in retry.headers
    view = (await client.get("/v1/accounts/a")).json()
    assert [x["order_id"] for x in view["reservations"]] == ["o1"]
    assert len(app.state.service.ledger) == 2  # the two successes only


async def test_with_auth_on_a_key_does_not_bypass_it():
    """A 401 is stored under the caller's (absent) credential; the same key with a valid API key
    runs the request for real, and its answer is not replayed to a caller without the key."""
    settings = Settings(storage_root=None, api_keys=[
        ApiKey(name="feed", role="router", sha256=hashlib.sha256(b"feed-secret").hexdigest())])
    app = _local_app(settings, FlakyTransport(set()))
    marks = {"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002, "ts": time.time()}]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client:
        anonymous = await client.post("/v1/marks", json=marks, headers={KEY: "m1"})
        assert anonymous.status_code == 401
        signed = await client.post("/v1/marks", json=marks, headers={KEY: "m1", "X-API-Key": "feed-secret"})
        assert signed.status_code == 200 and "idempotent-replayed" not in signed.headers
        assert signed.json()["applied"] == 1
        again = await client.post("/v1/marks", json=marks, headers={KEY: "m1"})
        assert again.status_code == 401 and again.content == anonymous.content
        replay = await client.post("/v1/marks", json=marks, headers={KEY: "m1", "X-API-Key": "feed-secret"})
        assert replay.status_code == 200 and replay.content == signed.content and replay.headers["idempotent-replayed"]


# ------------------------------------------------------------------------------- the store
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _entry(clock: Clock, body: bytes = b"{}") -> StoredResponse:
    return StoredResponse(b"fp", 200, ((b"content-type", b"application/json"),), body, clock())


def test_store_evicts_the_least_recently_used_key_beyond_max_keys():
    clock = Clock()
    store = IdempotencyStore(max_keys=2, ttl_seconds=60)
    store.put(b"a", _entry(clock))
    store.put(b"b", _entry(clock))
    assert store.get(b"a", clock()) is not None  # a is now the most recently used
    store.put(b"c", _entry(clock))
    assert len(store) == 2
    assert store.get(b"b", clock()) is None
    assert store.get(b"a", clock()) is not None and store.get(b"c", clock()) is not None


def test_store_forgets_a_key_after_its_ttl():
    clock = Clock()
    store = IdempotencyStore(max_keys=10, ttl_seconds=60)
    store.put(b"a", _entry(clock))
    clock.now += 30
    store.put(b"b", _entry(clock))
    clock.now += 29.9
    assert store.get(b"a", clock()) is not None
    clock.now += 0.2
    assert store.get(b"a", clock()) is None and store.get(b"b", clock()) is not None
    clock.now += 60
    assert store.get(b"b", clock()) is None and len(store) == 0 and store.bytes == 0


def test_store_bounds_the_bytes_it_holds():
    clock = Clock()
    store = IdempotencyStore(max_keys=100, ttl_seconds=60, max_bytes=1000)
    for i in range(10):
        store.put(str(i).encode(), _entry(clock, b"x" * 300))
    size = _entry(clock, b"x" * 300).size  # body and headers: 328 bytes
    assert len(store) == 1000 // size == 3 and store.bytes == 3 * size
    assert [store.get(str(i).encode(), clock()) is not None for i in range(10)] == [False] * 7 + [True] * 3
    store.put(b"huge", _entry(clock, b"x" * 2000))  # larger than the whole budget: not kept
    assert store.get(b"huge", clock()) is None and len(store) == 3


async def test_store_locks_serialise_one_key_and_are_freed():
    store = KeyLocks()
    order: list[str] = []

    async def user(name: str, key: bytes):
        async with store.lock(key):
            order.append(f"{name}+")
            await asyncio.sleep(0.01)
            order.append(f"{name}-")

    await asyncio.gather(user("a", b"k"), user("b", b"k"), user("c", b"other"))
    assert order.index("a-") < order.index("b+")  # a and b never overlap; c ran alongside
    assert len(store) == 0
