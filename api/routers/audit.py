"""The audit log: every ops and admin action and every breach, filtered, as JSON or Parquet."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from riskactors.persistence.export import audit_to_parquet

from ..auth import require
from ..deps import ServiceDep
from ..timestamps import OptionalTimestamp

router = APIRouter(tags=["audit"])

_PARQUET = "application/vnd.apache.parquet"


async def _entries(service, account_id, actor, action, since, until, limit):
    return await service.audit(account_id=account_id, actor=actor, action=action, since=since, until=until,
                               limit=limit)


_FILTERS = {
    "account_id": Query(None, min_length=1, max_length=128, description="Only this account's entries"),
    "actor": Query(None, min_length=1, max_length=128,
                   description="API key name (``system`` for breaches, ``anonymous`` with auth off)"),
    "action": Query(None, min_length=1, max_length=64, description="e.g. kill_switch_set, limits_changed, breach"),
    "since": Query(None, description="From this instant (inclusive): epoch seconds or ISO 8601 with a zone"),
    "until": Query(None, description="Up to this instant (inclusive): epoch seconds or ISO 8601 with a zone"),
}


@router.get("/v1/audit", dependencies=[require("ops")])
async def audit(service: ServiceDep, account_id: str | None = _FILTERS["account_id"],
                actor: str | None = _FILTERS["actor"], action: str | None = _FILTERS["action"],
                since: OptionalTimestamp = _FILTERS["since"],
                until: OptionalTimestamp = _FILTERS["until"],
                limit: int = Query(1000, ge=1, le=100_000, description="The most recent entries kept")):
    """Audit entries in time order: who (``actor``: the API key's name and ``role``; ``by``:
    the operator named in the request), when (``at``, epoch seconds), what (``action``), why
    (``reason``), ``before`` and ``after``. Breaches are entries with actor ``system``."""
    entries = await _entries(service, account_id, actor, action, since, until, limit)
    return {"entries": entries, "count": len(entries)}


@router.get("/v1/audit/export", dependencies=[require("ops")],
            responses={200: {"content": {_PARQUET: {"schema": {"type": "string", "format": "binary"}}},
                             "description": "Parquet file of the filtered entries"}})
async def audit_export(service: ServiceDep, account_id: str | None = _FILTERS["account_id"],
                       actor: str | None = _FILTERS["actor"], action: str | None = _FILTERS["action"],
                       since: OptionalTimestamp = _FILTERS["since"],
                       until: OptionalTimestamp = _FILTERS["until"]):
    """The filtered audit log as a Parquet file (columns: audit_id, at (UTC), actor, role, by,
    action, account_id, scope, scope_id, reason, code, before/after/details as JSON text)."""
    entries = await _entries(service, account_id, actor, action, since, until, None)
    return Response(audit_to_parquet(entries), media_type=_PARQUET,
                    headers={"Content-Disposition": 'attachment; filename="riskactors-audit.parquet"'})
