"""Application factory: ``create_app(settings)`` or ``create_app(service=...)`` for tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI

from riskactors import __version__
from riskactors.actors import gcpolicy
from riskactors.actors.service import RiskService
from riskactors.domain import InstrumentRegistry, default_registry
from riskactors.settings import Settings

from .auth import document_roles, load_keys
from .bodysize import BodySizeMiddleware
from .errors import ERROR_RESPONSES, install_error_handlers
from .fastcheck import FastCheckMiddleware
from .idempotency import IdempotencyMiddleware, document_idempotency
from .metrics import FrontMetrics
from .msgpack import MsgpackMiddleware
from .routers import accounts, analytics, audit, batch, health, ops, orders, plans, prop

__all__ = ["WORKER_SETTINGS", "create_app", "create_worker_app"]

#: Environment variable through which ``serve --workers N`` hands each front process its
#: settings (JSON of :class:`Settings`, the Ray address of the deployment filled in).
WORKER_SETTINGS = "RISKACTORS_WORKER_SETTINGS"


def create_app(settings: Settings | None = None, service: RiskService | None = None) -> FastAPI:
    """Build the FastAPI front.

    Parameters
    ----------
    settings : Settings, optional
        Used to start the Ray runtime at start-up when ``service`` is not given.
    service : RiskService, optional
        An already running deployment (tests); the app then does not own Ray.

    Raises
    ------
    api.auth.ApiKeysError
        ``settings.api_keys_file`` is missing or malformed, or two keys share a digest.
    """
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime = None
        if app.state.service is None:
            from riskactors.actors import ray_runtime

            runtime = await asyncio.to_thread(ray_runtime.start, settings)
            app.state.service = runtime.service
        # the wall clock's ticks: a day rolls at its boundary with no traffic (no-op for ``events``)
        ticker = asyncio.create_task(app.state.service.run_clock(), name="riskactors-clock")
        front = {"front_id": f"{socket.gethostname()}:{os.getpid()}", "host": socket.gethostname(),
                 "pid": os.getpid(), "listen": f"{settings.host}:{settings.port}", "version": __version__,
                 "started_at": time.time()}
        heartbeat = asyncio.create_task(app.state.service.run_heartbeat(front), name="riskactors-heartbeat")
        if runtime is not None:  # a served front (not an app handed a service, as in tests)
            gcpolicy.freeze_start_up()  # later full collections walk only what serving makes
        try:
            yield
        finally:
            for task in (ticker, heartbeat):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if runtime is not None:
                await asyncio.to_thread(runtime.shutdown)

    app = FastAPI(title="riskactors", version=__version__, lifespan=lifespan,
                  description="Pre-trade risk state server for prop-trading firms (HTTP contract v1).")
    app.state.service = service
    app.state.registry = (InstrumentRegistry.from_csv(settings.instruments_file)
                          if settings.instruments_file else default_registry())
    # ``serve --workers N`` sets PROMETHEUS_MULTIPROC_DIR for its front processes
    app.state.metrics = FrontMetrics(multiprocess_mode=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")))
    app.state.settings = settings
    app.state.keys = load_keys(settings)  # ApiKeysError (malformed keys file) fails start-up here
    install_error_handlers(app)
    for r in (batch.router, accounts.router, orders.router, ops.router, plans.router, prop.router, analytics.router, audit.router):
        app.include_router(r, responses=ERROR_RESPONSES)
    app.include_router(health.router)
    document_roles(app)
    app.add_middleware(MsgpackMiddleware)
    # outermost last: body limits and content types, then Idempotency-Key, then msgpack decoding
    app.add_middleware(IdempotencyMiddleware, service=lambda: app.state.service, metrics=app.state.metrics,
                       wait_seconds=2 * settings.call_timeout_seconds)
    app.add_middleware(BodySizeMiddleware, max_body_bytes=settings.max_body_bytes,
                       batch_max_body_bytes=settings.max_batch_body_bytes)
    if settings.fast_check:  # outermost: the plain check is answered before the rest (api/fastcheck.py)
        app.add_middleware(FastCheckMiddleware, max_body_bytes=settings.max_body_bytes)
    document_idempotency(app)
    return app


def create_worker_app() -> FastAPI:
    """The app of one front process of ``serve --workers N`` (a uvicorn factory): its settings
    come from :data:`WORKER_SETTINGS`, and it attaches to the deployment at start-up."""
    return create_app(Settings.model_validate_json(os.environ[WORKER_SETTINGS]))
