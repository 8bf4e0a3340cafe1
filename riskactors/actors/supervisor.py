"""The supervisor: account → user/challenge registry, placement authority, scope kill
switches and consolidated risk. A plain class with async methods; ``ray_runtime`` makes it
an async Ray actor, tests use it directly with :class:`~riskactors.actors.transport.LocalTransport`.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ..domain import (
    AnalyticsConfigError,
    BehaviourConfig,
    ClosedTrade,
    DomainError,
    DuplicateAccount,
    ExposureMap,
    InstrumentRegistry,
    KillScope,
    LimitsError,
    PlanRegistry,
    UnknownAccount,
    analyse,
    default_registry,
    pooled,
)
from ..domain.instruments import package_data
from ..domain.rollup import merge
from ..exceptions import ShardUnavailable
from .deployment import check
from .durable import acquire_fence, open_journal
from .host import error_envelope, unavailable_envelope
from .markroutes import MarkRoutes
from .placement import host_key, shard_key
from .transport import unwrap

__all__ = ["FRONT_TIMEOUT_SECONDS", "Supervisor"]

#: A front not heard from for this long is no longer listed as attached (heartbeat every 5 s).
FRONT_TIMEOUT_SECONDS = 15.0

log = logging.getLogger("riskactors.actors")


class Supervisor:
    """Registry and consolidation.

    Parameters
    ----------
    transport : Transport
        How hosts are called (Ray or local).
    placement : {"sharded", "dedicated"}
    shards : list
        Shard targets (sharded placement); empty for dedicated.
    host_config : dict
        Passed to dedicated hosts when they are spawned; ``plans_file`` (optional) seeds the
        plan registry, else the shipped presets; ``storage`` (optional) is where the
        supervisor's journal and the audit log live.

    Notes
    -----
    With storage, every change of the supervisor's own state — an account registered (its
    user, challenge, host and overrides), a user/challenge/firm kill switch set or released, a
    plan created or activated, the analytics config, the news calendar — is journaled (and
    committed per the fsync policy) before the call returns, and re-applied when the
    supervisor is constructed again (a Ray restart or a server restart). Accounts' own state
    lives in their hosts' journals.
    """

    def __init__(self, transport: Any, placement: str, shards: list[Any], host_config: dict[str, Any]):
        self.transport = transport
        plans_file = host_config.get("plans_file")
        self.plans = PlanRegistry.from_json(plans_file) if plans_file else _fresh_presets()
        self.behaviour = BehaviourConfig()
        self.placement = placement
        self.host_config = host_config
        self.hosts: dict[str, Any] = {shard_key(i): s for i, s in enumerate(shards)}
        self.n_shards = len(shards)
        self.accounts: dict[str, dict[str, str]] = {}
        self._account_hosts: set[str] = set()  # the host keys that hold accounts
        self._sorted_ids: list[str] = []  # every account id, sorted (paging)
        self.by_user: dict[str, set[str]] = defaultdict(set)
        self.by_challenge: dict[str, set[str]] = defaultdict(set)
        self.switches: dict[tuple[str, str | None], dict[str, Any]] = {}
        self.calendar: dict[str, dict[str, Any]] = {}
        self._pending: set[str] = set()
        #: latest mark per instrument (see :meth:`route_marks`)
        self.marks: dict[str, dict[str, Any]] = {}
        self._marks_seeded = False
        registry = (InstrumentRegistry.from_csv(host_config["instruments_file"])
                    if host_config.get("instruments_file") else default_registry())
        #: which hosts each mark goes to (see :mod:`~riskactors.actors.markroutes`)
        self.routes = MarkRoutes(ExposureMap(registry))
        self._exposure_tracked = False
        #: front id -> its last heartbeat (see :meth:`front_seen`)
        self.fronts: dict[str, dict[str, Any]] = {}
        #: the deployment's record (name, version, deployment-level settings), see ``deployment.py``
        self.deployment: dict[str, Any] | None = None
        storage = host_config.get("storage")
        self.fence = acquire_fence(storage, "supervisor") if storage else None
        self._journal = open_journal(storage, "supervisor", "journal", fence=self.fence) if storage else None
        self._audit_journal = open_journal(storage, "supervisor", "audit", fence=self.fence) if storage else None
        self.audit_log: list[dict[str, Any]] = []
        self._audit_keys: set[str] = set()  # keys of the entries in the log (deliveries are repeated)
        if self._journal is not None:
            records = self._journal.recover()
            audited: list[dict[str, Any]] = []
            for _, (op, args, *entry) in records:
                self._apply(op, *args)
                audited.extend(entry)  # the audit entry journaled with its action
            self.audit_log = [entry for _, entry in self._audit_journal.recover()]
            self._audit_keys = {e["key"] for e in self.audit_log if "key" in e}
            missing = [e for e in audited if e["key"] not in self._audit_keys]
            if missing:  # a crash between an action's commit and its audit entry's: derived now
                log.warning("deriving %d audit entries from their actions' journal records", len(missing))
                self.audit_append_many(missing)
            self._derive_registration_audit()
            moved = [a for a, m in self.accounts.items() if m["host_key"] != self._host_key(m["user_id"])]
            if moved:
                raise ValueError(
                    f"the storage root holds {len(moved)} accounts (e.g. {moved[0]!r} on "
                    f"{self.accounts[moved[0]]['host_key']!r}) that placement {placement!r} with {len(shards)} shards "
                    f"would place elsewhere (accounts are placed by user since riskactors 0.2; a root written "
                    f"before, when they were placed by account, cannot be served by this version); start with the "
                    f"placement and shard count the journal was written with")
            log.info("supervisor recovered %d accounts, %d scope kill switches, %d audit entries (%d records)",
                     len(self.accounts), len(self.switches), len(self.audit_log), len(records))
        if not self._exposure_tracked:  # a new root, or one written before marks were routed
            self._change("exposure_tracked", sorted(self._account_hosts))
        wanted = host_config.get("deployment")
        if wanted is not None:
            if self.deployment is None:
                self._change("deployment", wanted)  # created now (or on a root written before records)
            else:
                check(self.deployment, wanted, "its storage root")

    # ------------------------------------------------------------------ durability
    def _apply(self, op: str, *args: Any) -> Any:
        """Apply one state change of the supervisor (also how the journal is replayed)."""
        if op == "deployment":
            self.deployment = args[0]
        elif op == "register":
            account_id, meta = args
            if account_id not in self.accounts:
                bisect.insort(self._sorted_ids, account_id)
            self.accounts[account_id] = meta
            self._account_hosts.add(meta["host_key"])
            self.by_user[meta["user_id"]].add(account_id)
            self.by_challenge[meta["challenge_id"]].add(account_id)
            if "currency" in meta:
                self.routes.account(meta["host_key"], meta["currency"])
        elif op == "exposed":
            key, instruments = args
            self.routes.trade(key, instruments)
        elif op == "exposure_tracked":
            self._exposure_tracked = True
            self.routes.unknown = set(args[0])
        elif op == "switch_set":
            scope, scope_id, switch = args
            self.switches[(scope, scope_id)] = switch
        elif op == "switch_released":
            scope, scope_id = args
            return self.switches.pop((scope, scope_id), None)
        elif op == "plan_create":
            return self.plans.create(*args)
        elif op == "plan_activate":
            plan_id, version, now = args
            return self.plans.activate(plan_id, version, now=now)
        elif op == "overrides":
            account_id, overrides = args
            self.accounts[account_id]["overrides"] = overrides
        elif op == "behaviour":
            self.behaviour = self.behaviour.with_updates(args[0])
        elif op == "calendar":
            for e in args[0]:
                self.calendar[e["event_id"]] = e
        else:
            raise ValueError(f"unknown supervisor journal record {op!r}")
        return None

    def _change(self, op: str, *args: Any, audit: dict[str, Any] | Callable[[Any], dict] | None = None) -> Any:
        """Apply a change and journal it (committed before the caller replies). ``audit``: the
        action's audit entry (or a function of the change's result giving it), journaled in the
        same record and then appended to the audit log; a crash between the two commits gets it
        back from the record on recovery. A change that raises journals nothing."""
        result = self._apply(op, *args)
        if callable(audit):
            audit = audit(result)
        if audit is not None:
            audit = {"key": f"supervisor/{uuid.uuid4().hex}", **audit}
        if self._journal is not None:
            self._journal.append([op, list(args)] if audit is None else [op, list(args), audit])
            self._journal.commit()
        if audit is not None:
            self.audit_append_many([audit])
        return result

    def _change_with_audit(self, op: str, *args: Any, audit: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_change` whose audit entry the caller appends itself once it knows the outcome
        (the journaled one, derived on recovery if it never was, has what was known before).
        Returns the keyed entry."""
        audit = {"key": f"supervisor/{uuid.uuid4().hex}", **audit}
        self._apply(op, *args)
        if self._journal is not None:
            self._journal.append([op, list(args), audit])
            self._journal.commit()
        return audit

    def _derive_registration_audit(self) -> None:
        """An account whose registration is journaled but whose audit entry is not (a crash
        between the two commits) gets its entry now, derived from the registration record."""
        audited = {e.get("account_id") for e in self.audit_log if e.get("action") == "account_registered"}
        missing = [a for a in self._sorted_ids if a not in audited]
        if missing:
            log.warning("deriving %d account_registered audit entries from the registry", len(missing))
            at = time.time()  # when it was derived: the registration record does not keep its instant
            self.audit_append_many([{
                "at": at, "actor": "system", "role": None, "by": None, "action": "account_registered",
                "account_id": a, "scope": "account", "scope_id": a, "reason": "derived from the registration record",
                "before": None, "after": {k: self.accounts[a].get(k) for k in (
                    "user_id", "challenge_id", "initial_balance", "overrides")}} for a in missing])

    def _change_many(self, op: str, records: list[tuple]) -> None:
        """Apply several changes of one kind and journal them with one commit."""
        for args in records:
            self._apply(op, *args)
        if self._journal is not None and records:
            for args in records:
                self._journal.append([op, list(args)])
            self._journal.commit()

    def _audit(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"audit_id": len(self.audit_log) + 1, **entry}
        if self._audit_journal is not None:
            self._audit_journal.append(entry)
            self._audit_journal.commit()
        self.audit_log.append(entry)
        return entry

    def _entry(self, who: list | None, action: str, at: float, *, by: str | None = None, reason: str = "",
               account_id: str | None = None, scope: str | None = None, scope_id: str | None = None,
               before: Any = None, after: Any = None) -> dict[str, Any]:
        """An audit entry of ``action`` by ``who`` (the request's actor name and role)."""
        name, role = who or ("service", None)
        return {"at": at, "actor": name, "role": role, "by": by, "action": action, "account_id": account_id,
                "scope": scope, "scope_id": scope_id, "reason": reason, "before": before, "after": after}

    async def _deliver_soon(self, key: str) -> None:
        """:meth:`deliver_audits` now; if the host does not answer, a front's heartbeat will."""
        try:
            await self.deliver_audits(key)
        except ShardUnavailable as exc:
            log.warning("audit entries of host %s not delivered yet: %s", key, exc)

    async def deliver_audits(self, key: str) -> int:
        """Move host ``key``'s audit outbox into the audit log (entries it has are skipped) and
        acknowledge it; returns how many were new. Any front's heartbeat does this for every
        host, so an entry outlives a front or supervisor that failed before delivering it."""
        host = await self._host(key)
        entries = await self.transport.call(host, "audit_outbox")
        if not entries:
            return 0
        added = self.audit_append_many(entries)
        await self.transport.call(host, "audit_delivered", [e["key"] for e in entries])
        return added
    def deployment_info(self) -> dict[str, Any] | None:
        """The deployment's record: ``name``, ``version`` (of riskactors that created it) and
        ``settings`` (its deployment-level settings); ``None`` for a supervisor built without one."""
        return self.deployment

    async def _host(self, key: str) -> Any:
        """The host of ``key``; after a restart of the supervisor a dedicated host is found
        again by its actor name (or created again, and it recovers from its journal)."""
        host = self.hosts.get(key)
        if host is None:
            host = self.hosts[key] = await self.transport.spawn_host(key, self.host_config)
        return host

    # ------------------------------------------------------------------ registry
    def _host_key(self, user_id: str) -> str:
        """Every account of a user on one host (see :mod:`~riskactors.actors.placement`)."""
        return host_key(self.placement, user_id, self.n_shards)

    def _switches_for(self, user_id: str, challenge_id: str) -> list[dict[str, Any]]:
        wanted = {("firm", None), ("user", user_id), ("challenge", challenge_id)}
        return [sw for key, sw in self.switches.items() if key in wanted]

    async def route_marks(self, marks: list[dict[str, Any]]) -> dict[str, Any]:
        """Keep the latest mark per instrument (newer ``ts`` wins) and say where the marks go.

        Returns ``fresh`` (how many were newer than the held ones) and ``hosts``: the sorted
        keys of the hosts exposed to any of their instruments (see
        :mod:`~riskactors.actors.markroutes`). No await between keeping and routing, so a
        host exposed by :meth:`expose` either is routed these marks or got them from it.
        The marks are not journaled: after a restart of the supervisor the latest are taken
        again from the hosts (:meth:`_seed_marks`)."""
        await self._seed_marks()
        fresh = 0
        for m in marks:
            held = self.marks.get(m["instrument"])
            if held is None or m["ts"] >= held["ts"]:
                self.marks[m["instrument"]] = m
                fresh += 1
        return {"fresh": fresh, "hosts": sorted(self.routes.hosts_for({m["instrument"] for m in marks}))}

    async def expose(self, key: str, instruments: list[str]) -> dict[str, Any]:
        """Route the marks of ``instruments`` (and their conversions) to host ``key`` from now
        on (journaled the first time). Returns ``instruments`` (those of the instrument
        registry: an unknown one is not recorded) and ``marks``, the latest marks of their
        symbols, which the caller hands to the host before its first order or fill in them:
        a check is priced on the deployment's latest mark even on a host that was not
        receiving it."""
        await self._seed_marks()
        known = [i for i in instruments if i in self.routes.exposure.registry]  # an unknown one is rejected anyway
        new = frozenset(known) - self.routes.traded.get(key, set())
        if new:
            self._change("exposed", key, sorted(new))
        return {"instruments": sorted(known),
                "marks": [self.marks[s] for s in sorted(self.routes.symbols_of(key, known)) if s in self.marks]}

    async def _seed_marks(self) -> None:
        """After a restart, the latest marks come back from the hosts (each keeps the latest
        it received in its snapshots; a mark reached only the hosts exposed to it, so every
        host is asked and the newest per instrument wins)."""
        if self._marks_seeded:
            return
        self._marks_seeded = True
        keys = sorted(set(self.hosts) | self._account_hosts)

        async def take(key: str) -> None:
            try:
                for m in await self.transport.call(await self._host(key), "latest_marks"):
                    held = self.marks.get(m["instrument"])
                    if held is None or m["ts"] > held["ts"]:
                        self.marks[m["instrument"]] = m
            except Exception as exc:  # noqa: BLE001 - the next marks posted fill it in
                log.warning("latest marks from host %s: %s", key, exc)

        await asyncio.gather(*(take(k) for k in keys))

    async def register(self, spec: dict[str, Any], now: float, who: list | None = None) -> dict[str, Any]:
        """Place and create an account bound to the active version of ``spec["plan"]`` (or the
        active ``spec["plan_version"]``), with the latest marks, and write its audit entry
        (``who``: the request's actor name and role). Returns ``{"view", "host_key", "host"}``
        or an error envelope; an id already registered is ``DuplicateAccount`` (409), even for
        the same account (the batch route answers that one ``existing``)."""
        (result,) = await self.register_many([spec], [now], who)
        if result.get("existing"):
            return error_envelope(DuplicateAccount(spec["account_id"], "account already registered"))
        return result

    async def register_many(self, specs: list[dict[str, Any]], nows: list[float],
                            who: list | None = None) -> list[dict[str, Any]]:
        """Register several accounts (``POST /v1/accounts/batch``): one ``register_many`` call
        per host, in the items' order, and one supervisor journal commit. Per item, in order:
        ``{"view", "host_key", "host"}`` (registered now), ``{"view", "existing": True, …}``
        (an account with that id and the same identity, user, challenge, currency, balance,
        plan, position mode and overrides, exists: a retry), or an error envelope (a different
        account with that id is ``DuplicateAccount``; an unreachable host ``ShardUnavailable``).
        Nothing of an item that fails is applied."""
        results: list[Any] = [None] * len(specs)
        prepared: dict[int, dict[str, Any]] = {}
        groups: dict[str, list[int]] = {}
        repeats: list[int] = []
        claimed: list[str] = []
        for i, spec in enumerate(specs):
            account_id = spec["account_id"]
            if account_id in self.accounts or account_id in self._pending:
                repeats.append(i)
                continue
            try:
                version, limits = _bind(self.plans, spec["plan"], spec.get("plan_version"),
                                       float(spec["initial_balance"]), spec.get("limits"))
            except (DomainError, LimitsError) as exc:
                results[i] = error_envelope(exc)
                continue
            self._pending.add(account_id)  # no await above: the ids of the batch are claimed at once
            claimed.append(account_id)
            prepared[i] = {**spec, "plan_version": version.version, "resolved_limits": limits.to_dict()}
            groups.setdefault(self._host_key(spec["user_id"]), []).append(i)
        records: list[tuple[str, dict[str, Any]]] = []
        try:
            await asyncio.gather(*(self._register_on(key, idx, prepared, nows, results, records)
                                   for key, idx in groups.items()))
            self._change_many("register", records)
            self.audit_append_many([_registered(prepared[i], results[i]["view"], nows[i], who)
                                    for i in sorted(prepared) if isinstance(results[i], dict) and "view" in results[i]])
        finally:
            for account_id in claimed:
                self._pending.discard(account_id)
        for i in repeats:
            results[i] = await self._repeat(specs[i])
        return results

    async def _register_on(self, key: str, idx: list[int], prepared: dict[int, dict[str, Any]], nows: list[float],
                           results: list[Any], records: list[tuple[str, dict[str, Any]]]) -> None:
        """The items ``idx`` of a batch, all placed on host ``key``: one host call."""
        try:
            host = self.hosts.get(key)
            spawned = host is None
            specs = [prepared[i] for i in idx]
            await self._seed_marks()
            # a new currency on the host: the conversions of what is traded there are routed
            # to it from now on, and it gets their latest marks with the registration
            gained = set().union(*(self.routes.account(key, str(s["currency"]).upper()) for s in specs))
            marks = [self.marks[s] for s in sorted(gained) if s in self.marks]
            if spawned:
                host = await self.transport.spawn_host(key, self.host_config)
                marks = list(self.marks.values())
            views = await self.transport.call(host, "register_many", specs,
                                              [self._switches_for(s["user_id"], s["challenge_id"]) for s in specs],
                                              marks, [nows[i] for i in idx], list(self.calendar.values()))
        except ShardUnavailable as exc:
            for i in idx:
                results[i] = unavailable_envelope(exc)
            return
        registered = False
        for i, spec, view in zip(idx, specs, views):
            if isinstance(view, dict) and "error" in view:
                results[i] = view
                continue
            registered = True
            results[i] = {"view": view, "host_key": key, "host": host}
            records.append((spec["account_id"], {
                "user_id": spec["user_id"], "challenge_id": spec["challenge_id"], "host_key": key,
                "currency": str(spec["currency"]).upper(), "initial_balance": float(spec["initial_balance"]), "overrides": dict(spec.get("limits") or {})}))
        if registered:
            self.hosts[key] = host
        elif spawned:
            await self.transport.kill(host)

    async def _repeat(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A batch item whose id is registered: the account if it is the same one, else 409."""
        account_id = spec["account_id"]
        meta = self.accounts.get(account_id)
        duplicate = error_envelope(DuplicateAccount(account_id, "account already registered with another identity"))
        if meta is None:  # still being registered by another request
            return error_envelope(DuplicateAccount(account_id, "account being registered by another request"))
        try:
            view = await self.transport.call(await self._host(meta["host_key"]), "view", account_id, None)
        except ShardUnavailable as exc:
            return unavailable_envelope(exc)
        same = (view.get("user_id"), view.get("challenge_id"), view.get("currency"), float(view["initial_balance"]),
                view.get("plan"), view.get("position_mode"), meta.get("overrides") or {}) == (
            spec["user_id"], spec["challenge_id"], str(spec["currency"]).upper(), float(spec["initial_balance"]),
            spec["plan"], spec.get("position_mode") or "netting", dict(spec.get("limits") or {}))
        if not same or (spec.get("plan_version") is not None and spec["plan_version"] != view.get("plan_version")):
            return duplicate
        return {"view": view, "host_key": meta["host_key"], "host": await self._host(meta["host_key"]),
                "existing": True}

    async def list_accounts(self, user_id: str | None, challenge_id: str | None, status: str | None,
                            cursor: str | None, limit: int, now: float) -> dict[str, Any]:
        """A page of accounts in ``account_id`` order after ``cursor``, filtered by user,
        challenge and status: ``{"accounts": [summary rows], "next_cursor": id or None}``
        (``None``: the last page). Rows are :func:`~riskactors.domain.views.account_summary`."""
        if user_id is not None or challenge_id is not None:
            pool = sorted(self.by_user.get(user_id, set()) if user_id is not None else self.by_challenge.get(
                challenge_id, set()))
            pool = [a for a in pool if challenge_id is None or self.accounts[a]["challenge_id"] == challenge_id]
        else:
            pool = self._sorted_ids
        start = bisect.bisect_right(pool, cursor) if cursor is not None else 0
        rows: list[dict[str, Any]] = []
        while start < len(pool) and len(rows) < limit:
            chunk = pool[start:start + max(limit, 100)]
            start += len(chunk)
            parts = await self._fan_out("summaries", self._hosts_for("accounts", chunk), after=(now,))
            by_id = {r["account_id"]: r for part in parts for r in unwrap(part)}
            for a in chunk:
                row = by_id.get(a)
                if row is not None and (status is None or row["status"] == status):
                    rows.append(row)
                    if len(rows) == limit:
                        start = bisect.bisect_right(pool, a)
                        break
        return {"accounts": rows, "next_cursor": rows[-1]["account_id"] if rows and start < len(pool) else None}

    async def locate(self, account_id: str) -> dict[str, Any] | None:
        """``{"host_key", "host", "user_id", "challenge_id"}`` of an account, or ``None`` if unknown."""
        meta = self.accounts.get(account_id)
        if meta is None:
            return None
        return {"host_key": meta["host_key"], "host": await self._host(meta["host_key"]), "user_id": meta["user_id"],
                "challenge_id": meta["challenge_id"]}

    async def host_list(self) -> list[tuple[str, Any]]:
        """Every host (key, target)."""
        for key in self._account_hosts - set(self.hosts):
            await self._host(key)
        return list(self.hosts.items())

    # ------------------------------------------------------------------ the cluster
    def front_seen(self, front: dict[str, Any], now: float) -> int:
        """A front's heartbeat (``front_id``, ``host``, ``pid``, ``port``, ``workers``,
        ``version``, ``started_at``): remembered, not journaled (fronts hold nothing). Returns
        the fronts attached."""
        self.fronts[front["front_id"]] = {**front, "last_seen": now}
        return len(self._attached(now))

    def _attached(self, now: float) -> list[dict[str, Any]]:
        """Fronts heard from within :data:`FRONT_TIMEOUT_SECONDS` (others are forgotten)."""
        for fid in [f for f, v in self.fronts.items() if now - v["last_seen"] > FRONT_TIMEOUT_SECONDS]:
            del self.fronts[fid]
        return sorted(self.fronts.values(), key=lambda f: f["front_id"])

    def _nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes (``node_id``, ``address``, ``alive``, ``cpus``); none in-process."""
        return []

    async def cluster(self, now: float) -> dict[str, Any]:
        """Nodes, shards per node (with their accounts, epoch and process), the fronts attached.

        A host that does not answer is listed with ``"available": False`` (fail closed)."""
        for key in self._account_hosts - set(self.hosts):
            await self._host(key)
        keys = sorted(self.hosts)
        pings = await asyncio.gather(*(self.transport.call(self.hosts[k], "ping") for k in keys),
                                     return_exceptions=True)
        hosts = []
        for key, p in zip(keys, pings):
            if isinstance(p, BaseException):
                hosts.append({"host_id": key, "available": False, "error": str(p), "node_id": None,
                              "accounts": None, "epoch": None, "pid": None})
            else:
                hosts.append({"host_id": key, "available": True, "node_id": p.get("node_id"),
                              "accounts": p["accounts"], "epoch": p.get("epoch"), "pid": p.get("pid"),
                              "journal_seq": p.get("journal_seq")})
        nodes = self._nodes()
        known = {n["node_id"] for n in nodes}
        for h in hosts:  # a host on a node Ray no longer lists (or in-process: no nodes at all)
            if h["node_id"] not in known:
                nodes.append({"node_id": h["node_id"], "address": None, "alive": h["available"], "cpus": None})
                known.add(h["node_id"])
        for n in nodes:
            mine = [h for h in hosts if h["node_id"] == n["node_id"]]
            n["hosts"] = [h["host_id"] for h in mine]
            n["accounts"] = sum(h["accounts"] or 0 for h in mine)
        return {"deployment": (self.deployment or {}).get("name"), "version": (self.deployment or {}).get("version"),
                "placement": self.placement, "shards": self.n_shards, "accounts": len(self.accounts),
                "nodes": nodes, "hosts": hosts, "fronts": self._attached(now),
                "supervisor_epoch": self.fence.epoch if self.fence is not None else None}

    def stats(self) -> dict[str, Any]:
        """Counts for readiness and the firm page."""
        return {"accounts": len(self.accounts), "hosts": len(self._account_hosts
                                                               | set(self.hosts)), "placement": self.placement,
                "switches": [sw for sw in self.switches.values()]}

    def _accounts_in(self, scope: str, scope_id: str | None) -> list[str]:
        """The account ids of a scope, for :meth:`_hosts_for`; the firm's is empty (every host
        is asked), so a firm-wide call builds no list of every account."""
        if scope == "firm":
            return []
        if scope == "user":
            return sorted(self.by_user.get(scope_id, ()))
        if scope == "challenge":
            return sorted(self.by_challenge.get(scope_id, ()))
        if scope == "account":
            if scope_id not in self.accounts:
                raise UnknownAccount(str(scope_id), "account not registered")
            return [scope_id]
        raise ValueError(f"unknown scope {scope!r}")

    def _hosts_for(self, scope: str, account_ids: list[str]) -> dict[str, list[str] | None]:
        """Host key → the scope's account ids on it; ``None`` (every account there) for the firm."""
        if scope == "firm":
            return {k: None for k in sorted(set(self.hosts) | self._account_hosts)}
        groups: dict[str, list[str]] = defaultdict(list)
        for a in account_ids:
            groups[self.accounts[a]["host_key"]].append(a)
        return dict(groups)

    async def _fan_out(self, method: str, groups: dict[str, list[str] | None], *before: Any,
                       after: tuple = ()) -> list[Any]:
        """Call ``method(*before, account_ids, *after)`` on every host of ``groups`` at once."""
        hosts = [await self._host(k) for k in groups]
        calls = [self.transport.call(h, method, *before, ids, *after) for h, ids in zip(hosts, groups.values())]
        return await asyncio.gather(*calls)

    # ------------------------------------------------------------------ kill switches
    async def set_kill_switch(self, scope: str, scope_id: str | None, mode: str, reason: str, by: str,
                              now: float, who: list | None = None) -> dict[str, Any]:
        """Activate a switch for a scope; reaches every affected account. Returns the switch and
        ``accounts_affected``. Its ``kill_switch_set`` audit entry (by ``who``) is journaled in
        the switch's own record (user, challenge, firm) or in the host's (account), never by a
        separate call: with ``accounts_affected`` once every host answered, ``None`` when one
        did not (the call then raises ``ShardUnavailable``: a 503 that may have set it, which
        ``GET /v1/kill-switches`` shows)."""
        KillScope(scope)
        try:
            ids = self._accounts_in(scope, scope_id)
        except UnknownAccount as exc:
            return error_envelope(exc)
        switch = {"active": True, "scope": scope, "id": scope_id, "mode": mode, "reason": reason, "by": by,
                  "at": now, "breach": False}
        replaced = self.switches.get((scope, scope_id))
        entry = self._entry(who, "kill_switch_set", now, by=by, reason=reason, scope=scope, scope_id=scope_id,
                            account_id=scope_id if scope == "account" else None, before=replaced,
                            after=switch | {"accounts_affected": None})
        if scope == "account":
            counts = await self._fan_out("set_kill_switch", self._hosts_for(scope, ids), switch, after=(now, entry))
            await self._deliver_soon(self.accounts[scope_id]["host_key"])
            return {"switch": switch, "accounts_affected": sum(counts), "replaced": replaced}
        entry = self._change_with_audit("switch_set", scope, scope_id, switch, audit=entry)
        try:
            counts = await self._fan_out("set_kill_switch", self._hosts_for(scope, ids), switch, after=(now,))
        except ShardUnavailable:
            self.audit_append_many([entry])
            raise
        self.audit_append_many([{**entry, "after": switch | {"accounts_affected": sum(counts)}}])
        return {"switch": switch, "accounts_affected": sum(counts), "replaced": replaced}

    async def release_kill_switch(self, scope: str, scope_id: str | None, reason: str, by: str,
                                  now: float, who: list | None = None) -> dict[str, Any]:
        """Release a scope's switch on every affected account (audit entry
        ``kill_switch_released`` as for :meth:`set_kill_switch`, when one was released)."""
        KillScope(scope)
        try:
            ids = self._accounts_in(scope, scope_id)
        except UnknownAccount as exc:
            return error_envelope(exc)
        held = self.switches.get((scope, scope_id))
        entry = self._entry(who, "kill_switch_released", now, by=by, reason=reason, scope=scope, scope_id=scope_id,
                            account_id=scope_id if scope == "account" else None, before=held,
                            after={"accounts_released": None})
        if scope == "account":
            released = sum(await self._fan_out("release_kill_switch", self._hosts_for(scope, ids), scope, scope_id,
                                               reason, by, after=(now, {**entry, "before": None})))
            await self._deliver_soon(self.accounts[scope_id]["host_key"])
            switch = None
        else:
            switch = None
            if held is not None:
                entry = self._change_with_audit("switch_released", scope, scope_id, audit=entry)
                switch = held
            try:
                released = sum(await self._fan_out("release_kill_switch", self._hosts_for(scope, ids), scope,
                                                   scope_id, reason, by, after=(now,)))
            except ShardUnavailable:
                if held is not None:
                    self.audit_append_many([entry])
                raise
            if held is not None or released:
                keyed = entry if held is not None else {"key": f"supervisor/{uuid.uuid4().hex}", **entry}
                self.audit_append_many([{**keyed, "after": {"accounts_released": released}}])
        return {"scope": scope, "id": scope_id, "released": bool(switch is not None or released),
                "accounts_released": released, "reason": reason, "by": by, "at": now, "switch": switch}

    # ------------------------------------------------------------------ consolidation
    async def consolidated(self, scope: str, scope_id: str | None, top_n: int, now: float) -> dict[str, Any]:
        """Consolidated risk of a user, a challenge or the firm: each host's part from the rollups
        it keeps up to date, merged (``domain.rollup``; the figures of ``domain.aggregate``)."""
        ids = self._accounts_in(scope, scope_id)
        hosts = [await self._host(k) for k in self._hosts_for(scope, ids)]
        parts = await asyncio.gather(*(self.transport.call(h, "rollup", scope, scope_id, top_n, now) for h in hosts))
        result = merge([unwrap(p) for p in parts], scope, scope_id, top_n)
        result["kill_switches"] = [sw for (s, i), sw in self.switches.items()
                                   if s == "firm" or (s == scope and i == scope_id)]
        return result

    # ------------------------------------------------------------------ news calendar
    async def calendar_add(self, events: list[dict[str, Any]], now: float | None = None,
                           who: list | None = None) -> dict[str, Any]:
        """Add or replace calendar events (by ``event_id``), journaled with their
        ``calendar_updated`` audit entry, and send them to every host (rule ``NEWS_BLACKOUT``);
        accounts registered later receive the whole calendar."""
        self._change("calendar", events, audit=self._entry(who, "calendar_updated", time.time() if now is None else now,
                                                           after={"events": events}))
        hosts = [await self._host(k) for k in self._hosts_for("firm", [])]
        await asyncio.gather(*(self.transport.call(h, "apply_calendar", events) for h in hosts))
        return {"received": len(events), "events": len(self.calendar)}

    def calendar_list(self) -> list[dict[str, Any]]:
        """Every calendar event, in time order."""
        return sorted(self.calendar.values(), key=lambda e: (e["at"], e["event_id"]))

    # ------------------------------------------------------------------ audit
    def audit_append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append an ops/admin action to the audit log (durable before it returns)."""
        return self._audit(entry)

    def audit_append_many(self, entries: list[dict[str, Any]]) -> int:
        """Append several audit entries with one commit; an entry with a ``key`` already in the
        log is skipped (a delivery repeated after a failure). Returns how many were added."""
        added = 0
        for entry in entries:
            key = entry.get("key")
            if key is not None:
                if key in self._audit_keys:
                    continue
                self._audit_keys.add(key)
            entry = {"audit_id": len(self.audit_log) + 1, **entry}
            if self._audit_journal is not None:
                self._audit_journal.append(entry)
            self.audit_log.append(entry)
            added += 1
        if self._audit_journal is not None and added:
            self._audit_journal.commit()
        return added

    async def audit(self, account_id: str | None = None, actor: str | None = None, action: str | None = None,
                    since: float | None = None, until: float | None = None, limit: int | None = None
                    ) -> list[dict[str, Any]]:
        """Audit entries in time order, filtered: ops/admin actions from this log and breaches
        from the accounts' own (journaled, append-only) breach records."""
        ids: list[str] = []
        scope = "firm"
        if account_id is not None:
            if account_id not in self.accounts:
                return []
            scope, ids = "account", [account_id]
        rows = list(self.audit_log)
        if action in (None, "breach") and actor in (None, "system"):
            parts = await self._fan_out("breaches", self._hosts_for(scope, ids))
            rows.extend(b for part in parts for b in part)
        out = [r for r in rows
               if (account_id is None or r.get("account_id") == account_id)
               and (actor is None or r.get("actor") == actor) and (action is None or r.get("action") == action)
               and (since is None or r["at"] >= since) and (until is None or r["at"] <= until)]
        out.sort(key=lambda r: (r["at"], str(r.get("audit_id"))))
        return out[-limit:] if limit else out

    # ------------------------------------------------------------------ plans
    def plans_list(self) -> list[dict[str, Any]]:
        """One summary per plan id (see ``PlanRegistry.list``)."""
        return self.plans.list()

    def plan_versions(self, plan_id: str) -> Any:
        """Every version of a plan, oldest first, or an error envelope."""
        try:
            return [v.to_dict() for v in self.plans.versions(plan_id)]
        except DomainError as exc:
            return error_envelope(exc)

    def plan_create(self, doc: dict[str, Any], now: float, who: list | None = None) -> dict[str, Any]:
        """Add a plan version as a draft (a new id starts at version 1); audit entry
        ``plan_created`` in the same journal record."""
        try:
            return self._change("plan_create", doc, now, audit=lambda pv: self._entry(
                who, "plan_created", now, scope="plan", scope_id=doc["id"], after=pv.to_dict())).to_dict()
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)

    def plan_activate(self, plan_id: str, version: int | None, now: float, who: list | None = None) -> dict[str, Any]:
        """Activate a draft version (the previously active one is superseded); audit entry
        ``plan_activated`` in the same journal record."""
        try:
            before = self.plans.active(plan_id) if plan_id in self.plans else None
            was = before.version if before is not None else None
            active = self._change("plan_activate", plan_id, version, now, audit=lambda pv: self._entry(
                who, "plan_activated", now, scope="plan", scope_id=plan_id, before={"active_version": was},
                after={"active_version": pv.version})).to_dict()
            return active | {"superseded_version": was}
        except DomainError as exc:
            return error_envelope(exc)

    async def bind_plan(self, account_id: str, plan_id: str, version: int | None, keep_overrides: bool, by: str,
                        reason: str, now: float, who: list | None = None) -> dict[str, Any]:
        """Rebind an account to an active plan version (an explicit, recorded action; its
        ``plan_bound`` audit entry comes from the host, see ``AccountHost._to_outbox``)."""
        meta = self.accounts.get(account_id)
        if meta is None:
            return error_envelope(UnknownAccount(account_id, "account not registered"))
        try:
            overrides = meta["overrides"] if keep_overrides else None
            pv, limits = _bind(self.plans, plan_id, version, meta["initial_balance"], overrides)
        except (DomainError, LimitsError) as exc:
            return error_envelope(exc)
        view = await self.transport.call(await self._host(meta["host_key"]), "bind_plan", account_id, plan_id,
                                         pv.version, limits.to_dict(), by, reason, now, who)
        if not (isinstance(view, dict) and "error" in view) and not keep_overrides:
            self._change("overrides", account_id, {})
        return view

    # ------------------------------------------------------------------ analytics and recommendations
    def behaviour_config(self) -> dict[str, Any]:
        """Thresholds and weights of the behaviour analytics."""
        return self.behaviour.to_dict()

    def update_behaviour_config(self, updates: dict[str, Any], who: list | None = None) -> dict[str, Any]:
        """Change thresholds (``POST /admin/update-config``; audit entry
        ``analytics_config_changed`` in the same record); returns the new config or an error."""
        try:
            before = self.behaviour.to_dict()
            after = self.behaviour.with_updates(updates).to_dict()  # validate before journaling
            self._change("behaviour", updates, audit=self._entry(who, "analytics_config_changed", time.time(),
                                                                 before=before, after=after))
        except AnalyticsConfigError as exc:
            return {"error": {"type": "LimitsError", "code": "INVALID_CONFIG", "subject": exc.field,
                              "field": f"config.{exc.field}", "message": exc.message}}
        return self.behaviour.to_dict()

    async def analytics(self, scope: str, scope_id: str | None, now: float) -> dict[str, Any]:
        """Behaviour analytics of an account, or pooled over a user, a challenge or the firm."""
        try:
            ids = self._accounts_in(scope, scope_id)
        except UnknownAccount as exc:
            return error_envelope(exc)
        parts = await self._fan_out("closed_trades", self._hosts_for(scope, ids), after=(now,))
        rows = [row for part in parts for row in part]
        groups = [([ClosedTrade(*t) for t in row["trades"]], row["initial_balance"]) for row in rows]
        if scope == "account":
            row = rows[0]
            result = analyse(groups[0][0], groups[0][1], self.behaviour)
            result.update({"account_id": row["account_id"], "user_id": row["user_id"],
                           "challenge_id": row["challenge_id"], "currency": row["currency"]})
        else:
            result = pooled(groups, self.behaviour)
            result["currencies"] = sorted({row["currency"] for row in rows})
            result["by_account"] = {
                row["account_id"]: {"trades": len(g[0]), "score": analyse(g[0], g[1], self.behaviour)
                                    ["all"]["score"]} for row, g in zip(rows, groups)}
        closes = [t.close_time for g in groups for t in g[0]]
        result.update({"scope": scope, "id": scope_id, "config": self.behaviour.to_dict(),
                       "last_trade_at": max(closes) if closes else None,
                       "open_positions": sum(row["open_positions"] for row in rows)})
        return result

    async def recommendations(self, account_id: str | None, status: str | None, now: float) -> Any:
        """Limit-reduction recommendations of one account or of the firm."""
        if account_id is not None and account_id not in self.accounts:
            return error_envelope(UnknownAccount(account_id, "account not registered"))
        scope, ids = ("account", [account_id]) if account_id is not None else ("firm", [])
        parts = await self._fan_out("recommendations", self._hosts_for(scope, ids), after=(status, now))
        return sorted((r for part in parts for r in part), key=lambda r: (r["created_at"], r["recommendation_id"]))


