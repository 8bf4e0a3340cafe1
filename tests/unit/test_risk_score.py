"""Risk score 0–100: 100 × (0.5 × max(u) + 0.5 × Σ w·u), monotone in every utilisation, 100 when failed."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unitkit import T0, make_account, make_fill, make_order, set_mark

from riskactors.domain import AccountStatus
from riskactors.domain.valuation import RISK_SCORE_WEIGHTS, risk_score
from riskactors.domain.views import account_view

KEYS = sorted(RISK_SCORE_WEIGHTS)
utilisation = st.floats(min_value=-0.5, max_value=2.0, allow_nan=False)
utilisations = st.fixed_dictionaries({k: utilisation for k in KEYS})


def test_weights_sum_to_one():
    assert sum(RISK_SCORE_WEIGHTS.values()) == pytest.approx(1.0)


@settings(max_examples=300, deadline=None)
@given(u=utilisations, key=st.sampled_from(KEYS), bump=st.floats(min_value=0.0, max_value=2.0, allow_nan=False))
def test_increasing_any_one_utilisation_never_lowers_the_score(u, key, bump):
    higher = dict(u, **{key: u[key] + bump})
    assert risk_score(higher) >= risk_score(u)


@settings(max_examples=200, deadline=None)
@given(u=utilisations)
def test_score_is_between_0_and_100_and_failed_is_100(u):
    s = risk_score(u)
    assert 0.0 <= s <= 100.0
    assert risk_score(u, failed=True) == 100.0


@settings(max_examples=200, deadline=None)
@given(u=utilisations, key=st.sampled_from(KEYS))
def test_one_limit_fully_used_scores_at_least_50(u, key):
    assert risk_score(dict(u, **{key: 1.0})) >= 50.0


def test_known_values_of_the_formula():
    assert risk_score({}) == 0.0
    assert risk_score({k: 1.0 for k in KEYS}) == 100.0
    # daily loss half used: 100 x (0.5 x 0.5 + 0.5 x 0.25 x 0.5) = 31.25 -> 31.2 (rounded to 0.1)
    assert risk_score({"daily_loss": 0.5}) == pytest.approx(31.2, abs=0.051)
    assert risk_score({"leverage": 3.0}) == risk_score({"leverage": 1.0})  # clamped


def test_view_risk_score_rises_as_the_account_moves_toward_its_daily_loss_limit(marks):
    acct = make_account()
    acct.apply_fill(make_fill(quantity=0.2, price=1.0), marks, T0)
    scores = []
    for i, px in enumerate([1.0, 0.9995, 0.999, 0.998, 0.997, 0.996, 0.9955]):  # 0 .. 90 % of the daily limit
        set_mark(marks, "EURUSD", px, ts=T0 + i + 1)
        acct.on_market(marks, T0 + i + 1)
        scores.append(account_view(acct, marks, T0 + i + 1)["risk_score"])
    assert scores == sorted(scores) and scores[-1] > scores[0]
    assert len(set(scores)) == len(scores)  # strictly rising
    assert acct.status is AccountStatus.ACTIVE


def test_view_risk_score_rises_with_leverage(marks):
    acct = make_account()
    scores = []
    for _ in range(5):
        acct.apply_fill(make_fill(quantity=0.2, price=1.0), marks, T0)
        scores.append(account_view(acct, marks, T0)["risk_score"])
    assert all(a < b for a, b in itertools.pairwise(scores))
    assert scores[-1] >= 50.0  # 10x of 10x: one limit fully used


def test_failed_account_scores_100_in_the_view_and_in_decisions(marks):
    acct = make_account()
    acct.set_status(AccountStatus.FAILED, "ops", "test", T0)
    assert account_view(acct, marks, T0)["risk_score"] == 100.0
    assert acct.check(make_order(), marks, T0).risk_score == 100.0


def test_decision_risk_score_reflects_the_order(account, marks):
    small = account.check(make_order(quantity=0.1), marks, T0).risk_score
    large = account.check(make_order(quantity=0.9), marks, T0).risk_score
    assert small < large
