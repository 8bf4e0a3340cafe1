"""The account valued at the current marks: one frozen :class:`Valuation`, computed once.

Both the pre-trade check (:mod:`riskactors.domain.checks`) and the breach evaluation on marks
and fills (:meth:`riskactors.domain.account.Account.on_market`) read the same valuation; the
loss floors and the stop-loss projection are defined here and nowhere else.

Formulas (MetaTrader conventions; money in account currency):

- floating P&L of a position = (exit price − average price) × signed lots × contract size ×
  rate(quote → account); the exit price is the bid for a long, the ask for a short;
- equity = balance + Σ floating P&L;
- notional of an instrument = lots × contract size × mid × rate(quote → account), with a
  hedging account's instrument charged :func:`effective_lots`;
- margin = notional × max(instrument margin rate, 1 / account leverage);
- margin level (per cent) = equity / margin × 100 (``None`` without margin); leverage (×) =
  notional / equity (``None`` when equity ≤ 0);
- daily floor = daily reference − daily loss limit, the reference being the day's start
  balance (FTMO) or the higher of start balance and start equity (The5ers);
- max-loss floor = max-loss reference − max loss limit (:func:`max_loss_floor`); the prop
  firms' "drawdown" is equity's fall from that reference, and its limit is the max loss;
- daily loss = max(0, daily reference − equity); max loss = max(0, floor + limit − equity);
- loss at a stop-loss = max(0, (price − stop) × side) × lots × contract size × rate.

A position whose instrument has no mark is valued at its last known price and rate (a
position always has them: a fill needs a rate to be applied).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .accountstate import AccountState
from .instruments import Instrument
from .limits import Limits
from .marks import LatestMarks
from .model import Position, Reservation

__all__ = [
    "RISK_SCORE_WEIGHTS",
    "InstrumentExposure",
    "PositionValue",
    "Valuation",
    "daily_loss_floor",
    "effective_lots",
    "instrument_exposure",
    "loss_at_stop",
    "margin_rate",
    "max_loss_floor",
    "position_floating",
    "price_of",
    "rate_of",
    "reservation_margin",
    "risk_score",
    "value",
    "valued_position",
]


@dataclass(frozen=True, slots=True)
class PositionValue:
    """One position at the current marks: ``floating_pnl`` (account currency), ``exit_price``
    (quote currency), ``rate`` (quote → account) and ``mark_ts`` (epoch seconds of the mark it
    was priced on; ``None`` when the instrument has no mark and the last fill price is used)."""

    floating_pnl: float
    exit_price: float
    rate: float
    mark_ts: float | None


@dataclass(frozen=True, slots=True)
class InstrumentExposure:
    """Worst-case exposure in one instrument (lots ≥ 0) and its value in account currency."""

    instrument: str
    lots: float
    notional: float
    margin: float


@dataclass(frozen=True, slots=True)
class Valuation:
    """An account valued at one set of marks (module docstring for every formula).

    Attributes
    ----------
    balance, floating_pnl, equity : float
        Account currency.
    positions : Mapping[str, PositionValue]
        By position key (netting: symbol; hedging: ticket). Read-only by convention (a plain
        dict: the valuation is made on every check).
    exposure : Mapping[str, InstrumentExposure]
        Held positions per instrument (reservations not included); read-only by convention.
    notional, margin : float
        Σ over ``exposure``, account currency.
    margin_allowed : float
        Margin the equity supports at the margin-call level: max(0, equity) × 100 /
        ``margin_call_level``.
    daily_reference, daily_floor, max_loss_floor : float
        The loss references and floors (account currency).
    """

    balance: float
    floating_pnl: float
    equity: float
    positions: Mapping[str, PositionValue]
    exposure: Mapping[str, InstrumentExposure]
    notional: float
    margin: float
    margin_allowed: float
    daily_reference: float
    daily_floor: float
    max_loss_floor: float
    daily_loss_limit: float
    max_loss_limit: float

    @property
    def daily_loss(self) -> float:
        """max(0, daily reference − equity), account currency."""
        return max(0.0, self.daily_reference - self.equity)

    @property
    def max_loss(self) -> float:
        """Loss counted against the max-loss limit: max(0, limit − (equity − floor))."""
        return max(0.0, self.max_loss_floor + self.max_loss_limit - self.equity)

    @property
    def daily_headroom(self) -> float:
        """equity − daily floor (account currency; < 0 is a breach)."""
        return self.equity - self.daily_floor

    @property
    def max_loss_headroom(self) -> float:
        """equity − max-loss floor (account currency; < 0 is a breach)."""
        return self.equity - self.max_loss_floor

    @property
    def margin_level(self) -> float | None:
        """equity / margin × 100 (per cent), ``None`` when no margin is used."""
        return self.equity / self.margin * 100.0 if self.margin > 0 else None

    @property
    def leverage(self) -> float | None:
        """notional / equity (×), ``None`` when equity ≤ 0."""
        return self.notional / self.equity if self.equity > 0 else None


def margin_rate(inst: Instrument, limits: Limits) -> float:
    """Margin as a fraction of notional: max(instrument margin rate, 1 / account leverage)."""
    return max(inst.margin_rate, 1.0 / limits.exposure.account_leverage)


def position_floating(pos: Position, inst: Instrument, latest: LatestMarks, currency: str) -> PositionValue:
    """``pos`` at the latest mark and rate, or at its last known ones (module docstring)."""
    mark = latest.get(pos.instrument)
    if mark is None:
        exit_price, mark_ts = pos.last_price, None
    else:
        exit_price, mark_ts = (mark.bid if pos.quantity > 0 else mark.ask), mark.ts
    rate = latest.rate(inst.quote_currency, currency)
    if rate is None:
        rate = pos.last_conversion
    floating = (exit_price - pos.average_price) * pos.quantity * inst.contract_size * rate
    return PositionValue(floating, exit_price, rate, mark_ts)


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


def loss_at_stop(price: float, stop_loss: float | None, sign: int, lots: float, inst: Instrument,
                 rate: float) -> float:
    """Loss (≥ 0, account currency) of ``lots`` entered at ``price`` if the stop-loss is hit.

    ``sign`` +1 for a buy, −1 for a sell; a stop beyond the price (moved into profit) and no
    stop at all add no loss here (``MAX_RISK_PER_TRADE`` treats a missing stop itself).
    """
    if stop_loss is None:
        return 0.0
    return max(0.0, (price - stop_loss) * sign) * lots * inst.contract_size * rate


def daily_loss_floor(acct: AccountState) -> float:
    """Equity below which the daily-loss rule is breached: daily reference − daily loss limit."""
    return acct.daily_reference() - acct.limits.loss.daily_loss_limit


def max_loss_floor(acct: AccountState) -> float:
    """Equity below which the max-loss rule is breached (account currency).

    ``static``: initial balance − limit (FTMO). ``trailing_intraday``: equity high-water mark −
    limit. ``trailing_eod``: high-water mark of end-of-day balances − limit (Topstep). With a
    lock level the trailing floor never rises above it (Topstep locks at the starting balance);
    a lock under the starting floor (initial balance − limit) has no effect.
    """
    loss = acct.limits.loss
    floor = acct.max_loss_reference() - loss.max_loss_limit
    if loss.trails and loss.max_loss_lock is not None:
        floor = max(min(floor, loss.max_loss_lock), acct.initial_balance - loss.max_loss_limit)
    return floor


def price_of(acct: AccountState, latest: LatestMarks, symbol: str) -> float | None:
    """Mid of the latest mark of ``symbol``, else the last price of a position held in it."""
    mark = latest.get(symbol)
    if mark is not None:
        return mark.mid
    held = acct.positions_on(symbol)
    return held[0].last_price if held else None


def rate_of(acct: AccountState, latest: LatestMarks, quote: str, symbol: str) -> float | None:
    """quote → account rate from the marks, else the last rate of a position in ``symbol``."""
    rate = latest.rate(quote, acct.currency)
    if rate is None:
        held = acct.positions_on(symbol)
        return held[0].last_conversion if held else None
    return rate


def reservation_margin(acct: AccountState, latest: LatestMarks, r: Reservation) -> float:
    """Margin a pending reservation would use (0 for a reducing one or one that cannot be priced)."""
    if r.reduces_position:
        return 0.0
    inst = latest.registry.get(r.instrument)
    price = r.price if r.price is not None else price_of(acct, latest, r.instrument)
    rate = rate_of(acct, latest, inst.quote_currency, r.instrument) if inst else None
    if inst is None or price is None or rate is None:
        return 0.0
    return instrument_exposure(inst, r.quantity, price, rate, acct.limits).margin


def valued_position(acct: AccountState, pos: Position, latest: LatestMarks, as_of: float) -> dict[str, Any]:
    """One position of the account view: ``position_id``, ``instrument``, ``quantity`` (signed
    lots), ``average_price`` and ``mark_price`` (quote currency), ``floating_pnl``,
    ``realized_pnl`` and ``notional`` (account currency, notional at mid), ``quote_currency``,
    ``opened_at``, ``stop_loss``, ``take_profit`` and ``mark_age_seconds`` (``as_of`` − the
    mark's time, ≥ 0; ``None`` when the instrument has no mark and the last fill price is used).
    """
    inst = latest.registry.get(pos.instrument)
    pv = position_floating(pos, inst, latest, acct.currency)
    mark = latest.get(pos.instrument)
    mid = mark.mid if mark is not None else pv.exit_price
    return {"position_id": pos.position_id, "instrument": pos.instrument, "quantity": pos.quantity,
            "average_price": pos.average_price, "mark_price": pv.exit_price, "floating_pnl": pv.floating_pnl,
            "realized_pnl": pos.realized_pnl, "notional": abs(pos.quantity) * inst.contract_size * mid * pv.rate,
            "quote_currency": inst.quote_currency, "opened_at": pos.opened_at,
            "stop_loss": pos.stop_loss, "take_profit": pos.take_profit,
            "mark_age_seconds": None if pv.mark_ts is None else max(0.0, as_of - pv.mark_ts)}


def value(acct: AccountState, latest: LatestMarks) -> Valuation:
    """Value ``acct`` at ``latest`` (module docstring). Pure: nothing is changed."""
    registry = latest.registry
    floating = 0.0
    positions: dict[str, PositionValue] = {}
    for key, pos in acct.positions.items():
        pv = position_floating(pos, registry.get(pos.instrument), latest, acct.currency)
        positions[key] = pv
        floating += pv.floating_pnl
    equity = acct.balance + floating
    exposure: dict[str, InstrumentExposure] = {}
    notional = margin = 0.0
    limits = acct.limits
    for sym, (long_lots, short_lots) in acct.held_lots().items():
        inst = registry.get(sym)
        lots = effective_lots(long_lots, short_lots, limits.exposure.hedged_margin_factor)
        rate = rate_of(acct, latest, inst.quote_currency, sym)
        e = instrument_exposure(inst, lots, price_of(acct, latest, sym), rate if rate is not None else 0.0, limits)
        exposure[sym] = e
        notional += e.notional
        margin += e.margin
    reference = acct.daily_reference()
    loss = limits.loss
    return Valuation(
        balance=acct.balance, floating_pnl=floating, equity=equity, positions=positions,
        exposure=exposure, notional=notional, margin=margin,
        margin_allowed=max(0.0, equity) * 100.0 / limits.exposure.margin_call_level,
        daily_reference=reference, daily_floor=reference - loss.daily_loss_limit,
        max_loss_floor=max_loss_floor(acct), daily_loss_limit=loss.daily_loss_limit,
        max_loss_limit=loss.max_loss_limit)


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
    get = utilisation.get
    mean = top = 0.0
    for k, w in _WEIGHTS:  # the weights' order: the same sum, term by term, as before
        u = min(1.0, max(0.0, float(get(k, 0.0))))
        mean += w * u
        top = max(top, u)
    return round(100.0 * (0.5 * top + 0.5 * mean), 1)


_WEIGHTS = tuple(RISK_SCORE_WEIGHTS.items())
