"""Snapshots off the hot path: the host forks and the child writes the snapshot while the host
answers (``actors/durable.py``, ``RISKACTORS_SNAPSHOT_MODE=fork``, the default on a local root).

A snapshot taken during traffic is a consistent cut: the state it restores, with the journal
after it, equals the state of the host that kept working; a crash while it is written (or a
child that fails) loses nothing, since the journal is compacted only after a good one.
"""

from __future__ import annotations

import os

import pytest
from unitkit import T0, make_limits

from riskactors.actors import AccountHost
from riskactors.domain import account_to_state, marks_to_state
from riskactors.persistence.fence import Fenced

N_ACCOUNTS = 1_500  # enough that the child runs well past the parent's next calls


def _cfg(root, every: int, mode: str | None = None) -> dict:
    return {"storage": {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0,
                        "snapshot_every_events": every, "snapshot_every_seconds": 1e9, "snapshot_mode": mode}}


def _state(host: AccountHost) -> dict:
    return {"accounts": {a: account_to_state(x) for a, x in sorted(host.accounts.items())},
            "marks": marks_to_state(host.latest), "clock": host.clock}


def _loaded(host: AccountHost) -> None:
    limits = make_limits("moderate", 100_000, max_orders_per_second=1_000, max_position_lots=100).to_dict()
    specs = [{"account_id": f"a{i}", "user_id": f"u{i}", "challenge_id": "c1", "currency": "USD",
              "initial_balance": 100_000.0, "plan": "moderate", "plan_version": 1, "resolved_limits": limits}
             for i in range(N_ACCOUNTS)]
    host.apply_marks([{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": T0}], T0)
    host.register_many(specs, [[] for _ in specs], [], [T0] * len(specs))
    host.fill_many([{"fill_id": f"f{i}", "account_id": f"a{i}", "instrument": "EURUSD", "side": "buy",
                     "quantity": 0.1, "price": 1.1001, "ts": T0} for i in range(N_ACCOUNTS)], [T0] * N_ACCOUNTS)


def _traffic(host: AccountHost, k: int) -> None:
    now = T0 + 1 + k
    host.check_many([{"order_id": f"o{k}", "account_id": f"a{k % N_ACCOUNTS}", "instrument": "EURUSD",
                      "side": "buy", "quantity": 0.01, "ts": now}], [now])
    host.apply_marks([{"instrument": "EURUSD", "bid": 1.1 + 1e-5 * (k % 7), "ask": 1.1001 + 1e-5 * (k % 7),
                       "ts": now}], now)


def test_calls_go_on_while_the_snapshot_is_written_and_it_restores_the_same_state(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path, every=10))
    assert host._store.background
    _loaded(host)
    k, during = 0, 0
    while not host._store.snapshot_running:  # traffic until a snapshot falls due and forks
        _traffic(host, k)
        k += 1
    cut = host._store._child[1]
    host._store.every_events = 10 ** 9  # no second snapshot: this one's file is then kept
    while host._store.snapshot_running and during < 10_000:
        _traffic(host, k)  # answered while the child writes (each call reaps it when done)
        k += 1
        during += 1
    assert during > 0
    host._store.reap(wait=True)
    assert host._store.failed_snapshots == 0 and host._store.snapshots_written >= 1
    snapshots = sorted(os.listdir(tmp_path / "hosts" / "shard-0" / "snapshots"))
    assert f"{cut:020d}.arrow" in snapshots
    rebuilt = AccountHost("shard-0", _cfg(tmp_path, every=10 ** 9))  # no close: as after a crash
    assert rebuilt.recovery["snapshot_seq"] >= cut
    # the snapshot is used, not the whole journal: only the records after its cut are re-run (each
    # step of traffic journals two, and the step that made it due may have one after the fork)
    assert rebuilt.recovery["replayed"] <= 2 * during + 1 < 2 * k
    assert _state(rebuilt) == _state(host)


def test_a_crash_while_the_snapshot_is_written_loses_nothing(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path, every=10))
    _loaded(host)
    k = 0
    while not host._store.snapshot_running:
        _traffic(host, k)
        k += 1
    for _ in range(5):
        _traffic(host, k)
        k += 1
    expected = _state(host)
    # a new instance takes over (the old one "crashed"): its epoch fences the child, which
    # either finished first or writes nothing; the journal was not compacted under either
    rebuilt = AccountHost("shard-0", _cfg(tmp_path, every=10 ** 9))
    assert _state(rebuilt) == expected
    try:  # the old instance's child ends one way or the other; the old instance compacts nothing
        host._store.reap(wait=True)
    except Fenced:
        pass
    again = AccountHost("shard-0", _cfg(tmp_path, every=10 ** 9))
    assert _state(again) == expected


def test_a_failed_child_keeps_the_journal_whole_and_is_retried(tmp_path, monkeypatch):
    host = AccountHost("shard-0", _cfg(tmp_path, every=10))
    _loaded(host)
    host.close()
    host = AccountHost("shard-0", _cfg(tmp_path, every=3))
    from riskactors.actors import durable

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(durable, "write_snapshot", broken)  # the child inherits the patch
    k = 0
    while host._store.failed_snapshots == 0 and k < 200:
        _traffic(host, k)
        k += 1
        host._store.reap(wait=True)
    assert host._store.failed_snapshots >= 1
    monkeypatch.undo()
    while host._store.snapshots_written == 0 and k < 400:  # due again: a good one this time
        _traffic(host, k)
        k += 1
        host._store.reap(wait=True)
    assert host._store.snapshots_written >= 1
    rebuilt = AccountHost("shard-0", _cfg(tmp_path, every=10 ** 9))
    assert _state(rebuilt) == _state(host)


def test_inline_mode_writes_the_snapshot_inside_the_call(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path, every=10, mode="inline"))
    assert not host._store.background
    _loaded(host)
    for k in range(12):
        _traffic(host, k)
        assert not host._store.snapshot_running
    assert host._store.snapshots_written >= 1
    assert _state(AccountHost("shard-0", _cfg(tmp_path, every=10 ** 9))) == _state(host)


