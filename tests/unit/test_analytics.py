"""Trading-behaviour analytics: hand-computed metrics, boundaries, window, pooling, score, flags,
config validation, and a cross-check against a naive reference model (hypothesis)."""

from __future__ import annotations

import itertools
import json
import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskactors.domain.analytics import (
    COMPONENTS,
    DEFAULT_WEIGHTS,
    METRIC_KEYS,
    AnalyticsConfigError,
    BehaviourConfig,
    BehaviourFlag,
    analyse,
    behaviour_flags,
    behaviour_score,
    pooled,
    sort_trades,
    trade_metrics,
)
from riskactors.domain.model import MONEY_EPS, ClosedTrade

T0 = 1_746_000_000.0  # epoch seconds, an arbitrary origin


def trade(pid: str, open_s: float, close_s: float, pnl: float, *, sl: bool = True, tp: bool = False,
          day: str = "2025-05-01", account: str = "A") -> ClosedTrade:
    """A closed trade; times are seconds after ``T0``."""
    return ClosedTrade(account_id=account, position_id=pid, instrument="EURUSD", side="buy", lots=1.0,
                       open_time=T0 + open_s, close_time=T0 + close_s, open_price=1.0, close_price=1.0,
                       pnl=pnl, stop_loss_used=sl, take_profit_used=tp, close_day=day)


def closing_at(pnls, *, start: float = 0.0, step: float = 100.0, day: str = "2025-05-01", account: str = "A"):
    """Trades closing one after another (each held 90 s), with these pnls."""
    return [trade(f"p{i:03d}", start + i * step, start + i * step + 90, p, day=day, account=account)
            for i, p in enumerate(pnls)]


# ---------------------------------------------------------------------------------------------
# metrics, hand-computed


@pytest.fixture
def six_trades():
    """Balance 10,000 → 11,000 → 10,450 → 9,900 → 9,900 → 9,800 → 12,000."""
    return [
        trade("t1", 0, 100, 1000.0, sl=True, tp=True, day="2025-05-01"),
        trade("t2", 150, 200, -550.0, sl=True, tp=False, day="2025-05-01"),
        trade("t3", 250, 300, -550.0, sl=False, tp=False, day="2025-05-02"),
        trade("t4", 350, 400, 0.0, sl=False, tp=True, day="2025-05-02"),
        trade("t5", 450, 500, -100.0, sl=True, tp=False, day="2025-05-03"),
        trade("t6", 550, 600, 2200.0, sl=True, tp=True, day="2025-05-03"),
    ]


def test_metrics_of_six_trades_match_the_hand_computation(six_trades):
    m = trade_metrics(six_trades, 10_000.0)
    assert list(m) == list(METRIC_KEYS)
    assert (m["trades"], m["wins"], m["losses"]) == (6, 2, 3)
    assert m["win_ratio"] == pytest.approx(2 / 6)
    assert m["gross_profit"] == 3200.0
    assert m["gross_loss"] == 1200.0
    assert m["net_pnl"] == 2000.0
    assert m["profit_factor"] == pytest.approx(3200 / 1200)
    assert (m["start_balance"], m["end_balance"]) == (10_000.0, 12_000.0)
    # peak 11,000, trough 9,800
    assert m["max_drawdown_amount"] == pytest.approx(1200.0)
    assert m["max_relative_drawdown"] == pytest.approx(1200 / 11_000)
    assert m["stop_loss_used"] == pytest.approx(4 / 6)
    assert m["take_profit_used"] == pytest.approx(3 / 6)
    assert m["hft_count"] == 5  # holds 100, 50, 50, 50, 50, 50 s; below 60 s: five
    assert m["avg_hold_seconds"] == pytest.approx((100 + 50 * 5) / 6)
    assert m["max_layering"] == 1
    assert m["longest_losing_streak"] == 2  # t2, t3; t4 (pnl 0) breaks the run before t5
    # days: 05-01 450, 05-02 -550, 05-03 2,100 -> best 05-03, share 2,100 / 2,000
    assert (m["best_day"], m["best_day_pnl"]) == ("2025-05-03", 2100.0)
    assert m["best_day_share"] == pytest.approx(1.05)


