"""The whole server process is stopped and started again on the same storage root: accounts,
positions, balances, limits, kill switches of every scope, plans, the calendar and the audit
log are reloaded from disk (both placements)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, new_storage_root, stop_process, wait_ready

BIN = Path(sys.executable).parent / "riskactors"


@contextmanager
def serve(root: str, placement: str):
    port = free_port()
    env = dict(os.environ, RISKACTORS_STORAGE_ROOT=root, RISKACTORS_PORT=str(port))
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([str(BIN), "serve", "--placement", placement, "--shards", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, base)
        with httpx.Client(base_url=base, timeout=60) as client:
            yield client
    finally:
        stop_process(proc)


def _ok(r: httpx.Response) -> dict:
    assert r.status_code < 300, f"{r.request.method} {r.request.url} → {r.status_code} {r.text[:500]}"
    return r.json()


def _seed(c: httpx.Client) -> None:
    now = time.time()
    _ok(c.post("/v1/marks", json={"marks": [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": now}]}))
    for i in range(4):
        _ok(c.post("/v1/accounts", json={"account_id": f"r{i}", "user_id": f"u{i % 2}", "challenge_id": f"c{i % 2}",
                                         "currency": "USD", "initial_balance": 10_000, "plan": "moderate",
                                         "limits": {"max_orders_per_second": 100}}))
        d = _ok(c.post("/v1/orders/check", json={"order_id": f"o{i}", "account_id": f"r{i}", "instrument": "EURUSD",
                                                 "side": "buy", "quantity": 0.2}))
        assert d["decision"] == "accept"
        _ok(c.post("/v1/fills", json={"fill_id": f"f{i}", "order_id": f"o{i}", "account_id": f"r{i}",
                                      "instrument": "EURUSD", "side": "buy", "quantity": 0.2, "price": 1.1001,
                                      "commission": -1.5}))
    _ok(c.post("/v1/fills", json={"fill_id": "close-0", "account_id": "r0", "instrument": "EURUSD", "side": "sell",
                                  "quantity": 0.2, "price": 1.1051}))
    _ok(c.post("/v1/kill-switch", json={"scope": "challenge", "id": "c1", "mode": "halt", "reason": "review",
                                        "by": "desk"}))
    _ok(c.post("/v1/kill-switch", json={"scope": "account", "id": "r2", "mode": "reduce_only", "reason": "drill",
                                        "by": "desk"}))
    _ok(c.patch("/v1/accounts/r2/limits", json={"max_open_positions": 2, "by": "admin",
                                                "reason": "tighter"}))
    _ok(c.post("/v1/plans", json={"id": "restart_plan", "name": "Restart plan",
                                  "rules": {"daily_loss_limit_fraction": 0.04, "max_loss_limit_fraction": 0.08}}))
    _ok(c.post("/v1/plans/restart_plan/activate", json={}))
    _ok(c.post("/v1/calendar", json={"events": [{"event_id": "nfp", "at": now + 86_400, "title": "NFP",
                                                 "currencies": ["USD"]}]}))


def _read(c: httpx.Client) -> dict:
    views = {}
    for i in range(4):
        v = _ok(c.get(f"/v1/accounts/r{i}"))
        views[v["account_id"]] = {k: v[k] for k in ("balance", "positions", "kill_switch", "status", "limits", "plan")}
        for p in views[v["account_id"]]["positions"]:  # a mark's age grows with the clock by itself
            p.pop("mark_age_seconds")
    firm = _ok(c.get("/v1/risk/firm"))
    return {"views": views, "accounts": firm["accounts"],
            "challenge_switches": _ok(c.get("/v1/risk/challenges/c1"))["kill_switches"],
            "plans": _ok(c.get("/v1/plans/restart_plan")), "calendar": _ok(c.get("/v1/calendar"))["events"],
            "events": len(_ok(c.get("/v1/accounts/r2/events"))["events"]),
            "audit": [(e["action"], e.get("account_id"), e.get("scope_id"), e["at"])
                      for e in _ok(c.get("/v1/audit"))["entries"]]}


@pytest.mark.timeout(420)
@pytest.mark.parametrize("placement", ["sharded", "dedicated"])
def test_state_is_reloaded_after_a_restart_of_the_whole_server(placement):
    root = new_storage_root()
    with serve(root, placement) as c:
        _seed(c)
        before = _read(c)
    with serve(root, placement) as c:
        after = _read(c)
        # and it carries on: the halted challenge still rejects, a new account registers
        d = _ok(c.post("/v1/orders/check", json={"order_id": "o9", "account_id": "r1", "instrument": "EURUSD",
                                                 "side": "buy", "quantity": 0.1}))
        assert d["decision"] == "reject" and "KILL_SWITCH" in [r["code"] for r in d["reasons"]]
        _ok(c.post("/v1/accounts", json={"account_id": "r9", "user_id": "u9", "challenge_id": "c1",
                                         "currency": "USD", "initial_balance": 10_000, "plan": "restart_plan"}))
    assert after["views"] == before["views"]
    assert after["views"]["r0"]["positions"] == [] and after["views"]["r0"]["balance"] == pytest.approx(10_098.5)  # +100 − 1.50 commission
    assert after["views"]["r1"]["kill_switch"]["scope"] == "challenge"
    assert after["views"]["r2"]["kill_switch"]["mode"] == "reduce_only"
    assert after["views"]["r2"]["limits"]["max_open_positions"] == 2
    assert after["challenge_switches"] == before["challenge_switches"] != []
    assert after["plans"] == before["plans"] and after["calendar"] == before["calendar"] != []
    assert after["accounts"] == before["accounts"] == 4
    assert after["events"] == before["events"]
    assert after["audit"] == before["audit"]
    assert {"account_registered", "kill_switch_set", "limits_changed", "plan_created", "plan_activated",
            "calendar_updated"} <= {a for a, *_ in after["audit"]}
