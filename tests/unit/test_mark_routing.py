"""Marks go only to the hosts exposed to them, and a host revalues only the accounts they move.

Exposure (``riskactors.domain.exposure``, ``riskactors.actors.markroutes``): positions in the
instrument or conversion of a position's quote currency through it; a host is routed an
instrument's marks from the first order or fill in it that reaches the host, and gets the
deployment's latest marks for it then (so a check there is priced on them). Checked in
process with two shards and one or two fronts, and against a reference host that revalues
every account with positions (the behaviour before routing).
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unitkit import T0

from riskactors.actors import AccountHost, LocalTransport, RiskService, Supervisor
from riskactors.actors.clock import DeploymentClock
from riskactors.actors.placement import host_key
from riskactors.domain import ExposureMap, account_to_state, default_plan_registry, default_registry


def _user_on(shard: int, n: int = 2, prefix: str = "u") -> str:
    """A user id that sharded placement over ``n`` shards puts on ``shard``."""
    return next(f"{prefix}{i}" for i in range(1000) if host_key("sharded", f"{prefix}{i}", n) == f"shard-{shard}")


def _spec(account_id: str, user_id: str, currency: str = "USD") -> dict:
    return {"account_id": account_id, "user_id": user_id, "challenge_id": "c", "currency": currency,
            "initial_balance": 100_000.0, "plan": "moderate",
            "limits": {"max_position_lots": 100.0, "max_leverage": 1000.0, "account_leverage": 1000.0}}


def _mark(sym: str, mid: float, ts: float) -> dict:
    return {"instrument": sym, "bid": mid, "ask": mid, "ts": ts}


def _fill(fill_id: str, account_id: str, sym: str, price: float, ts: float, side: str = "buy", lots: float = 1.0):
    return {"fill_id": fill_id, "account_id": account_id, "instrument": sym, "side": side, "quantity": lots,
            "price": price, "ts": ts}


# ---------------------------------------------------------------------- what values what
def _fx(*pairs: str) -> set[str]:
    """Every FX symbol of the registry between the currencies of ``pairs`` (e.g. ``"USDJPY"``,
    either way round; broker variants such as ``usdjpy.`` included)."""
    wanted = {frozenset((p[:3], p[3:])) for p in pairs}
    return {i.symbol for i in default_registry() if i.asset_class == "fx"
            and frozenset((i.base_currency, i.quote_currency)) in wanted}


def test_exposure_of_a_position_is_its_instrument_and_its_conversion_pairs():
    ex = ExposureMap(default_registry())
    assert "usdjpy." in _fx("USDJPY") and "USDJPY" in _fx("JPYUSD")
    assert ex.of_symbol("EURUSD", "USD") == {"EURUSD"}  # quoted in the account currency
    assert ex.of_symbol("GBPJPY", "USD") == {"GBPJPY"} | _fx("USDJPY")  # JPY -> USD
    assert ex.of_symbol("EURUSD", "JPY") == {"EURUSD"} | _fx("USDJPY")
    # JPY -> EUR: the direct pair, or the two legs through USD
    assert ex.of_symbol("GBPJPY", "EUR") == {"GBPJPY"} | _fx("EURJPY", "USDJPY", "EURUSD")
    assert ex.of_symbol("NOSUCH", "USD") == {"NOSUCH"}
    assert ex.of_host(["GBPJPY"], ["USD", "EUR"]) == {"GBPJPY"} | _fx("EURJPY", "USDJPY", "EURUSD")
    assert ex.of_host(["GBPJPY"], []) == {"GBPJPY"}


# ---------------------------------------------------------------------- one host
def _host_with_positions() -> AccountHost:
    """Four USD/JPY accounts on one host: a EURUSD holder, a GBPJPY holder (USD: converted
    through USDJPY), a JPY account holding EURUSD (USD -> JPY through USDJPY), and one flat."""
    host = AccountHost("h")
    host.apply_marks([_mark("EURUSD", 1.1, T0), _mark("GBPJPY", 190.0, T0), _mark("USDJPY", 150.0, T0)], T0)
    for account_id, ccy in (("eu", "USD"), ("gj", "USD"), ("jp", "JPY"), ("flat", "USD")):
        spec = _spec(account_id, "u", ccy)
        spec["resolved_limits"] = default_plan_registry().resolve("moderate", None, 100_000.0, spec["limits"])[1].to_dict()
        assert "error" not in host.register(spec, [], [], T0)
    for f in (_fill("f1", "eu", "EURUSD", 1.1, T0), _fill("f2", "gj", "GBPJPY", 190.0, T0),
              _fill("f3", "jp", "EURUSD", 1.1, T0)):
        assert "error" not in host.fill(f, T0)
    return host


@pytest.mark.parametrize(("sym", "revalued"), [("EURUSD", 2), ("GBPJPY", 1), ("USDJPY", 2), ("AUDUSD", 0)])
def test_a_mark_revalues_only_the_accounts_it_moves(sym, revalued):
    host = _host_with_positions()
    assert set(host.held_symbols()) == {"EURUSD", "GBPJPY"} | _fx("USDJPY")
    out = host.apply_marks([_mark(sym, {"EURUSD": 1.2, "GBPJPY": 191.0, "USDJPY": 151.0, "AUDUSD": 0.66}[sym],
                                  T0 + 1)], T0 + 1)
    assert out["applied"] == 1 and out["revalued"] == revalued


def test_closing_the_position_takes_the_account_off_its_symbols():
    host = _host_with_positions()
    assert "error" not in host.fill(_fill("f4", "gj", "GBPJPY", 190.0, T0 + 1, side="sell"), T0 + 1)
    assert set(host.held_symbols()) == {"EURUSD"} | _fx("USDJPY")  # USDJPY: the JPY account's EURUSD
    assert host.apply_marks([_mark("GBPJPY", 185.0, T0 + 2)], T0 + 2)["revalued"] == 0


class _RevalueAll(AccountHost):
    """The reference: every account with positions revalued on every applied mark."""

    def _apply_marks(self, marks):
        applied, stale, _, symbols = super()._apply_marks(marks)
        return applied, stale, {a for a, acct in self.accounts.items() if acct.positions}, symbols


_SYMS = ("EURUSD", "GBPJPY", "USDJPY", "EURJPY", "XAUUSD")
_MID = {"EURUSD": 1.1, "GBPJPY": 190.0, "USDJPY": 150.0, "EURJPY": 165.0, "XAUUSD": 2300.0}
_steps = st.lists(st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(["a", "b", "c"]), st.sampled_from(_SYMS),
              st.sampled_from(["buy", "sell"]), st.sampled_from([0.5, 1.0, 3.0])),
    st.tuples(st.just("mark"), st.sampled_from(_SYMS), st.floats(-0.2, 0.2)),
), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps)
def test_revaluing_only_the_moved_accounts_gives_the_state_of_revaluing_all(steps):
    hosts = [AccountHost("h"), _RevalueAll("h")]
    limits = {"max_position_lots": 1000.0, "max_leverage": 1e6, "account_leverage": 1e6,
              "daily_loss_limit": 5_000.0, "max_loss_limit": 8_000.0}
    for h in hosts:
        h.apply_marks([_mark(s, m, T0) for s, m in _MID.items()], T0)
        for account_id, ccy in (("a", "USD"), ("b", "JPY"), ("c", "EUR")):
            spec = {**_spec(account_id, "u", ccy), "limits": limits}
            spec["resolved_limits"] = default_plan_registry().resolve("moderate", None, 100_000.0, limits)[1].to_dict()
            h.register(spec, [], [], T0)
    for n, step in enumerate(steps, 1):
        ts = T0 + n
        for h in hosts:
            if step[0] == "fill":
                _, acct, sym, side, lots = step
                h.fill(_fill(f"f{n}", acct, sym, h.latest.get(sym).mid, ts, side, lots), ts)
            else:
                _, sym, move = step
                h.apply_marks([_mark(sym, _MID[sym] * (1 + move), ts)], ts)
    routed, reference = hosts

    def state(acct):  # an account's own clock is as far as its calls took it; the host's is what counts
        return {k: v for k, v in account_to_state(acct).items() if k != "clock"}

    assert [state(a) for a in routed.accounts.values()] == [state(a) for a in reference.accounts.values()]
    assert routed.clock == reference.clock


# ---------------------------------------------------------------------- a deployment
def _deployment(root=None, fronts: int = 1):
    cfg = {} if root is None else {"storage": {"root": str(root), "fsync": "batch", "fsync_interval_seconds": 1.0,
                                               "snapshot_every_events": 10_000, "snapshot_every_seconds": 1e9}}

    class Counting(LocalTransport):
        def __init__(self):
            super().__init__()
            self.calls: list[tuple[str, str]] = []

        async def call(self, target, method, *args, timeout=None):
            self.calls.append((getattr(target, "host_id", "supervisor"), method))
            return await super().call(target, method, *args, timeout=timeout)

    transport = Counting()
    shards = [AccountHost(f"shard-{i}", cfg) for i in range(2)]
    supervisor = Supervisor(transport, "sharded", shards, cfg)
    services = [RiskService(transport, supervisor, shards, "sharded", clock=DeploymentClock("events"))
                for _ in range(fronts)]
    return transport, shards, supervisor, services


def _marks_calls(transport) -> list[str]:
    return sorted(h for h, m in transport.calls if m == "apply_marks")


def test_marks_go_to_exposed_hosts_only_and_a_new_exposure_gets_the_latest_mark():
    async def go():
        transport, shards, _, (svc,) = _deployment()
        a, b = _user_on(0), _user_on(1)
        await svc.register(_spec("A", a), T0)
        await svc.register(_spec("B", b), T0)
        transport.calls.clear()
        out = await svc.marks([_mark("EURUSD", 1.1, T0 + 1), _mark("GBPJPY", 190.0, T0 + 1)])
        assert (out["hosts"], out["revalued"], _marks_calls(transport)) == (0, 0, [])  # nobody holds them

        await svc.fill(_fill("f1", "A", "EURUSD", 1.1, T0 + 2), T0 + 2)
        transport.calls.clear()
        out = await svc.marks([_mark("EURUSD", 1.2, T0 + 3)])
        assert (out["hosts"], out["revalued"], _marks_calls(transport)) == (1, 1, ["shard-0"])
        assert shards[1].latest.get("EURUSD") is None  # shard-1 was sent no EURUSD mark

        # a GBPJPY mark went nowhere; the first GBPJPY order on shard-1 is priced on it (and on
        # USDJPY, its conversion): fetched from the supervisor before the check
        await svc.marks([_mark("GBPJPY", 191.5, T0 + 4), _mark("USDJPY", 150.0, T0 + 4)])
        assert shards[1].latest.get("GBPJPY") is None
        decision = await svc.check({"order_id": "o1", "account_id": "B", "instrument": "GBPJPY", "side": "buy",
                                    "quantity": 1.0, "ts": T0 + 5}, T0 + 5)
        assert decision["decision"] == "accept", decision
        assert shards[1].latest.get("GBPJPY").mid == 191.5 and shards[1].latest.get("USDJPY").mid == 150.0
        transport.calls.clear()
        out = await svc.marks([_mark("GBPJPY", 192.0, T0 + 6)])
        assert out["hosts"] == 1 and _marks_calls(transport) == ["shard-1"]
        out = await svc.marks([_mark("USDJPY", 151.0, T0 + 7)])  # converts shard-1's GBPJPY
        assert out["hosts"] == 1

    asyncio.run(go())


def test_a_second_front_routes_to_a_host_the_first_one_exposed():
    async def go():
        transport, _, _, (one, two) = _deployment(fronts=2)
        b = _user_on(1)
        await one.register(_spec("B", b), T0)
        await two.marks([_mark("XAUUSD", 2300.0, T0 + 1)])
        await one.fill(_fill("f1", "B", "XAUUSD", 2300.0, T0 + 2), T0 + 2)  # through front one
        transport.calls.clear()
        out = await two.marks([_mark("XAUUSD", 2250.0, T0 + 3)])  # front two has never seen that host trade
        assert out["hosts"] == 1 and out["revalued"] == 1 and _marks_calls(transport) == ["shard-1"]
        assert (await two.view("B"))["positions"][0]["mark_price"] == 2250.0

    asyncio.run(go())


def test_a_new_currency_on_a_host_gets_the_conversion_marks_of_what_is_traded_there():
    async def go():
        _, shards, _, (svc,) = _deployment()
        a = _user_on(0)
        await svc.register(_spec("A", a), T0)
        await svc.marks([_mark("EURUSD", 1.1, T0 + 1), _mark("USDJPY", 150.0, T0 + 1)])
        await svc.fill(_fill("f1", "A", "EURUSD", 1.1, T0 + 2), T0 + 2)
        assert shards[0].latest.get("USDJPY") is None  # a USD account's EURUSD needs no USDJPY
        await svc.register(_spec("J", _user_on(0, prefix="j"), "JPY"), T0 + 3)  # a JPY account on shard-0
        assert shards[0].latest.get("USDJPY").mid == 150.0
        out = await svc.marks([_mark("USDJPY", 152.0, T0 + 4)])
        assert out["hosts"] == 1

    asyncio.run(go())


def test_routes_survive_a_supervisor_restart(tmp_path):
    async def go():
        transport, shards, supervisor, (svc,) = _deployment(tmp_path)
        await svc.register(_spec("A", _user_on(0)), T0)
        await svc.marks([_mark("EURUSD", 1.1, T0 + 1)])
        await svc.fill(_fill("f1", "A", "EURUSD", 1.1, T0 + 2), T0 + 2)
        assert (await supervisor.route_marks([_mark("EURUSD", 1.2, T0 + 3)]))["hosts"] == ["shard-0"]
        supervisor._journal.close()
        again = Supervisor(transport, "sharded", shards, supervisor.host_config)
        route = await again.route_marks([_mark("EURUSD", 1.3, T0 + 4)])
        assert route["hosts"] == ["shard-0"] and again.marks["EURUSD"]["bid"] == 1.3
        assert (await again.route_marks([_mark("GBPJPY", 190.0, T0 + 4)]))["hosts"] == []

    asyncio.run(go())


def test_a_root_written_before_routing_sends_every_mark_to_its_old_hosts(tmp_path):
    async def go():
        transport, shards, supervisor, (svc,) = _deployment(tmp_path)
        await svc.register(_spec("A", _user_on(0)), T0)
        supervisor._journal.close()
        # what 0.2.0 wrote: registrations without currency, no exposure records
        from riskactors.actors.durable import open_journal

        cfg = supervisor.host_config
        journal = open_journal(cfg["storage"], "supervisor", "journal", fence=None)
        records = [rec for _, rec in journal.recover()]
        journal.close()
        assert [op for op, _ in records] == ["exposure_tracked", "register"]
        # a root without the record: rewrite it as 0.2.0 had it
        import shutil

        shutil.rmtree(tmp_path / "supervisor" / "journal")
        old = open_journal(cfg["storage"], "supervisor", "journal", fence=None)
        meta = {k: v for k, v in records[1][1][1].items() if k != "currency"}
        old.append(["register", ["A", meta]])
        old.commit()
        old.close()
        again = Supervisor(transport, "sharded", shards, cfg)
        assert again.routes.unknown == {"shard-0"}
        assert (await again.route_marks([_mark("AUDUSD", 0.66, T0 + 1)]))["hosts"] == ["shard-0"]

    asyncio.run(go())
