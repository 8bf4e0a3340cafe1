"""Helpers of the HTTP API suite (see conftest.py for the conventions)."""

from __future__ import annotations

import time
from typing import Any

import httpx

CONTRACT = {"EURUSD": 100_000.0, "XAUUSD": 100.0, "USDJPY": 100_000.0}

_last_ts = 0.0


def aged_out(positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Positions without ``mark_age_seconds``: a mark's age grows with the clock by itself, so
    two views read a moment apart differ in it and in nothing else."""
    return [{k: v for k, v in p.items() if k != "mark_age_seconds"} for p in positions]


def fresh_ts() -> float:
    """A strictly increasing epoch-seconds timestamp that tracks the wall clock."""
    global _last_ts
    _last_ts = max(time.time(), _last_ts + 0.001)
    return _last_ts


def codes(items: list[dict[str, Any]]) -> list[str]:
    """The ``code`` of every reason or warning, in order."""
    return [r["code"] for r in items]


def reason(decision: dict[str, Any], code: str) -> dict[str, Any]:
    """The reason with ``code`` of a decision (fails if absent)."""
    found = [r for r in decision["reasons"] if r["code"] == code]
    assert found, f"{code} not among {codes(decision['reasons'])}"
    return found[0]


def locs(response: httpx.Response) -> list[list]:
    """The ``loc`` of every error of a 422 body."""
    assert response.status_code == 422, (response.status_code, response.text)
    return [d["loc"] for d in response.json()["detail"]]


class Api:
    """Small typed helpers over the HTTP contract, bound to one test's ``uid``.

    Helpers that expect success assert the status code and return the decoded body; the raw
    client is ``api.client`` for everything else.
    """

    def __init__(self, client: httpx.AsyncClient, uid: str):
        self.client = client
        self.uid = uid
        self._orders = 0
        self._fills = 0

    async def state(self, account_id: str) -> dict[str, Any]:
        """What any change of the account would show: the view's state fields and every event
        (``{"exists": False}`` for an unknown account). Used to assert that a refused request
        changed nothing."""
        r = await self.client.get(f"/v1/accounts/{account_id}")
        if r.status_code == 404:
            return {"exists": False}
        assert r.status_code == 200, r.text
        v = r.json()
        keep = ("balance", "equity", "positions", "reservations", "limits", "status", "kill_switch", "kill_switches",
                "plan", "plan_version", "initial_balance", "recommendations", "breaches", "closed_trades")
        events = (await self.client.get(f"/v1/accounts/{account_id}/events", params={"limit": 2000})).json()
        view = {k: v[k] for k in keep}
        # a mark's age grows with the clock by itself: it is not a change of the account
        view["positions"] = aged_out(view["positions"])
        return {"view": view, "events": events["events"]}

    def id(self, name: str) -> str:
        """``<uid>-<name>``: an id unique to this test."""
        return f"{self.uid}-{name}"

    def fill_id(self) -> str:
        self._fills += 1
        return self.id(f"f{self._fills}")

    def order_id(self) -> str:
        self._orders += 1
        return self.id(f"o{self._orders}")

    async def register(self, name: str, *, user: str = "u1", challenge: str = "c1", plan: str = "moderate",
                       balance: float = 100_000.0, currency: str = "USD", **limits: Any) -> dict[str, Any]:
        """Register account ``<uid>-<name>`` (user ``<uid>-<user>``, challenge ``<uid>-<challenge>``)."""
        body = {"account_id": self.id(name), "user_id": self.id(user), "challenge_id": self.id(challenge),
                "currency": currency, "initial_balance": balance, "plan": plan,
                "limits": {"max_orders_per_second": 1000, **limits}}
        r = await self.client.post("/v1/accounts", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def marks(self, prices: dict[str, tuple[float, float]]) -> dict[str, Any]:
        """Post ``{instrument: (bid, ask)}`` with a fresh ts; asserts none was stale."""
        ts = fresh_ts()
        body = {"marks": [{"instrument": s, "bid": b, "ask": a, "ts": ts} for s, (b, a) in prices.items()]}
        r = await self.client.post("/v1/marks", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["stale"] == 0, f"marks went stale (another suite stamped later ts?): {out}"
        return out

    def order(self, account_id: str, instrument: str, side: str, quantity: float, **extra: Any) -> dict[str, Any]:
        return {"order_id": extra.pop("order_id", None) or self.order_id(), "account_id": account_id,
                "instrument": instrument, "side": side, "quantity": quantity, "ts": fresh_ts(), **extra}

    async def check(self, account_id: str, instrument: str, side: str, quantity: float,
                    **extra: Any) -> dict[str, Any]:
        """POST /v1/orders/check; asserts 200 and returns the decision."""
        r = await self.client.post("/v1/orders/check", json=self.order(account_id, instrument, side, quantity, **extra))
        assert r.status_code == 200, r.text
        return r.json()

    async def fill(self, account_id: str, instrument: str, side: str, quantity: float, price: float,
                   **extra: Any) -> dict[str, Any]:
        """POST /v1/fills; asserts 200 and returns the result."""
        body = {"fill_id": extra.pop("fill_id", None) or self.fill_id(),
                "account_id": account_id, "instrument": instrument, "side": side, "quantity": quantity,
                "price": price, "ts": fresh_ts(), **extra}
        r = await self.client.post("/v1/fills", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    async def trade(self, account_id: str, instrument: str, side: str, quantity: float, price: float,
                    **fill_extra: Any) -> dict[str, Any]:
        """Check (must accept) then fill the order at ``price``; returns the fill result."""
        d = await self.check(account_id, instrument, side, quantity)
        assert d["decision"] == "accept", d
        return await self.fill(account_id, instrument, side, quantity, price, order_id=d["order_id"], **fill_extra)

    async def view(self, account_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/accounts/{account_id}")
        assert r.status_code == 200, r.text
        return r.json()

    async def kill(self, scope: str, scope_id: str | None, mode: str = "halt",
                   reason: str = "ops test") -> dict[str, Any]:
        body = {"scope": scope, "reason": reason, "mode": mode, "by": "tester"}
        if scope_id is not None:
            body["id"] = scope_id
        r = await self.client.post("/v1/kill-switch", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    async def release(self, scope: str, scope_id: str | None, reason: str = "released by test") -> dict[str, Any]:
        path = "/v1/kill-switch/firm" if scope == "firm" else f"/v1/kill-switch/{scope}/{scope_id}"
        r = await self.client.delete(path, params={"reason": reason, "by": "tester"})
        assert r.status_code == 200, r.text
        return r.json()
