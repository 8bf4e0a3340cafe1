"""Read models of an account: the HTTP view, the consolidation summary and position sizing.

Nothing here changes an account. A view is *as of* an instant (``as_of``, epoch seconds): an
account with time-driven events due by then (a day roll, an expiry, the time limit) is shown
as :meth:`~riskactors.domain.account.Account.projected` at ``as_of``, computed on the side.
Money is in account currency; ``margin_level`` is per cent, ``leverage`` ×, ``risk_score``
0–100 (formulas in :mod:`riskactors.domain.valuation`).
"""

from __future__ import annotations

from typing import Any

from .account import Account
from .accountstate import AccountState
from .challenge import objectives
from .checks import current_metrics
from .errors import ConversionUnavailable, UnknownInstrument
from .marks import LatestMarks
from .rules import weekend_warning
from .sizing import position_size
from .valuation import reservation_margin, value, valued_position

__all__ = ["account_summary", "account_view", "size_position"]


def _as_of(acct: AccountState, latest: LatestMarks, as_of: float | None) -> tuple[AccountState, float]:
    at = acct.clock if as_of is None else max(as_of, acct.clock)
    if isinstance(acct, Account):
        acct = acct.projected(at, latest)
    return acct, at


def account_view(acct: AccountState, latest: LatestMarks, as_of: float | None = None) -> dict[str, Any]:
    """The account view of the HTTP contract, as of ``as_of`` (default: the account's clock;
    never before it).

    Returns
    -------
    dict
        Every field of ``AccountView`` (``api/schemas.py``): balance, equity, floating P&L,
        margin, free margin, margin level, leverage, positions (each with ``mark_age_seconds``),
        reservations, limits, status, kill switch, risk score, warnings, trading day, loss
        floors, objectives … and ``as_of``.
    """
    acct, as_of = _as_of(acct, latest, as_of)
    val = value(acct, latest)
    positions = [valued_position(acct, p, latest, as_of) for _, p in sorted(acct.positions.items())]
    metrics = current_metrics(acct, val)
    warnings = [w.to_dict() for w in metrics["warnings"]]
    weekend = weekend_warning(acct, as_of)
    if weekend is not None:
        warnings.append(weekend.to_dict())
    return {
        "account_id": acct.account_id,
        "user_id": acct.user_id,
        "challenge_id": acct.challenge_id,
        "currency": acct.currency,
        "plan": acct.plan,
        "plan_version": acct.plan_version,
        "position_mode": str(acct.position_mode),
        "as_of": as_of,
        "initial_balance": acct.initial_balance,
        "balance": acct.balance,
        "equity": val.equity,
        "floating_pnl": val.floating_pnl,
        "daily_pnl": val.equity - acct.day_start_balance,
        "day_realized_pnl": acct.day_realized_pnl,
        "margin_used": val.margin,
        "reserved_margin": sum(reservation_margin(acct, latest, r) for r in acct.reservations.values()),
        "free_margin": val.equity - val.margin,
        "margin_level": val.margin_level,
        "leverage": val.leverage,
        "notional": val.notional,
        "positions": positions,
        "reservations": [r.to_dict() for r in acct.reservations.values()],
        "limits": acct.limits.to_dict(),
        "status": str(acct.status),
        "kill_switch": acct.effective_kill_switch(),
        "kill_switches": [s.to_dict() for s in acct.switches.values()],
        "risk_score": metrics["risk_score"],
        "warnings": warnings,
        "trading_day": acct.trading_day.isoformat(),
        "trading_days": acct.trading_days,
        "day_opened_trades": acct.day_opened_trades,
        "day_start_balance": acct.day_start_balance,
        "day_start_equity": acct.day_start_equity,
        "daily_loss": val.daily_loss,
        "daily_loss_floor": val.daily_floor,
        "daily_loss_blocked": acct.soft_blocked_day == acct.trading_day,
        "max_loss": val.max_loss,
        "max_loss_floor": val.max_loss_floor,
        "high_water_mark": acct.high_water_mark,
        "eod_high_water_mark": acct.eod_high_water_mark,
        "objectives": objectives(acct, as_of),
        "closed_trades": len(acct.closed_trades),
        "hft_count": acct.hft_count,
        "last_losing_close": acct.last_losing_close,
        "recommendations": [dict(r) for r in acct.recommendations.values() if r["status"] == "pending"],
        "breaches": list(acct.breaches),
        "created_at": acct.created_at,
    }


