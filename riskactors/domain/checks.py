"""The pre-trade check: a pure function of account state, marks, order and time.

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
ACCOUNT_NOT_ACTIVE     status ``disabled``; or ``failed`` and the order is not reducing
NO_PRICE               no mark for the instrument and no limit price
NO_CONVERSION_RATE     no quote→account rate from marks (fail closed, never assume 1.0)
ORDER_RATE_LIMIT       checks in the sliding second (now − 1 s, now], this one included,
                       > max_orders_per_second
MAX_POSITION_SIZE      |position + same-direction reservations + order| > max_position_lots
MAX_OPEN_POSITIONS     the order opens a new instrument and instruments open (positions or
                       reservations) would exceed max_open_positions
MAX_LEVERAGE           Σ worst-case notional after the order / equity > max_leverage
INSUFFICIENT_MARGIN    margin after the order > equity × 100 / margin_call_level (with the
                       default level 100 %: free margin < 0)
DAILY_LOSS_LIMIT       current daily loss + the order's loss at its stop-loss > daily limit
MAX_LOSS_LIMIT         current max loss + the order's loss at its stop-loss > max loss limit
=====================  =====================================================================

Position-reducing orders (opposite side, quantity ≤ position − pending reducing orders) are
never blocked by exposure rules — only by the kill switch (``halt``) and ``disabled`` status —
so a trader can always close. Warnings (``*_WARNING``) are raised when a value reaches
``warning_fraction`` of its limit. A value within :data:`MONEY_EPS` of its limit is accepted.
Worst-case exposure per instrument is max(|position + buy reservations|, |position + sell
reservations|), so two orders that each fit but together exceed a limit are not both accepted.
Sources: the seed risk-signal service's rule list; NautilusTrader's pre-trade risk engine
(denials carry a code and the numbers); MetaTrader margin and margin-level definitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .codes import AccountStatus, DecisionKind, KillMode, ReasonCode, Side, WarningCode
from .model import LOT_EPS, MONEY_EPS, Decision, Order, Reason, Reservation
from .valuation import instrument_exposure, risk_score

if TYPE_CHECKING:  # pragma: no cover
    from .account import Account
    from .marks import MarkBook

__all__ = ["Snapshot", "check_order"]


@dataclass(slots=True)
class Snapshot:
    """An account valued against the marks at one instant (read-only helper)."""

    account: Account
    book: MarkBook
    floating_pnl: float
    equity: float
    per_position: dict[str, tuple[float, float, float]]

    @property
    def daily_loss(self) -> float:
        return max(0.0, self.account.daily_reference() - self.equity)

    @property
    def max_loss(self) -> float:
        return max(0.0, self.account.max_loss_reference() - self.equity)

    def margin_allowed(self) -> float:
        """Margin the equity supports at the margin-call level (account currency)."""
        return max(0.0, self.equity) * 100.0 / self.account.limits.margin_call_level

    def price_of(self, symbol: str) -> float | None:
        mark = self.book.get(symbol)
        if mark is not None:
            return mark.mid
        pos = self.account.positions.get(symbol)
        return pos.last_price if pos is not None else None

    def rate_of(self, quote: str, symbol: str) -> float | None:
        rate = self.book.rate(quote, self.account.currency)
        if rate is None and symbol in self.account.positions:
            return self.account.positions[symbol].last_conversion
        return rate

    def reservation_margin(self, r: Reservation) -> float:
        if r.reduces_position:
            return 0.0
        inst = self.book.registry.get(r.instrument)
        price = r.price if r.price is not None else self.price_of(r.instrument)
        rate = self.rate_of(inst.quote_currency, r.instrument) if inst else None
        if inst is None or price is None or rate is None:
            return 0.0
        return instrument_exposure(inst, r.quantity, price, rate, self.account.limits).margin

    def metrics(self, margin_used: float, notional: float, open_positions: int) -> dict[str, Any]:
        """Risk score and warnings for the given exposure figures."""
        limits = self.account.limits
        allowed = self.margin_allowed()
        leverage = notional / self.equity if self.equity > 0 else math.inf
        util = {
            "leverage": leverage / limits.max_leverage,
            "margin": (margin_used / allowed) if allowed > 0 else (1.0 if margin_used > 0 else 0.0),
            "daily_loss": self.daily_loss / limits.daily_loss_limit,
            "max_loss": self.max_loss / limits.max_loss_limit,
            "positions": open_positions / limits.max_open_positions,
        }
        warnings = _warnings(limits, leverage, margin_used, allowed, self.daily_loss, self.max_loss, self.account.currency)
        failed = self.account.status is AccountStatus.FAILED
        return {"risk_score": risk_score(util, failed), "warnings": warnings, "utilisation": util,
                "daily_loss": self.daily_loss, "max_loss": self.max_loss}


def _fmt(x: float) -> str:
    return f"{x:,.2f}"


def _warnings(limits, leverage, margin, margin_allowed, daily_loss, max_loss, ccy) -> list[Reason]:
    wf = limits.warning_fraction
    out: list[Reason] = []
    if leverage != math.inf and leverage >= wf * limits.max_leverage - 1e-12 and leverage > 0:
        out.append(Reason(WarningCode.LEVERAGE_WARNING, f"leverage {leverage:.2f}x ≥ {wf:.0%} of max {limits.max_leverage:g}x",
                          limits.max_leverage, leverage))
    if margin > 0 and margin >= wf * margin_allowed - MONEY_EPS:
        out.append(Reason(WarningCode.MARGIN_WARNING,
                          f"margin {_fmt(margin)} {ccy} ≥ {wf:.0%} of allowed {_fmt(margin_allowed)} {ccy}",
                          margin_allowed, margin))
    if daily_loss > 0 and daily_loss >= wf * limits.daily_loss_limit - MONEY_EPS:
        out.append(Reason(WarningCode.DAILY_LOSS_WARNING,
                          f"daily loss {_fmt(daily_loss)} {ccy} ≥ {wf:.0%} of limit {_fmt(limits.daily_loss_limit)} {ccy}",
                          limits.daily_loss_limit, daily_loss))
    if max_loss > 0 and max_loss >= wf * limits.max_loss_limit - MONEY_EPS:
        out.append(Reason(WarningCode.MAX_LOSS_WARNING,
                          f"max loss {_fmt(max_loss)} {ccy} ≥ {wf:.0%} of limit {_fmt(limits.max_loss_limit)} {ccy}",
                          limits.max_loss_limit, max_loss))
    return out


def _valid_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _validate(order: Order, inst) -> list[Reason]:
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


def check_order(snap: Snapshot, order: Order, now: float) -> Decision:
    """Evaluate every rule for ``order`` (see the module docstring). Pure: no state changes.

    Parameters
    ----------
    snap : Snapshot
        The account valued at the latest marks.
    order : Order
    now : float
        Event time, epoch seconds (rate window).

    Returns
    -------
    Decision
        ``accept`` with warnings, or ``reject`` with every reason that applies.
    """
    acct = snap.account
    limits = acct.limits
    book = snap.book
    inst = book.registry.get(order.instrument)
    reasons: list[Reason] = _validate(order, inst)
    if inst is None:
        reasons.append(Reason(ReasonCode.UNKNOWN_INSTRUMENT, f"instrument {order.instrument!r} is not in the registry"))
    valid_side = order.side in (Side.BUY.value, Side.SELL.value)
    sign = Side(order.side).sign if valid_side else 0
    q = order.quantity if _valid_number(order.quantity) and order.quantity > 0 else 0.0
    delta = sign * q

    # position-reducing? (opposite side, within what is not already being closed)
    pos = acct.positions.get(order.instrument)
    held = pos.quantity if pos is not None else 0.0
    buys, sells = acct.reserved_lots(order.instrument)
    pending_reduce = sells if held > 0 else buys if held < 0 else 0.0
    closable = abs(held) - abs(pending_reduce)
    reduces = bool(delta) and held * delta < 0 and q <= closable + LOT_EPS

    for sw in acct.switches.values():
        if sw.mode is KillMode.HALT or not reduces:
            where = "firm" if sw.scope_id is None else f"{sw.scope} {sw.scope_id}"
            reasons.append(Reason(ReasonCode.KILL_SWITCH,
                                  f"kill switch ({sw.mode}) active on {where}: {sw.reason} (by {sw.by})"))
    if acct.status is AccountStatus.DISABLED or (acct.status is AccountStatus.FAILED and not reduces):
        reasons.append(Reason(ReasonCode.ACCOUNT_NOT_ACTIVE,
                              f"account is {acct.status}" + ("; only position-reducing orders are accepted"
                                                             if acct.status is AccountStatus.FAILED else "")))

    warnings: list[Reason] = []
    score_metrics: dict[str, Any] | None = None
    if inst is not None and valid_side and q > 0 and not reduces:
        price = order.price if order.price is not None else None
        mark = book.get(order.instrument)
        if price is None and mark is not None:
            price = mark.ask if sign > 0 else mark.bid
        rate = book.rate(inst.quote_currency, acct.currency)
        if price is None:
            reasons.append(Reason(ReasonCode.NO_PRICE, f"no mark for {order.instrument} and no limit price"))
        if rate is None:
            reasons.append(Reason(ReasonCode.NO_CONVERSION_RATE,
                                  f"no {inst.quote_currency}->{acct.currency} rate from marks; check fails closed"))
        count = acct.recent_check_count(now) + 1
        if count > limits.max_orders_per_second:
            reasons.append(Reason(ReasonCode.ORDER_RATE_LIMIT,
                                  f"{count} orders in 1 s > max {limits.max_orders_per_second}/s",
                                  float(limits.max_orders_per_second), float(count)))
        if price is not None and rate is not None:
            reasons_exp, warn_exp, score_metrics = _exposure_rules(snap, order, inst, sign, q, price, rate)
            reasons.extend(reasons_exp)
            warnings.extend(warn_exp)
    if score_metrics is None:  # not priced with the order: score and warn on the current state
        score_metrics = _current_metrics(snap)
        warnings.extend(score_metrics["warnings"])

    decision = DecisionKind.REJECT if reasons else DecisionKind.ACCEPT
    return Decision(order.order_id, acct.account_id, decision, tuple(reasons), tuple(warnings),
                    score_metrics["risk_score"], reduces)


def _current_metrics(snap: Snapshot) -> dict[str, Any]:
    """Risk score and warnings of the positions held now (no order, no reservations)."""
    margin = notional = 0.0
    for s, p in snap.account.positions.items():
        e = instrument_exposure(snap.book.registry.get(s), p.quantity, snap.price_of(s), snap.per_position[s][2],
                                snap.account.limits)
        margin += e.margin
        notional += e.notional
    return snap.metrics(margin, notional, len(snap.account.positions))


def _exposure_rules(snap: Snapshot, order: Order, inst, sign: int, q: float, price: float, rate: float):
    acct = snap.account
    limits = acct.limits
    book = snap.book
    ccy = acct.currency
    reasons: list[Reason] = []

    # worst-case lots per instrument: max(|pos + buys|, |pos + sells|)
    buckets: dict[str, list[float]] = {}
    for s, p in acct.positions.items():
        buckets[s] = [p.quantity, 0.0, 0.0]
    for inst_sym, (buys, sells) in acct.reserved_instruments().items():
        b = buckets.setdefault(inst_sym, [0.0, 0.0, 0.0])
        b[1] += buys
        b[2] += sells
    was_open = order.instrument in buckets and max(abs(buckets[order.instrument][0] + buckets[order.instrument][1]),
                                                  abs(buckets[order.instrument][0] + buckets[order.instrument][2])) > LOT_EPS
    b = buckets.setdefault(order.instrument, [0.0, 0.0, 0.0])
    b[1 if sign > 0 else 2] += sign * q

    def worst(bk):
        return max(abs(bk[0] + bk[1]), abs(bk[0] + bk[2]))

    lots_after = worst(b)
    if lots_after > limits.max_position_lots + LOT_EPS:
        reasons.append(Reason(ReasonCode.MAX_POSITION_SIZE,
                              f"{lots_after:g} lots of {order.instrument} after the order > max {limits.max_position_lots:g} lots",
                              limits.max_position_lots, lots_after))
    open_after = sum(1 for bk in buckets.values() if worst(bk) > LOT_EPS)
    if not was_open and open_after > limits.max_open_positions:
        reasons.append(Reason(ReasonCode.MAX_OPEN_POSITIONS,
                              f"{open_after} open positions after the order > max {limits.max_open_positions}",
                              float(limits.max_open_positions), float(open_after)))

    notional = 0.0
    margin = 0.0
    for s, bk in buckets.items():
        lots = worst(bk)
        if lots <= LOT_EPS:
            continue
        i = book.registry.get(s)
        if s == order.instrument:
            px, rt = (snap.price_of(s) or price), rate
            if book.get(s) is None:
                px = price
        else:
            px = snap.price_of(s)
            rt = snap.rate_of(i.quote_currency, s)
            if px is None:  # a reservation on a never-priced instrument: value it at its order price
                px = max((r.price or 0.0) for r in acct.reservations.values() if r.instrument == s)
            if rt is None:
                rt = 0.0
        e = instrument_exposure(i, lots, px, rt, limits)
        notional += e.notional
        margin += e.margin

    equity = snap.equity
    if equity <= 0:
        reasons.append(Reason(ReasonCode.MAX_LEVERAGE, f"equity {_fmt(equity)} {ccy} ≤ 0: no leverage available",
                              limits.max_leverage, None))
        leverage = math.inf
    else:
        leverage = notional / equity
        if leverage > limits.max_leverage * (1 + 1e-12) + 1e-12:
            reasons.append(Reason(ReasonCode.MAX_LEVERAGE,
                                  f"leverage {leverage:.4f}x after the order (notional {_fmt(notional)} {ccy} / equity "
                                  f"{_fmt(equity)} {ccy}) > max {limits.max_leverage:g}x", limits.max_leverage, leverage))
    allowed = snap.margin_allowed()
    if margin > allowed + MONEY_EPS:
        reasons.append(Reason(ReasonCode.INSUFFICIENT_MARGIN,
                              f"margin {_fmt(margin)} {ccy} after the order > {_fmt(allowed)} {ccy} allowed "
                              f"(equity × 100 / margin call level {limits.margin_call_level:g} %)", allowed, margin))

    sl_loss = 0.0
    if order.stop_loss is not None:
        sl_loss = max(0.0, (price - order.stop_loss) * sign) * q * inst.contract_size * rate
    daily = snap.daily_loss + sl_loss
    if daily > limits.daily_loss_limit + MONEY_EPS:
        reasons.append(Reason(ReasonCode.DAILY_LOSS_LIMIT,
                              f"daily loss {_fmt(snap.daily_loss)} {ccy} + loss at stop-loss {_fmt(sl_loss)} {ccy} "
                              f"> limit {_fmt(limits.daily_loss_limit)} {ccy}", limits.daily_loss_limit, daily))
    total = snap.max_loss + sl_loss
    if total > limits.max_loss_limit + MONEY_EPS:
        reasons.append(Reason(ReasonCode.MAX_LOSS_LIMIT,
                              f"max loss {_fmt(snap.max_loss)} {ccy} + loss at stop-loss {_fmt(sl_loss)} {ccy} "
                              f"> limit {_fmt(limits.max_loss_limit)} {ccy}", limits.max_loss_limit, total))

    warnings = _warnings(limits, leverage, margin, allowed, daily, total, ccy)
    util = {
        "leverage": leverage / limits.max_leverage,
        "margin": margin / allowed if allowed > 0 else 1.0,
        "daily_loss": daily / limits.daily_loss_limit,
        "max_loss": total / limits.max_loss_limit,
        "positions": open_after / limits.max_open_positions,
    }
    score = risk_score(util, acct.status is AccountStatus.FAILED)
    return reasons, warnings, {"risk_score": score}
