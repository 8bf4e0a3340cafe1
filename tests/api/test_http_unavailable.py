"""Fail closed: when a host cannot be reached every endpoint answers 503 (never 500), and an
order check is a ``reject`` with ``SERVICE_UNAVAILABLE``. No Ray: the service's transport is a
fake whose every call raises ``ShardUnavailable``."""

from __future__ import annotations

import httpx
import pytest

from api import create_app
from riskactors.actors.service import RiskService
from riskactors.exceptions import ShardUnavailable
from riskactors.settings import Settings

pytestmark = pytest.mark.anyio


class DeadTransport:
    """Every call fails as a dead or timed-out actor would."""

    def __init__(self):
        self.calls: list[str] = []

    async def call(self, target, method, *args, timeout=None):
        self.calls.append(method)
        raise ShardUnavailable(f"{method}: actor unavailable (RayActorError)")

    async def spawn_host(self, host_id, config):
        raise ShardUnavailable("cannot spawn")

    async def kill(self, target):
        return None


@pytest.fixture(params=["sharded", "dedicated"])
async def dead(request):
    transport = DeadTransport()
    shards = [object(), object()] if request.param == "sharded" else []
    service = RiskService(transport, object(), shards, request.param)
    app = create_app(Settings(), service=service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dead.test") as client:
        yield client, transport


async def test_check_fails_closed_with_503_and_service_unavailable(dead):
    client, transport = dead
    order = {"order_id": "o-1", "account_id": "acc-1", "instrument": "EURUSD", "side": "buy", "quantity": 1.0}
    r = await client.post("/v1/orders/check", json=order)
    assert r.status_code == 503
    d = r.json()
    assert d["decision"] == "reject" and d["order_id"] == "o-1" and d["account_id"] == "acc-1"
    assert [x["code"] for x in d["reasons"]] == ["SERVICE_UNAVAILABLE"]
    assert "unavailable" in d["reasons"][0]["message"] and d["risk_score"] == 100
    assert transport.calls  # the service did try
    metrics = (await client.get("/metrics")).text
    assert "riskactors_unavailable_total 1.0" in metrics


async def test_check_fails_closed_in_msgpack_too(dead):
    import msgpack

    client, _ = dead
    body = msgpack.packb({"order_id": "o-1", "account_id": "acc-1", "instrument": "EURUSD", "side": "buy",
                          "quantity": 1.0})
    r = await client.post("/v1/orders/check", content=body,
                          headers={"content-type": "application/msgpack", "accept": "application/msgpack"})
    assert r.status_code == 503 and r.headers["content-type"] == "application/msgpack"
    d = msgpack.unpackb(r.content)
    assert d["decision"] == "reject" and d["reasons"][0]["code"] == "SERVICE_UNAVAILABLE"


async def test_ready_is_503_and_health_stays_200(dead):
    client, _ = dead
    r = await client.get("/ready")
    assert r.status_code == 503 and r.json()["status"] == "unavailable"
    r = await client.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_every_other_endpoint_is_503_not_500(dead):
    client, _ = dead
    calls = [
        ("post", "/v1/accounts", {"account_id": "a", "user_id": "u", "challenge_id": "c", "currency": "USD",
                                  "initial_balance": 1000, "plan": "moderate"}),
        ("get", "/v1/accounts/a", None),
        ("get", "/v1/accounts/a/events", None),
        ("patch", "/v1/accounts/a/limits", {"max_position_lots": 1}),
        ("post", "/v1/orders/o-1/cancel", {"account_id": "a"}),
        ("post", "/v1/orders/o-1/cancel", None),
        ("post", "/v1/fills", {"fill_id": "f", "account_id": "a", "instrument": "EURUSD", "side": "buy",
                               "quantity": 1, "price": 1.1}),
        ("post", "/v1/marks", {"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1002, "ts": 1.0}]}),
        ("post", "/v1/kill-switch", {"scope": "firm", "reason": "x"}),
        ("delete", "/v1/kill-switch/firm?reason=x", None),
        ("get", "/v1/risk/firm", None),
        ("get", "/v1/risk/users/u", None),
    ]
    for method, path, body in calls:
        kwargs = {"json": body} if body is not None else {}
        r = await client.request(method.upper(), path, **kwargs)
        assert r.status_code == 503, (method, path, r.status_code, r.text)
        assert r.json()["detail"]["code"] == "SERVICE_UNAVAILABLE", (method, path)
