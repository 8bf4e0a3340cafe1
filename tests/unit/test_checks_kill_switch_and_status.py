"""KILL_SWITCH in every scope (halt vs reduce_only) and ACCOUNT_NOT_ACTIVE (failed vs disabled)."""

from __future__ import annotations

import pytest
from unitkit import T0, accepted, codes, make_account, make_fill, make_order, reason

from riskactors.domain import AccountStatus, KillMode, KillScope, KillSwitch, ReasonCode

SCOPES = [(KillScope.ACCOUNT, "acc-1"), (KillScope.USER, "user-1"), (KillScope.CHALLENGE, "ch-1"),
          (KillScope.FIRM, None)]


def _long_account(marks, lots: float = 0.5):
    acct = make_account()
    acct.apply_fill(make_fill(quantity=lots, price=1.0), marks, T0)
    return acct


def _switch(scope, scope_id, mode=KillMode.HALT):
    return KillSwitch(scope, scope_id, mode, "ops review", "alice", T0)


@pytest.mark.parametrize("scope,scope_id", SCOPES)
def test_halt_switch_in_each_scope_rejects_a_new_order_kill_switch_naming_the_scope(marks, scope, scope_id):
    acct = make_account()
    acct.set_kill_switch(_switch(scope, scope_id), T0)
    d = acct.check(make_order(), marks, T0)
    assert codes(d) == [ReasonCode.KILL_SWITCH]
    msg = reason(d, ReasonCode.KILL_SWITCH).message
    assert str(scope) in msg
    if scope_id is not None:
        assert scope_id in msg
    assert "halt" in msg and "ops review" in msg and "alice" in msg


@pytest.mark.parametrize("scope,scope_id", SCOPES)
def test_halt_switch_in_each_scope_rejects_even_a_reducing_order(marks, scope, scope_id):
    acct = _long_account(marks)
    acct.set_kill_switch(_switch(scope, scope_id), T0)
    d = acct.check(make_order(side="sell", quantity=0.5), marks, T0)
    assert d.reduces_position
    assert codes(d) == [ReasonCode.KILL_SWITCH]


@pytest.mark.parametrize("scope,scope_id", SCOPES)
def test_reduce_only_switch_in_each_scope_accepts_reducing_and_rejects_increasing(marks, scope, scope_id):
    acct = _long_account(marks)
    acct.set_kill_switch(_switch(scope, scope_id, KillMode.REDUCE_ONLY), T0)
    closing = acct.check(make_order(side="sell", quantity=0.5), marks, T0)
    assert closing.accepted and closing.reduces_position
    adding = acct.check(make_order(side="buy", quantity=0.01), marks, T0)
    assert codes(adding) == [ReasonCode.KILL_SWITCH]
    assert "reduce_only" in adding.reasons[0].message


def test_reduce_only_switch_rejects_a_new_instrument(marks):
    acct = make_account()
    acct.set_kill_switch(_switch(KillScope.USER, "user-1", KillMode.REDUCE_ONLY), T0)
    assert codes(acct.check(make_order(side="sell"), marks, T0)) == [ReasonCode.KILL_SWITCH]


def test_two_active_switches_give_two_kill_switch_reasons(marks):
    acct = make_account()
    acct.set_kill_switch(_switch(KillScope.ACCOUNT, "acc-1"), T0)
    acct.set_kill_switch(_switch(KillScope.FIRM, None), T0)
    d = acct.check(make_order(), marks, T0)
    assert codes(d) == [ReasonCode.KILL_SWITCH, ReasonCode.KILL_SWITCH]
    assert {("firm" in r.message and "account" not in r.message) for r in d.reasons} == {True, False}


def test_released_switch_no_longer_blocks(marks):
    acct = make_account()
    acct.set_kill_switch(_switch(KillScope.CHALLENGE, "ch-1"), T0)
    assert acct.release_kill_switch("challenge", "ch-1", "done", "alice", T0 + 1) is True
    assert acct.release_kill_switch("challenge", "ch-1", "done", "alice", T0 + 1) is False
    assert acct.check(make_order(), marks, T0 + 1).accepted


def test_effective_kill_switch_prefers_halt_over_reduce_only_and_account_over_firm(marks):
    acct = make_account()
    assert acct.effective_kill_switch()["active"] is False
    acct.set_kill_switch(_switch(KillScope.ACCOUNT, "acc-1", KillMode.REDUCE_ONLY), T0)
    acct.set_kill_switch(_switch(KillScope.FIRM, None, KillMode.HALT), T0)
    eff = acct.effective_kill_switch()
    assert eff["scope"] == "firm" and eff["mode"] == "halt"
    acct.set_kill_switch(_switch(KillScope.USER, "user-1", KillMode.HALT), T0)
    assert acct.effective_kill_switch()["scope"] == "user"


# ---------------------------------------------------------------- ACCOUNT_NOT_ACTIVE
def test_failed_account_accepts_a_reducing_order(marks):
    acct = _long_account(marks)
    acct.set_status(AccountStatus.FAILED, "ops", "breach reviewed", T0)
    d = acct.check(make_order(side="sell", quantity=0.5), marks, T0)
    assert d.accepted and d.reduces_position


def test_failed_account_rejects_an_increasing_order_account_not_active(marks):
    acct = _long_account(marks)
    acct.set_status(AccountStatus.FAILED, "ops", "breach reviewed", T0)
    d = acct.check(make_order(side="buy"), marks, T0)
    assert codes(d) == [ReasonCode.ACCOUNT_NOT_ACTIVE]
    assert "failed" in d.reasons[0].message and "reducing" in d.reasons[0].message


def test_failed_account_rejects_a_close_larger_than_the_position(marks):
    acct = _long_account(marks)
    acct.set_status(AccountStatus.FAILED, "ops", "breach reviewed", T0)
    d = acct.check(make_order(side="sell", quantity=0.51), marks, T0)
    assert not d.reduces_position
    assert codes(d) == [ReasonCode.ACCOUNT_NOT_ACTIVE]


@pytest.mark.parametrize("side,qty", [("sell", 0.5), ("sell", 0.01), ("buy", 0.01)])
def test_disabled_account_rejects_every_order_including_reducing(marks, side, qty):
    acct = _long_account(marks)
    acct.set_status(AccountStatus.DISABLED, "ops", "kyc", T0)
    d = acct.check(make_order(side=side, quantity=qty), marks, T0)
    assert codes(d) == [ReasonCode.ACCOUNT_NOT_ACTIVE]
    assert "disabled" in d.reasons[0].message


def test_reactivated_account_accepts_again(marks):
    acct = make_account()
    acct.set_status(AccountStatus.DISABLED, "ops", "kyc", T0)
    acct.set_status(AccountStatus.ACTIVE, "ops", "kyc done", T0 + 1)
    assert accepted(acct.submit(make_order(), marks, T0 + 1))
    kinds = [e["type"] for e in acct.events]
    assert kinds.count("status_changed") == 2
