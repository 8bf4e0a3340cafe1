"""Property-based fuzzing of the HTTP API from its own OpenAPI schema (schemathesis).

Runs against the real app over in-process hosts (``LocalTransport``: the same host and
supervisor code without Ray, so it is fast). Whatever the input, the server must never answer
5xx, and its responses must conform to the documented schema.
"""

from __future__ import annotations

import time

import msgpack
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from api import create_app
from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
from riskactors.settings import Settings


def _app():
    cfg = Settings()
    transport = LocalTransport()
    shards = [AccountHost(f"shard-{i}", cfg.host_config()) for i in range(2)]
    service = RiskService(transport, Supervisor(transport, "sharded", shards, cfg.host_config()), shards, "sharded")
    app = create_app(cfg, service)
    return app, service


APP, SERVICE = _app()


@pytest.fixture(scope="module", autouse=True)
def _seed():
    """A known account and marks, so fuzzed requests also reach the risk logic."""
    import asyncio

    async def seed():
        now = time.time()
        await SERVICE.marks([{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": now}])
        await SERVICE.register({"account_id": "fuzz", "user_id": "fuzz", "challenge_id": "fuzz", "currency": "USD",
                                "initial_balance": 10_000, "plan": "moderate", "limits": {}}, now)

    asyncio.run(seed())


@schemathesis.serializer("application/msgpack")
def _msgpack(ctx, value):
    """Order-router endpoints also take msgpack bodies: fuzz those too."""
    return msgpack.packb(_representable(value), use_bin_type=True)


def _representable(value):
    """msgpack has 64-bit integers: a larger generated int is sent as a float."""
    if isinstance(value, dict):
        return {k: _representable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_representable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**64:
        return float(value)
    return value


# /ready and /metrics are not data endpoints (readiness pings, Prometheus text)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(path=["/ready", "/metrics"])
CHECKS = (
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx_and_matches_its_schema(case):
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    # plan names and ids are data the schema cannot enumerate, so a schema-valid body may
    # still be a 4xx: every other check applies
    case.validate_response(response, checks=CHECKS)