def test_hft_count_in_the_hand_example_uses_strictly_less_than_hft_seconds(six_trades):
    # holds: 100, 50, 50, 50, 50, 50 s
    assert trade_metrics(six_trades, 10_000.0, BehaviourConfig(hft_seconds=60))["hft_count"] == 5
    assert trade_metrics(six_trades, 10_000.0, BehaviourConfig(hft_seconds=50))["hft_count"] == 0
    assert trade_metrics(six_trades, 10_000.0, BehaviourConfig(hft_seconds=100.5))["hft_count"] == 6


def test_input_order_does_not_change_any_metric(six_trades):
    expected = analyse(six_trades, 10_000.0, BehaviourConfig(window=3))
    rng = random.Random(7)
    for _ in range(5):
        shuffled = six_trades[:]
        rng.shuffle(shuffled)
        assert analyse(shuffled, 10_000.0, BehaviourConfig(window=3)) == expected


def test_no_trades_gives_zero_counts_none_ratios_zero_score_and_no_flags():
    m = trade_metrics([], 10_000.0)
    assert (m["trades"], m["wins"], m["losses"], m["hft_count"], m["max_layering"]) == (0, 0, 0, 0, 0)
    for key in ("win_ratio", "profit_factor", "stop_loss_used", "take_profit_used", "avg_hold_seconds",
                "best_day", "best_day_pnl", "best_day_share"):
        assert m[key] is None, key
    assert (m["max_relative_drawdown"], m["max_drawdown_amount"], m["net_pnl"]) == (0.0, 0.0, 0.0)
    report = analyse([], 10_000.0)
    assert report["all"]["score"] == 0.0 and report["all"]["flags"] == []
    assert report["all"]["components"] == dict.fromkeys(COMPONENTS, 0.0)
    assert report["window"]["trades"] == 0 and report["window_size"] == 100


def test_profit_factor_is_none_without_losses_and_zero_without_profits():
    assert trade_metrics(closing_at([10.0, 0.0, 5.0]), 1000.0)["profit_factor"] is None
    assert trade_metrics(closing_at([-10.0, 0.0]), 1000.0)["profit_factor"] == 0.0


def test_a_curve_that_only_rises_has_zero_drawdown():
    m = trade_metrics(closing_at([100.0, 0.0, 50.0]), 1000.0)
    assert (m["max_relative_drawdown"], m["max_drawdown_amount"]) == (0.0, 0.0)


def test_drawdown_is_measured_from_the_initial_balance_when_the_first_trade_loses():
    m = trade_metrics(closing_at([-2500.0, 1000.0]), 10_000.0)
    assert m["max_drawdown_amount"] == 2500.0
    assert m["max_relative_drawdown"] == pytest.approx(0.25)


def test_relative_and_amount_maxima_may_come_from_different_peaks():
    # 1,000 -> 500 (50 %, 500) -> 10,000 -> 9,000 (10 %, 1,000)
    m = trade_metrics(closing_at([-500.0, 9500.0, -1000.0]), 1000.0)
    assert m["max_relative_drawdown"] == pytest.approx(0.5)
    assert m["max_drawdown_amount"] == pytest.approx(1000.0)


def test_relative_drawdown_exceeds_1_only_below_zero_and_skips_non_positive_peaks():
    m = trade_metrics(closing_at([-1500.0, 200.0]), 1000.0)  # 1,000 -> -500
    assert m["max_relative_drawdown"] == pytest.approx(1.5) and m["max_drawdown_amount"] == 1500.0
    m = trade_metrics(closing_at([-100.0, 50.0]), 0.0)  # the peak stays 0: no ratio, the amount still counts
    assert m["max_relative_drawdown"] == 0.0 and m["max_drawdown_amount"] == 100.0


def test_trades_closing_at_the_same_time_are_ordered_by_position_id():
    # same close time: "a" (loss) before "b" (profit) whatever the input order
    a, b = trade("a", 0, 100, -100.0), trade("b", 0, 100, 100.0)
    for trades in ([a, b], [b, a]):
        assert [t.position_id for t in sort_trades(trades)] == ["a", "b"]
        m = trade_metrics(trades, 1000.0)
        assert m["max_drawdown_amount"] == 100.0
        assert m["longest_losing_streak"] == 1


