"""Account limits and the plans (limit templates and prop-firm rule packs) they come from.

Plans are data: ``riskactors/data/plans.json`` ships the three limit templates of the seed
(``conservative``, ``moderate``, ``aggressive``) and prop-firm plans. A plan gives each limit
either as an amount in account currency or, for the loss limits, as a fraction of the
initial balance (``daily_loss_limit_fraction``, ``max_loss_limit_fraction``), resolved when an
account binds to the plan. Per-account overrides replace single fields afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

from .codes import DailyLossReference, MaxLossMode
from .instruments import package_data

__all__ = ["LIMIT_FIELDS", "Limits", "LimitsError", "PlanBook", "default_planbook"]


class LimitsError(ValueError):
    """A limit or plan value is invalid. ``field`` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits one account is checked against. Amounts are in account currency.

    Attributes
    ----------
    max_leverage : float
        Cap on total notional (positions + reservations, account currency) / equity, in ×.
    account_leverage : float
        Margin leverage (100 means 1:100): required margin = notional × max(instrument
        margin rate, 1 / account_leverage).
    max_position_lots : float
        Cap on |lots| per instrument after the order, same-direction reservations included.
    max_open_positions : int
        Cap on instruments with a non-zero position or pending reservation.
    daily_loss_limit : float
        Loss allowed below the trading day's start reference (account currency).
    daily_loss_reference : DailyLossReference
        ``balance`` or ``max_balance_equity`` at the start of the trading day.
    max_loss_limit : float
        Loss allowed below initial balance (static) or the equity high-water mark (trailing).
    max_loss_mode : MaxLossMode
        ``static`` or ``trailing``.
    max_orders_per_second : int
        Order checks allowed per account in any sliding one-second window.
    margin_call_level : float
        Margin level, **per cent** (equity / margin × 100), under which new exposure is
        rejected. 100 means "free margin must stay ≥ 0".
    warning_fraction : float
        Fraction (0–1) of a limit at which a warning is raised. Default 0.8.
    """

    max_leverage: float = 10.0
    account_leverage: float = 100.0
    max_position_lots: float = 5.0
    max_open_positions: int = 5
    daily_loss_limit: float = 500.0
    daily_loss_reference: DailyLossReference = DailyLossReference.BALANCE
    max_loss_limit: float = 1000.0
    max_loss_mode: MaxLossMode = MaxLossMode.STATIC
    max_orders_per_second: int = 10
    margin_call_level: float = 100.0
    warning_fraction: float = 0.8

    def __post_init__(self) -> None:
        positive = ("max_leverage", "account_leverage", "max_position_lots",
                    "daily_loss_limit", "max_loss_limit", "margin_call_level")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise LimitsError(name, f"must be a number > 0, got {value!r}")
        for name in ("max_open_positions", "max_orders_per_second"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise LimitsError(name, f"must be an integer ≥ 1, got {value!r}")
        wf = self.warning_fraction
        if not isinstance(wf, (int, float)) or isinstance(wf, bool) or not 0 < wf <= 1:
            raise LimitsError("warning_fraction", f"must be in (0, 1], got {self.warning_fraction!r}")
        try:
            object.__setattr__(self, "max_loss_mode", MaxLossMode(self.max_loss_mode))
        except ValueError:
            raise LimitsError("max_loss_mode", f"must be static or trailing, got {self.max_loss_mode!r}") from None
        try:
            object.__setattr__(self, "daily_loss_reference", DailyLossReference(self.daily_loss_reference))
        except ValueError:
            raise LimitsError("daily_loss_reference",
                              f"must be balance or max_balance_equity, got {self.daily_loss_reference!r}") from None

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Limits:
        """A copy with ``overrides`` (field → value) applied.

        Raises
        ------
        LimitsError
            Unknown field or invalid value.
        """
        if not overrides:
            return self
        unknown = set(overrides) - set(LIMIT_FIELDS)
        if unknown:
            name = min(unknown)
            raise LimitsError(name, "unknown limit field")
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **clean)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (enums as strings)."""
        d = asdict(self)
        d["max_loss_mode"] = str(self.max_loss_mode)
        d["daily_loss_reference"] = str(self.daily_loss_reference)
        return d


LIMIT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Limits))
_FRACTION_FIELDS = {"daily_loss_limit_fraction": "daily_loss_limit",
                    "max_loss_limit_fraction": "max_loss_limit"}


class PlanBook:
    """Named plans → :class:`Limits`.

    Parameters
    ----------
    plans : mapping
        ``{name: {"description": str, "limits": {field: value, ...}}}``. Limit values are
        :class:`Limits` fields, or ``daily_loss_limit_fraction`` / ``max_loss_limit_fraction``
        (0–1 of the initial balance).
    """

    def __init__(self, plans: Mapping[str, Mapping[str, Any]]):
        self._plans = {name: dict(spec) for name, spec in plans.items()}
        for name in self._plans:
            self.resolve(name, 100_000.0)  # validate every plan eagerly

    @classmethod
    def from_json(cls, path: str | Path) -> PlanBook:
        """Load plans from a JSON file (``{"plans": {...}}``)."""
        with open(path, encoding="utf-8") as fh:
            return cls(json.load(fh)["plans"])

    def names(self) -> list[str]:
        """Plan names, sorted."""
        return sorted(self._plans)

    def __contains__(self, name: object) -> bool:
        return name in self._plans

    def describe(self, name: str) -> dict[str, Any]:
        """The plan's raw definition (description and limits as written)."""
        return dict(self._plans[name])

    def resolve(self, name: str, initial_balance: float,
                overrides: Mapping[str, Any] | None = None) -> Limits:
        """Limits of plan ``name`` for an account of ``initial_balance`` with ``overrides``.

        Raises
        ------
        LimitsError
            ``plan`` unknown, or a resolved value invalid (field named).
        """
        if name not in self._plans:
            raise LimitsError("plan", f"unknown plan {name!r}; known: {', '.join(self.names())}")
        raw = dict(self._plans[name].get("limits", {}))
        for frac_name, amount_name in _FRACTION_FIELDS.items():
            if frac_name in raw:
                frac = raw.pop(frac_name)
                if not isinstance(frac, (int, float)) or not 0 < frac <= 1:
                    raise LimitsError(frac_name, f"must be in (0, 1], got {frac!r}")
                raw[amount_name] = frac * initial_balance
        base = Limits().with_overrides(raw)
        return base.with_overrides(overrides)


@cache
def default_planbook() -> PlanBook:
    """The plans shipped with the package (loaded once)."""
    return PlanBook.from_json(package_data("plans.json"))
