"""Dependencies shared by the routers (FastAPI ``Annotated`` style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from riskactors.actors.service import RiskService
from riskactors.domain import InstrumentRegistry

from .auth import Principal, authenticate
from .metrics import FrontMetrics

__all__ = ["MetricsDep", "PrincipalDep", "RegistryDep", "ServiceDep"]


async def _service(request: Request) -> RiskService:
    return request.app.state.service


async def _registry(request: Request) -> InstrumentRegistry:
    return request.app.state.registry


async def _metrics(request: Request) -> FrontMetrics:
    return request.app.state.metrics


ServiceDep = Annotated[RiskService, Depends(_service)]
RegistryDep = Annotated[InstrumentRegistry, Depends(_registry)]
MetricsDep = Annotated[FrontMetrics, Depends(_metrics)]
#: Who is calling (the API key's name and role; ``anonymous``/``admin`` when auth is off).
#: Resolved once per request, shared with the route's ``require(...)`` role check.
PrincipalDep = Annotated[Principal, Depends(authenticate)]
