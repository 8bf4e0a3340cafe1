"""One writer per journal: epoch files beside it (exclusive create), checked before a frame is
written and after it is on disk (no Ray: hosts and journals in-process on a temporary root)."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest
from unitkit import T0, make_limits

from riskactors.actors import LocalTransport
from riskactors.actors.host import AccountHost
from riskactors.exceptions import ShardUnavailable
from riskactors.persistence import Fence, Fenced, Journal, Storage


def _journal(root, fence: Fence | None) -> Journal:
    storage = Storage(str(root))
    return Journal(storage, storage.path("j", "journal"), "batch", fence=fence)


def _fence(root) -> Fence:
    storage = Storage(str(root))
    fence = Fence(storage, storage.path("j", "epoch"))
    fence.acquire()
    return fence


def _sizes(directory) -> dict[str, int]:
    return {n: os.path.getsize(os.path.join(directory, n)) for n in sorted(os.listdir(directory))}


def test_each_writer_takes_the_next_epoch_and_an_older_one_is_fenced(tmp_path):
    a = _fence(tmp_path)
    a.check()  # alone: fine
    b = _fence(tmp_path)
    assert (a.epoch, b.epoch) == (1, 2)
    b.check()
    with pytest.raises(Fenced, match="epoch 1"):
        a.check()
    with pytest.raises(Fenced):  # and it stays fenced
        a.check()


def test_concurrent_writers_never_share_an_epoch(tmp_path):
    got: list[int] = []
    lock = threading.Lock()

    def start():
        for _ in range(20):
            e = _fence(tmp_path).epoch
            with lock:
                got.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 81))


def test_a_fenced_journal_writes_no_frame(tmp_path):
    old = _journal(tmp_path, _fence(tmp_path))
    old.recover()
    old.append(["op", [1]])
    old.commit()
    segments = tmp_path / "j" / "journal"
    before = _sizes(segments)
    new = _journal(tmp_path, _fence(tmp_path))  # a second instance starts: fence first, then read
    assert new.recover() == [(1, ["op", [1]])]
    old.append(["op", [2]])
    with pytest.raises(Fenced):
        old.commit()
    assert _sizes(segments) == before  # not a byte after the fence
    new.append(["op", [3]])
    new.commit()
    again = _journal(tmp_path, _fence(tmp_path))
    assert again.recover() == [(1, ["op", [1]]), (2, ["op", [3]])]


def test_a_frame_in_flight_when_the_fence_appears_is_not_acknowledged_and_dropped_on_recovery(tmp_path):
    old_fence = _fence(tmp_path)
    old = _journal(tmp_path, old_fence)
    old.recover()
    old.append(["op", [1]])
    old.commit()
    new = _journal(tmp_path, _fence(tmp_path))
    assert new.recover() == [(1, ["op", [1]])]
    # the old writer passed its pre-write check just before the new one took over
    real_check = old_fence.check
    calls = iter([lambda: None])
    old_fence.check = lambda: next(calls, real_check)()
    old.append(["op", ["in flight"]])
    with pytest.raises(Fenced):  # on disk, but the after-write check refuses to acknowledge it
        old.commit()
    new.append(["op", ["acknowledged"]])
    new.commit()
    again = _journal(tmp_path, _fence(tmp_path))
    assert again.recover() == [(1, ["op", [1]]), (2, ["op", ["acknowledged"]])]
    assert again.fenced_frames_dropped == 1


def _spec(account_id: str) -> dict:
    return {"account_id": account_id, "user_id": "u1", "challenge_id": "c1", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "plan_version": 1,
            "resolved_limits": make_limits("moderate", 10_000).to_dict(), "position_mode": "netting"}


def _cfg(root) -> dict:
    return {"storage": {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0,
                        "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}}


def test_a_replaced_host_answers_service_unavailable_and_the_new_one_has_everything(tmp_path):
    old = AccountHost("shard-0", _cfg(tmp_path))
    old.register(_spec("a1"), [], [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": T0}], T0)
    assert old.ping()["epoch"] == 1
    new = AccountHost("shard-0", _cfg(tmp_path))
    assert new.ping()["epoch"] == 2 and "a1" in new.accounts
    order = {"order_id": "o1", "account_id": "a1", "instrument": "EURUSD", "side": "buy", "quantity": 0.1,
             "ts": T0 + 1}
    transport = LocalTransport()
    for method, args in (("check_many", ([order], [T0 + 1])), ("view", ("a1",)), ("ping", ())):
        with pytest.raises(ShardUnavailable, match="fenced"):
            asyncio.run(transport.call(old, method, *args))
    assert new.check_many([order], [T0 + 1])[0]["decision"] == "accept"
    assert AccountHost("shard-0", _cfg(tmp_path)).accounts["a1"].knows_order("o1")


def test_the_fenced_error_survives_pickling_as_it_crosses_from_an_actor_to_the_front():
    import pickle

    err = pickle.loads(pickle.dumps(Fenced("/root/hosts/shard-0/epoch", 3)))
    assert isinstance(err, Fenced) and err.epoch == 3 and "epoch 4 exists" in str(err)
