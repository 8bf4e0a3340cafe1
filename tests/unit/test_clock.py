"""The deployment clock (issue 9): time is data, a read never changes state.

Hosts and the front's service run in-process (``LocalTransport``, no Ray). The wall clock is
injected (:class:`FakeWall`), never slept on. Times: ``T0`` is 2025-05-06 12:00 New York, five
hours before the default 17:00 New York trading-day roll (``ROLL``).
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from unitkit import NY, T0, make_limits

from riskactors.actors import LocalTransport, RiskService, Supervisor
from riskactors.actors.clock import DeploymentClock
from riskactors.actors.host import AccountHost
from riskactors.domain import account_to_state

ROLL = datetime(2025, 5, 6, 17, 0, tzinfo=NY).timestamp()
DAY = 86_400.0
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


class FakeWall:
    """An injected wall clock: ``now`` is whatever the test sets."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _spec(account_id: str, **limits) -> dict:
    resolved = make_limits("moderate", 10_000, max_orders_per_second=1_000, **limits).to_dict()
    return {"account_id": account_id, "user_id": "u1", "challenge_id": "c1", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "plan_version": 1, "resolved_limits": resolved,
            "position_mode": "netting"}


def _mark(px: float, ts: float) -> dict:
    return {"instrument": "EURUSD", "bid": px, "ask": px, "ts": ts}


def _order(oid: str, acct: str, ts: float, qty: float = 0.5, side: str = "buy") -> dict:
    return {"order_id": oid, "account_id": acct, "instrument": "EURUSD", "side": side, "quantity": qty, "ts": ts}


