"""Valuation of an account against the latest marks: floating P&L, equity, notional, margin,
leverage, loss utilisations and the risk score.

Formulas (MetaTrader conventions, money in account currency):

- floating P&L of a position = (exit price − average price) × signed lots × contract size ×
  rate(quote → account). Exit price is the bid for a long, the ask for a short.
- equity = balance + Σ floating P&L.
- notional of an instrument = |lots| × contract size × mid × rate(quote → account).
- required margin = notional × max(instrument margin rate, 1 / account leverage).
- margin level (per cent) = equity / margin used × 100; ``None`` when no margin is used.
- leverage (×) = Σ notional / equity; ``None`` when equity ≤ 0.
- daily loss = max(0, start-of-day reference − equity); max loss = max(0, max-loss
  reference − equity), reference = initial balance (static) or equity high-water mark
  (trailing).
"""

from __future__ import annotations

from dataclasses import dataclass

from .instruments import Instrument
from .limits import Limits
from .marks import MarkBook
from .model import Position

__all__ = [
    "RISK_SCORE_WEIGHTS",
    "InstrumentExposure",
    "effective_lots",
    "instrument_exposure",
    "margin_rate",
    "position_floating",
    "risk_score",
]


def margin_rate(inst: Instrument, limits: Limits) -> float:
    """Margin as a fraction of notional: max(instrument margin rate, 1 / account leverage)."""
    return max(inst.margin_rate, 1.0 / limits.account_leverage)


def position_floating(pos: Position, inst: Instrument, book: MarkBook, currency: str) -> tuple[float, float, float]:
    """(floating P&L, exit price, conversion rate) of ``pos``.

    Uses the latest mark and rate, falling back to the position's last known ones (a
    position always has them: a fill needs a rate to be applied).
    """
    mark = book.get(pos.instrument)
    if mark is None:
        exit_price = pos.last_price
    else:
        exit_price = mark.bid if pos.quantity > 0 else mark.ask
    rate = book.rate(inst.quote_currency, currency)
    if rate is None:
        rate = pos.last_conversion
    floating = (exit_price - pos.average_price) * pos.quantity * inst.contract_size * rate
    return floating, exit_price, rate


@dataclass(slots=True)
class InstrumentExposure:
    """Worst-case exposure in one instrument (lots) and its value in account currency."""

    instrument: str
    lots: float
    notional: float
    margin: float


def effective_lots(long_lots: float, short_lots: float, hedged_margin_factor: float) -> float:
    """Lots charged for an instrument held long ``long_lots`` and short ``short_lots`` (both ≥ 0).

    ``|long − short| + 2 × hedged_margin_factor × min(long, short)``: the unhedged lots at full
    rate plus each lot of the hedged pairs at the plan's hedged-margin fraction (MetaTrader's
    "hedged margin": 0.5 charges a locked pair like one side). A netting position has one side
    zero, so this is just |net lots|.
    """
    hedged = min(long_lots, short_lots)
    return abs(long_lots - short_lots) + 2.0 * hedged_margin_factor * hedged


def instrument_exposure(inst: Instrument, lots: float, price: float, rate: float, limits: Limits) -> InstrumentExposure:
    """Exposure of ``lots`` (unsigned worst case) at ``price`` (quote) with quote→account ``rate``."""
    notional = abs(lots) * inst.contract_size * price * rate
    return InstrumentExposure(inst.symbol, abs(lots), notional, notional * margin_rate(inst, limits))


#: Weights of the mean term of the risk score; they sum to 1.
RISK_SCORE_WEIGHTS = {"leverage": 0.2, "margin": 0.2, "daily_loss": 0.25, "max_loss": 0.25, "positions": 0.1}


def risk_score(utilisation: dict[str, float], failed: bool = False) -> float:
    """Risk score 0–100 from limit utilisations.

    Parameters
    ----------
    utilisation : dict
        Keys of :data:`RISK_SCORE_WEIGHTS`; each value is the fraction (0–1, clamped) of its
        limit used: leverage / max leverage, margin / margin allowed, daily loss / daily loss
        limit, max loss / max loss limit, open positions / max open positions.
    failed : bool
        A breached account scores 100.

    Returns
    -------
    float
        ``100 × (0.5 × max(u) + 0.5 × Σ w·u)``, rounded to 0.1. Each term is non-decreasing in
        every utilisation, so moving closer to any limit never lowers the score (monotone);
        one limit fully used gives at least 50. House formula of this project.
    """
    if failed:
        return 100.0
    u = {k: min(1.0, max(0.0, float(utilisation.get(k, 0.0)))) for k in RISK_SCORE_WEIGHTS}
    mean = sum(RISK_SCORE_WEIGHTS[k] * u[k] for k in RISK_SCORE_WEIGHTS)
    return round(100.0 * (0.5 * max(u.values()) + 0.5 * mean), 1)
