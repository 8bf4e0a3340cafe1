"""Prop-firm order rules of a plan: rules on each order that opens exposure.

A position-reducing order is never blocked by them, so a trader can always close. Each rule
is off when its plan parameter is ``None`` (or ``False``). Money is in account currency.

=========================  =================================================================
code                       rule (plan parameter) — source
=========================  =================================================================
STOP_LOSS_REQUIRED         no ``stop_loss`` on the order (``stop_loss_required``) — funded-
                           account terms of several firms (e.g. FundingPips, The5ers)
TAKE_PROFIT_REQUIRED       no ``take_profit`` on the order (``take_profit_required``)
MAX_RISK_PER_TRADE         loss at the stop-loss > ``max_risk_per_trade_fraction`` × balance;
                           an order without a stop-loss has unbounded risk and is rejected —
                           The5ers' and FundingPips' per-trade risk caps
MAX_DAILY_TRADES           trades opened this trading day (opening fills + pending opening
                           orders) + 1 > ``max_daily_trades``
COOLDOWN                   now < last losing close + ``cooldown_seconds``
NEWS_BLACKOUT              a calendar event affecting the instrument (its symbol, base or
                           quote currency) within ± ``news_blackout_minutes`` of now —
                           FTMO's / FundingPips' news-trading restriction (funded accounts)
WEEKEND_HOLDING            within ``weekend_buffer_minutes`` before ``weekly_close``; open
                           positions then raise ``WEEKEND_HOLDING_WARNING`` — FTMO's
                           weekend-holding rule (standard accounts must be flat)
HEDGING_ACROSS_ACCOUNTS    the user holds the opposite direction on the same instrument in
                           another account (``hedging_across_accounts``: ``reject`` or
                           ``warn``) — FTMO's and FundingPips' ban on hedging across accounts
HFT_LIMIT                  more than ``hft_max_trades`` trades closed within ``hft_seconds``
                           of opening (``hft_action``: ``reject``; ``warn`` gives
                           ``HFT_WARNING``) — HFT bans of FTMO and FundingPips
DAILY_LOSS_LIMIT (soft)    a soft daily-loss breach today blocks new orders until the next
                           trading day (``daily_loss_mode: soft``) — Topstep's daily loss limit
=========================  =================================================================
"""

from __future__ import annotations

from .accountstate import AccountState
from .codes import ReasonCode, RuleAction, WarningCode
from .instruments import Instrument
from .model import MONEY_EPS, Order, Reason
from .news import NewsCalendar
from .tradingday import WeeklyClose
from .valuation import loss_at_stop

__all__ = ["hft_reason", "opening_rules", "weekend_warning"]


def hft_reason(acct: AccountState) -> Reason | None:
    """``HFT_LIMIT`` (reject) or ``HFT_WARNING`` when the HFT count is beyond the plan's."""
    rules = acct.limits.orders
    if rules.hft_max_trades is None or acct.hft_count <= rules.hft_max_trades:
        return None
    code = ReasonCode.HFT_LIMIT if rules.hft_action is RuleAction.REJECT else WarningCode.HFT_WARNING
    return Reason(code, f"{acct.hft_count} trades closed within {rules.hft_seconds:g} s > max {rules.hft_max_trades}",
                  float(rules.hft_max_trades), float(acct.hft_count))


def weekend_warning(acct: AccountState, now: float) -> Reason | None:
    """``WEEKEND_HOLDING_WARNING`` when positions are open within the weekend buffer."""
    minutes = acct.limits.orders.weekend_buffer_minutes
    if minutes is None or not acct.positions:
        return None
    weekly_close = acct.limits.schedule.weekly_close
    left = WeeklyClose.parse(weekly_close).minutes_to_close(now)
    if left > minutes:
        return None
    return Reason(WarningCode.WEEKEND_HOLDING_WARNING,
                  f"{len(acct.positions)} position(s) open {left:.1f} min before the weekly close "
                  f"({weekly_close})", minutes, left)