# ---------------------------------------------------------------------------------------------
# boundaries


def test_hold_of_exactly_60_seconds_is_not_hft_and_59_999_is():
    assert trade_metrics([trade("x", 0, 60, 1.0)], 1000.0)["hft_count"] == 0
    assert trade_metrics([trade("x", 0, 59.999, 1.0)], 1000.0)["hft_count"] == 1
    assert trade_metrics([trade("x", 0, 0, 1.0)], 1000.0)["hft_count"] == 1


def test_a_zero_pnl_trade_breaks_a_losing_streak():
    assert trade_metrics(closing_at([-1.0, -1.0, 0.0, -1.0, -1.0]), 1000.0)["longest_losing_streak"] == 2
    assert trade_metrics(closing_at([-1.0, -1.0, -1.0, 5.0, -1.0]), 1000.0)["longest_losing_streak"] == 3
    assert trade_metrics(closing_at([0.0, 2.0]), 1000.0)["longest_losing_streak"] == 0


def test_a_close_at_t_and_an_open_at_t_do_not_layer():
    assert trade_metrics([trade("a", 0, 10, 1.0), trade("b", 10, 20, 1.0)], 1000.0)["max_layering"] == 1
    assert trade_metrics([trade("a", 0, 10.001, 1.0), trade("b", 10, 20, 1.0)], 1000.0)["max_layering"] == 2


def test_max_layering_counts_positions_open_at_the_same_instant():
    trades = [trade("a", 0, 100, 1.0), trade("b", 10, 50, 1.0), trade("c", 20, 30, 1.0),
              trade("d", 30, 40, 1.0), trade("e", 45, 200, 1.0), trade("f", 150, 160, 1.0)]
    # at 20..30: a, b, c; at 45..50: a, b, e
    assert trade_metrics(trades, 1000.0)["max_layering"] == 3


def test_a_zero_length_trade_counts_once_and_layers_only_with_positions_open_across_its_instant():
    assert trade_metrics([trade("z", 5, 5, 1.0)], 1000.0)["max_layering"] == 1
    assert trade_metrics([trade("a", 0, 10, 1.0), trade("z", 5, 5, 1.0)], 1000.0)["max_layering"] == 2
    # closed at 5 / opened at 5: not open across the instant
    assert trade_metrics([trade("a", 0, 5, 1.0), trade("z", 5, 5, 1.0), trade("b", 5, 9, 1.0)],
                         1000.0)["max_layering"] == 1


def test_best_day_share_is_none_unless_there_is_a_total_profit():
    assert trade_metrics(closing_at([100.0, -100.0]), 1000.0)["best_day_share"] is None
    assert trade_metrics(closing_at([-5.0]), 1000.0)["best_day_share"] is None
    assert trade_metrics(closing_at([MONEY_EPS / 2]), 1000.0)["best_day_share"] is None


def test_best_day_share_is_the_best_day_profit_over_the_total_profit():
    trades = (closing_at([300.0, -100.0], day="2025-05-01")
              + closing_at([500.0], start=1000, day="2025-05-02")
              + closing_at([-200.0, 500.0], start=2000, day="2025-05-03"))
    m = trade_metrics(trades, 10_000.0)
    # days: 200, 500, 300 -> best 05-02, share 500 / 1,000
    assert (m["best_day"], m["best_day_pnl"], m["net_pnl"]) == ("2025-05-02", 500.0, 1000.0)
    assert m["best_day_share"] == pytest.approx(0.5)


def test_best_day_ties_go_to_the_earliest_day():
    trades = closing_at([100.0], day="2025-05-02") + closing_at([100.0], start=500, day="2025-05-01")
    assert trade_metrics(trades, 1000.0)["best_day"] == "2025-05-01"


