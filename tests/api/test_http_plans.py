"""Plans (rule packs) over HTTP: a new plan is a draft at version 1, cannot be bound until it
is activated, a second POST of the same id is version 2, activating it supersedes version 1,
and an account moves to it only by an explicit, recorded ``PUT /v1/accounts/{id}/plan``.
Invalid plan documents are 422s whose ``detail[0].loc`` names the field; unknown ids are 404
on the plan routes and a 422 naming ``plan`` where a request body carries the id."""

from __future__ import annotations

import pytest
from httpkit import locs

pytestmark = pytest.mark.anyio

# Version 1 and 2 of the test plan. Fractions resolve against the initial balance (50,000 here):
# v1 daily loss 0.01 -> 500, max loss 0.05 -> 2,500; v2 daily loss 0.02 -> 1,000, 3 lots.
RULES_V1 = {"max_leverage": 10, "account_leverage": 100, "max_position_lots": 2, "max_open_positions": 5,
            "daily_loss_limit_fraction": 0.01, "max_loss_limit_fraction": 0.05, "max_loss_mode": "static",
            "max_orders_per_second": 1000}
RULES_V2 = {**RULES_V1, "max_position_lots": 3, "daily_loss_limit_fraction": 0.02}
BALANCE = 50_000.0


async def _post_plan(api, plan_id: str, rules: dict, **texts) -> dict:
    r = await api.client.post("/v1/plans", json={"id": plan_id, "rules": rules, **texts})
    assert r.status_code == 201, r.text
    return r.json()


