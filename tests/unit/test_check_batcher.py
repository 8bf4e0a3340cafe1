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
