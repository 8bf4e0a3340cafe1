"""Baseline for the load test: a bare FastAPI + pydantic ``POST /v1/orders/check``.

Same request body and response shape as the real endpoint (``api/schemas.py``:
``OrderCheck`` in, ``DecisionOut`` out, FastAPI validating both), but no risk logic, no Ray,
no middleware and no metrics: the floor of what FastAPI + uvicorn cost per request on this
machine. ``load_tests/run_bench.py`` measures it beside the real server in the same run.

The models are imported from ``api.schemas`` (importing ``api`` pulls in no Ray), so the
shape is the same by construction. Like the real endpoint, the answer is sent as a
``JSONResponse`` without a second validation.

Run it alone with::

    .venv/bin/uvicorn --app-dir load_tests baseline_app:app --host 127.0.0.1 --port 8101 --log-level warning
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from api.schemas import DecisionOut, OrderCheck

__all__ = ["DecisionOut", "OrderCheck", "app"]


app = FastAPI(title="riskactors load-test baseline")


@app.post("/v1/orders/check", response_model=DecisionOut)
async def check_order(body: OrderCheck):
    """Always ``accept``: no risk logic, only request validation."""
    return JSONResponse({"order_id": body.order_id, "account_id": body.account_id, "decision": "accept",
                         "reasons": [], "warnings": [], "risk_score": 0.0, "reduces_position": False})


@app.get("/ready")
async def ready():
    return {"status": "ready"}


@app.get("/health")
async def health():
    return {"status": "ok"}
