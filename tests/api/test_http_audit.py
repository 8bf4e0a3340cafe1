"""The audit log over HTTP: every ops and admin action and every breach, with who, when, what,
why, before and after; filters; the Parquet export (real app, real Ray, sharded deployment)."""

from __future__ import annotations

import io
import json
import time

import httpx
import pyarrow.parquet as pq
import pytest
from httpkit import Api

from api import create_app
from api.auth import hash_key
from riskactors.settings import ApiKey

pytestmark = pytest.mark.anyio
KEYS = {"ops": "audit-ops-key-0123456789abcdef", "admin": "audit-admin-key-0123456789abcdef"}


@pytest.fixture
async def keyed(sharded_deployment, uid):
    """``Api`` over an app with an ops and an admin key; ``(api, headers by role)``."""
    settings, runtime = sharded_deployment
    keyed_settings = settings.model_copy(update={"api_keys": [ApiKey(name=f"{uid}-{r}", role=r, sha256=hash_key(k))
                                                              for r, k in KEYS.items()]})
    app = create_app(keyed_settings, runtime.service)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://riskactors.test",
                                 timeout=60, headers={"X-API-Key": KEYS["admin"]}) as client:
        yield Api(client, uid), {r: {"X-API-Key": k} for r, k in KEYS.items()}


async def _audit(api: Api, headers: dict, **params) -> list[dict]:
    r = await api.client.get("/v1/audit", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["entries"])
    return body["entries"]


async def _register(api: Api, headers: dict, name: str, **limits) -> str:
    body = {"account_id": api.id(name), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": 100_000.0, "plan": "moderate", "limits": {"max_orders_per_second": 1000, **limits}}
    r = await api.client.post("/v1/accounts", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return body["account_id"]


async def test_admin_and_ops_actions_are_recorded_with_who_why_before_and_after(keyed):
    api, h = keyed
    started = time.time()
    acct = await _register(api, h["admin"], "a")
    r = await api.client.patch(f"/v1/accounts/{acct}/limits", headers=h["admin"],
                               json={"max_open_positions": 2, "by": "jane", "reason": "tighter after review"})
    assert r.status_code == 200, r.text
    assert "audit" not in r.json()  # the before/after goes to the log, not into the view
    r = await api.client.post("/v1/kill-switch", headers=h["ops"], json={
        "scope": "user", "id": api.id("u1"), "mode": "halt", "reason": "suspicious flow", "by": "night desk"})
    assert r.status_code == 200, r.text
    r = await api.client.delete(f"/v1/kill-switch/user/{api.id('u1')}", headers=h["admin"],
                                params={"reason": "cleared", "by": "jane"})
    assert r.status_code == 200 and r.json()["released"], r.text
    r = await api.client.put(f"/v1/accounts/{acct}/status", headers=h["admin"],
                             json={"status": "disabled", "by": "jane", "reason": "KYC"})
    assert r.status_code == 200, r.text

    entries = await _audit(api, h["ops"], account_id=acct)
    assert [e["action"] for e in entries] == ["account_registered", "limits_changed", "status_changed"]
    registered, limits, status = entries
    assert registered["actor"] == f"{api.uid}-admin" and registered["role"] == "admin"
    assert registered["after"]["plan"] == "moderate" and registered["before"] is None
    assert limits["by"] == "jane" and limits["reason"] == "tighter after review"
    assert limits["before"]["max_open_positions"] == 5 and limits["after"]["max_open_positions"] == 2
    assert status["before"] == "active" and status["after"] == "disabled" and status["reason"] == "KYC"
    assert all(started - 1 <= e["at"] <= time.time() + 1 for e in entries)

    switches = [e for e in await _audit(api, h["ops"], action="kill_switch_set") if e["scope_id"] == api.id("u1")]
    assert len(switches) == 1
    sw = switches[0]
    assert (sw["actor"], sw["role"], sw["by"], sw["reason"]) == (f"{api.uid}-ops", "ops", "night desk",
                                                                 "suspicious flow")
    assert sw["before"] is None and sw["after"]["mode"] == "halt" and sw["after"]["accounts_affected"] == 1
    released = [e for e in await _audit(api, h["ops"], action="kill_switch_released")
                if e["scope_id"] == api.id("u1")]
    assert released[0]["before"]["mode"] == "halt" and released[0]["after"] == {"accounts_released": 1}


async def test_filters_by_actor_action_and_time(keyed):
    api, h = keyed
    await _register(api, h["admin"], "a")
    mid = time.time()
    await _register(api, h["admin"], "b")
    mine = await _audit(api, h["ops"], actor=f"{api.uid}-admin")
    assert [e["account_id"] for e in mine] == [api.id("a"), api.id("b")]
    assert [e["account_id"] for e in await _audit(api, h["ops"], actor=f"{api.uid}-admin", since=mid)] == [api.id("b")]
    assert [e["account_id"] for e in await _audit(api, h["ops"], actor=f"{api.uid}-admin", until=mid)] == [api.id("a")]
    assert await _audit(api, h["ops"], actor=f"{api.uid}-admin", action="plan_created") == []
    assert await _audit(api, h["ops"], account_id=api.id("nobody")) == []
    assert len(await _audit(api, h["ops"], actor=f"{api.uid}-admin", limit=1)) == 1


async def test_a_breach_is_in_the_log_with_its_reason_and_status_change(keyed):
    api, h = keyed
    acct = await _register(api, h["admin"], "loser", max_loss_limit=1_000.0, daily_loss_limit=5_000.0)
    await api.marks({"EURUSD": (1.1000, 1.1000)})
    r = await api.client.post("/v1/fills", json={"fill_id": api.fill_id(), "account_id": acct, "instrument": "EURUSD",
                                                 "side": "buy", "quantity": 1.0, "price": 1.1000})
    assert r.status_code == 200, r.text
    await api.marks({"EURUSD": (1.0880, 1.0880)})  # −1,200 USD floating: beyond the 1,000 max loss
    breaches = await _audit(api, h["ops"], account_id=acct, action="breach")
    assert len(breaches) == 1
    b = breaches[0]
    assert (b["actor"], b["code"]) == ("system", "MAX_LOSS_LIMIT") and "MAX_LOSS_LIMIT" in b["reason"]
    assert b["before"] == {"status": "active"} and b["after"]["status"] == "failed"
    assert b["details"]["limit"] == 1_000.0 and b["details"]["value"] == pytest.approx(1_200.0)


async def test_parquet_export_holds_the_same_entries(keyed):
    api, h = keyed
    acct = await _register(api, h["admin"], "a")
    await api.client.patch(f"/v1/accounts/{acct}/limits", headers=h["admin"],
                           json={"max_open_positions": 3, "by": "jane", "reason": "r"})
    r = await api.client.get("/v1/audit/export", params={"account_id": acct}, headers=h["ops"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    entries = await _audit(api, h["ops"], account_id=acct)
    assert table.column("action").to_pylist() == [e["action"] for e in entries]
    assert table.column("actor").to_pylist() == [f"{api.uid}-admin"] * 2
    row = table.to_pylist()[1]
    assert json.loads(row["after"])["max_open_positions"] == 3
    assert row["at"].timestamp() == pytest.approx(entries[1]["at"], abs=1e-6)


async def test_the_log_is_for_ops_and_admin_only(keyed):
    api, h = keyed
    assert (await api.client.get("/v1/audit", headers={"X-API-Key": "not-a-key"})).status_code == 401
    for role in ("ops", "admin"):
        assert (await api.client.get("/v1/audit", headers=h[role])).status_code == 200
