"""The latest mark of every instrument, and quote→account currency conversion from them.

Conversion uses only real marks of FX pairs (asset class ``fx``): the direct pair
(``USDJPY`` for JPY→USD gives 1 / mid), the inverse pair, or a cross through USD. If none is
known the rate is ``None`` and callers fail closed; a rate of 1.0 is never assumed for two
different currencies. A rate carries the time of the mark it came from; a rate crossed
through USD is as old as its older leg (rule ``STALE_PRICE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .instruments import InstrumentRegistry
from .model import Mark

__all__ = ["LatestMarks", "Rate"]


@dataclass(frozen=True, slots=True)
class Rate:
    """A conversion rate: ``value`` units of the target currency per unit of the source.

    ``ts`` is the epoch second of the oldest mark it was computed from (``None`` for the
    identity rate of a currency to itself); ``pairs`` the FX symbols used, in order.
    """

    value: float
    ts: float | None
    pairs: tuple[str, ...] = ()


_IDENTITY = Rate(1.0, None, ())


class LatestMarks:
    """Latest bid/ask per symbol, plus currency conversion from FX marks.

    Parameters
    ----------
    registry : InstrumentRegistry
        Used to know which symbols are FX pairs and their currencies.
    """

    def __init__(self, registry: InstrumentRegistry):
        self.registry = registry
        self._marks: dict[str, Mark] = {}
        self._pairs: dict[tuple[str, str], list[str]] = {}
        for inst in registry:
            if inst.asset_class == "fx":
                self._pairs.setdefault((inst.base_currency, inst.quote_currency), []).append(inst.symbol)

    def apply(self, mark: Mark) -> bool:
        """Store ``mark`` unless a newer one is held. Returns True if stored.

        A mark with the same ``ts`` as the held one replaces it (several ticks may share a
        timestamp at the feed's resolution; the last one received wins). Out-of-order marks
        (older ``ts`` than the held one) are ignored, so a late packet never moves prices
        backwards.
        """
        held = self._marks.get(mark.instrument)
        if held is not None and mark.ts < held.ts:
            return False
        self._marks[mark.instrument] = mark
        return True

    def get(self, symbol: str) -> Mark | None:
        """Latest mark of ``symbol`` or ``None``."""
        return self._marks.get(symbol)

    def __iter__(self) -> Iterator[Mark]:
        """The latest marks, in the order their instruments were first marked."""
        return iter(self._marks.values())

    def __len__(self) -> int:
        return len(self._marks)

    def _pair(self, base: str, quote: str) -> Mark | None:
        best: Mark | None = None
        for symbol in self._pairs.get((base, quote), ()):
            m = self._marks.get(symbol)
            if m is not None and m.mid > 0 and (best is None or m.ts > best.ts):
                best = m
        return best

    def _direct(self, src: str, dst: str) -> Rate | None:
        m = self._pair(src, dst)
        if m is not None:
            return Rate(m.mid, m.ts, (m.instrument,))
        inv = self._pair(dst, src)
        if inv is not None:
            return Rate(1.0 / inv.mid, inv.ts, (inv.instrument,))
        return None

    def quote(self, src: str, dst: str) -> Rate | None:
        """The rate ``src`` → ``dst`` with its age, or ``None`` (module docstring).

        Tries the direct pair, its inverse, then a cross through USD (src→USD→dst), whose
        ``ts`` is the older leg's.
        """
        if src == dst:
            return _IDENTITY
        direct = self._direct(src, dst)
        if direct is not None:
            return direct
        if "USD" not in (src, dst):
            a = self._direct(src, "USD")
            b = self._direct("USD", dst)
            if a is not None and b is not None:
                return Rate(a.value * b.value, min(a.ts, b.ts), a.pairs + b.pairs)
        return None

    def rate(self, src: str, dst: str) -> float | None:
        """Units of ``dst`` per one unit of ``src`` from the latest FX marks, or ``None``."""
        r = self.quote(src, dst)
        return None if r is None else r.value
