"""The front's facade over the actors: routing table, fan-out and error mapping.

The FastAPI front calls only this class. It never blocks: every actor call is awaited
(``Transport.call``). Hosts answer with plain dicts; core errors come back as envelopes and
are raised here as the core's exceptions; an unreachable host raises ``ShardUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from typing import Any

from ..domain import UnknownAccount, UnknownOrder, UnknownRecommendation
from ..exceptions import ShardUnavailable
from .clock import DeploymentClock, HostTicker
from .idempotency import IdempotencyLedger
from .placement import shard_key
from .transport import as_error, unwrap

log = logging.getLogger("riskactors.actors")

__all__ = ["ACTOR", "CheckBatcher", "RiskService"]

#: Seconds between a front's heartbeats to the supervisor (``GET /v1/cluster`` lists fronts).
HEARTBEAT_SECONDS = 5.0
#: Accounts whose host key a front caches (about 100 bytes each); past it the cache starts over.
_MAX_ROUTES = 1_000_000

#: Who is acting in the current request, ``(name, role)``: set by the front's authentication
#: (the API key's name and role) and written to the audit log with every ops/admin action.
#: Calls made without it (the replay driver, tests) are recorded as ``("service", None)``.
ACTOR: ContextVar[tuple[str, str | None]] = ContextVar("riskactors_actor", default=("service", None))


class CheckBatcher:
    """Coalesces the checks bound for one host into ``check_many`` actor calls.

    At most ``in_flight`` calls per host are in flight from this front (default 1, setting
    ``check_calls_in_flight``); checks that arrive while they all are go together in the next
    call (in arrival order, so the host still applies them one at a time in order). At low
    load a check is sent at once, alone, from its own coroutine (no task); under load one actor
    round trip serves many checks.
    Ray runs an actor's calls from one caller in submission order, and each call is submitted
    as its batch is taken, so the host applies the batches in the order they were taken.
    """

    def __init__(self, transport: Any, host: Any, max_batch: int = 512, in_flight: int = 1):
        self.transport = transport
        self.host = host
        self.max_batch = max_batch
        self.in_flight = in_flight
        self._pending: list[tuple[dict[str, Any], float, asyncio.Future]] = []
        self._running = 0

    async def check(self, order: dict[str, Any], now: float) -> Any:
        if self._running < self.in_flight and not self._pending:
            # a call free and nothing waiting: this check goes alone, from this coroutine (no
            # task, no future: the 1-connection latency); checks arriving meanwhile wait for it
            self._running += 1
            try:
                return (await self.transport.call(self.host, "check_many", [order], [now]))[0]
            finally:
                self._running -= 1
                if self._pending and self._running < self.in_flight:
                    self._running += 1
                    asyncio.ensure_future(self._drain())
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((order, now, fut))
        if self._running < self.in_flight:
            self._running += 1
            asyncio.ensure_future(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                try:
                    results = await self.transport.call(self.host, "check_many", [b[0] for b in batch],
                                                        [b[1] for b in batch])
                except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, _, fut), result in zip(batch, results):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._running -= 1


class RiskService:
    """Facade used by the HTTP front.

    Parameters
    ----------
    transport : Transport
    supervisor : target
        The supervisor (actor handle or plain object).
    shards : list
        Shard targets (sharded placement); empty for dedicated.
    placement : {"sharded", "dedicated"}
    clock : DeploymentClock, optional
        The deployment clock (default: ``wall``). Every call without a ``ts`` happens at it;
        in ``events`` an event that moves it brings every host to it (:meth:`tick`) along
        with the event's own call.
    tick_seconds : float
        Period of :meth:`run_clock` in ``wall`` (the transitions due happen within it).
    ledger : target or IdempotencyLedger, optional
        The deployment's ``Idempotency-Key`` ledger (an actor handle); a plain
        :class:`~riskactors.actors.idempotency.IdempotencyLedger` is called in-process. Default:
        a new in-memory one (100,000 keys, 24 h).
    max_breaches_listed : int
        A marks answer lists at most this many breaches (it always gives their count, and the
        count per code; every breach is in the audit log and the accounts' events).
    check_calls_in_flight : int
        ``check_many`` calls per host this front keeps in flight (:class:`CheckBatcher`).
    registration_timeout : float, optional
        Seconds a registration call to the supervisor may take (``None``: the transport's call
        timeout). Under ``dedicated`` placement a registration may start new hosts, so it waits
        ``call_timeout_seconds + spawn_timeout_seconds``.
    """

    def __init__(self, transport: Any, supervisor: Any, shards: list[Any], placement: str,
                 clock: DeploymentClock | None = None, tick_seconds: float = 1.0, ledger: Any = None,
                 max_breaches_listed: int = 100, check_calls_in_flight: int = 1,
                 registration_timeout: float | None = None):
        self.transport = transport
        #: seconds a registration call may take (``None``: the transport's own): under
        #: ``dedicated`` placement it may start new hosts (``Settings.spawn_timeout_seconds``)
        self.registration_timeout = registration_timeout
        self.supervisor = supervisor
        self.shards = list(shards)
        self.placement = placement
        #: account id -> host key, and host key -> target: a cache of the supervisor's registry
        #: (an account never changes host key), so the hot path needs no supervisor hop
        self._routes: dict[str, str] = {}
        self._hosts: dict[str, Any] = {shard_key(i): s for i, s in enumerate(self.shards)}
        self._batchers: dict[int, CheckBatcher] = {}
        #: host key -> instruments whose marks the supervisor routes to it (this front told it,
        #: or heard so): an order or fill in any other goes through :meth:`_expose` first
        self._exposed: dict[str, set[str]] = {}
        self._exposing: dict[str, asyncio.Lock] = {}
        self.max_breaches_listed = max_breaches_listed
        #: ``check_many`` calls in flight per host from this front (see :class:`CheckBatcher`)
        self.check_calls_in_flight = check_calls_in_flight
        self.ledger = ledger if ledger is not None else IdempotencyLedger(
            {"max_keys": 100_000, "ttl_seconds": 86_400.0})
        self.clock = clock or DeploymentClock("wall")
        self.tick_seconds = tick_seconds
        self._tickers: dict[int, HostTicker] = {}

    # ------------------------------------------------------------------ Idempotency-Key ledger
    async def idempotency_begin(self, key: bytes, fingerprint: bytes, now: float) -> dict[str, Any]:
        """The ledger's verdict on a keyed request (see :meth:`IdempotencyLedger.begin`).
        Raises ``ShardUnavailable`` when the ledger does not answer."""
        if isinstance(self.ledger, IdempotencyLedger):
            return self.ledger.begin(key, fingerprint, now)
        return await self.transport.call(self.ledger, "begin", key, fingerprint, now)

    async def idempotency_finish(self, key: bytes, claim: str, response: Any) -> bool:
        """Hand a keyed request's response (``None``: not to be remembered) to the ledger."""
        if isinstance(self.ledger, IdempotencyLedger):
            return self.ledger.finish(key, claim, response)
        return await self.transport.call(self.ledger, "finish", key, claim, response)

    # ------------------------------------------------------------------ the deployment clock
    def now(self) -> float:
        """The deployment clock, epoch seconds: what a request without ``ts`` happens at, and
        what views are as of (see :mod:`riskactors.actors.clock`)."""
        return self.clock.now()

    async def tick(self) -> dict[str, Any]:
        """Bring every host to the deployment clock (``advance_to``): each applies the
        transitions due by then. Returns ``clock``, ``advanced`` (accounts changed) and
        ``breaches`` (``TIME_LIMIT`` failures)."""
        now = self.now()
        replies = await asyncio.gather(*self._ticks(now, await self._all_hosts()))
        replies = [r for r in replies if r]
        return {"clock": now, "advanced": sum(r["advanced"] for r in replies),
                "breaches": [b for r in replies for b in r["breaches"]]}

    def _ticks(self, now: float, hosts: list[Any]) -> list[asyncio.Future]:
        out = []
        for h in hosts:
            ticker = self._tickers.get(id(h))
            if ticker is None or ticker.host is not h:
                ticker = self._tickers[id(h)] = HostTicker(self.transport, h)
            out.append(ticker.want(now))
        return out

    async def _with_ticks(self, call: Any, ts: float) -> Any:
        """Await an event's own ``call`` (a coroutine) together with the ticks its ``ts`` calls for
        (``events``, when it moves the clock: every host brought to the new clock). A tick that fails does not fail the event (that
        host applies what is due before its next call anyway); the event's own failure does."""
        if not self.clock.observe(ts):
            return await call  # the clock did not move (always so in ``wall``)
        ticks = self._ticks(ts, await self._all_hosts())
        result, *others = await asyncio.gather(call, *ticks, return_exceptions=True)
        for failure in (o for o in others if isinstance(o, BaseException)):
            log.warning("clock tick with an event failed: %s", failure)
        if isinstance(result, BaseException):
            raise result
        return result

    async def run_clock(self) -> None:
        """The front's clock loop (``wall``): tick every ``tick_seconds`` until cancelled, so a
        day rolls at its boundary with no traffic. A failed tick is logged and retried."""
        if self.clock.kind != "wall":
            return
        while True:
            await asyncio.sleep(self.tick_seconds)
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - a host restarting: the next tick catches up
                log.warning("clock tick failed: %s", exc)

    # ------------------------------------------------------------------ routing
    async def _host(self, account_id: str) -> Any:
        """The target of the account's host (every account of a user on one host): from the
        route cache, else the supervisor's registry."""
        key = self._routes.get(account_id)
        if key is None:
            loc = await self.transport.call(self.supervisor, "locate", account_id)
            if loc is None:
                raise UnknownAccount(account_id, "account not registered")
            key = self._remember(account_id, loc["host_key"], loc["host"])
        return self._hosts[key]

    def _remember(self, account_id: str, key: str, host: Any) -> str:
        if len(self._routes) >= _MAX_ROUTES:  # a cache: what falls out is asked for again
            self._routes.clear()
        self._routes[account_id] = key
        self._hosts.setdefault(key, host)
        return key

    async def _trading_host(self, account_id: str, instrument: str) -> Any:
        """The account's host, once marks of ``instrument`` are routed to it (:meth:`_expose`;
        a set look-up after the first time)."""
        host = await self._host(account_id)
        key = self._routes[account_id]
        if instrument not in self._exposed.get(key, ()):
            await self._expose(key, {instrument})
        return host

    async def _expose(self, key: str, instruments: set[str]) -> None:
        """Before the first order or fill in ``instruments`` on host ``key`` reaches it: have
        the supervisor route their marks there from now on, and hand the host the latest ones
        (see :meth:`Supervisor.expose`). Raises ``ShardUnavailable`` when either does not
        answer (the order is then not sent: fail closed)."""
        known = self._exposed.setdefault(key, set())
        lock = self._exposing.setdefault(key, asyncio.Lock())
        async with lock:
            missing = instruments - known
            if not missing:
                return
            reply = await self.transport.call(self.supervisor, "expose", key, sorted(missing))
            if reply["marks"]:
                await self.transport.call(self._hosts[key], "apply_marks", reply["marks"],
                                          max(m["ts"] for m in reply["marks"]))
            known.update(reply["instruments"])

    async def _hosts_of(self, keys: list[str]) -> list[Any]:
        """The targets of host ``keys`` (the supervisor's host list is asked for ones this
        front has not seen yet)."""
        if any(k not in self._hosts for k in keys):
            for key, host in await self.transport.call(self.supervisor, "host_list"):
                self._hosts.setdefault(key, host)
        return [self._hosts[k] for k in keys if k in self._hosts]

    async def _all_hosts(self) -> list[Any]:
        if self.placement == "sharded":
            return list(self.shards)
        for key, host in await self.transport.call(self.supervisor, "host_list"):
            self._hosts[key] = host
        return list(self._hosts.values())

    async def _call_account(self, account_id: str, method: str, *args: Any) -> Any:
        host = await self._host(account_id)
        return unwrap(await self.transport.call(host, method, *args))

    async def _audited_account_call(self, account_id: str, method: str, *args: Any) -> dict[str, Any]:
        """An account-level admin call: the host applies it and keeps its audit entry (made from
        the call, journaled with it: the request's actor goes along), which is then delivered."""
        result = await self._call_account(account_id, method, account_id, *args, list(ACTOR.get()))
        return await self._delivered(result, account_id)

    async def _delivered(self, result: dict[str, Any], account_id: str) -> dict[str, Any]:
        """Move the audit entry a host reply carries (``audit``) into the audit log and return the
        reply without it. The action is done whatever happens here: when the supervisor does not
        answer, the entry waits in the host's outbox for a front's heartbeat
        (:meth:`drain_audits`), and the caller still gets its answer."""
        entry = result.pop("audit", None)
        if entry is not None:
            try:
                await self.transport.call(self.supervisor, "audit_append_many", [entry])
                await self.transport.call(await self._host(account_id), "audit_delivered", [entry["key"]])
            except ShardUnavailable as exc:
                log.warning("audit entry %s not delivered yet: %s", entry["key"], exc)
        return result

    async def drain_audits(self) -> int:
        """Deliver every host's audit outbox (entries left by a front or supervisor that failed
        before delivering them); returns how many were new."""
        keys = [k for k, _ in await self.transport.call(self.supervisor, "host_list")]
        return sum(await asyncio.gather(*(self.transport.call(self.supervisor, "deliver_audits", k) for k in keys)))

    # ------------------------------------------------------------------ accounts
    async def register(self, spec: dict[str, Any], now: float) -> dict[str, Any]:
        """Register an account (via the supervisor, which places it and writes its
        ``account_registered`` audit entry in the same call). Returns its view."""
        result = unwrap(await self._with_ticks(self.transport.call(self.supervisor, "register", spec, now,
                                                                   list(ACTOR.get()),
                                                                   timeout=self.registration_timeout), now))
        self._remember(spec["account_id"], result["host_key"], result["host"])
        return result["view"]

    async def register_many(self, specs: list[dict[str, Any]], nows: list[float]) -> list[Any]:
        """Register several accounts (``specs[i]`` opened at ``nows[i]``) in one supervisor call.
        Returns, per item in order, the view (with ``existing: True`` when the same account was
        already registered) or the exception the single call would have raised."""
        if not specs:
            return []
        replies = await self._with_ticks(self.transport.call(self.supervisor, "register_many", specs, nows,
                                                             list(ACTOR.get()), timeout=self.registration_timeout),
                                          max(nows))
        out: list[Any] = []
        for spec, reply in zip(specs, replies):
            error = as_error(reply)
            if error is not None:
                out.append(error)
                continue
            self._remember(spec["account_id"], reply["host_key"], reply["host"])
            view = reply["view"]
            if reply.get("existing"):
                out.append({**view, "existing": True})
                continue
            out.append(view)
        return out

    async def list_accounts(self, user_id: str | None = None, challenge_id: str | None = None,
                            status: str | None = None, cursor: str | None = None, limit: int = 100,
                            at: float | None = None) -> dict[str, Any]:
        """A page of account summaries in ``account_id`` order after ``cursor`` (``GET
        /v1/accounts``); ``next_cursor`` is ``None`` on the last page."""
        at = self.now() if at is None else at
        page = await self.transport.call(self.supervisor, "list_accounts", user_id, challenge_id, status, cursor,
                                         limit, at)
        return {**page, "as_of": at}

    async def view(self, account_id: str, at: float | None = None) -> dict[str, Any]:
        """The account as of ``at`` (default: the deployment clock)."""
        return await self._call_account(account_id, "view", account_id, self.now() if at is None else at)

    async def events(self, account_id: str, limit: int) -> dict[str, Any]:
        return await self._call_account(account_id, "events", account_id, limit)

    async def patch_limits(self, account_id: str, overrides: dict[str, Any], by: str, reason: str,
                           now: float) -> dict[str, Any]:
        return await self._audited_account_call(account_id, "patch_limits", overrides, by, reason, now)

    async def set_status(self, account_id: str, status: str, by: str, reason: str, now: float) -> dict[str, Any]:
        return await self._audited_account_call(account_id, "set_status", status, by, reason, now)

    # ------------------------------------------------------------------ orders and fills
    async def check(self, order: dict[str, Any], now: float) -> dict[str, Any]:
        """Pre-trade check. Raises ``ShardUnavailable`` (fail closed) or a core error."""
        host = await self._trading_host(order["account_id"], order["instrument"])
        batcher = self._batchers.get(id(host))
        if batcher is None or batcher.host is not host:
            batcher = self._batchers[id(host)] = CheckBatcher(self.transport, host, in_flight=self.check_calls_in_flight)
        if self.clock.kind == "wall":  # the hot path: a wall clock never moves with an event
            return unwrap(await batcher.check(order, now))
        return unwrap(await self._with_ticks(batcher.check(order, now), now))

    async def cancel(self, order_id: str, account_id: str | None, now: float) -> dict[str, Any]:
        """Release an order's reservation; without ``account_id`` every host is asked (an account
        remembers the orders it checked)."""
        if account_id is not None:
            return await self._call_account(account_id, "cancel", account_id, order_id, now)
        hosts = await self._all_hosts()
        results = await asyncio.gather(*(self.transport.call(h, "cancel", None, order_id, now) for h in hosts))
        for r in results:
            if r is not None:
                return unwrap(r)
        raise UnknownOrder(order_id, "order_id unknown on every account")

    async def fill(self, fill: dict[str, Any], now: float) -> dict[str, Any]:
        """Apply a fill (idempotent on ``fill_id``)."""
        await self._trading_host(fill["account_id"], fill["instrument"])
        return await self._with_ticks(self._call_account(fill["account_id"], "fill", fill, now), now)

    async def fill_many(self, fills: list[dict[str, Any]], nows: list[float]) -> list[Any]:
        """Apply several fills: one ``fill_many`` call per host, each host's fills in the items'
        order (so two fills of one account apply in the order given). Returns, per item, the
        fill result or the exception the single call would have raised."""
        out: list[Any] = [None] * len(fills)
        groups: dict[str, list[int]] = {}
        for i, fill in enumerate(fills):
            try:
                await self._host(fill["account_id"])
            except (UnknownAccount, ShardUnavailable) as exc:
                out[i] = exc
                continue
            groups.setdefault(self._routes[fill["account_id"]], []).append(i)

        async def expose(key: str, idx: list[int]) -> None:
            try:
                await self._expose(key, {fills[i]["instrument"] for i in idx})
            except ShardUnavailable as exc:  # none of that host's fills is sent
                for i in idx:
                    out[i] = exc
                del groups[key]

        await asyncio.gather(*(expose(k, idx) for k, idx in list(groups.items())
                               if any(fills[i]["instrument"] not in self._exposed.get(k, ()) for i in idx)))

        async def on_host(key: str, idx: list[int]) -> None:
            try:
                replies = await self.transport.call(self._hosts[key], "fill_many", [fills[i] for i in idx],
                                                    [nows[i] for i in idx])
            except ShardUnavailable as exc:
                for i in idx:
                    out[i] = exc
                return
            for i, reply in zip(idx, replies):
                error = as_error(reply)
                out[i] = reply if error is None else error

        if groups:
            await self._with_ticks(asyncio.gather(*(on_host(k, idx) for k, idx in groups.items())), max(nows))
        return out

    async def marks(self, marks: list[dict[str, Any]]) -> dict[str, Any]:
        """Send marks to the supervisor, which keeps the latest and names the hosts exposed to
        them (:mod:`~riskactors.actors.markroutes`), then to those hosts only; returns counts
        (``revalued``: accounts) and the breaches caused."""
        now = max(m["ts"] for m in marks)
        moved = self.clock.observe(now)
        route = await self.transport.call(self.supervisor, "route_marks", marks)
        hosts = await self._hosts_of(route["hosts"])
        calls = [self.transport.call(h, "apply_marks", marks, now, self.max_breaches_listed) for h in hosts]
        if moved:  # events: the hosts the marks do not go to are brought to the new clock too
            others = [h for h in await self._all_hosts() if all(h is not t for t in hosts)]
            calls.append(asyncio.gather(*self._ticks(now, others), return_exceptions=True))
        results = await asyncio.gather(*calls)
        if moved:
            for failure in (o for o in results.pop() if isinstance(o, BaseException)):
                log.warning("clock tick with marks failed: %s", failure)
        fresh = route["fresh"]
        breaches = [b for r in results for b in r["breaches"]]
        by_code: dict[str, int] = {}
        for r in results:
            for code, n in r["breaches_by_code"].items():
                by_code[code] = by_code.get(code, 0) + n
        return {"received": len(marks), "applied": fresh, "stale": len(marks) - fresh,
                "hosts": len(hosts), "revalued": sum(r.get("revalued", 0) for r in results),
                "breaches": breaches[:self.max_breaches_listed], "breach_count": sum(r["breach_count"] for r in results),
                "breaches_by_code": by_code}

    async def calendar(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        """Store calendar events (by ``event_id``, in the supervisor) and send them to every host."""
        return await self.transport.call(self.supervisor, "calendar_add", events, self.now(), list(ACTOR.get()))

    async def calendar_events(self) -> list[dict[str, Any]]:
        """Every calendar event, in time order."""
        return await self.transport.call(self.supervisor, "calendar_list")

    # ------------------------------------------------------------------ plans
    async def plans(self) -> list[dict[str, Any]]:
        return await self.transport.call(self.supervisor, "plans_list")

    async def plan(self, plan_id: str) -> list[dict[str, Any]]:
        return unwrap(await self.transport.call(self.supervisor, "plan_versions", plan_id))

    async def create_plan(self, doc: dict[str, Any], now: float) -> dict[str, Any]:
        return unwrap(await self.transport.call(self.supervisor, "plan_create", doc, now, list(ACTOR.get())))

    async def activate_plan(self, plan_id: str, version: int | None, now: float) -> dict[str, Any]:
        active = unwrap(await self.transport.call(self.supervisor, "plan_activate", plan_id, version, now,
                                                  list(ACTOR.get())))
        active.pop("superseded_version", None)
        return active

    async def bind_plan(self, account_id: str, plan_id: str, version: int | None, keep_overrides: bool, by: str,
                        reason: str, now: float) -> dict[str, Any]:
        result = unwrap(await self.transport.call(self.supervisor, "bind_plan", account_id, plan_id, version,
                                                  keep_overrides, by, reason, now, list(ACTOR.get())))
        return await self._delivered(result, account_id)

    # ------------------------------------------------------------------ sizing, analytics, recommendations
    async def position_size(self, account_id: str, request: dict[str, Any], at: float | None = None) -> dict[str, Any]:
        await self._trading_host(account_id, request["instrument"])
        return await self._call_account(account_id, "position_size", account_id, request,
                                        self.now() if at is None else at)

    async def analytics(self, scope: str, scope_id: str | None, at: float | None = None) -> dict[str, Any]:
        at = self.now() if at is None else at
        result = unwrap(await self.transport.call(self.supervisor, "analytics", scope, scope_id, at))
        result["as_of"] = at
        return result

    async def behaviour_config(self, updates: dict[str, Any] | None = None) -> dict[str, Any]:
        before = await self.transport.call(self.supervisor, "behaviour_config")
        if updates is None:
            return before
        return unwrap(await self.transport.call(self.supervisor, "update_behaviour_config", updates, list(ACTOR.get())))

    async def recommendations(self, account_id: str | None, status: str | None,
                              now: float | None = None) -> list[dict[str, Any]]:
        now = self.now() if now is None else now
        return unwrap(await self.transport.call(self.supervisor, "recommendations", account_id, status, now))

    async def decide_recommendation(self, rec_id: str, apply: bool, by: str, reason: str,
                                    now: float) -> dict[str, Any]:
        """Apply or dismiss a recommendation (its id names the account: ``R<seq>-<account_id>``)."""
        head, sep, account_id = rec_id.partition("-")
        if not sep or not head.startswith("R") or not head[1:].isdigit():
            raise UnknownRecommendation(rec_id, "not a recommendation id (R<seq>-<account_id>)")
        try:
            result = await self._call_account(account_id, "decide_recommendation", account_id, rec_id, apply, by,
                                              reason, now, list(ACTOR.get()))
        except UnknownAccount:
            raise UnknownRecommendation(rec_id, "recommendation unknown") from None
        return await self._delivered(result, account_id)

    # ------------------------------------------------------------------ ops
    async def set_kill_switch(self, scope: str, scope_id: str | None, mode: str, reason: str, by: str,
                              now: float) -> dict[str, Any]:
        return unwrap(await self.transport.call(self.supervisor, "set_kill_switch", scope, scope_id, mode, reason,
                                                by, now, list(ACTOR.get())))

    async def release_kill_switch(self, scope: str, scope_id: str | None, reason: str, by: str,
                                  now: float) -> dict[str, Any]:
        return unwrap(await self.transport.call(self.supervisor, "release_kill_switch", scope, scope_id, reason,
                                                by, now, list(ACTOR.get())))

    async def audit(self, **filters: Any) -> list[dict[str, Any]]:
        """Audit entries (ops/admin actions and breaches) in time order; filters: ``account_id``,
        ``actor``, ``action``, ``since``, ``until`` (epoch seconds), ``limit``."""
        return await self.transport.call(self.supervisor, "audit", filters.get("account_id"), filters.get("actor"),
                                         filters.get("action"), filters.get("since"), filters.get("until"),
                                         filters.get("limit"))

    async def consolidated(self, scope: str, scope_id: str | None, top_n: int,
                           at: float | None = None) -> dict[str, Any]:
        """Consolidated risk of a scope as of ``at`` (default: the deployment clock)."""
        at = self.now() if at is None else at
        result = unwrap(await self.transport.call(self.supervisor, "consolidated", scope, scope_id, top_n, at))
        result["as_of"] = at
        return result

    async def cluster(self) -> dict[str, Any]:
        """Nodes, shards per node, accounts per shard, each shard's epoch, the fronts attached
        (``GET /v1/cluster``)."""
        return await self.transport.call(self.supervisor, "cluster", time.time())

    async def run_heartbeat(self, front: dict[str, Any], every: float = HEARTBEAT_SECONDS) -> None:
        """Tell the supervisor this front is attached (``front``: id, host, pid, port…), every
        ``every`` seconds until cancelled; a failed beat is logged and tried again."""
        while True:
            try:
                await self.transport.call(self.supervisor, "front_seen", front, time.time())
                await self.drain_audits()
            except Exception as exc:  # noqa: BLE001 - the supervisor restarting: the next beat
                log.debug("front heartbeat failed: %s", exc)
            await asyncio.sleep(every)

    async def ready(self) -> dict[str, Any]:
        """Ping the supervisor and every host. Raises ``ShardUnavailable`` if one is down."""
        stats = await self.transport.call(self.supervisor, "stats")
        hosts = await self._all_hosts()
        pings = await asyncio.gather(*(self.transport.call(h, "ping") for h in hosts))
        return {"placement": self.placement, "accounts": stats["accounts"], "hosts": len(pings),
                "host_accounts": {p["host_id"]: p["accounts"] for p in pings},
                "clock": {"kind": self.clock.kind, "now": self.now()}}
