"""Export of the audit log as Parquet (pyarrow)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["AUDIT_SCHEMA", "audit_to_parquet"]

#: Columns of the export. ``at`` is UTC (from epoch seconds); ``before``, ``after`` and
#: ``details`` are JSON text because their shape depends on the action.
AUDIT_SCHEMA = pa.schema([
    ("audit_id", pa.string()), ("at", pa.timestamp("us", tz="UTC")), ("actor", pa.string()), ("role", pa.string()),
    ("by", pa.string()), ("action", pa.string()), ("account_id", pa.string()), ("scope", pa.string()),
    ("scope_id", pa.string()), ("reason", pa.string()), ("code", pa.string()), ("before", pa.string()),
    ("after", pa.string()), ("details", pa.string()),
])


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def audit_to_parquet(entries: list[dict[str, Any]]) -> bytes:
    """Audit entries (as ``GET /v1/audit`` returns them) as one Parquet file (bytes)."""
    cols: dict[str, list[Any]] = {name: [] for name in AUDIT_SCHEMA.names}
    for e in entries:
        cols["audit_id"].append(str(e.get("audit_id")))
        cols["at"].append(round(float(e["at"]) * 1_000_000))
        for name in ("actor", "role", "by", "action", "account_id", "scope", "scope_id", "reason", "code"):
            value = e.get(name)
            cols[name].append(None if value is None else str(value))
        for name in ("before", "after", "details"):
            cols[name].append(_json(e.get(name)))
    arrays = [pa.array(cols[f.name], type=pa.int64()).cast(f.type) if f.name == "at" else pa.array(cols[f.name],
                                                                                                     type=f.type)
              for f in AUDIT_SCHEMA]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, schema=AUDIT_SCHEMA), sink)
    return sink.getvalue().to_pybytes()