async def _versions(api, plan_id: str) -> list[dict]:
    r = await api.client.get(f"/v1/plans/{plan_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def _listed(api, plan_id: str) -> dict:
    r = await api.client.get("/v1/plans")
    assert r.status_code == 200, r.text
    found = [p for p in r.json() if p["id"] == plan_id]
    assert len(found) == 1, r.json()
    return found[0]


def _account_body(api, name: str, plan: str, **extra) -> dict:
    return {"account_id": api.id(name), "user_id": api.id("u1"), "challenge_id": api.id("c1"), "currency": "USD",
            "initial_balance": BALANCE, "plan": plan, **extra}


async def test_plan_versions_go_draft_active_superseded_and_an_account_is_rebound_explicitly(api):
    pid = api.id("plan")
    acct = api.id("a")

    # -- version 1: a draft, visible, not bindable
    v1 = await _post_plan(api, pid, RULES_V1, name="Test plan", description="two versions", source="test suite")
    assert v1 == {"plan_id": pid, "version": 1, "status": "draft", "name": "Test plan",
                  "description": "two versions", "source": "test suite", "rules": RULES_V1,
                  "created_at": v1["created_at"], "activated_at": None, "superseded_at": None}
    assert v1["created_at"] > 0
    assert await _versions(api, pid) == [v1]
    assert await _listed(api, pid) == {"id": pid, "name": "Test plan", "active_version": None, "latest_version": 1,
                                       "statuses": [{"version": 1, "status": "draft"}]}

    r = await api.client.post("/v1/accounts", json=_account_body(api, "a", pid))
    assert r.status_code == 409, r.text
    assert r.json()["detail"]["code"] == "PLAN_CONFLICT" and r.json()["detail"]["subject"] == pid
    assert "no active version" in r.json()["detail"]["message"]
    # an existing account cannot be bound to the draft either
    await api.register("other", balance=BALANCE)
    r = await api.client.put(f"/v1/accounts/{api.id('other')}/plan", json={"plan": pid, "reason": "too early"})
    assert r.status_code == 409 and r.json()["detail"]["code"] == "PLAN_CONFLICT", r.text
    assert (await api.view(api.id("other")))["plan"] == "moderate"

    # -- activate (no body: the latest draft)
    r = await api.client.post(f"/v1/plans/{pid}/activate")
    assert r.status_code == 200, r.text
    active1 = r.json()
    assert active1["status"] == "active" and active1["version"] == 1
    assert active1["activated_at"] >= v1["created_at"] and active1["superseded_at"] is None
    # activating the active version again changes nothing; "the latest draft" no longer exists
    r = await api.client.post(f"/v1/plans/{pid}/activate", json={"version": 1})
    assert r.status_code == 200 and r.json() == active1, r.text
    r = await api.client.post(f"/v1/plans/{pid}/activate")
    assert r.status_code == 409 and r.json()["detail"]["code"] == "PLAN_CONFLICT", r.text
    assert "no draft" in r.json()["detail"]["message"]

    # -- accounts bind to version 1; its fractions resolve against the initial balance
    r = await api.client.post("/v1/accounts", json=_account_body(api, "a", pid))
    assert r.status_code == 201, r.text
    view = r.json()
    assert view["plan"] == pid and view["plan_version"] == 1
    limits = view["limits"]
    assert limits["daily_loss_limit"] == pytest.approx(500.0) and limits["max_loss_limit"] == pytest.approx(2_500.0)
    assert limits["max_position_lots"] == 2 and limits["max_orders_per_second"] == 1000
    # account "b" carries an override of the plan's 2 lots
    r = await api.client.post("/v1/accounts", json=_account_body(api, "b", pid, limits={"max_position_lots": 1}))
    assert r.status_code == 201 and r.json()["limits"]["max_position_lots"] == 1, r.text

    # -- version 2: a draft again (name inherited), not bindable while a draft
    v2 = await _post_plan(api, pid, RULES_V2)
    assert (v2["plan_id"], v2["version"], v2["status"]) == (pid, 2, "draft")
    assert v2["name"] == "Test plan" and v2["description"] == "two versions" and v2["rules"] == RULES_V2
    r = await api.client.put(f"/v1/accounts/{acct}/plan", json={"plan": pid, "version": 2, "reason": "draft"})
    assert r.status_code == 409 and r.json()["detail"]["code"] == "PLAN_CONFLICT", r.text
    assert "version 2 is draft" in r.json()["detail"]["message"]

    r = await api.client.post(f"/v1/plans/{pid}/activate", json={"version": 2})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active" and r.json()["version"] == 2
    history = await _versions(api, pid)
    assert [(v["version"], v["status"]) for v in history] == [(1, "superseded"), (2, "active")]
    assert history[0]["superseded_at"] is not None and history[0]["rules"] == RULES_V1
    assert await _listed(api, pid) == {"id": pid, "name": "Test plan", "active_version": 2, "latest_version": 2,
                                       "statuses": [{"version": 1, "status": "superseded"},
                                                    {"version": 2, "status": "active"}]}
    # a superseded version cannot come back, nor be bound by a new account
    r = await api.client.post(f"/v1/plans/{pid}/activate", json={"version": 1})
    assert r.status_code == 409 and "superseded" in r.json()["detail"]["message"], r.text
    r = await api.client.post("/v1/accounts", json=_account_body(api, "late", pid, plan_version=1))
    assert r.status_code == 409 and r.json()["detail"]["code"] == "PLAN_CONFLICT", r.text

    # an account keeps its version until it is rebound
    assert (await api.view(acct))["plan_version"] == 1

    # -- explicit rebind to the active version (default), recorded with before and after
    r = await api.client.put(f"/v1/accounts/{acct}/plan",
                             json={"plan": pid, "reason": "move the cohort to v2", "by": "ops-test"})
    assert r.status_code == 200, r.text
    rebound = r.json()
    assert rebound["plan"] == pid and rebound["plan_version"] == 2
    assert rebound["limits"]["daily_loss_limit"] == pytest.approx(1_000.0)
    assert rebound["limits"]["max_position_lots"] == 3
    assert rebound["limits"]["max_orders_per_second"] == 1000
    assert rebound["balance"] == BALANCE and rebound["status"] == "active"
    again = await api.view(acct)
    assert (again["plan_version"], again["limits"]) == (2, rebound["limits"])

    events = (await api.client.get(f"/v1/accounts/{acct}/events")).json()["events"]
    bound = [e for e in events if e["type"] == "plan_bound"]
    assert len(bound) == 1, [e["type"] for e in events]
    ev = bound[0]
    assert ev["by"] == "ops-test" and ev["reason"] == "move the cohort to v2"
    assert (ev["before"]["plan"], ev["before"]["version"]) == (pid, 1)
    assert (ev["after"]["plan"], ev["after"]["version"]) == (pid, 2)
    assert ev["before"]["limits"]["daily_loss_limit"] == pytest.approx(500.0)
    assert ev["after"]["limits"]["daily_loss_limit"] == pytest.approx(1_000.0)

    # -- keep_overrides: true keeps "b"'s 1 lot on top of v2, false drops it for the plan's 3
    b = api.id("b")
    r = await api.client.put(f"/v1/accounts/{b}/plan", json={"plan": pid, "version": 2, "reason": "keep"})
    assert r.status_code == 200, r.text
    assert r.json()["plan_version"] == 2 and r.json()["limits"]["max_position_lots"] == 1
    assert r.json()["limits"]["daily_loss_limit"] == pytest.approx(1_000.0)
    r = await api.client.put(f"/v1/accounts/{b}/plan",
                             json={"plan": pid, "keep_overrides": False, "reason": "reset overrides"})
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["max_position_lots"] == 3
    # the plan's max_orders_per_second (1000) is what "b" has without overrides
    assert r.json()["limits"]["max_orders_per_second"] == 1000


@pytest.mark.parametrize("deployment", ["sharded"], indirect=True)
@pytest.mark.parametrize(("rules", "extra", "loc"), [
    ({**RULES_V1, "max_loss_limit_fraction": 1.5}, {}, ["body", "rules", "max_loss_limit_fraction"]),
    ({**RULES_V1, "max_loss_limit_fraction": 0}, {}, ["body", "rules", "max_loss_limit_fraction"]),
    ({**RULES_V1, "max_lots": 3}, {}, ["body", "rules", "max_lots"]),
    ({**RULES_V1, "daily_loss_limit": 100}, {}, ["body", "rules", "daily_loss_limit_fraction"]),
    ({**RULES_V1, "max_loss_mode": "sideways"}, {}, ["body", "rules", "max_loss_mode"]),
    ({**RULES_V1, "max_leverage": None}, {}, ["body", "rules", "max_leverage"]),
    ({**RULES_V1, "max_open_positions": 0}, {}, ["body", "rules", "max_open_positions"]),
    ({**RULES_V1, "weekly_close": "Someday 25:00"}, {}, ["body", "rules", "weekly_close"]),
    (RULES_V1, {"id": "bad id!"}, ["body", "id"]),
    (RULES_V1, {"id": "x" * 65}, ["body", "id"]),
    (RULES_V1, {"version": 3}, ["body", "version"]),
    (None, {}, ["body", "rules"]),
], ids=["fraction-above-1", "fraction-zero", "unknown-rule", "fraction-and-amount", "bad-enum",
        "null-required-rule", "zero-positions", "bad-weekly-close", "id-pattern", "id-too-long", "extra-key",
        "missing-rules"])
async def test_an_invalid_plan_is_a_422_naming_the_field_and_creates_nothing(api, rules, extra, loc):
    pid = api.id("bad")
    body = {"id": pid, **extra}
    if rules is not None:
        body["rules"] = rules
    r = await api.client.post("/v1/plans", json=body)
    assert locs(r)[0] == loc, r.json()
    assert r.json()["detail"][0]["msg"]
    r = await api.client.get(f"/v1/plans/{pid}")
    assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_PLAN", r.text


@pytest.mark.parametrize("deployment", ["sharded"], indirect=True)
async def test_unknown_plan_ids_are_404_on_plan_routes_and_422_naming_plan_in_bodies(api):
    missing = api.id("no-such-plan")
    r = await api.client.get(f"/v1/plans/{missing}")
    assert r.status_code == 404, r.text
    assert r.json()["detail"] == {"code": "UNKNOWN_PLAN", "subject": missing, "message": "unknown plan"}
    r = await api.client.post(f"/v1/plans/{missing}/activate")
    assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_PLAN", r.text

    r = await api.client.post("/v1/accounts", json=_account_body(api, "a", missing))
    assert locs(r) == [["body", "plan"]]
    assert missing in r.json()["detail"][0]["msg"] and "moderate" in r.json()["detail"][0]["msg"]
    assert (await api.client.get(f"/v1/accounts/{api.id('a')}")).status_code == 404

    await api.register("b")
    b = api.id("b")
    r = await api.client.put(f"/v1/accounts/{b}/plan", json={"plan": missing, "reason": "typo"})
    assert locs(r) == [["body", "plan"]]
    # a known plan without such a version is a 404; a version 0 a 422
    r = await api.client.put(f"/v1/accounts/{b}/plan", json={"plan": "moderate", "version": 7, "reason": "x"})
    assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_PLAN", r.text
    r = await api.client.put(f"/v1/accounts/{b}/plan", json={"plan": "moderate", "version": 0, "reason": "x"})
    assert locs(r) == [["body", "version"]]
    r = await api.client.put(f"/v1/accounts/{b}/plan", json={"plan": "moderate"})
    assert locs(r) == [["body", "reason"]]
    r = await api.client.post(f"/v1/plans/{missing}/activate", json={"version": 0})
    assert locs(r) == [["body", "version"]]
    # an unknown account is a 404
    r = await api.client.put(f"/v1/accounts/{api.id('ghost')}/plan", json={"plan": "moderate", "reason": "x"})
    assert r.status_code == 404 and r.json()["detail"]["code"] == "UNKNOWN_ACCOUNT", r.text
    assert (await api.view(b))["plan"] == "moderate"


@pytest.mark.parametrize("deployment", ["sharded"], indirect=True)
async def test_shipped_presets_are_active_version_1_and_resolve_fractions_per_account(api):
    listed = {p["id"]: p for p in (await api.client.get("/v1/plans")).json()}
    for preset in ("conservative", "moderate", "aggressive", "two_step_phase1", "two_step_phase2",
                   "one_step_trailing", "funded"):
        assert listed[preset]["active_version"] == 1, listed[preset]
        assert listed[preset]["statuses"][0] == {"version": 1, "status": "active"}
    funded = await _versions(api, "funded")
    assert len(funded) == 1 and funded[0]["status"] == "active"
    assert funded[0]["rules"]["news_blackout_minutes"] == 2 and funded[0]["rules"]["stop_loss_required"] is True
    assert "FTMO" in funded[0]["source"]

    view = await api.register("p1", plan="two_step_phase1", balance=200_000.0)
    assert view["plan"] == "two_step_phase1" and view["plan_version"] == 1
    limits = view["limits"]
    # 5 % and 10 % of 200,000; 10 % profit target; 4 days
    assert limits["daily_loss_limit"] == pytest.approx(10_000.0)
    assert limits["max_loss_limit"] == pytest.approx(20_000.0)
    assert limits["profit_target"] == pytest.approx(20_000.0) and limits["min_trading_days"] == 4
    assert limits["trading_day_timezone"] == "Europe/Prague"
    assert view["objectives"]["profit_target"] == {"target": pytest.approx(20_000.0), "profit": 0.0, "met": False}
    assert view["objectives"]["min_trading_days"] == {"required": 4, "days": 0, "met": False}
