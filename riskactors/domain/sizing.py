"""Position sizing: how many lots to trade so that a stop-loss costs at most a risk budget,
within the account's position, leverage and margin limits.

Serves ``POST /v1/accounts/{account_id}/position-size``. Pure: every account figure (balance,
equity, exposure already held, margin already used) and the quote → account conversion rate are
arguments, so the answer is a function of its inputs only.

Formulas (money in account currency, quantities in lots):

- risk cap = risk amount / (|entry − stop-loss| × contract size × rate(quote → account)).
  The standard fixed-fractional position-sizing formula: the loss at the stop-loss of one lot
  is |entry − stop-loss| × contract size in quote currency, converted at ``rate``.
- max-position cap = max_position_lots − lots already held or reserved in the same direction.
- leverage cap = (max_leverage × equity − other notional) / (contract size × entry × rate):
  the lots whose notional keeps Σ notional / equity ≤ max_leverage.
- free-margin cap = (equity × 100 / margin_call_level − margin used) /
  (contract size × entry × rate × margin rate), with MetaTrader margin = notional × margin
  rate and margin rate = max(instrument margin rate, 1 / account leverage)
  (:func:`riskactors.domain.valuation.margin_rate`): the lots whose margin keeps the margin
  level ≥ margin_call_level (per cent).

A negative cap counts as 0. The recommendation is the smallest cap rounded **down** to the
instrument's lot step, or 0 when that is under the minimum lot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import FieldError
from .instruments import Instrument
from .limits import Limits
from .valuation import loss_at_stop, margin_rate

__all__ = ["BOUNDS", "STEP_EPS", "SizeRecommendation", "SizingError", "position_size"]

#: Names of the bounds, in tie-break order: on equal recommended lots the earlier one is reported.
BOUNDS: tuple[str, ...] = ("risk", "max_position_lots", "max_leverage", "free_margin")

#: Tolerance, in lot steps, when rounding a cap down to the lot step: a cap within 1e-9 of a
#: step below a whole number of steps counts as reaching it (so 0.3 lots / 0.01 is 30 steps,
#: not 29). The recommended lots may therefore exceed a cap by at most 1e-9 lot step.
STEP_EPS = 1e-9
#: Steps counted at most (a cap that overflows counts as this many; every real limit is far below).
_MAX_STEPS = 10**15


class SizingError(FieldError):
    """A position-size request cannot be answered. ``field`` names the offending input."""


@dataclass(frozen=True, slots=True)
class SizeRecommendation:
    """Recommended order size and what bounded it.

    Attributes
    ----------
    lots : float
        Recommended quantity, lots: the smallest cap rounded down to ``lot_step``; 0 when that
        is under ``min_lot``.
    side : str
        ``"buy"`` (stop-loss below entry) or ``"sell"`` (stop-loss above entry).
    bound_by : str
        One of :data:`BOUNDS`: the cap that gives the fewest lots after rounding (on equal lots
        the first in :data:`BOUNDS`, so ``risk`` wins a tie). When ``below_min_lot`` it is the
        cap that pushed the size under the minimum lot.
    risk_amount : float
        Risk budget, account currency (``risk_amount`` as given, or ``risk_fraction`` × balance).
    loss_at_stop : float
        Loss of ``lots`` if the stop-loss is hit, account currency (commission, swap and
        slippage not included).
    caps : dict of str to float
        Each bound of :data:`BOUNDS` → the lots it allows, before rounding (≥ 0).
    lot_step, min_lot : float
        The instrument's lot granularity and minimum, lots.
    below_min_lot : bool
        True when the smallest cap rounds to less than ``min_lot`` (``lots`` is then 0).
    """

    lots: float
    side: str
    bound_by: str
    risk_amount: float
    loss_at_stop: float
    caps: dict[str, float]
    lot_step: float
    min_lot: float
    below_min_lot: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready); ``caps`` is copied."""
        return {
            "lots": self.lots,
            "side": self.side,
            "bound_by": self.bound_by,
            "risk_amount": self.risk_amount,
            "loss_at_stop": self.loss_at_stop,
            "caps": dict(self.caps),
            "lot_step": self.lot_step,
            "min_lot": self.min_lot,
            "below_min_lot": self.below_min_lot,
        }


