"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from riskactors.exceptions import ShardUnavailable

from ..deps import MetricsDep, ServiceDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health():
    """Liveness of the front process."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(service: ServiceDep):
    """Readiness: the supervisor and every host answer a ping (503 otherwise)."""
    try:
        info = await service.ready()
    except ShardUnavailable as exc:
        return JSONResponse(status_code=503, content={"status": "unavailable", "detail": str(exc)})
    return {"status": "ready", **info}


@router.get("/metrics")
async def metrics(m: MetricsDep):
    """Prometheus exposition."""
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
