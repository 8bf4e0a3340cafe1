"""Fixtures of the HTTP API suite: the real FastAPI app over the session's real Ray deployments.

Conventions of this suite
-------------------------
- Deployments live for the whole session and every test of it shares their accounts and their
  marks, so every id is prefixed with the test's ``uid`` and every mark carries a fresh,
  increasing ``ts`` from :func:`fresh_ts` (a mark older than the latest of its instrument is
  stale and ignored). ``fresh_ts`` never runs ahead of the wall clock by more than a few
  milliseconds, so later suites that stamp marks with ``time.time()`` are not made stale.
- Each test posts the marks of the instruments it trades before trading them.
- Accounts are USD (no conversion needed for EURUSD/XAUUSD; USDJPY converts JPY -> USD at
  1 / mid of the USDJPY mark) and ``moderate`` unless stated: max leverage 10x, 1:100,
  5 lots per instrument, 5 open positions, daily loss 500, max loss 2,000 (static).
  ``max_orders_per_second`` is raised to 1,000 by default because the checks of one test
  happen within the same second.
- Contract sizes: EURUSD 100,000, XAUUSD 100, USDJPY 100,000 (units per lot).
"""

from __future__ import annotations

import pytest
from httpkit import Api


@pytest.fixture
async def api(app_client, uid):
    """:class:`Api` over ``app_client`` (closed after the test)."""
    async with app_client as client:
        yield Api(client, uid)


@pytest.fixture
def placement(deployment) -> str:
    """``sharded`` or ``dedicated`` (the parametrized deployment's placement)."""
    settings, _ = deployment
    return settings.placement
