"""Applying a fill to an account's positions, in netting or hedging mode.

Netting (one position per instrument, keyed by symbol): a fill in the position's direction
moves the average price; against it, it realizes P&L on the closed lots and may flip the
position through flat at the fill price. Hedging (MetaTrader hedging accounts, keyed by
ticket): a fill naming an open ``position_id`` must be on the opposite side and at most the
ticket's lots, and reduces or closes that ticket; any other fill opens a new ticket (its id
is ``position_id``, or the ``fill_id`` when none is given).

Realized P&L of closed lots = (fill price − average price) × closed lots × direction ×
contract size × rate(quote → account) (MetaTrader's profit formula). A position that goes
flat becomes a :class:`~riskactors.domain.model.ClosedTrade`.

The planning step (:func:`plan_fill`) validates everything first, so an invalid fill changes
nothing; :func:`apply_plan` then mutates.
"""

from __future__ import annotations

from dataclasses import dataclass

from .codes import PositionMode, Side
from .errors import InvalidFill
from .instruments import Instrument
from .model import LOT_EPS, ClosedTrade, Fill, Position

__all__ = ["FillOutcome", "FillPlan", "apply_plan", "plan_fill"]


@dataclass(slots=True)
class FillPlan:
    """What a fill will do: the position key, and whether it opens a new position."""

    key: str
    delta: float
    existing: Position | None


@dataclass(slots=True)
class FillOutcome:
    """Result of applying a fill.

    ``realized`` gross realized P&L (account currency); ``position`` the position after (or
    ``None`` when flat); ``closed`` the closed trade when the position went flat (or flipped);
    ``opened`` True when the fill started a new position (a new trade for the daily counts).
    """

    realized: float
    position: Position | None
    closed: ClosedTrade | None
    opened: bool


def plan_fill(positions: dict[str, Position], closed_ids: set[str], fill: Fill, mode: PositionMode,
              now: float) -> FillPlan:
    """Validate ``fill`` against the positions and say where it goes.

    Raises
    ------
    InvalidFill
        Hedging: the named ticket is on the same side as the fill, the fill closes more
        lots than the ticket holds, the ticket is already closed, or it is on another instrument.
        Both modes: a fill reducing a position is stamped (``now``) before the position opened.
    """
    delta = Side(fill.side).sign * fill.quantity
    if mode is PositionMode.NETTING:
        pos = positions.get(fill.instrument)
        if pos is not None and now < pos.opened_at and pos.quantity * delta < 0:
            raise InvalidFill(fill.fill_id, f"ts {now} is before the {fill.instrument} position opened "
                                            f"({pos.opened_at})", "ts")
        return FillPlan(fill.instrument, delta, pos)
    key = fill.position_id or fill.fill_id
    pos = positions.get(key)
    if pos is None:
        if key in closed_ids:
            raise InvalidFill(fill.fill_id, f"position_id {key!r} is already closed", "position_id")
        return FillPlan(key, delta, None)
    if now < pos.opened_at:
        raise InvalidFill(fill.fill_id, f"ts {now} is before position_id {key!r} opened ({pos.opened_at})", "ts")
    if pos.instrument != fill.instrument:
        raise InvalidFill(fill.fill_id, f"position_id {key!r} is on {pos.instrument}, not {fill.instrument}",
                          "position_id")
    if pos.quantity * delta > 0:
        raise InvalidFill(fill.fill_id, f"position_id {key!r} is {'long' if pos.quantity > 0 else 'short'}; "
                                        f"a {fill.side} fill cannot add to a hedging ticket", "side")
    if fill.quantity > abs(pos.quantity) + LOT_EPS:
        raise InvalidFill(fill.fill_id, f"quantity {fill.quantity:g} lots > {abs(pos.quantity):g} lots open "
                                        f"on position_id {key!r}", "quantity")
    return FillPlan(key, delta, pos)


def apply_plan(positions: dict[str, Position], plan: FillPlan, fill: Fill, inst: Instrument, rate: float,
               now: float, charges: float, close_day: str, account_id: str) -> FillOutcome:
    """Apply a planned fill (see the module docstring); ``charges`` = commission + swap, booked
    on the position the fill touches (on the closed one when it flips)."""
    pos = plan.existing
    delta = plan.delta
    if pos is None:
        pos = Position(fill.instrument, delta, fill.price, now, fill.price, rate, position_id=plan.key,
                       charges=charges)
        _levels(pos, fill)
        positions[plan.key] = pos
        return FillOutcome(0.0, pos, None, True)
    _levels(pos, fill)
    if pos.quantity * delta > 0:  # netting only: add to the position
        total = abs(pos.quantity) + abs(delta)
        pos.average_price = (abs(pos.quantity) * pos.average_price + abs(delta) * fill.price) / total
        pos.quantity += delta
        pos.max_lots = max(pos.max_lots, abs(pos.quantity))
        pos.charges += charges
        _touch(pos, fill.price, rate)
        return FillOutcome(0.0, pos, None, False)
    closed_lots = min(abs(delta), abs(pos.quantity))
    direction = 1.0 if pos.quantity > 0 else -1.0
    realized = (fill.price - pos.average_price) * closed_lots * direction * inst.contract_size * rate
    pos.realized_pnl += realized
    pos.charges += charges
    pos.exit_value += fill.price * closed_lots
    pos.closed_lots += closed_lots
    new_qty = pos.quantity + delta
    _touch(pos, fill.price, rate)
    if abs(new_qty) > LOT_EPS and new_qty * pos.quantity > 0:  # partly closed
        pos.quantity = new_qty
        return FillOutcome(realized, pos, None, False)
    trade = _closed_trade(pos, now, close_day, account_id)
    del positions[plan.key]
    pos.quantity = 0.0
    if abs(new_qty) <= LOT_EPS:
        return FillOutcome(realized, None, trade, False)
    # netting: flipped through flat — the rest opens a new position at the fill price
    flipped = Position(fill.instrument, new_qty, fill.price, now, fill.price, rate, position_id=plan.key)
    _levels(flipped, fill)
    positions[plan.key] = flipped
    return FillOutcome(realized, flipped, trade, True)


def _levels(pos: Position, fill: Fill) -> None:
    if fill.stop_loss is not None:
        pos.stop_loss = fill.stop_loss
    if fill.take_profit is not None:
        pos.take_profit = fill.take_profit


def _touch(pos: Position, price: float, rate: float) -> None:
    pos.last_price = price
    pos.last_conversion = rate


def _closed_trade(pos: Position, now: float, close_day: str, account_id: str) -> ClosedTrade:
    return ClosedTrade(
        account_id=account_id, position_id=pos.position_id, instrument=pos.instrument,
        side="buy" if pos.quantity > 0 else "sell", lots=pos.max_lots, open_time=pos.opened_at, close_time=now,
        open_price=pos.average_price, close_price=pos.exit_value / pos.closed_lots if pos.closed_lots else 0.0,
        pnl=pos.realized_pnl + pos.charges, stop_loss_used=pos.stop_loss is not None,
        take_profit_used=pos.take_profit is not None, close_day=close_day)