def account_summary(acct: AccountState, latest: LatestMarks, as_of: float | None = None) -> dict[str, Any]:
    """Compact figures for consolidation (:mod:`riskactors.domain.aggregate`), as of ``as_of``.

    ``breach_headroom`` = min over the daily and max loss of (equity − floor) / limit, a
    fraction where 0 means at the floor; ``exposure`` per instrument in lots and in notional
    of the quote currency (at mid).
    """
    v = account_view(acct, latest, as_of)
    loss = acct.limits.loss
    headroom = min((v["equity"] - v["daily_loss_floor"]) / loss.daily_loss_limit,
                   (v["equity"] - v["max_loss_floor"]) / loss.max_loss_limit)
    exposure: dict[str, dict[str, Any]] = {}
    for p in v["positions"]:
        inst = latest.registry.get(p["instrument"])
        mark = latest.get(p["instrument"])
        mid = mark.mid if mark is not None else p["mark_price"]  # at mid, like the view's notional
        row = exposure.setdefault(p["instrument"], {"net_lots": 0.0, "gross_lots": 0.0,
                                                    "quote_currency": inst.quote_currency,
                                                    "net_notional_quote": 0.0, "gross_notional_quote": 0.0})
        row["net_lots"] += p["quantity"]
        row["gross_lots"] += abs(p["quantity"])
        row["net_notional_quote"] += p["quantity"] * inst.contract_size * mid
        row["gross_notional_quote"] += abs(p["quantity"]) * inst.contract_size * mid
    return {
        "account_id": acct.account_id, "user_id": acct.user_id, "challenge_id": acct.challenge_id,
        "currency": acct.currency, "status": v["status"], "balance": v["balance"], "equity": v["equity"],
        "daily_pnl": v["daily_pnl"], "risk_score": v["risk_score"], "warnings": [w["code"] for w in v["warnings"]],
        "breached": any(not b.get("soft") and b.get("type") == "breach" for b in v["breaches"]),
        "killed": v["kill_switch"]["active"], "breach_headroom": headroom, "exposure": exposure,
        "as_of": v["as_of"],
    }


def _is_below(stop: Any, entry: Any) -> bool:
    """True when ``stop`` < ``entry`` (a buy); bad values fall through to the sizing checks."""
    try:
        return float(stop) < float(entry)
    except (TypeError, ValueError):
        return True


def size_position(acct: AccountState, request: dict[str, Any], latest: LatestMarks,
                  as_of: float | None = None) -> dict[str, Any]:
    """Recommended lots for a trade from ``entry`` to ``stop_loss`` risking ``risk_amount``
    (account currency) or ``risk_fraction`` (0–1 of balance), capped by the account's max
    position size (lots already held or reserved that way counted), leverage (current notional
    counted) and free margin (margin used and reserved counted). See
    :func:`riskactors.domain.sizing.position_size`.

    Raises
    ------
    UnknownInstrument, ConversionUnavailable, SizingError
    """
    acct, _ = _as_of(acct, latest, as_of)
    symbol = request["instrument"]
    inst = latest.registry.get(symbol)
    if inst is None:
        raise UnknownInstrument(symbol, "instrument not in the registry")
    rate = latest.rate(inst.quote_currency, acct.currency)
    if rate is None:
        raise ConversionUnavailable(symbol, f"no {inst.quote_currency}->{acct.currency} rate from marks")
    val = value(acct, latest)
    margin = val.margin + sum(reservation_margin(acct, latest, r) for r in acct.reservations.values())
    long_lots, short_lots = acct.held_lots().get(symbol, (0.0, 0.0))
    buys, sells = acct.reserved_lots(symbol, opening_only=acct.hedging)
    buying = _is_below(request.get("stop_loss"), request.get("entry"))
    if acct.hedging:
        held = long_lots + buys if buying else short_lots - sells
    else:
        net = long_lots - short_lots
        held = max(0.0, net + buys) if buying else max(0.0, -(net + sells))
    rec = position_size(instrument=inst, entry=request.get("entry"), stop_loss=request.get("stop_loss"),
                        rate=rate, balance=acct.balance, equity=val.equity, limits=acct.limits,
                        risk_amount=request.get("risk_amount"), risk_fraction=request.get("risk_fraction"),
                        held_lots=held, other_notional=val.notional, margin_used=margin)
    return {"account_id": acct.account_id, "instrument": symbol, "currency": acct.currency, **rec.to_dict()}
