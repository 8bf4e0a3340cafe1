"""HEDGING_ACROSS_ACCOUNTS decided inside the host: every account of a user lives on one host
(placement by user), so a check sees the user's other accounts' positions and pending opening
orders in the same actor call (no front-side book, right with any number of fronts)."""

from __future__ import annotations

from unitkit import T0, make_limits

from riskactors.actors.host import AccountHost
from riskactors.actors.placement import host_key
from riskactors.domain.peers import peers_of


def _spec(account_id: str, user: str = "u1", mode: str = "netting", hedging: str | None = "reject") -> dict:
    limits = make_limits("moderate", 10_000, max_orders_per_second=1_000, hedging_across_accounts=hedging)
    return {"account_id": account_id, "user_id": user, "challenge_id": "c1", "currency": "USD",
            "initial_balance": 10_000.0, "plan": "moderate", "plan_version": 1, "resolved_limits": limits.to_dict(),
            "position_mode": mode}


def _host(*specs: dict) -> AccountHost:
    host = AccountHost("shard-0", {"reservation_ttl_seconds": 30.0})
    for spec in specs:
        host.register(spec, [], [{"instrument": "EURUSD", "bid": 1.1, "ask": 1.1001, "ts": T0}], T0)
    return host


def _check(host: AccountHost, oid: str, account: str, side: str, now: float, qty: float = 0.1) -> dict:
    return host.check({"order_id": oid, "account_id": account, "instrument": "EURUSD", "side": side,
                       "quantity": qty, "ts": now}, now)


def _fill(host: AccountHost, fid: str, account: str, side: str, now: float, qty: float = 0.1, **kw) -> dict:
    return host.fill({"fill_id": fid, "account_id": account, "instrument": "EURUSD", "side": side, "quantity": qty,
                      "price": 1.1001, "ts": now, **kw}, now)


def _codes(decision: dict) -> list[str]:
    return [r["code"] for r in decision["reasons"]]


def test_every_account_of_a_user_is_placed_on_one_host():
    for n in (1, 3, 8, 64):
        assert host_key("sharded", "u-42", n) == host_key("sharded", "u-42", n)
    assert host_key("dedicated", "u-42", 8) == "user-u-42"
    keys = {host_key("sharded", f"u{i}", 8) for i in range(200)}
    assert len(keys) == 8  # users spread over every shard


def test_a_position_in_another_account_rejects_the_opposite_side_only():
    host = _host(_spec("A"), _spec("B"))
    _fill(host, "f1", "A", "buy", T0 + 1)
    sell = _check(host, "o1", "B", "sell", T0 + 2)
    assert sell["decision"] == "reject" and _codes(sell) == ["HEDGING_ACROSS_ACCOUNTS"]
    assert "A" in sell["reasons"][0]["message"]
    assert _check(host, "o2", "B", "buy", T0 + 3)["decision"] == "accept"  # same direction is fine


def test_another_users_account_and_a_flat_account_do_not_count():
    host = _host(_spec("A"), _spec("B"), _spec("D", user="u2"))
    _fill(host, "f1", "D", "buy", T0 + 1)
    assert _check(host, "o1", "B", "sell", T0 + 2)["decision"] == "accept"
    _fill(host, "f2", "A", "buy", T0 + 3)
    _fill(host, "f3", "A", "sell", T0 + 4)  # A flat again
    assert _check(host, "o2", "B", "sell", T0 + 5)["decision"] == "accept"


def test_a_pending_opening_order_counts_until_cancelled_or_expired():
    host = _host(_spec("A"), _spec("B"))
    assert _check(host, "oA", "A", "sell", T0 + 1)["decision"] == "accept"  # pending, 30 s reservation
    blocked = _check(host, "oB1", "B", "buy", T0 + 2)
    assert _codes(blocked) == ["HEDGING_ACROSS_ACCOUNTS"]
    assert _check(host, "oB2", "B", "buy", T0 + 31.5)["decision"] == "accept"  # A's reservation expired at +31
    against = _check(host, "oA2", "A", "sell", T0 + 40)  # now B's pending buy is the opposite side
    assert _codes(against) == ["HEDGING_ACROSS_ACCOUNTS"] and "B" in against["reasons"][0]["message"]
    assert host.cancel("B", "oB2", T0 + 41)["released"] is True
    assert _check(host, "oA3", "A", "sell", T0 + 42)["decision"] == "accept"


def test_warn_accepts_with_a_warning_and_off_ignores_peers():
    host = _host(_spec("A"), _spec("W", hedging="warn"), _spec("O", hedging=None))
    _fill(host, "f1", "A", "buy", T0 + 1)
    warned = _check(host, "o1", "W", "sell", T0 + 2)
    assert warned["decision"] == "accept"
    assert [w["code"] for w in warned["warnings"]] == ["HEDGING_ACROSS_ACCOUNTS_WARNING"]
    off = _check(host, "o2", "O", "sell", T0 + 3)
    assert off["decision"] == "accept" and off["warnings"] == []


def test_peers_of_lists_each_direction_of_a_hedging_account():
    host = _host(_spec("A"), _spec("H", mode="hedging"), _spec("B"))
    _fill(host, "f1", "H", "buy", T0 + 1, qty=0.2)
    _fill(host, "f2", "H", "sell", T0 + 2, qty=0.2)  # a second ticket: H holds both sides
    _fill(host, "f3", "B", "sell", T0 + 3, qty=0.5)
    assert peers_of(host.accounts.values(), "A", "EURUSD") == (("H",), ("B", "H"))
    assert peers_of(host.accounts.values(), "A", "GBPUSD") == ((), ())