def test_invalid_trades_and_balances_are_rejected():
    with pytest.raises(ValueError, match="before open_time"):
        trade_metrics([trade("x", 10, 5, 1.0)], 1000.0)
    with pytest.raises(ValueError, match="finite"):
        trade_metrics([trade("x", 0, 5, float("nan"))], 1000.0)
    with pytest.raises(ValueError, match="initial_balance"):
        trade_metrics([], float("inf"))


# ---------------------------------------------------------------------------------------------
# window and pooling


def test_window_uses_only_the_last_n_trades_by_close_time():
    # five early losses, then three wins; window of 3 sees only the wins
    pnls = [-100.0] * 5 + [50.0, 60.0, 70.0]
    trades = closing_at(pnls)
    random.Random(1).shuffle(trades)
    report = analyse(trades, 10_000.0, BehaviourConfig(window=3))
    assert report["window_size"] == 3
    w, a = report["window"], report["all"]
    assert (a["trades"], w["trades"]) == (8, 3)
    assert (w["wins"], w["losses"], w["net_pnl"]) == (3, 0, 180.0)
    assert w["longest_losing_streak"] == 0 and a["longest_losing_streak"] == 5
    # the window's curve starts at the balance just before its first trade
    assert w["start_balance"] == 9_500.0 and w["end_balance"] == a["end_balance"] == 9_680.0
    assert w["max_drawdown_amount"] == 0.0 and a["max_drawdown_amount"] == 500.0


def test_window_larger_than_the_history_equals_all():
    report = analyse(closing_at([10.0, -5.0, 3.0]), 1000.0, BehaviourConfig(window=100))
    assert report["window"] == report["all"]


def test_window_drawdown_does_not_carry_the_peak_from_before_the_window():
    # 1,000 -> 2,000 (peak) -> 1,500 -> 1,400; window of 2 starts at 2,000... of 1 starts at 1,500
    trades = closing_at([1000.0, -500.0, -100.0])
    w = analyse(trades, 1000.0, BehaviourConfig(window=1))["window"]
    assert w["start_balance"] == 1500.0
    assert w["max_drawdown_amount"] == 100.0
    assert w["max_relative_drawdown"] == pytest.approx(100 / 1500)


def test_pooled_merges_two_accounts_on_one_curve_from_the_sum_of_initial_balances():
    a = [trade("1", 0, 100, -600.0, account="A", day="2025-05-01"),
         trade("2", 200, 300, 400.0, account="A", day="2025-05-02")]
    b = [trade("1", 50, 150, -400.0, account="B", sl=False, day="2025-05-01"),
         trade("2", 250, 400, 1000.0, account="B", sl=False, day="2025-05-02")]
    report = pooled([(a, 5_000.0), (b, 10_000.0)], BehaviourConfig(window=2))
    assert report["accounts"] == 2 and report["window_size"] == 2
    m = report["all"]
    assert m["start_balance"] == 15_000.0 and m["end_balance"] == 15_400.0
    assert (m["trades"], m["wins"], m["losses"]) == (4, 2, 2)
    # 15,000 -> 14,400 -> 14,000 -> 14,400 -> 15,400
    assert m["max_drawdown_amount"] == 1000.0
    assert m["max_relative_drawdown"] == pytest.approx(1000 / 15_000)
    assert m["longest_losing_streak"] == 2  # losses of A and B in a row
    assert m["max_layering"] == 2  # A's and B's positions overlap
    assert m["stop_loss_used"] == 0.5
    assert (m["best_day"], m["best_day_share"]) == ("2025-05-02", pytest.approx(1400 / 400))
    w = report["window"]
    assert w["trades"] == 2 and w["start_balance"] == 14_000.0 and w["net_pnl"] == 1400.0


def test_pooled_single_account_equals_analyse(six_trades):
    config = BehaviourConfig(window=4)
    report = pooled([(six_trades, 10_000.0)], config)
    assert report.pop("accounts") == 1
    assert report == analyse(six_trades, 10_000.0, config)


def test_pooled_orders_same_close_time_ties_by_position_then_account():
    a = [trade("1", 0, 100, 5.0, account="B")]
    b = [trade("1", 0, 100, -5.0, account="A")]
    # A's loss first, then B's profit: one losing trade, drawdown 5
    for groups in ([(a, 100.0), (b, 100.0)], [(b, 100.0), (a, 100.0)]):
        m = pooled(groups)["all"]
        assert m["max_drawdown_amount"] == 5.0 and m["max_layering"] == 2


