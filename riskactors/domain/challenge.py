"""Challenge objectives (profit target, minimum trading days, consistency, time limit) and
limit-reduction recommendations.

Objectives (FTMO's published evaluation objectives; consistency as FundingPips and The5ers
state it):

- profit target met when balance − initial balance ≥ ``profit_target`` (closed profit) and
  the account is flat;
- minimum trading days met when the days with at least one trade opened ≥ ``min_trading_days``;
- consistency met when the best trading day's closed profit ≤ ``consistency_fraction`` × total
  closed profit (reported as a condition for passing, never a breach);
- time limit: ``time_limit_days`` calendar days (× 86,400 s) after the account's start the
  account fails with ``TIME_LIMIT`` unless it has passed.

An account with a profit target passes (status ``passed``) when every objective is met.

Recommendations: at each day roll, a losing streak of ``recommend_losing_streak_days`` trading
days (days whose closed result is < 0; days without closed results are skipped) or one day's
closed loss beyond ``recommend_day_loss_fraction`` × that day's start balance recommends cutting
``daily_loss_limit`` and ``max_position_lots`` by ``recommend_reduction``. Nothing changes until
ops apply it. House rule of this project, modelled on the seed risk-signal service's
"reduce limits after repeated losses" guidance.
"""

from __future__ import annotations

import math
from typing import Any

from .accountstate import AccountState

__all__ = ["objectives", "recommendation"]


def objectives(acct: AccountState, now: float) -> dict[str, Any]:
    """Progress of ``acct`` towards passing (module docstring). Money in account currency.

    Returns
    -------
    dict
        ``profit_target`` {target, profit, met}, ``min_trading_days`` {required, days, met},
        ``consistency`` {max_fraction, best_day_profit, total_profit, best_day_share, met},
        ``time_limit`` {days, deadline, expired}, ``flat``, ``all_met`` (every objective met and
        the plan has a profit target).
    """
    limits = acct.limits.objectives
    profit = acct.balance - acct.initial_balance
    target_met = limits.profit_target is None or profit >= limits.profit_target - 1e-6
    days = acct.trading_days
    days_met = days >= limits.min_trading_days
    best = max(acct.day_results.values(), default=0.0)
    share = best / profit if profit > 0 else None
    if limits.consistency_fraction is None:
        consistent = True
    else:
        consistent = profit > 0 and best <= limits.consistency_fraction * profit + 1e-6
    deadline = acct.time_limit_deadline()
    expired = deadline is not None and now >= deadline
    flat = not acct.positions
    return {
        "profit_target": {"target": limits.profit_target, "profit": profit, "met": target_met},
        "min_trading_days": {"required": limits.min_trading_days, "days": days, "met": days_met},
        "consistency": {"max_fraction": limits.consistency_fraction, "best_day_profit": best,
                        "total_profit": profit, "best_day_share": share, "met": consistent},
        "time_limit": {"days": limits.time_limit_days, "deadline": deadline, "expired": expired},
        "flat": flat,
        "all_met": limits.profit_target is not None and target_met and days_met and consistent and flat,
    }


def recommendation(acct: AccountState, day: str, result: float, start_balance: float, losing_days: int,
                   now: float) -> dict[str, Any] | None:
    """A limit-reduction recommendation for the trading day ``day`` that just ended, or ``None``.

    Parameters
    ----------
    result : float
        The day's closed result (account currency; < 0 is a loss).
    start_balance : float
        Balance at the start of that day (account currency).
    losing_days : int
        Losing days in a row up to and including ``day`` (since the last recommendation).
    """
    limits = acct.limits.recommendations
    current = acct.limits.loss.daily_loss_limit, acct.limits.exposure.max_position_lots
    reasons = []
    if limits.recommend_losing_streak_days is not None and losing_days >= limits.recommend_losing_streak_days:
        reasons.append({"code": "LOSING_STREAK",
                        "message": f"{losing_days} losing trading days in a row "
                                   f"(≥ {limits.recommend_losing_streak_days})",
                        "limit": float(limits.recommend_losing_streak_days), "value": float(losing_days)})
    frac = limits.recommend_day_loss_fraction
    if frac is not None and start_balance > 0 and -result > frac * start_balance + 1e-6:
        reasons.append({"code": "DAY_LOSS",
                        "message": f"loss of {-result:,.2f} {acct.currency} on {day} > {frac:.2%} of the day's "
                                   f"start balance {start_balance:,.2f}",
                        "limit": frac * start_balance, "value": -result})
    if not reasons:
        return None
    cut = 1.0 - limits.recommend_reduction
    proposed_lots = math.floor(current[1] * cut * 100 + 1e-9) / 100
    return {
        "account_id": acct.account_id,
        "trading_day": day,
        "created_at": now,
        "status": "pending",
        "reasons": reasons,
        "reduction": limits.recommend_reduction,
        "current": {"daily_loss_limit": current[0], "max_position_lots": current[1]},
        "proposed": {"daily_loss_limit": current[0] * cut,
                     "max_position_lots": max(proposed_lots, 0.01)},
    }
