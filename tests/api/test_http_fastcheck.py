"""The plain pre-trade check is answered by ``api/fastcheck.py`` without FastAPI's routing; its
answers must be the route's. The same requests go to the app with the fast path and to the app
without it (``RISKACTORS_FAST_CHECK=false``), over one deployment: status, body and the
``Retry-After`` header must be equal, and the fast path must have answered the plain ones
itself (and only those)."""

from __future__ import annotations

import json
import math
import re

import httpx
import pytest
from httpkit import fresh_ts

from api import create_app
from api import fastcheck as fastcheck_module
from api.auth import hash_key
from riskactors.settings import ApiKey

pytestmark = pytest.mark.anyio

KEYS = {"router": "router-fast-0123456789abcdef", "ops": "ops-fast-0123456789abcdef",
        "admin": "admin-fast-0123456789abcdef"}
API_KEYS = [ApiKey(name=f"{role}-desk", role=role, sha256=hash_key(key)) for role, key in KEYS.items()]


@pytest.fixture(scope="module")
def apps(sharded_deployment):
    settings, runtime = sharded_deployment
    return [create_app(settings.model_copy(update={"api_keys": API_KEYS, "fast_check": fast}), runtime.service)
            for fast in (True, False)]


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://riskactors.test", timeout=60)


def _same(body):
    """``body`` with the wall-clock instant a future-``ts`` message quotes masked (it moves
    between the two requests)."""
    text = json.dumps(body)
    return json.loads(re.sub(r"wall clock \([0-9.]+\)", "wall clock (…)", text))


def _h(role: str | None = "router", **extra) -> dict:
    out = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
    return {**out, **extra}


async def test_the_fast_path_answers_as_the_route_does(apps, uid, monkeypatch):
    answered: list[bool] = []
    original = fastcheck_module.FastCheckMiddleware._answer

    async def spy(self, scope, body, send):
        done = await original(self, scope, body, send)
        answered.append(done)
        return done

    monkeypatch.setattr(fastcheck_module.FastCheckMiddleware, "_answer", spy)
    fast, slow = (_client(a) for a in apps)
    async with fast, slow:
        acct = f"{uid}-fast"
        r = await slow.post("/v1/accounts", headers=_h("admin"), json={
            "account_id": acct, "user_id": f"{uid}-u", "challenge_id": f"{uid}-c", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "limits": {"max_orders_per_second": 1_000}})
        assert r.status_code == 201, r.text
        ts = fresh_ts()
        r = await slow.post("/v1/marks", headers=_h(), json={"marks": [
            {"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002, "ts": ts}]})
        assert r.status_code == 200

        def order(n: str, **over):
            return {"order_id": f"{uid}-{n}", "account_id": acct, "instrument": "EURUSD", "side": "buy",
                    "quantity": 0.1, **over}

        cases = [  # (name, headers, json body or raw bytes, taken by the fast path?)
            ("accept", _h(), order("o1"), True),
            ("reject, too large", _h(), order("o2", quantity=50.0), True),
            ("admin key", _h("admin"), order("o3"), True),
            ("with ts", _h(), order("o4", ts=ts), True),
            ("iso ts", _h(), order("o5", ts="2030-01-01T00:00:00Z"), False),  # in the future: 422
            ("unknown account", _h(), order("o6", account_id=f"{uid}-nobody"), False),
            ("unknown field", _h(), order("o7", colour="red"), False),
            ("missing field", _h(), {k: v for k, v in order("o8").items() if k != "side"}, False),
            ("zero quantity", _h(), order("o9", quantity=0), False),
            ("nan", _h(), (b'{"order_id": "x", "account_id": "y", "instrument": "EURUSD", "side": "buy", '
                          b'"quantity": NaN}'), False),
            ("not json", _h(), b"{", False),
            ("no key", _h(None), order("o10"), False),
            ("ops key", _h("ops"), order("o11"), False),
            ("idempotency key", _h(**{"Idempotency-Key": f"{uid}-k"}), order("o12"), None),
        ]
        for name, headers, body, taken in cases:
            answered.clear()
            kw = {"content": body, "headers": {**headers, "content-type": "application/json"}} if isinstance(
                body, bytes) else {"json": body, "headers": headers}
            a = await fast.post("/v1/orders/check", **kw)
            fast_taken = answered == [True]
            b = await slow.post("/v1/orders/check", **kw)  # the same order again: the recorded answer
            assert (a.status_code, _same(a.json()), a.headers.get("retry-after")) == (
                b.status_code, _same(b.json()), b.headers.get("retry-after")), name
            if taken is not None:
                assert fast_taken is taken, name
        # the fast path keeps the route's metrics
        text = (await fast.get("/metrics")).text
        accepted = [ln for ln in text.splitlines() if ln.startswith('riskactors_order_checks_total{decision="accept"}')]
        assert accepted and float(accepted[0].split()[-1]) >= 3 and not math.isnan(float(accepted[0].split()[-1]))


async def test_a_body_over_the_limit_and_msgpack_take_the_route(apps, uid):
    import msgpack

    fast, _ = apps
    async with _client(fast) as c:
        big = b'{"order_id": "' + b"x" * (2 * 1_048_576) + b'"}'
        r = await c.post("/v1/orders/check", content=big, headers={**_h(), "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["detail"]["code"] == "PAYLOAD_TOO_LARGE"
        body = msgpack.packb({"order_id": f"{uid}-m", "account_id": f"{uid}-none", "instrument": "EURUSD",
                              "side": "buy", "quantity": 0.1})
        r = await c.post("/v1/orders/check", content=body, headers={**_h(), "content-type": "application/msgpack"})
        assert r.status_code == 404
