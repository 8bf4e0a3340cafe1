"""The front's per-host check batcher: at most ``in_flight`` ``check_many`` calls at once,
the checks that arrive meanwhile in the next call, every batch submitted in the order it was
taken (the host applies them in that order)."""

from __future__ import annotations

import asyncio

import pytest

from riskactors.actors.service import CheckBatcher


class _SlowHost:
    """A transport whose calls take a while: records submissions and the most at once."""

    def __init__(self):
        self.submitted: list[list[str]] = []
        self.running = 0
        self.most = 0

    async def call(self, host, method, orders, nows):
        self.submitted.append([o["order_id"] for o in orders])
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        return [{"order_id": o["order_id"], "decision": "accept"} for o in orders]


@pytest.mark.parametrize("in_flight", [1, 2])
def test_calls_in_flight_are_bounded_and_every_check_is_answered_in_order(in_flight):
    async def go():
        transport = _SlowHost()
        batcher = CheckBatcher(transport, "host", in_flight=in_flight)
        tasks = []
        for i in range(20):  # a check every 2 ms while each call takes 10 ms
            tasks.append(asyncio.ensure_future(batcher.check({"order_id": f"o{i}"}, 0.0)))
            await asyncio.sleep(0.002)
        return transport, await asyncio.gather(*tasks)

    transport, answers = asyncio.run(go())
    assert [a["order_id"] for a in answers] == [f"o{i}" for i in range(20)]
    assert transport.most == in_flight
    flat = [o for batch in transport.submitted for o in batch]
    assert flat == [f"o{i}" for i in range(20)]  # taken, and submitted, in arrival order
    assert len(transport.submitted) < 20  # batched


class _FailingOnce(_SlowHost):
    """Fails the first call (the host unreachable), then answers."""

    async def call(self, host, method, orders, nows):
        if not self.submitted:
            self.submitted.append([o["order_id"] for o in orders])
            await asyncio.sleep(0.005)
            raise ConnectionError("host down")
        return await super().call(host, method, orders, nows)


def test_a_lone_check_goes_at_once_and_a_failure_reaches_only_its_caller():
    async def go():
        transport = _FailingOnce()
        batcher = CheckBatcher(transport, "host")
        first = asyncio.ensure_future(batcher.check({"order_id": "o0"}, 0.0))  # alone: sent from its coroutine
        await asyncio.sleep(0)
        waiting = [asyncio.ensure_future(batcher.check({"order_id": f"o{i}"}, 0.0)) for i in (1, 2)]
        with pytest.raises(ConnectionError):
            await first
        answers = await asyncio.gather(*waiting)  # sent together after it, though it failed
        lone = await batcher.check({"order_id": "o3"}, 0.0)
        return transport, answers, lone, batcher._running

    transport, answers, lone, running = asyncio.run(go())
    assert transport.submitted == [["o0"], ["o1", "o2"], ["o3"]]
    assert [a["order_id"] for a in answers] == ["o1", "o2"] and lone["order_id"] == "o3"
    assert running == 0


def test_checks_waiting_behind_a_cancelled_lone_check_are_still_sent():
    async def go():
        transport = _SlowHost()
        batcher = CheckBatcher(transport, "host")
        first = asyncio.ensure_future(batcher.check({"order_id": "o0"}, 0.0))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(batcher.check({"order_id": "o1"}, 0.0))
        await asyncio.sleep(0)
        first.cancel()  # the client of the first went away (its call was submitted already)
        return transport, await second

    transport, answer = asyncio.run(go())
    assert answer["order_id"] == "o1" and transport.submitted == [["o0"], ["o1"]]
