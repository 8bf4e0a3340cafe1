"""A shard's worker process is killed with SIGKILL in the middle of a replay of real trades.

The first 600 FundingPips trades (by open time; about 580 accounts, 1,200 fills) are replayed
twice into fresh sharded deployments on the session's Ray, each journaling to its own storage
root and snapshotting every 400 records: once undisturbed, once with shard 0's process killed
(by its own PID, from the actor's ``ping``) right after the 300th acknowledged fill.
The client retries a 503 like the order router does. Ray restarts the actor; it reloads its
snapshot and journal before answering; the front's idempotent calls wait for it. At the end
every account's full state (positions, balances, kill switches, fills remembered, events)
must equal the undisturbed run's, and every acknowledged fill must be there exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from typing import Any

import httpx
import pytest

from riskactors.replay import ReplayOptions, load_trades, run_replay
from riskactors.settings import Settings
from tests.conftest import new_deployment_name, new_storage_root, require_data

FP = "fundingpips-trades-short/test_task_trades_short.csv"
KILL_AFTER_FILLS = 300
TRADES = 600


class RouterTransport(httpx.AsyncBaseTransport):
    """In-process transport to the app that retries 503s (as the order router does), counts
    acknowledged fills and runs ``on_fill(n)`` after each."""

    def __init__(self, app, on_fill=None):
        self.inner = httpx.ASGITransport(app=app)
        self.on_fill = on_fill
        self.acked: list[str] = []
        self.retried = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        for _ in range(120):
            response = await self.inner.handle_async_request(
                httpx.Request(request.method, request.url, headers=request.headers, content=body))
            if response.status_code != 503:
                break
            self.retried += 1
            await response.aread()
            await asyncio.sleep(0.5)
        if request.url.path == "/v1/fills" and response.status_code == 200:
            await response.aread()
            self.acked.append(response.json()["fill_id"])
            if self.on_fill is not None:
                self.on_fill(len(self.acked))
        return response


def _replay(kill: bool) -> dict[str, Any]:
    import ray

    from api import create_app
    from riskactors.actors import ray_runtime

    settings = Settings(placement="sharded", shards=2, call_timeout_seconds=60.0, storage_root=new_storage_root(),
                        deployment=new_deployment_name(),
                        snapshot_every_events=400)
    runtime = ray_runtime.start(settings)
    try:
        before = ray.get(runtime.shard_actors()[0].ping.remote())

        def on_fill(n: int) -> None:
            if kill and n == KILL_AFTER_FILLS:
                os.kill(before["pid"], signal.SIGKILL)

        transport = RouterTransport(create_app(settings, runtime.service), on_fill)

        async def go():
            async with httpx.AsyncClient(transport=transport, base_url="http://riskactors.test", timeout=120) as c:
                return await run_replay(c, load_trades(require_data(FP), limit=TRADES), ReplayOptions(read_back=False))

        report = asyncio.run(go())
        after = ray.get(runtime.shard_actors()[0].ping.remote())
        states = {s["account_id"]: s for part in ray.get([h.states.remote(None) for h in runtime.shard_actors()])
                  for s in part}
        return {"report": report, "acked": transport.acked, "before": before, "after": after, "states": states}
    finally:
        runtime.shutdown()


@pytest.fixture(scope="module")
def runs(ray_session):
    return {"clean": _replay(kill=False), "crashed": _replay(kill=True)}


def test_the_killed_shard_came_back_in_a_new_process_from_its_journal(runs):
    crashed = runs["crashed"]
    assert crashed["after"]["pid"] != crashed["before"]["pid"]
    recovery = crashed["after"]["recovery"]
    assert recovery["replayed"] > 0 or recovery["snapshot_seq"] is not None
    assert runs["clean"]["after"]["pid"] == runs["clean"]["before"]["pid"]


def test_every_account_equals_the_run_without_the_crash(runs):
    clean, crashed = runs["clean"]["states"], runs["crashed"]["states"]
    assert sorted(crashed) == sorted(clean)
    differing = [a for a in clean if crashed[a] != clean[a]]
    assert differing == [], f"{len(differing)} accounts differ, e.g. {differing[:3]}"


def test_every_acknowledged_fill_is_present_exactly_once(runs):
    crashed = runs["crashed"]
    acked = Counter(crashed["acked"])
    assert acked == Counter(runs["clean"]["acked"]) and len(acked) > KILL_AFTER_FILLS
    closes = sum(1 for f in acked if f.endswith(":close"))
    closed_trades = sum(len(s["closed_trades"]["items"]) for s in crashed["states"].values())
    assert closed_trades == closes
    open_tickets = sum(len(s["positions"]) for s in crashed["states"].values())
    assert open_tickets == len(acked) - 2 * closes
    assert crashed["report"].fills == runs["clean"]["report"].fills == len(crashed["acked"])
