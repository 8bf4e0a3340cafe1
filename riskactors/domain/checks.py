"""The pre-trade check: a pure function of account state, its valuation, marks, order and time.

Every rule is evaluated and every reason that applies is returned. Rules and codes:

=====================  =====================================================================
code                   rule (money in account currency, lots per instrument)
=====================  =====================================================================
INVALID_ORDER          side not buy/sell; quantity ≤ 0, not finite, under the minimum lot or
                       not a multiple of the lot step; price/stop-loss/take-profit ≤ 0 or not
                       finite. (A stop-loss beyond the price is allowed — traders move stops
                       into profit — and then adds no loss to the projections below.)
UNKNOWN_INSTRUMENT     symbol not in the registry
KILL_SWITCH            an active switch in scope account/user/challenge/firm: ``halt`` rejects
                       everything, ``reduce_only`` everything but position-reducing orders
ACCOUNT_NOT_ACTIVE     status ``disabled``; or ``failed`` / ``passed`` and the order is not
                       reducing
NO_PRICE               no mark for the instrument and no limit price
NO_CONVERSION_RATE     no quote→account rate from marks (fail closed, never assume 1.0)
STALE_PRICE            a market order priced on a mark older than the maximum mark age, or a
                       P&L conversion through a rate older than it (a cross through USD is as
                       old as its older leg); age = check time − mark time, ≥ 0; the maximum is
                       the plan's ``max_mark_age_seconds`` or the instrument's (≤ 300 s).
                       ``stale_price_action: warn`` gives ``STALE_PRICE_WARNING`` instead
ORDER_RATE_LIMIT       checks in the sliding second (now − 1 s, now], this one included,
                       > max_orders_per_second
MAX_POSITION_SIZE      |position + same-direction reservations + order| > max_position_lots
                       (hedging: long lots + buys, or short lots + sells, on the instrument)
MAX_OPEN_POSITIONS     the order opens a new position and open positions (netting:
                       instruments with a position or reservation; hedging: tickets and
                       opening reservations) would exceed max_open_positions
MAX_LEVERAGE           Σ worst-case notional after the order / equity > max_leverage
INSUFFICIENT_MARGIN    margin after the order > equity × 100 / margin_call_level (with the
                       default level 100 %: free margin < 0)
DAILY_LOSS_LIMIT       (daily reference − equity) + the order's loss at its stop-loss > daily
                       limit, i.e. the stop would take equity below the daily floor (a profit
                       today counts as room)
MAX_LOSS_LIMIT         the same against the max-loss floor
=====================  =====================================================================

The prop-firm order rules of the plan (``STOP_LOSS_REQUIRED`` … ``HFT_LIMIT``) are in
:mod:`riskactors.domain.rules`.

Position-reducing orders (netting: opposite side, quantity ≤ position − pending reducing
orders; hedging: they name an open ticket in ``position_id``, opposite side, quantity ≤ the
ticket's lots − pending orders reducing it) are never blocked by exposure, price-age or plan
rules — only by the kill switch (``halt``) and ``disabled`` status — so a trader can always
close. Warnings (``*_WARNING``) are raised when a value reaches ``warning_fraction`` of its
limit. A value within :data:`MONEY_EPS` of its limit is accepted.
Worst-case exposure per instrument is max(|position + buy reservations|, |position + sell
reservations|), so two orders that each fit but together exceed a limit are not both accepted.
Hedging accounts count :func:`~riskactors.domain.valuation.effective_lots` of (long, short),
maximised over which of the pending buys and sells fill.
Sources: the seed risk-signal service's rule list; NautilusTrader's pre-trade risk engine
(denials carry a code and the numbers); MetaTrader margin and margin-level definitions.
"""

from __future__ import annotations

import math
from typing import Any

