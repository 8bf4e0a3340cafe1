"""The cyclic garbage collector's policy in an account host's process: what survives a
collection of the middle generation is frozen.

A host keeps long-lived objects by the hundred thousand and more (accounts, their bounded
event histories, reservations). CPython promotes what survives two young collections to the
oldest generation, and runs a full collection, which walks every tracked object that is not
frozen, when the objects promoted since the last one exceed a quarter of those it kept then.
Measured here (issue 11; 2 shards, 32 connections, 128 fresh accounts and some 50,000 checks
per 10 s run): full collections of 80-200 ms in each host once a few runs had gone by, and
checks' p99 of 107-130 ms in those runs against 14-25 ms in the runs without them. Freezing
only the survivors of full collections left 11-27 ms ones (the 48,000 objects promoted since
the last), and a server without snapshots had a worse p99 than one snapshotting back to back
(27-39 against 11-19 ms, ``load_tests/bench_snapshots.py``), because each snapshot's fork
freezes everything first.

:func:`install` adds a collector callback that freezes (``gc.freeze``) what survived each
collection of generation 1 or 2, so the oldest generation stays empty: a collection walks at
most the two young generations (some thousands of objects, a few ms at most). What that
costs: a reference cycle among frozen objects is never collected; each of them is still freed
by reference counting once nothing refers to it. A host's state holds no reference cycles
(accounts, positions and events are trees of plain data). Measured in a host actor in Ray (a
host link and Ray calls: checks, error answers, views, pings), freezing after every collection
left the same 31 objects of cyclic garbage as freezing after full ones only; a test runs
checks, errors and views over the host link with and without the policy and finds the same
cyclic garbage once everything is unfrozen (``tests/unit/test_gcpolicy.py``). It is installed
only in host processes (:class:`~riskactors.actors.ray_runtime.AccountHostActor`): the front,
the supervisor and the ledger run asyncio, whose tasks and futures do make cycles that a
freeze would keep for good. The host also freezes after loading and bulk calls
(``actors/host.py`` ``_settle``).
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["freeze_start_up", "install", "installed"]


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation", 0) >= 1:
        gc.freeze()


def install() -> None:
    """Freeze the survivors of every collection of generation 1 or 2 in this process from now
    on (idempotent)."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return _freeze_survivors in gc.callbacks


def freeze_start_up() -> int:
    """Collect once, then freeze everything alive: what a process made to start (modules, the
    web app and its models, Ray's client) is out of every later collection's walk, which then
    sees only what the process makes while it serves. For a front (``api/app.py``), which is
    asyncio and so does not get :func:`install`: measured in a front under checks, full
    collections of 40-100 ms walked mostly its start-up objects. Returns how many objects are
    frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
