"""Builders shared by the unit tests of the pure risk core (no Ray, no FastAPI).

Test modules import them from here (``from unitkit import ...``), not from ``conftest``: several
test folders have a ``conftest.py`` and the module name ``conftest`` is ambiguous once pytest has
loaded more than one of them. ``conftest.py`` re-exports these and defines the fixtures.

Conventions used throughout the unit suite:

- ``T0`` is a fixed instant, Tuesday 2025-05-06 12:00 America/New_York (16:00 UTC), five hours
  before the default 17:00 New York trading-day roll, so tests that stay within a few minutes of
  ``T0`` never cross a day boundary by accident.
- Prices are chosen so money is exact: EURUSD marked at bid = ask = 1.0 makes one lot worth
  100,000 USD of notional and every 0.0001 of price move worth 10 USD per lot.
- Money is in account currency; quantities in lots.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

from riskactors.domain import (
    Account,
    AccountConfig,
    Decision,
    Fill,
    LatestMarks,
    Limits,
    Mark,
    Order,
    default_plan_registry,
    default_registry,
)

NY = ZoneInfo("America/New_York")

#: Fixed "now" of the suite: 2025-05-06 12:00 New York (EDT, UTC−4) = 16:00 UTC.
T0: float = datetime(2025, 5, 6, 12, 0, tzinfo=NY).timestamp()

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    """A fresh id (``prefix-N``), unique within the test session."""
    return f"{prefix}-{next(_ids)}"


def make_limits(plan: str = "moderate", balance: float = 10_000, **overrides) -> Limits:
    """Limits of ``plan`` resolved for ``balance`` with ``overrides`` applied."""
    return default_plan_registry().resolve(plan, None, balance, overrides or None)[1]


def make_account(plan: str = "moderate", balance: float = 10_000, *, currency: str = "USD",
                 account_id: str = "acc-1", user_id: str = "user-1", challenge_id: str = "ch-1",
                 now: float = T0, config: AccountConfig | None = None, **overrides) -> Account:
    """An active account bound to ``plan`` (limit ``overrides`` as keyword arguments)."""
    return Account(account_id, user_id, challenge_id, currency, balance, plan,
                   make_limits(plan, balance, **overrides), now, config)


def make_marks(*quotes: tuple) -> LatestMarks:
    """The latest marks over the shipped registry, with marks ``(symbol, bid[, ask[, ts]])``."""
    latest = LatestMarks(default_registry())
    for q in quotes:
        set_mark(latest, *q)
    return latest


def set_mark(marks: LatestMarks, symbol: str, bid: float, ask: float | None = None, ts: float = T0) -> Mark:
    """Apply a mark (``ask`` defaults to ``bid``: zero spread) and return it."""
    mark = Mark(symbol, bid, bid if ask is None else ask, ts)
    assert marks.apply(mark), f"mark {mark} not stored (older than the held one)"
    return mark


def make_order(instrument: str = "EURUSD", side: str = "buy", quantity: float = 0.01, *,
               order_id: str | None = None, account_id: str = "acc-1", ts: float = T0,
               price: float | None = None, stop_loss: float | None = None,
               take_profit: float | None = None) -> Order:
    """An order (fresh ``order_id`` unless given)."""
    return Order(order_id or next_id("ord"), account_id, instrument, side, quantity, ts, price, stop_loss,
                 take_profit)


def make_fill(instrument: str = "EURUSD", side: str = "buy", quantity: float = 0.01, price: float = 1.0, *,
              fill_id: str | None = None, order_id: str | None = None, account_id: str = "acc-1",
              ts: float = T0, commission: float = 0.0, swap: float = 0.0) -> Fill:
    """A fill (fresh ``fill_id`` unless given)."""
    return Fill(fill_id or next_id("fill"), account_id, instrument, side, quantity, price, ts, order_id,
                commission, swap)


def codes(decision: Decision | dict) -> list[str]:
    """Reject reason codes of a Decision or of its dict form, in order."""
    if isinstance(decision, Decision):
        return [str(r.code) for r in decision.reasons]
    return [r["code"] for r in decision["reasons"]]


def warning_codes(decision: Decision | dict) -> list[str]:
    """Warning codes of a Decision or of its dict form, in order."""
    if isinstance(decision, Decision):
        return [str(w.code) for w in decision.warnings]
    return [w["code"] for w in decision["warnings"]]


def reason(decision: Decision | dict, code: str):
    """The single reason (Reason or dict) with ``code``; fails if absent or repeated."""
    items = decision.reasons if isinstance(decision, Decision) else decision["reasons"]
    found = [r for r in items if str(r.code if isinstance(decision, Decision) else r["code"]) == code]
    assert len(found) == 1, f"expected one {code}, got {codes(decision)}"
    return found[0]


def warning(decision: Decision | dict, code: str):
    """The single warning with ``code``; fails if absent or repeated."""
    items = decision.warnings if isinstance(decision, Decision) else decision["warnings"]
    found = [w for w in items if str(w.code if isinstance(decision, Decision) else w["code"]) == code]
    assert len(found) == 1, f"expected one {code}, got {warning_codes(decision)}"
    return found[0]


def accepted(decision: Decision | dict) -> bool:
    """True when the decision (object or dict) is ``accept``."""
    if isinstance(decision, Decision):
        return decision.accepted
    return decision["decision"] == "accept"
