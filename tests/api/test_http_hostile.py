"""Hostile and malformed input over HTTP: every bad request is a clear 4xx with a stable code
(``detail.code``, or ``detail[].type`` for a 422) naming the field, never a 5xx, and the state
read back afterwards (account view and events, marks) is unchanged.

- oversized bodies (by ``Content-Length`` and chunked): 413 ``PAYLOAD_TOO_LARGE``;
- ``NaN``, ``Infinity``, ``-Infinity`` (Python's JSON parser accepts them) and overflowing
  numbers: 422 ``finite_number``; negative or zero quantities and prices: 422 ``greater_than``,
  on the order check too; unknown fields: 422 ``extra_forbidden``;
- a body that is neither JSON nor msgpack: 415 ``UNSUPPORTED_MEDIA_TYPE``; malformed JSON or
  msgpack: 422;
- marks: more than ``max_future_seconds`` ahead of the server clock is a 422
  ``mark_in_future`` naming the mark's ``ts`` and nothing of the request is applied; a mark older
  than the last applied for its instrument is ignored and counted (``stale``, and
  ``riskactors_marks_stale_total``); historic marks on a fresh instrument are applied.

Sharded placement (the checks happen in the front); the mark-clock tests run on a deployment of
their own with the service's clock pinned, so no other test sees their marks.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import msgpack
import pytest
from httpkit import Api, fresh_ts

pytestmark = pytest.mark.anyio

EURUSD = (1.10000, 1.10020)
ACCEPTED = ["application/json", "application/msgpack", "application/x-msgpack"]
JSON = {"content-type": "application/json"}


@pytest.fixture
def deployment(sharded_deployment):
    """Sharded placement only: limits and validation happen in the front."""
    return sharded_deployment


async def account_state(api: Api, acct: str) -> dict[str, Any]:
    """See :meth:`Api.state`."""
    return await api.state(acct)


async def with_position(api: Api) -> str:
    """Account ``a`` long 1 lot EURUSD at 1.10020 (marks posted)."""
    acct = api.id("a")
    await api.register("a")
    await api.marks({"EURUSD": EURUSD})
    await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020)
    return acct


def fill_body(api: Api, acct: str, **over: Any) -> dict[str, Any]:
    return {"fill_id": api.fill_id(), "account_id": acct, "instrument": "EURUSD", "side": "sell", "quantity": 0.5,
            "price": 1.10000, "ts": fresh_ts(), **over}


def problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The ``detail`` of a non-422 error, after checking its status and code."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    detail = r.json()["detail"]
    assert detail["code"] == code, detail
    return detail


def errors(r: httpx.Response) -> list[tuple[list, str]]:
    """``(loc, type)`` of every error of a 422."""
    assert r.status_code == 422, (r.status_code, r.text[:500])
    return [(d["loc"], d["type"]) for d in r.json()["detail"]]


def raw_json(body: dict[str, Any], **literals: str) -> str:
    """``body`` as JSON text with the values of ``literals`` spliced in verbatim (``NaN``…)."""
    marked = {**body, **{k: f"@@{k}@@" for k in literals}}
    text = json.dumps(marked)
    for k, literal in literals.items():
        text = text.replace(f'"@@{k}@@"', literal)
    return text


# ------------------------------------------------------------------------------ body size
async def test_a_body_over_the_limit_by_content_length_is_413_and_changes_nothing(api, deployment):
    settings, _ = deployment
    limit = settings.max_body_bytes
    acct = await with_position(api)
    before = await account_state(api, acct)

    big = json.dumps(fill_body(api, acct, note="x" * limit))
    r = await api.client.post("/v1/fills", content=big, headers=JSON)
    detail = problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert detail["loc"] == ["body"] and detail["limit"] == limit and str(limit) in detail["message"]
    # the 413 speaks msgpack to a msgpack client
    r = await api.client.post("/v1/fills", content=msgpack.packb(json.loads(big)),
                              headers={"content-type": "application/msgpack", "accept": "application/msgpack"})
    assert r.status_code == 413 and msgpack.unpackb(r.content)["detail"]["code"] == "PAYLOAD_TOO_LARGE"
    r = await api.client.post("/v1/accounts", json={"account_id": api.id("big"), "padding": "x" * limit})
    problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert await account_state(api, acct) == before
    assert (await api.client.get(f"/v1/accounts/{api.id('big')}")).status_code == 404

    # exactly at the limit the body is read and validated: the padding is an unknown field
    body = fill_body(api, acct, note="")
    body["note"] = "x" * (limit - len(json.dumps(body)))
    exact = json.dumps(body)
    assert len(exact) == limit
    r = await api.client.post("/v1/fills", content=exact, headers=JSON)
    assert errors(r) == [(["body", "note"], "extra_forbidden")]
    assert await account_state(api, acct) == before


async def test_a_chunked_body_over_the_limit_is_413_and_changes_nothing(api, deployment):
    settings, _ = deployment
    limit = settings.max_body_bytes
    acct = await with_position(api)
    before = await account_state(api, acct)
    head = json.dumps(fill_body(api, acct))[:-1].encode() + b', "note": "'

    async def stream(total: int):
        yield head
        sent = len(head)
        while sent < total:
            chunk = b"x" * min(65_536, total - sent)
            sent += len(chunk)
            yield chunk
        yield b'"}'

    r = await api.client.post("/v1/fills", content=stream(limit + 1), headers=JSON)
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    detail = problem(r, 413, "PAYLOAD_TOO_LARGE")
    assert detail["loc"] == ["body"] and detail["limit"] == limit
    assert await account_state(api, acct) == before

    # a small chunked body goes through like any other
    fill = fill_body(api, acct)

    async def small():
        text = json.dumps(fill).encode()
        yield text[:10]
        yield text[10:]

    r = await api.client.post("/v1/fills", content=small(), headers=JSON)
    assert r.status_code == 200, r.text
    assert (await api.view(acct))["positions"][0]["quantity"] == 0.5


# ------------------------------------------------------------------------------ numbers
NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]


@pytest.mark.parametrize("literal", NON_FINITE)
async def test_non_finite_numbers_are_422_naming_the_field_and_change_nothing(api, literal):
    acct = await with_position(api)
    before = await account_state(api, acct)
    c = api.client

    async def post(method: str, path: str, body: dict[str, Any], **literals: str):
        return await c.request(method, path, content=raw_json(body, **literals), headers=JSON)

    fill = fill_body(api, acct)
    for field in ("quantity", "price", "commission", "swap", "ts"):
        r = await post("POST", "/v1/fills", fill, **{field: literal})
        assert errors(r) == [(["body", field], "finite_number")], field
        assert isinstance(r.json()["detail"][0]["input"], str)  # echoed as text, still valid JSON
    order = api.order(acct, "EURUSD", "buy", 1.0)
    for field in ("quantity", "price", "stop_loss", "ts"):
        r = await post("POST", "/v1/orders/check", order, **{field: literal})
        assert errors(r) == [(["body", field], "finite_number")], field
    mark = {"instrument": "EURUSD", "bid": 1.0, "ask": 1.2, "ts": fresh_ts()}
    r = await c.post("/v1/marks", content='{"marks": [' + raw_json(mark, bid=literal) + "]}", headers=JSON)
    assert errors(r) == [(["body", "marks", 0, "bid"], "finite_number")]
    r = await post("PATCH", f"/v1/accounts/{acct}/limits", {"reason": "x"}, daily_loss_limit=literal)
    assert errors(r) == [(["body", "daily_loss_limit"], "finite_number")]
    r = await post("POST", f"/v1/accounts/{acct}/position-size",
                   {"instrument": "EURUSD", "stop_loss": 1.09, "risk_amount": 100}, entry=literal)
    assert errors(r) == [(["body", "entry"], "finite_number")]
    account = {"account_id": api.id("b"), "user_id": api.id("u1"), "challenge_id": api.id("c1"),
               "currency": "USD", "plan": "moderate"}
    r = await post("POST", "/v1/accounts", account, initial_balance=literal)
    assert errors(r) == [(["body", "initial_balance"], "finite_number")]
    r = await post("POST", "/v1/plans", {"id": api.id("p")}, rules='{"daily_loss_limit": ' + literal + "}")
    assert [loc for loc, _ in errors(r)] == [["body", "rules", "daily_loss_limit"]]

    assert await account_state(api, acct) == before
    assert (await c.get(f"/v1/accounts/{api.id('b')}")).status_code == 404
    assert (await c.get(f"/v1/plans/{api.id('p')}")).status_code == 404


async def test_non_finite_numbers_in_msgpack_are_422_too(api):
    acct = await with_position(api)
    before = await account_state(api, acct)
    for value in (float("nan"), float("inf"), float("-inf")):
        r = await api.client.post("/v1/fills", content=msgpack.packb(fill_body(api, acct, price=value)),
                                  headers={"content-type": "application/msgpack"})
        assert errors(r) == [(["body", "price"], "finite_number")]
    assert await account_state(api, acct) == before


async def test_negative_and_zero_quantities_and_prices_are_422_naming_the_field(api):
    acct = await with_position(api)
    before = await account_state(api, acct)
    c = api.client
    for field in ("quantity", "price"):
        for value in (0, -1, -1e-9):
            r = await c.post("/v1/fills", json=fill_body(api, acct, **{field: value}))
            assert errors(r) == [(["body", field], "greater_than")], (field, value)
    mark = {"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002, "ts": fresh_ts()}
    for field in ("bid", "ask"):
        for value in (0, -1.1):
            r = await c.post("/v1/marks", json={"marks": [{**mark, field: value}]})
            assert (["body", "marks", 0, field], "greater_than") in errors(r), (field, value)
    size = {"instrument": "EURUSD", "entry": 1.1, "stop_loss": 1.09, "risk_amount": 100}
    for field in ("entry", "stop_loss", "risk_amount"):
        r = await c.post(f"/v1/accounts/{acct}/position-size", json={**size, field: -1})
        assert errors(r) == [(["body", field], "greater_than")], field
    r = await c.patch(f"/v1/accounts/{acct}/limits", json={"max_position_lots": 0, "reason": "x"})
    assert errors(r) == [(["body", "max_position_lots"], "greater_than")]
    assert await account_state(api, acct) == before

    # the order check too: a zero or negative quantity or price is malformed input, not a decision
    for extra in ({"quantity": 0}, {"quantity": -1}, {"price": -1.1}, {"stop_loss": 0}, {"take_profit": -2}):
        order = {**api.order(acct, "EURUSD", "buy", 1.0), **extra}
        r = await c.post("/v1/orders/check", json=order)
        (field,) = extra
        assert errors(r) == [(["body", field], "greater_than")], extra
    assert await account_state(api, acct) == before


async def test_unknown_fields_are_422_naming_the_field_and_change_nothing(api):
    acct = await with_position(api)
    before = await account_state(api, acct)
    c = api.client
    r = await c.post("/v1/fills", json=fill_body(api, acct, colour="red"))
    assert errors(r) == [(["body", "colour"], "extra_forbidden")]
    r = await c.post("/v1/orders/check", json={**api.order(acct, "EURUSD", "buy", 1.0), "leverage": 5})
    assert errors(r) == [(["body", "leverage"], "extra_forbidden")]
    r = await c.post("/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.0, "ask": 1.2,
                                                   "ts": fresh_ts(), "mid": 1.1}]})
    assert errors(r) == [(["body", "marks", 0, "mid"], "extra_forbidden")]
    r = await c.patch(f"/v1/accounts/{acct}/limits", json={"max_lots": 1, "reason": "x"})
    assert errors(r) == [(["body", "max_lots"], "extra_forbidden")]
    r = await c.put(f"/v1/accounts/{acct}/status", json={"status": "disabled", "reason": "x", "urgent": True})
    assert errors(r) == [(["body", "urgent"], "extra_forbidden")]
    r = await c.post("/v1/kill-switch", json={"scope": "account", "id": acct, "reason": "x", "ttl": 5})
    assert errors(r) == [(["body", "ttl"], "extra_forbidden")]
    r = await c.post("/admin/update-config", json={"window": 5})
    assert errors(r) == [(["body", "window"], "extra_forbidden")]
    assert await account_state(api, acct) == before


# ------------------------------------------------------------------------------ content types
@pytest.mark.parametrize("kind", ["text/plain", "form", "multipart", "missing", "application/xml",
                                  "application/merge-patch+json"])
async def test_a_body_that_is_not_json_or_msgpack_is_415_naming_the_accepted_types(api, kind):
    acct = await with_position(api)
    before = await account_state(api, acct)
    text = json.dumps(fill_body(api, acct))
    if kind == "form":
        kwargs: dict[str, Any] = {"data": {"fill": text}}
    elif kind == "multipart":
        kwargs = {"files": {"fill": ("fill.json", text, "application/json")}}
    elif kind == "missing":
        kwargs = {"content": text}
    else:
        kwargs = {"content": text, "headers": {"content-type": kind}}
    for method, path in (("POST", "/v1/fills"), ("PATCH", f"/v1/accounts/{acct}/limits"),
                         ("PUT", f"/v1/accounts/{acct}/status")):
        r = await api.client.request(method, path, **kwargs)
        if kind == "missing":
            assert "content-type" not in r.request.headers
        detail = problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert detail["accepted"] == ACCEPTED and detail["loc"] == ["header", "content-type"]
        assert all(t in detail["message"] for t in ACCEPTED)
    assert await account_state(api, acct) == before


async def test_json_with_parameters_or_capitals_is_accepted(api):
    acct = await with_position(api)
    for ctype in ("application/json; charset=utf-8", "Application/JSON"):
        r = await api.client.post("/v1/fills", content=json.dumps(fill_body(api, acct, quantity=0.1)),
                                  headers={"content-type": ctype})
        assert r.status_code == 200, (ctype, r.text)
    assert (await api.view(acct))["positions"][0]["quantity"] == pytest.approx(0.8)
    # a body-less request needs no content type
    d = await api.check(acct, "EURUSD", "buy", 0.1)
    r = await api.client.post(f"/v1/orders/{d['order_id']}/cancel")
    assert r.status_code == 200 and r.json()["released"] is True


async def test_malformed_json_and_msgpack_are_422_and_change_nothing(api):
    acct = await with_position(api)
    before = await account_state(api, acct)
    c = api.client
    text = json.dumps(fill_body(api, acct))
    for raw in (b"{not json", text[:-3].encode(), b"\xff\xfe{}", b"[1, 2]", b'"fill"', b"null",
                b"[" * 50_000 + b"]" * 50_000, b"{" + b'"a":' * 10 + b"}"):
        r = await c.post("/v1/fills", content=raw, headers=JSON)
        assert r.status_code == 422, (raw[:40], r.status_code, r.text[:300])
        assert r.json()["detail"][0]["loc"][0] == "body"
    r = await c.post("/v1/fills", content=b"", headers=JSON)
    assert errors(r) == [(["body"], "missing")]
    for raw in (b"\xc1", b"\x92\x01", msgpack.packb({"a": 1}) + b"\xff", msgpack.packb([1, 2])):
        r = await c.post("/v1/fills", content=raw, headers={"content-type": "application/msgpack"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][0] == "body", (raw, r.text)
    assert errors(await c.post("/v1/fills", content=b"\xc1", headers={"content-type": "application/msgpack"})) == \
        [(["body"], "msgpack_decode_error")]
    assert await account_state(api, acct) == before


# ------------------------------------------------------------------------------ marks and the clock
@pytest.fixture
async def pinned(fresh_deployment, uid):
    """An :class:`Api` over a deployment of its own whose service clock is pinned at ``NOW``."""
    from api import create_app
    from riskactors.actors.clock import DeploymentClock

    settings, runtime = fresh_deployment("sharded", shards=1)
    now = float(int(time.time()))
    # an injected wall clock: every ts-less request and the future horizon
    runtime.service.clock = DeploymentClock("wall", wall=lambda: now)
    app = create_app(settings, runtime.service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pinned.test",
                                 timeout=60.0) as client:
        yield Api(client, uid), settings, now


async def _metric(api: Api, name: str) -> float:
    text = (await api.client.get("/metrics")).text
    return float(next(ln for ln in text.splitlines() if ln.startswith(name + " ")).split()[1])


async def _register(api: Api, now: float) -> str:
    """Account ``a``, opened 100 s before the pinned clock."""
    body = {"account_id": api.id("a"), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": 100_000.0, "plan": "moderate", "opened_at": now - 100,
            "limits": {"max_orders_per_second": 1000}}
    r = await api.client.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    return body["account_id"]


async def _post_marks(api: Api, *marks: tuple[str, float, float]) -> httpx.Response:
    """Marks ``(instrument, bid, ts)`` with a 2-pip spread."""
    return await api.client.post("/v1/marks", json={"marks": [
        {"instrument": s, "bid": b, "ask": round(b + 0.0002, 5), "ts": ts} for s, b, ts in marks]})


async def test_a_mark_from_the_future_is_422_naming_its_ts_and_nothing_of_the_request_is_applied(pinned):
    api, settings, now = pinned
    ahead = settings.max_future_seconds
    acct = await _register(api, now)
    r = await _post_marks(api, ("EURUSD", 1.10000, now - 10))
    assert r.json()["applied"] == 1
    await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020, ts=now - 9)
    before = await account_state(api, acct)

    # a good EURUSD mark and, after it, a USDJPY mark just outside the horizon
    r = await _post_marks(api, ("EURUSD", 1.20000, now - 1), ("USDJPY", 150.0, now + ahead + 0.001))
    assert errors(r) == [(["body", "marks", 1, "ts"], "mark_in_future")]
    assert f"{ahead:g} s" in r.json()["detail"][0]["msg"]
    assert await account_state(api, acct) == before
    # the EURUSD mark of the refused request was not applied: an older one is still fresh
    r = await _post_marks(api, ("EURUSD", 1.10100, now - 2))
    assert r.status_code == 200 and r.json()["applied"] == 1 and r.json()["stale"] == 0
    assert (await api.view(acct))["positions"][0]["mark_price"] == pytest.approx(1.10100)

    # far future, and every offending mark is named
    r = await _post_marks(api, ("EURUSD", 1.1, 4e9), ("XAUUSD", 2300.0, now), ("USDJPY", 150.0, 1e300))
    assert errors(r) == [(["body", "marks", 0, "ts"], "mark_in_future"),
                         (["body", "marks", 2, "ts"], "mark_in_future")]
    # just inside the horizon is accepted, and so is a mark without ts (server clock)
    r = await _post_marks(api, ("USDJPY", 150.0, now + ahead))
    assert r.status_code == 200 and r.json()["applied"] == 1, r.text
    r = await api.client.post("/v1/marks", json={"marks": [{"instrument": "XAUUSD", "bid": 2300.0, "ask": 2300.5}]})
    assert r.status_code == 200 and r.json()["applied"] == 1
    assert await _metric(api, "riskactors_marks_applied_total") == 4


async def test_a_stale_mark_is_ignored_and_counted_and_historic_marks_are_applied(pinned):
    api, _, now = pinned
    # years old: the first marks of their instruments (a replay) are applied
    r = await _post_marks(api, ("EURUSD", 1.05000, 1_577_836_800.0), ("XAUUSD", 1500.0, 1_577_836_800.0))
    # nothing is held yet: the marks go to no host
    assert r.status_code == 200 and r.json() == {"received": 2, "applied": 2, "stale": 0, "breaches": [], "breach_count": 0, "breaches_by_code": {}, "hosts": 0, "revalued": 0}
    acct = await _register(api, now)
    r = await _post_marks(api, ("EURUSD", 1.10000, now - 5))
    assert r.json()["applied"] == 1
    await api.fill(acct, "EURUSD", "buy", 1.0, 1.10020, ts=now - 4)
    before = await account_state(api, acct)

    r = await _post_marks(api, ("EURUSD", 1.00000, now - 60))
    assert r.status_code == 200 and r.json() == {"received": 1, "applied": 0, "stale": 1, "breaches": [], "breach_count": 0, "breaches_by_code": {}, "hosts": 1, "revalued": 0}
    assert await account_state(api, acct) == before  # a 1,000 loss was not taken
    assert (await api.view(acct))["positions"][0]["mark_price"] == pytest.approx(1.10000)

    r = await _post_marks(api, ("EURUSD", 1.00000, now - 50), ("EURUSD", 1.10050, now - 3))
    assert r.json() == {"received": 2, "applied": 1, "stale": 1, "breaches": [], "breach_count": 0, "breaches_by_code": {}, "hosts": 1, "revalued": 1}
    assert (await api.view(acct))["positions"][0]["mark_price"] == pytest.approx(1.10050)
    metrics = (await api.client.get("/metrics")).text
    assert "riskactors_marks_stale_total 2.0" in metrics
    assert "riskactors_marks_applied_total 4.0" in metrics