from .accountstate import AccountState
from .codes import AccountStatus, DecisionKind, KillMode, ReasonCode, RuleAction, Side, WarningCode
from .instruments import Instrument
from .limits import Limits
from .marks import LatestMarks
from .model import LOT_EPS, MONEY_EPS, Decision, Order, Reason
from .news import NewsCalendar
from .rules import opening_rules
from .valuation import Valuation, effective_lots, instrument_exposure, loss_at_stop, price_of, rate_of, risk_score

__all__ = ["check_order", "current_metrics", "limit_warnings", "max_mark_age", "reduces_position"]


def _fmt(x: float) -> str:
    return f"{x:,.2f}"


def limit_warnings(limits: Limits, leverage: float, margin: float, margin_allowed: float, daily_loss: float,
                   max_loss: float, ccy: str) -> list[Reason]:
    """``*_WARNING`` reasons for the figures that reach ``warning_fraction`` of their limit."""
    wf = limits.warning_fraction
    max_leverage = limits.exposure.max_leverage
    daily_limit, max_limit = limits.loss.daily_loss_limit, limits.loss.max_loss_limit
    lev, mar, day, mx = _limit_hits(limits, leverage, margin, margin_allowed, daily_loss, max_loss)
    out: list[Reason] = []
    if lev:
        out.append(Reason(WarningCode.LEVERAGE_WARNING, f"leverage {leverage:.2f}x ≥ {wf:.0%} of max {max_leverage:g}x",
                          max_leverage, leverage))
    if mar:
        out.append(Reason(WarningCode.MARGIN_WARNING,
                          f"margin {_fmt(margin)} {ccy} ≥ {wf:.0%} of allowed {_fmt(margin_allowed)} {ccy}",
                          margin_allowed, margin))
    if day:
        out.append(Reason(WarningCode.DAILY_LOSS_WARNING,
                          f"daily loss {_fmt(daily_loss)} {ccy} ≥ {wf:.0%} of limit {_fmt(daily_limit)} {ccy}",
                          daily_limit, daily_loss))
    if mx:
        out.append(Reason(WarningCode.MAX_LOSS_WARNING,
                          f"max loss {_fmt(max_loss)} {ccy} ≥ {wf:.0%} of limit {_fmt(max_limit)} {ccy}",
                          max_limit, max_loss))
    return out


def _limit_hits(limits: Limits, leverage: float, margin: float, margin_allowed: float, daily_loss: float,
                max_loss: float) -> tuple[bool, bool, bool, bool]:
    """Which of leverage, margin, daily and max loss reach ``warning_fraction`` of their limit
    (the conditions of :func:`limit_warnings`)."""
    wf = limits.warning_fraction
    return (leverage != math.inf and leverage >= wf * limits.exposure.max_leverage - 1e-12 and leverage > 0,
            margin > 0 and margin >= wf * margin_allowed - MONEY_EPS,
            daily_loss > 0 and daily_loss >= wf * limits.loss.daily_loss_limit - MONEY_EPS,
            max_loss > 0 and max_loss >= wf * limits.loss.max_loss_limit - MONEY_EPS)


def _utilisation(acct: AccountState, val: Valuation) -> tuple[dict[str, float], float]:
    limits = acct.limits
    allowed = val.margin_allowed
    leverage = val.notional / val.equity if val.equity > 0 else math.inf
    return {
        "leverage": leverage / limits.exposure.max_leverage,
        "margin": (val.margin / allowed) if allowed > 0 else (1.0 if val.margin > 0 else 0.0),
        "daily_loss": val.daily_loss / limits.loss.daily_loss_limit,
        "max_loss": val.max_loss / limits.loss.max_loss_limit,
        "positions": len(acct.positions) / limits.exposure.max_open_positions,
    }, leverage


def current_metrics(acct: AccountState, val: Valuation) -> dict[str, Any]:
    """Risk score, warnings and utilisation (0–1 per limit) of the positions held now (no
    order, no reservations): ``{"risk_score", "warnings", "utilisation"}``."""
    util, leverage = _utilisation(acct, val)
    warnings = limit_warnings(acct.limits, leverage, val.margin, val.margin_allowed, val.daily_loss, val.max_loss,
                              acct.currency)
    return {"risk_score": risk_score(util, acct.status is AccountStatus.FAILED), "warnings": warnings,
            "utilisation": util}


