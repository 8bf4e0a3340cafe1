"""Fixtures of the unit suite; the builders live in ``unitkit`` (re-exported here).

See ``unitkit`` for the conventions (``T0``, exact EURUSD prices, units).
"""

from __future__ import annotations

import pytest
from unitkit import (  # noqa: F401
    NY,
    T0,
    accepted,
    codes,
    make_account,
    make_fill,
    make_limits,
    make_marks,
    make_order,
    next_id,
    reason,
    set_mark,
    warning,
    warning_codes,
)

from riskactors.domain import Account, LatestMarks


@pytest.fixture
def marks() -> LatestMarks:
    """EURUSD marked at 1.0 (zero spread): USD-quoted, exact money."""
    return make_marks(("EURUSD", 1.0))


@pytest.fixture
def account() -> Account:
    """A 10,000 USD account on the ``moderate`` template."""
    return make_account()
