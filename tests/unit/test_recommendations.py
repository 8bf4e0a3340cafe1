"""Limit-reduction recommendations (``riskactors.domain.challenge.recommendation``): raised at a day
roll after a losing streak or one large day loss, pending until ops apply or dismiss them, and
nothing changes until they are applied.

Money is USD. The ``moderate`` template has daily loss 500 and max position 5 lots; the default
reduction is 40 %, so a recommendation proposes 300 and 3 lots.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from unitkit import NY, T0, codes, make_account, make_fill, make_order, reason

from riskactors.domain import ReasonCode
from riskactors.domain.errors import RecommendationConflict, UnknownRecommendation
from riskactors.domain.views import account_view

DAY = 86_400.0
#: 17:00 New York on 2025-05-06: the roll that ends the trading day of ``T0``.
ROLL = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()


def _day(k: int) -> float:
    """Noon New York on the k-th trading day (0 = 2025-05-06)."""
    return T0 + k * DAY


def _end_of_day(k: int) -> float:
    """The roll that ends the k-th trading day."""
    return ROLL + k * DAY


def _result(acct, marks, k: int, amount: float) -> None:
    """Close a trade on trading day ``k`` with net result ``amount`` (through the commission)."""
    ts = _day(k)
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, ts=ts), marks, ts)
    acct.apply_fill(make_fill(side="sell", quantity=0.01, price=1.0, ts=ts + 600, commission=amount), marks, ts + 600)


def _pending(acct, marks, now):
    return account_view(acct, marks, now)["recommendations"]


def _losing_streak(marks, days=3, **overrides):
    """An account that lost 10 USD on each of ``days`` trading days, rolled past the last one."""
    acct = make_account(**overrides)
    for k in range(days):
        _result(acct, marks, k, -10)
    acct.on_market(marks, _end_of_day(days - 1))
    return acct


# ---------------------------------------------------------------- losing streak
def test_losing_streak_one_day_short_raises_nothing(marks):
    acct = _losing_streak(marks, days=2)
    assert acct.limits.recommendations.recommend_losing_streak_days == 3
    assert _pending(acct, marks, _end_of_day(1)) == []
    assert acct.recommendations == {}


def test_losing_streak_of_n_days_raises_one_pending_recommendation(marks):
    acct = _losing_streak(marks, days=3)
    (rec,) = _pending(acct, marks, _end_of_day(2))
    assert rec["status"] == "pending" and rec["account_id"] == "acc-1"
    assert rec["trading_day"] == "2025-05-08" and rec["created_at"] == _end_of_day(2)
    assert [r["code"] for r in rec["reasons"]] == ["LOSING_STREAK"]
    assert rec["reasons"][0]["limit"] == 3 and rec["reasons"][0]["value"] == 3
    assert rec["reduction"] == pytest.approx(0.4)
    assert rec["current"] == {"daily_loss_limit": 500, "max_position_lots": 5}
    assert rec["proposed"]["daily_loss_limit"] == pytest.approx(500 * (1 - 0.4))
    assert rec["proposed"]["max_position_lots"] == pytest.approx(3.0)
    # nothing changes until ops decide
    assert acct.limits.loss.daily_loss_limit == 500 and acct.limits.exposure.max_position_lots == 5
    assert [e["type"] for e in acct.events].count("recommendation_raised") == 1


def test_losing_streak_counter_restarts_after_a_recommendation(marks):
    acct = _losing_streak(marks, days=4)
    assert len(acct.recommendations) == 1
    assert len(_pending(acct, marks, _end_of_day(3))) == 1


def test_winning_day_breaks_the_streak(marks):
    acct = make_account()
    for k, amount in enumerate((-10, -10, +10, -10, -10)):
        _result(acct, marks, k, amount)
    acct.on_market(marks, _end_of_day(4))
    assert acct.recommendations == {}


def test_days_without_closed_results_do_not_break_the_streak(marks):
    acct = make_account()
    for k in (0, 2, 4):  # nothing closed on days 1 and 3
        _result(acct, marks, k, -10)
    acct.on_market(marks, _end_of_day(3))
    assert acct.recommendations == {}
    acct.on_market(marks, _end_of_day(4))
    assert len(_pending(acct, marks, _end_of_day(4))) == 1


def test_losing_streak_rule_off(marks):
    acct = _losing_streak(marks, days=5, recommend_losing_streak_days=None)
    assert acct.recommendations == {}


# ---------------------------------------------------------------- one day's loss
def test_day_loss_exactly_at_the_fraction_raises_nothing(marks):
    acct = make_account(recommend_losing_streak_days=None, recommend_day_loss_fraction=0.02)
    _result(acct, marks, 0, -200)  # 2 % of the 10,000 start balance
    acct.on_market(marks, _end_of_day(0))
    assert acct.recommendations == {}


def test_day_loss_beyond_the_fraction_raises_one_recommendation(marks):
    acct = make_account(recommend_losing_streak_days=None, recommend_day_loss_fraction=0.02)
    _result(acct, marks, 0, -200.01)
    assert acct.recommendations == {}  # raised at the roll, not at the close
    acct.on_market(marks, _end_of_day(0))
    (rec,) = _pending(acct, marks, _end_of_day(0))
    assert rec["trading_day"] == "2025-05-06"
    (r,) = rec["reasons"]
    assert r["code"] == "DAY_LOSS" and r["limit"] == pytest.approx(200) and r["value"] == pytest.approx(200.01)
    assert rec["proposed"]["daily_loss_limit"] == pytest.approx(300)
    assert acct.limits.loss.daily_loss_limit == 500


# ---------------------------------------------------------------- deciding
def _one_pending(marks):
    acct = _losing_streak(marks, days=3)
    (rec,) = _pending(acct, marks, _end_of_day(2))
    return acct, rec["recommendation_id"]


def test_applying_a_recommendation_sets_the_proposed_limits(marks):
    acct, rec_id = _one_pending(marks)
    before = acct.limits
    now = _end_of_day(2) + 60
    out = acct.decide_recommendation(rec_id, apply=True, by="ops-1", reason="three losing days", now=now)
    assert out["status"] == "applied" and out["decided_by"] == "ops-1" and out["decided_at"] == now
    assert acct.limits.loss.daily_loss_limit == pytest.approx(300)
    assert acct.limits.exposure.max_position_lots == pytest.approx(3.0)
    assert acct.limits == before.with_overrides({"daily_loss_limit": 300.0, "max_position_lots": 3.0})
    assert _pending(acct, marks, now) == []
    changed = [e for e in acct.events if e["type"] == "limits_changed"]
    assert len(changed) == 1 and changed[0]["by"] == "ops-1"
    # the new limits apply to the next check
    d = acct.check(make_order(quantity=3.01), marks, now)
    assert reason(d, ReasonCode.MAX_POSITION_SIZE).limit == pytest.approx(3.0)


def test_dismissing_a_recommendation_leaves_the_limits(marks):
    acct, rec_id = _one_pending(marks)
    before = acct.limits
    out = acct.decide_recommendation(rec_id, apply=False, by="ops-1", reason="not now", now=_end_of_day(2) + 60)
    assert out["status"] == "dismissed"
    assert acct.limits is before
    assert _pending(acct, marks, _end_of_day(2) + 60) == []
    assert not any(e["type"] == "limits_changed" for e in acct.events)
    assert ReasonCode.MAX_POSITION_SIZE not in codes(acct.check(make_order(quantity=3.01), marks, _end_of_day(2) + 60))


@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("second", [True, False])
def test_deciding_twice_is_a_conflict(marks, first, second):
    acct, rec_id = _one_pending(marks)
    now = _end_of_day(2) + 60
    acct.decide_recommendation(rec_id, apply=first, by="ops-1", reason="", now=now)
    limits = acct.limits
    with pytest.raises(RecommendationConflict) as err:
        acct.decide_recommendation(rec_id, apply=second, by="ops-2", reason="", now=now + 1)
    assert err.value.subject == rec_id and err.value.code == "RECOMMENDATION_CONFLICT"
    assert acct.limits is limits


def test_unknown_recommendation_id_raises(marks):
    acct, _ = _one_pending(marks)
    with pytest.raises(UnknownRecommendation) as err:
        acct.decide_recommendation("R0-nope", apply=True, by="ops-1", reason="", now=_end_of_day(2) + 60)
    assert err.value.subject == "R0-nope" and err.value.code == "UNKNOWN_RECOMMENDATION"
    assert acct.limits.loss.daily_loss_limit == 500


def test_a_newer_recommendation_supersedes_the_pending_one(marks):
    acct = _losing_streak(marks, days=6)
    old_id, new_id = list(acct.recommendations)
    assert acct.recommendations[old_id]["status"] == "superseded"
    assert [r["recommendation_id"] for r in _pending(acct, marks, _end_of_day(5))] == [new_id]
    with pytest.raises(RecommendationConflict):
        acct.decide_recommendation(old_id, apply=True, by="ops-1", reason="", now=_end_of_day(5) + 60)
