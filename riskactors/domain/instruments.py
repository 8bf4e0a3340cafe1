"""Instrument registry: contract specifications loaded from a data file.

The default file ``riskactors/data/instruments.csv`` ships with the package and covers every
symbol in the project's reference data (see ``riskactors/data/INSTRUMENTS.md`` for where each
contract size comes from). A deployment may load its own broker's file with the same columns.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

__all__ = ["DEFAULT_MAX_MARK_AGE_SECONDS", "Instrument", "InstrumentRegistry", "default_registry", "package_data"]

#: Maximum mark age of an instrument whose file gives none (seconds).
DEFAULT_MAX_MARK_AGE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Instrument:
    """Contract specification of one tradable symbol.

    Attributes
    ----------
    symbol : str
        Broker symbol, case-sensitive (``"EURUSD"``, ``"audjpy."``).
    asset_class : str
        ``fx``, ``metal``, ``index``, ``energy`` or ``crypto``.
    base_currency, quote_currency : str
        The price is quote currency per one unit of base. P&L arises in the quote currency.
    contract_size : float
        Units per lot: units = lots × contract_size (MetaTrader convention).
    margin_rate : float
        Instrument margin floor as a fraction of notional (0.01 = 1 %, i.e. 1:100).
    digits : int
        Price decimals (presentation only).
    lot_step, min_lot : float
        Lot granularity and minimum, in lots.
    max_mark_age_seconds : float
        Oldest mark (seconds) a position-increasing order on this instrument may be priced on
        (rule ``STALE_PRICE``); a plan may override it for every instrument. Default 300.
    """

    symbol: str
    asset_class: str
    base_currency: str
    quote_currency: str
    contract_size: float
    margin_rate: float
    digits: int
    lot_step: float = 0.01
    min_lot: float = 0.01
    max_mark_age_seconds: float = DEFAULT_MAX_MARK_AGE_SECONDS


class InstrumentRegistry:
    """Symbol → :class:`Instrument` look-up.

    Parameters
    ----------
    instruments : iterable of Instrument
        Symbols must be unique.

    Raises
    ------
    ValueError
        On a duplicate symbol.
    """

    def __init__(self, instruments):
        self._by_symbol: dict[str, Instrument] = {}
        for inst in instruments:
            if inst.symbol in self._by_symbol:
                raise ValueError(f"duplicate instrument symbol {inst.symbol!r}")
            self._by_symbol[inst.symbol] = inst

    @classmethod
    def from_csv(cls, path: str | Path) -> InstrumentRegistry:
        """Load a registry from a CSV file with the columns of ``instruments.csv``.

        Raises
        ------
        ValueError
            If a row has a missing or non-positive number (the message names row and column).
        """
        with open(path, newline="", encoding="utf-8") as fh:
            return cls(_parse_rows(csv.DictReader(fh), str(path)))

    def get(self, symbol: str) -> Instrument | None:
        """The instrument for ``symbol``, or ``None`` when unknown."""
        return self._by_symbol.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __len__(self) -> int:
        return len(self._by_symbol)

    def __iter__(self):
        return iter(self._by_symbol.values())

    def symbols(self) -> list[str]:
        """All symbols, sorted."""
        return sorted(self._by_symbol)


def _parse_rows(rows, origin: str):
    for lineno, row in enumerate(rows, start=2):
        try:
            values = {
                name: float(row[name])
                for name in ("contract_size", "margin_rate", "lot_step", "min_lot")
            }
            digits = int(row["digits"])
            age = row.get("max_mark_age_seconds")
            values["max_mark_age_seconds"] = float(age) if age not in (None, "") else DEFAULT_MAX_MARK_AGE_SECONDS
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{origin}:{lineno}: bad numeric field ({exc})") from exc
        for name, value in values.items():
            if not value > 0:
                raise ValueError(f"{origin}:{lineno}: {name} must be > 0, got {value}")
        yield Instrument(
            symbol=row["symbol"],
            asset_class=row["asset_class"],
            base_currency=row["base_currency"].upper(),
            quote_currency=row["quote_currency"].upper(),
            contract_size=values["contract_size"],
            margin_rate=values["margin_rate"],
            digits=digits,
            lot_step=values["lot_step"],
            min_lot=values["min_lot"],
            max_mark_age_seconds=values["max_mark_age_seconds"],
        )


def package_data(name: str) -> Path:
    """Path of a data file shipped in ``riskactors/data`` (an installed package is a folder)."""
    return Path(str(resources.files("riskactors") / "data" / name))


@cache
def default_registry() -> InstrumentRegistry:
    """The registry shipped with the package (loaded once)."""
    return InstrumentRegistry.from_csv(package_data("instruments.csv"))
