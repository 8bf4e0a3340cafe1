"""``application/msgpack`` on the order-router endpoints, both placements: the decoded msgpack
answer equals the JSON answer of the equivalent request; malformed msgpack is a 422."""

from __future__ import annotations

import msgpack
import pytest
from httpkit import aged_out, fresh_ts

pytestmark = pytest.mark.anyio

MP = "application/msgpack"
HEADERS = {"content-type": MP, "accept": MP}


async def _mp(client, path, body=None, raw: bytes | None = None):
    content = raw if raw is not None else msgpack.packb(body, use_bin_type=True)
    r = await client.post(path, content=content, headers=HEADERS)
    assert r.headers["content-type"] == MP, (r.status_code, r.headers, r.content[:200])
    return r.status_code, msgpack.unpackb(r.content, raw=False)


async def test_check_fill_and_marks_in_msgpack_equal_their_json_answers(api):
    c = api.client
    a, b = api.id("a"), api.id("b")
    await api.register("a")
    await api.register("b")

    # marks: the same batch in msgpack and in JSON gives the same answer
    ts = fresh_ts()
    marks = {"marks": [{"instrument": "EURUSD", "bid": 1.10000, "ask": 1.10020, "ts": ts},
                       {"instrument": "XAUUSD", "bid": 2300.00, "ask": 2300.50, "ts": ts}]}
    status, mp_marks = await _mp(c, "/v1/marks", marks)
    assert status == 200 and {k: v for k, v in mp_marks.items() if k not in ("hosts", "revalued")} == {
        "received": 2, "applied": 2, "stale": 0, "breaches": [], "breach_count": 0, "breaches_by_code": {}}
    js = await c.post("/v1/marks", json=marks)
    # (the same marks again revalue nobody: the hosts hold them already)
    assert js.status_code == 200 and {**js.json(), "revalued": None} == {**mp_marks, "revalued": None}

    # check: identical accounts, identical orders -> identical decisions (ids aside); and a JSON
    # retry of the msgpack order returns the very same decision
    order_a = {"order_id": api.id("oa"), "account_id": a, "instrument": "EURUSD", "side": "buy", "quantity": 1.5,
               "stop_loss": 1.0990, "ts": fresh_ts()}
    order_b = {**order_a, "order_id": api.id("ob"), "account_id": b}
    status, mp_dec = await _mp(c, "/v1/orders/check", order_a)
    assert status == 200 and mp_dec["decision"] == "accept" and mp_dec["order_id"] == order_a["order_id"]
    js_dec = (await c.post("/v1/orders/check", json=order_b)).json()
    assert {**mp_dec, "order_id": None, "account_id": None} == {**js_dec, "order_id": None, "account_id": None}
    assert (await c.post("/v1/orders/check", json=order_a)).json() == mp_dec

    # a reject travels the same way
    big = {**order_a, "order_id": api.id("big"), "quantity": 7.0, "stop_loss": None}
    status, mp_rej = await _mp(c, "/v1/orders/check", big)
    assert status == 200 and mp_rej["decision"] == "reject"
    assert [r["code"] for r in mp_rej["reasons"]] == ["MAX_POSITION_SIZE"]
    assert mp_rej["reasons"][0]["limit"] == 5.0 and mp_rej["reasons"][0]["value"] == pytest.approx(8.5)
    assert (await c.post("/v1/orders/check", json=big)).json() == mp_rej

    # fill: msgpack on a, JSON on b
    fill_a = {"fill_id": api.id("fa"), "order_id": order_a["order_id"], "account_id": a, "instrument": "EURUSD",
              "side": "buy", "quantity": 1.5, "price": 1.10020, "commission": -10.5, "ts": fresh_ts()}
    fill_b = {**fill_a, "fill_id": api.id("fb"), "order_id": order_b["order_id"], "account_id": b}
    status, mp_fill = await _mp(c, "/v1/fills", fill_a)
    assert status == 200 and mp_fill["duplicate"] is False and mp_fill["balance"] == pytest.approx(99_989.5)
    js_fill = (await c.post("/v1/fills", json=fill_b)).json()
    ignore = {"fill_id": None, "account_id": None}
    assert {**mp_fill, **ignore} == {**js_fill, **ignore}
    # the JSON retry of the msgpack fill is its duplicate
    assert (await c.post("/v1/fills", json=fill_a)).json() == {**mp_fill, "duplicate": True}
    status, again = await _mp(c, "/v1/fills", fill_a)
    assert status == 200 and again == {**mp_fill, "duplicate": True}

    # cancel in msgpack too
    d = await api.check(a, "EURUSD", "sell", 0.5)
    status, cancelled = await _mp(c, f"/v1/orders/{d['order_id']}/cancel", {"account_id": a})
    assert status == 200 and cancelled["released"] is True and cancelled["reservation"]["quantity"] == -0.5

    # JSON in, msgpack out (Accept only), and a GET answered in msgpack
    r = await c.post("/v1/orders/check", json={**order_b, "order_id": api.id("ob")},
                     headers={"accept": MP})
    assert r.headers["content-type"] == MP and msgpack.unpackb(r.content) == js_dec
    r = await c.get(f"/v1/accounts/{a}", headers={"accept": MP})
    assert r.status_code == 200 and r.headers["content-type"] == MP
    assert msgpack.unpackb(r.content)["positions"][0]["quantity"] == 1.5

    # views agree
    va, vb = await api.view(a), await api.view(b)
    for key in ("balance", "equity", "floating_pnl", "margin_used", "risk_score"):
        assert va[key] == vb[key], key
    assert aged_out(va["positions"]) == aged_out(vb["positions"])


async def test_malformed_msgpack_is_422_and_errors_come_back_in_msgpack(api):
    c = api.client
    for raw in (b"\xc1", b"\x92\x01", b"\xde\x00\x05", msgpack.packb({"a": 1}) + b"\xff"):
        status, body = await _mp(c, "/v1/orders/check", raw=raw)
        assert status == 422 and body["detail"][0]["loc"] == ["body"], raw
        assert "msgpack" in body["detail"][0]["msg"]
    # binary (non-UTF-8) values cannot become JSON: 422
    status, body = await _mp(c, "/v1/fills", raw=msgpack.packb({"fill_id": b"\x00\xff"}, use_bin_type=True))
    assert status == 422
    # a msgpack request without Accept gets JSON back
    r = await c.post("/v1/orders/check", content=b"\xc1", headers={"content-type": MP})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    # well-formed msgpack with a bad field: FastAPI's 422 naming the field, in msgpack
    status, body = await _mp(c, "/v1/orders/check", {"order_id": "x", "account_id": "y", "instrument": "EURUSD",
                                                       "side": "buy"})
    assert status == 422 and ["body", "quantity"] in [d["loc"] for d in body["detail"]]
    status, body = await _mp(c, "/v1/marks", {"marks": [{"instrument": "NOTREAL", "bid": 1, "ask": 1}]})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "marks", 0, "instrument"]
    # an unknown account: the 404 is msgpack as well
    status, body = await _mp(c, "/v1/orders/check", {"order_id": api.id("o"), "account_id": api.id("ghost"),
                                                       "instrument": "EURUSD", "side": "buy", "quantity": 1.0})
    assert status == 404 and body["detail"]["code"] == "UNKNOWN_ACCOUNT"