# ---------------------------------------------------------------------------------------------
# score and flags


def _metrics(**overrides):
    base = {
        "trades": 10, "max_relative_drawdown": 0.0, "stop_loss_used": 1.0, "hft_count": 0, "max_layering": 0,
        "longest_losing_streak": 0, "best_day_share": None, "profit_factor": None,
    }
    base.update(overrides)
    return base


def test_harmless_behaviour_scores_zero_and_the_worst_scores_100():
    assert behaviour_score(_metrics()) == (0.0, dict.fromkeys(COMPONENTS, 0.0))
    worst = _metrics(max_relative_drawdown=0.5, stop_loss_used=0.0, hft_count=10, max_layering=50,
                     longest_losing_streak=30, best_day_share=3.0, profit_factor=0.0)
    score, components = behaviour_score(worst)
    assert score == 100.0 and components == dict.fromkeys(COMPONENTS, 1.0)


def test_score_components_match_the_hand_computation():
    m = _metrics(max_relative_drawdown=0.05, stop_loss_used=0.6, hft_count=2, max_layering=3,
                 longest_losing_streak=4, best_day_share=0.8, profit_factor=1.5)
    score, c = behaviour_score(m)
    assert c == pytest.approx({"drawdown": 0.5, "no_stop_loss": 0.4, "hft": 0.2, "layering": 0.3,
                               "losing_streak": 0.4, "best_day_concentration": 0.8, "low_profit_factor": 0.0})
    # 100 x (0.25x0.5 + 0.2x0.4 + 0.15x0.2 + 0.15x0.3 + 0.1x0.4 + 0.1x0.8 + 0) = 40.0
    assert score == pytest.approx(40.0)
    assert behaviour_score(_metrics(profit_factor=0.25))[1]["low_profit_factor"] == pytest.approx(0.75)


def test_score_uses_the_configured_weights_and_thresholds():
    config = BehaviourConfig(drawdown_threshold=0.2, weights=dict.fromkeys(COMPONENTS, 0.0) | {"drawdown": 1.0})
    assert behaviour_score(_metrics(max_relative_drawdown=0.05), config) == (25.0, pytest.approx(
        dict.fromkeys(COMPONENTS, 0.0) | {"drawdown": 0.25}))


def test_score_is_rounded_to_one_decimal():
    # 100 x 0.15 x 1/3 = 5.0; 100 x 0.15 x 1/7 = 2.142... -> 2.1
    assert behaviour_score(_metrics(hft_count=1, trades=7))[0] == 2.1


metric_values = st.fixed_dictionaries({
    "trades": st.integers(1, 50),
    "max_relative_drawdown": st.floats(0.0, 2.0),
    "stop_loss_used": st.floats(0.0, 1.0),
    "hft_fraction": st.floats(0.0, 1.0),
    "max_layering": st.integers(0, 30),
    "longest_losing_streak": st.integers(0, 30),
    "best_day_share": st.none() | st.floats(0.0, 3.0),
    "profit_factor": st.none() | st.floats(0.0, 5.0),
})


def _as_metrics(v):
    m = dict(v)
    m["hft_count"] = round(m.pop("hft_fraction") * m["trades"])
    return m


def _riskier(m, key, amount):
    """``m`` with one metric moved by ``amount`` ≥ 0 in the riskier direction."""
    m = dict(m)
    if key == "max_relative_drawdown":
        m[key] += amount
    elif key == "stop_loss_used":
        m[key] = max(0.0, m[key] - amount)
    elif key == "hft_count":
        m[key] = min(m["trades"], m[key] + round(amount * 10))
    elif key in ("max_layering", "longest_losing_streak"):
        m[key] += round(amount * 10)
    elif key == "best_day_share":
        m[key] = (m[key] or 0.0) + amount
    elif key == "profit_factor":
        m[key] = max(0.0, m[key] - amount) if m[key] is not None else 1.0 / (1.0 + amount)
    return m


