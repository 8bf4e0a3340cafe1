"""Snapshots of a host's accounts as Arrow IPC files.

One file per snapshot, ``<directory>/<journal seq, 20 digits>.arrow``, written atomically. One
row per account: readable columns for inspection with any Arrow tool (``account_id``,
``user_id``, ``challenge_id``, ``currency``, ``status``, ``balance`` in account currency,
``positions``, ``reservations``) and ``state``, the account's full state
(``riskactors.domain.state.account_to_state``) as msgpack. The host-level state (latest marks,
news calendar) is msgpack in the schema metadata under ``riskactors.host``, with the journal
sequence number the snapshot includes (``riskactors.seq``).

The newest snapshot that reads back is used: a damaged newest file falls back to the previous
one (two are kept), whose journal tail is still there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import msgpack
import pyarrow as pa

from .storage import Storage

__all__ = ["KEEP_SNAPSHOTS", "Snapshot", "prune_snapshots", "read_latest_snapshot", "write_snapshot"]

log = logging.getLogger("riskactors.persistence")
KEEP_SNAPSHOTS = 2
_SUFFIX = ".arrow"
_SCHEMA = pa.schema([
    ("account_id", pa.string()), ("user_id", pa.string()), ("challenge_id", pa.string()),
    ("currency", pa.string()), ("status", pa.string()), ("balance", pa.float64()),
    ("positions", pa.int32()), ("reservations", pa.int32()), ("state", pa.binary()),
])


@dataclass
class Snapshot:
    """A snapshot read back: journal ``seq`` it includes, account states, host-level state."""

    seq: int
    accounts: list[dict[str, Any]]
    host: dict[str, Any]


def write_snapshot(storage: Storage, directory: str, seq: int, accounts: list[dict[str, Any]],
                   host: dict[str, Any], pace: float | None = None) -> str:
    """Write a snapshot; ``accounts`` are state dicts (``account_to_state``). Returns its path.
    ``pace``: bytes per second at most (``Storage.write_atomic``)."""
    cols: dict[str, list[Any]] = {name: [] for name in _SCHEMA.names}
    for st in accounts:
        cols["account_id"].append(st["account_id"])
        cols["user_id"].append(st["user_id"])
        cols["challenge_id"].append(st["challenge_id"])
        cols["currency"].append(st["currency"])
        cols["status"].append(st["status"])
        cols["balance"].append(st["balance"])
        cols["positions"].append(len(st["positions"]))
        cols["reservations"].append(len(st["reservations"]))
        cols["state"].append(msgpack.packb(st, use_bin_type=True))
    meta = {b"riskactors.seq": str(seq).encode(), b"riskactors.host": msgpack.packb(host, use_bin_type=True)}
    table = pa.Table.from_pydict(cols, schema=_SCHEMA.with_metadata(meta))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    storage.makedirs(directory)
    path = f"{directory}/{seq:020d}{_SUFFIX}"
    storage.write_atomic(path, sink.getvalue().to_pybytes(), pace=pace)
    return path


def _read(storage: Storage, path: str) -> Snapshot:
    table = pa.ipc.open_file(pa.BufferReader(storage.read(path))).read_all()
    meta = table.schema.metadata
    states = [msgpack.unpackb(b, raw=False, strict_map_key=True) for b in table.column("state").to_pylist()]
    return Snapshot(seq=int(meta[b"riskactors.seq"]), accounts=states,
                    host=msgpack.unpackb(meta[b"riskactors.host"], raw=False, strict_map_key=True))


def _names(storage: Storage, directory: str) -> list[str]:
    return [n for n in storage.list(directory) if n.endswith(_SUFFIX)]


def read_latest_snapshot(storage: Storage, directory: str) -> Snapshot | None:
    """The newest readable snapshot in ``directory`` (``None`` if there is none)."""
    for name in reversed(_names(storage, directory)):
        path = f"{directory}/{name}"
        try:
            return _read(storage, path)
        except Exception as exc:  # noqa: BLE001 - a damaged file: fall back to the previous snapshot
            log.error("snapshot %s unreadable (%s); trying the previous one", path, exc)
    return None


def prune_snapshots(storage: Storage, directory: str, keep: int = KEEP_SNAPSHOTS) -> int:
    """Delete all but the newest ``keep`` snapshots; returns the oldest kept one's ``seq``
    (the journal may be compacted up to it), or 0 when fewer are kept."""
    names = _names(storage, directory)
    for name in names[:-keep]:
        storage.delete(f"{directory}/{name}")
    kept = names[-keep:]
    return int(kept[0][: -len(_SUFFIX)]) if len(kept) >= keep else 0