def _registered(spec: dict[str, Any], view: dict[str, Any], now: float, who: list | None) -> dict[str, Any]:
    """The ``account_registered`` audit entry of a registration (``who``: the request's actor
    name and role)."""
    name, role = who if who else ("service", None)
    return {"at": now, "actor": name, "role": role, "by": None, "action": "account_registered",
            "account_id": spec["account_id"], "scope": "account", "scope_id": spec["account_id"], "reason": "",
            "before": None, "after": {k: view.get(k) for k in ("user_id", "challenge_id", "currency", "initial_balance",
                                                               "plan", "plan_version", "position_mode")}
            | {"overrides": spec.get("limits") or {}}}


def _bind(plans: PlanRegistry, plan_id: str, version: int | None, initial_balance: float,
          overrides: dict[str, Any] | None):
    """(plan version, limits) for binding an account: the version must be active.

    An unknown plan id is bad input of the request (``LimitsError`` naming ``plan``, HTTP 422).
    """
    if plan_id not in plans:
        known = ", ".join(p["id"] for p in plans.list())
        raise LimitsError("plan", f"unknown plan {plan_id!r}; known: {known}")
    pv = plans.bindable(plan_id, version)
    return plans.resolve(plan_id, pv.version, initial_balance, overrides)


def _fresh_presets() -> PlanRegistry:
    """A mutable registry holding the shipped presets (each supervisor owns its own)."""
    return PlanRegistry.from_json(package_data("plans.json"))
