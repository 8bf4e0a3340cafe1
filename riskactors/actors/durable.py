"""Durability of one writer (a host or the supervisor): its journal and, for hosts, snapshots.

Paths under the storage root: ``hosts/<host_id>/journal``, ``hosts/<host_id>/snapshots`` and
``supervisor/journal``, ``supervisor/audit``, and each writer's epochs (``hosts/<host_id>/epoch``,
``supervisor/epoch``: one writer at a time, see :mod:`riskactors.persistence.fence`). A host restarted on any node that can open the
same root (a shared mount or an object store) finds its state there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..persistence import Fence, Journal, Snapshot, Storage, read_latest_snapshot, write_snapshot
from ..persistence.snapshots import prune_snapshots

__all__ = ["HostStore", "acquire_fence", "open_journal"]


def acquire_fence(cfg: dict[str, Any], *parts: str) -> Fence:
    """Take the next epoch of the writer whose files are under ``root/parts…`` (its
    ``epoch`` directory; see :mod:`riskactors.persistence.fence`). Call before reading its
    journal."""
    storage = Storage(cfg["root"], cfg.get("appendable"))
    fence = Fence(storage, storage.path(*parts, "epoch"))
    fence.acquire()
    return fence


def open_journal(cfg: dict[str, Any], *parts: str, fence: Fence | None = None) -> Journal:
    """A journal under ``root/parts…`` with the configured fsync policy, fenced by ``fence``."""
    storage = Storage(cfg["root"], cfg.get("appendable"))
    return Journal(storage, storage.path(*parts), cfg.get("fsync", "batch"),
                   float(cfg.get("fsync_interval_seconds", 1.0)), fence=fence)


class HostStore:
    """Journal and snapshots of one host.

    Parameters
    ----------
    cfg : dict
        ``Settings.storage_config()``: root, fsync, fsync_interval_seconds,
        snapshot_every_events, snapshot_every_seconds.
    host_id : str
    clock : callable
        Monotonic seconds, for the snapshot period.
    """

    def __init__(self, cfg: dict[str, Any], host_id: str, clock: Callable[[], float] = time.monotonic):
        self.fence = acquire_fence(cfg, "hosts", host_id)
        self.journal = open_journal(cfg, "hosts", host_id, "journal", fence=self.fence)
        self.storage = self.journal.storage
        self.snapshot_dir = self.storage.path("hosts", host_id, "snapshots")
        self.every_events = int(cfg.get("snapshot_every_events", 10_000))
        self.every_seconds = float(cfg.get("snapshot_every_seconds", 300.0))
        self.clock = clock
        self.since_snapshot = 0
        self.last_snapshot = clock()
        self.snapshots_written = 0

    def load(self) -> tuple[Snapshot | None, list[tuple[int, Any]]]:
        """The newest readable snapshot and the journal records after it."""
        snap = read_latest_snapshot(self.storage, self.snapshot_dir)
        tail = self.journal.recover(snap.seq if snap else 0)
        self.since_snapshot = len(tail)
        return snap, tail

    def record(self, op: str, args: list[Any]) -> None:
        """Journal one call (``[op, args]``); durable at :meth:`commit`."""
        self.journal.append([op, args])
        self.since_snapshot += 1

    def commit(self) -> None:
        self.journal.commit()

    def snapshot_due(self) -> bool:
        return self.since_snapshot > 0 and (self.since_snapshot >= self.every_events
                                            or self.clock() - self.last_snapshot >= self.every_seconds)

    def snapshot(self, accounts: list[dict[str, Any]], host: dict[str, Any]) -> str:
        """Write a snapshot at the journal's current ``seq``, then compact: keep two snapshots
        and the journal after the older one. A fenced writer writes no snapshot."""
        self.fence.check()
        self.journal.rotate()
        path = write_snapshot(self.storage, self.snapshot_dir, self.journal.seq, accounts, host)
        self.fence.check()  # a newer writer may have started meanwhile: delete nothing of its
        oldest_kept = prune_snapshots(self.storage, self.snapshot_dir)
        if oldest_kept:
            self.journal.compact(oldest_kept)
        self.since_snapshot = 0
        self.last_snapshot = self.clock()
        self.snapshots_written += 1
        return path
