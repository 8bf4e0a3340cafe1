"""Order-level prop-firm rules (``riskactors.domain.rules.opening_rules``) at their boundaries: just
inside is accepted, just outside is rejected with the rule's code (and its ``limit`` / ``value``
where the rule is numeric); a position-reducing order is never blocked by any of them.

Money is USD (account currency); EURUSD at 1.0 makes 0.0001 of price worth 10 USD per lot.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from unitkit import (
    NY,
    T0,
    accepted,
    codes,
    make_account,
    make_fill,
    make_marks,
    make_order,
    reason,
    set_mark,
    warning,
    warning_codes,
)

from riskactors.domain import ReasonCode, WarningCode
from riskactors.domain.model import CalendarEvent
from riskactors.domain.news import NewsCalendar
from riskactors.domain.views import account_view

#: 2025-05-06 17:00 New York: the first trading-day roll after ``T0``.
ROLL = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()


def ny(*args) -> float:
    return datetime(*args, tzinfo=NY).timestamp()


DAY_SECONDS = 86_400.0


def _acct(**overrides):
    """10,000 USD ``moderate`` account (leverage cap lifted so only the rule under test fires;
    the marks of ``T0`` stay usable for days: the price age is not the rule under test)."""
    return make_account(**{"max_leverage": 100, "max_mark_age_seconds": 30 * DAY_SECONDS, **overrides})


def _round_trip(acct, marks, start, hold, *, close_price=1.0, symbol="EURUSD", quantity=0.01):
    """Open ``quantity`` lots long at 1.0 at ``start`` and close them at ``close_price`` after
    ``hold`` seconds; returns the closed trade (dict)."""
    acct.apply_fill(make_fill(symbol, "buy", quantity, 1.0, ts=start), marks, start)
    out = acct.apply_fill(make_fill(symbol, "sell", quantity, close_price, ts=start + hold), marks, start + hold)
    assert out["closed_trade"] is not None
    return out["closed_trade"]


# ---------------------------------------------------------------- STOP_LOSS_REQUIRED / TAKE_PROFIT_REQUIRED
def test_stop_loss_required_accepts_an_order_with_a_stop_loss(marks):
    acct = _acct(stop_loss_required=True)
    assert acct.check(make_order(stop_loss=0.99), marks, T0).accepted


def test_stop_loss_required_rejects_an_order_without_one(marks):
    acct = _acct(stop_loss_required=True)
    d = acct.check(make_order(take_profit=1.01), marks, T0)
    assert codes(d) == [ReasonCode.STOP_LOSS_REQUIRED]
    r = reason(d, ReasonCode.STOP_LOSS_REQUIRED)
    assert r.limit is None and r.value is None


def test_take_profit_required_accepts_an_order_with_a_take_profit(marks):
    acct = _acct(take_profit_required=True)
    assert acct.check(make_order(take_profit=1.01), marks, T0).accepted


def test_take_profit_required_rejects_an_order_without_one(marks):
    acct = _acct(take_profit_required=True)
    d = acct.check(make_order(stop_loss=0.99), marks, T0)
    assert codes(d) == [ReasonCode.TAKE_PROFIT_REQUIRED]


def test_both_levels_required_reports_both_missing(marks):
    acct = _acct(stop_loss_required=True, take_profit_required=True)
    d = acct.check(make_order(), marks, T0)
    assert codes(d) == [ReasonCode.STOP_LOSS_REQUIRED, ReasonCode.TAKE_PROFIT_REQUIRED]


def test_levels_not_required_by_default(marks):
    assert _acct().check(make_order(), marks, T0).accepted


# ---------------------------------------------------------------- MAX_RISK_PER_TRADE
# 1 % of a 10,000 balance = 100 USD at the stop-loss.
@pytest.mark.parametrize("side,quantity,stop", [("buy", 0.5, 0.998), ("sell", 0.5, 1.002), ("buy", 1.0, 0.999)])
def test_risk_per_trade_exactly_at_the_fraction_of_balance_is_accepted(marks, side, quantity, stop):
    acct = _acct(max_risk_per_trade_fraction=0.01)
    d = acct.check(make_order(side=side, quantity=quantity, stop_loss=stop), marks, T0)
    assert d.accepted, d.reasons


@pytest.mark.parametrize("side,quantity,stop,loss", [
    ("buy", 0.5, 0.99799, 100.5),
    ("sell", 0.5, 1.00201, 100.5),
    ("buy", 1.0, 0.9989999, 100.01),  # one cent over
])
def test_risk_per_trade_a_hair_over_the_fraction_is_rejected(marks, side, quantity, stop, loss):
    acct = _acct(max_risk_per_trade_fraction=0.01)
    d = acct.check(make_order(side=side, quantity=quantity, stop_loss=stop), marks, T0)
    assert codes(d) == [ReasonCode.MAX_RISK_PER_TRADE]
    r = reason(d, ReasonCode.MAX_RISK_PER_TRADE)
    assert r.limit == pytest.approx(100)
    assert r.value == pytest.approx(loss)


def test_risk_per_trade_without_a_stop_loss_is_rejected_as_unbounded(marks):
    acct = _acct(max_risk_per_trade_fraction=0.01)
    d = acct.check(make_order(quantity=0.01), marks, T0)
    assert codes(d) == [ReasonCode.MAX_RISK_PER_TRADE]
    r = reason(d, ReasonCode.MAX_RISK_PER_TRADE)
    assert r.limit == pytest.approx(100) and r.value is None


def test_risk_per_trade_is_measured_from_the_ask_for_a_buy():
    marks = make_marks(("EURUSD", 0.9999, 1.0001))
    acct = _acct(max_risk_per_trade_fraction=0.01)
    assert acct.check(make_order(quantity=0.5, stop_loss=0.9981), marks, T0).accepted  # (1.0001 − 0.9981) × 50,000
    d = acct.check(make_order(quantity=0.5, stop_loss=0.99809), marks, T0)
    assert reason(d, ReasonCode.MAX_RISK_PER_TRADE).value == pytest.approx(100.5)


def test_risk_per_trade_follows_the_balance(marks):
    acct = _acct(max_risk_per_trade_fraction=0.01, daily_loss_limit=5_000, max_loss_limit=5_000)
    acct.apply_fill(make_fill(quantity=0.01, price=1.0, commission=-1_000), marks, T0)  # balance 9,000
    assert acct.check(make_order(quantity=0.45, stop_loss=0.998), marks, T0).accepted  # 90 = 1 % of 9,000
    d = acct.check(make_order(quantity=0.46, stop_loss=0.998), marks, T0)  # 92
    r = reason(d, ReasonCode.MAX_RISK_PER_TRADE)
    assert r.limit == pytest.approx(90) and r.value == pytest.approx(92)


def test_stop_loss_beyond_the_price_risks_nothing(marks):
    acct = _acct(max_risk_per_trade_fraction=0.01)
    assert acct.check(make_order(quantity=1.0, stop_loss=1.001), marks, T0).accepted


# ---------------------------------------------------------------- MAX_DAILY_TRADES
def test_daily_trades_opened_plus_pending_opening_orders_are_counted():
    marks = make_marks(("EURUSD", 1.0), ("GBPUSD", 1.0))
    acct = _acct(max_daily_trades=2)
    acct.apply_fill(make_fill(quantity=0.1, price=1.0), marks, T0)  # trade 1 (filled)
    assert acct.day_opened_trades == 1
    first = acct.submit(make_order("EURUSD", "buy", 0.1), marks, T0)  # trade 2 (pending): 1 + 0 + 1 = 2
    assert accepted(first)
    assert acct.pending_opening_orders() == 1
    d = acct.check(make_order("GBPUSD", "buy", 0.1), marks, T0)
    assert codes(d) == [ReasonCode.MAX_DAILY_TRADES]
    r = reason(d, ReasonCode.MAX_DAILY_TRADES)
    assert r.limit == 2 and r.value == 3


def test_daily_trades_cancelled_pending_order_frees_its_count(marks):
    acct = _acct(max_daily_trades=2)
    acct.apply_fill(make_fill(quantity=0.1, price=1.0), marks, T0)
    order = make_order(quantity=0.1)
    acct.submit(order, marks, T0)
    assert not acct.check(make_order(quantity=0.1), marks, T0).accepted
    acct.cancel(order.order_id, T0)
    assert acct.check(make_order(quantity=0.1), marks, T0).accepted


def test_daily_trades_a_filled_pending_order_is_counted_once():
    marks = make_marks(("EURUSD", 1.0), ("GBPUSD", 1.0))
    acct = _acct(max_daily_trades=2)
    order = make_order(quantity=0.1)
    acct.submit(order, marks, T0)
    acct.apply_fill(make_fill(quantity=0.1, price=1.0, order_id=order.order_id), marks, T0)
    assert (acct.day_opened_trades, acct.pending_opening_orders()) == (1, 0)
    assert acct.check(make_order("GBPUSD", "buy", 0.1), marks, T0).accepted  # 1 + 0 + 1 = 2


def test_daily_trades_reset_on_the_next_trading_day(marks):
    acct = _acct(max_daily_trades=1)
    acct.apply_fill(make_fill(quantity=0.1, price=1.0), marks, T0)
    assert codes(acct.check(make_order(quantity=0.1), marks, ROLL - 1)) == [ReasonCode.MAX_DAILY_TRADES]
    acct.on_market(marks, ROLL)
    assert acct.day_opened_trades == 0
    assert acct.check(make_order(quantity=0.1, ts=ROLL), marks, ROLL).accepted


# ---------------------------------------------------------------- COOLDOWN
def test_cooldown_rejects_until_exactly_n_seconds_after_a_losing_close(marks):
    acct = _acct(cooldown_seconds=300)
    trade = _round_trip(acct, marks, T0, 100, close_price=0.999, quantity=0.1)  # −10 USD
    assert trade["pnl"] == pytest.approx(-10)
    closed_at = T0 + 100
    assert acct.last_losing_close == closed_at
    d = acct.check(make_order(), marks, closed_at + 300 - 0.001)
    assert codes(d) == [ReasonCode.COOLDOWN]
    r = reason(d, ReasonCode.COOLDOWN)
    assert r.limit == 300 and r.value == pytest.approx(299.999, abs=1e-5)
    assert acct.check(make_order(), marks, closed_at + 300).accepted


def test_cooldown_is_not_started_by_a_winning_close(marks):
    acct = _acct(cooldown_seconds=300)
    trade = _round_trip(acct, marks, T0, 100, close_price=1.001, quantity=0.1)  # +10 USD
    assert trade["pnl"] == pytest.approx(10)
    assert acct.last_losing_close is None
    assert acct.check(make_order(), marks, T0 + 101).accepted


def test_cooldown_counts_commission_in_the_closed_result(marks):
    acct = _acct(cooldown_seconds=300)
    acct.apply_fill(make_fill(quantity=0.1, price=1.0, ts=T0), marks, T0)
    acct.apply_fill(make_fill(side="sell", quantity=0.1, price=1.0001, commission=-2, ts=T0 + 100), marks, T0 + 100)
    assert acct.closed_trades[-1].pnl == pytest.approx(-1)  # +1 gross, −2 commission
    assert codes(acct.check(make_order(), marks, T0 + 101)) == [ReasonCode.COOLDOWN]


def test_cooldown_off_by_default(marks):
    acct = _acct()
    _round_trip(acct, marks, T0, 100, close_price=0.999, quantity=0.1)
    assert acct.check(make_order(), marks, T0 + 101).accepted


# ---------------------------------------------------------------- NEWS_BLACKOUT
def _news(at, **kw):
    return NewsCalendar([CalendarEvent("ev-1", at, "NFP", **kw)])


@pytest.mark.parametrize("offset", [30 * 60, -30 * 60, 0])
def test_news_blackout_boundary_is_inclusive(marks, offset):
    acct = _acct(news_blackout_minutes=30)
    d = acct.check(make_order(), marks, T0, _news(T0 + offset, currencies=("USD",)))
    assert codes(d) == [ReasonCode.NEWS_BLACKOUT]
    r = reason(d, ReasonCode.NEWS_BLACKOUT)
    assert r.limit == 30 and r.value == pytest.approx(abs(offset) / 60)


@pytest.mark.parametrize("offset", [30 * 60 + 0.001, -30 * 60 - 0.001])
def test_news_event_just_outside_the_window_is_ignored(marks, offset):
    acct = _acct(news_blackout_minutes=30)
    assert acct.check(make_order(), marks, T0, _news(T0 + offset, currencies=("USD",))).accepted


@pytest.mark.parametrize("currency", ["EUR", "USD"])
def test_news_blackout_applies_through_the_base_or_quote_currency(marks, currency):
    acct = _acct(news_blackout_minutes=30)
    d = acct.check(make_order("EURUSD"), marks, T0, _news(T0 + 60, currencies=(currency,)))
    assert codes(d) == [ReasonCode.NEWS_BLACKOUT]


def test_news_blackout_applies_through_the_symbol_only_to_that_symbol():
    marks = make_marks(("EURUSD", 1.0), ("GBPUSD", 1.0))
    acct = _acct(news_blackout_minutes=30)
    news = _news(T0 + 60, instruments=("EURUSD",))
    assert codes(acct.check(make_order("EURUSD"), marks, T0, news)) == [ReasonCode.NEWS_BLACKOUT]
    assert acct.check(make_order("GBPUSD"), marks, T0, news).accepted


def test_news_on_an_unrelated_currency_leaves_the_instrument_alone():
    marks = make_marks(("EURUSD", 1.0), ("USDJPY", 100.0))
    acct = _acct(news_blackout_minutes=30)
    news = _news(T0, currencies=("JPY",))
    assert acct.check(make_order("EURUSD"), marks, T0, news).accepted
    assert codes(acct.check(make_order("USDJPY"), marks, T0, news)) == [ReasonCode.NEWS_BLACKOUT]


def test_news_blackout_off_when_the_plan_has_none(marks):
    assert _acct().check(make_order(), marks, T0, _news(T0, currencies=("USD",))).accepted


# ---------------------------------------------------------------- WEEKEND_HOLDING
#: Friday weekly closes (17:00 New York) in daylight time and in standard time.
FRIDAYS = [(2025, 5, 9), (2025, 1, 10)]


@pytest.mark.parametrize("friday", FRIDAYS)
def test_weekend_holding_rejects_within_the_buffer_before_the_weekly_close(marks, friday):
    acct = _acct(weekend_buffer_minutes=30, now=ny(*friday, 9, 0))
    assert acct.limits.schedule.weekly_close == "Fri 17:00 America/New_York"
    for now, left in ((ny(*friday, 16, 30), 30.0), (ny(*friday, 16, 59, 59), 1 / 60), (ny(*friday, 17, 0), 0.0)):
        d = acct.check(make_order(ts=now), marks, now)
        assert codes(d) == [ReasonCode.WEEKEND_HOLDING], now
        r = reason(d, ReasonCode.WEEKEND_HOLDING)
        assert r.limit == 30 and r.value == pytest.approx(left)


@pytest.mark.parametrize("friday", FRIDAYS)
def test_weekend_holding_accepts_just_outside_the_buffer(marks, friday):
    acct = _acct(weekend_buffer_minutes=30, now=ny(*friday, 9, 0))
    assert acct.check(make_order(), marks, ny(*friday, 16, 29, 59)).accepted
    assert acct.check(make_order(), marks, ny(*friday, 17, 0, 1)).accepted  # next close is a week away


def test_weekend_holding_view_warns_about_open_positions_inside_the_buffer(marks):
    friday = (2025, 5, 9)
    acct = _acct(weekend_buffer_minutes=30, now=ny(*friday, 9, 0))
    assert WarningCode.WEEKEND_HOLDING_WARNING not in warning_codes(account_view(acct, marks, ny(*friday, 16, 45)))  # flat
    acct.apply_fill(make_fill(quantity=0.1, price=1.0, ts=ny(*friday, 10, 0)), marks, ny(*friday, 10, 0))
    outside = account_view(acct, marks, ny(*friday, 16, 29, 59))
    assert WarningCode.WEEKEND_HOLDING_WARNING not in warning_codes(outside)
    inside = account_view(acct, marks, ny(*friday, 16, 45))
    w = warning(inside, WarningCode.WEEKEND_HOLDING_WARNING)
    assert w["limit"] == 30 and w["value"] == pytest.approx(15)


def test_weekend_holding_off_by_default(marks):
    acct = _acct(now=ny(2025, 5, 9, 9, 0))
    acct.apply_fill(make_fill(quantity=0.1, price=1.0, ts=ny(2025, 5, 9, 10)), marks, ny(2025, 5, 9, 10))
    now = ny(2025, 5, 9, 16, 59)
    assert acct.check(make_order(), marks, now).accepted
    assert WarningCode.WEEKEND_HOLDING_WARNING not in warning_codes(account_view(acct, marks, now))


# ---------------------------------------------------------------- HEDGING_ACROSS_ACCOUNTS
def _peered(side, longs=(), shorts=()):
    return replace(make_order(side=side), peers=(tuple(longs), tuple(shorts)))


@pytest.mark.parametrize("side,longs,shorts", [("buy", (), ("acc-2",)), ("sell", ("acc-2", "acc-3"), ())])
def test_hedging_across_accounts_reject_on_the_opposite_direction(marks, side, longs, shorts):
    acct = _acct(hedging_across_accounts="reject")
    d = acct.check(_peered(side, longs, shorts), marks, T0)
    assert codes(d) == [ReasonCode.HEDGING_ACROSS_ACCOUNTS]
    r = reason(d, ReasonCode.HEDGING_ACROSS_ACCOUNTS)
    assert r.limit is None and r.value is None
    assert "acc-2" in r.message


@pytest.mark.parametrize("side,longs,shorts", [("buy", ("acc-2",), ()), ("sell", (), ("acc-2",))])
def test_hedging_across_accounts_same_direction_is_fine(marks, side, longs, shorts):
    acct = _acct(hedging_across_accounts="reject")
    d = acct.check(_peered(side, longs, shorts), marks, T0)
    assert d.accepted and WarningCode.HEDGING_ACROSS_ACCOUNTS_WARNING not in warning_codes(d)


def test_hedging_across_accounts_warn_accepts_with_a_warning(marks):
    acct = _acct(hedging_across_accounts="warn")
    d = acct.check(_peered("buy", shorts=("acc-2",)), marks, T0)
    assert d.accepted
    assert warning_codes(d) == [WarningCode.HEDGING_ACROSS_ACCOUNTS_WARNING]


def test_hedging_across_accounts_off_ignores_peers(marks):
    d = _acct().check(_peered("buy", shorts=("acc-2",)), marks, T0)
    assert d.accepted and d.warnings == ()


def test_hedging_across_accounts_without_peer_information_is_fine(marks):
    acct = _acct(hedging_across_accounts="reject")
    assert acct.check(make_order(), marks, T0).accepted


# ---------------------------------------------------------------- HFT
def test_trade_closed_at_59_9_seconds_counts_as_hft_and_at_60_does_not(marks):
    acct = _acct(hft_max_trades=5)
    _round_trip(acct, marks, T0, 59.9)
    assert acct.hft_count == 1
    _round_trip(acct, marks, T0 + 100, 60.0)
    assert acct.hft_count == 1
    assert account_view(acct, marks, T0 + 200)["hft_count"] == 1


def test_hft_at_the_max_is_accepted_beyond_it_rejected_when_the_plan_says_reject(marks):
    acct = _acct(hft_max_trades=1, hft_action="reject")
    _round_trip(acct, marks, T0, 59.9)
    d = acct.check(make_order(), marks, T0 + 100)
    assert d.accepted and WarningCode.HFT_WARNING not in warning_codes(d)  # 1 ≤ 1
    _round_trip(acct, marks, T0 + 100, 10)
    d = acct.check(make_order(), marks, T0 + 200)
    assert codes(d) == [ReasonCode.HFT_LIMIT]
    r = reason(d, ReasonCode.HFT_LIMIT)
    assert r.limit == 1 and r.value == 2


def test_hft_beyond_the_max_warns_when_the_plan_says_warn(marks):
    acct = _acct(hft_max_trades=1, hft_action="warn")
    _round_trip(acct, marks, T0, 59.9)
    _round_trip(acct, marks, T0 + 100, 10)
    d = acct.check(make_order(), marks, T0 + 200)
    assert d.accepted
    w = warning(d, WarningCode.HFT_WARNING)
    assert w.limit == 1 and w.value == 2


def test_hft_zero_allowed_rejects_after_the_first(marks):
    acct = _acct(hft_max_trades=0, hft_action="reject")
    assert acct.check(make_order(), marks, T0).accepted
    _round_trip(acct, marks, T0, 1)
    assert codes(acct.check(make_order(), marks, T0 + 2)) == [ReasonCode.HFT_LIMIT]


# ---------------------------------------------------------------- a reducing order is never blocked
def _setup_nothing(acct, marks):
    return T0 + 10, None


def _setup_losing_close(acct, marks):
    set_mark(marks, "GBPUSD", 1.0)
    _round_trip(acct, marks, T0 + 1, 100, close_price=0.999, symbol="GBPUSD", quantity=0.1)
    return T0 + 102, None


def _setup_news(acct, marks):
    return T0 + 10, _news(T0 + 10, currencies=("USD", "EUR"))


def _setup_friday(acct, marks):
    return ny(2025, 5, 9, 16, 50), None


def _setup_hft(acct, marks):
    set_mark(marks, "GBPUSD", 1.0)
    _round_trip(acct, marks, T0 + 1, 1, symbol="GBPUSD")
    return T0 + 10, None


BLOCKING_RULES = {
    "stop_loss_required": ({"stop_loss_required": True}, _setup_nothing, ReasonCode.STOP_LOSS_REQUIRED),
    "take_profit_required": ({"take_profit_required": True}, _setup_nothing, ReasonCode.TAKE_PROFIT_REQUIRED),
    "max_risk_per_trade": ({"max_risk_per_trade_fraction": 0.01}, _setup_nothing, ReasonCode.MAX_RISK_PER_TRADE),
    "max_daily_trades": ({"max_daily_trades": 1}, _setup_nothing, ReasonCode.MAX_DAILY_TRADES),
    "cooldown": ({"cooldown_seconds": 300}, _setup_losing_close, ReasonCode.COOLDOWN),
    "news_blackout": ({"news_blackout_minutes": 30}, _setup_news, ReasonCode.NEWS_BLACKOUT),
    "weekend_holding": ({"weekend_buffer_minutes": 30}, _setup_friday, ReasonCode.WEEKEND_HOLDING),
    "hedging_across_accounts": ({"hedging_across_accounts": "reject"}, _setup_nothing,
                                ReasonCode.HEDGING_ACROSS_ACCOUNTS),
    "hft": ({"hft_max_trades": 0, "hft_action": "reject"}, _setup_hft, ReasonCode.HFT_LIMIT),
}


@pytest.mark.parametrize("rule", sorted(BLOCKING_RULES))
def test_reducing_order_is_never_blocked_by_an_order_rule(marks, rule):
    overrides, setup, code = BLOCKING_RULES[rule]
    acct = _acct(**overrides)
    acct.apply_fill(make_fill(quantity=1.0, price=1.0), marks, T0)  # long 1 lot EURUSD
    now, news = setup(acct, marks)
    peers = (("acc-2",), ("acc-3",))  # the user is long and short elsewhere: any side is "opposite"
    opening = replace(make_order("EURUSD", "buy", 0.01, ts=now), peers=peers)
    d = acct.check(opening, marks, now, news)
    assert code in codes(d), codes(d)
    for qty in (0.5, 1.0):
        closing = replace(make_order("EURUSD", "sell", qty, ts=now), peers=peers)
        d = acct.check(closing, marks, now, news)
        assert d.accepted and d.reduces_position and d.reasons == (), (qty, codes(d))
    out = acct.submit(replace(make_order("EURUSD", "sell", 1.0, ts=now), peers=peers), marks, now, news)
    assert accepted(out) and out["reduces_position"] is True