@settings(max_examples=200, deadline=None)
@given(v=metric_values, key=st.sampled_from(["max_relative_drawdown", "stop_loss_used", "hft_count", "max_layering",
                                             "longest_losing_streak", "best_day_share", "profit_factor"]),
       amount=st.floats(0.0, 2.0))
def test_making_one_component_riskier_never_lowers_the_score(v, key, amount):
    m = _as_metrics(v)
    score, components = behaviour_score(m)
    riskier_score, riskier_components = behaviour_score(_riskier(m, key, amount))
    assert riskier_score >= score
    assert all(riskier_components[k] >= components[k] for k in COMPONENTS)
    assert 0.0 <= score <= 100.0 and all(0.0 <= c <= 1.0 for c in components.values())


def test_flags_are_raised_exactly_at_their_thresholds():
    c = BehaviourConfig(take_profit_min_fraction=0.5)
    assert behaviour_flags(_metrics(), c) == []
    at = _metrics(max_relative_drawdown=0.10, stop_loss_used=0.49, hft_count=11, max_layering=10,
                  longest_losing_streak=10, best_day_share=0.51, win_ratio=0.29, take_profit_used=0.49, score=70.0)
    assert behaviour_flags(at, c) == [str(f) for f in BehaviourFlag]
    below = _metrics(max_relative_drawdown=0.0999, stop_loss_used=0.5, hft_count=10, max_layering=9,
                     longest_losing_streak=9, best_day_share=0.5, win_ratio=0.3, take_profit_used=0.5, score=69.9)
    assert behaviour_flags(below, c) == []
    assert behaviour_flags(_metrics(trades=0, stop_loss_used=None), c) == []


def test_analyse_reports_flags_for_hft_scalping_without_stop_losses():
    trades = [trade(f"s{i}", i * 100, i * 100 + 10, 1.0, sl=False) for i in range(12)]
    report = analyse(trades, 1000.0, BehaviourConfig(window=5))
    assert report["all"]["flags"] == ["NO_STOP_LOSS", "HFT", "PROFIT_CONCENTRATION"]
    assert report["window"]["flags"] == ["NO_STOP_LOSS", "PROFIT_CONCENTRATION"]  # 5 HFT trades ≤ 10
    # no stop-loss 0.2 x 1 + hft 0.15 x 1 + layering 0.15 x 1/10 + best day 0.1 x 1 (one day) -> 46.5
    assert report["all"]["score"] == report["window"]["score"] == 46.5


# ---------------------------------------------------------------------------------------------
# configuration


def test_default_config_matches_the_documented_defaults():
    c = BehaviourConfig()
    assert c.to_dict() == {
        "hft_seconds": 60.0, "window": 100, "drawdown_threshold": 0.10, "layering_threshold": 10,
        "losing_streak_threshold": 10, "hft_max_count": 10, "stop_loss_min_fraction": 0.5,
        "best_day_share_threshold": 0.5, "win_ratio_threshold": 0.3, "take_profit_min_fraction": 0.0,
        "risk_threshold": 70.0, "weights": dict(DEFAULT_WEIGHTS),
    }
    assert sum(DEFAULT_WEIGHTS.values()) == pytest.approx(1.0)
    assert tuple(DEFAULT_WEIGHTS) == COMPONENTS
    hash(c)  # frozen and hashable
    json.dumps(c.to_dict())


