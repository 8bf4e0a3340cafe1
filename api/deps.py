"""Dependencies shared by the routers (FastAPI ``Annotated`` style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from riskactors.actors.service import RiskService
from riskactors.domain import InstrumentRegistry

from .auth import Principal, authenticate
from .metrics import FrontMetrics
from .timestamps import OptionalTimestamp

__all__ = ["AsOfDep", "MetricsDep", "PrincipalDep", "RegistryDep", "ServiceDep", "future_error"]


async def _service(request: Request) -> RiskService:
    return request.app.state.service


async def _registry(request: Request) -> InstrumentRegistry:
    return request.app.state.registry


async def _metrics(request: Request) -> FrontMetrics:
    return request.app.state.metrics


#: How far ahead of the deployment clock ``?at=`` may project (seconds): 366 days.
MAX_PROJECTION_SECONDS = 366 * 86_400.0


async def _as_of(request: Request, at: Annotated[OptionalTimestamp, Query(
        description="Answer as projected at this later instant (epoch seconds or ISO 8601 with a zone): day rolled, "
                    "reservations expired, objectives evaluated; computed on the side, nothing is stored. "
                    "Default: the deployment clock. Before the clock: 422.")] = None) -> float | None:
    if at is None:
        return None
    now = request.app.state.service.now()
    if at < now:
        raise RequestValidationError([{"loc": ("query", "at"), "type": "at_before_clock", "input": at,
                                       "msg": f"at {at!r} is before the deployment clock ({now:.3f}): a projection "
                                              f"looks forward, state is never rewound"}])
    if at > now + MAX_PROJECTION_SECONDS:
        raise RequestValidationError([{"loc": ("query", "at"), "type": "at_too_far", "input": at,
                                       "msg": f"at {at!r} is more than {MAX_PROJECTION_SECONDS / 86_400:g} days after "
                                              f"the deployment clock ({now:.3f}): a projection reaches a year ahead"}])
    return at


def future_error(request: Request, ts: float | None, loc: list, kind: str = "ts_in_future") -> dict | None:
    """A 422 item (``type`` ``kind``: ``ts_in_future``, or ``mark_in_future`` for marks) when
    ``ts`` is more than ``max_future_seconds`` after the wall clock (an event from the future is
    refused, whatever the clock kind), else ``None``."""
    if ts is None:
        return None
    wall = request.app.state.service.clock.wall()
    skew = request.app.state.settings.max_future_seconds
    if ts <= wall + skew:
        return None
    return {"loc": loc, "type": kind,
            "msg": f"ts {ts!r} is more than {skew:g} s after the server's wall clock ({wall:.3f}): an event from the "
                   f"future is refused"}


ServiceDep = Annotated[RiskService, Depends(_service)]
#: ``?at=``: the instant a read is projected at (``None``: the deployment clock); 422 before it.
AsOfDep = Annotated[float | None, Depends(_as_of)]
RegistryDep = Annotated[InstrumentRegistry, Depends(_registry)]
MetricsDep = Annotated[FrontMetrics, Depends(_metrics)]
#: Who is calling (the API key's name and role; ``anonymous``/``admin`` when auth is off).
#: Resolved once per request, shared with the route's ``require(...)`` role check.
PrincipalDep = Annotated[Principal, Depends(authenticate)]