def risk_and_warned(acct: AccountState, val: Valuation) -> tuple[float, bool]:
    """:func:`current_metrics`'s risk score, and whether it has any warning, without making
    the warnings (the consolidation rows need only that much)."""
    util, leverage = _utilisation(acct, val)
    return (risk_score(util, acct.status is AccountStatus.FAILED),
            any(_limit_hits(acct.limits, leverage, val.margin, val.margin_allowed, val.daily_loss, val.max_loss)))


def _valid_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _validate(order: Order, inst: Instrument | None) -> list[Reason]:
    bad: list[str] = []
    if order.side not in (Side.BUY.value, Side.SELL.value):
        bad.append(f"side must be buy or sell, got {order.side!r}")
    q = order.quantity
    if not _valid_number(q) or q <= 0:
        bad.append(f"quantity must be > 0 lots, got {q!r}")
    elif inst is not None:
        if q < inst.min_lot - LOT_EPS:
            bad.append(f"quantity {q:g} lots under the minimum {inst.min_lot:g}")
        steps = q / inst.lot_step
        if not math.isfinite(steps):  # round(inf) raises: an absurd size is invalid, not a crash
            bad.append(f"quantity {q:g} lots is too large")
        elif abs(steps - round(steps)) > 1e-6:
            bad.append(f"quantity {q:g} lots not a multiple of the lot step {inst.lot_step:g}")
    for name in ("price", "stop_loss", "take_profit"):
        v = getattr(order, name)
        if v is not None and (not _valid_number(v) or v <= 0):
            bad.append(f"{name} must be > 0, got {v!r}")
    return [Reason(ReasonCode.INVALID_ORDER, f"invalid order: {m}") for m in bad]


def max_mark_age(acct: AccountState, inst: Instrument) -> float:
    """Maximum mark age (seconds) for ``inst`` on ``acct``: the plan's, else the instrument's."""
    override = acct.limits.orders.max_mark_age_seconds
    return inst.max_mark_age_seconds if override is None else override


def reduces_position(acct: AccountState, order: Order) -> bool:
    """Does ``order`` only reduce a position, within what pending orders are not closing?"""
    if order.side not in (Side.BUY.value, Side.SELL.value) or not _valid_number(order.quantity) \
            or order.quantity <= 0:
        return False
    q = order.quantity
    delta = Side(order.side).sign * q
    if acct.hedging:
        pos = acct.positions.get(order.position_id) if order.position_id is not None else None
        if pos is None or pos.instrument != order.instrument or pos.quantity * delta >= 0:
            return False
        return q <= abs(pos.quantity) - acct.pending_reducing(pos.position_id) + LOT_EPS
    pos = acct.positions.get(order.instrument)
    held = pos.quantity if pos is not None else 0.0
    buys, sells = acct.reserved_lots(order.instrument)
    pending_reduce = sells if held > 0 else buys if held < 0 else 0.0
    return held * delta < 0 and q <= abs(held) - abs(pending_reduce) + LOT_EPS