@pytest.mark.parametrize(("field", "value"), [
    ("hft_seconds", -1.0), ("hft_seconds", float("nan")), ("hft_seconds", "60"),
    ("window", 0), ("window", 2.5), ("window", True),
    ("drawdown_threshold", 0.0), ("drawdown_threshold", 1.5),
    ("layering_threshold", 0), ("losing_streak_threshold", -3), ("hft_max_count", -1),
    ("stop_loss_min_fraction", 1.01), ("stop_loss_min_fraction", -0.1),
    ("best_day_share_threshold", 0.0), ("best_day_share_threshold", float("inf")),
    ("weights", [0.25] * 7),
])
def test_invalid_config_values_raise_an_error_naming_the_field(field, value):
    with pytest.raises(AnalyticsConfigError) as err:
        BehaviourConfig(**{field: value})
    assert err.value.field == field
    assert isinstance(err.value, ValueError)
    assert str(err.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("weights", "field", "words"), [
    (dict(DEFAULT_WEIGHTS) | {"drawdown": 0.3}, "weights", "sum to 1"),
    ({k: v for k, v in DEFAULT_WEIGHTS.items() if k != "hft"} | {"drawdown": 0.40}, "weights", "hft"),
    (dict(DEFAULT_WEIGHTS) | {"martingale": 0.0}, "weights", "martingale"),
    (dict(DEFAULT_WEIGHTS) | {"drawdown": 0.50, "no_stop_loss": -0.05}, "weights.no_stop_loss", "≥ 0"),
])
def test_invalid_weights_raise_an_error_naming_the_weight(weights, field, words):
    with pytest.raises(AnalyticsConfigError, match=words) as err:
        BehaviourConfig(weights=weights)
    assert err.value.field == field


def test_weights_within_1e_9_of_one_are_accepted():
    BehaviourConfig(weights=dict(DEFAULT_WEIGHTS) | {"drawdown": 0.25 + 5e-10})
    with pytest.raises(AnalyticsConfigError):
        BehaviourConfig(weights=dict(DEFAULT_WEIGHTS) | {"drawdown": 0.25 + 5e-9})


def test_with_updates_validates_and_rejects_unknown_fields():
    c = BehaviourConfig()
    updated = c.with_updates({"window": 20.0, "drawdown_threshold": 0.05})
    assert (updated.window, updated.drawdown_threshold) == (20, 0.05)
    assert isinstance(updated.window, int)
    assert c.window == 100  # the original is unchanged
    with pytest.raises(AnalyticsConfigError) as err:
        c.with_updates({"window": 10, "max_martingale": 3})
    assert err.value.field == "max_martingale"
    with pytest.raises(AnalyticsConfigError) as err:
        c.with_updates({"layering_threshold": 0})
    assert err.value.field == "layering_threshold"
    assert BehaviourConfig().with_updates(c.to_dict()) == c


def test_config_copies_the_weights_it_is_given():
    w = dict(DEFAULT_WEIGHTS)
    c = BehaviourConfig(weights=w)
    w["drawdown"] = 0.9
    assert c.weights["drawdown"] == 0.25


# ---------------------------------------------------------------------------------------------
# cross-check against a naive reference model


def reference_metrics(trades, start_balance, hft_seconds):
    """Direct, quadratic transcription of the definitions."""
    order = sorted(trades, key=lambda t: (t.close_time, t.position_id, t.account_id))
    pnls = [t.pnl for t in order]
    n = len(order)
    curve = [start_balance]
    for p in pnls:
        curve.append(curve[-1] + p)
    amounts, ratios = [0.0], [0.0]
    for i in range(1, len(curve)):
        peak = max(curve[: i + 1])
        amounts.append(peak - curve[i])
        if peak > MONEY_EPS:
            ratios.append((peak - curve[i]) / peak)
    positive = [t for t in order if t.close_time > t.open_time]
    layers = [sum(1 for u in positive if u.open_time <= t.open_time < u.close_time) for t in positive]
    layers += [1 + sum(1 for u in positive if u.open_time < t.open_time < u.close_time)
               for t in order if t.close_time == t.open_time]
    streaks = [len(list(g)) for losing, g in itertools.groupby(pnls, key=lambda p: p < 0) if losing]
    days = defaultdict(float)
    for t in order:
        days[t.close_day] += t.pnl
    gross_profit = sum(p for p in pnls if p > 0)
    gross_loss = -sum(p for p in pnls if p < 0)
    net = sum(pnls)
    best = max(days.values()) if days else None
    return {
        "trades": n,
        "wins": sum(p > 0 for p in pnls),
        "losses": sum(p < 0 for p in pnls),
        "win_ratio": sum(p > 0 for p in pnls) / n if n else None,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "net_pnl": net,
        "profit_factor": gross_profit / gross_loss if gross_loss else None,
        "start_balance": start_balance,
        "end_balance": curve[-1],
        "max_relative_drawdown": max(ratios),
        "max_drawdown_amount": max(amounts),
        "stop_loss_used": sum(t.stop_loss_used for t in order) / n if n else None,
        "take_profit_used": sum(t.take_profit_used for t in order) / n if n else None,
        "hft_count": sum(t.close_time - t.open_time < hft_seconds for t in order),
        "max_layering": max(layers, default=0),
        "avg_hold_seconds": sum(t.close_time - t.open_time for t in order) / n if n else None,
        "longest_losing_streak": max(streaks, default=0),
        "best_day_pnl": best,
        "best_day_share": best / net if n and net > MONEY_EPS else None,
    }