def position_size(
    *,
    instrument: Instrument,
    entry: float,
    stop_loss: float,
    rate: float,
    balance: float,
    equity: float,
    limits: Limits,
    risk_amount: float | None = None,
    risk_fraction: float | None = None,
    held_lots: float = 0.0,
    other_notional: float = 0.0,
    margin_used: float = 0.0,
) -> SizeRecommendation:
    """Recommend the lots of an order from entry to stop-loss that risks at most a budget.

    Parameters
    ----------
    instrument : Instrument
        Contract size, margin rate, lot step and minimum lot of the symbol.
    entry, stop_loss : float
        Entry and stop-loss prices, quote currency per unit; finite, > 0 and different. The
        side follows: stop-loss below entry is a buy, above is a sell.
    rate : float
        Conversion rate quote currency → account currency (1.0 when they are the same); > 0.
    balance : float
        Account balance, account currency; the base of ``risk_fraction``.
    equity : float
        Account equity, account currency; the base of the leverage and free-margin caps.
    limits : Limits
        The account's limits: ``max_position_lots``, ``max_leverage`` (×), ``account_leverage``
        and ``margin_call_level`` (**per cent**) are used.
    risk_amount : float, optional
        Risk budget, account currency; finite and > 0.
    risk_fraction : float, optional
        Risk budget as a fraction (0–1, not per cent) of ``balance``, in (0, 1]. Give exactly
        one of ``risk_amount`` and ``risk_fraction``.
    held_lots : float
        Lots already held or reserved in the same direction on this instrument (≥ 0).
    other_notional : float
        Notional of every other exposure already held or reserved, account currency (≥ 0).
    margin_used : float
        Margin already used by positions and reservations, account currency (≥ 0).

    Returns
    -------
    SizeRecommendation
        Lots rounded down to the lot step (0 under the minimum lot), the bound that decided
        it, every cap and the loss at the stop-loss. Rounding tolerance: :data:`STEP_EPS`.

    Raises
    ------
    SizingError
        ``entry`` / ``stop_loss`` not finite > 0; ``stop_loss`` equal to ``entry``;
        ``risk_amount`` when neither or both budgets are given, or it is not finite > 0;
        ``risk_fraction`` not in (0, 1]; ``balance`` not finite > 0 with ``risk_fraction``;
        ``rate`` not finite > 0; ``equity`` not finite; ``held_lots``, ``other_notional`` or
        ``margin_used`` not finite ≥ 0; ``stop_loss`` / ``entry`` when the loss / margin of one
        lot is not a positive finite amount (an underflow or overflow of extreme inputs).

    Notes
    -----
    Risk cap: the standard fixed-fractional position-sizing formula, lots = risk amount /
    (|entry − stop-loss| × contract size × rate). Leverage and free-margin caps use MetaTrader
    notional (lots × contract size × price × rate) and margin (notional × margin rate), with
    the price taken at ``entry``. See the module docstring for every formula.
    """
    _positive("entry", entry)
    _positive("stop_loss", stop_loss)
    if entry == stop_loss:
        raise SizingError("stop_loss", f"must differ from entry ({entry!r}): the risk per lot would be 0")
    _positive("rate", rate)
    _finite("equity", equity)
    for name, value in (("held_lots", held_lots), ("other_notional", other_notional), ("margin_used", margin_used)):
        _finite(name, value)
        if value < 0:
            raise SizingError(name, f"must be ≥ 0, got {value!r}")
    budget = _budget(risk_amount, risk_fraction, balance)

    side = 1 if stop_loss < entry else -1  # a stop below the entry is a buy's
    loss_per_lot = loss_at_stop(entry, stop_loss, side, 1.0, instrument, rate)  # the one stop-loss projection
    notional_per_lot = instrument.contract_size * entry * rate
    margin_per_lot = notional_per_lot * margin_rate(instrument, limits)
    if not 0 < loss_per_lot < math.inf:
        raise SizingError("stop_loss", f"loss per lot {loss_per_lot!r} is not a positive finite amount")
    if not 0 < margin_per_lot < math.inf:
        raise SizingError("entry", f"margin per lot {margin_per_lot!r} is not a positive finite amount")
    margin_allowed = max(0.0, equity) * 100.0 / limits.exposure.margin_call_level
    caps = {
        "risk": budget / loss_per_lot,
        "max_position_lots": limits.exposure.max_position_lots - held_lots,
        "max_leverage": (limits.exposure.max_leverage * equity - other_notional) / notional_per_lot,
        "free_margin": (margin_allowed - margin_used) / margin_per_lot,
    }
    caps = {name: max(0.0, cap) for name, cap in caps.items()}

    step = instrument.lot_step
    steps = {name: _whole_steps(cap, step) for name, cap in caps.items()}
    bound_by = min(BOUNDS, key=lambda name: steps[name])  # min() keeps the first of equal keys
    lots = round(steps[bound_by] * step, 10)
    below = lots < instrument.min_lot - STEP_EPS * step
    if below:
        lots = 0.0
    return SizeRecommendation(
        lots=lots,
        side="buy" if stop_loss < entry else "sell",
        bound_by=bound_by,
        risk_amount=budget,
        loss_at_stop=lots * loss_per_lot,
        caps=caps,
        lot_step=step,
        min_lot=instrument.min_lot,
        below_min_lot=below,
    )


def _whole_steps(cap: float, step: float) -> int:
    """Whole lot steps in ``cap`` lots, rounded down with tolerance :data:`STEP_EPS`."""
    q = cap / step
    return math.floor(q + STEP_EPS) if q < _MAX_STEPS else _MAX_STEPS


def _budget(risk_amount: float | None, risk_fraction: float | None, balance: float) -> float:
    if (risk_amount is None) == (risk_fraction is None):
        raise SizingError("risk_amount", "give exactly one of risk_amount and risk_fraction")
    if risk_amount is not None:
        _positive("risk_amount", risk_amount)
        return float(risk_amount)
    if not _is_number(risk_fraction) or not 0 < risk_fraction <= 1:
        raise SizingError("risk_fraction", f"must be a fraction in (0, 1], got {risk_fraction!r}")
    _positive("balance", balance)
    return risk_fraction * balance


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite(name: str, value: Any) -> None:
    if not _is_number(value):
        raise SizingError(name, f"must be a finite number, got {value!r}")


def _positive(name: str, value: Any) -> None:
    if not _is_number(value) or value <= 0:
        raise SizingError(name, f"must be a finite number > 0, got {value!r}")