def check_order(acct: AccountState, val: Valuation, latest: LatestMarks, order: Order, now: float,
                news: NewsCalendar | None = None) -> Decision:
    """Evaluate every rule for ``order`` (module docstring). Pure: nothing is changed.

    Parameters
    ----------
    acct : AccountState
    val : Valuation
        ``acct`` valued at ``latest`` (:func:`riskactors.domain.valuation.value`).
    latest : LatestMarks
    order : Order
    now : float
        The check's time, epoch seconds (its ``ts``): rate window, mark ages, time-based rules.
    news : NewsCalendar or None
        Calendar events for ``NEWS_BLACKOUT``.

    Returns
    -------
    Decision
        ``accept`` with warnings, or ``reject`` with every reason that applies.
    """
    limits = acct.limits
    inst = latest.registry.get(order.instrument)
    reasons: list[Reason] = _validate(order, inst)
    if inst is None:
        reasons.append(Reason(ReasonCode.UNKNOWN_INSTRUMENT, f"instrument {order.instrument!r} is not in the registry"))
    valid_side = order.side in (Side.BUY.value, Side.SELL.value)
    sign = Side(order.side).sign if valid_side else 0
    q = order.quantity if _valid_number(order.quantity) and order.quantity > 0 else 0.0
    reduces = reduces_position(acct, order)

    for sw in acct.switches.values():
        if sw.mode is KillMode.HALT or not reduces:
            where = "firm" if sw.scope_id is None else f"{sw.scope} {sw.scope_id}"
            reasons.append(Reason(ReasonCode.KILL_SWITCH,
                                  f"kill switch ({sw.mode}) active on {where}: {sw.reason} (by {sw.by})"))
    if acct.status is AccountStatus.DISABLED or (acct.status is not AccountStatus.ACTIVE and not reduces):
        reasons.append(Reason(ReasonCode.ACCOUNT_NOT_ACTIVE,
                              f"account is {acct.status}" + ("" if acct.status is AccountStatus.DISABLED
                                                             else "; only position-reducing orders are accepted")))

    warnings: list[Reason] = []
    score: float | None = None
    if inst is not None and valid_side and q > 0 and not reduces:
        price = order.price
        mark = latest.get(order.instrument)
        if price is None and mark is not None:
            price = mark.ask if sign > 0 else mark.bid
        quote = latest.quote(inst.quote_currency, acct.currency)
        rate = None if quote is None else quote.value
        if price is None:
            reasons.append(Reason(ReasonCode.NO_PRICE, f"no mark for {order.instrument} and no limit price"))
        if rate is None:
            reasons.append(Reason(ReasonCode.NO_CONVERSION_RATE,
                                  f"no {inst.quote_currency}->{acct.currency} rate from marks; check fails closed"))
        stale = _stale_prices(acct, inst, order, mark, quote, now)
        (reasons if limits.orders.stale_price_action is RuleAction.REJECT else warnings).extend(stale)
        count = acct.recent_check_count(now) + 1
        if count > limits.orders.max_orders_per_second:
            reasons.append(Reason(ReasonCode.ORDER_RATE_LIMIT,
                                  f"{count} orders in 1 s > max {limits.orders.max_orders_per_second}/s",
                                  float(limits.orders.max_orders_per_second), float(count)))
        if price is not None and rate is not None:
            reasons_exp, warn_exp, score = _exposure_rules(acct, val, latest, order, inst, sign, q, price, rate)
            reasons.extend(reasons_exp)
            warnings.extend(warn_exp)
        plan_reasons, plan_warnings = opening_rules(acct, order, inst, price, rate, now, news)
        if any(r.code == ReasonCode.DAILY_LOSS_LIMIT for r in reasons):  # one DAILY_LOSS_LIMIT, with numbers
            plan_reasons = [r for r in plan_reasons if r.code != ReasonCode.DAILY_LOSS_LIMIT]
        reasons.extend(plan_reasons)
        warnings.extend(plan_warnings)
    if score is None:  # not priced with the order: score and warn on the current state
        metrics = current_metrics(acct, val)
        score = metrics["risk_score"]
        warnings.extend(metrics["warnings"])

    decision = DecisionKind.REJECT if reasons else DecisionKind.ACCEPT
    return Decision(order.order_id, acct.account_id, decision, tuple(reasons), tuple(warnings), score, reduces)