def _assert_close(actual, expected):
    for key, want in expected.items():
        got = actual[key]
        if want is None or got is None:
            assert got is None and want is None, (key, got, want)
        elif isinstance(want, int) and not isinstance(want, bool):
            assert got == want, (key, got, want)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-6), (key, got, want)


trade_fields = st.tuples(
    st.integers(0, 200) | st.floats(0, 200, allow_nan=False),  # open, seconds after T0
    st.sampled_from([0.0, 30.0, 59.999, 60.0, 60.001, 120.0]) | st.integers(0, 300),  # hold, seconds
    st.sampled_from([0.0, -100.0, 100.0]) | st.integers(-50_000, 50_000).map(lambda c: c / 100),  # pnl
    st.booleans(),  # stop-loss used
    st.booleans(),  # take-profit used
)


def trade_lists(account="A", max_size=25):
    def build(rows):
        return [trade(f"p{i}", open_s, open_s + hold, pnl, sl=sl, tp=tp,
                      day=f"2025-05-{1 + int(open_s + hold) // 100:02d}", account=account)
                for i, (open_s, hold, pnl, sl, tp) in enumerate(rows)]
    return st.lists(trade_fields, max_size=max_size).map(build)


balances = st.sampled_from([0.0, 1e-300, MONEY_EPS, 50.0, 10_000.0]) | st.floats(-1000.0, 100_000.0, allow_nan=False)


@settings(max_examples=120, deadline=None)
@given(trades=trade_lists(), balance=balances, hft=st.sampled_from([0.0, 60.0, 90.5]), window=st.integers(1, 30))
def test_every_metric_matches_the_reference_model(trades, balance, hft, window):
    config = BehaviourConfig(hft_seconds=hft, window=window)
    report = analyse(trades, balance, config)
    _assert_close(report["all"], reference_metrics(trades, balance, hft))
    order = sorted(trades, key=lambda t: (t.close_time, t.position_id, t.account_id))
    cut = max(0, len(order) - window)
    _assert_close(report["window"], reference_metrics(order[cut:], balance + sum(t.pnl for t in order[:cut]), hft))
    json.dumps(report, allow_nan=False)
    for part in (report["all"], report["window"]):
        assert (part["score"], part["components"]) == behaviour_score(part, config)
        assert part["flags"] == behaviour_flags(part, config)


@settings(max_examples=50, deadline=None)
@given(a=trade_lists(account="A", max_size=12), b=trade_lists(account="B", max_size=12),
       balance_a=balances, balance_b=balances)
def test_pooled_metrics_match_the_reference_model_on_the_merged_trades(a, b, balance_a, balance_b):
    report = pooled([(a, balance_a), (b, balance_b)], BehaviourConfig(window=10))
    assert report["accounts"] == 2
    _assert_close(report["all"], reference_metrics(a + b, balance_a + balance_b, 60.0))
    json.dumps(report, allow_nan=False)


def test_float_dust_of_a_break_even_trade_is_neither_a_win_nor_a_loss():
    trades = [trade("a", 0, 100, 4.8e-12), trade("b", 100, 200, -3e-9), trade("c", 200, 300, -1.0)]
    m = trade_metrics(trades, 1000.0)
    assert (m["wins"], m["losses"]) == (0, 1) and m["longest_losing_streak"] == 1
    assert m["gross_profit"] == 0.0 and m["gross_loss"] == 1.0