def opening_rules(acct: AccountState, order: Order, inst: Instrument | None, price: float | None,
                  rate: float | None, now: float, news: NewsCalendar | None) -> tuple[list[Reason], list[Reason]]:
    """Order-level prop-firm rules for an order that opens exposure (module docstring).

    Parameters
    ----------
    price, rate : float or None
        Order price (quote currency) and quote→account rate, when known (``MAX_RISK_PER_TRADE``
        needs both).

    Returns
    -------
    (reasons, warnings)
    """
    rules = acct.limits.orders
    reasons: list[Reason] = []
    warnings: list[Reason] = []
    day = acct.trading_day.isoformat()
    if acct.soft_blocked_day == acct.trading_day:
        reasons.append(Reason(ReasonCode.DAILY_LOSS_LIMIT,
                              f"soft daily-loss breach on {day}: new orders are blocked until the next trading day",
                              acct.limits.loss.daily_loss_limit, None))
    if rules.stop_loss_required and order.stop_loss is None:
        reasons.append(Reason(ReasonCode.STOP_LOSS_REQUIRED, "the plan requires a stop-loss on every new order"))
    if rules.take_profit_required and order.take_profit is None:
        reasons.append(Reason(ReasonCode.TAKE_PROFIT_REQUIRED, "the plan requires a take-profit on every new order"))
    if rules.max_risk_per_trade_fraction is not None:
        reasons.extend(_risk_per_trade(acct, order, inst, price, rate))
    if rules.max_daily_trades is not None:
        count = acct.day_opened_trades + acct.pending_opening_orders() + 1
        if count > rules.max_daily_trades:
            reasons.append(Reason(ReasonCode.MAX_DAILY_TRADES,
                                  f"{count} trades opened on {day} with this order > max {rules.max_daily_trades}",
                                  float(rules.max_daily_trades), float(count)))
    if rules.cooldown_seconds is not None and acct.last_losing_close is not None:
        until = acct.last_losing_close + rules.cooldown_seconds
        if now < until:
            reasons.append(Reason(ReasonCode.COOLDOWN,
                                  f"cooldown after a losing close: {until - now:.1f} s left of "
                                  f"{rules.cooldown_seconds:g} s", rules.cooldown_seconds,
                                  now - acct.last_losing_close))
    if rules.news_blackout_minutes is not None and news is not None and inst is not None:
        for e in news.near(inst, now, rules.news_blackout_minutes):
            reasons.append(Reason(ReasonCode.NEWS_BLACKOUT,
                                  f"news blackout: {e.title or e.event_id} at {e.at:.0f} is within "
                                  f"±{rules.news_blackout_minutes:g} min", rules.news_blackout_minutes,
                                  abs(e.at - now) / 60.0))
    if rules.weekend_buffer_minutes is not None:
        weekly_close = acct.limits.schedule.weekly_close
        left = WeeklyClose.parse(weekly_close).minutes_to_close(now)
        if left <= rules.weekend_buffer_minutes:
            reasons.append(Reason(ReasonCode.WEEKEND_HOLDING,
                                  f"{left:.1f} min before the weekly close ({weekly_close}) "
                                  f"≤ {rules.weekend_buffer_minutes:g} min: no new positions",
                                  rules.weekend_buffer_minutes, left))
    if rules.hedging_across_accounts is not None and order.peers:
        longs, shorts = order.peers
        opposite = shorts if order.side == "buy" else longs
        if opposite:
            code = (ReasonCode.HEDGING_ACROSS_ACCOUNTS if rules.hedging_across_accounts is RuleAction.REJECT
                    else WarningCode.HEDGING_ACROSS_ACCOUNTS_WARNING)
            r = Reason(code, f"user {acct.user_id} holds the opposite direction on {order.instrument} in "
                             f"account(s) {', '.join(sorted(opposite))}")
            (reasons if code is ReasonCode.HEDGING_ACROSS_ACCOUNTS else warnings).append(r)
    hft = hft_reason(acct)
    if hft is not None:
        (reasons if hft.code is ReasonCode.HFT_LIMIT else warnings).append(hft)
    return reasons, warnings


def _risk_per_trade(acct: AccountState, order: Order, inst: Instrument | None, price: float | None,
                    rate: float | None) -> list[Reason]:
    frac = acct.limits.orders.max_risk_per_trade_fraction
    allowed = frac * acct.balance
    if order.stop_loss is None:
        return [Reason(ReasonCode.MAX_RISK_PER_TRADE,
                       f"no stop-loss: the risk of the order is unbounded (max {frac:.2%} of balance)", allowed, None)]
    if inst is None or price is None or rate is None:
        return []  # NO_PRICE / NO_CONVERSION_RATE / UNKNOWN_INSTRUMENT already reject the order
    sign = 1 if order.side == "buy" else -1
    q = order.quantity if isinstance(order.quantity, (int, float)) and order.quantity > 0 else 0.0
    loss = loss_at_stop(price, order.stop_loss, sign, q, inst, rate)
    if loss > allowed + MONEY_EPS:
        return [Reason(ReasonCode.MAX_RISK_PER_TRADE,
                       f"loss at stop-loss {loss:,.2f} {acct.currency} > {frac:.2%} of balance "
                       f"({allowed:,.2f} {acct.currency})", allowed, loss)]
    return []
