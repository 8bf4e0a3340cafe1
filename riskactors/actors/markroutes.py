"""Which hosts a mark goes to: the supervisor's registry of each host's exposure.

A host is *exposed* to a symbol when an order or fill for an instrument has reached it (the
front tells the supervisor before it sends the first one, :meth:`MarkRoutes.trade`) or when
the symbol converts such an instrument's quote currency to the currency of an account there
(:class:`~riskactors.domain.ExposureMap`). A mark goes to the hosts exposed to its symbol
and to no other; inside a host only the accounts holding it are revalued.

Exposure only grows while the deployment lives (a position closed does not take it back):
a host routed a mark it no longer needs does a dictionary look-up, one that needs a mark
and is not routed it would be wrong. A host registered before exposure was tracked (a
storage root of riskactors 0.2.0) is *unknown* and gets every mark.

The registry is journaled by the supervisor (records ``exposed``, ``register`` and
``exposure_tracked``), so a restarted supervisor routes as before.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..domain import ExposureMap

__all__ = ["MarkRoutes"]


class MarkRoutes:
    """Exposure per host key and the reverse index symbol → host keys.

    Parameters
    ----------
    exposure : ExposureMap
        The deployment's instruments (conversion pairs).
    """

    def __init__(self, exposure: ExposureMap):
        self.exposure = exposure
        self.traded: dict[str, set[str]] = {}  # host key -> instruments ordered or filled there
        self.currencies: dict[str, set[str]] = {}  # host key -> account currencies there
        self.unknown: set[str] = set()  # host keys that get every mark
        self._symbols: dict[str, frozenset[str]] = {}  # host key -> symbols its marks are routed for
        self._hosts: dict[str, set[str]] = {}  # symbol -> host keys

    def _refresh(self, key: str) -> frozenset[str]:
        """Recompute ``key``'s symbols; returns the ones it gained."""
        now = self.exposure.of_host(self.traded.get(key, ()), self.currencies.get(key, ()))
        was = self._symbols.get(key, frozenset())
        gained = now - was
        for sym in gained:
            self._hosts.setdefault(sym, set()).add(key)
        self._symbols[key] = now
        return gained

    def trade(self, key: str, instruments: Iterable[str]) -> frozenset[str]:
        """Record that orders or fills for ``instruments`` reach host ``key``; returns the
        instruments that are new there (what the supervisor journals)."""
        held = self.traded.setdefault(key, set())
        new = frozenset(instruments) - held
        if new:
            held |= new
            self._refresh(key)
        return new

    def account(self, key: str, currency: str) -> frozenset[str]:
        """Record an account in ``currency`` on host ``key``; returns the symbols the host
        gained (the conversions of what is traded there into a new currency)."""
        held = self.currencies.setdefault(key, set())
        if currency in held:
            return frozenset()
        held.add(currency)
        return self._refresh(key)

    def symbols_of(self, key: str, instruments: Iterable[str]) -> frozenset[str]:
        """The symbols that value ``instruments`` on host ``key`` (themselves and their
        conversions to the currencies there): the marks a host needs before its first order
        in them."""
        return self.exposure.of_host(instruments, self.currencies.get(key, ()))

    def hosts_for(self, symbols: Iterable[str]) -> set[str]:
        """The host keys that must receive marks of ``symbols`` (unknown hosts included)."""
        out = set(self.unknown)
        for sym in symbols:
            out |= self._hosts.get(sym, set())
        return out

    def of_host(self, key: str) -> list[str]:
        """The symbols routed to host ``key``, sorted (``["*"]`` for an unknown host)."""
        return ["*"] if key in self.unknown else sorted(self._symbols.get(key, ()))
