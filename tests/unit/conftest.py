"""Fixtures of the unit suite; the builders live in ``unitkit`` (re-exported here).

See ``unitkit`` for the conventions (``T0``, exact EURUSD prices, units).
"""

from __future__ import annotations

import pytest

from riskactors.domain import Account, MarkBook
from unitkit import (NY, T0, accepted, codes, make_account, make_book, make_fill, make_limits, make_order,  # noqa: F401
                     next_id, reason, set_mark, warning, warning_codes)


@pytest.fixture
def book() -> MarkBook:
    """EURUSD marked at 1.0 (zero spread): USD-quoted, exact money."""
    return make_book(("EURUSD", 1.0))


@pytest.fixture
def account() -> Account:
    """A 10,000 USD account on the ``moderate`` template."""
    return make_account()