def _storage(root) -> dict:
    return {"storage": {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0,
                        "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}}


def _frames(host: AccountHost) -> int:
    return host._store.journal.seq


def _states(host: AccountHost) -> dict:
    return {a: account_to_state(x) for a, x in sorted(host.accounts.items())}


# ---------------------------------------------------------------------- a read never changes state
def test_reads_change_nothing_and_journal_nothing_even_across_a_day_boundary(tmp_path):
    host = AccountHost("h", _storage(tmp_path))
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    host.check(_order("o1", "a", T0 + 1), T0 + 1)  # a pending reservation (30 s TTL)
    frames, before = _frames(host), _states(host)
    later = ROLL + 3600  # the next trading day, the reservation long expired
    first = host.view("a", later)
    second = host.view("a", later)
    host.summaries(None, later)
    host.recommendations(None, None, later)
    host.position_size("a", {"instrument": "EURUSD", "entry": 1.0, "stop_loss": 0.99, "risk_amount": 50.0}, later)
    assert first == second
    assert first["trading_day"] == "2025-05-07" and first["reservations"] == [] and first["as_of"] == later
    assert _frames(host) == frames and _states(host) == before  # projected on the side
    assert host.view("a")["trading_day"] == "2025-05-06"  # as of the host's own clock: nothing rolled


def test_a_projection_applies_the_time_limit_without_failing_the_account(tmp_path):
    host = AccountHost("h", _storage(tmp_path))
    host.register(_spec("a", time_limit_days=30), [], [_mark(1.0, T0)], T0)
    projected = host.view("a", T0 + 30 * DAY)
    assert projected["status"] == "failed" and projected["breaches"][-1]["code"] == "TIME_LIMIT"
    assert projected["breaches"][-1]["at"] == T0 + 30 * DAY  # at the deadline, its due instant
    assert host.view("a", T0 + 30 * DAY - 1)["status"] == "active"  # just before the deadline
    assert host.accounts["a"].status == "active" and _frames(host) == 1


# ---------------------------------------------------------------------- the host's clock
def test_an_event_moves_the_host_clock_and_every_due_account_rolls_before_it_is_applied():
    host = AccountHost("h")
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    host.register(_spec("b"), [], [], T0)
    host.fill({"fill_id": "f1", "account_id": "a", "instrument": "EURUSD", "side": "buy", "quantity": 0.1,
               "price": 1.0, "commission": -7.0, "ts": T0 + 5}, T0 + 5)
    assert host.accounts["a"].day_results == {"2025-05-06": -7.0}
    host.apply_marks([_mark(1.0, ROLL + 10)], ROLL + 10)  # the first event after the roll
    for acct in ("a", "b"):  # b has no position and got no event of its own: it rolled too
        a = host.accounts[acct]
        assert a.trading_day == date(2025, 5, 7)
        rolled = [e for e in a.events if e["type"] == "day_rolled"]
        assert [(e["at"], e["ended"]) for e in rolled] == [(ROLL, "2025-05-06")]
    assert host.clock == ROLL + 10


def test_advance_to_brings_every_account_along_and_is_journaled_only_when_something_changed(tmp_path):
    host = AccountHost("h", _storage(tmp_path))
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    frames = _frames(host)
    assert host.advance_to(T0 + 60) == {"host_id": "h", "clock": T0 + 60, "advanced": 0, "breaches": []}
    assert _frames(host) == frames  # nothing was due: no frame
    reply = host.advance_to(ROLL)
    assert reply["advanced"] == 1 and host.accounts["a"].trading_day == date(2025, 5, 7)
    assert _frames(host) == frames + 1
    rebuilt = AccountHost("h", _storage(tmp_path))  # the journal replays the tick exactly
    assert _states(rebuilt) == _states(host)


def test_the_host_clock_never_goes_back():
    host = AccountHost("h")
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    host.advance_to(T0 + 100)
    host.advance_to(T0 + 50)
    host.check(_order("o1", "a", T0 + 20), T0 + 20)  # a router's small delay
    assert host.clock == T0 + 100


def test_a_late_event_is_booked_to_the_current_trading_day_and_says_late():
    host = AccountHost("h")
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    host.advance_to(ROLL + 60)  # the account is on 2025-05-07
    host.apply_marks([_mark(1.0, ROLL - 40)], ROLL - 40)  # a late mark, newer than the held one: applied
    d = host.check(_order("o1", "a", ROLL - 30), ROLL - 30)  # stamped in the day already rolled past
    assert d["decision"] == "accept" and d["late"] is True
    f = host.fill({"fill_id": "f1", "order_id": "o1", "account_id": "a", "instrument": "EURUSD", "side": "buy",
                   "quantity": 0.5, "price": 1.0, "commission": -3.0, "ts": ROLL - 29}, ROLL - 29)
    assert f["late"] is True
    acct = host.accounts["a"]
    assert acct.day_results == {"2025-05-07": -3.0} and acct.active_days == {"2025-05-07"}


def test_a_small_delay_inside_the_same_day_is_not_late():
    host = AccountHost("h")
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    host.advance_to(T0 + 120)
    assert host.check(_order("o1", "a", T0 + 60), T0 + 60)["late"] is False


def test_registration_starts_the_history_at_opened_at_and_brings_it_to_the_clock():
    host = AccountHost("h")
    host.register(_spec("a"), [], [_mark(1.0, ROLL + 60)], ROLL + 60)
    view = host.register(_spec("b"), [], [], T0)  # opened before the roll the host has passed
    assert view["created_at"] == T0 and view["trading_day"] == "2025-05-07"
    assert [e["ended"] for e in host.accounts["b"].events if e["type"] == "day_rolled"] == ["2025-05-06"]


def test_the_clock_is_in_the_snapshot_and_recovered(tmp_path):
    host = AccountHost("h", _storage(tmp_path))
    host.register(_spec("a"), [], [_mark(1.0, T0)], T0)
    host.advance_to(T0 + 500)
    host.snapshot()
    assert AccountHost("h", _storage(tmp_path)).clock == T0 + 500


# ---------------------------------------------------------------------- the front's clock
def _service(kind: str, wall: FakeWall, shards: int = 2):
    transport = LocalTransport()
    hosts = [AccountHost(f"shard-{i}") for i in range(shards)]
    supervisor = Supervisor(transport, "sharded", hosts, {})
    return RiskService(transport, supervisor, hosts, "sharded", clock=DeploymentClock(kind, wall=wall)), hosts


async def _register(service: RiskService, account_id: str, opened_at: float | None = None) -> dict:
    spec = {"account_id": account_id, "user_id": f"user-{account_id}", "challenge_id": "c1", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "limits": {"max_orders_per_second": 1000}}
    return await service.register(spec, service.now() if opened_at is None else opened_at)


def test_a_wall_server_rolls_the_day_at_the_boundary_with_no_traffic():
    wall = FakeWall(T0)
    service, hosts = _service("wall", wall)

    async def scenario():
        for i in range(4):  # accounts on both shards
            await _register(service, f"w{i}")
        wall.now = ROLL - 0.001
        assert (await service.tick())["advanced"] == 0
        wall.now = ROLL + 0.5  # half a second after the boundary, no request at all
        reply = await service.tick()
        assert reply["advanced"] == 4 and reply["clock"] == ROLL + 0.5
        return reply

    asyncio.run(scenario())
    for host in hosts:
        assert host.accounts and host.clock == ROLL + 0.5
        for acct in host.accounts.values():
            assert acct.trading_day == date(2025, 5, 7)
            assert [e["at"] for e in acct.events if e["type"] == "day_rolled"] == [ROLL]


def test_run_clock_ticks_every_period_in_wall_mode():
    wall = FakeWall(T0)
    service, hosts = _service("wall", wall, shards=1)
    service.tick_seconds = 0.001

    async def scenario():
        await _register(service, "w1")
        wall.now = ROLL + 1
        task = asyncio.create_task(service.run_clock())
        for _ in range(500):
            await asyncio.sleep(0.002)
            if hosts[0].accounts["w1"].trading_day == date(2025, 5, 7):
                break
        task.cancel()

    asyncio.run(scenario())
    assert hosts[0].accounts["w1"].trading_day == date(2025, 5, 7)


def test_events_clock_moves_only_with_event_times_and_brings_every_host_along():
    wall = FakeWall(T0 + 365 * DAY)  # the wall clock is far later: it does not matter here
    service, hosts = _service("events", wall)

    async def scenario():
        assert service.now() == 0.0
        for i in range(4):
            await _register(service, f"e{i}", opened_at=T0)
        assert service.now() == T0
        await service.marks([_mark(1.0, T0 + 1)])
        # a check on one shard after the roll: the other shard's accounts roll with it
        await service.check(_order("o1", "e0", ROLL + 5, qty=0.1), ROLL + 5)
        assert service.now() == ROLL + 5

    asyncio.run(scenario())
    for host in hosts:
        assert host.clock == ROLL + 5
        assert {a.trading_day for a in host.accounts.values()} == {date(2025, 5, 7)}


def test_the_events_clock_never_goes_back():
    clock = DeploymentClock("events")
    assert clock.observe(100.0) and clock.now() == 100.0
    assert not clock.observe(50.0) and clock.now() == 100.0
    wall = DeploymentClock("wall", wall=FakeWall(200.0))
    assert wall.now() == 200.0 and not wall.observe(500.0)
    wall._wall.now = 150.0  # the wall clock steps back (NTP): the deployment clock does not
    assert wall.now() == 200.0


# ---------------------------------------------------------------------- state written before this version
def test_a_root_written_by_state_version_1_still_loads(tmp_path):
    import shutil

    root = tmp_path / "v1-root"
    shutil.copytree(FIXTURES / "v1-root", root)
    host = AccountHost("shard-0", _storage(root))
    expected = json.loads((FIXTURES / "v1-expected.json").read_text(encoding="utf-8"))
    assert host.recovery["snapshot_seq"] == 9 and host.recovery["replayed"] == 5
    for account_id, old in expected.items():
        new = host.view(account_id, old["created_at"] + 160)
        for key in ("balance", "equity", "floating_pnl", "margin_used", "status", "trading_day", "kill_switch",
                    "daily_loss_floor", "max_loss_floor", "high_water_mark", "closed_trades", "breaches",
                    "reservations", "day_start_balance", "risk_score"):
            assert new[key] == old[key], (account_id, key)
        assert [p["quantity"] for p in new["positions"]] == [p["quantity"] for p in old["positions"]]
        assert {k: v for k, v in new["limits"].items() if k in old["limits"]} == old["limits"]
    state = account_to_state(host.accounts["n1"])
    assert state["version"] == 2 and state["clock"] >= state["created_at"]
    host.snapshot()  # written again in version 2, read back the same
    assert _states(AccountHost("shard-0", _storage(root))) == _states(host)


@pytest.mark.parametrize("kind", ["sundial", ""])
def test_an_unknown_clock_kind_is_refused(kind):
    with pytest.raises(ValueError, match="clock must be wall or events"):
        DeploymentClock(kind)
