"""User, challenge and firm kill switches are logged by the host and applied to each account
when it is next touched (``riskactors.actors.scopeswitches``); the result must be the host that
visited every account in the switch's own call. Hypothesis drives switches at every scope,
registrations while switches are in force, checks, fills, marks, time and reads against both;
every answer and every account's state must be equal."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unitkit import T0

from riskactors.actors import AccountHost
from riskactors.actors.scopeswitches import matches
from riskactors.domain import KillSwitch, account_to_state, default_plan_registry


class _Eager(AccountHost):
    """The reference: a scope switch visits every account of its scope in its own call."""

    def set_kill_switch(self, switch, account_ids, now, audit=None):
        self._move_clock(now)
        sw = KillSwitch.from_dict(switch)
        targets = [a for a in self._targets(None) if matches(a, str(sw.scope), sw.scope_id)]
        for a in targets:
            a.set_kill_switch(sw, now)
        return len(targets)

    def release_kill_switch(self, scope, scope_id, reason, by, account_ids, now, audit=None):
        self._move_clock(now)
        return sum(1 for a in self._targets(None)
                   if matches(a, scope, scope_id) and a.release_kill_switch(scope, scope_id, reason, by, now))


_LIMITS = default_plan_registry().resolve("moderate", None, 10_000.0, {"max_orders_per_second": 1_000})[1].to_dict()
_SCOPES = [("firm", None), ("challenge", "c1"), ("challenge", "c2"), ("user", "u1"), ("user", "u2")]
_steps = st.lists(st.one_of(
    st.tuples(st.just("set"), st.sampled_from(_SCOPES), st.sampled_from(["halt", "reduce_only"])),
    st.tuples(st.just("release"), st.sampled_from(_SCOPES)),
    st.tuples(st.just("register"), st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(["c1", "c2"])),
    st.tuples(st.just("check"), st.integers(0, 5), st.sampled_from(["buy", "sell"])),
    st.tuples(st.just("fill"), st.integers(0, 5), st.sampled_from(["buy", "sell"])),
    st.tuples(st.just("mark"), st.floats(-0.01, 0.01)),
    st.tuples(st.just("time"), st.sampled_from([5.0, 3_600.0, 90_000.0])),
    st.tuples(st.just("view"), st.integers(0, 5)),
), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps)
def test_a_lazy_host_answers_and_ends_like_an_eager_one(steps):
    hosts = [AccountHost("h"), _Eager("h")]
    in_force: dict[tuple, dict] = {}  # what the supervisor would hand a new account
    accounts: list[str] = []
    px = 1.1
    for h in hosts:
        h.apply_marks([{"instrument": "EURUSD", "bid": px, "ask": px, "ts": T0}], T0)
        for i, (user, challenge) in enumerate((("u1", "c1"), ("u2", "c1"), ("u1", "c2"))):
            h.register({"account_id": f"a{i}", "user_id": user, "challenge_id": challenge, "currency": "USD",
                        "initial_balance": 10_000.0, "plan": "moderate", "resolved_limits": _LIMITS}, [], [], T0)
    accounts.extend(["a0", "a1", "a2"])
    for n, step in enumerate(steps, 1):
        now = max(h.clock for h in hosts) + 1
        kind = step[0]
        answers = []
        for h in hosts:
            if kind == "set":
                (scope, sid), mode = step[1], step[2]
                sw = {"active": True, "scope": scope, "id": sid, "mode": mode, "reason": "r", "by": "ops",
                      "at": now, "breach": False}
                answers.append(h.set_kill_switch(sw, None, now))
            elif kind == "release":
                scope, sid = step[1]
                answers.append(h.release_kill_switch(scope, sid, "done", "ops", None, now))
            elif kind == "register":
                _, user, challenge = step
                spec = {"account_id": f"a{len(accounts)}", "user_id": user, "challenge_id": challenge,
                        "currency": "USD", "initial_balance": 10_000.0, "plan": "moderate",
                        "resolved_limits": _LIMITS}
                wanted = [sw for (scope, sid), sw in in_force.items()
                          if scope == "firm" or (scope, sid) in (("user", user), ("challenge", challenge))]
                answers.append(h.register(spec, wanted, [], now))
            elif kind in ("check", "fill") and accounts:
                acct = accounts[step[1] % len(accounts)]
                if kind == "check":
                    answers.append(h.check({"order_id": f"o{n}", "account_id": acct, "instrument": "EURUSD",
                                            "side": step[2], "quantity": 0.1, "ts": now}, now))
                else:
                    answers.append(h.fill({"fill_id": f"f{n}", "account_id": acct, "instrument": "EURUSD",
                                           "side": step[2], "quantity": 0.1, "price": px, "ts": now}, now))
            elif kind == "mark":
                mid = px * (1 + step[1])
                answers.append(h.apply_marks([{"instrument": "EURUSD", "bid": mid, "ask": mid, "ts": now}], now))
            elif kind == "time":
                answers.append(h.advance_to(h.clock + step[1]))
            elif kind == "view" and accounts:
                answers.append(h.view(accounts[step[1] % len(accounts)], now))
        if kind == "set":
            (scope, sid), mode = step[1], step[2]
            in_force[(scope, sid)] = {"active": True, "scope": scope, "id": sid, "mode": mode, "reason": "r",
                                      "by": "ops", "at": now, "breach": False}
        elif kind == "release":
            in_force.pop(step[1], None)
        elif kind == "register":
            accounts.append(f"a{len(accounts)}")
        elif kind == "mark":
            px = px * (1 + step[1])
        if len(answers) == 2:
            assert answers[0] == answers[1], (step, answers)
    lazy, eager = hosts
    assert lazy.states(None) == eager.states(None)  # every account brought up to date, then compared
    assert [account_to_state(a) for a in lazy.accounts.values()] == [
        account_to_state(a) for a in eager.accounts.values()]
    assert lazy.clock == eager.clock


def test_a_firm_switch_is_logged_in_o1_and_reaches_an_account_at_its_next_check():
    host = AccountHost("h")
    host.apply_marks([{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1, "ts": T0}], T0)
    specs = [{"account_id": f"a{i}", "user_id": f"u{i}", "challenge_id": "c1", "currency": "USD",
              "initial_balance": 10_000.0, "plan": "moderate", "resolved_limits": _LIMITS} for i in range(50)]
    host.register_many(specs, [[] for _ in specs], [], [T0] * len(specs))
    sw = {"active": True, "scope": "firm", "id": None, "mode": "halt", "reason": "incident", "by": "ops",
          "at": T0 + 1, "breach": False}
    assert host.set_kill_switch(sw, None, T0 + 1) == 50
    assert all(not a.switches for a in host.accounts.values())  # nobody visited yet
    decision = host.check({"order_id": "o1", "account_id": "a7", "instrument": "EURUSD", "side": "buy",
                           "quantity": 0.1, "ts": T0 + 2}, T0 + 2)
    assert decision["decision"] == "reject" and "KILL_SWITCH" in [r["code"] for r in decision["reasons"]]
    assert host.accounts["a7"].events[-2]["type"] == "kill_switch_set"  # recorded at the switch's instant
    assert host.accounts["a7"].events[-2]["at"] == T0 + 1
    part = host.rollup("firm", None, 3, T0 + 2)  # a read brings the scope up to date
    assert part["killed"] == 50 and host.scope_switches.log == []
    assert host.release_kill_switch("firm", None, "resolved", "ops", None, T0 + 3) == 50
    assert host.rollup("firm", None, 3, T0 + 3)["killed"] == 0