def test_the_child_prunes_old_snapshots_and_the_journal_they_cover(tmp_path):
    host = AccountHost("shard-0", _cfg(tmp_path, every=10))
    _loaded(host)
    k = 0
    while host._store.snapshots_written < 3:  # three snapshots written in the background, in turn
        _traffic(host, k)
        k += 1
        if host._store.snapshot_running:
            host._store.reap(wait=True)
    folder = tmp_path / "hosts" / "shard-0"
    snapshots = sorted(os.listdir(folder / "snapshots"))
    assert len(snapshots) == 2  # the newest two kept (the child deleted the rest)
    oldest_kept = int(snapshots[0].split(".")[0])
    segments = sorted(int(name.split(".")[0]) for name in os.listdir(folder / "journal"))
    # each snapshot rotates the journal at its cut: what is left starts right after the oldest kept one
    assert segments == [oldest_kept + 1, int(snapshots[1].split(".")[0]) + 1]
    rebuilt = AccountHost("shard-0", _cfg(tmp_path, every=10 ** 9))
    assert _state(rebuilt) == _state(host)


def test_the_child_runs_in_the_idle_scheduling_class():
    from riskactors.actors.durable import _yield_cpu

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the same call the snapshot's child makes first
        try:
            _yield_cpu()
            os.write(write, str(os.sched_getscheduler(0)).encode())
        finally:
            os._exit(0)
    os.close(write)
    policy = int(os.read(read, 16))
    os.waitpid(pid, 0)
    assert policy == os.SCHED_IDLE


def test_a_paced_write_puts_each_chunk_on_disk_and_keeps_to_its_pace(tmp_path, monkeypatch):
    """``paced_write``: 256 KiB at a time, each ``fdatasync``-ed before the next, and it sleeps
    whatever it is ahead of ``pace`` (a fake clock: the disk takes 10 ms per chunk)."""
    from riskactors.persistence import storage

    synced: list[int] = []
    monkeypatch.setattr(storage.os, "fdatasync", lambda fd: synced.append(os.fstat(fd).st_size))
    now, slept = [0.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    class Disk:
        def __init__(self, real):
            self.real = real

        def write(self, chunk: bytes) -> int:
            now[0] += 0.01
            return self.real.write(chunk)

        def flush(self) -> None:
            self.real.flush()

        def fileno(self) -> int:
            return self.real.fileno()

    data = os.urandom(2 * storage.PACE_CHUNK + 1000)
    with open(tmp_path / "f", "wb") as real:
        storage.paced_write(Disk(real), data, pace=float(storage.PACE_CHUNK), clock=lambda: now[0], sleep=sleep)
    assert (tmp_path / "f").read_bytes() == data
    assert synced == [storage.PACE_CHUNK, 2 * storage.PACE_CHUNK, len(data)]  # on disk chunk by chunk
    # one chunk per second: 0.99 s ahead after each full chunk; the short last one (due at
    # 2.0038 s) is written by 2.01 s, behind its due time, so no sleep after it
    assert slept == [pytest.approx(0.99), pytest.approx(0.99)]
    assert now[0] == pytest.approx(2.01)


def test_a_background_snapshot_is_written_at_the_configured_pace(tmp_path, monkeypatch):
    """The child writes at ``snapshot_write_mib_per_second`` (here 64 MiB/s: it leaves the
    pace it was given in a file), and the snapshot it writes restores the same state."""
    from riskactors.persistence import storage

    real = storage.paced_write
    marker = tmp_path / "pace-used"

    def recording(f, data, pace, **kw):
        marker.write_text(repr(pace))  # in the child: the parent reads it after the reap
        return real(f, data, pace, **kw)

    monkeypatch.setattr(storage, "paced_write", recording)
    cfg = _cfg(tmp_path / "root", every=10)
    cfg["storage"]["snapshot_write_mib_per_second"] = 64
    host = AccountHost("shard-0", cfg)
    _loaded(host)
    k = 0
    while host._store.snapshots_written < 1:
        _traffic(host, k)
        k += 1
        if host._store.snapshot_running:
            host._store.reap(wait=True)
    assert float(marker.read_text()) == 64 * (1 << 20)
    rebuilt = AccountHost("shard-0", _cfg(tmp_path / "root", every=10 ** 9))
    assert _state(rebuilt) == _state(host)