def _stale_prices(acct: AccountState, inst: Instrument, order: Order, mark, quote, now: float) -> list[Reason]:
    """``STALE_PRICE`` (or its warning code) for an old mark or an old conversion rate."""
    limit = max_mark_age(acct, inst)
    code = ReasonCode.STALE_PRICE if acct.limits.orders.stale_price_action is RuleAction.REJECT \
        else WarningCode.STALE_PRICE_WARNING
    out: list[Reason] = []
    if order.price is None and mark is not None:
        age = max(0.0, now - mark.ts)
        if age > limit:
            out.append(Reason(code, f"{order.instrument} mark is {age:,.1f} s old > max {limit:g} s", limit, age))
    if quote is not None and quote.ts is not None:
        age = max(0.0, now - quote.ts)
        if age > limit:
            via = " × ".join(quote.pairs)
            out.append(Reason(code, f"{inst.quote_currency}->{acct.currency} rate ({via}) is {age:,.1f} s old > "
                                    f"max {limit:g} s", limit, age))
    return out


def _exposure_rules(acct: AccountState, val: Valuation, latest: LatestMarks, order: Order, inst: Instrument,
                    sign: int, q: float, price: float, rate: float) -> tuple[list[Reason], list[Reason], float]:
    limits = acct.limits
    exposure = limits.exposure
    ccy = acct.currency
    reasons: list[Reason] = []

    if acct.hedging:
        size_after, open_after, was_open, lots_by_instrument = _hedging_lots(acct, order.instrument, sign, q)
    else:
        size_after, open_after, was_open, lots_by_instrument = _netting_lots(acct, order.instrument, sign, q)
    if size_after > exposure.max_position_lots + LOT_EPS:
        reasons.append(Reason(ReasonCode.MAX_POSITION_SIZE,
                              f"{size_after:g} lots of {order.instrument} after the order > max "
                              f"{exposure.max_position_lots:g} lots", exposure.max_position_lots, size_after))
    if not was_open and open_after > exposure.max_open_positions:
        reasons.append(Reason(ReasonCode.MAX_OPEN_POSITIONS,
                              f"{open_after} open positions after the order > max {exposure.max_open_positions}",
                              float(exposure.max_open_positions), float(open_after)))

    notional = margin = 0.0
    for s, lots in lots_by_instrument.items():
        if lots <= LOT_EPS:
            continue
        i = latest.registry.get(s)
        if s == order.instrument:
            px, rt = (price_of(acct, latest, s) or price), rate
            if latest.get(s) is None:
                px = price
        else:
            px = price_of(acct, latest, s)
            rt = rate_of(acct, latest, i.quote_currency, s)
            if px is None:  # a reservation on a never-priced instrument: value it at its order price
                px = max((r.price or 0.0) for r in acct.reservations.values() if r.instrument == s)
            if rt is None:
                rt = 0.0
        e = instrument_exposure(i, lots, px, rt, limits)
        notional += e.notional
        margin += e.margin

    equity = val.equity
    if equity <= 0:
        reasons.append(Reason(ReasonCode.MAX_LEVERAGE, f"equity {_fmt(equity)} {ccy} ≤ 0: no leverage available",
                              exposure.max_leverage, None))
        leverage = math.inf
    else:
        leverage = notional / equity
        if leverage > exposure.max_leverage * (1 + 1e-12) + 1e-12:
            reasons.append(Reason(ReasonCode.MAX_LEVERAGE,
                                  f"leverage {leverage:.4f}x after the order (notional {_fmt(notional)} {ccy} / "
                                  f"equity {_fmt(equity)} {ccy}) > max {exposure.max_leverage:g}x",
                                  exposure.max_leverage, leverage))
    allowed = val.margin_allowed
    if margin > allowed + MONEY_EPS:
        reasons.append(Reason(ReasonCode.INSUFFICIENT_MARGIN,
                              f"margin {_fmt(margin)} {ccy} after the order > {_fmt(allowed)} {ccy} allowed "
                              f"(equity × 100 / margin call level {exposure.margin_call_level:g} %)", allowed, margin))

    sl_loss = loss_at_stop(price, order.stop_loss, sign, q, inst, rate)
    # signed: equity above the reference (a profit today / since the start) leaves more room
    # before the floor, exactly as the breach rule (equity < floor) sees it
    day_now = val.daily_reference - equity
    daily = day_now + sl_loss
    daily_limit, max_limit = limits.loss.daily_loss_limit, limits.loss.max_loss_limit
    if daily > daily_limit + MONEY_EPS:
        reasons.append(Reason(ReasonCode.DAILY_LOSS_LIMIT,
                              f"daily loss {_fmt(day_now)} {ccy} + loss at stop-loss {_fmt(sl_loss)} {ccy} "
                              f"> limit {_fmt(daily_limit)} {ccy}", daily_limit, daily))
    max_now = val.max_loss_floor + max_limit - equity
    total = max_now + sl_loss
    if total > max_limit + MONEY_EPS:
        reasons.append(Reason(ReasonCode.MAX_LOSS_LIMIT,
                              f"max loss {_fmt(max_now)} {ccy} + loss at stop-loss {_fmt(sl_loss)} {ccy} "
                              f"> limit {_fmt(max_limit)} {ccy}", max_limit, total))

    warnings = limit_warnings(limits, leverage, margin, allowed, daily, total, ccy)
    util = {
        "leverage": leverage / exposure.max_leverage,
        "margin": margin / allowed if allowed > 0 else 1.0,
        "daily_loss": daily / daily_limit,
        "max_loss": total / max_limit,
        "positions": open_after / exposure.max_open_positions,
    }
    return reasons, warnings, risk_score(util, acct.status is AccountStatus.FAILED)


