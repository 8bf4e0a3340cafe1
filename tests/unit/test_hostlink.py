"""The host link (:mod:`riskactors.actors.hostlink`) without Ray: a :class:`LinkServer` on an
in-process host, reached by :class:`HostLink` over the abstract Unix socket and over TCP.

Held here: a link call answers exactly what the host method answers (checks, fills, cancels,
marks, ticks and views; same decisions, in the host's order, journaled the same way), numpy
scalars arrive as numbers and an answer msgpack cannot carry goes to Ray, only the token's
holder is answered, only link methods
are served, a call past its timeout is ``ShardUnavailable`` (fail closed), a fenced instance is
``ShardUnavailable``, a host that goes away fails the calls in flight with ``LinkDown(sent=True)``
(so the transport hands them to Ray), the link's calls and direct calls never run at once, and
calls that arrive together, on one connection or on two, share one fsync (group commit) and
are all answered fenced when that commit is refused."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from unitkit import T0, make_limits

from riskactors.actors.host import AccountHost
from riskactors.actors.hostlink import HostLink, LinkDown, LinkServer
from riskactors.exceptions import ShardUnavailable
from riskactors.persistence import Fenced


def _spec(account_id: str) -> dict:
    limits = make_limits("moderate", 10_000, max_orders_per_second=10_000, max_open_positions=1_000,
                         max_leverage=1_000).to_dict()
    return {"account_id": account_id, "user_id": "u1", "challenge_id": "c1", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "plan_version": 1, "resolved_limits": limits}


def _host(tmp_path=None) -> AccountHost:
    config = {} if tmp_path is None else {"storage": {
        "root": str(tmp_path), "fsync": "batch", "fsync_interval_seconds": 1.0, "snapshot_every_events": 10_000,
        "snapshot_every_seconds": 1e9}}
    host = AccountHost("h0", config)
    host.register(_spec("a1"), [], [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": T0}], T0)
    return host


def _orders(n: int, lots: float = 1.0) -> list[dict]:
    return [{"order_id": f"o{i}", "account_id": "a1", "instrument": "EURUSD", "side": "buy", "quantity": lots,
             "ts": T0 + 1} for i in range(n)]


@pytest.fixture
def served():
    made = []

    def serve(host, lock=None):
        server = LinkServer(host, lock or threading.RLock())
        made.append(server)
        return server

    yield serve
    for server in made:
        server.close()


@pytest.mark.parametrize("same_node", [True, False], ids=["unix", "tcp"])
def test_a_link_call_answers_what_the_host_answers_and_journals_it(served, tmp_path, same_node):
    linked, direct = _host(tmp_path / "linked"), _host()
    server = served(linked)
    orders = _orders(12, lots=2.0)  # 5 lots at most ("moderate"): two accepted, then rejected

    async def go():
        link = await HostLink.open(server.endpoint(), same_node, timeout=5)
        try:
            assert link.host_id == "h0"
            return await link.call("check_many", [orders, [T0 + 1] * len(orders)], timeout=5)
        finally:
            link.close()

    answers = asyncio.run(go())
    assert answers == direct.check_many(orders, [T0 + 1] * len(orders))
    assert {a["decision"] for a in answers} == {"accept", "reject"}  # both sides of a limit, decided alike
    assert linked.view("a1", T0 + 1) == direct.view("a1", T0 + 1)
    recovered = AccountHost("h0", {"storage": {
        "root": str(tmp_path / "linked"), "fsync": "batch", "fsync_interval_seconds": 1.0,
        "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}})
    assert recovered.view("a1", T0 + 1) == direct.view("a1", T0 + 1)  # the link call was journaled


def test_a_connection_without_the_token_is_not_answered(served):
    server = served(_host())

    async def go():
        with pytest.raises(LinkDown) as caught:
            await HostLink.open({**server.endpoint(), "token": "not-the-token"}, True, timeout=5)
        assert caught.value.sent is False

    asyncio.run(go())


def test_only_link_methods_are_served(served):
    server = served(_host())

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        try:
            with pytest.raises(RuntimeError, match="'register' is not a link method"):
                await link.call("register", [_spec("a2"), [], [], T0], timeout=5)
            assert len(await link.call("check_many", [_orders(1), [T0 + 1]], timeout=5)) == 1  # still open
        finally:
            link.close()

    asyncio.run(go())


def test_a_call_past_its_timeout_fails_closed_and_runs_after_the_lock_is_free(served):
    host = _host()
    lock = threading.RLock()
    server = served(host, lock)

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        try:
            with lock, pytest.raises(ShardUnavailable, match="did not answer within 0.2 s"):  # a Ray call holds it
                await link.call("check_many", [_orders(1), [T0 + 1]], timeout=0.2)
            # the late answer is dropped; the next call gets its own answer
            again = await link.call("check_many", [_orders(1), [T0 + 1]], timeout=5)
            assert again[0]["order_id"] == "o0"
        finally:
            link.close()

    asyncio.run(go())


class _FencedHost:
    host_id = "h-old"

    def check_many(self, orders, nows):
        raise Fenced("/root/h-old", 7)


def test_a_fenced_instance_fails_closed(served):
    server = served(_FencedHost())

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        try:
            with pytest.raises(ShardUnavailable, match="check_many: .*epoch 7"):
                await link.call("check_many", [_orders(1), [T0 + 1]], timeout=5)
        finally:
            link.close()

    asyncio.run(go())


def test_a_host_that_goes_away_fails_the_calls_in_flight_as_sent(served):
    """The host's end of the connection is shut while a call waits inside it (as when its
    process dies): the call fails with ``LinkDown(sent=True)``, and the link is closed."""
    lock = threading.RLock()
    server = served(_host(), lock)

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        lock.acquire()
        try:
            pending = asyncio.ensure_future(link.call("check_many", [_orders(1), [T0 + 1]], timeout=10))
            await asyncio.sleep(0.1)
            for transport in list(server._transports):
                transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
            with pytest.raises(LinkDown) as caught:
                await pending
        finally:
            lock.release()
        assert caught.value.sent is True and link.closed
        with pytest.raises(LinkDown) as again:
            await link.call("check_many", [_orders(1), [T0 + 1]], timeout=5)
        assert again.value.sent is False

    asyncio.run(go())


def test_link_calls_and_direct_calls_never_overlap_and_decide_exactly_k(served):
    """Two links and a thread of direct calls (as Ray's) race for one account's headroom: the
    lock keeps them one at a time, so exactly as many orders are accepted as fit."""
    host = _host()
    lock = threading.RLock()
    server = served(host, lock)
    inside = []

    original = host.check_many

    def watched(orders, nows):
        inside.append(1)
        assert len(inside) == 1, "two calls inside the host at once"
        try:
            return original(orders, nows)
        finally:
            inside.pop()

    host.check_many = watched
    direct_answers = []

    def direct():
        for i in range(20):
            with lock:
                order = {**_orders(1, lots=1.0)[0], "order_id": f"d{i}"}
                direct_answers.extend(host.check_many([order], [T0 + 1]))

    async def go():
        links = [await HostLink.open(server.endpoint(), True, timeout=5) for _ in range(2)]
        thread = threading.Thread(target=direct)
        thread.start()
        try:
            calls = [links[i % 2].call("check_many", [[{**_orders(1)[0], "order_id": f"l{i}"}], [T0 + 1]], 10)
                     for i in range(40)]
            answers = [a for batch in await asyncio.gather(*calls) for a in batch]
        finally:
            for link in links:
                link.close()
        await asyncio.get_running_loop().run_in_executor(None, thread.join)
        return answers

    answers = asyncio.run(go()) + direct_answers
    accepted = [a for a in answers if a["decision"] == "accept"]
    limit = _host().view("a1", T0)["limits"]["max_position_lots"]
    assert len(answers) == 60 and len(accepted) == int(limit)
    assert all(any(r["code"] == "MAX_POSITION_SIZE" for r in a["reasons"]) for a in answers if a not in accepted)


def test_fills_cancels_marks_ticks_and_views_over_the_link_answer_what_the_host_answers(served):
    linked, direct = _host(), _host()
    server = served(linked)
    fill = {"fill_id": "f1", "order_id": "o0", "account_id": "a1", "instrument": "EURUSD", "side": "buy",
            "quantity": 1.0, "price": 1.1001, "ts": T0 + 2}
    calls = [("check_many", [_orders(2), [T0 + 1] * 2]), ("fill", [fill, T0 + 2]), ("fill", [fill, T0 + 2]),
             ("cancel", ["a1", "o1", T0 + 3]),
             ("apply_marks", [[{"instrument": "EURUSD", "bid": 1.09, "ask": 1.0901, "ts": T0 + 4}], T0 + 4, 10]),
             ("advance_to", [T0 + 86_400 * 2]), ("view", ["a1", T0 + 86_400 * 2])]

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        try:
            return [await link.call(method, args, timeout=5) for method, args in calls]
        finally:
            link.close()

    answers = asyncio.run(go())
    assert answers == [getattr(direct, method)(*args) for method, args in calls]
    assert answers[2]["duplicate"] is True and answers[6]["positions"][0]["quantity"] == 1.0


class _OddAnswers:
    host_id = "h-odd"

    def __init__(self):
        self.answer = None

    def check_many(self, orders, nows):
        return self.answer


def test_numpy_scalars_are_sent_as_numbers_and_an_answer_msgpack_cannot_carry_goes_to_ray(served):
    import numpy as np

    host = _OddAnswers()
    server = served(host)

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        try:
            host.answer = [{"equity": np.float64(1.5), "accounts": np.int64(3), "flagged": np.bool_(True),
                            "codes": {"B", "A"}}]
            assert await link.call("check_many", [[], []], timeout=5) == [
                {"equity": 1.5, "accounts": 3, "flagged": True, "codes": ["A", "B"]}]
            host.answer = [object()]
            with pytest.raises(LinkDown) as caught:
                await link.call("check_many", [[], []], timeout=5)
            assert caught.value.sent is True  # the transport hands it to Ray, which can carry it
            host.answer = []
            assert await link.call("check_many", [[], []], timeout=5) == []  # the link is still up
        finally:
            link.close()

    asyncio.run(go())


def _queued_checks(server, lock, n):
    """Send ``n`` one-order checks at once while ``lock`` is held (as by a Ray call), so they
    queue up on the connection, then free it; returns the outcomes (answers or errors)."""

    async def go():
        link = await HostLink.open(server.endpoint(), True, timeout=5)
        try:
            lock.acquire()
            try:
                calls = [asyncio.ensure_future(link.call(
                    "check_many", [[{**_orders(1, lots=2.0)[0], "order_id": f"g{i}"}], [T0 + 1]], timeout=10)) for i in range(n)]
                await asyncio.sleep(0.2)  # every request is on the host's socket, none answered
                assert not any(call.done() for call in calls)
            finally:
                lock.release()
            return await asyncio.gather(*calls, return_exceptions=True)
        finally:
            link.close()

    return asyncio.run(go())


def test_checks_that_arrive_together_share_one_fsync_and_are_journaled(served, tmp_path, monkeypatch):
    """Group commit: requests waiting on a connection run as one group with one fsync, and
    each is journaled (a recovered host has all of them)."""
    host, lock = _host(tmp_path), threading.RLock()
    server = served(host, lock)
    syncs = []
    real_sync = host._store.journal.sync
    monkeypatch.setattr(host._store.journal, "sync", lambda: (syncs.append(1), real_sync())[1])
    answers = _queued_checks(server, lock, 8)
    assert [a[0]["order_id"] for a in answers] == [f"g{i}" for i in range(8)]
    assert [a[0]["decision"] for a in answers] == ["accept"] * 2 + ["reject"] * 6  # 2 lots of 5, in order
    assert 1 <= len(syncs) <= 2, syncs  # the first may be read alone, before the lock was free
    live = host.view("a1", T0 + 1)
    recovered = AccountHost("h0", {"storage": {
        "root": str(tmp_path), "fsync": "batch", "fsync_interval_seconds": 1.0,
        "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}})
    assert recovered.view("a1", T0 + 1) == live
    again = recovered.check_many([{**_orders(1, lots=2.0)[0], "order_id": "g1"}], [T0 + 1])  # its journaled decision
    assert again[0]["decision"] == "accept"


def test_a_group_whose_commit_is_fenced_acknowledges_none_of_its_calls(served, tmp_path, monkeypatch):
    """Each call of the group ran, but the group's commit is refused by the fence: every one
    answers fenced (503), none as accepted."""
    host, lock = _host(tmp_path), threading.RLock()
    server = served(host, lock)

    def fenced_commit():
        raise Fenced(str(tmp_path), 9)

    monkeypatch.setattr(host._store, "commit", fenced_commit)
    outcomes = _queued_checks(server, lock, 4)
    assert all(isinstance(o, ShardUnavailable) and "epoch 9" in str(o) for o in outcomes), outcomes


def test_checks_from_two_fronts_that_arrive_together_share_one_fsync(served, tmp_path, monkeypatch):
    """Group commit across connections: a check runs while the others queue up on two links
    (two fronts); those that arrived meanwhile, from both links, are run and committed as one
    group. Two fsyncs in all: the first check's, and the group's (three if groups were per
    connection)."""
    host, lock = _host(tmp_path), threading.RLock()
    server = served(host, lock)
    syncs = []
    real_sync = host._store.journal.sync
    monkeypatch.setattr(host._store.journal, "sync", lambda: (syncs.append(1), real_sync())[1])

    def check(link, order_id):
        order = {**_orders(1, lots=0.5)[0], "order_id": order_id}
        return asyncio.ensure_future(link.call("check_many", [[order], [T0 + 1]], timeout=10))

    async def go():
        a = await HostLink.open(server.endpoint(), True, timeout=5)
        b = await HostLink.open(server.endpoint(), False, timeout=5)
        try:
            lock.acquire()
            try:
                first = check(a, "first")
                await asyncio.sleep(0.1)  # the host has read it and waits for the lock
                rest = [check(link, f"{name}{i}") for i in range(4) for link, name in ((a, "a"), (b, "b"))]
                await asyncio.sleep(0.2)
            finally:
                lock.release()
            return await asyncio.gather(first, *rest)
        finally:
            a.close()
            b.close()

    answers = asyncio.run(go())
    assert [x[0]["decision"] for x in answers] == ["accept"] * 9
    assert len(syncs) == 2, syncs
