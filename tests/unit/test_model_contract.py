"""Value objects and errors that cross the HTTP contract: stable codes and dict shapes."""

from __future__ import annotations

import pytest
from unitkit import T0, make_fill, make_order

from riskactors.domain import (
    AccountStatus,
    ConversionUnavailable,
    DecisionKind,
    DomainError,
    DuplicateAccount,
    FillConflict,
    KillMode,
    KillScope,
    KillSwitch,
    OrderConflict,
    ReasonCode,
    Side,
    UnknownAccount,
    UnknownInstrument,
    UnknownOrder,
    WarningCode,
)
from riskactors.domain.views import account_summary


def test_reason_codes_are_stable_strings():
    assert {c.value for c in ReasonCode} >= {
        "KILL_SWITCH", "ACCOUNT_NOT_ACTIVE", "UNKNOWN_INSTRUMENT", "NO_PRICE", "NO_CONVERSION_RATE", "INVALID_ORDER",
        "MAX_POSITION_SIZE", "MAX_OPEN_POSITIONS", "MAX_LEVERAGE", "INSUFFICIENT_MARGIN", "DAILY_LOSS_LIMIT",
        "MAX_LOSS_LIMIT", "ORDER_RATE_LIMIT"}
    assert {c.value for c in ReasonCode} >= {
        "STOP_LOSS_REQUIRED", "TAKE_PROFIT_REQUIRED", "MAX_RISK_PER_TRADE", "MAX_DAILY_TRADES", "COOLDOWN",
        "NEWS_BLACKOUT", "WEEKEND_HOLDING", "HEDGING_ACROSS_ACCOUNTS", "HFT_LIMIT", "TIME_LIMIT", "STALE_PRICE"}
    assert {c.value for c in WarningCode} == {"LEVERAGE_WARNING", "MARGIN_WARNING", "DAILY_LOSS_WARNING",
                                              "MAX_LOSS_WARNING", "WEEKEND_HOLDING_WARNING", "HFT_WARNING",
                                              "HEDGING_ACROSS_ACCOUNTS_WARNING", "STALE_PRICE_WARNING"}
    assert str(ReasonCode.MAX_LEVERAGE) == "MAX_LEVERAGE"
    assert Side.BUY.sign == 1 and Side.SELL.sign == -1
    assert {s.value for s in AccountStatus} == {"active", "passed", "failed", "disabled"}


def test_decision_to_dict_shape(account, marks):
    d = account.check(make_order(quantity=1.01), marks, T0)
    out = d.to_dict()
    assert set(out) == {"order_id", "account_id", "decision", "reasons", "warnings", "risk_score", "reduces_position"}
    assert out["decision"] == str(DecisionKind.REJECT)
    assert set(out["reasons"][0]) == {"code", "limit", "value", "message"}
    assert type(out["reasons"][0]["code"]) is str


def test_kill_switch_round_trips_through_its_dict():
    sw = KillSwitch(KillScope.CHALLENGE, "ch-1", KillMode.REDUCE_ONLY, "drawdown", "ops", T0, breach=True)
    d = sw.to_dict()
    assert d["active"] is True and d["scope"] == "challenge" and d["mode"] == "reduce_only"
    assert KillSwitch.from_dict(d) == sw


@pytest.mark.parametrize("cls,code", [(UnknownAccount, "UNKNOWN_ACCOUNT"), (UnknownOrder, "UNKNOWN_ORDER"),
                                      (UnknownInstrument, "UNKNOWN_INSTRUMENT"), (DuplicateAccount, "DUPLICATE_ACCOUNT"),
                                      (OrderConflict, "ORDER_CONFLICT"), (FillConflict, "FILL_CONFLICT"),
                                      (ConversionUnavailable, "NO_CONVERSION_RATE")])
def test_domain_errors_carry_a_stable_code_and_subject(cls, code):
    err = cls("x-1", "what happened")
    assert isinstance(err, DomainError)
    assert err.to_dict() == {"code": code, "subject": "x-1", "message": "what happened"}
    assert "x-1" in str(err)


def test_account_summary_figures(account, marks):
    account.apply_fill(make_fill(quantity=0.5, price=1.0, commission=-100), marks, T0)
    s = account_summary(account, marks)
    assert s["account_id"] == "acc-1" and s["user_id"] == "user-1" and s["challenge_id"] == "ch-1"
    assert s["balance"] == pytest.approx(9_900) and s["daily_pnl"] == pytest.approx(-100)
    assert s["breached"] is False and s["killed"] is False
    # headroom: min((9,900 - 9,500) / 500, (9,900 - 8,000) / 2,000) = 0.8
    assert s["breach_headroom"] == pytest.approx(0.8)
    assert s["exposure"]["EURUSD"]["net_lots"] == 0.5
    assert s["exposure"]["EURUSD"]["gross_notional_quote"] == pytest.approx(50_000)