def _netting_lots(acct: AccountState, symbol: str, sign: int, q: float) -> tuple[float, int, bool, dict[str, float]]:
    """Worst-case lots per instrument, max(|net + buys|, |net + sells|), with the order added.

    Returns (lots of ``symbol`` after, open instruments after, was ``symbol`` open, lots by instrument).
    """
    buckets: dict[str, list[float]] = {s: [p.quantity, 0.0, 0.0] for s, p in acct.positions.items()}
    for s, (buys, sells) in acct.reserved_instruments().items():
        b = buckets.setdefault(s, [0.0, 0.0, 0.0])
        b[1] += buys
        b[2] += sells

    def worst(bk):
        return max(abs(bk[0] + bk[1]), abs(bk[0] + bk[2]))

    b = buckets.get(symbol)
    was_open = b is not None and worst(b) > LOT_EPS
    b = buckets.setdefault(symbol, [0.0, 0.0, 0.0])
    b[1 if sign > 0 else 2] += sign * q
    lots = {s: worst(bk) for s, bk in buckets.items()}
    return lots[symbol], sum(1 for v in lots.values() if v > LOT_EPS), was_open, lots


def _hedging_lots(acct: AccountState, symbol: str, sign: int, q: float) -> tuple[float, int, bool, dict[str, float]]:
    """Hedging: per instrument (long, short) held plus opening buys / sells reserved, the order
    added; charged lots = max of :func:`effective_lots` over which pending side fills.

    Returns (max(long + buys, short + sells) of ``symbol``, open tickets after (tickets +
    opening reservations + this order), False (every order opens a ticket), lots by instrument).
    """
    factor = acct.limits.exposure.hedged_margin_factor
    sides: dict[str, list[float]] = {s: [l_, s_, 0.0, 0.0] for s, (l_, s_) in acct.held_lots().items()}
    for s, (buys, sells) in acct.reserved_instruments(opening_only=True).items():
        b = sides.setdefault(s, [0.0, 0.0, 0.0, 0.0])
        b[2] += buys
        b[3] -= sells
    b = sides.setdefault(symbol, [0.0, 0.0, 0.0, 0.0])
    b[2 if sign > 0 else 3] += q
    lots = {}
    for s, (long_, short, buys, sells) in sides.items():
        lots[s] = max(effective_lots(long_ + x, short + y, factor) for x in (0.0, buys) for y in (0.0, sells))
    long_, short, buys, sells = b
    size = max(long_ + buys, short + sells)
    open_after = len(acct.positions) + acct.pending_opening_orders() + 1
    return size, open_after, False, lots
