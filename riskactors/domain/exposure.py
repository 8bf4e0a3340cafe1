"""Which marks an account's valuation reads: the routing key of marks.

A mark of symbol ``S`` can change an account's equity only if the account holds a position
in ``S``, or holds a position whose quote currency converts to the account currency through
``S`` (:meth:`riskactors.domain.marks.LatestMarks.quote`: the direct FX pair, its inverse, or
the two legs of a cross through USD). Reservations and pre-trade checks are priced on the
latest marks too, but they do not move equity, so they are not part of an account's set;
a host is routed the marks of an instrument once an order or fill for it reaches the host
(see :mod:`riskactors.actors.service`).

Everything here is a superset: a symbol listed that cannot in fact change the account
(an inverse pair that is not marked, say) costs a revaluation, never a wrong value.
"""

from __future__ import annotations

from collections.abc import Iterable

from .accountstate import AccountState
from .instruments import InstrumentRegistry

__all__ = ["ExposureMap"]


class ExposureMap:
    """The symbols whose marks value a position, for one instrument registry (cached).

    Parameters
    ----------
    registry : InstrumentRegistry
        FX pairs (asset class ``fx``) and their currencies come from it.
    """

    def __init__(self, registry: InstrumentRegistry):
        self.registry = registry
        self._pairs: dict[frozenset[str], tuple[str, ...]] = {}
        for inst in registry:
            if inst.asset_class == "fx":
                key = frozenset((inst.base_currency, inst.quote_currency))
                self._pairs[key] = (*self._pairs.get(key, ()), inst.symbol)
        self._sources: dict[tuple[str, str], frozenset[str]] = {}
        self._symbol: dict[tuple[str, str], frozenset[str]] = {}

    def conversion(self, src: str, dst: str) -> frozenset[str]:
        """FX symbols the rate ``src`` → ``dst`` may be read from: the pairs of the two
        currencies (either way round) and, when neither is USD, those of each with USD.
        Empty for ``src == dst``."""
        key = (src, dst)
        found = self._sources.get(key)
        if found is None:
            if src == dst:
                found = frozenset()
            else:
                legs = [(src, dst)] if "USD" in (src, dst) else [(src, dst), (src, "USD"), ("USD", dst)]
                found = frozenset(s for a, b in legs for s in self._pairs.get(frozenset((a, b)), ()))
            self._sources[key] = found
        return found

    def of_symbol(self, symbol: str, currency: str) -> frozenset[str]:
        """The symbols that value a position in ``symbol`` for an account in ``currency``:
        ``symbol`` itself and its quote → account currency conversion. An instrument that is
        not in the registry is just itself."""
        key = (symbol, currency)
        found = self._symbol.get(key)
        if found is None:
            inst = self.registry.get(symbol)
            found = frozenset({symbol}) | (self.conversion(inst.quote_currency, currency) if inst else frozenset())
            self._symbol[key] = found
        return found

    def of_account(self, acct: AccountState) -> frozenset[str]:
        """The symbols whose marks can change ``acct``'s equity (its positions' instruments and
        their conversions). Empty for an account without positions."""
        held = {p.instrument for p in acct.positions.values()}
        if len(held) == 1:  # the common case: the cached set itself, shared by every such account
            return self.of_symbol(held.pop(), acct.currency)
        out: frozenset[str] = frozenset()
        for sym in held:
            out = out | self.of_symbol(sym, acct.currency)
        return out

    def of_host(self, instruments: Iterable[str], currencies: Iterable[str]) -> frozenset[str]:
        """The symbols that value positions in any of ``instruments`` for accounts in any of
        ``currencies`` (a host's traded instruments and account currencies)."""
        currencies = tuple(currencies)
        out: set[str] = set()
        for sym in instruments:
            for ccy in currencies:
                out |= self.of_symbol(sym, ccy)
            out.add(sym)
        return frozenset(out)
